//! Random streams: block `i` of a job always draws from ChaCha8 stream `i` of the job's key,
//! which is what makes results independent of how units are split across chunks and threads.

use rand_core::Rng;

mod chacha8;

/// A block's generator: `rand_chacha`'s ChaCha8 stream, computed in vector registers (see
/// `chacha8`).
pub type BlockStream = chacha8::ChaCha8;

/// SplitMix64: expands a 64-bit job seed into a 256-bit ChaCha key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for block `block` of the job seeded with `seed`: ChaCha8 stream `block`.
pub fn block_rng(seed: u64, block: u64) -> BlockStream {
    let mut state = seed;
    let mut key = [0u8; 32];
    for word in key.as_chunks_mut::<8>().0 {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    BlockStream::new(key, block)
}

/// Importance sampling's change of mean: moves the standard normals `z` to `z + shift` and
/// returns the likelihood ratio `phi(z + shift) / phi(z)` under `N(shift, I)`, that is
/// `exp(-shift . z - |shift|^2 / 2)`; `half_shift_sq` is `|shift|^2 / 2`, computed once.
pub fn shift_normals(z: &mut [f64], shift: &[f64], half_shift_sq: f64) -> f64 {
    let mut dot = 0.0;
    for (zk, &mk) in z.iter_mut().zip(shift) {
        dot += mk * *zk;
        *zk += mk;
    }
    libm::exp(-dot - half_shift_sq)
}

const TWO_POW_MINUS_53: f64 = 1.0 / (1u64 << 53) as f64;
const TWO_POW_MINUS_52: f64 = 1.0 / (1u64 << 52) as f64;

const LAYERS: usize = 256;
/// Right edge of the base layer and the common area of each layer for 256 layers (Doornik 2005).
const ZIG_R: f64 = 3.654_152_885_361_009;
#[cfg(test)]
const ZIG_V: f64 = 0.004_928_673_233_99;

/// Ziggurat layer edges `x[0..=256]` as f64 bits: `x[0] = V / f(R)`, `x[1] = R`,
/// `x[i] = sqrt(-2 ln(V / x[i-1] + f(x[i-1])))`, `x[256] = 0`, computed with `libm` (the test
/// `ziggurat_table_matches_its_recurrence` recomputes them). A constant table, not one built at
/// first use: every Wasm instance would otherwise rebuild it for each job.
const ZIG_X_BITS: [u64; LAYERS + 1] = [
    0x400F493B78164498,
    0x400D3BB48209AD33,
    0x400B981F3878F995,
    0x400A8FDC7894718C,
    0x4009CBEE014050DF,
    0x40092EE0946F3D1A,
    0x4008AB0FBFAA7412,
    0x400839030529E9C6,
    0x4007D42DF4D6C5C3,
    0x400779955608FD5B,
    0x40072728F05F70D7,
    0x4006DB6B8D09D896,
    0x40069540BE9FDBED,
    0x400653CE7B0060DF,
    0x40061669CF86140F,
    0x4005DC8A243AC693,
    0x4005A5C08B718342,
    0x400571B1A94AD95A,
    0x40054011523A7359,
    0x4005109F53E9A131,
    0x4004E3250DCD7DCC,
    0x4004B7739D6B4ECC,
    0x40048D62759C383D,
    0x400464CE44A72E74,
    0x40043D98155452D1,
    0x400417A49CB9D9F6,
    0x4003F2DBAA60E871,
    0x4003CF27B316F883,
    0x4003AC7570AE7CB8,
    0x40038AB3925634A9,
    0x400369D27A339BC1,
    0x400349C405AE0606,
    0x40032A7B5E6897E9,
    0x40030BECD256A217,
    0x4002EE0DB1A96C02,
    0x4002D0D43196CE88,
    0x4002B4375329FD27,
    0x4002982ECD770131,
    0x40027CB2FAA84BCB,
    0x400261BCC7764B62,
    0x40024745A4AC8E8B,
    0x40022D477A6FC63B,
    0x400213BC9D04BEB3,
    0x4001FA9FC2E2CB18,
    0x4001E1EBFBE4A036,
    0x4001C99CA9719877,
    0x4001B1AD777F2157,
    0x40019A1A564EDD5A,
    0x400182DF74D203F5,
    0x40016BF93B9DE06E,
    0x4001556448601F9D,
    0x40013F1D69C3FAB5,
    0x400129219BBB4E64,
    0x4001136E04206156,
    0x4000FDFFEFA690B1,
    0x4000E8D4CF115674,
    0x4000D3EA34AA2DF8,
    0x4000BF3DD1EEC4F6,
    0x4000AACD7571B159,
    0x4000969708E892CF,
    0x400082988F631E78,
    0x40006ED023A716B0,
    0x40005B3BF6ADA3AC,
    0x400047DA4E3EE5DB,
    0x400034A983A8F2A6,
    0x400021A8028FB929,
    0x40000ED447D3903D,
    0x3FFFF859C118D567,
    0x3FFFD360D22FC6AE,
    0x3FFFAEBB187101B4,
    0x3FFF8A6604897644,
    0x3FFF665F20C8DFF6,
    0x3FFF42A40FB72BC7,
    0x3FFF1F328AC23146,
    0x3FFEFC086101CA9B,
    0x3FFED923761084F7,
    0x3FFEB681C0F74C90,
    0x3FFE94214B2A9C5C,
    0x3FFE72002F97DB41,
    0x3FFE501C99C1AE6F,
    0x3FFE2E74C4EA23A7,
    0x3FFE0D06FB49AE97,
    0x3FFDEBD195520A7C,
    0x3FFDCAD2F8FC251E,
    0x3FFDAA0999204A4B,
    0x3FFD8973F4D7D74A,
    0x3FFD691096E7CC91,
    0x3FFD48DE1533A17E,
    0x3FFD28DB1037CA20,
    0x3FFD0906328B6A36,
    0x3FFCE95E3068BAC8,
    0x3FFCC9E1C73BB0E8,
    0x3FFCAA8FBD367CCB,
    0x3FFC8B66E0EB7FFE,
    0x3FFC6C6608EC60B3,
    0x3FFC4D8C136DE691,
    0x3FFC2ED7E5F05367,
    0x3FFC10486CEBEFA0,
    0x3FFBF1DC9B818747,
    0x3FFBD3936B2E992B,
    0x3FFBB56BDB84FDBB,
    0x3FFB9764F1E5CF4E,
    0x3FFB797DB93F60FE,
    0x3FFB5BB541CE149D,
    0x3FFB3E0AA0DFE35D,
    0x3FFB207CF09A6F7B,
    0x3FFB030B4FC377FC,
    0x3FFAE5B4E18B89DA,
    0x3FFAC878CD5ACC32,
    0x3FFAAB563E9FC72D,
    0x3FFA8E4C64A00722,
    0x3FFA715A724A7F49,
    0x3FFA547F9E0B90EC,
    0x3FFA37BB21A29D7E,
    0x3FFA1B0C39F90B73,
    0x3FF9FE7226FAA6E8,
    0x3FF9E1EC2B6F486C,
    0x3FF9C5798CD5AD43,
    0x3FF9A919933F6D92,
    0x3FF98CCB892DFDBF,
    0x3FF9708EBB70A936,
    0x3FF954627903758C,
    0x3FF9384612EEDDB8,
    0x3FF91C38DC2855BC,
    0x3FF9003A297387BC,
    0x3FF8E44951443C0A,
    0x3FF8C865ABA0DE35,
    0x3FF8AC8E92059191,
    0x3FF890C35F47C82F,
    0x3FF875036F7A4F7C,
    0x3FF8594E1FD1C627,
    0x3FF83DA2CE896F30,
    0x3FF82200DAC85642,
    0x3FF80667A486B99B,
    0x3FF7EAD68C73AE12,
    0x3FF7CF4CF3DAF1D6,
    0x3FF7B3CA3C8AE292,
    0x3FF7984DC8BA8BC9,
    0x3FF77CD6FAEFC22C,
    0x3FF7616535E540AD,
    0x3FF745F7DC70BC13,
    0x3FF72A8E5168E1A6,
    0x3FF70F27F78B3573,
    0x3FF6F3C43161C483,
    0x3FF6D86261289F28,
    0x3FF6BD01E8B30F35,
    0x3FF6A1A229507DCE,
    0x3FF6864283B0FBF5,
    0x3FF66AE257C960D1,
    0x3FF64F8104B6F00A,
    0x3FF6341DE8A27A3F,
    0x3FF618B860A2E8FD,
    0x3FF5FD4FC89F270D,
    0x3FF5E1E37B2F5543,
    0x3FF5C672D17D3B46,
    0x3FF5AAFD2323E2F9,
    0x3FF58F81C60E4C4A,
    0x3FF574000E552642,
    0x3FF558774E1B7924,
    0x3FF53CE6D56A2C3D,
    0x3FF5214DF20A50D8,
    0x3FF505ABEF5E1A6D,
    0x3FF4EA0016386A9C,
    0x3FF4CE49ACB2D5FD,
    0x3FF4B287F6020506,
    0x3FF496BA3248525E,
    0x3FF47ADF9E6685EA,
    0x3FF45EF773CA8993,
    0x3FF44300E83BF25A,
    0x3FF426FB2DA63591,
    0x3FF40AE571E05F24,
    0x3FF3EEBEDE721AAC,
    0x3FF3D2869855DD80,
    0x3FF3B63BBFB7FC17,
    0x3FF399DD6FB270E9,
    0x3FF37D6ABE05165E,
    0x3FF360E2BACA1034,
    0x3FF3444470261B6A,
    0x3FF3278EE1F4755F,
    0x3FF30AC10D6E0469,
    0x3FF2EDD9E8CB647F,
    0x3FF2D0D862E172A1,
    0x3FF2B3BB62B7E880,
    0x3FF29681C7199017,
    0x3FF2792A661D8BCD,
    0x3FF25BB40CA92399,
    0x3FF23E1D7DE97A08,
    0x3FF2206572C47D18,
    0x3FF2028A99405611,
    0x3FF1E48B93E088DC,
    0x3FF1C666F8F7DEB3,
    0x3FF1A81B51EE20A3,
    0x3FF189A71A788C7E,
    0x3FF16B08BFC3D191,
    0x3FF14C3E9F8E41D8,
    0x3FF12D470730BF74,
    0x3FF10E203294C4BD,
    0x3FF0EEC84B15B64D,
    0x3FF0CF3D664B796D,
    0x3FF0AF7D84BC0D06,
    0x3FF08F8690719EFD,
    0x3FF06F565B7249F9,
    0x3FF04EEA9E164ED4,
    0x3FF02E40F5393759,
    0x3FF00D56E041DB88,
    0x3FEFD8537DF97990,
    0x3FEF956D9E87202A,
    0x3FEF51F654D83C87,
    0x3FEF0DE784EFA593,
    0x3FEEC93ABDF8C393,
    0x3FEE83E93379AD06,
    0x3FEE3DEBB5D2292B,
    0x3FEDF73AA9F0AE8B,
    0x3FEDAFCE0022EDED,
    0x3FED679D29E3510D,
    0x3FED1E9F0E7FE5F7,
    0x3FECD4C9FE7151CA,
    0x3FEC8A13A531630B,
    0x3FEC3E70F95872E0,
    0x3FEBF1D62ABEA23B,
    0x3FEBA4368E51BB30,
    0x3FEB5584874191DA,
    0x3FEB05B16D127FD5,
    0x3FEAB4AD6E0F24BA,
    0x3FEA62676D76D6F7,
    0x3FEA0ECCDCA3AB9A,
    0x3FE9B9C98E37C43D,
    0x3FE96347822B1819,
    0x3FE90B2EA94DC2AA,
    0x3FE8B1649E7A632D,
    0x3FE855CC5341F025,
    0x3FE7F845AD45D398,
    0x3FE798AD10B200F2,
    0x3FE736DAD345C6B7,
    0x3FE6D2A291FECA72,
    0x3FE66BD261A2377E,
    0x3FE60231CFD82F9B,
    0x3FE59580A70673C9,
    0x3FE5257562196C1C,
    0x3FE4B1BB363C898D,
    0x3FE439EF8DFE170A,
    0x3FE3BD9EC1A11C06,
    0x3FE33C3FC055E9ED,
    0x3FE2B52E38621B30,
    0x3FE227A28F78456A,
    0x3FE192A6973F450A,
    0x3FE0F5053B004B4E,
    0x3FE04D32278C832E,
    0x3FDF32482D4807A6,
    0x3FDDAC2F5A6F3120,
    0x3FDC004D2F328D93,
    0x3FDA230C2E46389E,
    0x3FD801FCE827FAC5,
    0x3FD57CB9383AE550,
    0x3FD250AF3C200A69,
    0x3FCB8D0BE3D69918,
    0x0000000000000000,
];

const ZIG_X: [f64; LAYERS + 1] = {
    let mut x = [0.0; LAYERS + 1];
    let mut i = 0;
    while i <= LAYERS {
        x[i] = f64::from_bits(ZIG_X_BITS[i]);
        i += 1;
    }
    x
};

/// Fast-accept ratios `x[i+1] / x[i]` (exactly rounded divisions, the same on every target).
const ZIG_RATIO: [f64; LAYERS] = {
    let mut r = [0.0; LAYERS];
    let mut i = 0;
    while i < LAYERS {
        r[i] = ZIG_X[i + 1] / ZIG_X[i];
        i += 1;
    }
    r
};

/// A block's random stream: 64-bit words, uniforms, and standard normal variates by the
/// ziggurat method (ZIGNOR, 256 layers): one word and a multiply for ~99% of normals; the rare
/// wedge and tail cases use `libm`, so every target agrees.
pub struct Normals<R> {
    rng: R,
}

impl Normals<BlockStream> {
    /// Fills `words` with the stream's next `u64`s, as many `next_u64` calls would.
    pub fn fill_words(&mut self, words: &mut [u64]) {
        self.rng.fill_u64(words)
    }
}

impl<R: Rng> Normals<R> {
    pub fn new(rng: R) -> Self {
        Normals { rng }
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
    ///
    /// The first attempt is straight-line code and the retry loop lives in a cold function:
    /// a loop here would put a second loop header (a fuel and an epoch check in Wasm) on every
    /// draw of every caller's loop. The draws and their order are those of the plain loop.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let (i, u) = self.attempt();
        if u.abs() < ZIG_RATIO[i] {
            return u * ZIG_X[i];
        }
        self.normal_after_rejection(i, u)
    }

    /// Fills `out` with standard normal variates: the draws `normal` would give, in order. A
    /// loop that then only reads them has no call in it, so cranelift can keep its floats in
    /// registers (a call, even on a cold path, spills every float live across the loop). Four
    /// draws a loop step: in Wasm, fuel and interruption are checked once per loop step.
    #[inline]
    pub fn fill(&mut self, out: &mut [f64]) {
        let (quads, rest) = out.as_chunks_mut::<4>();
        for quad in quads {
            for z in quad {
                *z = self.normal();
            }
        }
        for z in rest {
            *z = self.normal();
        }
    }

    /// One ziggurat attempt: a layer and a uniform in [-1, 1).
    ///
    /// The uniform is `2 m 2^-53 - 1` for the top 53 bits `m`, computed as `(m - 2^52) 2^-52`:
    /// every step of both is exact, so they are the same number, but this one converts a signed
    /// integer (Wasm's unsigned conversion compiles to a test and a branch) and saves an add.
    #[inline(always)]
    fn attempt(&mut self) -> (usize, f64) {
        let bits = self.next_u64();
        let centred = (bits >> 11) as i64 - (1 << 52);
        ((bits & 0xFF) as usize, centred as f64 * TWO_POW_MINUS_52)
    }

    #[cold]
    #[inline(never)]
    fn normal_after_rejection(&mut self, mut i: usize, mut u: f64) -> f64 {
        loop {
            if let Some(z) = self.slow_path(i, u) {
                return z;
            }
            (i, u) = self.attempt();
            if u.abs() < ZIG_RATIO[i] {
                return u * ZIG_X[i];
            }
        }
    }

    #[cold]
    fn slow_path(&mut self, i: usize, u: f64) -> Option<f64> {
        if i == 0 {
            return Some(self.tail(u < 0.0));
        }
        let x = u * ZIG_X[i];
        let f0 = libm::exp(-0.5 * (ZIG_X[i] * ZIG_X[i] - x * x));
        let f1 = libm::exp(-0.5 * (ZIG_X[i + 1] * ZIG_X[i + 1] - x * x));
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

    /// The attempt's uniform against the plain formula, at the ends, around zero and at random.
    #[test]
    fn attempt_uniform_is_the_plain_formula() {
        let plain = |bits: u64| 2.0 * ((bits >> 11) as f64 * TWO_POW_MINUS_53) - 1.0;
        let mut words: Vec<u64> =
            vec![0, u64::MAX, 1 << 63, (1 << 63) - 1, (1 << 63) + (1 << 11), (1 << 63) - (1 << 11)];
        let mut g = block_rng(5, 2);
        words.extend((0..100_000).map(|_| g.next_u64()));
        for bits in words {
            let mut n = Normals::new(Fixed(bits));
            let (i, u) = n.attempt();
            assert_eq!((i, u.to_bits()), ((bits & 0xFF) as usize, plain(bits).to_bits()), "{bits:#x}");
        }
    }

    /// A generator that always gives the same word.
    struct Fixed(u64);

    impl rand_core::TryRng for Fixed {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.0 as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }

    #[test]
    fn ziggurat_table_matches_its_recurrence() {
        let mut x = [0.0f64; LAYERS + 1];
        let mut f = libm::exp(-0.5 * ZIG_R * ZIG_R);
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        for i in 2..LAYERS {
            x[i] = (-2.0 * libm::log(ZIG_V / x[i - 1] + f)).sqrt();
            f = libm::exp(-0.5 * x[i] * x[i]);
        }
        assert_eq!(x.map(f64::to_bits), ZIG_X_BITS);
        let table = ZIG_X;
        assert_eq!(table[LAYERS], 0.0);
        assert!(table.windows(2).skip(1).all(|w| w[0] > w[1]), "edges must decrease");
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
