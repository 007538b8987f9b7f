//! The small dense linear algebra the kernels need: Cholesky and a lower-triangular product.

use crate::error::{KernelError, Result};

/// Lower Cholesky factor (row-major d×d) of a symmetric, numerically positive-definite matrix.
/// `what` names the parameter in the error.
pub fn cholesky(a: &[f64], d: usize, what: &'static str) -> Result<Vec<f64>> {
    if a.len() != d * d {
        return Err(KernelError::invalid(what, format!("needs {d}x{d} = {} values, got {}", d * d, a.len())));
    }
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                // A pivot lost to rounding (relative to its diagonal) means numerically singular.
                let positive = a[i * d + i] > 0.0 && s > 1e-12 * a[i * d + i];
                if !positive {
                    return Err(KernelError::invalid(what, format!("is not positive definite (pivot {i} is {s:e})")));
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Ok(l)
}

/// `y = L z` for a row-major lower-triangular `L`.
#[inline]
pub fn lower_mul(l: &[f64], z: &[f64], y: &mut [f64]) {
    let d = z.len();
    for i in 0..d {
        let row = &l[i * d..i * d + i + 1];
        let mut s = 0.0;
        for (a, b) in row.iter().zip(z) {
            s += a * b;
        }
        y[i] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs_and_rejects_indefinite() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3, "m").unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        let bad = [1.0, 0.9, 0.9, 0.9, 1.0, -0.9, 0.9, -0.9, 1.0];
        assert!(matches!(
            cholesky(&bad, 3, "correlation"),
            Err(KernelError::InvalidInput { param: "correlation", .. })
        ));
    }
}
