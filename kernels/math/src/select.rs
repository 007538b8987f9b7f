//! Float choices for hot loops that stay cheap in Wasm, with the same results as the plain code.
//!
//! wasmtime compiles a scalar `f64` select to a branch, so a choice on a coin flip (does this
//! path end in the money?) mispredicts half the time; and Rust's `f64::max`/`min` become calls
//! into libm's `fmax`/`fmin` (Wasm's own `f64.max` propagates NaN, Rust's ignores it), which
//! also spill every live float around the call. A `v128` select is branch-free, so with
//! `simd128` these work in lane 0; natively the plain code is already branch-free.

/// `max(x, 0)`, with 0 for a NaN as `x.max(0.0)`.
#[inline(always)]
pub fn positive_part(x: f64) -> f64 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{f64x2_extract_lane, f64x2_pmax, f64x2_splat};
        // pmax(a, b) is `if a < b { b } else { a }`.
        f64x2_extract_lane::<0>(f64x2_pmax(f64x2_splat(0.0), f64x2_splat(x)))
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        if x > 0.0 { x } else { 0.0 }
    }
}

/// `x` if `a > b`, else +0.
#[inline(always)]
pub fn keep_if_greater(a: f64, b: f64, x: f64) -> f64 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{f64x2_extract_lane, f64x2_gt, f64x2_splat, v128_bitselect};
        let keep = f64x2_gt(f64x2_splat(a), f64x2_splat(b));
        f64x2_extract_lane::<0>(v128_bitselect(f64x2_splat(x), f64x2_splat(0.0), keep))
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        if a > b { x } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_plain_expressions() {
        let xs = [-3.5, -1e-300, -0.0, 0.0, 1e-310, 2.0, 7e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        for &x in &xs {
            assert_eq!(positive_part(x).to_bits(), x.max(0.0).to_bits() & !(1 << 63), "{x}");
            for &y in &xs {
                let plain = (x > y) as u8 as f64 * 4.25;
                assert_eq!(keep_if_greater(x, y, 4.25).to_bits(), plain.to_bits(), "{x} > {y}");
            }
        }
    }
}
