//! Accuracy of the vector math against `libm` and a 60-digit reference, bit-identity across
//! widths and instruction sets, and the distribution of the normal generator.

use super::normal::word_probability;
use super::quantile_reference::QUANTILES;
use super::*;
use crate::rng::block_rng;
use crate::special;

/// Distance in representable doubles (0 for two NaNs, `u64::MAX` for a NaN and a number).
fn ulps(a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() { 0 } else { u64::MAX };
    }
    // Doubles ordered as integers: negative ones mirrored below zero (+0 and -0 both at 0).
    let ordered = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN.wrapping_sub(bits) } else { bits }
    };
    ordered(a).abs_diff(ordered(b))
}

/// `x` moved `steps` doubles up (down for negative steps), through zero and to infinity.
fn step(x: f64, steps: i32) -> f64 {
    (0..steps.unsigned_abs()).fold(x, |x, _| if steps > 0 { x.next_up() } else { x.next_down() })
}

/// `x` and its neighbours, three doubles either side.
fn around(x: f64) -> impl Iterator<Item = f64> {
    (-3..=3).map(move |k| step(x, k))
}

fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut rng = block_rng(seed, 0);
    (0..n).map(|_| rng.next_u64()).collect()
}

/// Uniform in [lo, hi) from the top 53 bits of each word.
fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    words(seed, n).into_iter().map(|w| lo + (hi - lo) * ((w >> 11) as f64 / (1u64 << 53) as f64)).collect()
}

const SPECIALS: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -f64::NAN,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    f64::MAX,
    f64::MIN,
];

/// One of `Simd`'s in-place slice functions.
type SliceFn = fn(Simd, &mut [f64]);

/// Worst ulp distance between `f` applied by `simd` and `reference`, with its input.
fn worst(simd: Simd, apply: SliceFn, reference: impl Fn(f64) -> f64, inputs: &[f64]) -> (u64, f64) {
    let mut out = inputs.to_vec();
    apply(simd, &mut out);
    inputs
        .iter()
        .zip(&out)
        .map(|(&x, &y)| (ulps(y, reference(x)), x))
        .fold((0, f64::NAN), |a, b| if b.0 > a.0 { b } else { a })
}

fn exp_inputs() -> Vec<f64> {
    let mut xs: Vec<f64> = SPECIALS.to_vec();
    // libm's case edges: overflow, underflow, the subnormal range, |x| = 0.5 ln2, 1.5 ln2, 2^-28.
    let edges = [709.782_712_893_384, -745.133_219_101_941_1, -708.396_418_532_264_1, -744.44];
    for edge in edges {
        xs.extend(around(edge));
    }
    for high in [0x3fd6_2e42u64, 0x3fd6_2e43, 0x3ff0_a2b2, 0x3ff0_a2b1, 0x3e30_0000, 0x3e30_0001, 0x4086_232b] {
        for sign in [0, 1u64 << 63] {
            xs.extend(around(f64::from_bits(sign | high << 32)));
        }
    }
    // The whole finite range, uniformly and by bit pattern (every exponent, tiny |x|, NaNs).
    xs.extend(uniform(1, 1_000_000, -750.0, 712.0));
    xs.extend(words(2, 500_000).into_iter().map(f64::from_bits));
    // Subnormal and near-underflow results.
    xs.extend(uniform(3, 300_000, -745.2, -708.0));
    // Small |x| on a log scale, where the reduction is skipped or k = ±1.
    xs.extend(uniform(4, 300_000, -60.0, 1.0).into_iter().zip(words(5, 300_000)).map(|(e, w)| {
        let x = 2f64.powf(e);
        if w & 1 == 1 { -x } else { x }
    }));
    xs
}

fn ln_inputs() -> Vec<f64> {
    let mut xs: Vec<f64> = SPECIALS.to_vec();
    xs.extend(around(1.0));
    xs.extend(around(std::f64::consts::SQRT_2));
    xs.extend(around(std::f64::consts::FRAC_1_SQRT_2));
    xs.extend(around(f64::MIN_POSITIVE));
    xs.extend(around(f64::MAX).filter(|x| x.is_finite()));
    // Every positive double by bit pattern (every exponent), then subnormals by mantissa.
    xs.extend(words(11, 1_000_000).into_iter().map(|w| f64::from_bits(w >> 1)));
    xs.extend(words(12, 200_000).into_iter().map(|w| f64::from_bits(w & ((1 << 52) - 1))));
    // Around 1, where ln is smallest, and negatives (NaN).
    xs.extend(uniform(13, 300_000, 0.7, 1.45));
    xs.extend(uniform(14, 100_000, -1e3, 0.0));
    xs
}

/// Every `Simd` but the natural ones: `Simd::best` is checked against libm on its own.
fn every_simd() -> Vec<Simd> {
    let all = Simd::all_available();
    assert!(all.contains(&Simd::best()), "the best Simd is one of all_available");
    all
}

#[test]
fn exp_is_libm_to_the_bit_over_its_whole_range() {
    let xs = exp_inputs();
    let (worst_ulps, at) = worst(Simd::best(), Simd::exp, libm::exp, &xs);
    assert_eq!(worst_ulps, 0, "vmath exp differs from libm::exp by {worst_ulps} ulp at {at:e} ({:#x})", at.to_bits());
    // Against the platform's exp, an independent implementation: both are within 1 ulp.
    let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let (worst_std, at) = worst(Simd::best(), Simd::exp, f64::exp, &finite);
    assert!(worst_std <= 1, "vmath exp is {worst_std} ulp from std's at {at:e}");
    let mut special = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 710.0, -746.0, -745.0];
    Simd::best().exp(&mut special);
    assert_eq!(special[..4], [1.0, 1.0, f64::INFINITY, 0.0]);
    assert!(special[4].is_nan());
    assert_eq!(special[5..7], [f64::INFINITY, 0.0]);
    assert!(special[7] > 0.0 && special[7] < f64::MIN_POSITIVE, "exp(-745) is subnormal: {:e}", special[7]);
}

#[test]
fn ln_is_libm_to_the_bit_from_subnormals_to_max() {
    let xs = ln_inputs();
    let (worst_ulps, at) = worst(Simd::best(), Simd::ln, libm::log, &xs);
    assert_eq!(worst_ulps, 0, "vmath ln differs from libm::log by {worst_ulps} ulp at {at:e} ({:#x})", at.to_bits());
    let (worst_std, at) = worst(Simd::best(), Simd::ln, f64::ln, &xs);
    assert!(worst_std <= 1, "vmath ln is {worst_std} ulp from std's at {at:e}");
    let mut special = [0.0, -0.0, 1.0, f64::INFINITY, -1.0, f64::NEG_INFINITY, f64::NAN, 5e-324];
    Simd::best().ln(&mut special);
    assert_eq!(special[..4], [f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0, f64::INFINITY]);
    assert!(special[4..7].iter().all(|x| x.is_nan()), "{special:?}");
    assert_eq!(special[7], -744.440_071_921_381_2);
}

fn quantile_inputs() -> Vec<f64> {
    let mut ps = vec![0.5, 0.075, 0.925, (-25f64).exp(), 1.0 - (-25f64).exp(), f64::MIN_POSITIVE, 5e-324, 1e-300];
    ps = ps.into_iter().flat_map(around).collect();
    ps.extend(uniform(21, 1_000_000, 0.0, 1.0));
    // Log-uniform down to 1e-300, and the same distances below 1 (as far as doubles resolve).
    let tails = uniform(22, 500_000, -300.0, -0.3);
    ps.extend(tails.iter().map(|e| 10f64.powf(*e)));
    ps.extend(tails.iter().map(|e| 1.0 - 10f64.powf(*e)));
    // Outside (0, 1): NaN.
    ps.extend([0.0, -0.0, 1.0, -1e-300, 1.0 + f64::EPSILON, 2.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    ps
}

#[test]
fn quantile_is_the_scalar_as241_to_the_bit() {
    let ps = quantile_inputs();
    let (worst_ulps, at) = worst(Simd::best(), Simd::normal_quantile, special::normal_quantile, &ps);
    assert_eq!(worst_ulps, 0, "vmath quantile differs from special::normal_quantile by {worst_ulps} ulp at p = {at:e}");
    let mut outside = [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY];
    Simd::best().normal_quantile(&mut outside);
    assert!(outside.iter().all(|x| x.is_nan()), "{outside:?}");
}

/// Error of `x` from the reference `hi + lo`, in ulps of `hi`.
fn ulp_error(x: f64, hi: f64, lo: f64) -> f64 {
    let ulp = hi.abs().next_up() - hi.abs();
    // x - hi is exact for the few-ulp errors measured here (Sterbenz).
    ((x - hi) - lo).abs() / ulp
}

/// AS241 against quantiles solved to 60 digits (`tools/normal_quantiles.py`), p from 1e-300
/// to 1 - 1e-16. Wichura gives the approximation a relative error of about 1e-16; evaluated in
/// doubles, each rational of degree 7/7 adds its roundings (two Horner sums, a product and a
/// quotient), and the tails those of ln and sqrt. Measured on this table: 4.1 ulp at worst in
/// the centre, 3.4 in the near tail (sqrt(-ln p) <= 5), 2.4 in the far tail down to 2^-54 (the
/// generator's range) and 5.8 beyond, at 1e-179; an offline sample of 100,000 central points
/// reached 5.7. 6 ulp is asserted: a wrong coefficient or region costs thousands.
#[test]
fn quantile_is_within_six_ulp_of_a_60_digit_reference_down_to_1e_300() {
    let mut xs: Vec<f64> = QUANTILES.iter().map(|&(p, _, _)| f64::from_bits(p)).collect();
    Simd::best().normal_quantile(&mut xs);
    let regions = ["centre", "near tail", "far tail to 2^-54", "far tail below 2^-54"];
    let mut worst = [(0.0f64, f64::NAN); 4];
    for (&(p, hi, lo), &x) in QUANTILES.iter().zip(&xs) {
        let p = f64::from_bits(p);
        let error = ulp_error(x, f64::from_bits(hi), f64::from_bits(lo));
        let tail = p.min(1.0 - p);
        let region = match (-tail.ln()).sqrt() {
            _ if (p - 0.5).abs() <= 0.425 => 0,
            s if s <= 5.0 => 1,
            _ if tail >= 2f64.powi(-54) => 2,
            _ => 3,
        };
        if error > worst[region].0 {
            worst[region] = (error, p);
        }
    }
    for (name, (error, p)) in regions.iter().zip(worst) {
        println!("quantile vs 60-digit reference, {name}: worst {error:.2} ulp at p = {p:e}");
    }
    assert!(QUANTILES.len() > 2000 && QUANTILES.iter().any(|&(p, _, _)| f64::from_bits(p) <= 1e-300));
    for (name, (error, p)) in regions.iter().zip(worst) {
        assert!(error <= 6.0, "{name}: {error} ulp at p = {p:e}");
    }
    // The reference itself, at quantiles known to 16 digits.
    let at_p =
        |p: f64| QUANTILES.iter().find(|&&(q, _, _)| f64::from_bits(q) == p).map(|&(_, hi, _)| f64::from_bits(hi));
    for (p, x) in [(0.975, 1.959_963_984_540_054), (1e-10, -6.361_340_902_404_056), (0.5, 0.0)] {
        let reference = at_p(p).unwrap_or(f64::NAN);
        assert!((reference - x).abs() <= 1e-15 * x.abs(), "reference {reference} at {p}, known {x}");
    }
}

#[test]
fn every_width_and_instruction_set_gives_the_same_bits() {
    let mut inputs: Vec<(&str, SliceFn, Vec<f64>)> = vec![
        ("exp", Simd::exp, exp_inputs()),
        ("ln", Simd::ln, ln_inputs()),
        ("quantile", Simd::normal_quantile, quantile_inputs()),
    ];
    // Lengths that leave a partial last step at every width.
    for (_, _, xs) in &mut inputs {
        xs.truncate(200_003);
    }
    let simds = every_simd();
    assert!(simds.len() >= 4, "at least the baseline at widths 1, 2, 4, 8");
    for (name, apply, xs) in &inputs {
        let mut scalar = xs.clone();
        apply(Simd::new(Isa::Baseline, Width::One).unwrap(), &mut scalar);
        for &simd in &simds {
            let mut out = xs.clone();
            apply(simd, &mut out);
            for (i, (a, b)) in scalar.iter().zip(&out).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{name} at {simd:?}, input {:e}", xs[i]);
            }
        }
    }
    let words = words(31, 100_007);
    let mut scalar = vec![0.0; words.len()];
    Simd::new(Isa::Baseline, Width::One).unwrap().normals_from_words(&words, &mut scalar).unwrap();
    for &simd in &simds {
        let mut out = vec![f64::NAN; words.len()];
        simd.normals_from_words(&words, &mut out).unwrap();
        assert!(scalar.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "normals at {simd:?}");
        // fill_normals draws the same words in order.
        let mut drawn = vec![f64::NAN; words.len()];
        simd.fill_normals(&mut block_rng(31, 0), &mut drawn);
        assert!(scalar.iter().zip(&drawn).all(|(a, b)| a.to_bits() == b.to_bits()), "fill_normals at {simd:?}");
    }
    println!("{} Simd variants: {:?}", simds.len(), simds);
}

#[test]
fn unavailable_isa_and_mismatched_lengths_are_errors() {
    for isa in Isa::ALL {
        assert_eq!(Simd::new(isa, Width::Four).is_ok(), isa.is_available());
    }
    let err = Simd::best().normals_from_words(&[1, 2, 3], &mut [0.0; 2]).unwrap_err();
    assert_eq!(err, LengthMismatch { words: 3, out: 2 });
    assert_eq!(err.to_string(), "3 random words for 2 normals: one word makes one normal");
    assert_eq!(Unavailable(Isa::Avx512).to_string(), "this CPU or build cannot run avx512 code");
}

#[test]
fn a_word_is_a_sign_and_a_lower_tail_probability() {
    let mut ws = words(41, 100_000);
    ws.extend([0, u64::MAX, 1 << 63, (1 << 63) - 1, 0x7ff, 0x800]);
    let mut out = vec![0.0; ws.len()];
    Simd::best().normals_from_words(&ws, &mut out).unwrap();
    for (&w, &z) in ws.iter().zip(&out) {
        let (p, negate) = word_probability(w);
        assert!(p > 0.0 && p < 0.5);
        let lower = special::normal_quantile(p);
        let expected = if negate { -lower } else { lower };
        assert_eq!(z.to_bits(), expected.to_bits(), "word {w:#x}");
    }
    // The extremes: p = 2^-54 either side, and the smallest |z| next to 1/2.
    let extreme = special::normal_quantile(2f64.powi(-54));
    assert_eq!(out[ws.len() - 6], extreme);
    assert!((extreme + 8.292_361).abs() < 1e-6, "{extreme}");
    assert_eq!(out[ws.len() - 4], -extreme);
    assert!(out[ws.len() - 5] > 0.0 && out[ws.len() - 5] < 1e-15);
    // The low 11 bits are not used.
    assert_eq!(out[ws.len() - 2], out[ws.len() - 6]);
    assert_ne!(out[ws.len() - 1], out[ws.len() - 6]);
}

#[test]
fn blocks_of_all_tails_none_and_every_length_agree_with_one_word_at_a_time() {
    // Words whose 52 probability bits are small are all tails (both signs); those near 1/2 none.
    let mixed = words(43, 700);
    let tails: Vec<u64> = mixed.iter().map(|w| w & (1 << 63 | ((1 << 58) - 1))).collect();
    let centre: Vec<u64> = mixed.iter().map(|w| w | 0x7000_0000_0000_0000).collect();
    for ws in [&mixed, &tails, &centre] {
        for len in (0..=ws.len()).filter(|len| len % 37 == 0 || (250..=260).contains(len) || *len < 20) {
            for simd in every_simd() {
                let mut out = vec![f64::NAN; len];
                simd.normals_from_words(&ws[..len], &mut out).unwrap();
                for (&w, z) in ws[..len].iter().zip(&out) {
                    let one = super::normal_from_word(U64s([w])).0[0];
                    assert_eq!(z.to_bits(), one.to_bits(), "word {w:#x} of {len} at {simd:?}");
                }
            }
        }
    }
    assert!(tails.iter().all(|&w| word_probability(w).0 < 0.075), "all tails");
    assert!(centre.iter().all(|&w| word_probability(w).0 > 0.4), "all central");
}

/// Raw-moment, tail-frequency and Kolmogorov-Smirnov statistics of a sample against N(0, 1).
struct Fit {
    /// |moment - expected| / standard error, for E z, E z^2, E z^3, E z^4.
    moment_sigmas: [f64; 4],
    /// |count - expected| / binomial sd, for z < -4, z < -3, z > 3, z > 4.
    tail_sigmas: [f64; 4],
    tail_counts: [usize; 4],
    ks_distance: f64,
    ks_p_value: f64,
}

impl Fit {
    fn of(mut z: Vec<f64>) -> Fit {
        let n = z.len() as f64;
        let mut sums = [0.0; 4];
        for &x in &z {
            let x2 = x * x;
            sums[0] += x;
            sums[1] += x2;
            sums[2] += x2 * x;
            sums[3] += x2 * x2;
        }
        // E z^k and Var z^k = E z^2k - (E z^k)^2 of the standard normal.
        let expected = [0.0, 1.0, 0.0, 3.0];
        let variance = [1.0, 2.0, 15.0, 96.0];
        let moment_sigmas = core::array::from_fn(|k| (sums[k] / n - expected[k]).abs() / (variance[k] / n).sqrt());
        let counts = [
            z.iter().filter(|&&x| x < -4.0).count(),
            z.iter().filter(|&&x| x < -3.0).count(),
            z.iter().filter(|&&x| x > 3.0).count(),
            z.iter().filter(|&&x| x > 4.0).count(),
        ];
        let probabilities = [
            special::normal_cdf(-4.0),
            special::normal_cdf(-3.0),
            special::normal_cdf(-3.0),
            special::normal_cdf(-4.0),
        ];
        let tail_sigmas = core::array::from_fn(|k| {
            let p = probabilities[k];
            (counts[k] as f64 - n * p).abs() / (n * p * (1.0 - p)).sqrt()
        });
        z.sort_by(f64::total_cmp);
        let ks_distance = z.iter().enumerate().fold(0.0f64, |d, (i, &x)| {
            let cdf = special::normal_cdf(x);
            d.max((i + 1) as f64 / n - cdf).max(cdf - i as f64 / n)
        });
        Fit {
            moment_sigmas,
            tail_sigmas,
            tail_counts: counts,
            ks_distance,
            ks_p_value: kolmogorov_p_value(ks_distance, n),
        }
    }

    fn worst_sigma(&self) -> f64 {
        self.moment_sigmas.iter().chain(&self.tail_sigmas).fold(0.0, |a, &b| a.max(b))
    }
}

/// P(D_n > d) for the Kolmogorov-Smirnov distance of n draws from the hypothesised law:
/// Kolmogorov's series at Stephens' corrected `(sqrt(n) + 0.12 + 0.11 / sqrt(n)) d`.
fn kolmogorov_p_value(d: f64, n: f64) -> f64 {
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let series: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            (if k % 2.0 == 1.0 { 2.0 } else { -2.0 }) * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    series.clamp(0.0, 1.0)
}

/// 4M draws from four ChaCha8 block streams: the moments and the tail frequencies beyond ±3
/// and ±4 within 5 standard errors, and a Kolmogorov-Smirnov p-value above 0.001. The streams
/// are fixed, so the outcome is too; the statistics' power is shown by the same checks
/// rejecting a sample 1% too wide.
#[test]
fn normals_have_standard_moments_tails_and_pass_kolmogorov_smirnov() {
    let per_block = 1_000_000;
    let mut z = vec![0.0; 4 * per_block];
    for (block, chunk) in z.chunks_mut(per_block).enumerate() {
        Simd::best().fill_normals(&mut block_rng(2024, block as u64), chunk);
    }
    let wide: Vec<f64> = z.iter().map(|x| x * 1.01).collect();
    let fit = Fit::of(z);
    println!(
        "4M normals: moment sigmas {:.2?}, tails (< -4, < -3, > 3, > 4) {:?} sigmas {:.2?}, KS D = {:.3e}, p = {:.3}",
        fit.moment_sigmas, fit.tail_counts, fit.tail_sigmas, fit.ks_distance, fit.ks_p_value
    );
    assert!(fit.worst_sigma() < 5.0, "moments {:?}, tails {:?}", fit.moment_sigmas, fit.tail_sigmas);
    assert!(fit.ks_p_value > 1e-3, "KS D = {}, p = {}", fit.ks_distance, fit.ks_p_value);

    let off = Fit::of(wide);
    println!("1% too wide: worst sigma {:.1}, KS p = {:.1e}", off.worst_sigma(), off.ks_p_value);
    assert!(off.worst_sigma() > 5.0 && off.ks_p_value < 1e-6, "the checks cannot tell a 1% wider normal");
}

#[test]
fn the_digest_is_the_same_for_every_simd_and_is_the_recorded_one() {
    let digests: Vec<(Simd, u64)> = every_simd().into_iter().map(|simd| (simd, digest(simd))).collect();
    println!("vmath digest {:#018x}", digests[0].1);
    for (simd, d) in &digests {
        assert_eq!(*d, DIGEST, "digest at {simd:?}: {d:#018x}, recorded {DIGEST:#018x}");
    }
}
