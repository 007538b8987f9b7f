//! ChaCha8 with exactly the stream of `rand_chacha::ChaCha8Rng`, in every build: native and
//! Wasm results must agree to the bit, and this one is faster in both.
//!
//! Why not rand_chacha itself: on wasm32 its fast paths (through `ppv-lite86`, x86-64 SIMD) fall
//! back to generic code that emulates vector lanes in scalar words, which wasmtime runs at
//! ~14–25 ns per `u64`; natively it computes four blocks a pass. Here a refill makes 16
//! consecutive blocks, with lane `i` of every state word holding block `i`, so a round is
//! lane-wise add, xor and rotate with no shuffles, and the transposes happen once, when the
//! blocks are stored: natively in AVX-512 (16 blocks a pass) or AVX2 (8) registers, chosen at
//! run time (`x86.rs`); in Wasm with `simd128` four blocks a pass in `v128`s; elsewhere, a
//! plain scalar block function. Measured in a guest: 14 ns per `u64` through rand_chacha,
//! 8.6 ns scalar, 5.3 ns with simd128; natively see `benches/vmath.rs`.
//!
//! The layout follows rand_chacha: words 0–3 the constant, 4–11 the key, 12–13 a 64-bit block
//! counter, 14–15 the 64-bit stream; words are consumed in order, a `u64` being two words, low
//! first, as `rand_core::block::BlockRng` does. The tests below check the native paths against
//! rand_chacha; the simd128 path is checked by the host's native-vs-Wasm bit-identity tests.

#[cfg(target_arch = "x86_64")]
mod x86;

use core::convert::Infallible;
use rand_core::TryRng;

const CONSTANT: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// ChaCha8: four double rounds.
const DOUBLE_ROUNDS: usize = 4;
const BLOCK_WORDS: usize = 16;
/// Blocks per refill: one AVX-512 pass.
const BUF_BLOCKS: usize = 16;
const BUF_WORDS: usize = BUF_BLOCKS * BLOCK_WORDS;

/// A ChaCha8 stream that draws like `rand_chacha::ChaCha8Rng` with the same seed and stream.
#[derive(Clone)]
pub struct ChaCha8 {
    buf: [u32; BUF_WORDS],
    /// Next word of `buf` to hand out; `BUF_WORDS` when the buffer is used up.
    index: usize,
    key: [u32; 8],
    /// Block counter of the next refill.
    counter: u64,
    stream: u64,
}

impl ChaCha8 {
    pub fn new(seed: [u8; 32], stream: u64) -> Self {
        let key = core::array::from_fn(|i| {
            u32::from_le_bytes([seed[4 * i], seed[4 * i + 1], seed[4 * i + 2], seed[4 * i + 3]])
        });
        ChaCha8 { buf: [0; BUF_WORDS], index: BUF_WORDS, key, counter: 0, stream }
    }

    /// Seeks to a word offset from the start of the stream, as `ChaCha8Rng::set_word_pos`.
    #[cfg(test)]
    fn set_word_pos(&mut self, word_pos: u128) {
        self.counter = (word_pos / BLOCK_WORDS as u128) as u64;
        self.index = BUF_WORDS;
        let skip = (word_pos % BLOCK_WORDS as u128) as usize;
        if skip > 0 {
            self.refill();
            self.index = skip;
        }
    }

    /// Out of line: it runs once per 128 `u64`s and would otherwise crowd every draw site.
    #[inline(never)]
    fn refill(&mut self) {
        blocks(Backend::detected(), &self.key, self.counter, self.stream, &mut self.buf);
        self.counter = self.counter.wrapping_add(BUF_BLOCKS as u64);
    }

    #[inline(always)]
    fn pair(&self, i: usize) -> u64 {
        u64::from(self.buf[i]) | (u64::from(self.buf[i + 1]) << 32)
    }

    /// Fills `out` with the next `u64`s: what as many `next_u64` calls would give, copied from
    /// the buffer a refill at a time.
    pub fn fill_u64(&mut self, out: &mut [u64]) {
        let mut rest = out;
        while let [first, ..] = rest {
            if self.index >= BUF_WORDS - 1 {
                *first = self.next_u64_refilling();
                rest = &mut rest[1..];
                continue;
            }
            let n = ((BUF_WORDS - self.index) / 2).min(rest.len());
            let (now, later) = rest.split_at_mut(n);
            let start = self.index;
            for (k, word) in now.iter_mut().enumerate() {
                *word = self.pair(start + 2 * k);
            }
            self.index = start + 2 * n;
            rest = later;
        }
    }

    /// A `u64` that needs a refill: its low word may be the last of the old buffer.
    #[cold]
    fn next_u64_refilling(&mut self) -> u64 {
        if self.index == BUF_WORDS - 1 {
            let lo = self.buf[BUF_WORDS - 1];
            self.refill();
            self.index = 1;
            u64::from(lo) | (u64::from(self.buf[0]) << 32)
        } else {
            self.refill();
            self.index = 2;
            self.pair(0)
        }
    }
}

impl TryRng for ChaCha8 {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        if self.index >= BUF_WORDS {
            self.refill();
            self.index = 0;
        }
        let word = self.buf[self.index];
        self.index += 1;
        Ok(word)
    }

    #[inline(always)]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let i = self.index;
        if i < BUF_WORDS - 1 {
            self.index = i + 2;
            return Ok(self.pair(i));
        }
        Ok(self.next_u64_refilling())
    }

    /// Whole words in order, little-endian; a last partial word is used up, as `BlockRng` does.
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(4) {
            let word = self.try_next_u32()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// The 16 input words of block `counter` of `stream`.
fn block_input(key: &[u32; 8], counter: u64, stream: u64) -> [u32; BLOCK_WORDS] {
    let mut x = [0; BLOCK_WORDS];
    x[..4].copy_from_slice(&CONSTANT);
    x[4..12].copy_from_slice(key);
    x[12] = counter as u32;
    x[13] = (counter >> 32) as u32;
    x[14] = stream as u32;
    x[15] = (stream >> 32) as u32;
    x
}

/// The column rounds then the diagonal rounds, as quarter-round index quadruples.
const QUARTER_ROUNDS: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

/// How a refill computes its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

impl Backend {
    /// The fastest this CPU and build run.
    #[inline]
    fn detected() -> Backend {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Backend::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Backend::Avx2;
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Backend::Simd128;
        #[allow(unreachable_code)]
        Backend::Scalar
    }

    /// Every backend this CPU and build run, for the tests.
    #[cfg(test)]
    fn available() -> Vec<Backend> {
        let mut all = vec![Backend::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                all.push(Backend::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Backend::Avx512);
            }
        }
        all
    }
}

/// Blocks `counter .. counter + BUF_BLOCKS` (the counter wraps at 2^64), one after another.
fn blocks(backend: Backend, key: &[u32; 8], counter: u64, stream: u64, out: &mut [u32; BUF_WORDS]) {
    match backend {
        Backend::Scalar => blocks_scalar(key, counter, stream, out),
        // SAFETY (both): `Backend::detected` and `Backend::available` return these only where
        // the CPU has the instruction set, which calling a `#[target_feature]` function needs.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => unsafe { x86::sixteen_blocks_avx512(key, counter, stream, out) },
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => {
            for (pass, eight) in out.as_chunks_mut::<{ 8 * BLOCK_WORDS }>().0.iter_mut().enumerate() {
                unsafe { x86::eight_blocks_avx2(key, counter.wrapping_add(8 * pass as u64), stream, eight) }
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Backend::Simd128 => {
            for (pass, four) in out.as_chunks_mut::<{ 4 * BLOCK_WORDS }>().0.iter_mut().enumerate() {
                simd128::four_blocks(key, counter.wrapping_add(4 * pass as u64), stream, four)
            }
        }
    }
}

/// Blocks `counter ..` one at a time, as many as `out` holds.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
fn blocks_scalar(key: &[u32; 8], counter: u64, stream: u64, out: &mut [u32]) {
    for (i, block) in out.as_chunks_mut::<BLOCK_WORDS>().0.iter_mut().enumerate() {
        let input = block_input(key, counter.wrapping_add(i as u64), stream);
        let mut x = input;
        for _ in 0..DOUBLE_ROUNDS {
            for [a, b, c, d] in QUARTER_ROUNDS {
                x[a] = x[a].wrapping_add(x[b]);
                x[d] = (x[d] ^ x[a]).rotate_left(16);
                x[c] = x[c].wrapping_add(x[d]);
                x[b] = (x[b] ^ x[c]).rotate_left(12);
                x[a] = x[a].wrapping_add(x[b]);
                x[d] = (x[d] ^ x[a]).rotate_left(8);
                x[c] = x[c].wrapping_add(x[d]);
                x[b] = (x[b] ^ x[c]).rotate_left(7);
            }
        }
        for (o, (x, i)) in block.iter_mut().zip(x.iter().zip(&input)) {
            *o = x.wrapping_add(*i);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{BLOCK_WORDS, DOUBLE_ROUNDS, QUARTER_ROUNDS, block_input};
    use core::arch::wasm32::*;

    /// Lane-wise rotate left. Shifts, not byte shuffles, even for 16 and 8: LLVM emits those
    /// shuffles with two different operands, which wasmtime lowers to a two-input permute.
    #[inline(always)]
    fn rotl<const N: u32>(v: v128) -> v128 {
        v128_or(u32x4_shl(v, N), u32x4_shr(v, 32 - N))
    }

    pub(super) fn four_blocks(key: &[u32; 8], counter: u64, stream: u64, out: &mut [u32; 4 * BLOCK_WORDS]) {
        let blocks: [[u32; BLOCK_WORDS]; 4] =
            core::array::from_fn(|i| block_input(key, counter.wrapping_add(i as u64), stream));
        let input: [v128; BLOCK_WORDS] =
            core::array::from_fn(|w| u32x4(blocks[0][w], blocks[1][w], blocks[2][w], blocks[3][w]));
        let mut x = input;
        let quarter = |x: &mut [v128; BLOCK_WORDS], [a, b, c, d]: [usize; 4]| {
            x[a] = u32x4_add(x[a], x[b]);
            x[d] = rotl::<16>(v128_xor(x[d], x[a]));
            x[c] = u32x4_add(x[c], x[d]);
            x[b] = rotl::<12>(v128_xor(x[b], x[c]));
            x[a] = u32x4_add(x[a], x[b]);
            x[d] = rotl::<8>(v128_xor(x[d], x[a]));
            x[c] = u32x4_add(x[c], x[d]);
            x[b] = rotl::<7>(v128_xor(x[b], x[c]));
        };
        for _ in 0..DOUBLE_ROUNDS {
            // Written out, so every index is a constant and the state lives in registers: as a
            // loop over `QUARTER_ROUNDS` (which LLVM does not unroll) it lived in memory, with a
            // bounds check per access.
            let [q0, q1, q2, q3, q4, q5, q6, q7] = QUARTER_ROUNDS;
            quarter(&mut x, q0);
            quarter(&mut x, q1);
            quarter(&mut x, q2);
            quarter(&mut x, q3);
            quarter(&mut x, q4);
            quarter(&mut x, q5);
            quarter(&mut x, q6);
            quarter(&mut x, q7);
        }
        // Words 4g..4g+4 of the four blocks, transposed from word-major to block-major.
        for g in 0..4 {
            let [w0, w1, w2, w3]: [v128; 4] = core::array::from_fn(|k| u32x4_add(x[4 * g + k], input[4 * g + k]));
            let lo01 = i32x4_shuffle::<0, 4, 1, 5>(w0, w1);
            let lo23 = i32x4_shuffle::<0, 4, 1, 5>(w2, w3);
            let hi01 = i32x4_shuffle::<2, 6, 3, 7>(w0, w1);
            let hi23 = i32x4_shuffle::<2, 6, 3, 7>(w2, w3);
            let rows = [
                i64x2_shuffle::<0, 2>(lo01, lo23),
                i64x2_shuffle::<1, 3>(lo01, lo23),
                i64x2_shuffle::<0, 2>(hi01, hi23),
                i64x2_shuffle::<1, 3>(hi01, hi23),
            ];
            for (block, row) in rows.into_iter().enumerate() {
                let at = block * BLOCK_WORDS + 4 * g;
                let dst: &mut [u32; 4] = (&mut out[at..at + 4]).try_into().expect("four words");
                // SAFETY: `dst` is 16 writable bytes; `v128_store` has no alignment requirement.
                unsafe { v128_store(dst.as_mut_ptr().cast::<v128>(), row) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    /// Keys, streams and word positions: ordinary ones, the 32-bit carry into the counter's
    /// high word, and the counter's wrap at 2^64 blocks.
    fn cases() -> Vec<([u8; 32], u64, u128)> {
        let mut state = 0x0123_4567_89ab_cdef_u64;
        let mut next = || super::super::splitmix64(&mut state);
        let block = |b: u64| u128::from(b) * BLOCK_WORDS as u128;
        let mut out = Vec::new();
        for i in 0..300 {
            let mut seed = [0u8; 32];
            for w in seed.as_chunks_mut::<8>().0 {
                w.copy_from_slice(&next().to_le_bytes());
            }
            let stream = match i % 4 {
                0 => i as u64,
                1 => u64::MAX - i as u64,
                _ => next(),
            };
            let pos = match i % 10 {
                0 => 0,
                1 => 1 + (i as u128 % 80),
                2 => block(u64::from(u32::MAX)) - 7 + i as u128 % 40,
                3 => block(u64::MAX - 2) + i as u128 % 60,
                4 => u128::from(next()) << 64 | u128::from(next()),
                _ => u128::from(next() % (1 << 24)),
            };
            out.push((seed, stream, pos));
        }
        out
    }

    /// Every backend this CPU runs.
    #[test]
    fn blocks_match_rand_chacha() {
        let backends = Backend::available();
        assert!(backends.contains(&Backend::detected()));
        for (seed, stream, pos) in cases() {
            let counter = (pos / BLOCK_WORDS as u128) as u64;
            let mut reference = ChaCha8Rng::from_seed(seed);
            reference.set_stream(stream);
            reference.set_word_pos(u128::from(counter) * BLOCK_WORDS as u128);
            let expected: Vec<u32> = (0..BUF_WORDS).map(|_| reference.next_u32()).collect();
            let key = ChaCha8::new(seed, stream).key;
            for &backend in &backends {
                let mut out = [0; BUF_WORDS];
                blocks(backend, &key, counter, stream, &mut out);
                assert_eq!(out.as_slice(), expected.as_slice(), "{backend:?}, stream {stream} block {counter}");
            }
        }
    }

    /// Runs of `u64`s by `fill_u64`, between single draws, from any word position.
    #[test]
    fn filled_words_match_rand_chacha() {
        for (case, (seed, stream, pos)) in cases().into_iter().enumerate() {
            let mut reference = ChaCha8Rng::from_seed(seed);
            reference.set_stream(stream);
            reference.set_word_pos(pos);
            let mut ours = ChaCha8::new(seed, stream);
            ours.set_word_pos(pos);
            for draw in 0..20 {
                let len = (draw * 37 + case) % 300;
                let mut words = vec![0; len];
                ours.fill_u64(&mut words);
                let expected: Vec<u64> = (0..len).map(|_| reference.next_u64()).collect();
                assert_eq!(words, expected, "case {case} draw {draw}");
                assert_eq!(ours.next_u32(), reference.next_u32(), "case {case} draw {draw}");
            }
        }
    }

    /// Mixed `u64`, `u32` and byte draws from any word position, across refills.
    #[test]
    fn draws_match_rand_chacha_from_any_position() {
        for (case, (seed, stream, pos)) in cases().into_iter().enumerate() {
            let mut reference = ChaCha8Rng::from_seed(seed);
            reference.set_stream(stream);
            let mut ours = ChaCha8::new(seed, stream);
            if case % 10 != 0 {
                reference.set_word_pos(pos);
                ours.set_word_pos(pos);
            }
            for draw in 0..400 {
                match (draw + case) % 9 {
                    0 => assert_eq!(ours.next_u32(), reference.next_u32(), "case {case} draw {draw}"),
                    1 => {
                        let len = (draw * 7 + case) % 23;
                        let (mut a, mut b) = ([0u8; 23], [0u8; 23]);
                        ours.fill_bytes(&mut a[..len]);
                        reference.fill_bytes(&mut b[..len]);
                        assert_eq!(a, b, "case {case} draw {draw}");
                    }
                    _ => assert_eq!(ours.next_u64(), reference.next_u64(), "case {case} draw {draw}"),
                }
            }
        }
    }
}
