//! Standard normals without data-dependent branches: Wichura's AS241 (PPND16) quantile over
//! lanes, fed by 53 random bits a draw.
//!
//! AS241 has three regions, each a rational of degree 7/7: the centre `|p - 1/2| <= 0.425` in
//! `0.180625 - (p - 1/2)^2`, and two tails in `s = sqrt(-ln min(p, 1 - p))`, split at `s = 5`.
//! Every lane computes `ln` and `sqrt` and one rational whose variable and coefficients are
//! selected per lane, so all lanes run the same instructions; each lane's operations are those
//! of the scalar `special::normal_quantile` for its region, in the same order, so the bits are
//! the same too.
//!
//! A draw takes a `u64` and uses its top 53 bits: the first is the sign, the other 52 give the
//! lower-tail probability `p = (m + 1/2) 2^-53` in (0, 1/2), exactly (an odd multiple of 2^-54),
//! and the normal is `±quantile(p)`. So the distribution is symmetric to the bit, its grid of
//! probabilities is uniform (2^-53 apart), and the extremes are `±quantile(2^-54) = ±8.29`.

use super::lanes::{F64s, Mask, U64s};
use super::ln::{ln, ln_of_normal};
use crate::special::{A, B, C, D, E, F};

const TWO_POW_MINUS_53: f64 = 1.0 / 9_007_199_254_740_992.0;
const LOW_52_BITS: u64 = (1 << 52) - 1;
const SIGN_BIT: u64 = 1 << 63;

/// One coefficient per lane: `central`'s, else the far tail's, else the near tail's.
#[inline(always)]
fn pick<const N: usize>(central: Mask<N>, far: Mask<N>, centre: f64, far_tail: f64, near_tail: f64) -> F64s<N> {
    central.select(F64s::splat(centre), far.select(F64s::splat(far_tail), F64s::splat(near_tail)))
}

/// The standard normal quantile for `p` in (0, 1/2] (so at most 0), given `ln(p)`.
///
/// The logarithm comes as a value, not as a function to call: a function passed in would be
/// called through a shim that is not inlined, and so compiled without the caller's
/// `#[target_feature]`s (the generator measured 3x slower under AVX-512).
#[inline(always)]
fn lower_quantile<const N: usize>(p: F64s<N>, ln_p: F64s<N>) -> F64s<N> {
    let q = p - 0.5;
    let central = q.ge(F64s::splat(-0.425));
    let s = (-ln_p).sqrt();
    let far = s.gt(F64s::splat(5.0));
    let t = central.select(0.180_625 - q * q, s - far.select(F64s::splat(5.0), F64s::splat(1.6)));
    // Horner from the leading coefficient: the scalar fold's first step, 0 * t + c7, is c7.
    let mut numerator = pick(central, far, A[7], E[7], C[7]);
    let mut denominator = pick(central, far, B[7], F[7], D[7]);
    for k in (0..7).rev() {
        numerator = numerator * t + pick(central, far, A[k], E[k], C[k]);
        denominator = denominator * t + pick(central, far, B[k], F[k], D[k]);
    }
    // The tails' quantile is -(P / Q), which is (-P) / Q to the bit.
    central.select(q * numerator, -numerator) / denominator
}

/// The standard normal quantile `Φ⁻¹(p)` per lane, bit-identical to
/// `special::normal_quantile`: NaN outside (0, 1), accurate to a few ulp down to `p = 1e-300`.
///
/// The upper half is folded onto the lower: `1 - p` is exact there, and so is
/// `(1 - p) - 1/2 = -(p - 1/2)`, so the central formula sees `-q` and gives `-x` exactly.
#[inline(always)]
pub fn normal_quantile<const N: usize>(p: F64s<N>) -> F64s<N> {
    let upper = p.gt(F64s::splat(0.5));
    let lower_p = upper.select(1.0 - p, p);
    let lower = lower_quantile(lower_p, ln(lower_p));
    let x = upper.select(-lower, lower);
    (p.gt(F64s::splat(0.0)) & p.lt(F64s::splat(1.0))).select(x, F64s::splat(f64::NAN))
}

/// One standard normal per lane from a uniformly random `u64` (its top 53 bits).
#[inline(always)]
pub fn normal_from_word<const N: usize>(word: U64s<N>) -> F64s<N> {
    let m = word.shr::<11>() & U64s::splat(LOW_52_BITS);
    let p = (m.small_to_f64() + 0.5) * TWO_POW_MINUS_53;
    // p >= 2^-54: a normal double.
    let lower = lower_quantile(p, ln_of_normal(p));
    F64s::from_bits(lower.to_bits() ^ (word & U64s::splat(SIGN_BIT)))
}

/// The probability a word maps to and its sign, for the tests: `normal_from_word(w)` is
/// `-quantile(p)` when the sign bit is set, else `quantile(p)`.
#[cfg(test)]
pub(super) fn word_probability(word: u64) -> (f64, bool) {
    ((((word >> 11) & LOW_52_BITS) as f64 + 0.5) * TWO_POW_MINUS_53, word >> 63 == 1)
}
