//! The soak, short enough for every test run: the real `helix serve` binary, honest traffic
//! past capacity alone and then under attack (hostile Wasm kernels, bad requests, kernel
//! re-registrations). Every correctness check must pass; the goodput comparison is printed,
//! not asserted (a timing, on a shared machine). `helix soak` runs the long version.
//!
//! The Wasm kernels and hostile guests are built by `cargo xtask test`.

use helix_host::soak;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_attack_loses_nothing_and_stays_bounded() {
    let cfg = support::short_soak(7, None);
    let report = soak::run(cfg).await.expect("the soak runs");
    println!("{}", report.render_text());
    for c in report.checks.iter().filter(|c| !c.performance) {
        assert!(c.passed, "{}: {}", c.name, c.detail);
    }
    // The attack happened: every kind of fault was sent, kernels were swapped, and kernels that
    // fail every run were quarantined (how many depends on how many ran rather than being shed).
    let t = &report.traffic;
    assert_eq!(t.faults.len(), 13, "{:?}", t.faults.keys());
    assert!(t.swaps.honest_swaps >= 5 && t.swaps.refused_as_expected >= 1, "{:?}", t.swaps);
    assert!(report.quarantines.values().sum::<u64>() > 0, "{:?}", report.quarantines);
}
