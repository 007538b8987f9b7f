//! The one error type every kernel returns: bad input is a value, never a panic.

use std::fmt;

/// Why a kernel refused or failed a job.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// A parameter broke its rule; nothing was computed.
    InvalidInput { param: &'static str, reason: String },
    /// The inputs were valid but the computation could not produce a finite answer.
    NumericFailure(String),
}

impl KernelError {
    pub(crate) fn invalid(param: &'static str, reason: impl Into<String>) -> Self {
        KernelError::InvalidInput { param, reason: reason.into() }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::InvalidInput { param, reason } => write!(f, "invalid `{param}`: {reason}"),
            KernelError::NumericFailure(why) => write!(f, "numeric failure: {why}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Shorthand used by the validators.
pub type Result<T> = std::result::Result<T, KernelError>;

pub(crate) fn finite(param: &'static str, x: f64) -> Result<f64> {
    if x.is_finite() { Ok(x) } else { Err(KernelError::invalid(param, format!("must be a finite number, got {x}"))) }
}

pub(crate) fn positive(param: &'static str, x: f64) -> Result<f64> {
    finite(param, x)?;
    if x > 0.0 { Ok(x) } else { Err(KernelError::invalid(param, format!("must be > 0, got {x}"))) }
}

pub(crate) fn non_negative(param: &'static str, x: f64) -> Result<f64> {
    finite(param, x)?;
    if x >= 0.0 { Ok(x) } else { Err(KernelError::invalid(param, format!("must be >= 0, got {x}"))) }
}

#[expect(clippy::eq_op, reason = "`x - x` is the test: 0 when finite, NaN otherwise")]
pub(crate) fn all_finite(param: &'static str, xs: &[f64]) -> Result<()> {
    // `x - x` is 0 for every finite x and NaN for an infinity or a NaN, so a sum of them is 0
    // exactly when all are finite: two float operations a value, in four lanes (two SIMD
    // registers) with no branch, sixteen values a step to amortise a Wasm loop's checks. A test
    // of each value's bits took three times the instructions in Wasm. Only a bad input pays
    // for the search that names the element.
    let (chunks, rest) = xs.as_chunks::<16>();
    let mut zeros = [0.0; 4];
    for c in chunks {
        for (l, z) in zeros.iter_mut().enumerate() {
            let d = |k: usize| c[k] - c[k];
            *z += (d(l) + d(l + 4)) + (d(l + 8) + d(l + 12));
        }
    }
    let zero = rest.iter().fold(zeros.iter().sum::<f64>(), |z, x| z + (x - x));
    if zero == 0.0 {
        return Ok(());
    }
    match xs.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(KernelError::invalid(param, format!("element {i} is not a finite number ({})", xs[i]))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_every_non_finite_value_wherever_it_is() {
        let edge = [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324, -0.0, 1.0];
        for len in [0, 1, 15, 16, 17, 33, 100] {
            let xs: Vec<f64> = (0..len).map(|k| edge[k % edge.len()]).collect();
            assert_eq!(all_finite("xs", &xs), Ok(()), "{len} finite values");
            for i in 0..len {
                for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                    let mut ys = xs.clone();
                    ys[i] = bad;
                    let err = all_finite("xs", &ys).unwrap_err().to_string();
                    assert!(err.contains(&format!("element {i} ")), "{len} values, {bad} at {i}: {err}");
                }
            }
        }
    }
}
