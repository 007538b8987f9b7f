//! Random streams: block `i` of a job always draws from ChaCha8 stream `i` of the job's key,
//! which is what makes results independent of how units are split across chunks and threads.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::sync::LazyLock;

/// SplitMix64: expands a 64-bit job seed into a 256-bit ChaCha key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for block `block` of the job seeded with `seed`.
pub fn block_rng(seed: u64, block: u64) -> ChaCha8Rng {
    let mut state = seed;
    let mut key = [0u8; 32];
    for word in key.chunks_exact_mut(8) {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(block);
    rng
}

const TWO_POW_MINUS_53: f64 = 1.0 / (1u64 << 53) as f64;

const LAYERS: usize = 256;
/// Right edge of the base layer and the common area of each layer for 256 layers (Doornik 2005).
const ZIG_R: f64 = 3.654_152_885_361_009;
const ZIG_V: f64 = 0.004_928_673_233_99;

/// Ziggurat layer edges `x` and the fast-accept ratios `x[i+1]/x[i]`.
struct Ziggurat {
    x: [f64; LAYERS + 1],
    ratio: [f64; LAYERS],
}

/// Built once with `libm`, so the tables have the same bits on every target.
static ZIGGURAT: LazyLock<Ziggurat> = LazyLock::new(|| {
    let mut x = [0.0; LAYERS + 1];
    let mut f = libm::exp(-0.5 * ZIG_R * ZIG_R);
    x[0] = ZIG_V / f;
    x[1] = ZIG_R;
    for i in 2..LAYERS {
        x[i] = (-2.0 * libm::log(ZIG_V / x[i - 1] + f)).sqrt();
        f = libm::exp(-0.5 * x[i] * x[i]);
    }
    let mut ratio = [0.0; LAYERS];
    for i in 0..LAYERS {
        ratio[i] = x[i + 1] / x[i];
    }
    Ziggurat { x, ratio }
});

/// A block's random stream: 64-bit words, uniforms, and standard normal variates by the
/// ziggurat method (ZIGNOR, 256 layers): one word and a multiply for ~99% of normals; the rare
/// wedge and tail cases use `libm`, so every target agrees.
pub struct Normals<R> {
    rng: R,
    zig: &'static Ziggurat,
}

impl<R: Rng> Normals<R> {
    pub fn new(rng: R) -> Self {
        Normals { rng, zig: &ZIGGURAT }
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * TWO_POW_MINUS_53
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    #[inline]
    fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * TWO_POW_MINUS_53
    }

    /// A standard normal variate.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xFF) as usize;
            let u = 2.0 * ((bits >> 11) as f64 * TWO_POW_MINUS_53) - 1.0;
            if u.abs() < self.zig.ratio[i] {
                return u * self.zig.x[i];
            }
            if let Some(z) = self.slow_path(i, u) {
                return z;
            }
        }
    }

    #[cold]
    fn slow_path(&mut self, i: usize, u: f64) -> Option<f64> {
        if i == 0 {
            return Some(self.tail(u < 0.0));
        }
        let x = u * self.zig.x[i];
        let f0 = libm::exp(-0.5 * (self.zig.x[i] * self.zig.x[i] - x * x));
        let f1 = libm::exp(-0.5 * (self.zig.x[i + 1] * self.zig.x[i + 1] - x * x));
        (f1 + self.uniform() * (f0 - f1) < 1.0).then_some(x)
    }

    /// Marsaglia's tail algorithm beyond `ZIG_R`.
    fn tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = libm::log(self.uniform_open0()) / ZIG_R;
            let y = libm::log(self.uniform_open0());
            if -2.0 * y >= x * x {
                return if negative { x - ZIG_R } else { ZIG_R - x };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_block_and_seed_and_repeat_exactly() {
        let a: Vec<u64> = (0..4).map(|_| 0).scan(block_rng(7, 0), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(block_rng(7, 0), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).map(|_| 0).scan(block_rng(7, 1), |r, _| Some(r.next_u64())).collect();
        let d: Vec<u64> = (0..4).map(|_| 0).scan(block_rng(8, 0), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn ziggurat_tables_close_at_zero_and_cover_the_tail() {
        let z = &*ZIGGURAT;
        assert_eq!(z.x[LAYERS], 0.0);
        assert!(z.x[LAYERS - 1] > 0.0 && z.x[LAYERS - 1] < 0.3, "top layer edge {}", z.x[LAYERS - 1]);
        assert!(z.x.windows(2).skip(1).all(|w| w[0] > w[1]), "edges must decrease");
    }

    /// Moments and tail frequencies of 2M draws against the standard normal.
    #[test]
    fn normals_have_standard_moments_and_tails() {
        let n = 2_000_000;
        let mut g = Normals::new(block_rng(42, 3));
        let (mut s1, mut s2, mut s3, mut s4, mut beyond3) = (0.0, 0.0, 0.0, 0.0, 0usize);
        for _ in 0..n {
            let z = g.normal();
            s1 += z;
            s2 += z * z;
            s3 += z * z * z;
            s4 += z * z * z * z;
            beyond3 += (z.abs() > 3.0) as usize;
        }
        let nf = n as f64;
        assert!((s1 / nf).abs() < 5.0 * (1.0 / nf).sqrt());
        assert!((s2 / nf - 1.0).abs() < 5.0 * (2.0 / nf).sqrt());
        assert!((s3 / nf).abs() < 5.0 * (15.0 / nf).sqrt());
        assert!((s4 / nf - 3.0).abs() < 5.0 * (96.0 / nf).sqrt());
        // P(|Z| > 3) = 0.0026998; binomial standard deviation ~ 73 at this n.
        let expected = 0.002_699_796 * nf;
        assert!((beyond3 as f64 - expected).abs() < 5.0 * expected.sqrt(), "{beyond3} vs {expected}");
    }
}
