//! The CPU lane's worker threads: one per permit while the router lives, serving jobs as they
//! come, and gone once it is dropped. In a file of its own, so no other test's router owns
//! threads of the same name in this process.

use helix_host::{Job, RouterConfig, Status};
use helix_math::{Params, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::bundled_router;

/// Threads of this process whose name starts with `helix-lane-` (Linux names them in
/// `/proc/self/task/*/comm`).
fn lane_workers() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task lists this process's threads");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("helix-lane-"))
        .count()
}

fn waits_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "{what} within 10 s: {} lane workers", lane_workers());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn option_job(id: u64, paths: u64) -> Job {
    let params = Params::new()
        .with("style", Value::Text("european".into()))
        .with("spot", Value::Number(100.0))
        .with("strike", Value::Number(100.0 + id as f64))
        .with("vol", Value::Number(0.2))
        .with("maturity", Value::Number(1.0))
        .with("paths", Value::Number(paths as f64));
    let mut job = Job::new(id, "mc-option", params, Duration::from_secs(10));
    job.seed = Some(id);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_has_one_worker_per_permit_and_they_exit_with_the_router() {
    assert_eq!(lane_workers(), 0);
    let cfg = RouterConfig { cpu_permits: 3, batching: false, ..RouterConfig::default() };
    let router = Arc::new(bundled_router(cfg));
    waits_for("three workers start", || lane_workers() == 3);
    // Bursts on an idle lane, then a backlog: every arrival is served, whichever worker waits.
    for round in 0..3u64 {
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..12 {
            let (router, job) = (router.clone(), option_job(round * 100 + i, 200_000 + 50_000 * (i % 3)));
            jobs.spawn(async move { router.submit(job).await });
        }
        while let Some(o) = jobs.join_next().await {
            let o = o.expect("the submit task ends");
            assert_eq!(o.status, Status::Completed, "{o:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lane_workers(), 3, "no worker started or lost on the way");
    drop(Arc::into_inner(router).expect("the last handle on the router"));
    waits_for("the workers exit", || lane_workers() == 0);
}
