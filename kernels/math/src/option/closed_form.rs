//! Closed forms: Black-Scholes-Merton and the discretely monitored geometric Asian option
//! (the Asian kernel's control variate).

use super::{Market, OptionType};
use crate::special::{normal_cdf, normal_pdf};

/// Price, delta and vega of a European option under Black-Scholes-Merton.
#[derive(Clone, Copy, Debug)]
pub struct Greeks {
    pub price: f64,
    pub delta: f64,
    pub vega: f64,
}

pub fn black_scholes(kind: OptionType, strike: f64, m: &Market) -> Greeks {
    let (spot, rate, dividend, vol, t) = (m.spot, m.rate, m.dividend, m.vol, m.maturity);
    let sd = vol * t.sqrt();
    let df_r = libm::exp(-rate * t);
    let df_q = libm::exp(-dividend * t);
    let d1 = (libm::log(spot / strike) + (rate - dividend + 0.5 * vol * vol) * t) / sd;
    let d2 = d1 - sd;
    let vega = spot * df_q * normal_pdf(d1) * t.sqrt() / 100.0;
    match kind {
        OptionType::Call => Greeks {
            price: spot * df_q * normal_cdf(d1) - strike * df_r * normal_cdf(d2),
            delta: df_q * normal_cdf(d1),
            vega,
        },
        OptionType::Put => Greeks {
            price: strike * df_r * normal_cdf(-d2) - spot * df_q * normal_cdf(-d1),
            delta: -df_q * normal_cdf(-d1),
            vega,
        },
    }
}

/// Mean and variance of the log of the geometric average over fixings `i*T/n`, i = 1..=n.
pub fn log_geometric_average(spot: f64, rate: f64, dividend: f64, vol: f64, t: f64, n: u32) -> (f64, f64) {
    let n = n as f64;
    let mean_time = t * (n + 1.0) / (2.0 * n);
    let mean = libm::log(spot) + (rate - dividend - 0.5 * vol * vol) * mean_time;
    let var = vol * vol * t * (n + 1.0) * (2.0 * n + 1.0) / (6.0 * n * n);
    (mean, var)
}

/// Discounted price of an option on the discrete geometric average: the log-average is normal.
pub fn geometric_asian(kind: OptionType, strike: f64, m: &Market, n: u32) -> f64 {
    let (mean, var) = log_geometric_average(m.spot, m.rate, m.dividend, m.vol, m.maturity, n);
    let sd = var.sqrt();
    let forward = libm::exp(mean + 0.5 * var);
    let d2 = (mean - libm::log(strike)) / sd;
    let d1 = d2 + sd;
    let df = libm::exp(-m.rate * m.maturity);
    match kind {
        OptionType::Call => df * (forward * normal_cdf(d1) - strike * normal_cdf(d2)),
        OptionType::Put => df * (strike * normal_cdf(-d2) - forward * normal_cdf(-d1)),
    }
}

/// Expected arithmetic average of the fixings, `1/n sum S0 exp((r-q) t_i)`: with the Asian
/// put-call parity, `C - P = e^{-rT} (E[A] - K)`, it checks the arithmetic Asian kernel exactly.
pub fn expected_arithmetic_average(spot: f64, rate: f64, dividend: f64, t: f64, n: u32) -> f64 {
    let dt = t / n as f64;
    (1..=n).map(|i| spot * libm::exp((rate - dividend) * dt * i as f64)).sum::<f64>() / n as f64
}
