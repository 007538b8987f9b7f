//! Bad parameters come back as a clear `InvalidInput` naming the parameter, never a panic.

mod common;

use common::*;
use helix_math::KernelError;
use helix_math::ewma::{self, ReturnWindow};
use helix_math::option::{self, BarrierKind, Contract, Market, OptionBook, OptionType, Style};
use helix_math::particle::{self, StateSpaceModel};
use helix_math::var::{self, Portfolio, VarBook, VarMode, VarQuery};

#[track_caller]
fn rejects<T: std::fmt::Debug>(r: Result<T, KernelError>, param: &str) {
    match r {
        Err(KernelError::InvalidInput { param: p, reason }) => {
            assert_eq!(p, param, "wrong parameter blamed ({reason})");
            assert!(!reason.is_empty());
        }
        other => panic!("expected invalid `{param}`, got {other:?}"),
    }
}

fn good_portfolio() -> Portfolio {
    portfolio(&cases("delta_normal_var_es")[0])
}

fn query() -> VarQuery {
    VarQuery { horizon: 0.04, confidence: 0.99, mode: VarMode::Full }
}

#[test]
fn var_rejects_bad_portfolios_and_queries() {
    let mut p = good_portfolio();
    p.vols[3] = -0.2;
    rejects(VarBook::single(p, query()), "vols");

    let mut p = good_portfolio();
    p.drifts.pop();
    rejects(VarBook::single(p, query()), "drifts");

    let mut p = good_portfolio();
    p.correlation.truncate(50);
    rejects(VarBook::single(p, query()), "correlation");

    let mut p = good_portfolio();
    p.positions[0] = f64::NAN;
    rejects(VarBook::single(p, query()), "positions");

    // Symmetric, unit diagonal, entries in [-1, 1], but not positive definite.
    let not_pd = Portfolio {
        positions: vec![1.0; 3],
        drifts: vec![0.0; 3],
        vols: vec![0.2; 3],
        correlation: vec![1.0, 0.9, 0.9, 0.9, 1.0, -0.9, 0.9, -0.9, 1.0],
    };
    rejects(VarBook::single(not_pd, query()), "correlation");

    let mut p = good_portfolio();
    p.correlation[1] = 0.5; // breaks symmetry
    rejects(VarBook::single(p, query()), "correlation");

    for confidence in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
        rejects(VarBook::single(good_portfolio(), VarQuery { confidence, ..query() }), "confidence");
    }
    rejects(VarBook::single(good_portfolio(), VarQuery { horizon: 0.0, ..query() }), "horizon");
    rejects(VarBook::single(good_portfolio(), VarQuery { horizon: f64::INFINITY, ..query() }), "horizon");
    rejects(var::run(&VarBook::single(good_portfolio(), query()).unwrap(), 1, 0), "paths");
    rejects(VarBook::new(good_portfolio(), vec![]), "queries");
    let empty = Portfolio { positions: vec![], drifts: vec![], vols: vec![], correlation: vec![] };
    rejects(VarBook::single(empty, query()), "positions");
}

fn market() -> Market {
    Market { spot: 100.0, rate: 0.02, dividend: 0.0, vol: 0.2, maturity: 1.0 }
}

fn call() -> Contract {
    Contract { style: Style::European, kind: OptionType::Call, strike: 100.0 }
}

#[test]
fn options_reject_bad_markets_and_contracts() {
    rejects(OptionBook::single(Market { vol: -0.1, ..market() }, 1, call()), "vol");
    rejects(OptionBook::single(Market { spot: 0.0, ..market() }, 1, call()), "spot");
    rejects(OptionBook::single(Market { rate: f64::NAN, ..market() }, 1, call()), "rate");
    rejects(OptionBook::single(Market { maturity: -1.0, ..market() }, 1, call()), "maturity");
    rejects(OptionBook::single(market(), 0, call()), "steps");
    rejects(OptionBook::single(market(), 1, Contract { strike: f64::NAN, ..call() }), "strike");
    let breached = Contract { style: Style::Barrier { level: 120.0, kind: BarrierKind::DownOut }, ..call() };
    rejects(OptionBook::single(market(), 12, breached), "barrier");
    let asian = Contract { style: Style::Asian, ..call() };
    rejects(OptionBook::new(market(), 12, vec![call(), asian]), "style");
    rejects(option::run(&OptionBook::single(market(), 1, call()).unwrap(), 1, 0), "paths");
    rejects(option::simulate(&OptionBook::single(market(), 1, call()).unwrap(), 1, 5..100), "units");
}

#[test]
fn particle_filter_and_ewma_reject_bad_inputs() {
    let m = StateSpaceModel { a: 0.9, q: 1.0, r: 0.5, observations: vec![0.1, 0.2] };
    rejects(particle::run(&StateSpaceModel { q: -1.0, ..m.clone() }, 1, 100), "q");
    rejects(particle::run(&StateSpaceModel { r: 0.0, ..m.clone() }, 1, 100), "r");
    rejects(particle::run(&StateSpaceModel { a: f64::NAN, ..m.clone() }, 1, 100), "a");
    rejects(particle::run(&StateSpaceModel { observations: vec![], ..m.clone() }, 1, 100), "observations");
    rejects(
        particle::run(&StateSpaceModel { observations: vec![1.0, f64::INFINITY], ..m.clone() }, 1, 100),
        "observations",
    );
    rejects(particle::run(&m, 1, 0), "particles");

    let w = ReturnWindow { returns: vec![0.01; 12], assets: 3, lambda: 0.94 };
    rejects(ewma::run(&ReturnWindow { lambda: 1.0, ..w.clone() }, 4), "lambda");
    rejects(ewma::run(&ReturnWindow { assets: 5, ..w.clone() }, 2), "returns");
    rejects(ewma::run(&ReturnWindow { assets: 0, ..w.clone() }, 2), "assets");
    rejects(ewma::run(&w, 5), "rows");
    rejects(ewma::run(&w, 0), "rows");
    // Valid input whose covariance is singular is a numeric failure, not a panic.
    assert!(matches!(ewma::run(&w, 4), Err(KernelError::NumericFailure(_))));
}

/// Extreme but valid inputs either answer with finite numbers or fail cleanly.
#[test]
fn extreme_valid_inputs_never_panic() {
    let wild = Market { spot: 1e-300, rate: 50.0, dividend: -50.0, vol: 40.0, maturity: 100.0 };
    let r = option::run(&OptionBook::single(wild, 3, Contract { style: Style::Asian, ..call() }).unwrap(), 1, 2000);
    assert!(r.is_ok() || matches!(r, Err(KernelError::NumericFailure(_))));
    let p = single_asset(1e300, 10.0, 30.0);
    let r = var::run(&VarBook::single(p, VarQuery { horizon: 10.0, ..query() }).unwrap(), 1, 2000);
    assert!(r.is_ok() || matches!(r, Err(KernelError::NumericFailure(_))), "{r:?}");
}
