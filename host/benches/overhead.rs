//! Router overhead, measured against its baseline in the same run:
//! - decision + Inline vs calling the kernel directly (a 64-cost HashMix, ~0.2 us of work);
//! - a CPU-lane hand-off vs a bare `spawn_blocking` of the same kernel;
//! - deadline admission's decision (admission against the manifest, the job placed in the
//!   lane's queue, the acceptance test, the ration, the drop's outcome) vs the direct kernel
//!   call, on an option job too big for its budget, so it is answered at once: the whole cost
//!   of deciding a heavy job, with no kernel run.
//!
//! Criterion reports the means; a paired run at the end prints p50/p99 of each pair and what
//! the router adds.

use criterion::{Criterion, criterion_group};
use hdrhistogram::Histogram;
use helix_host::{Job, Reason, Router, RouterConfig};
use helix_math::{Params, Value, classic};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn router(cfg: RouterConfig) -> Router {
    Router::from_dir(cfg, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")).unwrap()
}

fn hash_job(i: u64) -> Job {
    let params =
        Params::new().with("inputs", Value::Array(vec![1.0, 2.0, 3.0])).with("compute_cost", Value::Number(64.0));
    Job::new(i, "hashmix", params, Duration::from_millis(100))
}

/// A job too big for its budget even at its degrade floor.
fn hopeless_job(i: u64) -> Job {
    let params = Params::new()
        .with("style", Value::Text("european".into()))
        .with("spot", Value::Number(100.0))
        .with("strike", Value::Number(100.0))
        .with("vol", Value::Number(0.2))
        .with("maturity", Value::Number(1.0))
        .with("paths", Value::Number(1e8));
    Job::new(i, "mc-option", params, Duration::from_millis(1))
}

/// A runtime, a router that runs cheap jobs inline, and one that sends everything to the CPU lane.
fn setup() -> (tokio::runtime::Runtime, Router, Router) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let inline = rt.block_on(async { router(RouterConfig::default()) });
    let mut lane_cfg = RouterConfig::default();
    lane_cfg.policy.inline_max_us = 0.0;
    lane_cfg.policy.spawn_max_us = 0.0;
    let lane = rt.block_on(async { router(lane_cfg) });
    (rt, inline, lane)
}

fn overhead(c: &mut Criterion) {
    let (rt, inline, lane) = setup();

    let mut g = c.benchmark_group("inline");
    g.bench_function("direct-kernel", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                black_box(classic::hashmix(black_box(&[1, 2, 3]), black_box(64)).unwrap());
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("router-decide-inline", |b| b.iter_custom(|iters| submit_all(&rt, &inline, iters)));
    g.finish();

    let mut g = c.benchmark_group("cpu-lane");
    g.bench_function("bare-spawn-blocking", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    black_box(tokio::task::spawn_blocking(|| classic::hashmix(&[1, 2, 3], 64).unwrap()).await.unwrap());
                    total += t.elapsed();
                }
                total
            })
        })
    });
    g.bench_function("router-cpu-lane", |b| b.iter_custom(|iters| submit_all(&rt, &lane, iters)));
    g.finish();
}

/// Time spent in `iters` submissions of a cheap job (job construction excluded).
fn submit_all(rt: &tokio::runtime::Runtime, router: &Router, iters: u64) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for i in 0..iters {
            let job = hash_job(i);
            let t = Instant::now();
            black_box(router.submit(job).await);
            total += t.elapsed();
        }
        total
    })
}

/// Paired sampling: each round times the baseline and the router back to back, alternating
/// which goes first, so both see the same machine noise; p50 and p99 come from the pairs.
fn paired_report() {
    let (rt, inline, lane) = setup();
    let hist = || Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let (mut direct, mut routed_inline, mut bare, mut routed_lane) = (hist(), hist(), hist(), hist());
    let (mut direct_again, mut placed) = (hist(), hist());
    // The baseline of the first and the last pair: the kernel called directly, nanoseconds.
    let time_direct = || {
        let t = Instant::now();
        black_box(classic::hashmix(black_box(&[1, 2, 3]), black_box(64)).unwrap());
        t.elapsed().as_nanos() as u64
    };
    rt.block_on(async {
        for i in 0..200_000u64 {
            let job = hash_job(i);
            direct.saturating_record(time_direct());
            let t = Instant::now();
            black_box(inline.submit(job).await);
            routed_inline.saturating_record(t.elapsed().as_nanos() as u64);
        }
        for i in 0..20_000u64 {
            let job = hash_job(i);
            let time_bare = || async {
                let t = Instant::now();
                black_box(tokio::task::spawn_blocking(|| classic::hashmix(&[1, 2, 3], 64).unwrap()).await.unwrap());
                t.elapsed().as_nanos() as u64
            };
            let time_lane = |job| async {
                let t = Instant::now();
                black_box(lane.submit(job).await);
                t.elapsed().as_nanos() as u64
            };
            if i % 2 == 0 {
                bare.saturating_record(time_bare().await);
                routed_lane.saturating_record(time_lane(job).await);
            } else {
                routed_lane.saturating_record(time_lane(job).await);
                bare.saturating_record(time_bare().await);
            }
        }
        // An option on 10^8 paths with 1 ms of budget cannot fit even at its floor: deadline
        // admission places it, and the acceptance test refuses it.
        for i in 0..200_000u64 {
            let job = hopeless_job(i);
            direct_again.saturating_record(time_direct());
            let t = Instant::now();
            let o = lane.submit(job).await;
            placed.saturating_record(t.elapsed().as_nanos() as u64);
            let reason = o.decision.map(|d| d.reason);
            assert_eq!(reason, Some(Reason::BudgetUnreachable), "the pair must time the acceptance test");
        }
    });
    println!("\nrouter overhead, paired samples (ns): p50 / p99, and what the router adds");
    for (base_name, base, routed_name, routed) in [
        ("direct kernel call", &direct, "router: decide + inline", &routed_inline),
        ("bare spawn_blocking", &bare, "router: CPU-lane hand-off", &routed_lane),
        ("direct kernel call", &direct_again, "router: deadline decision", &placed),
    ] {
        let (b50, b99) = (base.value_at_quantile(0.5), base.value_at_quantile(0.99));
        let (r50, r99) = (routed.value_at_quantile(0.5), routed.value_at_quantile(0.99));
        println!("{base_name:<28} {b50:>8} / {b99:>8}");
        println!(
            "{routed_name:<28} {r50:>8} / {r99:>8}   added: {:>7} / {:>7}",
            r50 as i64 - b50 as i64,
            r99 as i64 - b99 as i64
        );
    }
}

criterion_group!(benches, overhead);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    paired_report();
}
