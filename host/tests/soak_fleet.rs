//! The short soak aimed at a fleet: two `helix serve` replicas behind a real nginx, sharing one
//! manifests folder, under the same honest traffic past capacity and the same attack as
//! `soak.rs`, sent through the balancer. Every correctness check must hold across the fleet:
//! the replicas' counters summed balance against what the client was answered once the
//! refusals nginx sent on to the other replica (read from its access log) are counted, each
//! replica's memory and queue stay bounded, none panics, both drain cleanly. A separate test
//! binary, so it never runs beside the single-server soak.
//!
//! The Wasm kernels and hostile guests are built, and nginx installed, by `cargo xtask test`.

use helix_host::soak::{self, Balanced};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_of_a_fleet_through_nginx_loses_nothing_and_balances() {
    let cfg = support::short_soak(11, Some(Balanced { replicas: 2, nginx: support::nginx() }));
    let report = soak::run(cfg).await.expect("the soak runs");
    println!("{}", report.render_text());
    for c in report.checks.iter().filter(|c| !c.performance) {
        assert!(c.passed, "{}: {}", c.name, c.detail);
    }
    // Both replicas took jobs, each was checked on its own, and past capacity the balancer sent
    // refused jobs on (the counter balance above is what makes that number exact).
    assert_eq!(report.jobs_by_replica.len(), 2);
    assert!(report.jobs_by_replica.iter().all(|&n| n > 100), "{:?}", report.jobs_by_replica);
    assert_eq!((report.rss_mib.len(), report.queue.len(), report.logs.len()), (2, 2, 2));
    assert!(report.retried_refusals.is_some_and(|n| n > 0), "{:?}", report.retried_refusals);
    let t = &report.traffic;
    assert_eq!(t.stalls.opened, 64, "{:?}", t.stalls);
    assert!(t.swaps.honest_swaps >= 5 && t.swaps.refused_as_expected >= 1, "{:?}", t.swaps);
}
