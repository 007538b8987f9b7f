//! `N` lanes of `f64` or `u64` as plain arrays, with lane-wise operators.
//!
//! Every operation is a loop of the same scalar operation over the lanes, so lane `i` of any
//! result is, bit for bit, what the scalar code gives for lane `i`'s inputs: Rust never
//! contracts a multiply and an add into an FMA nor reassociates, whatever the target. Inlined
//! into a loop, LLVM's SLP vectoriser turns each of these loops into one instruction of the
//! target's vector width (or two, or four) without changing any lane's arithmetic.
//!
//! Integer lanes wrap: the vector code computes every lane, including those whose results a
//! later select discards (the exponent of a NaN, say), and a debug build must not panic there.

use core::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Sub};

/// `N` `f64` lanes.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct F64s<const N: usize>(pub [f64; N]);

/// `N` `u64` lanes (bit patterns and small integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct U64s<const N: usize>(pub [u64; N]);

/// `N` lane conditions, for `select`: each lane all ones or all zeros, and `select` a bitwise
/// blend. As `[bool; N]` LLVM rewrote the selects lane by lane (into table loads and
/// branches) before its SLP vectoriser ran, and most of a 4-lane `exp` stayed scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Mask<const N: usize>([u64; N]);

#[inline(always)]
fn map<T: Copy, U: Copy + Default, const N: usize>(a: [T; N], f: impl Fn(T) -> U) -> [U; N] {
    let mut out = [U::default(); N];
    for i in 0..N {
        out[i] = f(a[i]);
    }
    out
}

#[inline(always)]
fn zip<T: Copy, U: Copy + Default, const N: usize>(a: [T; N], b: [T; N], f: impl Fn(T, T) -> U) -> [U; N] {
    let mut out = [U::default(); N];
    for i in 0..N {
        out[i] = f(a[i], b[i]);
    }
    out
}

impl<const N: usize> F64s<N> {
    #[inline(always)]
    pub fn splat(x: f64) -> Self {
        F64s([x; N])
    }

    #[inline(always)]
    pub fn to_bits(self) -> U64s<N> {
        U64s(map(self.0, f64::to_bits))
    }

    #[inline(always)]
    pub fn from_bits(bits: U64s<N>) -> Self {
        F64s(map(bits.0, f64::from_bits))
    }

    /// `|x|`, by clearing the sign bit (as `f64::abs`).
    #[inline(always)]
    pub fn abs(self) -> Self {
        Self::from_bits(self.to_bits() & U64s::splat(!SIGN_BIT))
    }

    /// Correctly rounded, as IEEE 754 requires of every target.
    #[inline(always)]
    pub fn sqrt(self) -> Self {
        F64s(map(self.0, f64::sqrt))
    }

    /// Lanes whose sign bit is set (-0.0 and negative NaNs included).
    #[inline(always)]
    pub fn sign_bit_set(self) -> Mask<N> {
        Mask(map(self.0, |x| ((x.to_bits() as i64) >> 63) as u64))
    }

    #[inline(always)]
    pub fn is_nan(self) -> Mask<N> {
        Mask(map(self.0, |x| (x.is_nan() as u64).wrapping_neg()))
    }

    #[inline(always)]
    pub fn lt(self, other: Self) -> Mask<N> {
        Mask(zip(self.0, other.0, |a, b| ((a < b) as u64).wrapping_neg()))
    }

    #[inline(always)]
    pub fn le(self, other: Self) -> Mask<N> {
        Mask(zip(self.0, other.0, |a, b| ((a <= b) as u64).wrapping_neg()))
    }

    #[inline(always)]
    pub fn gt(self, other: Self) -> Mask<N> {
        Mask(zip(self.0, other.0, |a, b| ((a > b) as u64).wrapping_neg()))
    }

    #[inline(always)]
    pub fn ge(self, other: Self) -> Mask<N> {
        Mask(zip(self.0, other.0, |a, b| ((a >= b) as u64).wrapping_neg()))
    }

    #[inline(always)]
    pub fn eq(self, other: Self) -> Mask<N> {
        Mask(zip(self.0, other.0, |a, b| ((a == b) as u64).wrapping_neg()))
    }
}

const SIGN_BIT: u64 = 1 << 63;

impl<const N: usize> U64s<N> {
    #[inline(always)]
    pub fn splat(x: u64) -> Self {
        U64s([x; N])
    }

    #[inline(always)]
    pub fn shr<const BITS: u32>(self) -> Self {
        U64s(map(self.0, |x| x >> BITS))
    }

    #[inline(always)]
    pub fn shl<const BITS: u32>(self) -> Self {
        U64s(map(self.0, |x| x << BITS))
    }

    /// The lanes as `f64`, exactly, for lanes below 2^52: the lane's bits become the mantissa
    /// of 2^52 (an OR), and 2^52 is subtracted. Vector units without a 64-bit integer
    /// conversion (AVX2, simd128) do this in two instructions.
    #[inline(always)]
    pub fn small_to_f64(self) -> F64s<N> {
        const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
        F64s::from_bits(self | U64s::splat(TWO_POW_52.to_bits())) - F64s::splat(TWO_POW_52)
    }
}

impl<const N: usize> Mask<N> {
    /// The first `filled` lanes set: the lanes of a partial step that hold values.
    #[inline(always)]
    pub fn first(filled: usize) -> Self {
        let mut lanes = [0u64; N];
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = ((i < filled) as u64).wrapping_neg();
        }
        Mask(lanes)
    }

    /// Per lane, `if_true` where the mask is set, else `if_false`.
    #[inline(always)]
    pub fn select(self, if_true: F64s<N>, if_false: F64s<N>) -> F64s<N> {
        let mut out = if_false.0;
        for i in 0..N {
            out[i] = f64::from_bits((if_true.0[i].to_bits() & self.0[i]) | (if_false.0[i].to_bits() & !self.0[i]));
        }
        F64s(out)
    }
}

macro_rules! float_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<const N: usize> $trait for F64s<N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, rhs: Self) -> Self {
                F64s(zip(self.0, rhs.0, |a, b| a $op b))
            }
        }
        impl<const N: usize> $trait<f64> for F64s<N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, rhs: f64) -> Self {
                F64s(map(self.0, |a| a $op rhs))
            }
        }
        impl<const N: usize> $trait<F64s<N>> for f64 {
            type Output = F64s<N>;
            #[inline(always)]
            fn $method(self, rhs: F64s<N>) -> F64s<N> {
                F64s(map(rhs.0, |b| self $op b))
            }
        }
    };
}

float_op!(Add, add, +);
float_op!(Sub, sub, -);
float_op!(Mul, mul, *);
float_op!(Div, div, /);

impl<const N: usize> Neg for F64s<N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        F64s(map(self.0, |a| -a))
    }
}

macro_rules! int_op {
    ($trait:ident, $method:ident, $f:expr) => {
        impl<const N: usize> $trait for U64s<N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, rhs: Self) -> Self {
                U64s(zip(self.0, rhs.0, $f))
            }
        }
    };
}

int_op!(Add, add, u64::wrapping_add);
int_op!(Sub, sub, u64::wrapping_sub);
int_op!(BitAnd, bitand, |a, b| a & b);
int_op!(BitOr, bitor, |a, b| a | b);
int_op!(BitXor, bitxor, |a, b| a ^ b);

macro_rules! mask_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<const N: usize> $trait for Mask<N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, rhs: Self) -> Self {
                Mask(zip(self.0, rhs.0, |a, b| a $op b))
            }
        }
    };
}

mask_op!(BitAnd, bitand, &);
mask_op!(BitOr, bitor, |);

impl<const N: usize> Not for Mask<N> {
    type Output = Self;
    #[inline(always)]
    fn not(self) -> Self {
        Mask(map(self.0, |a| !a))
    }
}
