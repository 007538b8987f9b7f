//! The periodic one-line summary: what the last interval looked like (jobs/s by strategy, p99,
//! drops) and the CPU pressure now. Its `Totals` are also what `/v1/status` differences.

use crate::outcome::Status;
use crate::policy::{Reason, Strategy};
use crate::router::{Router, Snapshot};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Counts since start, to difference between ticks.
pub(super) struct Totals {
    pub(super) at: Instant,
    pub(super) by_strategy: [u64; Strategy::ALL.len()],
    pub(super) by_status: [u64; Status::ALL.len()],
    /// Decided outcomes by the decision's reason (rejections have none).
    pub(super) by_reason: [u64; Reason::ALL.len()],
    /// Outcomes by kernel name and runtime, across versions.
    pub(super) by_kernel: BTreeMap<(String, &'static str), u64>,
    /// End-to-end latency, microseconds.
    pub(super) latency: Histogram<u64>,
    /// End-to-end time of answered jobs over their budget, thousandths.
    pub(super) budget_used: Histogram<u64>,
}

impl Totals {
    pub(super) fn now(router: &Router) -> Totals {
        Totals::of(router, &router.snapshot())
    }

    /// The counts of `snap`, a snapshot of `router` just taken, with its histograms.
    pub(super) fn of(router: &Router, snap: &Snapshot) -> Totals {
        let m = router.metrics();
        let mut t = Totals {
            at: Instant::now(),
            by_strategy: [0; Strategy::ALL.len()],
            by_status: [0; Status::ALL.len()],
            by_reason: Reason::ALL.map(|r| Strategy::ALL.iter().map(|s| m.decisions(*s, r)).sum()),
            by_kernel: BTreeMap::new(),
            latency: m.total.merged(),
            budget_used: m.budget_used.merged(),
        };
        for k in &snap.kernels {
            let mut outcomes = 0;
            for c in &k.counts {
                outcomes += c.count;
                if let Some(s) = Strategy::ALL.iter().position(|s| s.as_str() == c.strategy) {
                    t.by_strategy[s] += c.count;
                }
                if let Some(s) = Status::ALL.iter().position(|s| s.as_str() == c.status) {
                    t.by_status[s] += c.count;
                }
            }
            t.by_kernel.insert((k.kernel.clone(), k.runtime), outcomes);
        }
        t.by_status[Status::Rejected.index()] += snap.unknown_kernel;
        t
    }

    /// The counts a server has when it starts, `at`: none (shaped like `self`'s histograms).
    pub(super) fn zero_at(&self, at: Instant) -> Totals {
        Totals {
            at,
            by_strategy: [0; Strategy::ALL.len()],
            by_status: [0; Status::ALL.len()],
            by_reason: [0; Reason::ALL.len()],
            by_kernel: BTreeMap::new(),
            latency: Histogram::new_from(&self.latency),
            budget_used: Histogram::new_from(&self.budget_used),
        }
    }
}

/// The summary of the interval from `before` to `after`.
fn line(before: &Totals, after: &Totals, router: &Router) -> String {
    let secs = (after.at - before.at).as_secs_f64().max(1e-9);
    let jobs: u64 = after.by_status.iter().zip(&before.by_status).map(|(a, b)| a - b).sum();
    let strategies: Vec<String> = Strategy::ALL
        .iter()
        .filter(|s| **s != Strategy::Drop)
        .filter_map(|s| {
            let n = after.by_strategy[s.index()] - before.by_strategy[s.index()];
            (n > 0).then(|| format!("{} {:.1}", s.as_str(), n as f64 / secs))
        })
        .collect();
    let mut interval = after.latency.clone();
    let p99_ms = match interval.subtract(&before.latency) {
        Ok(()) if !interval.is_empty() => format!("{:.2} ms", interval.value_at_quantile(0.99) as f64 / 1e3),
        _ => "-".into(),
    };
    let delta = |s: Status| after.by_status[s.index()] - before.by_status[s.index()];
    let p = router.pressure();
    format!(
        "{:.1} jobs/s ({}); p99 {p99_ms}; dropped {}, degraded {}, rejected {}, failed {}; permits {}/{} busy, queue {}/{}",
        jobs as f64 / secs,
        if strategies.is_empty() { "idle".to_string() } else { strategies.join(", ") },
        delta(Status::Dropped),
        delta(Status::Degraded),
        delta(Status::Rejected),
        delta(Status::Failed),
        p.permits_in_use,
        p.permits,
        p.queue_depth,
        p.queue_capacity,
    )
}

/// Logs a summary every `every` until the router is dropped.
pub async fn run(router: std::sync::Weak<Router>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Some(mut before) = router.upgrade().map(|r| Totals::now(&r)) else { return };
    loop {
        tick.tick().await;
        let Some(router) = router.upgrade() else { return };
        let after = Totals::now(&router);
        tracing::info!(target: "helix::summary", "{}", line(&before, &after, &router));
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterConfig;

    #[tokio::test]
    async fn an_interval_reports_its_own_jobs_only() {
        let router = Router::new(RouterConfig::default());
        let mut before = Totals::now(&router);
        before.by_status[Status::Completed.index()] = 0;
        let mut after = Totals::now(&router);
        after.at = before.at + Duration::from_secs(2);
        after.by_strategy[Strategy::CpuLane.index()] = 10;
        after.by_status[Status::Completed.index()] = 10;
        after.by_status[Status::Dropped.index()] = 4;
        after.by_strategy[Strategy::Drop.index()] = 4;
        for us in [1_000, 2_000, 30_000] {
            after.latency.record(us).unwrap();
        }
        let text = line(&before, &after, &router);
        assert!(text.starts_with("7.0 jobs/s (cpu_lane 5.0); p99 30."), "{text}");
        assert!(text.contains("dropped 4, degraded 0"), "{text}");
    }
}
