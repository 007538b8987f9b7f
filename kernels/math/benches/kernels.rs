//! Single-thread throughput of every kernel, in units (paths, particles, rows) per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use helix_math::classic;
use helix_math::ewma::{self, ReturnWindow};
use helix_math::option::{self, BarrierKind, Contract, Market, Method, OptionBook, OptionType, Style};
use helix_math::particle::{self, StateSpaceModel};
use helix_math::var::{self, Portfolio, VarBook, VarMode, VarQuery};
use helix_math::vmath::Simd;
use std::hint::black_box;

const PATHS: u64 = 200_000;

fn market() -> Market {
    Market { spot: 100.0, rate: 0.03, dividend: 0.01, vol: 0.25, maturity: 1.0 }
}

fn options(c: &mut Criterion) {
    let mut g = c.benchmark_group("mc-option");
    g.sample_size(20);
    let cases = [
        ("european-1step", 1, Style::European),
        ("asian-64", 64, Style::Asian),
        ("barrier-do-252", 252, Style::Barrier { level: 80.0, kind: BarrierKind::DownOut }),
    ];
    // Each style by plain Monte Carlo (the names without a suffix, as before), importance
    // sampling (the weights) and randomised QMC (a scrambled Sobol coordinate and a normal
    // quantile a step): the cost of a unit of each method, side by side in one run.
    for (name, steps, style) in cases {
        let paths = if steps == 1 { PATHS * 10 } else { PATHS / 10 };
        g.throughput(Throughput::Elements(paths));
        for (suffix, method) in [("", Method::Plain), ("-importance", Method::Importance), ("-qmc", Method::Quasi)] {
            let contract = Contract { style, kind: OptionType::Call, strike: 100.0 };
            let book = OptionBook::single(market(), steps, contract).unwrap().with_method(method).unwrap();
            g.bench_function(BenchmarkId::new(format!("{name}{suffix}"), paths), |b| {
                b.iter(|| option::run(&book, black_box(7), paths).unwrap())
            });
        }
    }
    g.finish();
}

/// The vector kernels at every instruction set and width this CPU runs (`<isa>-x<lanes>`),
/// against one scalar lane: the same bits each time, at different speeds.
fn widths(c: &mut Criterion) {
    let mut g = c.benchmark_group("mc-option-width");
    g.sample_size(10);
    let paths = PATHS * 10;
    g.throughput(Throughput::Elements(paths));
    let contract = Contract { style: Style::European, kind: OptionType::Call, strike: 100.0 };
    let book = OptionBook::single(market(), 1, contract).unwrap();
    for simd in Simd::all_available() {
        let name = format!("european-1step-{}-x{}", simd.isa().name(), simd.width().lanes());
        g.bench_function(BenchmarkId::new(name, paths), |b| {
            b.iter(|| option::finish(&book, &option::simulate_with(&book, black_box(7), 0..paths, simd).unwrap()))
        });
    }
    g.finish();
}

/// A d-asset portfolio with a valid equicorrelation of 0.3.
fn portfolio(d: usize) -> Portfolio {
    Portfolio {
        positions: (0..d).map(|i| 1e6 * (1.0 + i as f64 * 0.1)).collect(),
        drifts: vec![0.05; d],
        vols: (0..d).map(|i| 0.15 + 0.02 * i as f64).collect(),
        correlation: (0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.3 }).collect(),
    }
}

fn var(c: &mut Criterion) {
    let mut g = c.benchmark_group("mc-var");
    g.sample_size(20);
    for (name, mode) in [("10-assets-full", VarMode::Full), ("10-assets-linear", VarMode::Linear)] {
        let book = VarBook::single(portfolio(10), VarQuery { horizon: 10.0 / 252.0, confidence: 0.99, mode }).unwrap();
        g.throughput(Throughput::Elements(PATHS));
        g.bench_function(BenchmarkId::new(name, PATHS), |b| b.iter(|| var::run(&book, black_box(7), PATHS).unwrap()));
    }
    // A 99.9% query by plain Monte Carlo and by importance sampling: the weighted quantile's cost.
    let query = VarQuery { horizon: 10.0 / 252.0, confidence: 0.999, mode: VarMode::Full };
    for (name, method) in [("10-assets-full-999", Method::Plain), ("10-assets-full-999-importance", Method::Importance)]
    {
        let book = VarBook::single(portfolio(10), query).unwrap().with_method(method).unwrap();
        g.bench_function(BenchmarkId::new(name, PATHS), |b| b.iter(|| var::run(&book, black_box(7), PATHS).unwrap()));
    }
    g.finish();
}

fn particle_filter(c: &mut Criterion) {
    let mut g = c.benchmark_group("particle-filter");
    g.sample_size(10);
    let obs: Vec<f64> = (0..50).map(|t| (t as f64 * 0.3).sin() * 2.0).collect();
    let model = StateSpaceModel { a: 0.9, q: 1.0, r: 0.7, observations: obs };
    let particles = 16_384;
    // One unit is one particle carried through all 50 observations.
    g.throughput(Throughput::Elements(particles));
    g.bench_function(BenchmarkId::new("50-obs", particles), |b| {
        b.iter(|| particle::run(&model, black_box(7), particles).unwrap())
    });
    g.finish();
}

fn ewma_cov(c: &mut Criterion) {
    let mut g = c.benchmark_group("ewma-cov");
    let (t, d) = (1000usize, 10usize);
    let returns: Vec<f64> = (0..t * d).map(|k| 0.01 * ((k * 7919 % 1000) as f64 / 500.0 - 1.0)).collect();
    let w = ReturnWindow { returns, assets: d, lambda: 0.94 };
    g.throughput(Throughput::Elements(t as u64));
    g.bench_function(BenchmarkId::new("10-assets-rows", t), |b| b.iter(|| ewma::run(black_box(&w), t as u64).unwrap()));
    g.finish();
}

fn classics(c: &mut Criterion) {
    let mut g = c.benchmark_group("classic");
    let cost = 1 << 20;
    g.throughput(Throughput::Elements(cost / 64));
    g.bench_function("hashmix-rounds", |b| b.iter(|| classic::hashmix(black_box(&[1, 2, 3, 4]), cost).unwrap()));
    g.throughput(Throughput::Elements(250_000));
    g.bench_function("primecount-250k", |b| b.iter(|| classic::primecount(black_box(250_000))));
    g.finish();
}

criterion_group!(benches, options, widths, var, particle_filter, ewma_cov, classics);
criterion_main!(benches);
