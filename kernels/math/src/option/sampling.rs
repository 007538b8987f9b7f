//! How an option book's paths are drawn, and what its price can be trusted to when few paths
//! pay.
//!
//! Far out of the money, plain Monte Carlo wastes nearly every path: a call six standard
//! deviations out finishes in the money once in a billion paths, so 400 000 paths price it at
//! `0 ± 0`. Importance sampling draws the terminal normal from `N(shift, 1)` instead of `N(0, 1)`
//! (a change of drift: exponential tilting) and weights each path by the likelihood ratio
//! `phi(z) / phi(z - shift) = exp(-shift z + shift^2 / 2)`, which keeps the estimator unbiased
//! for any payoff. The shift is the mode of `payoff(z) phi(z)`, where the integrand of the
//! price peaks: for a call the root of `sd S(z) / (S(z) - K) = z`, for a put of
//! `-sd S(z) / (K - S(z)) = z`, both unique (each side is monotone). The shift is a function of
//! the parameters alone, computed with `libm`, so native and Wasm runs draw the same paths.
//!
//! An arithmetic Asian option is tilted the same way through its geometric average: the log of
//! the geometric average is `mean + sd sum_k c_k z_k` with `c_k = (n - k + 1) / n` (step `k`'s
//! normal moves every later fixing), so shifting the step normals by `shift * c / |c|` shifts
//! the geometric average's own normal by `shift`, which is chosen as for a European option on
//! that lognormal average. The arithmetic average follows the geometric one closely, and the
//! control variate still holds: its weighted mean estimates the geometric price unbiasedly.

use super::closed_form::black_scholes;
use super::{Contract, Market, OptionType, PathKind, Style};
use crate::error::{KernelError, Result};
use crate::special::normal_cdf;

/// How a job asks its paths to be drawn (its `method` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Importance sampling for a European option that ends in the money with probability under
    /// `AUTO_ITM_PROBABILITY`; plain Monte Carlo otherwise.
    Auto,
    /// Plain Monte Carlo (antithetic pairs for European options).
    Plain,
    /// Importance sampling (single European and Asian options).
    Importance,
    /// Randomised quasi-Monte Carlo: scrambled Sobol points, a Brownian bridge for grids.
    Quasi,
}

/// How a book's paths are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Plain Monte Carlo.
    Plain,
    /// The terminal normal (European), or the geometric average's normal (Asian, see the module
    /// docs), drawn about `shift` standard deviations, each path weighted by its likelihood ratio.
    Tilted { shift: f64 },
    /// Scrambled Sobol points (see `quasi`).
    Quasi,
}

/// Under `auto`, importance sampling prices a European option whose chance of ending in the
/// money (an Asian one: whose geometric average's chance) is below this. Near the money a plain antithetic estimate is as good, and the
/// weights would cost a second `exp` a pair for little.
pub const AUTO_ITM_PROBABILITY: f64 = 0.05;

/// Below this many paths with a non-zero payoff, a price's sample spread says little about its
/// error, and its error bar becomes a bound (`price_bound`).
pub const FEW_CONTRIBUTING: u64 = 30;

/// The sampling `method` gives a book of `contracts` on `market`.
pub(super) fn choose(
    method: Method,
    market: &Market,
    path_kind: PathKind,
    steps: u32,
    contracts: &[Contract],
) -> Result<Sampling> {
    let single = match (path_kind, contracts) {
        (PathKind::Terminal, [c]) => Some(c),
        (PathKind::Grid, [c]) if c.style == Style::Asian => Some(c),
        _ => None,
    };
    if method == Method::Quasi {
        if path_kind == PathKind::Grid && steps > super::MAX_QMC_STEPS {
            return Err(KernelError::invalid(
                "steps",
                format!(
                    "qmc paths take at most {} steps (one Sobol dimension a step): use plain",
                    super::MAX_QMC_STEPS
                ),
            ));
        }
        return Ok(Sampling::Quasi);
    }
    Ok(match (method, single) {
        (Method::Quasi, _) => unreachable!("returned above"),
        (Method::Plain, _) | (Method::Auto, None) => Sampling::Plain,
        (Method::Auto, Some(c)) if itm_probability(market, steps, c) >= AUTO_ITM_PROBABILITY => Sampling::Plain,
        (Method::Auto | Method::Importance, Some(c)) => tilted(market, steps, c),
        (Method::Importance, None) => {
            return Err(KernelError::invalid(
                "method",
                "importance sampling prices single European and Asian options so far: use auto or plain for barrier options",
            ));
        }
    })
}

/// Where the strike sits, in standard deviations of the normal that drives the payoff (the
/// terminal one, or an Asian option's geometric average's), and that deviation.
fn strike_z(m: &Market, steps: u32, c: &Contract) -> (f64, f64) {
    let (log_mean, var) = match c.style {
        Style::Asian => {
            super::closed_form::log_geometric_average(m.spot, m.rate, m.dividend, m.vol, m.maturity, steps.max(1))
        }
        _ => (libm::log(m.spot) + (m.rate - m.dividend - 0.5 * m.vol * m.vol) * m.maturity, m.vol * m.vol * m.maturity),
    };
    let sd = var.sqrt();
    ((libm::log(c.strike) - log_mean) / sd, sd)
}

/// The chance that the option ends in the money (an Asian one: that its geometric average
/// does).
pub fn itm_probability(m: &Market, steps: u32, c: &Contract) -> f64 {
    let (z_k, sd) = strike_z(m, steps, c);
    if sd <= 0.0 {
        return 1.0;
    }
    match c.kind {
        OptionType::Call => normal_cdf(-z_k),
        OptionType::Put => normal_cdf(z_k),
    }
}

/// Step `k`'s share of an Asian option's shift: `c_k / |c|`, `c_k = (n - k + 1) / n`.
pub(super) fn asian_directions(steps: u32) -> Vec<f64> {
    let n = steps.max(1) as f64;
    let c: Vec<f64> = (1..=steps.max(1)).map(|k| (n - k as f64 + 1.0) / n).collect();
    let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
    c.iter().map(|x| x / norm).collect()
}

fn tilted(m: &Market, steps: u32, c: &Contract) -> Sampling {
    let (z_k, sd) = strike_z(m, steps, c);
    if sd <= 0.0 || !z_k.is_finite() {
        // No randomness to tilt.
        return Sampling::Plain;
    }
    Sampling::Tilted { shift: optimal_shift(c.kind, z_k, sd) }
}

/// The mode of `payoff(z) phi(z)` (see the module docs), by bisection on the side of the strike
/// where the option pays: `S(z) / (S(z) - K) = 1 / (1 - exp(-sd (z - z_k)))`, so only the
/// strike's place and the deviation enter. The bracket `sd + 1` past the strike (or past 0)
/// always holds the root; 100 halvings pin it to the last bit.
pub fn optimal_shift(kind: OptionType, z_k: f64, sd: f64) -> f64 {
    let (mut lo, mut hi) = match kind {
        // g(z) = sd / (1 - exp(-sd (z - z_k))) - z: +inf at z_k, falling.
        OptionType::Call => (z_k, z_k.max(0.0) + sd + 1.0),
        // h(z) = -sd / (exp(sd (z_k - z)) - 1) - z: falling to -inf at z_k.
        OptionType::Put => (z_k.min(0.0) - sd - 1.0, z_k),
    };
    let above_root = |z: f64| match kind {
        OptionType::Call => sd / -libm::expm1(-sd * (z - z_k)) - z < 0.0,
        OptionType::Put => -sd / libm::expm1(sd * (z_k - z)) - z < 0.0,
    };
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if above_root(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

/// An upper bound on the contract's (discounted) price that needs no sample: the European price
/// for a European option; for a knock-out, the European price too (knocking out only removes
/// payoff); for an arithmetic Asian, the mean of the European prices at its fixings, carried to
/// maturity (the payoff is convex in the average, so by Jensen it is at most the mean of the
/// fixings' payoffs). The true price lies in `[0, bound]`, so an estimate `v >= 0` is off by
/// at most `max(v, bound)`: an error bar that holds whatever the sample.
pub(super) fn price_bound(c: &Contract, m: &Market, steps: u32) -> f64 {
    let at = |t: f64| {
        let forward = Market { maturity: t, ..*m };
        // Carried from t to maturity: the payoff is paid at maturity.
        european_price(c.kind, c.strike, &forward) * libm::exp(-m.rate * (m.maturity - t))
    };
    match c.style {
        Style::European | Style::Barrier { .. } => at(m.maturity),
        Style::Asian => {
            let n = steps.max(1);
            (1..=n).map(|i| at(m.maturity * i as f64 / n as f64)).sum::<f64>() / n as f64
        }
    }
}

/// An upper bound on the size of a European option's delta, which lies between 0 and it: the
/// Black-Scholes-Merton delta's size (the discounted dividend factor without volatility).
pub(super) fn delta_bound(c: &Contract, m: &Market) -> f64 {
    if m.vol * m.maturity.sqrt() > 0.0 {
        black_scholes(c.kind, c.strike, m).delta.abs()
    } else {
        libm::exp(-m.dividend * m.maturity)
    }
}

/// The Black-Scholes-Merton price, and the discounted intrinsic forward value when there is
/// no volatility.
fn european_price(kind: OptionType, strike: f64, m: &Market) -> f64 {
    if m.vol * m.maturity.sqrt() > 0.0 {
        return black_scholes(kind, strike, m).price;
    }
    let forward = m.spot * libm::exp((m.rate - m.dividend) * m.maturity);
    let intrinsic = match kind {
        OptionType::Call => forward - strike,
        OptionType::Put => strike - forward,
    };
    libm::exp(-m.rate * m.maturity) * intrinsic.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(spot: f64, vol: f64, maturity: f64) -> Market {
        Market { spot, rate: 0.03, dividend: 0.01, vol, maturity }
    }

    #[test]
    fn the_shift_is_the_mode_of_the_priced_density() {
        for (kind, z_k, sd) in [
            (OptionType::Call, 5.0, 0.3),
            (OptionType::Put, -4.0, 0.2),
            (OptionType::Call, -1.0, 0.5),
            (OptionType::Put, 0.5, 1.5),
        ] {
            let mu = optimal_shift(kind, z_k, sd);
            // log(payoff(z)) - z^2/2 with S(z)/K = exp(sd (z - z_k)): its slope vanishes at mu.
            let log_integrand = |z: f64| {
                let ratio = libm::exp(sd * (z - z_k));
                let pay = match kind {
                    OptionType::Call => ratio - 1.0,
                    OptionType::Put => 1.0 - ratio,
                };
                libm::log(pay) - 0.5 * z * z
            };
            let h = 1e-5;
            let slope = (log_integrand(mu + h) - log_integrand(mu - h)) / (2.0 * h);
            assert!(slope.abs() < 1e-4, "{kind:?} z_k {z_k}: shift {mu}, slope {slope}");
            // On the side where the option pays.
            assert!(if kind == OptionType::Call { mu > z_k } else { mu < z_k }, "{kind:?} {mu} {z_k}");
        }
    }

    #[test]
    fn auto_tilts_only_far_out_of_the_money_european_options() {
        let m = market(100.0, 0.2, 1.0);
        let euro = |kind, strike| Contract { style: Style::European, kind, strike };
        let deep = [euro(OptionType::Call, 200.0)];
        let near = [euro(OptionType::Put, 95.0)];
        assert!(matches!(choose(Method::Auto, &m, PathKind::Terminal, 1, &deep).unwrap(), Sampling::Tilted { .. }));
        assert_eq!(choose(Method::Auto, &m, PathKind::Terminal, 1, &near).unwrap(), Sampling::Plain);
        assert!(matches!(
            choose(Method::Importance, &m, PathKind::Terminal, 1, &near).unwrap(),
            Sampling::Tilted { .. }
        ));
        assert_eq!(choose(Method::Plain, &m, PathKind::Terminal, 1, &deep).unwrap(), Sampling::Plain);
        let asian = |strike| [Contract { style: Style::Asian, kind: OptionType::Call, strike }];
        assert!(matches!(
            choose(Method::Auto, &m, PathKind::Grid, 12, &asian(200.0)).unwrap(),
            Sampling::Tilted { .. }
        ));
        assert_eq!(choose(Method::Auto, &m, PathKind::Grid, 12, &asian(105.0)).unwrap(), Sampling::Plain);
        let down_out = Style::Barrier { level: 80.0, kind: super::super::BarrierKind::DownOut };
        let barrier = [Contract { style: down_out, kind: OptionType::Call, strike: 200.0 }];
        assert_eq!(choose(Method::Auto, &m, PathKind::Grid, 12, &barrier).unwrap(), Sampling::Plain);
        let err = choose(Method::Importance, &m, PathKind::Grid, 12, &barrier).unwrap_err();
        assert!(err.to_string().contains("use auto or plain"), "{err}");
        // No volatility: nothing to tilt.
        assert_eq!(
            choose(Method::Importance, &market(100.0, 0.0, 1.0), PathKind::Terminal, 1, &deep).unwrap(),
            Sampling::Plain
        );
    }

    #[test]
    fn the_price_bound_is_above_the_price() {
        let m = market(100.0, 0.25, 1.0);
        let c = |style, kind, strike| Contract { style, kind, strike };
        let euro = c(Style::European, OptionType::Call, 130.0);
        assert_eq!(price_bound(&euro, &m, 1), black_scholes(OptionType::Call, 130.0, &m).price);
        // The geometric Asian is below the arithmetic one, which the bound is above.
        for kind in [OptionType::Call, OptionType::Put] {
            let bound = price_bound(&c(Style::Asian, kind, 100.0), &m, 12);
            let geometric = super::super::closed_form::geometric_asian(kind, 100.0, &m, 12);
            let european = black_scholes(kind, 100.0, &m).price;
            assert!(bound < european && bound > 0.0, "{kind:?}: {bound} vs {european}");
            if kind == OptionType::Call {
                assert!(bound > geometric, "{bound} vs {geometric}");
            }
        }
        assert_eq!(price_bound(&c(Style::European, OptionType::Put, 130.0), &market(100.0, 0.0, 1.0), 1), {
            let f = 100.0 * libm::exp(0.02);
            libm::exp(-0.03) * (130.0 - f)
        });
    }
}
