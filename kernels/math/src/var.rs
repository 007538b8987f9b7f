//! `mc-var`: portfolio Value-at-Risk and Expected Shortfall under correlated GBM, by full
//! revaluation or the linear (delta-normal) approximation. Queries on one portfolio share the
//! Cholesky factor and the simulated normals; queries differing only in confidence share losses.

use crate::chunk::{self, BLOCK, Partial};
use crate::error::{KernelError, Result, all_finite, positive};
use crate::linalg::{cholesky, lower_mul};
use crate::output::{Estimate, Output};
use crate::rng::{Normals, block_rng};
use crate::special::{normal_pdf, normal_quantile};
use std::ops::Range;

/// Most assets a portfolio may hold (the per-path cost grows with assets²).
pub const MAX_ASSETS: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarMode {
    /// Reprices each position: `V_i (exp((mu_i - sigma_i^2/2) h + sigma_i sqrt(h) y_i) - 1)`.
    Full,
    /// Linear returns, `X ~ N(mu h, Sigma h)`: the delta-normal model, with a closed form.
    Linear,
}

/// Dollar positions and their return model.
#[derive(Clone, Debug, PartialEq)]
pub struct Portfolio {
    pub positions: Vec<f64>,
    pub drifts: Vec<f64>,
    pub vols: Vec<f64>,
    /// d×d, row-major.
    pub correlation: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VarQuery {
    /// Years.
    pub horizon: f64,
    pub confidence: f64,
    pub mode: VarMode,
}

/// One simulated loss distribution: a horizon and a mode.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scenario {
    horizon: f64,
    mode: VarMode,
    /// Where this scenario's coefficients start in `VarBook::coeffs`.
    coeff_offset: usize,
}

/// A validated portfolio with its Cholesky factor and the queries to answer on shared paths.
#[derive(Clone, Debug)]
pub struct VarBook {
    portfolio: Portfolio,
    chol: Vec<f64>,
    queries: Vec<VarQuery>,
    /// For each query, the index of its scenario.
    query_scenario: Vec<usize>,
    scenarios: Vec<Scenario>,
    /// Per scenario: d drift terms (`(mu - sigma^2/2) h` full, `mu h` linear), then d scales `sigma sqrt(h)`.
    coeffs: Vec<f64>,
}

impl VarBook {
    pub fn new(portfolio: Portfolio, queries: Vec<VarQuery>) -> Result<Self> {
        let d = portfolio.positions.len();
        if d == 0 || d > MAX_ASSETS {
            return Err(KernelError::invalid("positions", format!("needs 1..={MAX_ASSETS} assets, got {d}")));
        }
        for (name, v) in [("drifts", &portfolio.drifts), ("vols", &portfolio.vols)] {
            if v.len() != d {
                return Err(KernelError::invalid(name, format!("has {} values for {d} positions", v.len())));
            }
        }
        if portfolio.correlation.len() != d * d {
            return Err(KernelError::invalid(
                "correlation",
                format!("needs {d}x{d} = {} values for {d} positions, got {}", d * d, portfolio.correlation.len()),
            ));
        }
        all_finite("positions", &portfolio.positions)?;
        all_finite("drifts", &portfolio.drifts)?;
        all_finite("vols", &portfolio.vols)?;
        all_finite("correlation", &portfolio.correlation)?;
        if let Some(i) = portfolio.vols.iter().position(|&v| v < 0.0) {
            return Err(KernelError::invalid("vols", format!("element {i} is negative ({})", portfolio.vols[i])));
        }
        let c = &portfolio.correlation;
        for i in 0..d {
            if (c[i * d + i] - 1.0).abs() > 1e-9 {
                return Err(KernelError::invalid(
                    "correlation",
                    format!("diagonal element {i} is {}, not 1", c[i * d + i]),
                ));
            }
            for j in 0..i {
                if (c[i * d + j] - c[j * d + i]).abs() > 1e-9 || c[i * d + j].abs() > 1.0 {
                    return Err(KernelError::invalid(
                        "correlation",
                        format!("element ({i},{j}) is not symmetric or not in [-1, 1]"),
                    ));
                }
            }
        }
        let chol = cholesky(c, d, "correlation")?;
        if queries.is_empty() {
            return Err(KernelError::invalid("queries", "a book needs a query"));
        }
        let mut scenarios: Vec<Scenario> = Vec::new();
        let mut coeffs = Vec::new();
        let mut query_scenario = Vec::with_capacity(queries.len());
        for q in &queries {
            positive("horizon", q.horizon)?;
            if !(q.confidence > 0.0 && q.confidence < 1.0) {
                return Err(KernelError::invalid("confidence", format!("must be in (0, 1), got {}", q.confidence)));
            }
            let found = scenarios.iter().position(|s| s.horizon == q.horizon && s.mode == q.mode);
            let idx = found.unwrap_or_else(|| {
                scenarios.push(Scenario { horizon: q.horizon, mode: q.mode, coeff_offset: coeffs.len() });
                let h = q.horizon;
                let (mu, sigma) = (&portfolio.drifts, &portfolio.vols);
                match q.mode {
                    VarMode::Full => coeffs.extend((0..d).map(|i| (mu[i] - 0.5 * sigma[i] * sigma[i]) * h)),
                    VarMode::Linear => coeffs.extend((0..d).map(|i| mu[i] * h)),
                }
                coeffs.extend((0..d).map(|i| sigma[i] * h.sqrt()));
                scenarios.len() - 1
            });
            query_scenario.push(idx);
        }
        Ok(VarBook { portfolio, chol, queries, query_scenario, scenarios, coeffs })
    }

    pub fn single(portfolio: Portfolio, query: VarQuery) -> Result<Self> {
        Self::new(portfolio, vec![query])
    }

    pub fn assets(&self) -> usize {
        self.portfolio.positions.len()
    }

    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    pub fn queries(&self) -> &[VarQuery] {
        &self.queries
    }

    /// Mean and standard deviation of the loss under the delta-normal model.
    fn linear_loss_distribution(&self, horizon: f64) -> (f64, f64) {
        let p = &self.portfolio;
        let d = self.assets();
        let mean = -horizon * p.positions.iter().zip(&p.drifts).map(|(v, m)| v * m).sum::<f64>();
        let mut var = 0.0;
        for i in 0..d {
            for j in 0..d {
                var += p.positions[i] * p.vols[i] * p.correlation[i * d + j] * p.vols[j] * p.positions[j];
            }
        }
        (mean, (var * horizon).sqrt())
    }
}

/// Per block, per scenario: the simulated losses in path order.
pub type VarPartial = Partial<Vec<Vec<f64>>>;

/// Simulates the paths `units` (block-aligned start) for every scenario of the book.
pub fn simulate(book: &VarBook, seed: u64, units: Range<u64>) -> Result<VarPartial> {
    let d = book.assets();
    let positions = &book.portfolio.positions;
    let mut z = vec![0.0; d];
    let mut y = vec![0.0; d];
    let mut blocks = Vec::new();
    for (block, n) in chunk::blocks(&units, BLOCK)? {
        let mut normals = Normals::new(block_rng(seed, block));
        let mut losses: Vec<Vec<f64>> = book.scenarios.iter().map(|_| Vec::with_capacity(n as usize)).collect();
        for _ in 0..n {
            normals.fill(&mut z);
            lower_mul(&book.chol, &z, &mut y);
            for (s, out) in book.scenarios.iter().zip(losses.iter_mut()) {
                let (drift, scale) = book.coeffs[s.coeff_offset..s.coeff_offset + 2 * d].split_at(d);
                let mut pnl = 0.0;
                match s.mode {
                    // Zipped, not indexed: no bounds checks (in Wasm a branch, and fuel, each).
                    VarMode::Full => {
                        for (((&p, &mu), &sigma), &yi) in positions.iter().zip(drift).zip(scale).zip(&y) {
                            pnl += p * (libm::exp(mu + sigma * yi) - 1.0);
                        }
                    }
                    VarMode::Linear => {
                        for (((&p, &mu), &sigma), &yi) in positions.iter().zip(drift).zip(scale).zip(&y) {
                            pnl += p * (mu + sigma * yi);
                        }
                    }
                }
                out.push(-pnl);
            }
        }
        blocks.push(losses);
    }
    Ok(Partial { units, blocks })
}

/// Answers every query of the book from its simulated losses.
pub fn finish(book: &VarBook, partial: &VarPartial) -> Result<Vec<Output>> {
    let n = partial.len() as usize;
    if n == 0 {
        return Err(KernelError::invalid("paths", "must be at least 1"));
    }
    let mut outputs = Vec::with_capacity(book.queries.len());
    let mut losses = Vec::with_capacity(n);
    for (q, &s) in book.queries.iter().zip(&book.query_scenario) {
        losses.clear();
        for b in &partial.blocks {
            losses.extend_from_slice(&b[s]);
        }
        let mut estimates = loss_statistics(&mut losses, q.confidence)?;
        if q.mode == VarMode::Linear {
            let (m, sd) = book.linear_loss_distribution(q.horizon);
            let z = normal_quantile(q.confidence);
            estimates.push(("analytic_var", Estimate::exact(m + sd * z)));
            estimates.push(("analytic_es", Estimate::exact(m + sd * normal_pdf(z) / (1.0 - q.confidence))));
        }
        outputs.push(Output { estimates, arrays: Vec::new(), units_done: n as u64 });
    }
    Ok(outputs)
}

/// VaR, ES, mean and standard deviation of P&L with their standard errors. Reorders `losses`.
fn loss_statistics(losses: &mut [f64], alpha: f64) -> Result<Vec<(&'static str, Estimate)>> {
    let n = losses.len();
    let nf = n as f64;
    if let Some(bad) = losses.iter().find(|x| !x.is_finite()) {
        return Err(KernelError::NumericFailure(format!("a simulated loss is {bad}")));
    }
    // Moments in path order, before the order statistics reorder the slice.
    let mean = losses.iter().sum::<f64>() / nf;
    let (mut m2, mut m4) = (0.0, 0.0);
    for &x in losses.iter() {
        let c = (x - mean) * (x - mean);
        m2 += c;
        m4 += c * c;
    }
    let var = if n > 1 { m2 / (nf - 1.0) } else { f64::NAN };
    let sd = var.sqrt();
    let kurt_term = m4 / nf - (m2 / nf) * (m2 / nf);
    let sd_se = (kurt_term / (4.0 * var * nf)).sqrt();

    // VaR is the ceil(n alpha)-th smallest loss; ES the mean of it and everything above.
    let k = ((nf * alpha).ceil() as usize).clamp(1, n) - 1;
    let m = spacing(n, alpha).min(k).min(n - 1 - k);
    let lo = k - m;
    losses.select_nth_unstable_by(lo, f64::total_cmp);
    let upper = &mut losses[lo..];
    upper.sort_unstable_by(f64::total_cmp);
    let var_hat = upper[m];
    let tail = &upper[m..];
    let tail_n = tail.len() as f64;
    let es = tail.iter().sum::<f64>() / tail_n;
    let tail_var =
        if tail.len() > 1 { tail.iter().map(|x| (x - es) * (x - es)).sum::<f64>() / (tail_n - 1.0) } else { f64::NAN };

    // Order-statistic standard error with the density at VaR from the spacing of neighbours.
    let var_se = if m > 0 {
        let sparsity = (upper[2 * m] - upper[0]) * nf / (2 * m) as f64;
        (alpha * (1.0 - alpha) / nf).sqrt() * sparsity
    } else {
        f64::NAN
    };
    // Asymptotic variance of the ES estimator: (Var(L | L >= VaR) + alpha (ES - VaR)^2) / (n (1 - alpha)).
    let es_se = ((tail_var + alpha * (es - var_hat) * (es - var_hat)) / (nf * (1.0 - alpha))).sqrt();

    Ok(vec![
        ("var", Estimate::new(var_hat, var_se)),
        ("es", Estimate::new(es, es_se)),
        ("mean", Estimate::new(-mean, sd / nf.sqrt())),
        ("stdev", Estimate::new(sd, sd_se)),
    ])
}

/// Half-width, in order statistics, of the window that estimates the density at the quantile:
/// the Hall-Sheather bandwidth `n^{-1/3} z_{0.975}^{2/3} (1.5 phi(z)^2 / (2 z^2 + 1))^{1/3}`.
fn spacing(n: usize, alpha: f64) -> usize {
    let z = normal_quantile(alpha);
    let phi = normal_pdf(z);
    let h = libm::cbrt(1.5 * phi * phi / (2.0 * z * z + 1.0)) * libm::pow(1.959_963_984_540_054, 2.0 / 3.0)
        / libm::cbrt(n as f64);
    ((n as f64 * h).round() as usize).max(1)
}

/// Simulates `paths` paths in one call and answers every query.
pub fn run(book: &VarBook, seed: u64, paths: u64) -> Result<Vec<Output>> {
    if paths == 0 {
        return Err(KernelError::invalid("paths", "must be at least 1"));
    }
    finish(book, &simulate(book, seed, 0..paths)?)
}
