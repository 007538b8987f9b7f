//! Randomised quasi-Monte Carlo for an option book (`method = "qmc"`).
//!
//! Paths come from a Sobol sequence in `steps` dimensions (one for a European book), each
//! coordinate Owen-scrambled under a seed of the job's (`qmc`), mapped to a normal by its
//! quantile. Sobol points fill the cube far more evenly than random ones, so a smooth payoff's
//! average converges nearly as `1/n` instead of `1/sqrt(n)`; the scramble makes every point
//! uniform, so each randomisation's average is unbiased, and `RANDOMISATIONS` independent
//! randomisations give the error bar: the spread of their averages.
//!
//! Units interleave the randomisations: unit `u` is point `u / R` of randomisation `u % R`. A
//! run of `n` units is a prefix of a longer one, in whole rounds of one point per
//! randomisation when `n` is a multiple of `R` (every grant of whole blocks is), and each
//! randomisation's points are a `(t, m)`-net, the balance QMC needs, when the run holds `2^m`
//! points of each: a power-of-two number of blocks.
//!
//! A path-dependent book builds its path by a Brownian bridge: the first coordinate sets the
//! terminal value, the next the midpoint, and so on by halving, so the few coordinates Sobol
//! balances best carry most of the path's variance.

use super::{
    Contract, OptionBook, OptionPartial, OptionType, PathKind, Style, Sums, closed_form, european_payoff, grid_sample,
};
use crate::error::{KernelError, Result};
use crate::output::Estimate;
use crate::qmc::{MAX_DIMENSIONS, Sobol, owen_scramble, scramble_seed, to_unit};
use crate::special::normal_quantile;

/// Independent randomisations of the point set. Fewer would leave each more points, which QMC
/// rewards, but the randomisations' averages are not quite normal (a net always puts a point
/// in the last stratum of every coordinate), and their mean needs enough of them to be: with
/// 16, 2000 seeds of a European call's (sampled as its put) 95% interval covered 93.8% at
/// 2^16 points, with 32 95.2%. The error bar is widened by Student's `t` for 31 degrees of freedom, so that
/// `+- 1.96` error bars stay a 95% interval. A block is 32 rounds of one point each.
pub const RANDOMISATIONS: u64 = 32;

/// The most steps a QMC path may have: one Sobol dimension a step.
pub const MAX_QMC_STEPS: u32 = MAX_DIMENSIONS as u32;

/// What a block's QMC paths need, built once a run: the points, the scramble seeds, the
/// bridge, the walk over the grid and the contracts the paths sample (`sampled`).
pub(super) struct QuasiPaths {
    sobol: Sobol,
    /// `seeds[r * d + k]`: randomisation `r`'s scramble seed and digital shift for coordinate
    /// `k`.
    seeds: Vec<(u32, u32)>,
    bridge: Bridge,
    grid: GridWalk,
    priced: Vec<Contract>,
    /// A terminal path's log drift to maturity and its deviation per unit normal.
    terminal: (f64, f64),
}

impl QuasiPaths {
    pub(super) fn new(book: &OptionBook, seed: u64) -> Result<Self> {
        let d = match book.path_kind {
            PathKind::Terminal => 1,
            PathKind::Grid => book.steps as usize,
        };
        let sobol = Sobol::new(d)
            .map_err(|_| KernelError::invalid("steps", format!("qmc paths take at most {MAX_QMC_STEPS} steps")))?;
        // The shift after the scramble makes every point exactly uniform on the 2^-32 grid
        // (the hash scramble alone only nearly so); it keeps the nets, as any digit flip does.
        let shift_of = |r, k| scramble_seed(seed, r, k + MAX_DIMENSIONS as u32);
        let seeds = (0..RANDOMISATIONS as u32)
            .flat_map(|r| (0..d as u32).map(move |k| (scramble_seed(seed, r, k), shift_of(r, k))))
            .collect();
        let m = &book.market;
        let terminal = ((m.rate - m.dividend - 0.5 * m.vol * m.vol) * m.maturity, m.vol * m.maturity.sqrt());
        let priced = book.contracts.iter().map(sampled).collect();
        Ok(QuasiPaths { sobol, seeds, bridge: Bridge::new(d), grid: GridWalk::new(book), priced, terminal })
    }
}

/// Simulates units `start .. start + n` (`start` a multiple of `RANDOMISATIONS`) into the
/// per-randomisation sums of `sums`.
pub(super) fn quasi_block(book: &OptionBook, q: &QuasiPaths, start: u64, n: u64, sums: &mut [Sums]) {
    let d = q.sobol.dimensions();
    let (mut x, mut z, mut w) = (vec![0u32; d], vec![0.0; d], vec![0.0; d + 1]);
    let r_count = RANDOMISATIONS as usize;
    for s in sums.iter_mut() {
        s.by_randomisation = vec![[0.0; 2]; r_count];
    }
    let (spot, inv_spot) = (book.market.spot, 1.0 / book.market.spot);
    let (log_drift, sd) = q.terminal;
    let priced = &q.priced;
    for u in start..start + n {
        let (point, r) = ((u / RANDOMISATIONS) as u32, (u % RANDOMISATIONS) as usize);
        // A round starts a new point; the block's first one is found from its index.
        if u == start {
            q.sobol.point(point, &mut x);
        } else if r == 0 {
            q.sobol.next_from(point - 1, &mut x);
        }
        let seeds = &q.seeds[r * d..(r + 1) * d];
        for ((zk, &xk), &sk) in z.iter_mut().zip(&x).zip(seeds) {
            *zk = normal_quantile(to_unit(owen_scramble(xk, sk.0) ^ sk.1));
        }
        match book.path_kind {
            PathKind::Terminal => {
                let st = spot * libm::exp(log_drift + sd * z[0]);
                for ((c, sum), p) in book.contracts.iter().zip(sums.iter_mut()).zip(priced) {
                    let x = european_payoff(st, p.strike, p.kind == OptionType::Call, inv_spot);
                    add(sum, r, x, pays(c, p, x));
                }
            }
            PathKind::Grid => {
                q.bridge.increments(&z, &mut w);
                q.grid.path(priced, &w[1..], |i, x| add(&mut sums[i], r, x, pays(&book.contracts[i], &priced[i], x)));
            }
        }
    }
}

/// The contract whose payoff a QMC path samples: a European or Asian call as its put, by parity
/// (`call = put + forward - strike`, the last two with known means). A call's payoff grows
/// without bound in the far tail, where one point of every randomisation always lands (a net
/// puts a point in each stratum, the last one included): its rare huge values skewed the
/// randomisations' averages, and their 95% intervals covered 91%. A put's payoff is bounded.
fn sampled(c: &Contract) -> Contract {
    match (c.kind, c.style) {
        (OptionType::Call, Style::European | Style::Asian) => Contract { kind: OptionType::Put, ..*c },
        _ => *c,
    }
}

/// Whether the contract `c` paid on a path where its sampled contract `p` paid `x`: a call
/// sampled as its put pays where the put does not (ties have probability 0).
fn pays(c: &Contract, p: &Contract, x: [f64; 2]) -> bool {
    if c.kind == p.kind { x[0] > 0.0 } else { x[0] == 0.0 }
}

fn add(sum: &mut Sums, r: usize, x: [f64; 2], pays: bool) {
    sum.contributing += u64::from(pays);
    let s = &mut sum.by_randomisation[r];
    s[0] += x[0];
    s[1] += x[1];
}

/// A GBM walk over the book's grid from step normals, as the plain grid kernel walks it.
struct GridWalk {
    drift: f64,
    sd: f64,
    log_spot: f64,
    inv_steps: f64,
    log_levels: Vec<f64>,
    average: bool,
}

impl GridWalk {
    fn new(book: &OptionBook) -> Self {
        let m = &book.market;
        let dt = m.maturity / book.steps as f64;
        GridWalk {
            drift: (m.rate - m.dividend - 0.5 * m.vol * m.vol) * dt,
            sd: m.vol * dt.sqrt(),
            log_spot: libm::log(m.spot),
            inv_steps: 1.0 / book.steps as f64,
            log_levels: super::log_levels(book),
            average: book.contracts.iter().any(|c| c.style == super::Style::Asian),
        }
    }

    /// Walks one path and hands each of `contracts`' samples (by index) to `sample`.
    fn path(&self, contracts: &[Contract], z: &[f64], mut sample: impl FnMut(usize, [f64; 2])) {
        let (mut x, mut lo, mut hi, mut sum_s, mut sum_x) = (self.log_spot, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
        for &zk in z {
            x += self.drift + self.sd * zk;
            if x < lo {
                lo = x;
            }
            if x > hi {
                hi = x;
            }
            sum_x += x;
            if self.average {
                sum_s += libm::exp(x);
            }
        }
        let st = libm::exp(x);
        for (i, (c, &level)) in contracts.iter().zip(&self.log_levels).enumerate() {
            sample(i, grid_sample(c, level, st, lo, hi, sum_s * self.inv_steps, sum_x * self.inv_steps));
        }
    }
}

/// The Brownian bridge over `d` equal steps: the order in which the path's points are set
/// from the coordinates, and each point's weights on its neighbours. Times are in steps, so
/// the increments come out as unit normals.
struct Bridge {
    /// `(point, left, right, left weight, right weight, sd)`, in the order coordinates feed them.
    plan: Vec<(usize, usize, usize, f64, f64, f64)>,
}

impl Bridge {
    fn new(d: usize) -> Self {
        // The terminal point first (from the start, which is 0), then midpoints breadth first.
        let mut plan = vec![(d, 0, 0, 0.0, 0.0, (d as f64).sqrt())];
        let mut intervals = std::collections::VecDeque::from([(0usize, d)]);
        while let Some((l, r)) = intervals.pop_front() {
            if r - l < 2 {
                continue;
            }
            let mid = (l + r) / 2;
            let (a, b, len) = ((mid - l) as f64, (r - mid) as f64, (r - l) as f64);
            plan.push((mid, l, r, b / len, a / len, (a * b / len).sqrt()));
            intervals.push_back((l, mid));
            intervals.push_back((mid, r));
        }
        Bridge { plan }
    }

    /// The path's unit step normals (`w[1..]`) from the coordinates' normals `z`; `w[0]` is 0.
    fn increments(&self, z: &[f64], w: &mut [f64]) {
        w[0] = 0.0;
        for (&(point, l, r, wl, wr, sd), &zk) in self.plan.iter().zip(z) {
            w[point] = wl * w[l] + wr * w[r] + sd * zk;
        }
        // Differences in place, from the end: each step's increment of the Brownian path.
        for k in (1..w.len()).rev() {
            w[k] -= w[k - 1];
        }
    }
}

/// Contract `i`'s estimates from the per-randomisation sums of `partial` (units from 0): each
/// randomisation's averages, then their mean and spread. An Asian price keeps its control
/// variate, fitted across the randomisations' averages.
pub(super) fn estimates(
    book: &OptionBook,
    c: &Contract,
    partial: &OptionPartial,
    i: usize,
) -> Result<Vec<(&'static str, Estimate)>> {
    let n = partial.len();
    if n < 2 * RANDOMISATIONS {
        return Err(KernelError::invalid("paths", format!("qmc needs at least {} paths", 2 * RANDOMISATIONS)));
    }
    let mut sums = vec![[0.0; 2]; RANDOMISATIONS as usize];
    for block in &partial.blocks {
        for (s, x) in sums.iter_mut().zip(&block[i].by_randomisation) {
            s[0] += x[0];
            s[1] += x[1];
        }
    }
    // Unit u belongs to randomisation u % R: the first n % R randomisations have one more.
    let means: Vec<[f64; 2]> = sums
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let count = (n / RANDOMISATIONS + u64::from((r as u64) < n % RANDOMISATIONS)) as f64;
            [s[0] / count, s[1] / count]
        })
        .collect();
    let df = book.discount();
    let first: Vec<f64> = means.iter().map(|m| m[0]).collect();
    let second: Vec<f64> = means.iter().map(|m| m[1]).collect();
    let p = sampled(c);
    let m = &book.market;
    // What parity adds to the sampled put's price and delta, undiscounted: `E[S_T] - K` and
    // the pathwise delta of `S_T`; `E[A] - K` and `E[G] - K` for an Asian call.
    let (add_price, add_second) = match (c.kind == p.kind, c.style) {
        (true, _) => (0.0, 0.0),
        (false, Style::Asian) => {
            let (log_mean, var) =
                closed_form::log_geometric_average(m.spot, m.rate, m.dividend, m.vol, m.maturity, book.steps);
            let arithmetic =
                closed_form::expected_arithmetic_average(m.spot, m.rate, m.dividend, m.maturity, book.steps);
            (arithmetic - c.strike, libm::exp(log_mean + 0.5 * var) - c.strike)
        }
        (false, _) => {
            let growth = libm::exp((m.rate - m.dividend) * m.maturity);
            (m.spot * growth - c.strike, growth)
        }
    };
    let est = |(v, se): (f64, f64), add: f64| Estimate::new(df * (v + add), df * se);
    Ok(match c.style {
        Style::European => {
            vec![("price", est(across(&first, 1), add_price)), ("delta", est(across(&second, 1), add_second))]
        }
        Style::Barrier { .. } => vec![("price", est(across(&first, 1), 0.0))],
        Style::Asian => {
            let geo = closed_form::geometric_asian(p.kind, p.strike, m, book.steps) / df;
            let (ma, mg) = (mean(&first), mean(&second));
            let cov: f64 = first.iter().zip(&second).map(|(a, g)| (a - ma) * (g - mg)).sum();
            let var_g: f64 = second.iter().map(|g| (g - mg) * (g - mg)).sum();
            let beta = if var_g > 0.0 { cov / var_g } else { 0.0 };
            let adjusted: Vec<f64> = first.iter().zip(&second).map(|(a, g)| a - beta * (g - geo)).collect();
            vec![
                // The fitted slope costs a degree of freedom.
                ("price", est(across(&adjusted, 2), add_price)),
                ("price_plain", est(across(&first, 1), add_price)),
                ("geometric_price", est(across(&second, 1), add_second)),
            ]
        }
    })
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The spread of per-randomisation estimates: their mean and the standard error of that mean,
/// widened by Student's `t` so that `mean +- 1.96 se` is a 95% interval with this few of them.
pub(super) fn across(values: &[f64], lost_degrees: usize) -> (f64, f64) {
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    let dof = values.len().saturating_sub(lost_degrees).max(1) as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / dof;
    (mean, (var / k).sqrt() * t_975(dof) / 1.959_963_984_540_054)
}

/// Student's `t` 97.5% quantile for `dof` degrees of freedom, by its Cornish-Fisher expansion
/// about the normal quantile: within 3e-3 at 5 degrees of freedom, far closer at the 31 used here.
pub(super) fn t_975(dof: f64) -> f64 {
    let z: f64 = 1.959_963_984_540_054;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * dof)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * dof * dof)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * dof * dof * dof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_gives_unit_increments_and_the_right_endpoint() {
        for d in [1usize, 2, 3, 7, 12, 64] {
            let bridge = Bridge::new(d);
            assert_eq!(bridge.plan.len(), d, "every point is set once");
            let mut seen: Vec<usize> = bridge.plan.iter().map(|p| p.0).collect();
            seen.sort_unstable();
            assert_eq!(seen, (1..=d).collect::<Vec<_>>());
            // The covariance of the walk it builds is min(s, t): check Var(W_k) = k and
            // Cov(W_j, W_k) = min(j, k) through the linear map from z to W.
            let mut map = vec![vec![0.0; d]; d + 1];
            for (j, &(point, l, r, wl, wr, sd)) in bridge.plan.iter().enumerate() {
                for c in 0..d {
                    map[point][c] = wl * map[l][c] + wr * map[r][c];
                }
                map[point][j] += sd;
            }
            for a in 1..=d {
                for b in 1..=d {
                    let cov: f64 = (0..d).map(|c| map[a][c] * map[b][c]).sum();
                    assert!((cov - a.min(b) as f64).abs() < 1e-12, "d {d}: cov({a},{b}) = {cov}");
                }
            }
            // The first coordinate alone sets the terminal point.
            let mut z = vec![0.0; d];
            z[0] = 1.5;
            let mut w = vec![0.0; d + 1];
            bridge.increments(&z, &mut w);
            assert!((w[1..].iter().sum::<f64>() - 1.5 * (d as f64).sqrt()).abs() < 1e-12);
        }
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // Published two-sided 95% critical values.
        for (dof, t, within) in
            [(5.0, 2.570_582, 3e-3), (10.0, 2.228_139, 5e-4), (15.0, 2.131_450, 2e-4), (30.0, 2.042_272, 5e-5)]
        {
            assert!((t_975(dof) - t).abs() < within, "{dof}: {} vs {t}", t_975(dof));
        }
        let (mean, se) = across(&[1.0, 2.0, 3.0, 4.0], 1);
        assert_eq!(mean, 2.5);
        let plain = (5.0f64 / 3.0 / 4.0).sqrt();
        assert!((se / plain - t_975(3.0) / 1.959_963_984_540_054).abs() < 1e-12);
    }
}
