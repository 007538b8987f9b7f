//! The way back. A job's answer still has to reach its client after the router is done, and
//! on a busy machine that trip is not free: the reply is written, read and woken up for by the
//! same scarce cores. A request stamped with `X-Request-Start` says how long the way in took;
//! the way back crosses the same network and the same schedulers, so the server keeps a running
//! high quantile of the way in and plans every stamped job to finish that much before its
//! deadline. Unstamped requests measure nothing and reserve nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The quantile of the way in kept as the reserve for the way back.
const QUANTILE: f64 = 0.99;

/// The estimate moves by this share of itself per request (plus `FLOOR_STEP_US`): a rise of
/// the trip time shows within some tens of requests, and a fall within a few thousand.
const STEP_SHARE: f64 = 0.05;
const FLOOR_STEP_US: f64 = 5.0;

/// The reserve never takes more than this share of the budget a job has left: past that the
/// trip, not the router, decides whether the job is on time, and dropping it helps nobody.
const MAX_SHARE_OF_BUDGET: f64 = 0.5;

/// A running estimate of the `QUANTILE` of the way in, microseconds, as `f64` bits (a frugal
/// streaming quantile: up by `(QUANTILE) · step` when a trip is longer, down by
/// `(1 − QUANTILE) · step` when shorter, so it settles where a `1 − QUANTILE` share is longer).
/// One atomic, updated without a lock.
#[derive(Debug, Default)]
pub struct Transit {
    estimate_us: AtomicU64,
}

impl Transit {
    /// Counts one request whose way in took `spent`, and returns what its job keeps of
    /// `budget_left` (the budget after `spent`) once the way back is reserved, and the reserve.
    pub fn reserve(&self, spent: Duration, budget_left: Duration) -> (Duration, Duration) {
        let trip = spent.as_secs_f64() * 1e6;
        let next = |q: f64| {
            let step = STEP_SHARE * q + FLOOR_STEP_US;
            if trip > q { q + QUANTILE * step } else { (q - (1.0 - QUANTILE) * step).max(0.0) }
        };
        let moved = |bits: u64| Some(next(f64::from_bits(bits)).to_bits());
        let before = self.estimate_us.try_update(Relaxed, Relaxed, moved).unwrap_or_else(|bits| bits);
        let q = next(f64::from_bits(before));
        let reserve = Duration::from_secs_f64(q / 1e6).min(budget_left.mul_f64(MAX_SHARE_OF_BUDGET));
        (budget_left.saturating_sub(reserve), reserve)
    }

    /// The reserve in force now (before the budget cap), seconds.
    pub fn estimate_s(&self) -> f64 {
        f64::from_bits(self.estimate_us.load(Relaxed)) / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    /// Trips drawn uniformly from `[0, top)` microseconds: the estimate settles near the
    /// 99th percentile, `0.99 · top`.
    fn settle(t: &Transit, top: f64, n: usize, rng: &mut ChaCha8Rng) {
        for _ in 0..n {
            let trip = top * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            t.reserve(Duration::from_secs_f64(trip / 1e6), Duration::from_secs(1));
        }
    }

    #[test]
    fn the_reserve_follows_the_high_quantile_of_the_way_in_up_and_down() {
        let t = Transit::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        settle(&t, 1_000.0, 20_000, &mut rng);
        let q = t.estimate_s() * 1e6;
        assert!((900.0..=1_060.0).contains(&q), "settled at {q} us, the p99 is 990");
        // The trip gets ten times longer: the estimate follows within a few hundred requests.
        settle(&t, 10_000.0, 500, &mut rng);
        let q = t.estimate_s() * 1e6;
        assert!(q >= 8_000.0, "after the rise: {q} us");
        // And back: it comes down again.
        settle(&t, 1_000.0, 20_000, &mut rng);
        let q = t.estimate_s() * 1e6;
        assert!(q <= 1_200.0, "after the fall: {q} us");
    }

    #[test]
    fn the_reserve_comes_off_the_budget_and_never_takes_more_than_half_of_it() {
        let t = Transit::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        settle(&t, 2_000.0, 20_000, &mut rng);
        let (kept, reserve) = t.reserve(Duration::from_micros(100), Duration::from_millis(20));
        assert!(reserve >= Duration::from_micros(1_700) && reserve <= Duration::from_micros(2_200), "{reserve:?}");
        assert_eq!(kept + reserve, Duration::from_millis(20));
        let (kept, reserve) = t.reserve(Duration::from_micros(100), Duration::from_millis(2));
        assert_eq!((kept, reserve), (Duration::from_millis(1), Duration::from_millis(1)));
    }

    #[test]
    fn with_no_trip_measured_nothing_is_reserved() {
        let t = Transit::default();
        let (kept, reserve) = t.reserve(Duration::ZERO, Duration::from_millis(10));
        assert_eq!((kept, reserve), (Duration::from_millis(10), Duration::ZERO));
    }
}
