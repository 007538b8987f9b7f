//! The router end to end, in process: strategies give bit-identical answers, degraded answers are
//! prefixes, the CPU lane holds its permits, heavy work stays off async threads, and every
//! submitted job gets exactly one outcome.

use helix_host::Strategy;
use helix_host::{ClassicJob, Criticality, Job, Outcome, RouterConfig, Status};
use helix_math::{KernelKind, Params, Prepared, Value};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::bundled_router;

fn option_params(strike: f64, paths: u64) -> Params {
    Params::new()
        .with("style", Value::Text("asian".into()))
        .with("spot", Value::Number(100.0))
        .with("strike", Value::Number(strike))
        .with("vol", Value::Number(0.25))
        .with("maturity", Value::Number(1.0))
        .with("steps", Value::Number(12.0))
        .with("paths", Value::Number(paths as f64))
}

fn job(id: u64, kernel: &str, params: Params, budget_ms: u64) -> Job {
    let mut j = Job::new(id, kernel, params, Duration::from_millis(budget_ms));
    j.seed = Some(42);
    j
}

/// Strategy-forcing configurations.
fn only(strategy: Strategy) -> RouterConfig {
    let mut c = RouterConfig { cpu_permits: 2, batching: false, ..RouterConfig::default() };
    c.policy.split_min_us = f64::INFINITY;
    c.policy.inline_max_us = 0.0;
    c.policy.spawn_max_us = 0.0;
    match strategy {
        Strategy::Inline => c.policy.inline_max_us = f64::INFINITY,
        Strategy::Spawn => c.policy.spawn_max_us = f64::INFINITY,
        Strategy::Split => {
            c.cpu_permits = 4;
            c.policy.split_min_us = 0.0;
        }
        Strategy::Batch => {
            c.batching = true;
            c.policy.batch_when_idle = true;
        }
        _ => {}
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_gives_the_same_bits() {
    let reference = Prepared::parse(KernelKind::McOption, option_params(105.0, 20_000)).unwrap();
    let expected = reference.prepared.run(42, reference.units).unwrap().remove(0);
    for strategy in [Strategy::Inline, Strategy::Spawn, Strategy::CpuLane, Strategy::Split, Strategy::Batch] {
        let r = bundled_router(only(strategy));
        let o = if strategy == Strategy::Batch {
            // A partner on the same underlying shares the paths.
            let (a, b) = tokio::join!(
                r.submit(job(1, "mc-option", option_params(105.0, 20_000), 5_000)),
                r.submit(job(2, "mc-option", option_params(95.0, 20_000), 5_000))
            );
            assert_eq!(b.status, Status::Completed);
            a
        } else {
            r.submit(job(1, "mc-option", option_params(105.0, 20_000), 5_000)).await
        };
        assert_eq!(o.status, Status::Completed, "{strategy:?}: {:?}", o.error);
        assert_eq!(o.decision.unwrap().strategy, strategy);
        if strategy == Strategy::Split {
            assert!(o.decision.unwrap().chunks > 1);
        }
        for (name, e) in &expected.estimates {
            assert_eq!(o.estimate(name), Some(*e), "{strategy:?} {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_job_equals_the_full_job_cut_to_its_units() {
    let r = bundled_router(RouterConfig { cpu_permits: 1, ..RouterConfig::default() });
    let params = || {
        Params::new()
            .with("positions", Value::Array(vec![1e6, -4e5, 2.5e6]))
            .with("vols", Value::Array(vec![0.2, 0.35, 0.25]))
            .with("correlation", Value::Array(vec![1.0, 0.2, 0.1, 0.2, 1.0, 0.3, 0.1, 0.3, 1.0]))
            .with("paths", Value::Number(5e6))
    };
    let o = r.submit(job(9, "mc-var", params(), 30)).await;
    assert_eq!(o.status, Status::Degraded, "{:?}", o.decision);
    let d = o.decision.unwrap();
    assert!(d.units_granted < d.units_requested && d.error_factor > 1.0);
    let parsed = Prepared::parse(KernelKind::McVar, params()).unwrap();
    let prefix = parsed.prepared.run(42, d.units_granted).unwrap().remove(0);
    for (name, e) in &prefix.estimates {
        assert_eq!(o.estimate(name), Some(*e), "{name}");
    }
    // The full run's error bar is narrower: a degraded job reports honestly wider error.
    let full = parsed.prepared.run(42, parsed.units).unwrap().remove(0);
    assert!(o.estimate("var").unwrap().std_error.unwrap() > full.estimate("var").unwrap().std_error.unwrap());
}

fn random_job(i: u64) -> Job {
    let mut rng = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        rng ^= rng >> 29;
        rng = rng.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        rng >> 11
    };
    let budget = [1, 5, 20, 100][next() as usize % 4];
    let mut j = match next() % 7 {
        0 => job(i, "mc-option", option_params(80.0 + (next() % 40) as f64, 1 + next() % 200_000), budget),
        1 => Job::new(
            i,
            "hashmix",
            Params::new()
                .with("inputs", Value::Array(vec![i as f64]))
                .with("compute_cost", Value::Number((next() % 100_000) as f64)),
            Duration::from_millis(budget),
        ),
        2 => Job::new(
            i,
            "primecount",
            Params::new().with("compute_cost", Value::Number((next() % 300_000) as f64)),
            Duration::from_millis(budget),
        ),
        3 => Job::new(i, "mc-option", Params::new().with("spot", Value::Number(-1.0)), Duration::from_millis(budget)),
        4 => Job::new(i, "no-such-kernel", Params::new(), Duration::from_millis(budget)),
        5 => ClassicJob {
            id: i,
            kind: helix_host::ClassicKind::MonteCarloRisk,
            inputs: vec![i, i + 1, i + 2],
            compute_cost: next() % 20_000_000,
            scaling_potential: 0.9,
            latency_budget_ms: budget,
        }
        .into(),
        _ => Job::new(
            i,
            "particle-filter",
            Params::new()
                .with("a", Value::Number(0.9))
                .with("q", Value::Number(1.0))
                .with("r", Value::Number(0.5))
                .with("observations", Value::Array((0..50).map(|t| (t as f64 * 0.2).sin()).collect()))
                .with("particles", Value::Number((1 + next() % 20_000) as f64)),
            Duration::from_millis(budget),
        ),
    };
    if next() % 3 == 0 {
        j.criticality = Criticality::Sheddable;
    }
    j
}

/// A random mixed load: the lane never runs more kernels than permits, no heavy kernel runs on
/// an async worker, every job gets an outcome and the counters balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_mixed_load_balances_and_respects_the_lane() {
    let r = Arc::new(bundled_router(RouterConfig { cpu_permits: 2, queue_capacity: 32, ..RouterConfig::default() }));
    let n = 600u64;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(i * 300)).await;
                r.submit(random_job(i)).await
            })
        })
        .collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for h in handles {
        outcomes.push(tokio::time::timeout(Duration::from_secs(60), h).await.expect("every job ends").unwrap());
    }
    let snap = r.snapshot();
    assert_eq!(snap.submitted, n);
    assert_eq!(snap.outcomes(), n, "counters must balance: {snap:#?}");
    for status in Status::ALL {
        let seen = outcomes.iter().filter(|o| o.status == status).count() as u64;
        assert_eq!(snap.count(status), seen, "{status:?}");
    }
    assert!(snap.lane_running_max <= 2, "lane ran {} kernels at once", snap.lane_running_max);
    assert!(snap.lane_running_max >= 1);
    assert_eq!(snap.heavy_on_async, 0);
    assert_eq!(snap.pressure.queue_depth, 0);
    // The mix exercised the policy: several strategies and outcomes appear.
    let strategies: std::collections::HashSet<_> =
        outcomes.iter().filter_map(|o| o.decision.map(|d| d.strategy)).collect();
    assert!(strategies.len() >= 3, "{strategies:?}");
    assert!(outcomes.iter().any(|o| o.status == Status::Rejected));
    for o in &outcomes {
        assert_eq!(o.decision.is_none(), o.status == Status::Rejected, "{o:?}");
        if let Some(d) = o.decision {
            assert!(d.units_granted <= d.units_requested);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_name_the_field_and_rule() {
    let r = bundled_router(RouterConfig::default());
    let bad = [
        (
            "mc-option",
            Params::new()
                .with("spot", Value::Number(100.0))
                .with("vol", Value::Number(0.2))
                .with("maturity", Value::Number(1.0)),
            "strike",
            "required",
        ),
        ("mc-option", option_params(100.0, 1000).set("vol", Value::Number(-0.2)), "vol", "in [0, 5]"),
        ("mc-option", option_params(100.0, 1000).with("colour", Value::Number(1.0)), "colour", "not a parameter"),
        ("mc-option", option_params(100.0, 1000).set("style", Value::Text("bermudan".into())), "style", "one of"),
        (
            "mc-var",
            Params::new()
                .with("positions", Value::Array(vec![1.0, 2.0]))
                .with("vols", Value::Array(vec![0.2, 0.2]))
                .with("correlation", Value::Array(vec![1.0, 1.2, 1.2, 1.0])),
            "correlation",
            "[-1, 1]",
        ),
        (
            "mc-var",
            Params::new()
                .with("positions", Value::Array(vec![1.0, 2.0]))
                .with("vols", Value::Array(vec![0.2, 0.2, 0.3]))
                .with("correlation", Value::Array(vec![1.0, 0.0, 0.0, 1.0])),
            "vols",
            "has 3 values for 2 positions",
        ),
    ];
    for (kernel, params, field, rule) in bad {
        let o = r.submit(Job::new(1, kernel, params, Duration::from_millis(100))).await;
        assert_eq!(o.status, Status::Rejected);
        let e = o.error.expect("an error");
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
        assert!(e.message.contains(rule), "{field}: {}", e.message);
    }
    let o = r.submit(Job::new(1, "nope", Params::new(), Duration::from_millis(100))).await;
    let e = o.error.unwrap();
    assert_eq!((o.status, e.kind), (Status::Rejected, helix_host::ErrorKind::UnknownKernel));
    assert!(!e.message.contains("did you mean"), "{}", e.message);
    // A typo gets the nearest name; a kernel asked for in a runtime it lacks says which it has.
    let o = r.submit(Job::new(1, "mc-opton", Params::new(), Duration::from_millis(100))).await;
    let message = o.error.unwrap().message;
    assert!(message.contains(r#"did you mean "mc-option"?"#), "{message}");
    let mut native_basket = Job::new(1, "basket-option", Params::new(), Duration::from_millis(100));
    native_basket.runtime = Some(helix_host::Runtime::Native);
    let message = r.submit(native_basket).await.error.unwrap().message;
    assert!(message.contains("for runtime native: it runs as wasm"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_failure_fails_only_its_job() {
    let r = bundled_router(RouterConfig::default());
    // Valid input whose covariance is singular: the kernel reports a numeric failure.
    let singular = Params::new().with("returns", Value::Array(vec![0.01; 12])).with("assets", Value::Number(3.0));
    let (bad, good) = tokio::join!(
        r.submit(Job::new(1, "ewma-cov", singular, Duration::from_millis(100))),
        r.submit(job(2, "mc-option", option_params(100.0, 10_000), 1_000))
    );
    assert_eq!(bad.status, Status::Failed);
    assert_eq!(bad.error.unwrap().kind, helix_host::ErrorKind::NumericFailure);
    assert_eq!(good.status, Status::Completed);
}

/// One permit, held by a long job; two queued jobs come out earliest deadline first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_lane_serves_the_earliest_deadline_first() {
    let r = Arc::new(bundled_router(RouterConfig { cpu_permits: 1, batching: false, ..RouterConfig::default() }));
    let submit = |id: u64, paths: u64, budget_ms: u64| {
        let r = r.clone();
        tokio::spawn(async move {
            let o = r.submit(job(id, "mc-option", option_params(100.0, paths), budget_ms)).await;
            (id, o, std::time::Instant::now())
        })
    };
    // Long enough (tens of ms at ~3 ns a path) to still hold the permit when both queue.
    let blocker = submit(1, 20_000_000, 10_000);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = submit(2, 20_000, 9_000);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let early = submit(3, 20_000, 3_000);
    let (b, l, e) = (blocker.await.unwrap(), late.await.unwrap(), early.await.unwrap());
    assert!([&b.1, &l.1, &e.1].iter().all(|o| o.status == Status::Completed));
    assert!(e.2 < l.2, "the earlier deadline finished first");
    assert!(l.1.timings.queue_us > e.1.timings.queue_us);
}

/// A caller that goes away frees its queued job; it still gets counted, as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_queued_job_is_dropped_as_cancelled() {
    let r = Arc::new(bundled_router(RouterConfig { cpu_permits: 1, batching: false, ..RouterConfig::default() }));
    let r2 = r.clone();
    let blocker =
        tokio::spawn(async move { r2.submit(job(1, "mc-option", option_params(100.0, 300_000), 10_000)).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(5),
        r.submit(job(2, "mc-option", option_params(90.0, 20_000), 10_000)),
    )
    .await;
    assert!(abandoned.is_err(), "still queued behind the blocker");
    assert_eq!(blocker.await.unwrap().status, Status::Completed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let snap = r.snapshot();
    assert_eq!(snap.submitted, 2);
    assert_eq!(snap.outcomes(), 2);
    let mc = snap.kernels.iter().find(|k| k.kernel == "mc-option").unwrap();
    assert!(mc.counts.iter().any(|c| c.status == "dropped" && c.strategy == "drop"), "{mc:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_job_streams_run_unchanged() {
    let r = bundled_router(RouterConfig::default());
    let lines = [
        r#"{"id":1,"kind":"HashMix","inputs":[1,2,3],"compute_cost":6400,"scaling_potential":0.1,"latency_budget_ms":50}"#,
        r#"{"id":2,"kind":"PrimeCount","inputs":[],"compute_cost":100000,"scaling_potential":0.2,"latency_budget_ms":50}"#,
        r#"{"id":3,"kind":"MonteCarloRisk","inputs":[5,7],"compute_cost":2000000,"scaling_potential":0.9,"latency_budget_ms":200}"#,
    ];
    for line in lines {
        let classic: ClassicJob = serde_json::from_str(line).unwrap();
        let o = r.submit(classic.into()).await;
        assert_eq!(o.status, Status::Completed, "{line}: {:?}", o.error);
    }
    let primes = r.submit(serde_json::from_str::<ClassicJob>(lines[1]).unwrap().into()).await;
    assert_eq!(primes.estimate("count").unwrap().value, 9592.0);
}

/// A batch waiting for the lane keeps its live members: a member whose caller went away is
/// dropped as cancelled, and its partner still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_batch_drops_only_its_abandoned_members() {
    let mut cfg = RouterConfig { cpu_permits: 1, ..RouterConfig::default() };
    cfg.policy.batch_when_idle = true;
    let r = Arc::new(bundled_router(cfg));
    let r2 = r.clone();
    let blocker_params = Params::new()
        .with("positions", Value::Array(vec![1e6, 2e6]))
        .with("vols", Value::Array(vec![0.2, 0.3]))
        .with("correlation", Value::Array(vec![1.0, 0.2, 0.2, 1.0]))
        .with("paths", Value::Number(2e6));
    let blocker = tokio::spawn(async move { r2.submit(job(1, "mc-var", blocker_params, 20_000)).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let r3 = r.clone();
    let kept = tokio::spawn(async move { r3.submit(job(2, "mc-option", option_params(100.0, 20_000), 20_000)).await });
    let abandoned = tokio::time::timeout(
        Duration::from_millis(5),
        r.submit(job(3, "mc-option", option_params(90.0, 20_000), 20_000)),
    )
    .await;
    assert!(abandoned.is_err(), "still waiting behind the blocker");
    assert_eq!(blocker.await.unwrap().status, Status::Completed);
    let kept = kept.await.unwrap();
    assert_eq!((kept.status, kept.decision.unwrap().strategy), (Status::Completed, Strategy::Batch));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let snap = r.snapshot();
    assert_eq!(snap.outcomes(), 3);
    let mc = snap.kernels.iter().find(|k| k.kernel == "mc-option").unwrap();
    let dropped: u64 = mc.counts.iter().filter(|c| c.status == "dropped").map(|c| c.count).sum();
    assert_eq!(dropped, 1, "{mc:?}");
}

/// Jobs answered by one batch say so, with the batch's size: their service time is the batch's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_members_carry_the_size_of_their_batch() {
    let r = bundled_router(only(Strategy::Batch));
    let (a, b, c) = tokio::join!(
        r.submit(job(1, "mc-option", option_params(105.0, 20_000), 5_000)),
        r.submit(job(2, "mc-option", option_params(95.0, 20_000), 5_000)),
        r.submit(job(3, "mc-option", option_params(100.0, 20_000), 5_000))
    );
    let sizes: Vec<Option<u32>> = [&a, &b, &c].iter().map(|o| o.batch_size.map(|n| n.get())).collect();
    for o in [&a, &b, &c] {
        assert_eq!((o.status, o.decision.unwrap().strategy), (Status::Completed, Strategy::Batch), "{sizes:?}");
        let n = o.batch_size.expect("a batch member").get();
        assert!((2..=3).contains(&n), "{sizes:?}");
        assert_eq!(o.to_json()["batch_size"], n, "{sizes:?}");
    }
    // Members of one batch share its service time; a lone job has no batch size.
    let alone =
        bundled_router(only(Strategy::CpuLane)).submit(job(4, "mc-option", option_params(100.0, 20_000), 5_000)).await;
    assert_eq!((alone.batch_size, alone.to_json().get("batch_size")), (None, None));
}
