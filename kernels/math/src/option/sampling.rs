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
//!
//! A knock-out barrier option is tilted through its terminal normal, `sum_k z_k / sqrt(n)`:
//! every step normal is shifted by `shift / sqrt(n)`, the shift chosen as for the European
//! option, but no further than halfway (in logs) to a barrier on the side where it pays.

use super::closed_form::black_scholes;
use super::{BarrierKind, Contract, Market, OptionType, PathKind, Style};
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
    /// Importance sampling (one contract at a time).
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
    let single = match contracts {
        [c] => Some(c),
        _ => None,
    };
    Ok(match (method, single) {
        (Method::Quasi, _) if path_kind == PathKind::Grid && steps > super::MAX_QMC_STEPS => {
            return Err(KernelError::invalid(
                "steps",
                format!(
                    "qmc paths take at most {} steps (one Sobol dimension a step): use plain",
                    super::MAX_QMC_STEPS
                ),
            ));
        }
        (Method::Quasi, _) => Sampling::Quasi,
        (Method::Plain, _) | (Method::Auto, None) => Sampling::Plain,
        (Method::Auto, Some(c)) if itm_probability(market, steps, c) >= AUTO_ITM_PROBABILITY => Sampling::Plain,
        (Method::Auto | Method::Importance, Some(c)) => tilted(market, steps, c),
        (Method::Importance, None) => {
            return Err(KernelError::invalid(
                "method",
                "importance sampling prices one contract at a time: use auto or plain for a book of several",
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

/// Step `k`'s share of a grid option's shift: an Asian option's through its geometric average
/// (`asian_directions`), a barrier option's through its terminal normal, which every step
/// moves alike (`1 / sqrt(n)` each).
pub(super) fn grid_directions(style: Style, steps: u32) -> Vec<f64> {
    match style {
        Style::Asian => asian_directions(steps),
        _ => vec![1.0 / (steps.max(1) as f64).sqrt(); steps.max(1) as usize],
    }
}

/// Step `k`'s share of an Asian option's shift: `c_k / |c|`, `c_k = (n - k + 1) / n`.
fn asian_directions(steps: u32) -> Vec<f64> {
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
    let shift = optimal_shift(c.kind, z_k, sd);
    // A knock-out barrier beyond the strike, on the side where the option pays (an up-and-out
    // call, a down-and-out put): paths that pay end between the two, so the terminal normal is
    // shifted no further than their geometric midpoint, where driving paths into the barrier
    // would undo the gain. A barrier on the other side only knocks out paths the shift moves
    // away from it.
    let shift = match (c.style, c.kind) {
        (Style::Barrier { level, kind: BarrierKind::UpOut }, OptionType::Call) if level > c.strike => {
            shift.min(z_k + 0.5 * libm::log(level / c.strike) / sd)
        }
        (Style::Barrier { level, kind: BarrierKind::DownOut }, OptionType::Put) if level < c.strike => {
            shift.max(z_k + 0.5 * libm::log(level / c.strike) / sd)
        }
        // The barrier knocks out every path that pays: the price is 0, and nothing to tilt.
        (Style::Barrier { kind: BarrierKind::UpOut, .. }, OptionType::Call)
        | (Style::Barrier { kind: BarrierKind::DownOut, .. }, OptionType::Put) => return Sampling::Plain,
        _ => shift,
    };
    Sampling::Tilted { shift }
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
    fn auto_tilts_only_far_out_of_the_money_options() {
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
        let barrier =
            |level, kind, option, strike| [Contract { style: Style::Barrier { level, kind }, kind: option, strike }];
        let down_out = barrier(80.0, BarrierKind::DownOut, OptionType::Call, 200.0);
        let Sampling::Tilted { shift } = choose(Method::Auto, &m, PathKind::Grid, 12, &down_out).unwrap() else {
            panic!("a deep out-of-the-money down-and-out call is tilted")
        };
        let european = [euro(OptionType::Call, 200.0)];
        assert_eq!(choose(Method::Auto, &m, PathKind::Terminal, 1, &european).unwrap(), Sampling::Tilted { shift });
        // An up-and-out call is shifted no further than halfway (in logs) from strike to barrier.
        let up_out = barrier(220.0, BarrierKind::UpOut, OptionType::Call, 200.0);
        let Sampling::Tilted { shift: capped } = choose(Method::Auto, &m, PathKind::Grid, 12, &up_out).unwrap() else {
            panic!("a deep out-of-the-money up-and-out call is tilted")
        };
        let (z_k, sd) = strike_z(&m, 12, &up_out[0]);
        assert!(capped < shift && (capped - (z_k + 0.5 * libm::log(1.1) / sd)).abs() < 1e-12, "{capped} {shift}");
        // Knocked out wherever it pays: nothing to tilt.
        let dead = barrier(180.0, BarrierKind::UpOut, OptionType::Call, 200.0);
        assert_eq!(choose(Method::Importance, &m, PathKind::Grid, 12, &dead).unwrap(), Sampling::Plain);
        let two = [down_out[0], down_out[0]];
        let err = choose(Method::Importance, &m, PathKind::Grid, 12, &two).unwrap_err();
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
