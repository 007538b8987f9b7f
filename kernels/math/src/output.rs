//! What a kernel returns: named estimates with standard errors, named arrays, and units done.

/// A Monte Carlo estimate and its standard error (`None` where the kernel cannot estimate one,
/// e.g. exact computations or too few samples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub std_error: Option<f64>,
}

impl Estimate {
    pub fn new(value: f64, std_error: f64) -> Self {
        Estimate { value, std_error: std_error.is_finite().then_some(std_error) }
    }

    pub fn exact(value: f64) -> Self {
        Estimate { value, std_error: None }
    }

    /// Whether `reference` lies within `k` standard errors (an exact estimate must match to the bit).
    pub fn covers(&self, reference: f64, k: f64) -> bool {
        (self.value - reference).abs() <= k * self.std_error.unwrap_or(0.0)
    }
}

/// The uniform shape of every kernel's answer, as the router and the Wasm contract carry it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub estimates: Vec<(&'static str, Estimate)>,
    pub arrays: Vec<(&'static str, Vec<f64>)>,
    pub units_done: u64,
}

impl Output {
    pub fn estimate(&self, name: &str) -> Option<Estimate> {
        self.estimates.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    pub fn array(&self, name: &str) -> Option<&[f64]> {
        self.arrays.iter().find(|(n, _)| *n == name).map(|(_, a)| a.as_slice())
    }
}
