//! Capacity signals for autoscalers: the share of decided jobs this replica shed for its load
//! over the last window (`capacity_window_s`, 10 s by default), refreshed at its end. Shed for load means dropped because the
//! lane was too busy (`sheds_for_load`): more replicas would have answered those jobs. Drops
//! that no replica could avoid (a budget too small for any server, a quarantined kernel, a
//! caller gone) are not counted.

use crate::policy::{Reason, Strategy};
use crate::router::Router;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The share of the last window's decided jobs that were shed for load (f64 bits).
#[derive(Debug, Default)]
pub struct ShedShare(AtomicU64);

impl ShedShare {
    /// The share in the last complete window (0 before the first, and in a window with no jobs).
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

/// Decisions since start, and how many of them shed a job for load.
fn counts(router: &Router) -> (u64, u64) {
    let m = router.metrics();
    let mut decided = 0;
    let mut shed = 0;
    for s in Strategy::ALL {
        for r in Reason::ALL {
            let n = m.decisions(s, r);
            decided += n;
            if s == Strategy::Drop && r.sheds_for_load() {
                shed += n;
            }
        }
    }
    (decided, shed)
}

/// The share shed between two counts.
fn share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let decided = after.0.saturating_sub(before.0);
    if decided == 0 { 0.0 } else { after.1.saturating_sub(before.1) as f64 / decided as f64 }
}

/// Refreshes `out` every `every` until the router is dropped.
pub async fn run(router: Weak<Router>, out: std::sync::Arc<ShedShare>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Some(mut before) = router.upgrade().map(|r| counts(&r)) else { return };
    loop {
        tick.tick().await;
        let Some(router) = router.upgrade() else { return };
        let after = counts(&router);
        out.0.store(share(before, after).to_bits(), Relaxed);
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_windows_own() {
        assert_eq!(share((100, 10), (300, 60)), 0.25);
        assert_eq!(share((100, 10), (100, 10)), 0.0);
        // Only drops for load count; a budget too small for any server is the job's fault.
        assert!(Reason::ShedUnderPressure.sheds_for_load() && Reason::QueueFull.sheds_for_load());
        assert!(!Reason::NeverFits.sheds_for_load() && !Reason::Quarantined.sheds_for_load());
        assert!(!Reason::Cancelled.sheds_for_load() && !Reason::FitsBudget.sheds_for_load());
    }
}
