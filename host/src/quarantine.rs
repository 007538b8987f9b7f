//! Layer 1: quarantine: a Wasm kernel version whose runs keep ending in sandbox failures (out of
//! fuel, past its wall-clock deadline, over its memory cap, trapped) is refused for a cool-down
//! instead of being run again. Each such run can burn its whole budget of CPU before the sandbox
//! stops it, and under load that CPU is taken from honest work, so a kernel that fails this way
//! `after_failures` times in a row is dropped on arrival (reason `quarantined`) for `cooldown_ms`.
//! When the cool-down ends, one job runs as a probe: an answer reopens the kernel, another sandbox
//! failure quarantines it again for twice as long (up to `max_cooldown_ms`).
//!
//! The state is per kernel version. A new version of a kernel that is quarantined (the team's
//! fix, or another bad release) starts on probation: its first sandbox failure quarantines it,
//! for the cool-down its predecessor had reached; its first answer clears the record.
//! Everything is atomics; a race between concurrent jobs can at worst let one extra probe
//! through or pick a slightly different cool-down, never lose a job.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// When a kernel version is quarantined, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuarantineConfig {
    /// Consecutive sandbox failures that quarantine a kernel version; 0 turns quarantine off.
    pub after_failures: u32,
    /// The first cool-down.
    pub cooldown_ms: u64,
    /// Cool-downs double on each failed probe, up to this.
    pub max_cooldown_ms: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig { after_failures: 3, cooldown_ms: 1000, max_cooldown_ms: 30_000 }
    }
}

/// One kernel version's quarantine state.
#[derive(Debug)]
pub struct Quarantine {
    /// Times are kept as microseconds since this instant, so they fit in atomics.
    epoch: Instant,
    failures: AtomicU32,
    /// Refuse jobs until this time (0: open).
    until_us: AtomicU64,
    /// The next cool-down's length (0: the configured first one).
    next_cooldown_ms: AtomicU64,
    /// A probe job is running after a cool-down.
    probing: AtomicBool,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            until_us: AtomicU64::new(0),
            next_cooldown_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }
}

/// Failures preset on probation: past any threshold, so the first real one trips.
const PROBATION: u32 = u32::MAX / 2;

impl Quarantine {
    /// The state a new version starts with, given the version it replaces.
    pub fn succeeding(previous: Option<&Quarantine>) -> Quarantine {
        let q = Quarantine::default();
        if let Some(p) = previous.filter(|p| p.until_us.load(Relaxed) != 0) {
            q.failures.store(PROBATION, Relaxed);
            q.next_cooldown_ms.store(p.next_cooldown_ms.load(Relaxed), Relaxed);
        }
        q
    }

    fn micros(&self, at: Instant) -> u64 {
        // Never 0, which means "open".
        (at.saturating_duration_since(self.epoch).as_micros() as u64).max(1)
    }

    /// Whether a job arriving `now` may run; if not, how long the quarantine has left. The first
    /// job after a cool-down is let through as the probe, and holds the kernel closed for another
    /// cool-down's length while it runs.
    pub fn admit(&self, now: Instant, cfg: &QuarantineConfig) -> Result<(), Duration> {
        if cfg.after_failures == 0 {
            return Ok(());
        }
        let until = self.until_us.load(Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now_us = self.micros(now);
        if now_us < until {
            return Err(Duration::from_micros(until - now_us));
        }
        let hold = now_us + self.cooldown_ms(cfg) * 1000;
        match self.until_us.compare_exchange(until, hold, Relaxed, Relaxed) {
            Ok(_) => {
                self.probing.store(true, Relaxed);
                Ok(())
            }
            // Another job took the probe (or the kernel reopened) in between.
            Err(0) => Ok(()),
            Err(other) => Err(Duration::from_micros(other.saturating_sub(now_us))),
        }
    }

    /// Records how a run ended: `sandbox_failure` when the sandbox stopped it, false when the
    /// guest answered (even with an error of its own). Returns the cool-down when this run
    /// quarantined the kernel.
    pub fn record(&self, sandbox_failure: bool, now: Instant, cfg: &QuarantineConfig) -> Option<Duration> {
        if cfg.after_failures == 0 {
            return None;
        }
        if !sandbox_failure {
            self.failures.store(0, Relaxed);
            if self.until_us.load(Relaxed) != 0 {
                self.until_us.store(0, Relaxed);
                self.next_cooldown_ms.store(0, Relaxed);
                self.probing.store(false, Relaxed);
            }
            return None;
        }
        let failures = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        let failed_probe = self.probing.swap(false, Relaxed);
        // Jobs already running when the kernel was quarantined fail too; only the first trip
        // and a failed probe start a cool-down, so stragglers do not stretch it.
        let first_trip = self.until_us.load(Relaxed) == 0 && failures >= cfg.after_failures;
        if !(first_trip || failed_probe) {
            return None;
        }
        let cooldown = self.cooldown_ms(cfg);
        self.next_cooldown_ms.store(cooldown.saturating_mul(2).min(cfg.max_cooldown_ms.max(1)), Relaxed);
        self.until_us.store(self.micros(now) + cooldown * 1000, Relaxed);
        Some(Duration::from_millis(cooldown))
    }

    /// Whether jobs arriving `now` are refused.
    pub fn is_closed(&self, now: Instant) -> bool {
        self.time_left(now).is_some()
    }

    /// How long jobs arriving from `now` on are still refused; `None` while the kernel is open
    /// (or its cool-down is over and the next job will be the probe).
    pub fn time_left(&self, now: Instant) -> Option<Duration> {
        let until = self.until_us.load(Relaxed);
        let now_us = self.micros(now);
        (until != 0 && now_us < until).then(|| Duration::from_micros(until - now_us))
    }

    fn cooldown_ms(&self, cfg: &QuarantineConfig) -> u64 {
        match self.next_cooldown_ms.load(Relaxed) {
            0 => cfg.cooldown_ms.clamp(1, cfg.max_cooldown_ms.max(1)),
            c => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: QuarantineConfig = QuarantineConfig { after_failures: 3, cooldown_ms: 100, max_cooldown_ms: 350 };

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn consecutive_sandbox_failures_quarantine_and_an_answer_in_between_resets_the_count() {
        let q = Quarantine::default();
        let t0 = q.epoch + ms(10);
        assert_eq!(q.record(true, t0, &CFG), None);
        assert_eq!(q.record(true, t0, &CFG), None);
        assert_eq!(q.record(false, t0, &CFG), None, "an answer resets the count");
        assert_eq!(q.record(true, t0, &CFG), None);
        assert_eq!(q.record(true, t0, &CFG), None);
        assert!(q.admit(t0, &CFG).is_ok());
        assert_eq!(q.record(true, t0, &CFG), Some(ms(100)), "the third in a row trips it");
        assert_eq!(q.admit(t0 + ms(40), &CFG), Err(ms(60)));
        assert!(q.is_closed(t0 + ms(99)));
        assert_eq!(q.time_left(t0 + ms(30)), Some(ms(70)));
        assert_eq!(q.time_left(t0 + ms(100)), None, "the cool-down is over");
        // A job that was already running fails too: it does not stretch the cool-down.
        assert_eq!(q.record(true, t0 + ms(50), &CFG), None);
        assert_eq!(q.admit(t0 + ms(99), &CFG), Err(ms(1)));
    }

    #[test]
    fn after_the_cool_down_one_probe_runs_and_its_result_decides() {
        let q = Quarantine::default();
        let t0 = q.epoch + ms(1);
        for _ in 0..3 {
            q.record(true, t0, &CFG);
        }
        let t1 = t0 + ms(100);
        assert!(q.admit(t1, &CFG).is_ok(), "the first job after the cool-down is the probe");
        assert!(q.admit(t1, &CFG).is_err(), "the others wait for the probe's verdict");
        // The probe fails: twice as long, then capped.
        assert_eq!(q.record(true, t1 + ms(5), &CFG), Some(ms(200)));
        let t2 = t1 + ms(5) + ms(200);
        assert!(q.admit(t2 - ms(1), &CFG).is_err());
        assert!(q.admit(t2, &CFG).is_ok());
        assert_eq!(q.record(true, t2, &CFG), Some(ms(350)), "doubling stops at the cap");
        let t3 = t2 + ms(350);
        assert!(q.admit(t3, &CFG).is_ok());
        // The probe answers: the kernel is open again, with the count and cool-down reset.
        assert_eq!(q.record(false, t3, &CFG), None);
        assert!(q.admit(t3, &CFG).is_ok() && q.admit(t3, &CFG).is_ok());
        q.record(true, t3, &CFG);
        q.record(true, t3, &CFG);
        assert_eq!(q.record(true, t3, &CFG), Some(ms(100)), "a later trip starts from the first cool-down");
    }

    #[test]
    fn a_new_version_of_a_quarantined_kernel_is_on_probation_and_a_healthy_ones_is_clean() {
        let old = Quarantine::default();
        let t0 = old.epoch + ms(1);
        assert_eq!(Quarantine::succeeding(Some(&old)).failures.load(Relaxed), 0, "never tripped: clean");
        for _ in 0..3 {
            old.record(true, t0, &CFG);
        }
        let next = Quarantine::succeeding(Some(&old));
        assert!(next.admit(next.epoch + ms(1), &CFG).is_ok(), "it gets its chance");
        let t1 = next.epoch + ms(2);
        assert_eq!(next.record(true, t1, &CFG), Some(ms(200)), "one failure trips it, at the reached cool-down");
        let cured = Quarantine::succeeding(Some(&old));
        cured.record(false, t1, &CFG);
        cured.record(true, t1, &CFG);
        assert_eq!(cured.record(true, t1, &CFG), None, "an answer clears probation");
        assert_eq!(Quarantine::succeeding(None).failures.load(Relaxed), 0);
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let off = QuarantineConfig { after_failures: 0, ..CFG };
        let q = Quarantine::default();
        for _ in 0..100 {
            assert_eq!(q.record(true, Instant::now(), &off), None);
        }
        assert!(q.admit(Instant::now(), &off).is_ok());
    }
}
