//! `ewma-cov`: RiskMetrics-style exponentially weighted covariance of a window of returns
//! (zero mean, weights `lambda^age` normalised to one), with its Cholesky factor and the vols:
//! the feature transform that turns a return history into the inputs of `mc-var`.
//!
//! Units are rows of history, newest first, so a run with fewer units uses the most recent rows
//! and its error against the full window is bounded by the dropped weight `lambda^units`.

use crate::chunk::{self, Partial};
use crate::error::{KernelError, Result, all_finite};
use crate::linalg::cholesky;
use crate::output::{Estimate, Output};
use std::ops::Range;

/// Rows per block: small, because a row costs only d(d+1)/2 multiply-adds.
pub const ROWS_PER_BLOCK: u64 = 64;
/// Most assets accepted.
pub const MAX_ASSETS: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub struct ReturnWindow {
    /// T×d row-major, oldest row first.
    pub returns: Vec<f64>,
    pub assets: usize,
    pub lambda: f64,
}

impl ReturnWindow {
    pub fn validate(&self) -> Result<()> {
        if self.assets == 0 || self.assets > MAX_ASSETS {
            return Err(KernelError::invalid("assets", format!("must be in 1..={MAX_ASSETS}, got {}", self.assets)));
        }
        if self.returns.is_empty() || !self.returns.len().is_multiple_of(self.assets) {
            return Err(KernelError::invalid(
                "returns",
                format!("needs a positive multiple of assets = {} values, got {}", self.assets, self.returns.len()),
            ));
        }
        all_finite("returns", &self.returns)?;
        if !(self.lambda > 0.0 && self.lambda < 1.0) {
            return Err(KernelError::invalid("lambda", format!("must be in (0, 1), got {}", self.lambda)));
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        (self.returns.len() / self.assets) as u64
    }
}

/// Per block: the weight sum, then the weighted cross-products of the lower triangle.
pub type EwmaPartial = Partial<Vec<f64>>;

/// Accumulates the rows of ages `units` (0 = newest; block-aligned start).
pub fn simulate(w: &ReturnWindow, units: Range<u64>) -> Result<EwmaPartial> {
    w.validate()?;
    if units.end > w.rows() {
        return Err(KernelError::invalid("rows", format!("asks for {} rows of a {}-row window", units.end, w.rows())));
    }
    let d = w.assets;
    let newest = w.rows() - 1;
    let blocks = chunk::blocks(&units, ROWS_PER_BLOCK)?
        .map(|(b, n)| {
            let mut acc = vec![0.0; 1 + d * (d + 1) / 2];
            for age in b * ROWS_PER_BLOCK..b * ROWS_PER_BLOCK + n {
                let weight = libm::pow(w.lambda, age as f64);
                let row = &w.returns[((newest - age) as usize) * d..][..d];
                acc[0] += weight;
                // Row i of the triangle is the next i + 1 sums: slices, not `acc[k]`, so the
                // inner loop has no bounds check (in Wasm a branch, and fuel, per product).
                let mut rest = &mut acc[1..];
                for (i, &ri) in row.iter().enumerate() {
                    let wi = weight * ri;
                    let (sums, tail) = rest.split_at_mut(i + 1);
                    for (s, &rj) in sums.iter_mut().zip(&row[..=i]) {
                        *s += wi * rj;
                    }
                    rest = tail;
                }
            }
            acc
        })
        .collect();
    Ok(Partial { units, blocks })
}

/// Normalises the weighted sums into the covariance, its Cholesky factor and the vols.
pub fn finish(w: &ReturnWindow, partial: &EwmaPartial) -> Result<Output> {
    let d = w.assets;
    let first = partial.blocks.first().ok_or_else(|| KernelError::invalid("rows", "must be at least 1"))?;
    let mut total = vec![0.0; first.len()];
    for b in &partial.blocks {
        total.iter_mut().zip(b).for_each(|(t, x)| *t += x);
    }
    let mut cov = vec![0.0; d * d];
    let mut k = 1;
    for i in 0..d {
        for j in 0..=i {
            cov[i * d + j] = total[k] / total[0];
            cov[j * d + i] = cov[i * d + j];
            k += 1;
        }
    }
    let vols: Vec<f64> = (0..d).map(|i| cov[i * d + i].sqrt()).collect();
    let chol = cholesky(&cov, d, "returns").map_err(|_| {
        KernelError::NumericFailure(format!(
            "covariance of {} rows is not positive definite (needs at least {d} independent rows)",
            partial.len()
        ))
    })?;
    Ok(Output {
        estimates: vec![("weight_used", Estimate::exact(1.0 - libm::pow(w.lambda, partial.len() as f64)))],
        arrays: vec![("covariance", cov), ("cholesky", chol), ("vols", vols)],
        units_done: partial.len(),
    })
}

/// Uses the `rows` most recent rows in one call.
pub fn run(w: &ReturnWindow, rows: u64) -> Result<Output> {
    if rows == 0 {
        return Err(KernelError::invalid("rows", "must be at least 1"));
    }
    finish(w, &simulate(w, 0..rows)?)
}
