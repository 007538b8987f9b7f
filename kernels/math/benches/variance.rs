//! Variance reduction at equal CPU time, in one run: for each method, the variance of one
//! path's contribution to the price (paths x se^2) times the CPU time a path takes, plain
//! Monte Carlo against randomised QMC at 2^16 points (`qmc_table`) and against importance sampling, on the deep out-of-the-money cases of
//! `tests/data/rare.json` that plain Monte Carlo can still measure (a few hundred paying paths
//! in 10^8), and four nearer the money. The gain is plain over importance: how many times fewer
//! CPU seconds importance sampling needs for the same error bar. Run with
//! `cargo bench -p helix-math --bench variance`; the times depend on the machine and its load,
//! the variances do not.

use helix_math::option::{self, Contract, Market, Method, OptionBook, OptionType, Style};
use helix_math::var::{self, Portfolio, VarBook, VarMode, VarQuery};
use std::time::Instant;

/// Rounds per method; the time is the fastest round's.
const ROUNDS: usize = 3;

struct Measured {
    variance_per_path: f64,
    seconds_per_path: f64,
    contributing: f64,
}

fn measure(book: &OptionBook, paths: u64) -> Measured {
    let mut best = f64::INFINITY;
    let mut last = None;
    for round in 0..ROUNDS {
        let t = Instant::now();
        let out = option::run(book, 1 + round as u64, paths).unwrap().remove(0);
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    let out = last.unwrap();
    let se = out.estimate("price").unwrap().std_error.unwrap();
    Measured {
        variance_per_path: se * se * paths as f64,
        seconds_per_path: best / paths as f64,
        contributing: out.estimate("contributing_paths").unwrap().value,
    }
}

/// The same for a VaR query: the variance per path of its VaR and ES, and the time a path takes.
fn measure_var(book: &VarBook, paths: u64) -> (f64, f64, f64) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for round in 0..ROUNDS {
        let t = Instant::now();
        let out = var::run(book, 1 + round as u64, paths).unwrap().remove(0);
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    let out = last.unwrap();
    let per_path = |name: &str| out.estimate(name).unwrap().std_error.unwrap().powi(2) * paths as f64;
    (per_path("var"), per_path("es"), best / paths as f64)
}

fn tail_var_table(rare: &serde_json::Value) {
    println!();
    println!(
        "| lognormal position, confidence | plain ns/path | importance ns/path | VaR: variance per path, plain / importance | VaR gain | ES: variance ratio | ES gain at equal CPU time |"
    );
    println!("|---|---|---|---|---|---|---|");
    for c in rare["cases"]["tail_lognormal_var_es"].as_array().unwrap() {
        let f = |k: &str| c[k].as_f64().unwrap();
        let p = Portfolio {
            positions: vec![f("value")],
            drifts: vec![f("drift")],
            vols: vec![f("vol")],
            correlation: vec![1.0],
        };
        let q = VarQuery { horizon: f("horizon_years"), confidence: f("confidence"), mode: VarMode::Full };
        let book = |m| VarBook::single(p.clone(), q).unwrap().with_method(m).unwrap();
        let (pv, pe, pt) = measure_var(&book(Method::Plain), 4_000_000);
        let (iv, ie, it) = measure_var(&book(Method::Importance), 400_000);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f("confidence"),
            pt * 1e9,
            it * 1e9,
            pv / iv,
            pv / iv * pt / it,
            pe / ie,
            pe / ie * pt / it
        );
    }
}

/// Grid options far out of the money (spot 100, vol 0.25, one year): plain on 4 x 10^6 paths
/// against importance sampling on 400 000, one table titled `title` with a row per case.
fn grid_importance_table(title: &str, steps: u32, cases: &[(String, Contract)]) {
    println!();
    println!(
        "| {title} | plain: paying paths of 4 x 10^6 | plain ns/path | importance ns/path | variance per path, plain / importance | gain at equal CPU time |"
    );
    println!("|---|---|---|---|---|---|");
    let m = Market { spot: 100.0, rate: 0.03, dividend: 0.01, vol: 0.25, maturity: 1.0 };
    for (name, c) in cases {
        let book = |method| OptionBook::single(m, steps, *c).unwrap().with_method(method).unwrap();
        let plain = measure(&book(Method::Plain), 4_000_000);
        let tilted = measure(&book(Method::Importance), 400_000);
        let ratio = plain.variance_per_path / tilted.variance_per_path;
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} | {ratio:.1} | {:.1} |",
            plain.contributing,
            plain.seconds_per_path * 1e9,
            tilted.seconds_per_path * 1e9,
            ratio * plain.seconds_per_path / tilted.seconds_per_path
        );
    }
}

/// Arithmetic Asian calls, 12 fixings, both with the geometric control variate.
fn asian_table() {
    let cases: Vec<(String, Contract)> = [135.0, 150.0, 165.0]
        .map(|strike| (format!("K={strike}"), Contract { style: Style::Asian, kind: OptionType::Call, strike }))
        .into();
    grid_importance_table("Asian call, 12 fixings", 12, &cases);
}

/// Knock-out calls, 50 monitoring dates.
fn barrier_table() {
    let knock_out = |name: &str, level, kind, strike| {
        (name.to_string(), Contract { style: Style::Barrier { level, kind }, kind: OptionType::Call, strike })
    };
    let cases = [
        knock_out("down-and-out K=170 B=80", 80.0, option::BarrierKind::DownOut, 170.0),
        knock_out("up-and-out K=160 B=200", 200.0, option::BarrierKind::UpOut, 160.0),
    ];
    grid_importance_table("knock-out call, 50 dates", 50, &cases);
}

/// Randomised QMC against plain Monte Carlo at 2^16 points: QMC's variance is the mean of its
/// squared error bar over 8 seeds (one error bar, from 32 randomisations, is itself uncertain
/// by a quarter); plain's from 2^20 paths, scaled to 2^16. Equal CPU: each variance times the
/// time its 2^16 paths take.
fn qmc_table() {
    const POINTS: u64 = 1 << 16;
    println!();
    println!(
        "| 2^16 points | estimate | plain ns/path | qmc ns/path | variance, plain / qmc | gain at equal CPU time |"
    );
    println!("|---|---|---|---|---|---|");
    let m = Market { spot: 100.0, rate: 0.03, dividend: 0.01, vol: 0.25, maturity: 1.0 };
    let cases = [
        ("European call K=100", Style::European, OptionType::Call, 100.0, 1, "price"),
        ("European call K=130", Style::European, OptionType::Call, 130.0, 1, "price"),
        ("European put K=90", Style::European, OptionType::Put, 90.0, 1, "price"),
        ("Asian call K=100, 64 fixings", Style::Asian, OptionType::Call, 100.0, 64, "price"),
        ("Asian call K=100, 64 fixings", Style::Asian, OptionType::Call, 100.0, 64, "price_plain"),
        ("Asian call K=120, 64 fixings", Style::Asian, OptionType::Call, 120.0, 64, "price"),
        (
            "down-and-out call K=100 B=80, 64 dates",
            Style::Barrier { level: 80.0, kind: option::BarrierKind::DownOut },
            OptionType::Call,
            100.0,
            64,
            "price",
        ),
    ];
    for (name, style, kind, strike, steps, estimate) in cases {
        let c = Contract { style, kind, strike };
        let book = |method| OptionBook::single(m, steps, c).unwrap().with_method(method).unwrap();
        let time = |book: &OptionBook, paths: u64| {
            (0..ROUNDS)
                .map(|r| {
                    let t = Instant::now();
                    option::run(book, 100 + r as u64, paths).unwrap();
                    t.elapsed().as_secs_f64() / paths as f64
                })
                .fold(f64::INFINITY, f64::min)
        };
        let se = |out: &helix_math::Output| out.estimate(estimate).unwrap().std_error.unwrap();
        let (plain, qmc) = (book(Method::Plain), book(Method::Quasi));
        let plain_var = se(&option::run(&plain, 1, 1 << 20).unwrap()[0]).powi(2) * (1 << 20) as f64 / POINTS as f64;
        let qmc_var = (0..8).map(|seed| se(&option::run(&qmc, seed, POINTS).unwrap()[0]).powi(2)).sum::<f64>() / 8.0;
        let (tp, tq) = (time(&plain, POINTS), time(&qmc, POINTS));
        println!(
            "| {name} | {estimate} | {:.1} | {:.1} | {:.1} | {:.1} |",
            tp * 1e9,
            tq * 1e9,
            plain_var / qmc_var,
            plain_var * tp / (qmc_var * tq)
        );
    }
}

fn main() {
    qmc_table();
    barrier_table();
    let rare: serde_json::Value = serde_json::from_str(include_str!("../tests/data/rare.json")).unwrap();
    tail_var_table(&rare);
    asian_table();
    println!();
    let f = |c: &serde_json::Value, k: &str| c[k].as_f64().unwrap();
    let mut cases: Vec<(String, Market, Contract)> = rare["cases"]["deep_otm_european"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| f(c, "price_over_spot") > 1e-7)
        .map(|c| {
            let kind = if c["type"] == "call" { OptionType::Call } else { OptionType::Put };
            let m = Market {
                spot: f(c, "spot"),
                rate: f(c, "rate"),
                dividend: f(c, "dividend"),
                vol: f(c, "vol"),
                maturity: f(c, "maturity_years"),
            };
            let name = format!(
                "{} K={} S={} ({:.1e} of spot)",
                c["type"].as_str().unwrap(),
                f(c, "strike"),
                f(c, "spot"),
                f(c, "price_over_spot")
            );
            (name, m, Contract { style: Style::European, kind, strike: f(c, "strike") })
        })
        .collect();
    let atm = Market { spot: 100.0, rate: 0.03, dividend: 0.01, vol: 0.25, maturity: 1.0 };
    for (strike, kind, name) in [
        (110.0, OptionType::Call, "call K=110 S=100 (out of the money)"),
        (100.0, OptionType::Call, "call K=100 S=100 (at the money)"),
        (80.0, OptionType::Call, "call K=80 S=100 (in the money)"),
        (60.0, OptionType::Put, "put K=60 S=100 (in the money 2.5% of the time)"),
    ] {
        cases.push((name.into(), atm, Contract { style: Style::European, kind, strike }));
    }
    println!(
        "| case | plain: paying paths of 10^8 | plain ns/path | importance ns/path | variance per path, plain / importance | gain at equal CPU time |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, m, c) in cases {
        let book = |method| OptionBook::single(m, 1, c).unwrap().with_method(method).unwrap();
        let plain = measure(&book(Method::Plain), 100_000_000);
        let tilted = measure(&book(Method::Importance), 2_000_000);
        let variance_ratio = plain.variance_per_path / tilted.variance_per_path;
        let gain = variance_ratio * plain.seconds_per_path / tilted.seconds_per_path;
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} | {variance_ratio:.1} | {gain:.1} |",
            plain.contributing,
            plain.seconds_per_path * 1e9,
            tilted.seconds_per_path * 1e9
        );
    }
}
