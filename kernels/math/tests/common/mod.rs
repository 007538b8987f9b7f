//! Shared test helpers: the reference values (closed forms and QuantLib 1.44) and builders.
#![allow(dead_code)]

use helix_math::option::{Market, OptionType};
use helix_math::var::Portfolio;
use serde_json::Value;

pub fn reference() -> Value {
    serde_json::from_str(include_str!("../data/reference.json")).expect("reference.json parses")
}

/// Tail and deep out-of-the-money cases, from closed forms (`tests/data/rare.json`).
pub fn rare_cases(name: &str) -> Vec<Value> {
    let rare: Value = serde_json::from_str(include_str!("../data/rare.json")).expect("rare.json parses");
    rare["cases"][name].as_array().unwrap_or_else(|| panic!("no rare case list {name}")).clone()
}

pub fn cases(name: &str) -> Vec<Value> {
    reference()["cases"][name].as_array().unwrap_or_else(|| panic!("no case list {name}")).clone()
}

pub fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("case has no number {key}: {v}"))
}

pub fn floats(v: &Value, key: &str) -> Vec<f64> {
    v[key].as_array().unwrap_or_else(|| panic!("no array {key}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

pub fn market(c: &Value) -> Market {
    Market {
        spot: f(c, "spot"),
        rate: f(c, "rate"),
        dividend: f(c, "dividend"),
        vol: f(c, "vol"),
        maturity: f(c, "maturity_years"),
    }
}

pub fn option_type(c: &Value) -> OptionType {
    match c["type"].as_str() {
        Some("call") => OptionType::Call,
        Some("put") => OptionType::Put,
        other => panic!("unknown option type {other:?}"),
    }
}

pub fn portfolio(c: &Value) -> Portfolio {
    let rows = c["correlation"].as_array().unwrap();
    Portfolio {
        positions: floats(c, "positions"),
        drifts: floats(c, "drifts"),
        vols: floats(c, "vols"),
        correlation: rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect(),
    }
}

/// A one-asset portfolio holding `value` dollars.
pub fn single_asset(value: f64, drift: f64, vol: f64) -> Portfolio {
    Portfolio { positions: vec![value], drifts: vec![drift], vols: vec![vol], correlation: vec![1.0] }
}

/// |estimate - reference| within k standard errors, with a readable failure.
pub fn assert_within(what: &str, est: helix_math::Estimate, reference: f64, k: f64) {
    let se = est.std_error.unwrap_or_else(|| panic!("{what}: no standard error"));
    let z = (est.value - reference) / se;
    assert!(z.abs() <= k, "{what}: estimate {} ± {se} is {z:.2} standard errors from reference {reference}", est.value);
}
