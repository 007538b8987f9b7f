//! The reported standard errors are honest: over 400 seeds, the 95% interval
//! `estimate ± 1.96 se` must cover the reference in 90%–99% of runs.

mod common;

use common::*;
use helix_math::option::{self, Contract, OptionBook, Style};
use helix_math::var::{self, VarBook, VarMode, VarQuery};

const SEEDS: u64 = 400;

fn coverage(mut covers: impl FnMut(u64) -> bool) -> f64 {
    (0..SEEDS).filter(|&s| covers(s)).count() as f64 / SEEDS as f64
}

fn in_95(e: helix_math::Estimate, reference: f64) -> bool {
    (e.value - reference).abs() <= 1.959_964 * e.std_error.expect("standard error")
}

#[test]
fn european_price_interval_covers_quantlib_about_95_percent() {
    let c = &cases("european")[2];
    let contract = Contract { style: Style::European, kind: option_type(c), strike: f(c, "strike") };
    let book = OptionBook::single(market(c), 1, contract).unwrap();
    let rate = coverage(|seed| {
        let out = option::run(&book, seed, 20_000).unwrap().remove(0);
        in_95(out.estimate("price").unwrap(), f(c, "price"))
    });
    eprintln!("european coverage {rate}");
    assert!((0.90..=0.99).contains(&rate), "European price coverage {rate}");
}

#[test]
fn var_and_es_intervals_cover_the_lognormal_closed_form_about_95_percent() {
    let c = &cases("lognormal_var_es")[1];
    let p = single_asset(f(c, "value"), f(c, "drift"), f(c, "vol"));
    let q = VarQuery { horizon: f(c, "horizon_years"), confidence: f(c, "confidence"), mode: VarMode::Full };
    let book = VarBook::single(p, q).unwrap();
    let (mut var_hits, mut es_hits) = (0, 0);
    for seed in 0..SEEDS {
        let out = var::run(&book, seed, 50_000).unwrap().remove(0);
        var_hits += in_95(out.estimate("var").unwrap(), f(c, "var")) as u32;
        es_hits += in_95(out.estimate("es").unwrap(), f(c, "es")) as u32;
    }
    let (var_rate, es_rate) = (var_hits as f64 / SEEDS as f64, es_hits as f64 / SEEDS as f64);
    eprintln!("VaR coverage {var_rate}, ES coverage {es_rate}");
    assert!((0.90..=0.99).contains(&var_rate), "VaR coverage {var_rate}");
    assert!((0.90..=0.99).contains(&es_rate), "ES coverage {es_rate}");
}

/// Randomised QMC: the 95% interval from 32 independent scrambles covers the truth in 93-97%
/// of 1000 seeds (400 leave a binomial spread of 1.1 points, too wide for that band), for a European price and delta (Black-Scholes-Merton), a 64-fixing geometric
/// Asian (its closed form) and the arithmetic one (a run of 2^22 points, whose error is
/// twentyfold smaller than one seed's at 2^11).
#[test]
fn qmc_intervals_cover_about_95_percent() {
    use helix_math::option::Method;
    use helix_math::option::closed_form::black_scholes;
    let c = &cases("european")[2];
    let m = market(c);
    let contract = Contract { style: Style::European, kind: option_type(c), strike: f(c, "strike") };
    let book = OptionBook::single(m, 1, contract).unwrap().with_method(Method::Quasi).unwrap();
    let exact = black_scholes(option_type(c), f(c, "strike"), &m);
    const QMC_SEEDS: u64 = 1000;
    let (mut price, mut delta) = (0, 0);
    for seed in 0..QMC_SEEDS {
        let out = option::run(&book, seed, 8192).unwrap().remove(0);
        price += usize::from(in_95(out.estimate("price").unwrap(), exact.price));
        delta += usize::from(in_95(out.estimate("delta").unwrap(), exact.delta));
    }
    let a = &cases("geometric_asian")[0];
    let asian = Contract { style: Style::Asian, kind: option_type(a), strike: f(a, "strike") };
    let steps = f(a, "fixings") as u32;
    let asian_book = OptionBook::single(market(a), steps, asian).unwrap().with_method(Method::Quasi).unwrap();
    let reference = option::run(&asian_book, 1 << 40, 1 << 22).unwrap().remove(0).estimate("price").unwrap();
    let (mut geometric, mut arithmetic, mut se) = (0, 0, 0.0);
    for seed in 0..QMC_SEEDS {
        let out = option::run(&asian_book, seed, 2048).unwrap().remove(0);
        geometric += usize::from(in_95(out.estimate("geometric_price").unwrap(), f(a, "price")));
        arithmetic += usize::from(in_95(out.estimate("price").unwrap(), reference.value));
        se += out.estimate("price").unwrap().std_error.unwrap() / QMC_SEEDS as f64;
    }
    assert!(reference.std_error.unwrap() * 20.0 < se, "reference {reference:?} against a mean se of {se}");
    let rate = |n: usize| n as f64 / QMC_SEEDS as f64;
    eprintln!(
        "qmc coverage: european price {}, delta {}; asian geometric {}, arithmetic {}",
        rate(price),
        rate(delta),
        rate(geometric),
        rate(arithmetic)
    );
    for (name, n) in
        [("european price", price), ("delta", delta), ("geometric asian", geometric), ("asian", arithmetic)]
    {
        assert!((0.93..=0.97).contains(&rate(n)), "{name} coverage {}", rate(n));
    }
}
