//! Importance sampling in the Wasm-only `basket-option` kernel: far out of the money it prices
//! a one-asset basket like Black-Scholes to 1%, agrees with plain Monte Carlo on correlated
//! baskets with a tenth of its error bar, a plain price that too few paths reached carries a
//! bound as its error bar, and both methods keep the kernel's determinism and prefix property.
//!
//! The guest is built and staged by `cargo xtask test` (or `cargo xtask kernels`).

use helix_host::wasm::{GuestJob, GuestLimits, GuestOutput, WasmConfig, WasmEngine, WasmKernel, load_file};
use helix_host::{Job, Outcome, Router, RouterConfig, Runtime, Status};
use helix_math::option::closed_form::black_scholes;
use helix_math::option::{Market, OptionType};
use helix_math::{Estimate, Params};
use std::path::Path;
use std::time::Duration;

mod support;
use support::{arr, choice, num, repo, staged, temp_dir};

/// A router serving only the staged `basket-option` (the other kernels need not compile).
fn basket_router(tag: &str) -> Router {
    let dir = temp_dir(tag);
    for f in ["basket-option.toml", "basket-option.wasm"] {
        std::fs::copy(staged(f), dir.join(f)).unwrap();
    }
    let r = Router::from_dir(RouterConfig { batching: false, ..RouterConfig::default() }, &dir).unwrap();
    assert!(r.load_errors().is_empty(), "{:?}", r.load_errors());
    r
}

async fn price(r: &Router, params: Params, seed: u64) -> Outcome {
    let mut j = Job::new(seed, "basket-option", params, Duration::from_secs(120));
    j.seed = Some(seed);
    let o = r.submit(j).await;
    assert_eq!((o.status, o.runtime), (Status::Completed, Some(Runtime::Wasm)), "{:?} {:?}", o.error, o.decision);
    o
}

fn basket(spots: &[f64], weights: &[f64], vols: &[f64], correlation: &[f64], strike: f64, kind: &str) -> Params {
    Params::new()
        .with("spots", arr(spots))
        .with("weights", arr(weights))
        .with("vols", arr(vols))
        .with("correlation", arr(correlation))
        .with("rate", num(0.02))
        .with("maturity", num(1.0))
        .with("strike", num(strike))
        .with("type", choice(kind))
}

/// Three correlated assets, equally weighted in value.
const SPOTS: [f64; 3] = [100.0, 90.0, 110.0];
const WEIGHTS: [f64; 3] = [0.4, 0.3, 0.3];
const VOLS: [f64; 3] = [0.2, 0.3, 0.25];
const CORRELATION: [f64; 9] = [1.0, 0.5, 0.3, 0.5, 1.0, 0.2, 0.3, 0.2, 1.0];

fn three_assets(strike: f64, kind: &str) -> Params {
    basket(&SPOTS, &WEIGHTS, &VOLS, &CORRELATION, strike, kind)
}

/// A two-asset spread `S_1 - S_2`: a weight is negative, so the basket can be.
fn spread(strike: f64, kind: &str) -> Params {
    basket(&[100.0, 100.0], &[1.0, -1.0], &[0.3, 0.2], &[1.0, 0.5, 0.5, 1.0], strike, kind)
}

fn value(o: &Outcome, name: &str) -> Estimate {
    o.estimate(name).unwrap_or_else(|| panic!("no {name} in {:?}", o.estimates))
}

fn se(e: Estimate) -> f64 {
    e.std_error.expect("a standard error")
}

/// The deep out-of-the-money European options of `rare.json`, as one-asset baskets: the
/// basket has no dividend, so the spot is carried at the dividend, `S exp(-q T)`, which gives
/// the same terminal distribution (`S exp((r - q - vol^2/2) T + ...)`) and so the same price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_out_of_the_money_one_asset_basket_matches_black_scholes_by_importance_sampling() {
    let r = basket_router("basket-bs");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("kernels/math/tests/data/rare.json")).unwrap())
            .unwrap();
    let cases = file["cases"]["deep_otm_european"].as_array().unwrap();
    assert!(cases.len() >= 8, "{cases:?}");
    for (i, c) in cases.iter().enumerate() {
        let f = |k: &str| c[k].as_f64().unwrap();
        let (kind, t) = (c["type"].as_str().unwrap(), f("maturity_years"));
        let spot = f("spot") * (-f("dividend") * t).exp();
        let option = if kind == "call" { OptionType::Call } else { OptionType::Put };
        let m = Market { spot, rate: f("rate"), dividend: 0.0, vol: f("vol"), maturity: t };
        let bs = black_scholes(option, f("strike"), &m).price;
        assert!((bs / f("price") - 1.0).abs() < 1e-9, "case {i}: the carried spot gives {bs}, not {}", f("price"));
        let params = Params::new()
            .with("spots", arr(&[spot]))
            .with("weights", arr(&[1.0]))
            .with("vols", arr(&[f("vol")]))
            .with("correlation", arr(&[1.0]))
            .with("rate", num(f("rate")))
            .with("maturity", num(t))
            .with("strike", num(f("strike")))
            .with("type", choice(kind))
            .with("paths", num(200_000.0));
        // `auto` picks importance sampling this far out.
        let o = price(&r, params, 17 + i as u64).await;
        let p = value(&o, "price");
        assert!(p.covers(bs, 4.0), "case {i} {kind}: {p:?} vs Black-Scholes {bs}");
        assert!(se(p) <= 0.01 * bs, "case {i} {kind}: relative se {}", se(p) / bs);
        let shift = value(&o, "importance_shift");
        assert!(shift.std_error.is_none() && shift.value > 3.0, "case {i}: {shift:?}");
        let paid = value(&o, "contributing_paths");
        // About half the tilted paths end in the money.
        assert!(paid.std_error.is_none() && paid.value > 50_000.0 && paid.value < 200_000.0, "case {i}: {paid:?}");
    }
}

/// Baskets a few standard deviations out (a call and a put on three correlated assets, a call
/// on a spread), where plain Monte Carlo still sees enough paths pay to be checked against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importance_sampling_agrees_with_plain_monte_carlo_on_correlated_baskets_with_a_tenth_of_the_error() {
    let r = basket_router("basket-agree");
    let paths = 2_000_000.0;
    // (params, least ratio of plain's standard error to importance's at equal paths)
    let cases = [(three_assets(170.0, "call"), 10.0), (three_assets(60.0, "put"), 10.0), (spread(60.0, "call"), 3.0)];
    for (i, (params, least_ratio)) in cases.into_iter().enumerate() {
        let params = params.with("paths", num(paths));
        let plain = price(&r, params.clone().with("method", choice("plain")), 3).await;
        let tilted = price(&r, params.clone().with("method", choice("importance")), 4).await;
        let (a, b) = (value(&plain, "price"), value(&tilted, "price"));
        let combined = (se(a).powi(2) + se(b).powi(2)).sqrt();
        assert!((a.value - b.value).abs() <= 4.0 * combined, "case {i}: plain {a:?} vs importance {b:?}");
        let ratio = se(a) / se(b);
        assert!(ratio >= least_ratio, "case {i}: plain se / importance se = {ratio}");
        assert!(plain.estimate("importance_shift").is_none(), "case {i}: plain is not tilted");
        assert!(value(&plain, "contributing_paths").value >= 1000.0, "case {i}: plain needs paths that pay");
        eprintln!(
            "case {i}: plain {a:?} ({} paid), importance {b:?} (|mu| {}), variance ratio {:.1}",
            value(&plain, "contributing_paths").value,
            value(&tilted, "importance_shift").value,
            ratio * ratio
        );
        // `auto` tilts all three (each ends in the money under 5% of the time), with the same
        // shift and draws as `importance`, so the same bits.
        let auto = price(&r, params, 4).await;
        assert_eq!(auto.estimates, tilted.estimates, "case {i}: auto");
    }
    // Near the money `auto` stays plain, and gives plain's bits.
    let near = three_assets(105.0, "call").with("paths", num(20_000.0));
    let auto = price(&r, near.clone(), 5).await;
    assert!(auto.estimate("importance_shift").is_none(), "{:?}", auto.estimates);
    assert_eq!(auto.estimates, price(&r, near.with("method", choice("plain")), 5).await.estimates);
}

/// Plain Monte Carlo six standard deviations out sees no path pay: its error bar is the bound
/// (for one asset, the Black-Scholes price itself), never the sample's 0. A basket that
/// cannot pay is priced 0 with a 0 error bar, and importance sampling, with no exercise
/// region to aim at, falls back to plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_that_too_few_paths_reached_carries_a_bound_as_its_error_bar() {
    let r = basket_router("basket-bound");
    let (spot, strike, vol) = (119.9888, 770.116, 0.3179);
    let one = basket(&[spot], &[1.0], &[vol], &[1.0], strike, "call").with("paths", num(20_000.0));
    let plain = price(&r, one.clone().with("method", choice("plain")), 1).await;
    let (p, paid) = (value(&plain, "price"), value(&plain, "contributing_paths"));
    assert!(paid.value < 30.0, "{paid:?}");
    let m = Market { spot, rate: 0.02, dividend: 0.0, vol, maturity: 1.0 };
    let bs = black_scholes(OptionType::Call, strike, &m).price;
    assert!(se(p) > 0.0 && p.covers(bs, 1.0), "{p:?} vs {bs}");
    // (To the rounding of the comonotonic strike, a few ulps of the strike.)
    assert!(se(p) <= bs * (1.0 + 1e-4), "for one asset the bound is Black-Scholes: {p:?} vs {bs}");
    // With enough paths paying, importance sampling's own error bar stands.
    let tilted = price(&r, one, 1).await;
    let t = value(&tilted, "price");
    assert!(value(&tilted, "contributing_paths").value >= 30.0 && se(t) < 0.05 * bs && t.covers(bs, 4.0), "{t:?}");

    // Three assets far out: the bound is above the (importance-sampled) price, below the crude
    // E[B] discounted, and plain's error bar is it.
    let deep = three_assets(260.0, "call").with("paths", num(20_000.0));
    let plain = price(&r, deep.clone().with("method", choice("plain")), 2).await;
    let tilted = price(&r, deep.set("paths", num(200_000.0)), 2).await;
    let (p, t) = (value(&plain, "price"), value(&tilted, "price"));
    assert!(value(&plain, "contributing_paths").value < 30.0, "{:?}", plain.estimates);
    let crude: f64 = SPOTS.iter().zip(WEIGHTS).map(|(s, w)| s * w).sum();
    assert!(se(p) >= t.value + 4.0 * se(t) && se(p) < 0.01 * crude, "bound {p:?}, price {t:?}, E[B] {crude}");
    assert!(p.covers(t.value, 1.0), "{p:?} vs {t:?}");

    // A put struck at 0 on a positive basket never pays: 0, provably, and nothing to tilt.
    let never = three_assets(0.0, "put").with("paths", num(5_000.0)).with("method", choice("importance"));
    let o = price(&r, never, 3).await;
    assert_eq!(value(&o, "price"), Estimate { value: 0.0, std_error: Some(0.0) }, "{:?}", o.estimates);
    assert_eq!(value(&o, "contributing_paths"), Estimate::exact(0.0));
    assert!(o.estimate("importance_shift").is_none(), "{:?}", o.estimates);
    // No volatility: no randomness to tilt; the price is the discounted intrinsic value.
    let flat = basket(&[100.0, 50.0], &[1.0, 1.0], &[0.0, 0.0], &[1.0, 0.0, 0.0, 1.0], 140.0, "call")
        .with("paths", num(5_000.0))
        .with("method", choice("importance"));
    let o = price(&r, flat, 3).await;
    assert!(o.estimate("importance_shift").is_none(), "{:?}", o.estimates);
    let intrinsic = 150.0 - 140.0 * (-0.02f64).exp();
    assert!((value(&o, "price").value - intrinsic).abs() < 1e-9, "{:?} vs {intrinsic}", o.estimates);
}

/// The mode search's fixed cost fits in the fuel every guest run gets on top of its per-path
/// prediction, even for a 64-asset basket asking for one path: a spread whose search runs into
/// its work cap, and a put whose exercise region lies past the search's reach (so it is priced
/// plainly, 0 with its bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixty_four_asset_basket_searches_for_its_mode_within_the_fuel_a_single_path_gets() {
    let r = basket_router("basket-wide");
    let d = 64;
    let correlation = |rho: f64| -> Vec<f64> { (0..d * d).map(|k| if k / d == k % d { 1.0 } else { rho }).collect() };
    let alternating: Vec<f64> = (0..d).map(|i| if i % 2 == 1 { -2.0 } else { 2.0 } / d as f64).collect();
    let long: Vec<f64> = vec![2.0 / d as f64; d];
    let spread = basket(&[100.0; 64], &alternating, &[0.25; 64], &correlation(0.3), 20.0, "call");
    let put = basket(&[100.0; 64], &long, &[0.25; 64], &correlation(0.0), 40.0, "put");
    for (name, params, tilted) in [("spread", spread, true), ("put", put, false)] {
        for method in ["auto", "importance"] {
            let o = price(&r, params.clone().with("method", choice(method)).with("paths", num(1.0)), 7).await;
            assert_eq!(o.estimate("importance_shift").is_some(), tilted, "{name} {method}: {:?}", o.estimates);
            assert!(o.fuel_used.is_some_and(|f| f < 20_000_000), "{name} {method}: {:?}", o.fuel_used);
        }
    }
}

/// The staged module, loaded into an engine of its own: jobs run as the router runs them,
/// with an explicit grant of units when given.
fn basket_module() -> WasmKernel {
    let engine = WasmEngine::new(WasmConfig { cache_dir: None, ..WasmConfig::default() }).unwrap();
    let path = staged("basket-option.wasm");
    let sha = helix_host::wasm::sha256_hex(&std::fs::read(&path).unwrap());
    load_file(&engine, Path::new(&path), &sha, None).unwrap()
}

fn run(kernel: &WasmKernel, params: &Params, seed: u64, units: Option<u64>) -> (GuestOutput, u64) {
    let limits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 60_000 };
    let run = kernel.run(&[GuestJob { seed, units, params: params.clone() }], limits).unwrap();
    let fuel = run.fuel_used.unwrap();
    (run.answers.into_iter().next().unwrap().unwrap(), fuel)
}

/// Same seed, same bits; a degraded run (fewer units granted) is exactly the run that asked
/// for that many paths, under either method, however far the grant falls inside a block; a
/// different seed draws different paths. A tilted path costs a little more fuel.
#[test]
fn both_methods_are_deterministic_and_a_shorter_run_is_a_prefix() {
    let kernel = basket_module();
    for method in ["plain", "importance"] {
        let params = three_assets(170.0, "call").with("method", choice(method));
        let full = params.clone().with("paths", num(50_000.0));
        let (a, _) = run(&kernel, &full, 11, None);
        let (b, _) = run(&kernel, &full, 11, None);
        assert_eq!(a, b, "{method}: same seed, same bits");
        assert_eq!(a.units_done, 50_000);
        let (other, _) = run(&kernel, &full, 12, None);
        assert_ne!(a.estimates[0], other.estimates[0], "{method}: another seed");
        for granted in [1u64, 1024, 3000, 20_480] {
            let (cut, _) = run(&kernel, &full, 11, Some(granted));
            let (asked, _) = run(&kernel, &params.clone().with("paths", num(granted as f64)), 11, None);
            assert_eq!(cut, asked, "{method}: {granted} units granted");
            assert_eq!(cut.units_done, granted);
        }
    }
    // Fuel per path, plain against tilted, on 40 blocks (the search's fixed cost is small).
    let per_path = |method: &str| {
        let p = three_assets(170.0, "call").with("method", choice(method)).with("paths", num(40_960.0));
        run(&kernel, &p, 1, None).1 as f64 / 40_960.0
    };
    let (plain, tilted) = (per_path("plain"), per_path("importance"));
    eprintln!("fuel per path at 3 assets: plain {plain:.0}, importance {tilted:.0}");
    assert!(tilted > plain && tilted < 1.5 * plain, "plain {plain}, importance {tilted}");
}
