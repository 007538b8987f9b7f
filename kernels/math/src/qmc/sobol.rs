//! The unscrambled Sobol sequence in base 2, 32 bits a coordinate.

use super::MAX_DIMENSIONS;
use super::directions::JOE_KUO;
use crate::error::{KernelError, Result};

/// Digits a coordinate has: point indices run over `0..2^32`.
const BITS: usize = 32;

/// The Sobol sequence in `dimensions` dimensions, as 32-bit integers: coordinate `x` of a
/// point stands for `x / 2^32`.
///
/// Points are numbered in natural order: point `i` is the XOR of the direction integers
/// `v_(j,k+1)` over the set bits `k` of `i`, so a block of units can start at any index in
/// O(log index) work. Joe and Kuo's `sobol.cc` and scipy walk the sequence in Gray-code
/// order instead (their `r`-th point is point `r ^ (r >> 1)` here), one XOR a step. As
/// `r -> r ^ (r >> 1)` maps each aligned block `k 2^m .. (k+1) 2^m` onto an aligned block,
/// the first onto itself, the first `2^m` points of the two orders are the same set,
/// shuffled, and every aligned block of `2^m` points is a net in either order.
#[derive(Debug, Clone)]
pub struct Sobol {
    /// `directions[j][k]` is `v_(j+1,k+1) = m_(k+1) 2^(31-k)`: the MSB-first direction integer
    /// that bit `k` of the index XORs into coordinate `j`.
    directions: Vec<[u32; BITS]>,
}

impl Sobol {
    /// The first `dimensions` coordinates of the sequence: 1 to [`MAX_DIMENSIONS`].
    pub fn new(dimensions: usize) -> Result<Sobol> {
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return Err(KernelError::invalid(
                "dimensions",
                format!("must be 1 to {MAX_DIMENSIONS} (the Sobol direction numbers this build has), got {dimensions}"),
            ));
        }
        Ok(Sobol { directions: (1..=dimensions).map(direction_integers).collect() })
    }

    /// How many coordinates a point has.
    pub fn dimensions(&self) -> usize {
        self.directions.len()
    }

    /// Writes point `index` (natural order) into `out`, one 32-bit integer a dimension, in
    /// O(number of set bits of `index`) a coordinate.
    ///
    /// # Panics
    /// If `out.len()` is not [`Self::dimensions`].
    pub fn point(&self, index: u32, out: &mut [u32]) {
        assert_eq!(out.len(), self.dimensions(), "a Sobol point has one coordinate a dimension");
        for (x, v) in out.iter_mut().zip(&self.directions) {
            *x = xor_over_bits(v, index);
        }
    }

    /// Turns point `index`, in `point`, into point `index + 1`: the bits that change from
    /// `index` to `index + 1` are `index ^ (index + 1)`, a run of low bits, and each XORs its
    /// direction integer in or out. Two bits change on average, so walking costs about two
    /// XORs a coordinate.
    ///
    /// # Panics
    /// If `point.len()` is not [`Self::dimensions`], or `index` is `u32::MAX` (the last point).
    pub fn next_from(&self, index: u32, point: &mut [u32]) {
        assert_eq!(point.len(), self.dimensions(), "a Sobol point has one coordinate a dimension");
        let next = index.checked_add(1).expect("the Sobol sequence has 2^32 points");
        for (x, v) in point.iter_mut().zip(&self.directions) {
            *x ^= xor_over_bits(v, index ^ next);
        }
    }
}

/// The XOR of `v[k]` over the set bits `k` of `bits`.
#[inline]
fn xor_over_bits(v: &[u32; BITS], mut bits: u32) -> u32 {
    let mut x = 0;
    while bits != 0 {
        x ^= v[bits.trailing_zeros() as usize];
        bits &= bits - 1; // clear the lowest set bit
    }
    x
}

/// The 32 direction integers of `dimension` (1-based) by Joe and Kuo's recurrence. With the
/// primitive polynomial `x^s + a_1 x^(s-1) + ... + a_(s-1) x + 1`, the direction numbers
/// `m_k` beyond the `s` given ones obey
/// `m_k = 2 a_1 m_(k-1) ^ 4 a_2 m_(k-2) ^ ... ^ 2^s m_(k-s) ^ m_(k-s)`; with
/// `v_k = m_k 2^(32-k)` the powers of two become the shifts of the integers' positions:
/// `v_k = a_1 v_(k-1) ^ ... ^ a_(s-1) v_(k-s+1) ^ v_(k-s) ^ (v_(k-s) >> s)`.
fn direction_integers(dimension: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dimension == 1 {
        // Van der Corput: every m_k = 1, so x is the bit-reversed index.
        for (k, v) in v.iter_mut().enumerate() {
            *v = 1 << (BITS - 1 - k);
        }
        return v;
    }
    let (s, a, m) = JOE_KUO[dimension - 2];
    let (s, a) = (usize::from(s), u32::from(a));
    for k in 0..s {
        v[k] = u32::from(m[k]) << (BITS - 1 - k); // m_(k+1) < 2^(k+1): the shift loses nothing
    }
    for k in s..BITS {
        let mut x = v[k - s] ^ (v[k - s] >> s);
        for i in 1..s {
            // a_i is bit s - 1 - i of a (a_1 is its most significant)
            if (a >> (s - 1 - i)) & 1 == 1 {
                x ^= v[k - i];
            }
        }
        v[k] = x;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_starts_with_joe_and_kuos_published_rows() {
        // new-joe-kuo-6.21201, lines 2 to 5 ("d s a m_i"):
        //   2 1 0 1 / 3 2 1 1 3 / 4 3 1 1 3 1 / 5 3 2 1 1 1
        let published: [(u8, u16, &[u16]); 4] = [(1, 0, &[1]), (2, 1, &[1, 3]), (3, 1, &[1, 3, 1]), (3, 2, &[1, 1, 1])];
        assert_eq!(JOE_KUO[..4], published);
        // And the file's last row we use, d = 1024: 13 3538 1 1 5 11 11 33 37 29 263 1019 657 1453 7807.
        assert_eq!(JOE_KUO[1022], (13, 3538, &[1, 1, 5, 11, 11, 33, 37, 29, 263, 1019, 657, 1453, 7807][..]));
        for (d, (s, a, m)) in (2..).zip(JOE_KUO) {
            assert_eq!(m.len(), usize::from(s), "dimension {d}");
            assert!(u32::from(a) < 1 << (s - 1), "dimension {d}: a has s - 1 bits");
            assert!(m.iter().enumerate().all(|(k, &m)| m % 2 == 1 && u32::from(m) < 2 << k), "dimension {d}");
        }
    }

    #[test]
    fn direction_integers_follow_the_recurrence_by_hand() {
        // Dimension 3: x^2 + x + 1 (s = 2, a = 1), m = 1, 3; then m_k = 2 m_(k-1) ^ 4 m_(k-2) ^ m_(k-2):
        // m_3 = 6 ^ 4 ^ 1 = 3, m_4 = 6 ^ 12 ^ 3 = 9, m_5 = 18 ^ 12 ^ 3 = 29.
        let v = direction_integers(3);
        let m: Vec<u32> = (0..5).map(|k| v[k] >> (31 - k)).collect();
        assert_eq!(m, [1, 3, 3, 9, 29]);
        assert!((0..5).all(|k| v[k].trailing_zeros() == 31 - k as u32), "m_k is odd");
        assert_eq!(direction_integers(1)[..3], [1 << 31, 1 << 30, 1 << 29]);
    }

    #[test]
    fn dimensions_outside_the_table_are_refused_naming_the_limit() {
        for d in [0, MAX_DIMENSIONS + 1, usize::MAX] {
            match Sobol::new(d) {
                Err(KernelError::InvalidInput { param: "dimensions", reason }) => {
                    assert!(reason.contains("1024") && reason.contains(&d.to_string()), "{reason}")
                }
                other => panic!("Sobol::new({d}) gave {other:?}"),
            }
        }
        assert_eq!(Sobol::new(1).unwrap().dimensions(), 1);
        assert_eq!(Sobol::new(MAX_DIMENSIONS).unwrap().dimensions(), MAX_DIMENSIONS);
    }
}
