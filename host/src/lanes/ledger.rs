//! The CPU lane's queued work by deadline, in buckets of atomics: what deadline admission asks
//! of the queue, "how much work is due before this deadline, and how much spare time do the jobs
//! due after it have", answered by one pass over the buckets without a lock. Work goes in when
//! it is queued and comes out when it leaves the queue, in the same bucket.

use crate::policy::{Placement, Ration};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Width of a bucket of deadlines, microseconds.
const WIDTH_US: u64 = 1_000;
/// Buckets in the ring: deadlines up to a little over a second ahead have their own; later ones
/// share one bucket at the ring's end until they leave the queue.
const BUCKETS: usize = 1024;

/// Queued work in one set of buckets, microseconds of permit time each.
struct Buckets {
    ring: Box<[AtomicU64]>,
    /// Work whose deadline was past the ring's reach when it was queued.
    beyond: AtomicU64,
}

impl Buckets {
    fn new() -> Buckets {
        Buckets { ring: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(), beyond: AtomicU64::new(0) }
    }

    fn cell(&self, slot: Option<usize>) -> &AtomicU64 {
        slot.map_or(&self.beyond, |s| &self.ring[s])
    }
}

/// Queued work by deadline: all of it, and the critical part.
pub(crate) struct Ledger {
    epoch: Instant,
    all: Buckets,
    critical: Buckets,
    /// The latest bucket work was ever queued in: scans stop there.
    last: AtomicU64,
}

/// Where a piece of queued work was counted, so it comes out where it went in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Entry {
    /// Its bucket in the ring, or `None` for the bucket beyond it.
    slot: Option<usize>,
    us: u64,
    critical: bool,
}

impl Entry {
    /// The same work counted at a new cost (a queued job degraded in place).
    pub(crate) fn with_cost(self, us: u64) -> Entry {
        Entry { us, ..self }
    }
}

impl Ledger {
    pub(crate) fn new() -> Ledger {
        Ledger { epoch: Instant::now(), all: Buckets::new(), critical: Buckets::new(), last: AtomicU64::new(0) }
    }

    fn bucket(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_micros() as u64 / WIDTH_US
    }

    /// Counts `us` of work due at `deadline`.
    pub(crate) fn add(&self, deadline: Instant, us: u64, critical: bool) -> Entry {
        let (b, now) = (self.bucket(deadline), self.bucket(Instant::now()));
        let slot = (b < now + BUCKETS as u64).then_some(b as usize % BUCKETS);
        let entry = Entry { slot, us, critical };
        self.change(entry, true);
        // Work past the ring is read from its own cell: it must not stretch every scan.
        if slot.is_some() {
            self.last.fetch_max(b, Relaxed);
        }
        entry
    }

    /// Takes away work counted by `add`.
    pub(crate) fn remove(&self, entry: Entry) {
        self.change(entry, false);
    }

    /// Puts an entry back with what `with_cost` changed: remove the old, add the new.
    pub(crate) fn replace(&self, old: Entry, new: Entry) {
        self.change(old, false);
        self.change(new, true);
    }

    fn change(&self, e: Entry, add: bool) {
        let sets: &[&Buckets] = if e.critical { &[&self.all, &self.critical] } else { &[&self.all] };
        for set in sets {
            let cell = set.cell(e.slot);
            if add {
                cell.fetch_add(e.us, Relaxed);
            } else {
                cell.fetch_sub(e.us, Relaxed);
            }
        }
    }

    /// Where a job due at `deadline` would sit now, with `running_us` of running work still to
    /// finish on `permits` permits. Work already past its deadline counts for nothing: the lane
    /// drops it when it reaches it. Each bucket is taken at its start, so the slack errs short;
    /// work due past the ring counts as due at its end.
    pub(crate) fn place(&self, deadline: Instant, permits: usize, running_us: f64) -> Placement {
        let now_at = Instant::now();
        let elapsed_us = now_at.saturating_duration_since(self.epoch).as_micros() as f64;
        let (now, due) = (self.bucket(now_at), self.bucket(deadline));
        let end = now + BUCKETS as u64;
        let last = self.last.load(Relaxed).min(end - 1);
        let p = permits.max(1) as f64;
        let room_before = |b: u64| p * ((b * WIDTH_US) as f64 - elapsed_us) - running_us;
        // Queued work due by the bucket reached, and the part of it ahead of the job.
        let (mut all, mut critical) = (0.0, 0.0);
        let (mut ahead_all, mut ahead_critical) = (0.0, 0.0);
        let (mut slack_all, mut slack_critical) = (f64::INFINITY, f64::INFINITY);
        for b in now..=last {
            let slot = b as usize % BUCKETS;
            let (here_all, here_critical) = (self.all.ring[slot].load(Relaxed), self.critical.ring[slot].load(Relaxed));
            all += here_all as f64;
            critical += here_critical as f64;
            if b <= due {
                (ahead_all, ahead_critical) = (all, critical);
            } else {
                // Only a bucket that holds work has a deadline to keep.
                if here_all > 0 {
                    slack_all = slack_all.min(room_before(b) - all);
                }
                if here_critical > 0 {
                    slack_critical = slack_critical.min(room_before(b) - critical);
                }
            }
        }
        let beyond_all = self.all.beyond.load(Relaxed) as f64;
        let beyond_critical = self.critical.beyond.load(Relaxed) as f64;
        if due >= end {
            ahead_all += beyond_all;
            ahead_critical += beyond_critical;
        } else {
            if beyond_all > 0.0 {
                slack_all = slack_all.min(room_before(end) - all - beyond_all);
            }
            if beyond_critical > 0.0 {
                slack_critical = slack_critical.min(room_before(end) - critical - beyond_critical);
            }
        }
        Placement {
            wait_us: (running_us + ahead_all) / p,
            wait_critical_us: (running_us + ahead_critical) / p,
            slack_us: slack_all,
            slack_critical_us: slack_critical,
            ration: Ration::NONE,
        }
    }

    /// Work counted now, all of it and the critical part (0 and 0 once everything queued left).
    #[cfg(test)]
    fn total(&self) -> (u64, u64) {
        let sum = |set: &Buckets| set.ring.iter().map(|c| c.load(Relaxed)).sum::<u64>() + set.beyond.load(Relaxed);
        (sum(&self.all), sum(&self.critical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn a_job_waits_for_what_is_due_before_it_and_is_held_to_what_is_due_after() {
        let l = Ledger::new();
        let t = Instant::now();
        // Due at 10 ms: 3 ms of work (1 ms of it critical); at 30 ms: 4 ms of critical work.
        l.add(t + ms(10), 2_000, false);
        l.add(t + ms(10), 1_000, true);
        l.add(t + ms(30), 4_000, true);
        // On one permit, with nothing running. A job due at 20 ms waits for the 3 ms due before
        // it; the job due at 30 ms has ~30 ms of time for 7 ms of work: ~23 ms spare.
        let p = l.place(t + ms(20), 1, 0.0);
        assert_eq!((p.wait_us, p.wait_critical_us), (3_000.0, 1_000.0), "{p:?}");
        assert!((22_000.0..=23_000.0).contains(&p.slack_us), "{p:?}");
        assert!((24_000.0..=25_000.0).contains(&p.slack_critical_us), "{p:?}");
        // A job due at 5 ms is ahead of everything; its least slack is the 10 ms group's.
        let early = l.place(t + ms(5), 1, 0.0);
        assert_eq!(early.wait_us, 0.0);
        assert!((6_000.0..=7_000.0).contains(&early.slack_us), "{early:?}");
        // Two permits double the spare time; running work takes its share.
        let two = l.place(t + ms(20), 2, 1_000.0);
        assert_eq!(two.wait_us, 2_000.0);
        assert!((51_000.0..=53_000.0).contains(&two.slack_us), "{two:?}");
        // A job due after everything queued has no one behind it.
        let late = l.place(t + ms(100), 1, 0.0);
        assert_eq!((late.wait_us, late.slack_us), (7_000.0, f64::INFINITY));
    }

    #[test]
    fn work_due_past_the_ring_counts_at_its_end_and_leaves_as_it_came() {
        let l = Ledger::new();
        let t = Instant::now();
        let far = l.add(t + Duration::from_secs(5), 9_000, true);
        let near = l.place(t + ms(10), 1, 0.0);
        assert_eq!(near.wait_us, 0.0);
        assert!(near.slack_us < 1_030_000.0 - 9_000.0 && near.slack_us > 1_000_000.0, "{near:?}");
        assert_eq!(l.place(t + Duration::from_secs(6), 1, 0.0).wait_us, 9_000.0);
        l.remove(far);
        assert_eq!(l.total(), (0, 0));
        // Degraded in place: the same bucket at a new cost.
        let e = l.add(t + ms(10), 5_000, false);
        l.replace(e, e.with_cost(300));
        assert_eq!(l.total(), (300, 0));
        l.remove(e.with_cost(300));
        assert_eq!(l.total(), (0, 0));
    }

    #[test]
    fn concurrent_queueing_and_leaving_balances_to_zero() {
        let l = std::sync::Arc::new(Ledger::new());
        let threads: Vec<_> = (0..4u64)
            .map(|k| {
                let l = l.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    let mut x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for i in 0..20_000u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let deadline = Instant::now() + Duration::from_micros(x % 3_000_000);
                        held.push(l.add(deadline, x % 5_000, x % 3 == 0));
                        if i % 3 != 0 {
                            let e = held.swap_remove((x as usize / 7) % held.len());
                            if x % 5 == 0 {
                                let cheaper = e.with_cost(e.us / 2);
                                l.replace(e, cheaper);
                                held.push(cheaper);
                            } else {
                                l.remove(e);
                            }
                        }
                        let _ = l.place(deadline, 2, 100.0);
                    }
                    held.into_iter().for_each(|e| l.remove(e));
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(l.total(), (0, 0));
    }
}
