//! Rare events: deep out-of-the-money options against their closed forms
//! (`tests/data/rare.json`, three to six standard deviations out). Importance sampling must
//! price them within 4 standard errors at a relative standard error of at most 1% at 200 000
//! paths, with honest intervals; plain Monte Carlo, which sees almost no paying path there,
//! must say so and never report a zero error bar.

mod common;

use common::*;
use helix_math::option::{self, Contract, Method, OptionBook, Sampling, Style};

fn book(c: &serde_json::Value, method: Method) -> OptionBook {
    let contract = Contract { style: Style::European, kind: option_type(c), strike: f(c, "strike") };
    OptionBook::single(market(c), 1, contract).unwrap().with_method(method).unwrap()
}

#[test]
fn importance_sampling_prices_deep_out_of_the_money_options_to_1_percent() {
    for c in rare_cases("deep_otm_european") {
        let b = book(&c, Method::Auto);
        assert!(matches!(b.sampling(), Sampling::Tilted { .. }), "auto tilts {c}");
        let out = option::run(&b, 11, 200_000).unwrap().remove(0);
        let price = out.estimate("price").unwrap();
        let se = price.std_error.expect("a standard error");
        assert!(se > 0.0, "{c}");
        assert!(se / f(&c, "price") <= 0.01, "relative standard error {} for {c}", se / f(&c, "price"));
        assert_within(&format!("price {c}"), price, f(&c, "price"), 4.0);
        assert!(out.estimate("contributing_paths").unwrap().value > 100_000.0, "{c}");
        assert!(out.estimate("importance_shift").is_some());
    }
}

#[test]
fn plain_monte_carlo_far_out_of_the_money_reports_a_bound_not_zero() {
    // Six standard deviations out: no path of 400 000 pays.
    let c = rare_cases("deep_otm_european").into_iter().find(|c| f(c, "strike") > 700.0).unwrap();
    let out = option::run(&book(&c, Method::Plain), 3, 400_000).unwrap().remove(0);
    let price = out.estimate("price").unwrap();
    assert_eq!((price.value, out.estimate("contributing_paths").unwrap().value), (0.0, 0.0));
    let se = price.std_error.expect("an error bar");
    assert!(se > 0.0, "zero error bar for a payoff that is not degenerate");
    assert!((price.value - f(&c, "price")).abs() <= se, "the bound {se} holds");
    assert!(out.estimate("importance_shift").is_none(), "plain runs say so");
}

/// The 95% interval of the importance-sampling estimate covers the closed form in 93-97% of
/// 400 seeds, for a deep out-of-the-money call and put.
#[test]
fn importance_sampling_intervals_cover_the_closed_form_about_95_percent() {
    let cases = rare_cases("deep_otm_european");
    for c in [&cases[2], &cases[1]] {
        let b = book(c, Method::Importance);
        let hits = (0..400u64)
            .filter(|&seed| {
                let p = option::run(&b, seed, 20_000).unwrap().remove(0).estimate("price").unwrap();
                (p.value - f(c, "price")).abs() <= 1.959_964 * p.std_error.unwrap()
            })
            .count();
        let rate = hits as f64 / 400.0;
        eprintln!("coverage {rate} for {c}");
        assert!((0.93..=0.97).contains(&rate), "coverage {rate} for {c}");
    }
}
