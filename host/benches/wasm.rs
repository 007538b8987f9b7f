//! Native vs Wasm in one run: every bundled Monte Carlo kernel at fixed work (units/s and the
//! Wasm/native ratio), with fuel metering on and off and with NaN canonicalisation; the fixed per-job Wasm cost (instantiate,
//! call, copies) on a one-path job, also with the opt-in `pagemap_reset`; and 32 small jobs as
//! one batch vs 32 single runs.
//!
//! Needs the staged guests (`cargo xtask kernels`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use helix_host::bench::{native_job, staged_guest};
use helix_host::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine};
use helix_math::{KernelKind, Params, Prepared, Value};
use std::hint::black_box;
use std::sync::Arc;

fn num(x: f64) -> Value {
    Value::Number(x)
}

/// The kernels with both builds and a unit count, at `helix bench`'s fixed work, named for
/// criterion (`kernel/mc-option-european-1-step`, ...).
fn cases() -> Vec<(String, &'static str, KernelKind, Params, u64)> {
    helix_host::bench::cases::all(false)
        .into_iter()
        .filter_map(|c| {
            let (kind, units) = (c.native?, c.units?);
            let words: Vec<String> = c
                .name
                .split(|ch: char| !ch.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            Some((format!("{}-{}", c.kernel, words.join("-")), c.kernel, kind, c.params, units))
        })
        .collect()
}

const LIMITS: GuestLimits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 60_000 };

fn engines() -> (Arc<WasmEngine>, Arc<WasmEngine>) {
    let on = WasmEngine::new(WasmConfig { cache_dir: None, ..WasmConfig::default() }).unwrap();
    let off = WasmEngine::new(WasmConfig { fuel: false, cache_dir: None, ..WasmConfig::default() }).unwrap();
    (on, off)
}

/// Fuel on, NaN canonicalisation on (off by default): what that setting costs.
fn canonical_nans() -> Arc<WasmEngine> {
    WasmEngine::new(WasmConfig { canonicalize_nans: true, cache_dir: None, ..WasmConfig::default() }).unwrap()
}

fn native_vs_wasm(c: &mut Criterion) {
    let (on, off) = engines();
    let canonical = canonical_nans();
    for (name, kernel, kind, params, units) in cases() {
        let mut g = c.benchmark_group(format!("kernel/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(units));
        g.bench_function("native", |b| b.iter(|| black_box(native_job(kind, &params, 7, Some(units)).unwrap())));
        let job = [GuestJob { seed: 7, units: Some(units), params: params.clone() }];
        let fueled = staged_guest(&on, kernel);
        g.bench_function("wasm-fuel", |b| b.iter(|| black_box(fueled.run(&job, LIMITS).unwrap())));
        let unmetered = staged_guest(&off, kernel);
        let no_fuel = GuestLimits { fuel: None, ..LIMITS };
        g.bench_function("wasm-no-fuel", |b| b.iter(|| black_box(unmetered.run(&job, no_fuel).unwrap())));
        let canonical_guest = staged_guest(&canonical, kernel);
        let canonical_run = || black_box(canonical_guest.run(&job, LIMITS).unwrap());
        g.bench_function("wasm-fuel-canonical-nans", |b| b.iter(canonical_run));
        g.finish();
    }
}

fn small_option(strike: f64) -> Params {
    Params::new().with("spot", num(100.0)).with("strike", num(strike)).with("vol", num(0.2)).with("maturity", num(1.0))
}

fn per_job_overhead(c: &mut Criterion) {
    let (on, _) = engines();
    let mc = staged_guest(&on, "mc-option");
    let mut g = c.benchmark_group("per-job");
    let one = [GuestJob { seed: 1, units: Some(1), params: small_option(100.0) }];
    let native = Prepared::parse(KernelKind::McOption, small_option(100.0)).unwrap().prepared;
    g.bench_function("native-1-path", |b| b.iter(|| black_box(native.run(1, 1).unwrap())));
    g.bench_function("wasm-1-path", |b| b.iter(|| black_box(mc.run(&one, LIMITS).unwrap())));
    // Instantiation from the pooled, pre-linked instance and an empty call: the floor of any job.
    g.bench_function("wasm-instantiate-empty-batch", |b| b.iter(|| black_box(mc.run(&[], LIMITS).unwrap())));
    // The opt-in slot reset that rewrites only dirtied pages (falls back where refused).
    let fast_reset =
        WasmEngine::new(WasmConfig { pagemap_reset: true, cache_dir: None, ..WasmConfig::default() }).unwrap();
    let mc_fast = staged_guest(&fast_reset, "mc-option");
    g.bench_function("wasm-1-path-pagemap-reset", |b| b.iter(|| black_box(mc_fast.run(&one, LIMITS).unwrap())));
    g.bench_function("wasm-instantiate-empty-batch-pagemap-reset", |b| {
        b.iter(|| black_box(mc_fast.run(&[], LIMITS).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("batch-32");
    g.throughput(Throughput::Elements(32));
    let jobs: Vec<GuestJob> =
        (0..32).map(|i| GuestJob { seed: 3, units: Some(1024), params: small_option(80.0 + i as f64) }).collect();
    g.bench_function(BenchmarkId::new("wasm", "32-single-runs"), |b| {
        b.iter(|| {
            for j in &jobs {
                black_box(mc.run(std::slice::from_ref(j), LIMITS).unwrap());
            }
        })
    });
    g.bench_function(BenchmarkId::new("wasm", "one-batch"), |b| b.iter(|| black_box(mc.run(&jobs, LIMITS).unwrap())));
    g.finish();
}

criterion_group!(benches, native_vs_wasm, per_job_overhead);
criterion_main!(benches);
