//! `exp` over lanes: fdlibm's `e_exp.c` (as the `libm` crate has it), branches turned into
//! selects, so each lane gives `libm::exp`'s bits.
//!
//! Reduction `x = k ln2 + r`, `|r| <= ln2 / 2`, with `k ln2` in two parts; the rational
//! `exp(r) = 1 + r + r c(r) / (2 - c(r))`, `c` a degree-5 polynomial in `r^2`; then `2^k`,
//! in two exact steps where `2^k` alone is not a normal double, so the result is rounded once
//! (subnormal results included). libm's cases on the high word of `|x|` become comparisons of
//! `|x|` with the doubles whose high words are the thresholds, and every lane computes the
//! general formula before the special cases (NaN, overflow, underflow, tiny `|x|`) are
//! selected over it.

use super::lanes::F64s;

/// libm's constants by their bit patterns (the hex values its source gives beside the decimals).
const LN2HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);

/// Above this, `exp` overflows: libm's 709.782712893383973096.
const OVERFLOW: f64 = f64::from_bits(0x4086_2e42_fefa_39ef);
/// Below this, `exp` underflows to 0: libm's -745.13321910194110842.
const UNDERFLOW: f64 = f64::from_bits(0xc087_4910_d52d_3051);

/// The smallest double whose high word is `high`: `|x| >= at_high_word(h)` is libm's
/// `hx >= h` for `|x|` not NaN.
const fn at_high_word(high: u64) -> f64 {
    f64::from_bits(high << 32)
}

/// `|x| >= 1.5 ln2`: `k` from `x / ln2`.
const BIG: f64 = at_high_word(0x3ff0_a2b2);
/// `|x| > 0.5 ln2`: `k = ±1` below `BIG`.
const REDUCED: f64 = at_high_word(0x3fd6_2e42 + 1);
/// `|x| <= 2^-28`: `exp(x) = 1 + x`.
const NOT_TINY: f64 = at_high_word(0x3e30_0000 + 1);

const TWO_POW_1023: f64 = f64::from_bits(0x7fe0_0000_0000_0000);
/// 2^-1022 * 2^53: scalbn's first step for exponents below -1022.
const TWO_POW_MINUS_969: f64 = f64::from_bits((1023 - 969) << 52);

/// Rounds to nearest (ties to even) by adding and removing 1.5 * 2^52, exact below 2^51.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// `trunc(t)` for `|t| < 2^51` (other lanes get a value a later select discards).
#[inline(always)]
fn trunc_small<const N: usize>(t: F64s<N>) -> F64s<N> {
    let nearest = (t + ROUNDER) - ROUNDER;
    let zero = F64s::splat(0.0);
    let one = F64s::splat(1.0);
    // Rounding to nearest moved away from zero by at most one half: step back towards zero.
    let too_high = t.ge(zero) & nearest.gt(t);
    let too_low = t.lt(zero) & nearest.lt(t);
    nearest - too_high.select(one, zero) + too_low.select(one, zero)
}

/// `2^k` for integral `k` in [-1022, 1023], built from its exponent field.
#[inline(always)]
fn pow2<const N: usize>(k: F64s<N>) -> F64s<N> {
    // k + 1023 + 2^52 has k + 1023 in its low mantissa bits; shifting them up to the exponent
    // field shifts the 2^52 out.
    F64s::from_bits((k + (1023.0 + 4_503_599_627_370_496.0)).to_bits().shl::<52>())
}

/// `e^x` per lane, bit-identical to `libm::exp`.
#[inline(always)]
pub fn exp<const N: usize>(x: F64s<N>) -> F64s<N> {
    let abs = x.abs();
    let zero = F64s::splat(0.0);
    let half = x.sign_bit_set().select(F64s::splat(-0.5), F64s::splat(0.5));
    let unit = x.sign_bit_set().select(F64s::splat(-1.0), F64s::splat(1.0));
    let k = abs
        .ge(F64s::splat(BIG))
        .select(trunc_small(INVLN2 * x + half), abs.ge(F64s::splat(REDUCED)).select(unit, zero));

    // With k = 0 this is libm's unreduced branch exactly: hi = x - 0 = x, lo = 0, r = x.
    let hi = x - k * LN2HI;
    let lo = k * LN2LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * (P2 + rr * (P3 + rr * (P4 + rr * P5))));
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);

    // scalbn(y, k): for k outside [-1022, 1023] an exact first step brings it inside.
    let below = k.lt(F64s::splat(-1022.0));
    let above = k.gt(F64s::splat(1023.0));
    let first_step = below.select(F64s::splat(-969.0), above.select(F64s::splat(1023.0), zero));
    let first_scale =
        below.select(F64s::splat(TWO_POW_MINUS_969), above.select(F64s::splat(TWO_POW_1023), F64s::splat(1.0)));
    let scaled = y * first_scale * pow2(k - first_step);

    let tiny = !abs.ge(F64s::splat(NOT_TINY));
    let result = tiny.select(1.0 + x, scaled);
    let result = x.lt(F64s::splat(UNDERFLOW)).select(zero, result);
    let result = x.gt(F64s::splat(OVERFLOW)).select(x * TWO_POW_1023, result);
    x.is_nan().select(x, result)
}
