//! `particle-filter`: a bootstrap particle filter for the linear-Gaussian model
//! `x_t = a x_{t-1} + q e_t`, `y_t = x_t + r n_t`, `x_0 = 0`.
//!
//! The particles are cut into independent islands of `BLOCK` particles, each a complete filter
//! on its own ChaCha stream (the island particle model of Vergé et al., 2015). Averaging the
//! islands' likelihood estimates keeps the estimator unbiased for the likelihood, makes the
//! result independent of how islands are spread over chunks, makes a run with fewer particles a
//! prefix of the full run at island granularity, and gives an honest standard error from the
//! spread between islands. Within an island, systematic resampling runs when the effective
//! sample size falls below half the island. Within an observation, the particles run in vector
//! lanes (`lanes`).

use crate::chunk::{self, BLOCK, Partial};
use crate::error::{KernelError, Result, finite, positive};
use crate::output::{Estimate, Output};
use crate::rng::{Normals, block_rng};
use crate::vmath::Simd;
use lanes::{Normalise, Propagate, ROW, Reweight};
use std::f64::consts::PI;
use std::ops::Range;

mod lanes;

/// Longest observation series accepted.
pub const MAX_OBSERVATIONS: usize = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub struct StateSpaceModel {
    pub a: f64,
    /// Standard deviation of the state noise.
    pub q: f64,
    /// Standard deviation of the observation noise.
    pub r: f64,
    pub observations: Vec<f64>,
}

impl StateSpaceModel {
    pub fn validate(&self) -> Result<()> {
        finite("a", self.a)?;
        positive("q", self.q)?;
        positive("r", self.r)?;
        if self.observations.is_empty() || self.observations.len() > MAX_OBSERVATIONS {
            return Err(KernelError::invalid(
                "observations",
                format!("needs 1..={MAX_OBSERVATIONS} values, got {}", self.observations.len()),
            ));
        }
        crate::error::all_finite("observations", &self.observations)
    }
}

/// One island's running log-likelihood and filtered mean after each observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Island {
    pub log_z: Vec<f64>,
    pub means: Vec<f64>,
}

pub type FilterPartial = Partial<Island>;

/// Runs the islands covering particles `units` (block-aligned start), in vector lanes as wide
/// as this CPU runs best.
pub fn simulate(model: &StateSpaceModel, seed: u64, units: Range<u64>) -> Result<FilterPartial> {
    simulate_with(model, seed, units, Simd::best())
}

/// [`simulate`] at a given width and instruction set; the results are the same bits whatever
/// `simd` is, only the time differs.
pub fn simulate_with(model: &StateSpaceModel, seed: u64, units: Range<u64>, simd: Simd) -> Result<FilterPartial> {
    model.validate()?;
    let blocks = chunk::blocks(&units, BLOCK)?.map(|(b, n)| island(model, seed, b, n as usize, simd)).collect();
    Ok(Partial { units, blocks })
}

/// One island of `p` particles. Each observation draws one word per particle (its state
/// noise, in particle order), then one more when the island resamples.
fn island(model: &StateSpaceModel, seed: u64, block: u64, p: usize, simd: Simd) -> Island {
    let mut normals = Normals::new(block_rng(seed, block));
    let t_len = model.observations.len();
    let inv_r2 = 1.0 / (model.r * model.r);
    let log_norm = -0.5 * libm::log(2.0 * PI) - libm::log(model.r);
    let rows = p.div_ceil(ROW);
    // Padded to whole rows; a padding lane's weight stays 0.
    let mut x = vec![[0.0; ROW]; rows];
    let mut next = vec![0.0; p];
    let mut w = vec![[0.0; ROW]; rows];
    w.as_flattened_mut()[..p].fill(1.0 / p as f64);
    let mut g = vec![[0.0; ROW]; rows];
    let mut z = vec![[0.0; ROW]; rows];
    let mut words = vec![0u64; p];
    let mut out = Island { log_z: Vec::with_capacity(t_len), means: Vec::with_capacity(t_len) };
    let mut log_z = 0.0;
    for &y in &model.observations {
        normals.fill_words(&mut words);
        simd.normals_from_words(&words, &mut z.as_flattened_mut()[..p]).expect("a normal per word");
        let (a, q) = (model.a, model.q);
        let gmax = simd.run(Propagate { a, q, y, inv_r2, particles: p, z: &z, x: &mut x, g: &mut g });
        let s = simd.run(Reweight { gmax, g: &g, w: &mut w });
        log_z += log_norm + gmax + libm::log(s);
        let (mean, sum_sq) = simd.run(Normalise { s, x: &x, w: &mut w });
        out.log_z.push(log_z);
        out.means.push(mean);
        if sum_sq * (p as f64) > 2.0 {
            let (xs, ws) = (&x.as_flattened()[..p], &w.as_flattened()[..p]);
            systematic_resample(xs, ws, &mut next, normals.uniform());
            x.as_flattened_mut()[..p].copy_from_slice(&next);
            w.as_flattened_mut()[..p].fill(1.0 / p as f64);
        }
    }
    out
}

/// Copies particle `i` about `p w_i` times, using one uniform for the whole sweep.
fn systematic_resample(x: &[f64], w: &[f64], out: &mut [f64], u: f64) {
    let p = x.len();
    let step = 1.0 / p as f64;
    let mut target = u * step;
    let mut cumulative = w[0];
    let mut i = 0;
    for slot in out.iter_mut() {
        while cumulative < target && i + 1 < p {
            i += 1;
            cumulative += w[i];
        }
        *slot = x[i];
        target += step;
    }
}

/// Combines the islands: log of the mean likelihood, likelihood-weighted filtered means.
pub fn finish(model: &StateSpaceModel, partial: &FilterPartial) -> Result<Output> {
    let islands = &partial.blocks;
    if islands.is_empty() {
        return Err(KernelError::invalid("particles", "must be at least 1"));
    }
    let t_len = model.observations.len();
    let k = islands.len() as f64;
    let mut means = Vec::with_capacity(t_len);
    for t in 0..t_len {
        let top = islands.iter().map(|i| i.log_z[t]).fold(f64::NEG_INFINITY, f64::max);
        let (mut num, mut den) = (0.0, 0.0);
        for isl in islands {
            let wgt = libm::exp(isl.log_z[t] - top);
            num += wgt * isl.means[t];
            den += wgt;
        }
        means.push(num / den);
    }
    let top = islands.iter().map(|i| i.log_z[t_len - 1]).fold(f64::NEG_INFINITY, f64::max);
    let rel: Vec<f64> = islands.iter().map(|i| libm::exp(i.log_z[t_len - 1] - top)).collect();
    let mean_rel = rel.iter().sum::<f64>() / k;
    let loglik = top + libm::log(mean_rel);
    // Delta method on the log of a mean: se(log Z) = sd(Z_b) / (sqrt(K) mean(Z_b)).
    let se = if islands.len() > 1 {
        let var = rel.iter().map(|z| (z - mean_rel) * (z - mean_rel)).sum::<f64>() / (k - 1.0);
        (var / k).sqrt() / mean_rel
    } else {
        f64::NAN
    };
    if !loglik.is_finite() || means.iter().any(|m| !m.is_finite()) {
        return Err(KernelError::NumericFailure("particle weights collapsed to zero".into()));
    }
    Ok(Output {
        estimates: vec![("loglik", Estimate::new(loglik, se))],
        arrays: vec![("filtered_means", means)],
        units_done: partial.len(),
    })
}

/// Runs `particles` particles in one call.
pub fn run(model: &StateSpaceModel, seed: u64, particles: u64) -> Result<Output> {
    if particles == 0 {
        return Err(KernelError::invalid("particles", "must be at least 1"));
    }
    finish(model, &simulate(model, seed, 0..particles)?)
}

/// The exact answer by the Kalman filter: log-likelihood and filtered means.
pub fn kalman(model: &StateSpaceModel) -> Result<(f64, Vec<f64>)> {
    model.validate()?;
    let (a, q2, r2) = (model.a, model.q * model.q, model.r * model.r);
    let (mut m, mut p, mut loglik) = (0.0, 0.0, 0.0);
    let mut means = Vec::with_capacity(model.observations.len());
    for &y in &model.observations {
        let (m_pred, p_pred) = (a * m, a * a * p + q2);
        let s = p_pred + r2;
        let v = y - m_pred;
        loglik += -0.5 * (libm::log(2.0 * PI * s) + v * v / s);
        let gain = p_pred / s;
        m = m_pred + gain * v;
        p = (1.0 - gain) * p_pred;
        means.push(m);
    }
    Ok((loglik, means))
}
