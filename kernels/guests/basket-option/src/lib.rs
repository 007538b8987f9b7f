//! `basket-option`: a kernel that exists only as Wasm, the way a team ships one. A European
//! call or put on `B = sum_i weights_i S_i(T)` for correlated GBM assets, priced by Monte Carlo
//! with the `helix-math` building blocks, so it keeps the router's guarantees: block `i` draws
//! from stream `i` of the seed and blocks merge in order, so a degraded run is a prefix.
//!
//! Far out of the money plain Monte Carlo wastes nearly every path, so the kernel can draw
//! them by importance sampling (`method`): the independent normals `z` come from `N(mu, I)`
//! instead of `N(0, I)`, drawn exactly as plain paths draw theirs and then shifted
//! (`shift_normals`), and each path is weighted by its likelihood ratio
//! `exp(-mu . z + |mu|^2 / 2)` (`z` the shifted normals), which keeps the estimate unbiased for
//! any `mu`. The shift is the mode of `payoff(z) phi(z)`, where the price's integrand peaks
//! (`Contract::mode`); `auto` uses it when the option ends in the money less than 5% of the
//! time (`Contract::itm_probability`). Both are functions of the parameters alone, computed with
//! plain `f64` arithmetic and `libm`, so every run of a job draws the same paths.
//!
//! Every price says how many paths paid (`contributing_paths`, and `importance_shift`, `|mu|`,
//! when tilted); a price that fewer than 30 paths reached gets an error bar from a bound that
//! needs no sample (`Contract::price_bound`), not from a spread too small to show.
//!
//! Per path, importance sampling adds a `d`-term dot product and one `exp` (the weight) to the
//! `d` normals, the `d^2 / 2` of the Cholesky product and the `d` `exp`s of a plain path.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};
use helix_math::chunk::{BLOCK, blocks};
use helix_math::linalg::{cholesky, lower_mul};
use helix_math::moments::{BlockSums, Comoments, fold};
use helix_math::rng::{Normals, block_rng, shift_normals};
use helix_math::select::positive_part;
use helix_math::special::normal_cdf;

/// How a job asks its paths to be drawn (its `method` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// Importance sampling when the option ends in the money with probability under
    /// `AUTO_ITM_PROBABILITY` and the mode search converged; plain Monte Carlo otherwise.
    Auto,
    Plain,
    /// Importance sampling whenever the mode search finds the exercise region.
    Importance,
}

/// The threshold `mc-option` uses for single options.
const AUTO_ITM_PROBABILITY: f64 = helix_math::option::AUTO_ITM_PROBABILITY;

/// Below this many paths with a non-zero payoff, the sample spread says little about the
/// price's error, and its error bar becomes a bound (as in `mc-option`).
const FEW_CONTRIBUTING: u64 = 30;

/// How far (in standard deviations) the search for the exercise region looks, and its step.
/// Past 40 the region's probability is below `exp(-800)`, which no `f64` price shows.
const SEARCH_RADIUS: f64 = 40.0;
const SEARCH_STEP: f64 = 0.5;
/// Newton steps of the mode search; it converges in a handful (quadratically), this is a cap.
const MODE_ITERATIONS: usize = 100;
/// Halvings of a step that does not raise the objective before the search stops.
const HALVINGS: usize = 30;
/// The mode search's work cap, in Wasm fuel as measured: an evaluation of the payoff costs
/// about `10 d^2 + 300 d` (the Cholesky product, `d` `exp`s), a Newton step about `7 d^3` more
/// (the Hessian and its factor, `d^3 / 3` multiply-adds at ~20 fuel each). Past the cap the
/// search stops where it is, unconverged: every run gets `FUEL_FLOOR` (20 M) fuel on top of
/// what the manifest predicts per path, and the search must fit in it with the job's own
/// setup (~2 M at 64 assets). The cap binds only for large baskets: at 64 assets it allows
/// about five Newton steps after the search for the exercise region; at 16, all of them.
const SEARCH_FUEL: f64 = 12e6;
/// Where the search stops early (the cap, or no step raising the objective), it counts as
/// converged if the objective's gradient is this small relative to `1 + |z|`: a shift that
/// close to the mode is as good (Newton converges to `1e-8` otherwise).
const NEAR_MODE: f64 = 1e-4;

struct Basket;

impl Kernel for Basket {
    fn run(job: Job) -> Result<Output, KernelError> {
        let p = &job.params;
        let spots = p.array("spots")?;
        let weights = p.array("weights")?;
        let vols = p.array("vols")?;
        let d = spots.len();
        if weights.len() != d || vols.len() != d {
            return Err(KernelError::InvalidInput {
                param: "weights",
                reason: format!("weights and vols need one value per spot ({d})"),
            });
        }
        let chol = cholesky(p.array("correlation")?, d, "correlation")?;
        let (rate, t, strike) = (p.number("rate")?, p.number("maturity")?, p.number("strike")?);
        let call = p.text_or("type", "call")? == "call";
        let method = p.choice(
            "method",
            "auto",
            &[("auto", Method::Auto), ("plain", Method::Plain), ("importance", Method::Importance)],
        )?;
        let units = match job.units {
            Some(u) => u,
            None => p.count("paths")?,
        };
        let c = Contract::new(spots, weights, vols, chol, rate, t, strike, call);
        let shift = c.shift(method);
        let length_sq = shift.as_ref().map(|mu| mu.iter().map(|m| m * m).sum::<f64>());
        let tilt = shift.as_deref().zip(length_sq).map(|(mu, sq)| (mu, 0.5 * sq));
        let (m, contributing) = c.simulate(job.seed, units, tilt)?;
        let df = libm::exp(-rate * t);
        let mut price = Estimate::new(df * m.mean[0], df * m.std_error(0));
        if contributing < FEW_CONTRIBUTING {
            // Too few paths paid for their spread to show: the true price lies in [0, bound],
            // so an estimate v >= 0 is off by at most max(v, bound), whatever the sample. The
            // bar is 0 only when the bound proves the price is 0.
            let bar = price.std_error.unwrap_or(0.0).max(price.value.abs()).max(c.price_bound());
            price.std_error = Some(bar);
        }
        let mut estimates = vec![("price", price), ("contributing_paths", Estimate::exact(contributing as f64))];
        if let Some(sq) = length_sq {
            estimates.push(("importance_shift", Estimate::exact(sq.sqrt())));
        }
        if estimates.iter().any(|(_, e)| !e.value.is_finite() || e.std_error.is_some_and(|s| !s.is_finite())) {
            return Err(KernelError::NumericFailure("non-finite basket price".into()));
        }
        Ok(Output { estimates, arrays: Vec::new(), units_done: units })
    }
}

/// The option and its market. With `y = L z` (`L` the correlation's Cholesky factor, `z`
/// independent standard normals), asset `i` ends at `S_i exp(m_i + s_i y_i)`,
/// `m_i = (r - vol_i^2 / 2) T` and `s_i = vol_i sqrt(T)`, so the basket is
/// `B(z) = sum_i a_i exp(s_i y_i)` with `a_i = w_i S_i exp(m_i)`.
struct Contract<'a> {
    spots: &'a [f64],
    weights: &'a [f64],
    chol: Vec<f64>,
    rate: f64,
    t: f64,
    strike: f64,
    call: bool,
    /// `m_i` and `s_i`.
    drift: Vec<f64>,
    scale: Vec<f64>,
    /// `a_i`.
    level: Vec<f64>,
}

impl<'a> Contract<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        spots: &'a [f64],
        weights: &'a [f64],
        vols: &[f64],
        chol: Vec<f64>,
        rate: f64,
        t: f64,
        strike: f64,
        call: bool,
    ) -> Self {
        let drift: Vec<f64> = vols.iter().map(|v| (rate - 0.5 * v * v) * t).collect();
        let scale: Vec<f64> = vols.iter().map(|v| v * t.sqrt()).collect();
        let level = (0..spots.len()).map(|i| weights[i] * spots[i] * libm::exp(drift[i])).collect();
        Contract { spots, weights, chol, rate, t, strike, call, drift, scale, level }
    }

    fn d(&self) -> usize {
        self.spots.len()
    }

    /// +1 for a call, -1 for a put: the payoff is `(sign (B - K))+`.
    fn sign(&self) -> f64 {
        if self.call { 1.0 } else { -1.0 }
    }

    /// The shift `method` gives the normals, `None` for plain Monte Carlo.
    fn shift(&self, method: Method) -> Option<Vec<f64>> {
        match method {
            Method::Plain => None,
            Method::Importance => self.mode().map(|(mu, _)| mu),
            Method::Auto if self.itm_probability() < AUTO_ITM_PROBABILITY => {
                self.mode().and_then(|(mu, converged)| converged.then_some(mu))
            }
            Method::Auto => None,
        }
    }

    /// Runs paths `0..units`, `tilt` the normals' shift and half its squared length: the
    /// moments of the (weighted, undiscounted) payoff, and how many paths paid.
    fn simulate(&self, seed: u64, units: u64, tilt: Option<(&[f64], f64)>) -> Result<(Comoments<1>, u64), KernelError> {
        let mut per_block: Vec<Comoments<1>> = Vec::new();
        let mut contributing = 0;
        for (block, n) in blocks(&(0..units), BLOCK)? {
            let mut normals = Normals::new(block_rng(seed, block));
            let (sums, paid) = match tilt {
                None => self.paths::<false>(&mut normals, n, &[], 0.0),
                Some((mu, half_sq)) => self.paths::<true>(&mut normals, n, mu, half_sq),
            };
            per_block.push(sums.finish());
            contributing += paid;
        }
        Ok((fold(&per_block), contributing))
    }

    /// One block's `n` paths; `TILTED`: shifted by `mu` and weighted. A loop of its own for
    /// each, so the plain one carries nothing of the tilt.
    #[inline(never)]
    fn paths<const TILTED: bool>(
        &self,
        normals: &mut Normals<helix_math::rng::BlockStream>,
        n: u64,
        mu: &[f64],
        half_sq: f64,
    ) -> (BlockSums<1>, u64) {
        let d = self.d();
        let (spots, weights, drift, scale) = (self.spots, self.weights, &self.drift, &self.scale);
        let (mut z, mut y) = (vec![0.0; d], vec![0.0; d]);
        let mut sums = BlockSums::<1>::new();
        let mut paid = 0;
        for _ in 0..n {
            normals.fill(&mut z);
            let w = if TILTED { shift_normals(&mut z, mu, half_sq) } else { 1.0 };
            lower_mul(&self.chol, &z, &mut y);
            let basket: f64 = (0..d).map(|i| weights[i] * spots[i] * libm::exp(drift[i] + scale[i] * y[i])).sum();
            let payoff = positive_part(if self.call { basket - self.strike } else { self.strike - basket });
            paid += u64::from(payoff > 0.0);
            sums.add([if TILTED { w * payoff } else { payoff }]);
        }
        (sums, paid)
    }

    /// The chance that the option ends in the money, by matching the basket's first two
    /// moments (closed-form: `E B = sum_i w_i F_i`, `Cov(w_i S_i, w_j S_j) =
    /// w_i F_i w_j F_j (exp(rho_ij s_i s_j) - 1)`, `F_i = S_i exp(rT)`) to a distribution:
    ///
    /// - weights all non-negative: a lognormal (the classic basket approximation: a sum of
    ///   positive lognormals is close to one, and exact for one asset);
    /// - some negative (a spread): a normal. The basket can be negative, which no lognormal
    ///   allows; the normal is poor far in the tails, but the decision is made at the 5% point,
    ///   1.6 standard deviations out, where the body of the distribution decides. `auto` then
    ///   tilts only if the mode search also converged into the exercise region. A wrong
    ///   choice costs efficiency only: both methods are unbiased.
    ///
    /// No randomness (every asset with weight has zero volatility): 1 or 0.
    fn itm_probability(&self) -> f64 {
        let d = self.d();
        let growth = libm::exp(self.rate * self.t);
        let forward: Vec<f64> = (0..d).map(|i| self.weights[i] * self.spots[i] * growth).collect();
        let mean: f64 = forward.iter().sum();
        let sign = self.sign();
        let cross = self.log_cross();
        // The pairs (i, j <= i) of the symmetric sums, an off-diagonal one counted twice.
        let pairs = || (0..d).flat_map(|i| (0..=i).map(move |j| (i, j, if i == j { 1.0 } else { 2.0 })));
        let deterministic = if sign * (mean - self.strike) > 0.0 { 1.0 } else { 0.0 };
        let z = if mean > 0.0 && self.weights.iter().all(|&w| w >= 0.0) {
            // log B ~ N(log E B - v / 2, v), v = log(E[B^2] / E[B]^2) = log sum_ij f_i f_j
            // exp(rho_ij s_i s_j) with f = F / E B, summed about its largest exponent.
            let f: Vec<f64> = forward.iter().map(|x| x / mean).collect();
            let paying = || pairs().filter(|&(i, j, _)| f[i] * f[j] > 0.0);
            let top = paying().map(|(i, j, _)| cross[i * d + j]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = paying().map(|(i, j, k)| k * f[i] * f[j] * libm::exp(cross[i * d + j] - top)).sum();
            let v = top + libm::log(sum);
            if v.is_nan() || v <= 0.0 {
                return deterministic;
            }
            (libm::log(mean) - 0.5 * v - libm::log(self.strike)) / v.sqrt()
        } else {
            let var: f64 = pairs().map(|(i, j, k)| k * forward[i] * forward[j] * libm::expm1(cross[i * d + j])).sum();
            if var.is_nan() || var <= 0.0 {
                return deterministic;
            }
            (mean - self.strike) / var.sqrt()
        };
        // z: how many standard deviations the (log) basket's centre sits above the strike.
        normal_cdf(sign * z)
    }

    /// `rho_ij s_i s_j` (`rho = L L^T`) for `j <= i`, row-major: the log of
    /// `E[S_i(T) S_j(T)] / (F_i F_j)`.
    fn log_cross(&self) -> Vec<f64> {
        let d = self.d();
        let mut cross = vec![0.0; d * d];
        for i in 0..d {
            let row_i = &self.chol[i * d..i * d + i + 1];
            for j in 0..=i {
                let row_j = &self.chol[j * d..j * d + j + 1];
                let rho = row_i.iter().zip(row_j).fold(0.0, |s, (a, b)| s + a * b);
                cross[i * d + j] = rho * self.scale[i] * self.scale[j];
            }
        }
        cross
    }

    /// `sign (B(z) - K)` at `z` (`y` scratch), and each asset's term `e_i = a_i exp(s_i y_i)`.
    fn payoff_at(&self, z: &[f64], y: &mut [f64], e: &mut [f64]) -> f64 {
        lower_mul(&self.chol, z, y);
        let mut basket = 0.0;
        for i in 0..self.d() {
            e[i] = self.level[i] * libm::exp(self.scale[i] * y[i]);
            basket += e[i];
        }
        self.sign() * (basket - self.strike)
    }

    /// `log payoff(z) - |z|^2 / 2`, `-inf` outside the exercise region (or where the payoff
    /// overflows).
    fn log_integrand(&self, z: &[f64], y: &mut [f64], e: &mut [f64]) -> f64 {
        let p = self.payoff_at(z, y, e);
        if p > 0.0 && p.is_finite() {
            libm::log(p) - 0.5 * z.iter().map(|x| x * x).sum::<f64>()
        } else {
            f64::NEG_INFINITY
        }
    }

    /// The mode `mu` of `payoff(z) phi(z)`: the maximiser of
    /// `F(z) = log P(z) - |z|^2 / 2`, `P = sign (B - K)` (the payoff where it pays), whose
    /// stationary point is `z = grad P(z) / P(z)`. `None` when no exercise region is found
    /// (all volatilities zero, a put on a positive basket struck at 0, ...); with it, whether
    /// the search converged (the gradient of `F` vanished, or nearly: `NEAR_MODE`).
    ///
    /// The start: along the basket's sensitivity at the origin, `sign grad B(0) = sign L^T g`
    /// with `g_i = a_i s_i` (`w_i S_i vol_i` up to the drift), the first point of a
    /// `SEARCH_STEP` grid (from 0 out to `SEARCH_RADIUS`) inside the exercise region. Then
    /// Newton on `F`: the step solves `(-Hess F) p = grad F`, with
    /// `-Hess F = I + grad P grad P^T / P^2 - Hess P / P` and
    /// `Hess B = L^T diag(e_i s_i^2) L`; where `-Hess F` is not positive definite (a call on a
    /// convex basket, far from the mode) the step is the gradient itself. Each step is halved
    /// until `F` rises, so every iterate stays in the exercise region; the search stops when
    /// the gradient of `F` is below `1e-8 (1 + |z|)`, after `MODE_ITERATIONS` steps, when no
    /// halving raises `F`, or at the `SEARCH_FUEL` work cap. For a put on
    /// non-negative weights `F` is concave and the mode unique; elsewhere the search finds a
    /// local mode, which serves as well: any shift keeps the estimate unbiased. All of it is
    /// plain `f64` arithmetic and `libm`, in a fixed order: the same bits on every target.
    fn mode(&self) -> Option<(Vec<f64>, bool)> {
        let d = self.d();
        let sign = self.sign();
        let (mut y, mut e) = (vec![0.0; d], vec![0.0; d]);
        let mut grad = vec![0.0; d];
        // sign grad B at z, from the terms e_i: sign sum_i L_ij e_i s_i.
        let gradient = |e: &[f64], grad: &mut [f64]| {
            for (j, g) in grad.iter_mut().enumerate() {
                *g = sign * (j..d).map(|i| self.chol[i * d + j] * e[i] * self.scale[i]).sum::<f64>();
            }
        };
        gradient(&self.level, &mut grad);
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return None;
        }
        let direction: Vec<f64> = grad.iter().map(|g| g / norm).collect();
        let df = d as f64;
        let (eval_fuel, step_fuel) = (10.0 * df * df + 300.0 * df, 7.0 * df * df * df);
        let mut work = 0.0;
        let steps = (SEARCH_RADIUS / SEARCH_STEP) as usize;
        let mut z = (0..=steps)
            .map(|k| direction.iter().map(|u| k as f64 * SEARCH_STEP * u).collect::<Vec<f64>>())
            .find(|z| {
                work += eval_fuel;
                self.log_integrand(z, &mut y, &mut e) > f64::NEG_INFINITY
            })?;

        let mut f = self.log_integrand(&z, &mut y, &mut e);
        let mut converged = false;
        let (mut step, mut trial, mut weighted, mut hessian) =
            (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d * d]);
        // L^T, row-major: row j is column j of L (zero above the diagonal).
        let mut columns = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                columns[j * d + i] = self.chol[i * d + j];
            }
        }
        for _ in 0..MODE_ITERATIONS {
            let p = self.payoff_at(&z, &mut y, &mut e);
            gradient(&e, &mut grad);
            // grad F = grad P / P - z.
            let g: Vec<f64> = (0..d).map(|j| grad[j] / p - z[j]).collect();
            let g_norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            let z_norm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !g_norm.is_finite() {
                return None;
            }
            if g_norm <= 1e-8 * (1.0 + z_norm) {
                converged = true;
                break;
            }
            work += step_fuel + 2.0 * eval_fuel;
            if work > SEARCH_FUEL {
                converged = g_norm <= NEAR_MODE * (1.0 + z_norm);
                break;
            }
            // -Hess F = I + grad P grad P^T / P^2 - sign Hess B / P, from its lower triangle.
            // Hess B = L^T diag(c) L, c_i = e_i s_i^2: (Hess B)_jl = sum_{i >= j} c_i L_ij L_il
            // for l <= j, a dot product of columns j and l of L (rows of `columns`).
            for j in 0..d {
                for i in j..d {
                    weighted[i] = e[i] * self.scale[i] * self.scale[i] * columns[j * d + i];
                }
                for l in 0..=j {
                    let col_l = &columns[l * d + j..l * d + d];
                    let hess_b = dot(&weighted[j..], col_l);
                    let diagonal = if j == l { 1.0 } else { 0.0 };
                    let v = diagonal + grad[j] * grad[l] / (p * p) - sign * hess_b / p;
                    hessian[j * d + l] = v;
                    hessian[l * d + j] = v;
                }
            }
            if factor_in_place(&mut hessian, d) {
                solve_cholesky(&hessian, &g, &mut step);
            } else {
                step.copy_from_slice(&g);
            }
            let mut scale = 1.0;
            let mut moved = false;
            for _ in 0..HALVINGS {
                for ((t, &z), &s) in trial.iter_mut().zip(&z).zip(&step) {
                    *t = z + scale * s;
                }
                work += eval_fuel;
                let f_trial = self.log_integrand(&trial, &mut y, &mut e);
                if f_trial > f {
                    (f, moved) = (f_trial, true);
                    z.copy_from_slice(&trial);
                    break;
                }
                scale *= 0.5;
            }
            if !moved {
                // No step raises F: the mode to rounding, if the gradient is small.
                converged = g_norm <= NEAR_MODE * (1.0 + z_norm);
                break;
            }
        }
        let length = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        (length > 0.0 && length.is_finite()).then_some((z, converged))
    }

    /// An upper bound on the discounted price that needs no sample. Split the basket into its
    /// positive part `P = sum_{w_i > 0} w_i S_i(T)` and negative part `N = sum_{w_i < 0}
    /// |w_i| S_i(T) >= 0`. For any strikes `K_i`, by `(a + b)+ <= a+ + b+`:
    ///
    /// - call: `(P - N - K)+ <= (P - K)+ <= sum w_i (S_i - K_i)+ + (sum w_i K_i - K)+`;
    /// - put: `(K - P + N)+ <= (K - P)+ + N <= sum w_i (K_i - S_i)+ + (K - sum w_i K_i)+ + N`,
    ///
    /// so the price is at most the Black-Scholes prices of those single-asset options plus
    /// the leftover (and `E N` for a put). The strikes are the comonotonic ones,
    /// `K_i = S_i exp(m_i + s_i q)` with `q` solving `sum w_i K_i = K` (by bisection; the
    /// bound holds for any `q`, so its accuracy does not matter): the tightest bound the
    /// marginals alone give (the price if the assets moved as one), the Black-Scholes price for
    /// one asset. Also, more crudely, a call is at most `E P` and a put at most `K + E N`
    /// (discounted); the smaller is returned.
    fn price_bound(&self) -> f64 {
        let d = self.d();
        let df = libm::exp(-self.rate * self.t);
        let positive: Vec<usize> = (0..d).filter(|&i| self.weights[i] > 0.0).collect();
        let negative_mean: f64 =
            (0..d).filter(|&i| self.weights[i] < 0.0).map(|i| -self.weights[i] * self.spots[i]).sum();
        let strikes = |q: f64| -> Vec<f64> {
            positive.iter().map(|&i| self.spots[i] * libm::exp(self.drift[i] + self.scale[i] * q)).collect()
        };
        let weighted = |k: &[f64]| -> f64 { positive.iter().zip(k).map(|(&i, k)| self.weights[i] * k).sum() };
        let (mut lo, mut hi) = (-SEARCH_RADIUS, SEARCH_RADIUS);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if weighted(&strikes(mid)) < self.strike {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let q = 0.5 * (lo + hi);
        let k = strikes(q);
        let leftover = weighted(&k) - self.strike;
        let growth = libm::exp(self.rate * self.t);
        // E (S_i - K_i)+ = F_i N(s_i - q) - K_i N(-q), E (K_i - S_i)+ = K_i N(q) - F_i N(q - s_i);
        // each is >= 0, so rounding below 0 is clamped (upwards: still a bound).
        let options: f64 = positive
            .iter()
            .zip(&k)
            .map(|(&i, &k)| {
                let (f, s) = (self.spots[i] * growth, self.scale[i]);
                let v = if self.call {
                    f * normal_cdf(s - q) - k * normal_cdf(-q)
                } else {
                    k * normal_cdf(q) - f * normal_cdf(q - s)
                };
                self.weights[i] * positive_part(v)
            })
            .sum();
        let (comonotonic, crude) = if self.call {
            let crude: f64 = positive.iter().map(|&i| self.weights[i] * self.spots[i]).sum();
            (df * (options + positive_part(leftover)), crude)
        } else {
            (df * (options + positive_part(-leftover)) + negative_mean, df * self.strike + negative_mean)
        };
        if comonotonic.is_finite() { comonotonic.min(crude) } else { crude }
    }
}

/// `sum a_k b_k` over the shorter, four terms a loop step (in Wasm fuel is paid per
/// instruction, and a loop step's bookkeeping is most of a short one's).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a4, a_rest) = a[..n].as_chunks::<4>();
    let (b4, b_rest) = b[..n].as_chunks::<4>();
    let mut s = 0.0;
    for (x, y) in a4.iter().zip(b4) {
        s += x[0] * y[0];
        s += x[1] * y[1];
        s += x[2] * y[2];
        s += x[3] * y[3];
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        s += x * y;
    }
    s
}

/// Overwrites the lower triangle of the symmetric row-major `a` with its Cholesky factor (the
/// upper triangle is left as it was); `false` if `a` is not numerically positive definite
/// (a pivot not above `1e-12` of its diagonal entry, as `linalg::cholesky` asks).
fn factor_in_place(a: &mut [f64], d: usize) -> bool {
    for i in 0..d {
        for j in 0..=i {
            let (done, rest) = a.split_at_mut(i * d);
            let row_j = if j < i { &done[j * d..j * d + j] } else { &rest[..j] };
            let s = rest[j] - dot(&rest[..j], row_j);
            if i == j {
                if !(rest[i] > 0.0 && s > 1e-12 * rest[i]) {
                    return false;
                }
                rest[i] = s.sqrt();
            } else {
                rest[j] = s / done[j * d + j];
            }
        }
    }
    true
}

/// Solves `A x = b` for `A = C C^T`, `C` a row-major lower Cholesky factor (its upper triangle
/// is not read).
fn solve_cholesky(c: &[f64], b: &[f64], x: &mut [f64]) {
    let d = b.len();
    for i in 0..d {
        let s: f64 = (0..i).map(|k| c[i * d + k] * x[k]).sum();
        x[i] = (b[i] - s) / c[i * d + i];
    }
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| c[k * d + i] * x[k]).sum();
        x[i] = (x[i] - s) / c[i * d + i];
    }
}

export_kernel!(Basket);
