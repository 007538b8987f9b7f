//! Vector math written once over `N` lanes: `exp`, `ln`, the normal quantile and a normal
//! generator without data-dependent branches, with the same bits at every width, under every
//! instruction set and in Wasm.
//!
//! The lanes are plain arrays (`F64s<N>`, `lanes.rs`) whose operators loop over the lanes, so
//! each lane's arithmetic is the scalar code's by construction (Rust never contracts or
//! reassociates floating point), and LLVM vectorises the loops at the width of the target it
//! compiles for. The slice functions of [`Simd`] choose that target at run time on x86-64 —
//! AVX-512 or AVX2 where the CPU has them, SSE2 otherwise — by compiling the same generic code
//! inside `#[target_feature]` functions; a Wasm build uses `simd128` when it is compiled with
//! it. `README.md` beside this file compares this with `wide`, `pulp` and hand-written
//! `std::arch`, with measurements.
//!
//! `exp` and `ln` are fdlibm's algorithms with branches turned into selects and give
//! `libm::exp`'s and `libm::log`'s bits; `normal_quantile` gives `special::normal_quantile`'s.
//! So moving a kernel from the scalar functions to these changes none of its results.

mod exp;
mod lanes;
mod ln;
mod normal;
#[cfg(test)]
mod quantile_reference;
#[cfg(test)]
mod tests;

pub use exp::exp;
pub use lanes::{F64s, Mask, U64s};
pub use ln::ln;
pub use normal::{normal_from_word, normal_quantile};

use core::fmt;
use core::marker::PhantomData;
use rand_core::Rng;

/// The instruction set a [`Simd`] runs its loops under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// What the build targets without run-time detection: SSE2 on x86-64, `simd128` in a Wasm
    /// build compiled with it, scalar code in one without.
    Baseline,
    /// x86-64 with AVX2, detected at run time.
    Avx2,
    /// x86-64 with AVX-512F, detected at run time.
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU (and build) can run it.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The widest available.
    pub fn detected() -> Isa {
        [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.is_available()).unwrap_or(Isa::Baseline)
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline if cfg!(target_arch = "x86_64") => "sse2",
            Isa::Baseline if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) => "simd128",
            Isa::Baseline => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Lanes of `f64` in one of its vector registers.
    pub fn register_lanes(self) -> Width {
        match self {
            Isa::Baseline => Width::Two,
            Isa::Avx2 => Width::Four,
            Isa::Avx512 => Width::Eight,
        }
    }
}

/// Lanes a loop step computes. Any width runs under any instruction set (a width wider than
/// the registers takes several instructions an operation) and gives the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    One = 1,
    Two = 2,
    Four = 4,
    Eight = 8,
    Sixteen = 16,
}

impl Width {
    pub const ALL: [Width; 5] = [Width::One, Width::Two, Width::Four, Width::Eight, Width::Sixteen];

    pub fn lanes(self) -> usize {
        self as usize
    }
}

/// An instruction set this CPU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable(pub Isa);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this CPU or build cannot run {} code", self.0.name())
    }
}

impl std::error::Error for Unavailable {}

/// Slices of different lengths where one value is made from each element of the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthMismatch {
    pub words: usize,
    pub out: usize,
}

impl fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} random words for {} normals: one word makes one normal", self.words, self.out)
    }
}

impl std::error::Error for LengthMismatch {}

/// An instruction set and a width the slice functions run at. Its results do not depend on
/// either: only its speed does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Simd {
    isa: Isa,
    width: Width,
}

/// Words drawn at a time by [`Simd::fill_normals`]: a stack buffer, a multiple of every width.
const DRAW_BATCH: usize = 64;

impl Simd {
    /// The detected instruction set, at 16 lanes a step. Since the normals pack their tails
    /// (`normal.rs`), 16 lanes is the fastest width of the normal pass under AVX-512, and the
    /// barrier and Asian kernels ran 16-19% faster at it than at 4 lanes, the European 4%
    /// slower (`tools/bench-vs.sh`, 2-vCPU AMD EPYC Zen 5).
    pub fn best() -> Simd {
        Simd { isa: Isa::detected(), width: Width::Sixteen }
    }

    pub fn new(isa: Isa, width: Width) -> Result<Simd, Unavailable> {
        if isa.is_available() { Ok(Simd { isa, width }) } else { Err(Unavailable(isa)) }
    }

    /// Every instruction set this CPU runs, at every width.
    pub fn all_available() -> Vec<Simd> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_available())
            .flat_map(|isa| Width::ALL.map(|width| Simd { isa, width }))
            .collect()
    }

    pub fn isa(self) -> Isa {
        self.isa
    }

    pub fn width(self) -> Width {
        self.width
    }

    /// `x <- exp(x)` for each element, as `libm::exp`.
    pub fn exp(self, xs: &mut [f64]) {
        run_map::<ExpMap>(self, xs)
    }

    /// `x <- ln(x)` for each element, as `libm::log`.
    pub fn ln(self, xs: &mut [f64]) {
        run_map::<LnMap>(self, xs)
    }

    /// `p <- Φ⁻¹(p)` for each element, as `special::normal_quantile`.
    pub fn normal_quantile(self, ps: &mut [f64]) {
        run_map::<QuantileMap>(self, ps)
    }

    /// `out[i]` is the standard normal [`normal_from_word`] makes of `words[i]`.
    pub fn normals_from_words(self, words: &[u64], out: &mut [f64]) -> Result<(), LengthMismatch> {
        if words.len() != out.len() {
            return Err(LengthMismatch { words: words.len(), out: out.len() });
        }
        run_normals(self, words, out);
        Ok(())
    }

    /// Fills `out` with standard normals, one `rng.next_u64()` each, in order.
    pub fn fill_normals<R: Rng + ?Sized>(self, rng: &mut R, out: &mut [f64]) {
        let mut words = [0u64; DRAW_BATCH];
        for chunk in out.chunks_mut(DRAW_BATCH) {
            let words = &mut words[..chunk.len()];
            for word in words.iter_mut() {
                *word = rng.next_u64();
            }
            run_normals(self, words, chunk);
        }
    }
}

/// [`digest`] on every target, instruction set and width: a build whose vector math gives
/// other bits anywhere on the digest's inputs gives another number.
pub const DIGEST: u64 = 0x7064_fdc0_9e15_709b;

/// A fingerprint of the bits `simd` gives on fixed inputs to every function: `exp` over
/// [-750, 750], `ln` over every positive exponent, `normal_quantile` over (0, 1) and beyond,
/// and 4096 normals of ChaCha8 stream 0 of seed 2024; NaNs count as one value (Wasm does not
/// fix a NaN's bits). Compare it with [`DIGEST`] to check a build, a Wasm one say, whole.
pub fn digest(simd: Simd) -> u64 {
    const COUNT: usize = 4096;
    // SplitMix64 words: inputs from integer arithmetic alone, the same everywhere.
    let mut state = 0x5EED_u64;
    let mut word = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let unit = |w: u64| (w >> 11) as f64 / (1u64 << 53) as f64;
    let mut exps: Vec<f64> = (0..COUNT).map(|_| 1500.0 * unit(word()) - 750.0).collect();
    let mut logs: Vec<f64> = (0..COUNT).map(|_| f64::from_bits(word() >> 1)).collect();
    let mut quantiles: Vec<f64> = (0..COUNT).map(|_| 1.25 * unit(word()) - 0.125).collect();
    exps.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 709.78, -745.13]);
    logs.extend([0.0, -1.0, 1.0, 5e-324, f64::MAX, f64::INFINITY, f64::NAN]);
    quantiles.extend([1e-300, 1e-20, 1e-12, 0.5, 1.0 - 1e-16, 0.0, 1.0]);
    simd.exp(&mut exps);
    simd.ln(&mut logs);
    simd.normal_quantile(&mut quantiles);
    let mut normals = vec![0.0; COUNT];
    simd.fill_normals(&mut crate::rng::block_rng(2024, 0), &mut normals);
    // FNV-1a over the bytes of every result.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for x in exps.iter().chain(&logs).chain(&quantiles).chain(&normals) {
        let bits = if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() };
        for byte in bits.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `$f::<$G, N>($args)` with `N` the width's lanes.
macro_rules! at_width {
    ($width:expr, $f:ident::<$g:ty>($($arg:expr),*)) => {
        match $width {
            Width::One => $f::<$g, 1>($($arg),*),
            Width::Two => $f::<$g, 2>($($arg),*),
            Width::Four => $f::<$g, 4>($($arg),*),
            Width::Eight => $f::<$g, 8>($($arg),*),
            Width::Sixteen => $f::<$g, 16>($($arg),*),
        }
    };
}

/// Code written once over `N` lanes, which [`Simd::run`] runs at its width and under its
/// instruction set. `run` must be `#[inline(always)]`, and so must everything it calls that
/// touches lanes: only code inlined into the `#[target_feature]` function is compiled for it.
/// Data (parameters, slices) comes in `self`; no closure or function pointer may cross in, as
/// its body would be compiled for the baseline (`README.md`).
pub trait LaneKernel {
    type Output;
    fn run<const N: usize>(self) -> Self::Output;
}

impl Simd {
    /// Runs `kernel` at this width and under this instruction set.
    pub fn run<K: LaneKernel>(self, kernel: K) -> K::Output {
        #[cfg(target_arch = "x86_64")]
        use x86::{run_avx2, run_avx512};
        match self.isa {
            Isa::Baseline => at_width!(self.width, run_baseline::<K>(kernel)),
            // SAFETY: a `Simd` holds `Avx2` or `Avx512` only where `Isa::is_available` found
            // the CPU has it (`Simd::new`, `Simd::best`, `Simd::all_available`), which is what
            // calling a `#[target_feature]` function needs.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { at_width!(self.width, run_avx2::<K>(kernel)) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { at_width!(self.width, run_avx512::<K>(kernel)) },
            // Never made off x86-64; the baseline loop is the same computation anyway.
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => at_width!(self.width, run_baseline::<K>(kernel)),
        }
    }
}

fn run_baseline<K: LaneKernel, const N: usize>(kernel: K) -> K::Output {
    kernel.run::<N>()
}

/// The generic code compiled with AVX2 or AVX-512 enabled: the same source, inlined into a
/// function LLVM may use those instructions in.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LaneKernel;

    #[target_feature(enable = "avx2")]
    pub(super) fn run_avx2<K: LaneKernel, const N: usize>(kernel: K) -> K::Output {
        kernel.run::<N>()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn run_avx512<K: LaneKernel, const N: usize>(kernel: K) -> K::Output {
        kernel.run::<N>()
    }
}

/// A lane-wise function and the value that pads a slice's last, partial step (any value that
/// computes quickly: padded lanes are discarded, and lanes do not interact).
trait LaneMap {
    const PAD: f64;
    fn apply<const N: usize>(x: F64s<N>) -> F64s<N>;
}

struct ExpMap;
struct LnMap;
struct QuantileMap;

impl LaneMap for ExpMap {
    const PAD: f64 = 0.0;
    #[inline(always)]
    fn apply<const N: usize>(x: F64s<N>) -> F64s<N> {
        exp(x)
    }
}

impl LaneMap for LnMap {
    const PAD: f64 = 1.0;
    #[inline(always)]
    fn apply<const N: usize>(x: F64s<N>) -> F64s<N> {
        ln(x)
    }
}

impl LaneMap for QuantileMap {
    const PAD: f64 = 0.5;
    #[inline(always)]
    fn apply<const N: usize>(x: F64s<N>) -> F64s<N> {
        normal_quantile(x)
    }
}

/// `x <- M(x)` over a slice.
struct MapInPlace<'a, M>(&'a mut [f64], PhantomData<M>);

impl<M: LaneMap> LaneKernel for MapInPlace<'_, M> {
    type Output = ();
    #[inline(always)]
    fn run<const N: usize>(self) {
        let (steps, rest) = self.0.as_chunks_mut::<N>();
        for step in steps {
            *step = M::apply(F64s(*step)).0;
        }
        if !rest.is_empty() {
            let mut padded = [M::PAD; N];
            padded[..rest.len()].copy_from_slice(rest);
            rest.copy_from_slice(&M::apply(F64s(padded)).0[..rest.len()]);
        }
    }
}

fn run_map<M: LaneMap>(simd: Simd, xs: &mut [f64]) {
    simd.run(MapInPlace::<M>(xs, PhantomData))
}

/// Normals from words; `words` and `out` have the same length (checked by the callers).
struct NormalsFromWords<'a> {
    words: &'a [u64],
    out: &'a mut [f64],
}

impl LaneKernel for NormalsFromWords<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const N: usize>(self) {
        normal::normals_from_words::<N>(self.words, self.out)
    }
}

fn run_normals(simd: Simd, words: &[u64], out: &mut [f64]) {
    simd.run(NormalsFromWords { words, out })
}
