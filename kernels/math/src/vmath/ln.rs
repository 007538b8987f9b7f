//! Natural logarithm over lanes: fdlibm's `e_log.c` (as the `libm` crate has it), branches
//! turned into selects, so each lane gives `libm::log`'s bits.
//!
//! `x = 2^k (1 + f)` with `sqrt(2)/2 < 1 + f < sqrt(2)` (subnormals scaled by 2^54 first),
//! `s = f / (2 + f)`, and `log(1 + f) = f - hfsq + s (hfsq + R(s^2))` with `R` of degree 7
//! in `s^2` evaluated as two interleaved halves, as libm does. The special cases (0, negative,
//! infinite or NaN `x`, and `x = 1`) are selected over the general formula, which every lane
//! computes.

use super::lanes::{F64s, U64s};

/// libm's constants by their bit patterns (the hex values its source gives beside the decimals).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593);
const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04);
const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359);
const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af);
const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de);
const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f);
const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244);

const TWO_POW_54: f64 = 18_014_398_509_481_984.0;
/// libm adds this to the high word so that the exponent field steps up at sqrt(2).
const SQRT2_SHIFT: u64 = (0x3ff0_0000 - 0x3fe6_a09e) << 32;
const SQRT2_HALF_HIGH: u64 = 0x3fe6_a09e << 32;
const HIGH_MANTISSA: u64 = 0x000f_ffff << 32;
const LOW_WORD: u64 = 0xffff_ffff;

/// `ln(x)` per lane, bit-identical to `libm::log` (NaNs aside: a NaN result is `f64::NAN`
/// for negative `x`, and `x` itself for a NaN `x`).
#[inline(always)]
pub fn ln<const N: usize>(x: F64s<N>) -> F64s<N> {
    // Positive subnormals (the other lanes it catches are replaced below).
    let subnormal = x.lt(F64s::splat(f64::MIN_POSITIVE));
    let scaled = subnormal.select(x * TWO_POW_54, x);
    let general = ln_of_normal_scaled(scaled, subnormal.select(F64s::splat(54.0), F64s::splat(0.0)));
    let result = x.eq(F64s::splat(1.0)).select(F64s::splat(0.0), general);
    // +inf and NaN give themselves.
    let result = (!x.lt(F64s::splat(f64::INFINITY))).select(x, result);
    let result = x.lt(F64s::splat(0.0)).select(F64s::splat(f64::NAN), result);
    x.eq(F64s::splat(0.0)).select(F64s::splat(f64::NEG_INFINITY), result)
}

/// `ln(x)` for positive, finite, normal `x`: libm's general formula alone, without the
/// selects for the other cases (the normal generator's probabilities are all such).
#[inline(always)]
pub(super) fn ln_of_normal<const N: usize>(x: F64s<N>) -> F64s<N> {
    ln_of_normal_scaled(x, F64s::splat(0.0))
}

/// `ln(x 2^-scale)` for `x` positive, finite and normal.
#[inline(always)]
fn ln_of_normal_scaled<const N: usize>(x: F64s<N>, scale: F64s<N>) -> F64s<N> {
    let bits = x.to_bits();
    let shifted = bits + U64s::splat(SQRT2_SHIFT);
    // The exponent as libm's integer k converted: small integers, so every step is exact.
    let k = shifted.shr::<52>().small_to_f64() - 1023.0 - scale;
    let reduced =
        ((shifted & U64s::splat(HIGH_MANTISSA)) + U64s::splat(SQRT2_HALF_HIGH)) | (bits & U64s::splat(LOW_WORD));

    let f = F64s::from_bits(reduced) - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    s * (hfsq + r) + k * LN2_LO - hfsq + f + k * LN2_HI
}
