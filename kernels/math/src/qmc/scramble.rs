//! Hash-based Owen scrambling of 32-bit Sobol coordinates, the seeds for it, and the map into
//! (0, 1).

/// Nested uniform (Owen) scrambling of one coordinate, by the hash-based method of Burley,
/// "Practical Hash-based Owen Scrambling" (JCGT 9(4), 2020): reverse the bits, apply a
/// Laine–Karras-style permutation, reverse back.
///
/// The permutation is Nathan Vegdahl's improved LK hash ("Building a Better LK Hash",
/// psychopath.io, 2021, in its final form after Matt Pharr's report, with the seed-dependent
/// odd multiplier), the one pbrt-v4 (`FastOwenScrambler`) and Blender Cycles use. It scrambles
/// more evenly than the Laine–Karras constants (`0x6c50b47c`, `0xb82f1e52`, `0xc7afe638`,
/// `0x8d22f6e6`) that Burley's paper uses.
///
/// Why it is an Owen scramble: after the reversal, digit `k` of `x` (from the top) is bit
/// `k - 1` (from the bottom), and every step — `+ seed`, `* odd`, `^= v * even` — makes bit
/// `k` of its result depend on bits `0..=k` of its input only (carries run upwards). So digit
/// `k` of the output is digit `k` of the input flipped by a function of the seed and the
/// digits above it: each dyadic interval's two halves are swapped or not, at every level, as
/// the seed decides. Each step is invertible (`^= v * even` is solved bit by bit from the
/// bottom), so the scramble is a bijection of `u32`, and two inputs that share their top `k`
/// digits share their top `k` output digits. The flips are a hash of the seed rather than
/// independent coin tosses, so this stands in for a fully random Owen scramble; the tests
/// check that each digit is flipped for half the seeds.
#[inline]
pub fn owen_scramble(x: u32, seed: u32) -> u32 {
    let mut v = x.reverse_bits();
    v ^= v.wrapping_mul(0x3d20_adea);
    v = v.wrapping_add(seed);
    v = v.wrapping_mul((seed >> 16) | 1);
    v ^= v.wrapping_mul(0x0552_6c56);
    v ^= v.wrapping_mul(0x53a2_2864);
    v.reverse_bits()
}

/// The scramble seed of coordinate `dimension` (0-based, as in [`super::Sobol::point`]'s
/// output) in randomisation `randomisation` of the job seeded with `job_seed`.
///
/// A SplitMix64 stream: output number `2^32 randomisation + dimension + 1` of a stream
/// started from the mixed job seed. Distinct `(randomisation, dimension)` pairs give distinct 64-bit inputs to
/// the SplitMix64 finaliser, a bijection that mixes every input bit into every output bit, so
/// each randomisation and each coordinate gets an independent-looking scramble. The job seed
/// goes through the finaliser first, under a key of its own: `rng`'s ChaCha keys are outputs
/// 1 to 4 of the plain SplitMix64 stream of the same seed, and the scramble seeds must not
/// repeat them.
pub fn scramble_seed(job_seed: u64, randomisation: u32, dimension: u32) -> u32 {
    let stream = mix64(job_seed ^ SCRAMBLE_KEY);
    let position = ((u64::from(randomisation) << 32) | u64::from(dimension)).wrapping_add(1);
    (mix64(stream.wrapping_add(position.wrapping_mul(GOLDEN_GAMMA))) >> 32) as u32
}

/// Coordinate `x` (32 digits) as the midpoint of its cell, `(x + 0.5) / 2^32`: never 0 or 1,
/// so a normal quantile of it is finite, within `±6.338` (`Φ^(-1)(2^-33)`), which cuts off
/// a tail probability of `1.2e-10` each side.
///
/// The midpoints are symmetric, so a uniform `x` has mean exactly 1/2 (the cell's left end,
/// `x / 2^32`, would be low by `2^-33`). What remains is the midpoint rule's error on cells
/// `2^-32` wide: negligible for a smooth integrand, and for a normal quantile dominated by
/// the two end cells, about their `1.2e-10` tail probability times the integrand there; far
/// below any Monte Carlo error at a feasible number of points. [`to_unit_fine`] takes it
/// down to the resolution of an `f64`.
#[inline]
pub fn to_unit(x: u32) -> f64 {
    (f64::from(x) + 0.5) * TWO_POW_MINUS_32 // exact: x + 0.5 has 33 significant bits
}

/// Coordinate `x` refined to 52 digits, as the midpoint `(2k + 1) / 2^53` of the cell `k`
/// whose top 32 digits are `x`: uniform on `2^52` cells if `x` is, in `(0, 1)` with a normal
/// quantile within `±8.21` (`Φ^(-1)(2^-53)`). Pass the same `seed` as to [`owen_scramble`].
///
/// Why it is still an Owen scramble: the points have 32 digits and zeros below them, and a
/// nested uniform scramble carried on to digit 52 flips each of those zeros by a random
/// function of the seed and the digits above it; within one randomisation no two of the
/// first `2^32` points share their top 32 digits in a coordinate, so the 20 new digits are
/// fresh random bits for each point. A hash of `(seed, x)` stands in for them. The net
/// property lives in the top 32 digits, which this keeps; a cell is `2^-52` wide, the finest
/// grid on which the midpoints `(2k + 1) / 2^53` are all exact `f64`s.
#[inline]
pub fn to_unit_fine(x: u32, seed: u32) -> f64 {
    let low = mix64(((u64::from(seed) << 32) | u64::from(x)) ^ FILL_KEY) >> (64 - FILL_BITS);
    let cell = (u64::from(x) << FILL_BITS) | low;
    (2 * cell + 1) as f64 * TWO_POW_MINUS_53
}

const TWO_POW_MINUS_32: f64 = 1.0 / (1u64 << 32) as f64;
const TWO_POW_MINUS_53: f64 = 1.0 / (1u64 << 53) as f64;
/// Digits [`to_unit_fine`] adds below the 32 of a coordinate.
const FILL_BITS: u32 = 52 - 32;
/// SplitMix64's increment, `2^64 / φ` made odd.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// Keys that keep the scramble seeds and the filled digits apart from each other and from
/// `rng`'s streams (arbitrary: the first 64 bits of the fractions of `π` and `e`).
const SCRAMBLE_KEY: u64 = 0x243F_6A88_85A3_08D3;
const FILL_KEY: u64 = 0xB7E1_5162_8AED_2A6A;

/// The SplitMix64 finaliser (as in `rng`): a bijection of `u64` with full avalanche.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::normal_quantile;

    /// Test inputs: edge values and SplitMix64 outputs.
    fn words(n: usize) -> Vec<u32> {
        let mut w = vec![0, 1, u32::MAX, 1 << 31, (1 << 31) - 1, 0x5555_5555, 0xAAAA_AAAA];
        w.extend((0..n as u64).map(|i| (mix64(i.wrapping_mul(GOLDEN_GAMMA)) >> 32) as u32));
        w
    }

    fn seeds(n: u32) -> impl Iterator<Item = u32> {
        (0..n).map(|r| scramble_seed(7, r, 3))
    }

    /// The inverse of the scramble, step by step, to show it is a bijection.
    fn unscramble(y: u32, seed: u32) -> u32 {
        // y = v ^ v * c with c even: bit k of v * c depends on bits below k only, so each
        // pass fixes at least one more low bit of v.
        let unxor = |y: u32, c: u32| (0..32).fold(y, |v, _| y ^ v.wrapping_mul(c));
        // The inverse of an odd m mod 2^32 by Newton's iteration (each step doubles the bits).
        let inverse = |m: u32| (0..5).fold(m, |i, _| i.wrapping_mul(2u32.wrapping_sub(m.wrapping_mul(i))));
        let mut v = y.reverse_bits();
        v = unxor(v, 0x53a2_2864);
        v = unxor(v, 0x0552_6c56);
        v = v.wrapping_mul(inverse((seed >> 16) | 1));
        v = v.wrapping_sub(seed);
        v = unxor(v, 0x3d20_adea);
        v.reverse_bits()
    }

    #[test]
    fn owen_scramble_is_a_bijection() {
        for seed in seeds(64) {
            for x in words(1000) {
                assert_eq!(unscramble(owen_scramble(x, seed), seed), x, "seed {seed:#x}, x {x:#x}");
                assert_eq!(owen_scramble(unscramble(x, seed), seed), x, "seed {seed:#x}, y {x:#x}");
            }
        }
        // Exhaustively on the top 20 digits: they map to a permutation of all 2^20 prefixes.
        for seed in seeds(3) {
            let mut hit = vec![false; 1 << 20];
            for p in 0..1u32 << 20 {
                let q = owen_scramble(p << 12, seed) >> 12;
                assert!(!hit[q as usize], "seed {seed:#x}: prefix {q:#x} twice");
                hit[q as usize] = true;
            }
        }
    }

    #[test]
    fn owen_scramble_keeps_nested_intervals() {
        // Inputs that agree in their top k digits give outputs that agree in their top k digits.
        let w = words(400);
        for seed in seeds(16) {
            for pair in w.windows(2) {
                for k in 0..=32 {
                    let keep = if k == 0 { 0 } else { u32::MAX << (32 - k) };
                    let (x, y) = (pair[0], (pair[0] & keep) | (pair[1] & !keep));
                    let (sx, sy) = (owen_scramble(x, seed), owen_scramble(y, seed));
                    assert_eq!(sx & keep, sy & keep, "seed {seed:#x}, {x:#x} and {y:#x} share {k} digits");
                }
            }
        }
    }

    #[test]
    fn scrambled_coordinates_are_uniform_over_seeds() {
        // For a fixed x, the scrambled coordinate over independent seeds is uniform on (0, 1):
        // its mean is 1/2 with standard error 1/sqrt(12 n), and every digit is 1 with
        // probability 1/2 (standard error 1/(2 sqrt(n))). Six standard errors: a false alarm
        // once in 5e8 checks, and a scramble that left a digit alone or biased would fail.
        let n = 1 << 16;
        for x in words(8) {
            let (mut sum, mut ones) = (0.0, [0u32; 32]);
            for r in 0..n {
                let y = owen_scramble(x, scramble_seed(2024, r, 5));
                sum += to_unit(y);
                for (k, c) in ones.iter_mut().enumerate() {
                    *c += (y >> k) & 1;
                }
            }
            let nf = f64::from(n);
            let se = (1.0 / (12.0 * nf)).sqrt();
            assert!((sum / nf - 0.5).abs() < 6.0 * se, "x {x:#x}: mean {} (se {se:.1e})", sum / nf);
            for (k, &c) in ones.iter().enumerate() {
                let p = f64::from(c) / nf;
                assert!((p - 0.5).abs() < 6.0 * 0.5 / nf.sqrt(), "x {x:#x}: bit {k} is 1 with frequency {p}");
            }
        }
    }

    #[test]
    fn scramble_seeds_are_distinct_and_deterministic() {
        let mut all = Vec::new();
        for job in [0, 1, u64::MAX] {
            for r in 0..64 {
                for d in 0..64 {
                    all.push(scramble_seed(job, r, d));
                }
            }
        }
        assert_eq!(scramble_seed(1, 2, 3), scramble_seed(1, 2, 3));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        // 12 288 random 32-bit values repeat 0.018 times on average: allow one repeat.
        assert!(all.len() >= n - 1, "{} repeated seeds", n - all.len());
    }

    #[test]
    fn to_unit_is_in_the_open_interval_with_finite_quantiles() {
        let two32 = (1u64 << 32) as f64;
        assert_eq!(to_unit(0), 0.5 / two32);
        assert_eq!(to_unit(u32::MAX), 1.0 - 0.5 / two32);
        let z = normal_quantile(to_unit(0));
        assert!((z + 6.337_957_754_553_79).abs() < 1e-9, "{z}");
        assert_eq!(normal_quantile(to_unit(u32::MAX)), -z);

        // The fine grid's extreme midpoints, 2^-53 and 1 - 2^-53, bound its quantiles.
        let z = normal_quantile(2f64.powi(-53));
        assert!((z + 8.209_536_151_601_39).abs() < 1e-9, "{z}");
        for seed in seeds(4) {
            let (lowest, highest) = (to_unit_fine(0, seed), to_unit_fine(u32::MAX, seed));
            assert!(lowest >= 2f64.powi(-53) && highest <= 1.0 - 2f64.powi(-53), "{lowest} {highest}");
            for x in words(1000) {
                // The fine value stays in the cell of x, 2^-32 wide.
                let u = to_unit_fine(x, seed);
                assert_eq!((u * two32).floor(), f64::from(x), "x {x:#x}");
                let k = (u * (1u64 << 53) as f64) as u64;
                assert_eq!(k % 2, 1, "a midpoint (2k + 1) / 2^53, exactly");
            }
        }
    }

    #[test]
    fn filled_digits_are_uniform_within_the_cell() {
        // The position within the cell, over many cells, has mean 1/2 (se 1/sqrt(12 n)), and
        // different seeds fill the same cell differently.
        let two32 = (1u64 << 32) as f64;
        let xs = words(1 << 16);
        let nf = xs.len() as f64;
        for seed in seeds(4) {
            let mean = xs.iter().map(|&x| to_unit_fine(x, seed) * two32 - f64::from(x)).sum::<f64>() / nf;
            assert!((mean - 0.5).abs() < 6.0 / (12.0 * nf).sqrt(), "seed {seed:#x}: {mean}");
        }
        let differ = xs.iter().filter(|&&x| to_unit_fine(x, 1) != to_unit_fine(x, 2)).count();
        assert!(differ as f64 > 0.99 * nf, "{differ}");
    }
}
