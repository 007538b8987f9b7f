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
