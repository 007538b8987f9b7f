//! Every kernel against closed forms and QuantLib 1.44 values (tests/data/reference.json).
//! Monte Carlo estimates must lie within 4 of their own standard errors of the reference.

mod common;

use common::*;
use helix_math::ewma::{self, ReturnWindow};
use helix_math::option::closed_form::{black_scholes, expected_arithmetic_average, geometric_asian};
use helix_math::option::{self, BarrierKind, Contract, Method, OptionBook, OptionType, Style};
use helix_math::particle::{self, StateSpaceModel};
use helix_math::var::{self, VarBook, VarMode, VarQuery};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn black_scholes_closed_form_matches_quantlib() {
    for c in cases("european") {
        let g = black_scholes(option_type(&c), f(&c, "strike"), &market(&c));
        assert!((g.price - f(&c, "price")).abs() <= 1e-9 * f(&c, "price").max(1e-3), "price {c}");
        assert!((g.delta - f(&c, "delta")).abs() <= 1e-9, "delta {c}");
        assert!((g.vega - f(&c, "vega")).abs() <= 1e-9 * f(&c, "vega").max(1e-3), "vega {} vs {c}", g.vega);
    }
}

#[test]
fn european_price_and_pathwise_delta_within_4_standard_errors() {
    for (i, c) in cases("european").iter().enumerate() {
        let contract = Contract { style: Style::European, kind: option_type(c), strike: f(c, "strike") };
        // As a job gets it: `auto` prices the deep out-of-the-money cases by importance sampling.
        let book = OptionBook::single(market(c), 1, contract).unwrap().with_method(Method::Auto).unwrap();
        let out = option::run(&book, 1000 + i as u64, 400_000).unwrap().remove(0);
        let (price, delta) = (out.estimate("price").unwrap(), out.estimate("delta").unwrap());
        // QuantLib's value for one case, 8.6 standard deviations out, is 0 (its precision
        // ends near 1e-16 of spot); there the closed form above, which matches QuantLib
        // elsewhere, is the reference (3.4e-18).
        let (mut ref_price, mut ref_delta) = (f(c, "price"), f(c, "delta"));
        if ref_price < 1e-12 * f(c, "spot") {
            let g = black_scholes(option_type(c), f(c, "strike"), &market(c));
            (ref_price, ref_delta) = (g.price, g.delta);
        }
        assert_within(&format!("european case {i} price"), price, ref_price, 4.0);
        assert_within(&format!("european case {i} delta"), delta, ref_delta, 4.0);
    }
}

#[test]
fn geometric_asian_closed_form_and_monte_carlo_match_quantlib() {
    for (i, c) in cases("geometric_asian").iter().enumerate() {
        let n = f(c, "fixings") as u32;
        let m = market(c);
        let exact = geometric_asian(OptionType::Call, f(c, "strike"), &m, n);
        assert!(rel(exact, f(c, "price")) < 1e-9, "closed form case {i}: {exact} vs {}", f(c, "price"));
        let book =
            OptionBook::single(m, n, Contract { style: Style::Asian, kind: OptionType::Call, strike: f(c, "strike") })
                .unwrap();
        let out = option::run(&book, 77 + i as u64, 100_000).unwrap().remove(0);
        assert_within(&format!("geometric asian case {i}"), out.estimate("geometric_price").unwrap(), exact, 4.0);
    }
}

/// No closed form exists for the arithmetic Asian, but put-call parity does:
/// `C - P = e^{-rT} (E[A] - K)` with `E[A]` exact. Calls and puts on shared paths.
#[test]
fn arithmetic_asian_satisfies_parity_and_the_control_variate_shrinks_the_error() {
    for (i, c) in cases("geometric_asian").iter().enumerate() {
        let n = f(c, "fixings") as u32;
        let m = market(c);
        let k = f(c, "strike");
        let contracts = vec![
            Contract { style: Style::Asian, kind: OptionType::Call, strike: k },
            Contract { style: Style::Asian, kind: OptionType::Put, strike: k },
        ];
        let out = option::run(&OptionBook::new(m, n, contracts).unwrap(), 5 + i as u64, 100_000).unwrap();
        let (call, put) = (out[0].estimate("price").unwrap(), out[1].estimate("price").unwrap());
        let parity =
            libm::exp(-m.rate * m.maturity) * (expected_arithmetic_average(m.spot, m.rate, 0.0, m.maturity, n) - k);
        let se = (call.std_error.unwrap().powi(2) + put.std_error.unwrap().powi(2)).sqrt();
        assert!(
            (call.value - put.value - parity).abs() <= 4.0 * se,
            "case {i}: C-P {} vs {parity}",
            call.value - put.value
        );
        let plain = out[0].estimate("price_plain").unwrap();
        assert!((call.value - plain.value).abs() <= 4.0 * plain.std_error.unwrap(), "case {i}: CV and plain disagree");
        assert!(
            call.std_error.unwrap() * 5.0 < plain.std_error.unwrap(),
            "case {i}: control variate should cut the error at least 5x: {call:?} vs {plain:?}"
        );
    }
}

#[test]
fn discrete_down_and_out_call_matches_the_corrected_closed_form() {
    for (i, c) in cases("barrier_down_out_call").iter().enumerate() {
        let style = Style::Barrier { level: f(c, "barrier"), kind: BarrierKind::DownOut };
        let contract = Contract { style, kind: OptionType::Call, strike: f(c, "strike") };
        let book = OptionBook::single(market(c), f(c, "monitoring_dates") as u32, contract).unwrap();
        let out = option::run(&book, 31 + i as u64, 60_000).unwrap().remove(0);
        assert_within(&format!("barrier case {i}"), out.estimate("price").unwrap(), f(c, "discrete_price_bgk"), 4.0);
    }
}

#[test]
fn up_and_out_call_is_cheaper_than_vanilla_and_dies_with_a_close_barrier() {
    let m = helix_math::option::Market { spot: 100.0, rate: 0.03, dividend: 0.0, vol: 0.25, maturity: 1.0 };
    let vanilla = Contract { style: Style::European, kind: OptionType::Call, strike: 100.0 };
    let eu = option::run(&OptionBook::single(m, 1, vanilla).unwrap(), 9, 50_000).unwrap().remove(0);
    let up = |level| {
        let c = Contract {
            style: Style::Barrier { level, kind: BarrierKind::UpOut },
            kind: OptionType::Call,
            strike: 100.0,
        };
        option::run(&OptionBook::single(m, 52, c).unwrap(), 9, 50_000).unwrap().remove(0).estimate("price").unwrap()
    };
    let far = up(1e6);
    let near = up(100.5);
    assert!((far.value - eu.estimate("price").unwrap().value).abs() < 4.0 * far.std_error.unwrap() * 1.5);
    assert!(near.value < 0.1 * far.value, "a barrier just above spot kills most paths: {near:?}");
}

#[test]
fn lognormal_var_and_es_by_full_revaluation() {
    for (i, c) in cases("lognormal_var_es").iter().enumerate() {
        let p = single_asset(f(c, "value"), f(c, "drift"), f(c, "vol"));
        let q = VarQuery { horizon: f(c, "horizon_years"), confidence: f(c, "confidence"), mode: VarMode::Full };
        let out = var::run(&VarBook::single(p, q).unwrap(), 300 + i as u64, 200_000).unwrap().remove(0);
        assert_within(&format!("lognormal case {i} VaR"), out.estimate("var").unwrap(), f(c, "var"), 4.0);
        assert_within(&format!("lognormal case {i} ES"), out.estimate("es").unwrap(), f(c, "es"), 4.0);
    }
}

/// The delta-normal VaR and ES recomputed from the reference file's printed inputs in 40-digit
/// arithmetic (mpmath). The file's own values were generated from unrounded inputs: case 2
/// differs from its printed inputs by 1.2e-9 relative, so the kernel is held to these exact
/// values at 1e-12 and to the file's values at 1e-9 only where the printed inputs allow it.
const DELTA_NORMAL_EXACT: [(f64, f64); 3] = [
    (762_382.088_991_845_2, 876_408.912_719_930_9),
    (263_917.451_312_687_5, 302_852.122_497_299_3),
    (525_952.894_885_937, 605_629.610_417_593_8),
];

#[test]
fn delta_normal_portfolio_var_es_analytic_exact_and_monte_carlo_within_4_se() {
    for (i, c) in cases("delta_normal_var_es").iter().enumerate() {
        let q = VarQuery { horizon: f(c, "horizon_years"), confidence: f(c, "confidence"), mode: VarMode::Linear };
        let out = var::run(&VarBook::single(portfolio(c), q).unwrap(), 900 + i as u64, 200_000).unwrap().remove(0);
        let (av, ae) = (out.estimate("analytic_var").unwrap().value, out.estimate("analytic_es").unwrap().value);
        let (exact_var, exact_es) = DELTA_NORMAL_EXACT[i];
        assert!(rel(av, exact_var) < 1e-12, "case {i}: analytic VaR {av} vs {exact_var}");
        assert!(rel(ae, exact_es) < 1e-12, "case {i}: analytic ES {ae} vs {exact_es}");
        let file_gap = rel(exact_var, f(c, "var"));
        assert!(rel(av, f(c, "var")) < 1e-9_f64.max(1.01 * file_gap), "case {i}: analytic VaR {av} vs {}", f(c, "var"));
        assert!(rel(ae, f(c, "es")) < 1e-9_f64.max(1.01 * rel(exact_es, f(c, "es"))), "case {i}: ES {ae}");
        assert_within(&format!("delta-normal case {i} VaR"), out.estimate("var").unwrap(), f(c, "var"), 4.0);
        assert_within(&format!("delta-normal case {i} ES"), out.estimate("es").unwrap(), f(c, "es"), 4.0);
    }
}

/// Full revaluation of the 10-asset reference portfolios: the P&L mean and standard deviation
/// have closed forms under GBM (lognormal moments), which the estimates must cover.
#[test]
fn full_revaluation_pnl_moments_match_lognormal_closed_forms() {
    let c = &cases("delta_normal_var_es")[0];
    let p = portfolio(c);
    let h = f(c, "horizon_years");
    let d = p.positions.len();
    let q = VarQuery { horizon: h, confidence: 0.99, mode: VarMode::Full };
    let out = var::run(&VarBook::single(p.clone(), q).unwrap(), 4, 200_000).unwrap().remove(0);
    // E[V_i (e^{X_i} - 1)] = V_i (e^{mu_i h} - 1); Cov = V_i V_j e^{(mu_i + mu_j) h} (e^{rho s_i s_j h} - 1).
    let mean: f64 = (0..d).map(|i| p.positions[i] * (libm::exp(p.drifts[i] * h) - 1.0)).sum();
    let mut var = 0.0;
    for i in 0..d {
        for j in 0..d {
            let (mi, mj) = (p.drifts[i] * h, p.drifts[j] * h);
            let cov = libm::exp(p.correlation[i * d + j] * p.vols[i] * p.vols[j] * h) - 1.0;
            var += p.positions[i] * p.positions[j] * libm::exp(mi + mj) * cov;
        }
    }
    assert_within("P&L mean", out.estimate("mean").unwrap(), mean, 4.0);
    assert_within("P&L stdev", out.estimate("stdev").unwrap(), var.sqrt(), 4.0);
}

fn model(c: &serde_json::Value) -> StateSpaceModel {
    StateSpaceModel { a: f(c, "a"), q: f(c, "q"), r: f(c, "r"), observations: floats(c, "observations") }
}

#[test]
fn kalman_filter_matches_reference_loglik_and_filtered_means() {
    for c in cases("kalman_loglik") {
        let (loglik, means) = particle::kalman(&model(&c)).unwrap();
        assert!(rel(loglik, f(&c, "loglik")) < 1e-9, "{loglik} vs {}", f(&c, "loglik"));
        for (m, r) in means.iter().zip(floats(&c, "filtered_means")) {
            assert!((m - r).abs() < 1e-9);
        }
    }
}

/// The particle log-likelihood is the log of an unbiased likelihood estimate, so it is biased
/// low by about var/2 = se^2/2 (Jensen, delta method); the test adds that bias back before the
/// usual 4-standard-error check. Filtered means: the posterior standard deviation here is below
/// 0.6 and the effective sample size stays above half of 16 384 particles, so each mean's
/// Monte Carlo error is about 0.6 / sqrt(8192) ~ 0.007 (x2 for resampling noise); 0.05 is over 4 sigma.
#[test]
fn particle_filter_matches_kalman_within_its_error_and_bias() {
    for (i, c) in cases("kalman_loglik").iter().enumerate() {
        let out = particle::run(&model(c), 11 + i as u64, 16_384).unwrap();
        let est = out.estimate("loglik").unwrap();
        let se = est.std_error.unwrap();
        let z = (est.value + se * se / 2.0 - f(c, "loglik")) / se;
        assert!(z.abs() <= 4.0, "case {i}: loglik {} ± {se} vs {} (z = {z:.2})", est.value, f(c, "loglik"));
        let worst = out
            .array("filtered_means")
            .unwrap()
            .iter()
            .zip(floats(c, "filtered_means"))
            .map(|(m, r)| (m - r).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.05, "case {i}: filtered means off by {worst}");
    }
}

#[test]
fn ewma_covariance_matches_the_direct_weighted_sum_and_its_cholesky() {
    let (t, d, lambda) = (300usize, 4usize, 0.94);
    let returns: Vec<f64> =
        (0..t * d).map(|k| 0.01 * ((k as f64 * 1.618).sin() + 0.3 * (k as f64 * 0.1).cos())).collect();
    let w = ReturnWindow { returns: returns.clone(), assets: d, lambda };
    let out = ewma::run(&w, t as u64).unwrap();
    let cov = out.array("covariance").unwrap();
    let weights: Vec<f64> = (0..t).map(|age| lambda.powi(age as i32)).collect();
    let total: f64 = weights.iter().sum();
    for i in 0..d {
        for j in 0..d {
            let direct: f64 = (0..t)
                .map(|age| weights[age] * returns[(t - 1 - age) * d + i] * returns[(t - 1 - age) * d + j])
                .sum::<f64>()
                / total;
            assert!((cov[i * d + j] - direct).abs() < 1e-12 * direct.abs().max(1e-6), "cov[{i}][{j}]");
        }
        assert!((out.array("vols").unwrap()[i] - cov[i * d + i].sqrt()).abs() < 1e-15);
    }
    let l = out.array("cholesky").unwrap();
    for i in 0..d {
        for j in 0..d {
            let s: f64 = (0..d).map(|k| l[i * d + k] * l[j * d + k]).sum();
            assert!((s - cov[i * d + j]).abs() < 1e-14);
        }
    }
}
