//! ChaCha8 blocks in AVX-512 registers (16 blocks a pass) and AVX2 registers (8): one vector
//! per state word, lane `i` holding block `i`, so a round is lane-wise add, xor and rotate with
//! no shuffles between lanes. Integer arithmetic only, so every backend gives the same words
//! (`blocks_match_rand_chacha` checks each one this CPU runs).
//!
//! Written with `std::arch` intrinsics rather than `vmath`'s plain arrays: over arrays LLVM kept
//! the 16-word state in memory, and the generator ran no faster than rand_chacha's.

use super::{BLOCK_WORDS, CONSTANT, DOUBLE_ROUNDS};
use core::arch::x86_64::*;

/// The input words of `L` consecutive blocks from `first`, word-major: `[w][i]` is word `w`
/// of block `first + i` (the counter wraps at 2^64).
#[inline(always)]
fn inputs<const L: usize>(key: &[u32; 8], first: u64, stream: u64) -> [[u32; L]; BLOCK_WORDS] {
    let mut x = [[0u32; L]; BLOCK_WORDS];
    for w in 0..4 {
        x[w] = [CONSTANT[w]; L];
    }
    for w in 0..8 {
        x[4 + w] = [key[w]; L];
    }
    for i in 0..L {
        let counter = first.wrapping_add(i as u64);
        x[12][i] = counter as u32;
        x[13][i] = (counter >> 32) as u32;
    }
    x[14] = [stream as u32; L];
    x[15] = [(stream >> 32) as u32; L];
    x
}

/// Word-major to block-major: `out[i * 16 + w]` is word `w` of block `i`.
#[inline(always)]
fn transpose<const L: usize>(words: &[[u32; L]; BLOCK_WORDS], out: &mut [u32]) {
    for (i, block) in out.as_chunks_mut::<BLOCK_WORDS>().0.iter_mut().take(L).enumerate() {
        for (w, word) in block.iter_mut().enumerate() {
            *word = words[w][i];
        }
    }
}

/// One quarter round on the state `$x` at indices `$a $b $c $d`, with lane-wise `$add`,
/// `$xor` and rotations.
macro_rules! quarter {
    ($x:ident, $a:expr, $b:expr, $c:expr, $d:expr, $add:expr, $xor:expr, $rotl16:expr, $rotl12:expr, $rotl8:expr, $rotl7:expr) => {
        $x[$a] = $add($x[$a], $x[$b]);
        $x[$d] = $rotl16($xor($x[$d], $x[$a]));
        $x[$c] = $add($x[$c], $x[$d]);
        $x[$b] = $rotl12($xor($x[$b], $x[$c]));
        $x[$a] = $add($x[$a], $x[$b]);
        $x[$d] = $rotl8($xor($x[$d], $x[$a]));
        $x[$c] = $add($x[$c], $x[$d]);
        $x[$b] = $rotl7($xor($x[$b], $x[$c]));
    };
}

/// ChaCha8's double rounds on a state `$x` of 16 vectors. Two loops of four quarter rounds,
/// which LLVM unrolls, so every index is a constant and the state stays in registers; one loop
/// of all eight (`QUARTER_ROUNDS`) was left rolled, with the state in memory, at half the speed.
macro_rules! double_rounds {
    ($x:ident, $($op:expr),+) => {
        for _ in 0..DOUBLE_ROUNDS {
            for [a, b, c, d] in [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]] {
                quarter!($x, a, b, c, d, $($op),+);
            }
            for [a, b, c, d] in [[0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]] {
                quarter!($x, a, b, c, d, $($op),+);
            }
        }
    };
}

/// Blocks `first .. first + 16` into `out` (256 words), block after block.
#[target_feature(enable = "avx512f")]
pub(super) fn sixteen_blocks_avx512(key: &[u32; 8], first: u64, stream: u64, out: &mut [u32; 16 * BLOCK_WORDS]) {
    let input = inputs::<16>(key, first, stream);
    // SAFETY: each `[u32; 16]` is 64 readable bytes; the load has no alignment requirement.
    let start: [__m512i; BLOCK_WORDS] =
        core::array::from_fn(|w| unsafe { _mm512_loadu_si512(input[w].as_ptr().cast()) });
    let mut x = start;
    double_rounds!(
        x,
        _mm512_add_epi32,
        _mm512_xor_si512,
        _mm512_rol_epi32::<16>,
        _mm512_rol_epi32::<12>,
        _mm512_rol_epi32::<8>,
        _mm512_rol_epi32::<7>
    );
    let x: [__m512i; BLOCK_WORDS] = core::array::from_fn(|w| _mm512_add_epi32(x[w], start[w]));
    for (block, words) in transpose_16x16(x).into_iter().enumerate() {
        // SAFETY: `out` has 16 words per block; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512(out[block * BLOCK_WORDS..].as_mut_ptr().cast(), words) };
    }
}

/// Row `w` of the input holds word `w` of 16 blocks; row `b` of the output holds block `b`'s
/// 16 words. In registers, 64 shuffles: stored lane by lane, LLVM made it scatters, which took
/// more than half the generator's time.
#[target_feature(enable = "avx512f")]
fn transpose_16x16(r: [__m512i; 16]) -> [__m512i; 16] {
    // Each 128-bit lane `j` of `r[w]` holds word `w` of blocks 4j .. 4j + 3. Interleaving
    // words, then pairs of words, leaves lane `j` of `u[4k + m]` holding words 4k .. 4k + 3
    // of block 4j + m.
    let t: [__m512i; 16] = core::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 { _mm512_unpacklo_epi32(a, b) } else { _mm512_unpackhi_epi32(a, b) }
    });
    let u: [__m512i; 16] = core::array::from_fn(|i| {
        let (k, m) = (i / 4, i % 4);
        let (a, b) = (t[4 * k + m / 2], t[4 * k + 2 + m / 2]);
        if m % 2 == 0 { _mm512_unpacklo_epi64(a, b) } else { _mm512_unpackhi_epi64(a, b) }
    });
    // Block 4j + m gathers lane `j` of u[m], u[4 + m], u[8 + m] and u[12 + m].
    let mut out = [_mm512_setzero_si512(); 16];
    for m in 0..4 {
        let (a, b, c, d) = (u[m], u[4 + m], u[8 + m], u[12 + m]);
        let low_ab = _mm512_shuffle_i32x4::<0x44>(a, b);
        let high_ab = _mm512_shuffle_i32x4::<0xEE>(a, b);
        let low_cd = _mm512_shuffle_i32x4::<0x44>(c, d);
        let high_cd = _mm512_shuffle_i32x4::<0xEE>(c, d);
        out[m] = _mm512_shuffle_i32x4::<0x88>(low_ab, low_cd);
        out[4 + m] = _mm512_shuffle_i32x4::<0xDD>(low_ab, low_cd);
        out[8 + m] = _mm512_shuffle_i32x4::<0x88>(high_ab, high_cd);
        out[12 + m] = _mm512_shuffle_i32x4::<0xDD>(high_ab, high_cd);
    }
    out
}

/// Blocks `first .. first + 8` into `out` (128 words), block after block.
#[target_feature(enable = "avx2")]
pub(super) fn eight_blocks_avx2(key: &[u32; 8], first: u64, stream: u64, out: &mut [u32]) {
    let input = inputs::<8>(key, first, stream);
    // SAFETY: each `[u32; 8]` is 32 readable bytes; the load has no alignment requirement.
    let start: [__m256i; BLOCK_WORDS] =
        core::array::from_fn(|w| unsafe { _mm256_loadu_si256(input[w].as_ptr().cast()) });
    // Rotations by whole bytes are byte shuffles within each 32-bit lane.
    let by16 = _mm256_setr_epi8(
        2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
    );
    let by8 = _mm256_setr_epi8(
        3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
    );
    let rotl16 = |v| _mm256_shuffle_epi8(v, by16);
    let rotl8 = |v| _mm256_shuffle_epi8(v, by8);
    let rotl12 = |v| _mm256_or_si256(_mm256_slli_epi32::<12>(v), _mm256_srli_epi32::<20>(v));
    let rotl7 = |v| _mm256_or_si256(_mm256_slli_epi32::<7>(v), _mm256_srli_epi32::<25>(v));
    let mut x = start;
    double_rounds!(x, _mm256_add_epi32, _mm256_xor_si256, rotl16, rotl12, rotl8, rotl7);
    let mut words = [[0u32; 8]; BLOCK_WORDS];
    for w in 0..BLOCK_WORDS {
        // SAFETY: each `[u32; 8]` is 32 writable bytes; the store has no alignment requirement.
        unsafe { _mm256_storeu_si256(words[w].as_mut_ptr().cast(), _mm256_add_epi32(x[w], start[w])) };
    }
    transpose(&words, out);
}
