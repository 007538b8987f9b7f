//! Router overhead, measured against its baseline in the same run:
//! - decision + Inline vs calling the kernel directly (a 64-cost HashMix, ~0.2 us of work);
//! - a CPU-lane hand-off vs a bare `spawn_blocking` of the same kernel.
//!
//! Criterion reports the means; every iteration is also recorded in an HdrHistogram and the
//! p50/p99 of each pair, and what the router adds, are printed at the end.

use criterion::{Criterion, criterion_group};
use hdrhistogram::Histogram;
use helix_host::{Job, Router, RouterConfig};
use helix_math::{Params, Value, classic};
use std::cell::RefCell;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

thread_local! {
    static HISTS: RefCell<Vec<(String, Histogram<u64>)>> = const { RefCell::new(Vec::new()) };
}

fn record(name: &str, ns: u64) {
    HISTS.with(|h| {
        let mut h = h.borrow_mut();
        if !h.iter().any(|(n, _)| n == name) {
            h.push((name.to_string(), Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()));
        }
        h.iter_mut().find(|(n, _)| n == name).unwrap().1.saturating_record(ns);
    });
}

fn router(cfg: RouterConfig) -> Router {
    Router::from_dir(cfg, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")).unwrap()
}

fn hash_job(i: u64) -> Job {
    let params =
        Params::new().with("inputs", Value::Array(vec![1.0, 2.0, 3.0])).with("compute_cost", Value::Number(64.0));
    Job::new(i, "hashmix", params, Duration::from_millis(100))
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let inline = rt.block_on(async { router(RouterConfig::default()) });
    let mut lane_cfg = RouterConfig::default();
    lane_cfg.policy.inline_max_us = 0.0;
    lane_cfg.policy.spawn_max_us = 0.0;
    let lane = rt.block_on(async { router(lane_cfg) });

    let mut g = c.benchmark_group("inline");
    g.bench_function("direct-kernel", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                black_box(classic::hashmix(black_box(&[1, 2, 3]), black_box(64)).unwrap());
                let e = t.elapsed();
                record("inline/direct-kernel", e.as_nanos() as u64);
                total += e;
            }
            total
        })
    });
    g.bench_function("router-decide-inline", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let job = hash_job(i);
                    let t = Instant::now();
                    black_box(inline.submit(job).await);
                    let e = t.elapsed();
                    record("inline/router-decide-inline", e.as_nanos() as u64);
                    total += e;
                }
                total
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cpu-lane");
    g.bench_function("bare-spawn-blocking", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    black_box(tokio::task::spawn_blocking(|| classic::hashmix(&[1, 2, 3], 64).unwrap()).await.unwrap());
                    let e = t.elapsed();
                    record("cpu-lane/bare-spawn-blocking", e.as_nanos() as u64);
                    total += e;
                }
                total
            })
        })
    });
    g.bench_function("router-cpu-lane", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let job = hash_job(i);
                    let t = Instant::now();
                    black_box(lane.submit(job).await);
                    let e = t.elapsed();
                    record("cpu-lane/router-cpu-lane", e.as_nanos() as u64);
                    total += e;
                }
                total
            })
        })
    });
    g.finish();
}

fn report() {
    HISTS.with(|h| {
        let h = h.borrow();
        let get = |n: &str| h.iter().find(|(name, _)| name == n).map(|(_, h)| h);
        println!("\nrouter overhead (ns): p50 / p99, and what the router adds at each");
        for (base, routed) in [
            ("inline/direct-kernel", "inline/router-decide-inline"),
            ("cpu-lane/bare-spawn-blocking", "cpu-lane/router-cpu-lane"),
        ] {
            if let (Some(b), Some(r)) = (get(base), get(routed)) {
                let (b50, b99, r50, r99) = (
                    b.value_at_quantile(0.5),
                    b.value_at_quantile(0.99),
                    r.value_at_quantile(0.5),
                    r.value_at_quantile(0.99),
                );
                println!("{base:<30} {b50:>8} / {b99:>8}");
                println!(
                    "{routed:<30} {r50:>8} / {r99:>8}   added: {:>7} / {:>7}",
                    r50 as i64 - b50 as i64,
                    r99 as i64 - b99 as i64
                );
            }
        }
    });
}

criterion_group!(benches, overhead);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}
