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

use super::lanes::{F64s, U64s};
use super::ln::{ln, ln_of_normal};
use crate::special::{A, B, C, D, E, F};

const TWO_POW_MINUS_53: f64 = 1.0 / 9_007_199_254_740_992.0;
const LOW_52_BITS: u64 = (1 << 52) - 1;
const SIGN_BIT: u64 = 1 << 63;

/// The standard normal quantile for `p` in (0, 1/2] (so at most 0), given `ln(p)`: the
/// central rational where `|p - 1/2| <= 0.425`, else the tails'.
///
/// The logarithm comes as a value, not as a function to call: a function passed in would be
/// called through a shim that is not inlined, and so compiled without the caller's
/// `#[target_feature]`s (the generator measured 3x slower under AVX-512).
#[inline(always)]
fn lower_quantile<const N: usize>(p: F64s<N>, ln_p: F64s<N>) -> F64s<N> {
    let q = p - 0.5;
    q.ge(F64s::splat(-0.425)).select(central_quantile(q), tail_quantile(ln_p))
}

/// AS241's centre at `q = p - 1/2`: `q P(r) / Q(r)` in `r = 0.180625 - q^2`.
#[inline(always)]
fn central_quantile<const N: usize>(q: F64s<N>) -> F64s<N> {
    let t = 0.180_625 - q * q;
    // Horner from the leading coefficient: the scalar fold's first step, 0 * t + c7, is c7.
    let mut numerator = F64s::splat(A[7]);
    let mut denominator = F64s::splat(B[7]);
    for k in (0..7).rev() {
        numerator = numerator * t + F64s::splat(A[k]);
        denominator = denominator * t + F64s::splat(B[k]);
    }
    q * numerator / denominator
}

/// AS241's lower tail given `ln p`: `-P(t) / Q(t)` in `s = sqrt(-ln p)`, `t = s - 1.6` up to
/// `s = 5` and `s - 5` beyond. `-(P / Q)` is `(-P) / Q` to the bit.
#[inline(always)]
fn tail_quantile<const N: usize>(ln_p: F64s<N>) -> F64s<N> {
    let s = (-ln_p).sqrt();
    let far = s.gt(F64s::splat(5.0));
    let t = s - far.select(F64s::splat(5.0), F64s::splat(1.6));
    let mut numerator = far.select(F64s::splat(E[7]), F64s::splat(C[7]));
    let mut denominator = far.select(F64s::splat(F[7]), F64s::splat(D[7]));
    for k in (0..7).rev() {
        numerator = numerator * t + far.select(F64s::splat(E[k]), F64s::splat(C[k]));
        denominator = denominator * t + far.select(F64s::splat(F[k]), F64s::splat(D[k]));
    }
    -numerator / denominator
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
    let p = probability(word);
    // p >= 2^-54: a normal double.
    let lower = lower_quantile(p, ln_of_normal(p));
    F64s::from_bits(lower.to_bits() ^ (word & U64s::splat(SIGN_BIT)))
}

/// Words [`normals_from_words`] packs at a time: its indices fit in a `u8`, and its buffers
/// (4.3 KB) in L1.
const BLOCK: usize = 256;

/// `out[i] = normal_from_word(words[i])` for slices of one length, with the tails packed.
///
/// The centre covers 85% of draws, and needs neither the logarithm, the square root nor the
/// tail rational that `normal_from_word` computes in every lane. So a block
/// takes every draw as central first (a rational alone), then packs the tails' probabilities
/// together without a branch (every slot is written; the count moves on only past a tail),
/// runs the tail formula over the packed lanes alone, and writes those results over their
/// central ones. Each lane's operations, and so its bits, are `normal_from_word`'s.
#[inline(always)]
pub(super) fn normals_from_words<const N: usize>(words: &[u64], out: &mut [f64]) {
    let mut probabilities = [0.0; BLOCK];
    // Probabilities of (0, 1/2] in every lane, as the tail pass computes whole steps.
    let mut tails = [0.25; BLOCK];
    let mut tail_index = [0u8; BLOCK];
    for (words, out) in words.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let n = words.len();
        let p = &mut probabilities[..n];
        let (word_steps, word_rest) = words.as_chunks::<N>();
        let (p_steps, p_rest) = p.as_chunks_mut::<N>();
        let (out_steps, out_rest) = out.as_chunks_mut::<N>();
        for ((w, p), z) in word_steps.iter().zip(p_steps).zip(out_steps) {
            (*p, *z) = central_from_word(U64s(*w));
        }
        if !word_rest.is_empty() {
            let mut padded = [0u64; N];
            padded[..word_rest.len()].copy_from_slice(word_rest);
            let (p, z) = central_from_word(U64s(padded));
            p_rest.copy_from_slice(&p[..p_rest.len()]);
            out_rest.copy_from_slice(&z[..out_rest.len()]);
        }
        // Pack the tails' indices eight draws at a time: a table gives the indices of a
        // group's tails in the low bytes of a word (written whole), and how many there are.
        let mut count = 0;
        let (groups, rest) = p.as_chunks::<8>();
        for (g, group) in groups.iter().enumerate() {
            let mut bits = 0;
            for (k, &p) in group.iter().enumerate() {
                bits |= usize::from(is_tail(p)) << k;
            }
            // `count <= 8 g`, so the word ends within the block.
            let indices = PACKED_TAILS[bits] + (8 * g as u64) * 0x0101_0101_0101_0101;
            tail_index[count..count + 8].copy_from_slice(&indices.to_le_bytes());
            count += usize::from(TAILS_IN[bits]);
        }
        // The last few one at a time: every slot is written, the count moves on past a tail.
        for (i, &p) in rest.iter().enumerate() {
            tail_index[count] = (8 * groups.len() + i) as u8;
            count += usize::from(is_tail(p));
        }
        for (tail, &i) in tails.iter_mut().zip(&tail_index[..count]) {
            *tail = p[usize::from(i)];
        }
        // Lanes past `count` hold probabilities of (0, 1/2) too, and are discarded.
        for step in tails[..count.next_multiple_of(N)].as_chunks_mut::<N>().0 {
            *step = tail_quantile(ln_of_normal(F64s(*step))).0;
        }
        for (&i, &lower) in tail_index[..count].iter().zip(&tails[..count]) {
            let i = usize::from(i);
            out[i] = f64::from_bits(lower.to_bits() ^ (words[i] & SIGN_BIT));
        }
    }
}

/// For each set of tails among eight draws (bit `k`: draw `k`), their indices in order, a
/// byte each from the lowest.
const PACKED_TAILS: [u64; 256] = {
    let mut table = [0; 256];
    let mut bits = 0;
    while bits < 256 {
        let (mut k, mut filled) = (0, 0);
        while k < 8 {
            if bits >> k & 1 == 1 {
                table[bits] |= (k as u64) << (8 * filled);
                filled += 1;
            }
            k += 1;
        }
        bits += 1;
    }
    table
};

/// For each set of tails among eight draws, how many there are (a table: `count_ones` is not
/// one instruction on the x86-64 baseline).
const TAILS_IN: [u8; 256] = {
    let mut table = [0; 256];
    let mut bits = 0;
    while bits < 256 {
        table[bits] = (bits as u32).count_ones() as u8;
        bits += 1;
    }
    table
};

/// A word's lower-tail probability (as `normal_from_word`), and its normal if that is central.
#[inline(always)]
fn central_from_word<const N: usize>(word: U64s<N>) -> ([f64; N], [f64; N]) {
    let p = probability(word);
    let lower = central_quantile(p - 0.5);
    (p.0, F64s::from_bits(lower.to_bits() ^ (word & U64s::splat(SIGN_BIT))).0)
}

/// Whether `lower_quantile` takes `p` (never NaN) in a tail: the negation of its `central`.
#[inline(always)]
fn is_tail(p: f64) -> bool {
    p - 0.5 < -0.425
}

/// The lower-tail probability `(m + 1/2) 2^-53` of a word's 52 bits below its sign.
#[inline(always)]
fn probability<const N: usize>(word: U64s<N>) -> F64s<N> {
    let m = word.shr::<11>() & U64s::splat(LOW_52_BITS);
    (m.small_to_f64() + 0.5) * TWO_POW_MINUS_53
}

/// The probability a word maps to and its sign, for the tests: `normal_from_word(w)` is
/// `-quantile(p)` when the sign bit is set, else `quantile(p)`.
#[cfg(test)]
pub(super) fn word_probability(word: u64) -> (f64, bool) {
    ((((word >> 11) & LOW_52_BITS) as f64 + 0.5) * TWO_POW_MINUS_53, word >> 63 == 1)
}
