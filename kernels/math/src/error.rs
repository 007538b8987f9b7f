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

pub(crate) fn all_finite(param: &'static str, xs: &[f64]) -> Result<()> {
    // A fold with no early exit vectorises (natively and in Wasm) where a search takes a branch
    // per element, and sixteen values a step amortise a Wasm loop's checks. Only a bad input
    // pays for the search that names the element.
    let finite = |ok: bool, x: &f64| ok & x.is_finite();
    let (chunks, rest) = xs.as_chunks::<16>();
    if chunks.iter().fold(true, |ok, c| ok & c.iter().fold(true, finite)) & rest.iter().fold(true, finite) {
        return Ok(());
    }
    match xs.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(KernelError::invalid(param, format!("element {i} is not a finite number ({})", xs[i]))),
        None => Ok(()),
    }
}
