//! `mc-var`: portfolio Value-at-Risk and Expected Shortfall under correlated GBM, by full
//! revaluation or the linear (delta-normal) approximation. Queries on one portfolio share the
//! Cholesky factor and the simulated normals; queries differing only in confidence share losses.
//!
//! Deep in the tail (confidence 99.5% and up under `auto`) a query is answered by importance
//! sampling: the factor normals are drawn about the point where the loss's linear approximation
//! first reaches its VaR (the Glasserman-Heidelberger-Shahabuddin mean shift from the delta
//! approximation), and each path is weighted by its likelihood ratio, so about half the paths
//! land in the tail instead of one in a thousand or fewer.

use crate::chunk::{self, BLOCK, Partial};
use crate::error::{KernelError, Result, all_finite, positive};
use crate::linalg::cholesky;
use crate::option::Method;
use crate::output::{Estimate, Output};
use crate::rng::{Normals, block_rng};
use crate::special::{normal_pdf, normal_quantile};
use crate::vmath::Simd;
use std::ops::Range;

mod paths;

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
    /// How the factor normals are drawn.
    sampling: VarSampling,
}

/// How a VaR book's factor normals are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum VarSampling {
    Plain,
    /// Drawn from `N(shift, I)`, each path weighted by `exp(-shift . z + |shift|^2 / 2)`.
    Shifted {
        shift: Vec<f64>,
    },
}

/// Under `auto`, importance sampling answers a single query at this confidence or above.
pub const AUTO_CONFIDENCE: f64 = 0.995;

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
        Ok(VarBook { portfolio, chol, queries, query_scenario, scenarios, coeffs, sampling: VarSampling::Plain })
    }

    /// The book with its normals drawn as `method` asks: importance sampling needs a single
    /// query, whose VaR point the shift aims at.
    pub fn with_method(self, method: Method) -> Result<Self> {
        let confidence = match self.queries.as_slice() {
            [q] => Some(q.confidence),
            _ => None,
        };
        let tilt = match (method, confidence) {
            (Method::Plain, _) | (Method::Auto, None) => false,
            (Method::Auto, Some(c)) => c >= AUTO_CONFIDENCE,
            (Method::Importance, Some(_)) => true,
            (Method::Importance, None) => {
                return Err(KernelError::invalid("method", "importance sampling answers one query at a time"));
            }
            (Method::Quasi, _) => {
                return Err(KernelError::invalid("method", "qmc prices options only: use auto, plain or importance"));
            }
        };
        let sampling = match (tilt, confidence) {
            (true, Some(c)) => self.tail_shift(c).map_or(VarSampling::Plain, |shift| VarSampling::Shifted { shift }),
            _ => VarSampling::Plain,
        };
        Ok(VarBook { sampling, ..self })
    }

    /// The book with `sampling`: how a combined book keeps its members'.
    pub fn with_sampling(self, sampling: VarSampling) -> Self {
        VarBook { sampling, ..self }
    }

    pub fn sampling(&self) -> &VarSampling {
        &self.sampling
    }

    /// The point of the factor space nearest the origin where the first scenario's loss, to
    /// first order in the normals, reaches its VaR at `confidence`: `z_alpha` along the loss's
    /// gradient at 0. `None` for a book whose loss does not move with the normals.
    fn tail_shift(&self, confidence: f64) -> Option<Vec<f64>> {
        let d = self.assets();
        let s = &self.scenarios[0];
        let (drift, scale) = self.coeffs[s.coeff_offset..s.coeff_offset + 2 * d].split_at(d);
        // Loss = -sum_i V_i (exp(m_i + s_i y_i) - 1), y = C z: d loss / d z_j = -sum_i V_i s_i e^{m_i} C_ij.
        let mut gradient = vec![0.0; d];
        for i in 0..d {
            let growth = if s.mode == VarMode::Full { libm::exp(drift[i]) } else { 1.0 };
            let w = -self.portfolio.positions[i] * scale[i] * growth;
            for (j, g) in gradient.iter_mut().enumerate().take(i + 1) {
                *g += w * self.chol[i * d + j];
            }
        }
        let norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return None;
        }
        let z = normal_quantile(confidence);
        Some(gradient.iter().map(|g| z * g / norm).collect())
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

/// Per block: per scenario, the simulated losses in path order, and each path's likelihood
/// ratio (empty under plain sampling).
pub type VarPartial = Partial<VarBlock>;

/// One block's paths.
#[derive(Clone, Debug, PartialEq)]
pub struct VarBlock {
    pub losses: Vec<Vec<f64>>,
    pub weights: Vec<f64>,
}

/// Simulates the paths `units` (block-aligned start) for every scenario of the book, in vector
/// lanes as wide as this CPU runs best.
pub fn simulate(book: &VarBook, seed: u64, units: Range<u64>) -> Result<VarPartial> {
    simulate_with(book, seed, units, Simd::best())
}

/// [`simulate`] at a given width and instruction set; the results are the same bits whatever
/// `simd` is, only the time differs.
pub fn simulate_with(book: &VarBook, seed: u64, units: Range<u64>, simd: Simd) -> Result<VarPartial> {
    let mut blocks = Vec::new();
    let shift = match &book.sampling {
        VarSampling::Plain => None,
        VarSampling::Shifted { shift } => Some((shift.as_slice(), 0.5 * shift.iter().map(|m| m * m).sum::<f64>())),
    };
    let mut scratch = paths::Scratch::new(book.assets());
    for (block, n) in chunk::blocks(&units, BLOCK)? {
        let mut normals = Normals::new(block_rng(seed, block));
        let n = n as usize;
        let mut losses: Vec<Vec<f64>> = book.scenarios.iter().map(|_| Vec::with_capacity(n)).collect();
        let mut weights = Vec::with_capacity(if shift.is_some() { n } else { 0 });
        paths::block(book, shift, simd, &mut scratch, &mut normals, n, &mut losses, &mut weights);
        blocks.push(VarBlock { losses, weights });
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
            losses.extend_from_slice(&b.losses[s]);
        }
        let mut estimates = match book.sampling {
            VarSampling::Plain => loss_statistics(&mut losses, q.confidence)?,
            VarSampling::Shifted { .. } => {
                let weights: Vec<f64> = partial.blocks.iter().flat_map(|b| b.weights.iter().copied()).collect();
                weighted_loss_statistics(&losses, &weights, q.confidence)?
            }
        };
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

/// VaR, ES, mean and standard deviation of P&L from importance-sampled losses and their
/// likelihood ratios `w` (mean 1 under the sampling). With the tail mass above `x` estimated as
/// `T(x) = sum w_i [L_i > x] / n`, VaR is the smallest loss with `T <= 1 - alpha`, and
/// `ES = VaR + sum w_i (L_i - VaR)^+ / (n (1 - alpha))`. Standard errors: VaR's from the tail
/// mass's sample variance over the loss density at VaR (a weighted spacing, the Hall-Sheather
/// bandwidth in probability); ES's from the sample variance of `w (L - VaR)^+`, which VaR's own
/// error does not move to first order.
fn weighted_loss_statistics(losses: &[f64], w: &[f64], alpha: f64) -> Result<Vec<(&'static str, Estimate)>> {
    let n = losses.len();
    let nf = n as f64;
    if let Some(bad) = losses.iter().chain(w).find(|x| !x.is_finite()) {
        return Err(KernelError::NumericFailure(format!("a simulated loss or weight is {bad}")));
    }
    let tail = 1.0 - alpha;
    // Losses from the largest down, with the tail mass above each (inclusive).
    // Sorted as (loss, weight) pairs, not through an index: the pairs sit together in memory.
    // Equal losses order by weight, so the order is fixed whatever the sort's internals.
    let mut sorted: Vec<(f64, f64)> = losses.iter().copied().zip(w.iter().copied()).collect();
    sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let mut mass = Vec::with_capacity(n);
    let mut acc = 0.0;
    for &(_, wi) in &sorted {
        acc += wi / nf;
        mass.push(acc);
    }
    let var_hat = sorted[mass.partition_point(|&x| x < tail).min(n - 1)].0;
    let (mut s1, mut s2, mut t2) = (0.0, 0.0, 0.0);
    for (&l, &wi) in losses.iter().zip(w) {
        let excess = (l - var_hat).max(0.0);
        s1 += wi * excess;
        s2 += (wi * excess) * (wi * excess);
        if l > var_hat {
            t2 += wi * wi;
        }
    }
    let es = var_hat + s1 / (nf * tail);
    let es_se = ((s2 / nf - (s1 / nf) * (s1 / nf)).max(0.0) / nf).sqrt() / tail;
    // The tail mass's variance, and the density at VaR: the mass over the loss between the
    // order statistics m either side of VaR's, m from the Hall-Sheather bandwidth at the share
    // of the sample above VaR (about half under a good shift, not 1 - alpha: the sampled
    // paths crowd around VaR, and a window of +-h in mass would span a curved stretch of the
    // tail and overstate the error).
    let tail_var = (t2 / nf - tail * tail).max(0.0) / nf;
    let k = mass.partition_point(|&x| x < tail).min(n - 1);
    let sampled_share = 1.0 - (k + 1) as f64 / nf;
    let m =
        ((nf * hall_sheather(n, sampled_share.clamp(1e-9, 1.0 - 1e-9))).round() as usize).max(1).min(k).min(n - 1 - k);
    let var_se = if m > 0 {
        let width = sorted[k - m].0 - sorted[k + m].0;
        let window_mass = mass[k + m] - mass[k - m];
        if width > 0.0 { tail_var.sqrt() * width / window_mass } else { f64::NAN }
    } else {
        f64::NAN
    };
    // The P&L's mean and spread under the original measure.
    let mean = losses.iter().zip(w).map(|(l, wi)| wi * l).sum::<f64>() / nf;
    let second = losses.iter().zip(w).map(|(l, wi)| wi * l * l).sum::<f64>() / nf;
    let mean_se = (losses.iter().zip(w).map(|(l, wi)| (wi * l - mean).powi(2)).sum::<f64>() / (nf - 1.0) / nf).sqrt();
    Ok(vec![
        ("var", Estimate::new(var_hat, var_se)),
        ("es", Estimate::new(es, es_se)),
        ("mean", Estimate::new(-mean, mean_se)),
        ("stdev", Estimate::new((second - mean * mean).max(0.0).sqrt(), f64::NAN)),
    ])
}

/// The Hall-Sheather bandwidth for the density at the `alpha` quantile, in probability:
/// `n^{-1/3} z_{0.975}^{2/3} (1.5 phi(z)^2 / (2 z^2 + 1))^{1/3}`.
fn hall_sheather(n: usize, alpha: f64) -> f64 {
    let z = normal_quantile(alpha);
    let phi = normal_pdf(z);
    libm::cbrt(1.5 * phi * phi / (2.0 * z * z + 1.0)) * libm::pow(1.959_963_984_540_054, 2.0 / 3.0)
        / libm::cbrt(n as f64)
}

/// Half-width, in order statistics, of the window that estimates the density at the quantile:
/// the Hall-Sheather bandwidth `n^{-1/3} z_{0.975}^{2/3} (1.5 phi(z)^2 / (2 z^2 + 1))^{1/3}`.
fn spacing(n: usize, alpha: f64) -> usize {
    ((n as f64 * hall_sheather(n, alpha)).round() as usize).max(1)
}

/// Simulates `paths` paths in one call and answers every query.
pub fn run(book: &VarBook, seed: u64, paths: u64) -> Result<Vec<Output>> {
    if paths == 0 {
        return Err(KernelError::invalid("paths", "must be at least 1"));
    }
    finish(book, &simulate(book, seed, 0..paths)?)
}
