//! The work offered to the router over the last few tens of milliseconds, by cost, and the
//! ration it implies. While the work offered to a class exceeds the permit time left for it,
//! its dearest jobs are cut to a share of their units (`ration_keep`), from the cost up that
//! makes the rest fit, or, if cutting every job so is not enough, every job dearer than a cap
//! is cut to the cap (water-filling): critical work is rationed against the whole lane,
//! sheddable work against what rationed critical work leaves. Cheap jobs keep running in full,
//! which is where a microsecond of CPU answers the most jobs; the dearest lose units, and their
//! error bars widen only as a root of the units lost. Without a ration, greedy admission fills
//! the queue with whole expensive jobs and then has room for nobody, not even at their floor.
//!
//! A ration is only in force while the lane is overloaded in the sense that matters: it starts
//! when the acceptance test refuses room to some job (drops it, degrades it to fit, or makes
//! sheddable work give way), and lasts `HOLD` slots past the last refusal or the last job the
//! ration cut. A lane that is merely backed up, with every job still fitting its budget (a
//! closed loop of clients, say), is never rationed.
//!
//! How much of that permit time to fill is steered by the same signal: it starts at the
//! configured share, gives up 5% of itself each slot in which the acceptance test still had to
//! refuse room to a critical job (the ration let too much critical work in), and wins back 1%
//! of the configured share each slot it did not, never below half of it.
//!
//! The permit time there is to fill is learnt, not assumed: while the queue stays backed up, the
//! lane's permits deliver what they deliver (cheap jobs on the async threads and the caller's
//! own threads take their share of the cores), and the work they completed over
//! the window, in the same predicted microseconds the offers are counted in, is the capacity.
//! When the queue empties, the capacity is raised back towards the permits' full time, a tenth
//! of it a slot.
//!
//! Counters are atomics in time slots, so offering a job is a few relaxed adds; the caps are
//! recomputed once a slot, by whichever job first sees the slot change.

use crate::policy::Ration;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Width of a time slot, microseconds.
const SLOT_US: u64 = 10_000;
/// Complete slots the caps are computed from: 50 ms, long enough for a few hundred jobs at
/// capacity, short enough to follow a step in the load within a few slots.
const WINDOW: u64 = 5;
/// Slots a ration stays in force after the acceptance test last refused room: 200 ms, so it
/// does not lapse as soon as it works.
const HOLD: u64 = 20;
/// The window, the slot being filled and the next one (cleared ahead of use).
const RING: usize = WINDOW as usize + 2;
/// Costs in quarter-octaves: bucket `k` holds costs in [2^(k/4), 2^((k+1)/4)) microseconds, the
/// last one everything from 2^19.75 us (about 0.9 s) up.
const COST_BUCKETS: usize = 80;

/// Jobs and their cost offered in one slot by one class, by cost bucket.
struct Tally {
    jobs: [AtomicU64; COST_BUCKETS],
    work_us: [AtomicU64; COST_BUCKETS],
}

impl Tally {
    fn new() -> Tally {
        Tally { jobs: std::array::from_fn(|_| AtomicU64::new(0)), work_us: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    fn clear(&self) {
        self.jobs.iter().chain(&self.work_us).for_each(|c| c.store(0, Relaxed));
    }
}

/// A class's offered work over the window: jobs and microseconds per cost bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Offer {
    jobs: [f64; COST_BUCKETS],
    work_us: [f64; COST_BUCKETS],
}

fn bucket(cost_us: f64) -> usize {
    if cost_us <= 1.0 { 0 } else { ((4.0 * cost_us.log2()) as usize).min(COST_BUCKETS - 1) }
}

fn bucket_floor_us(k: usize) -> f64 {
    2f64.powf(k as f64 / 4.0)
}

/// The cap that fits `offer` into `budget_us` (infinite when it fits whole), and the work it
/// leaves after rationing. Jobs in buckets below the cap's count whole; those in its bucket and
/// above count at the cap, so the cap errs low by at most a bucket's width.
fn water_fill(offer: &Offer, budget_us: f64) -> (f64, f64) {
    let total: f64 = offer.work_us.iter().sum();
    if total <= budget_us {
        return (f64::INFINITY, total);
    }
    let (mut below_us, mut above_jobs) = (total, 0.0);
    for k in (0..COST_BUCKETS).rev() {
        below_us -= offer.work_us[k];
        above_jobs += offer.jobs[k];
        if above_jobs > 0.0 && budget_us > below_us {
            let cap = (budget_us - below_us) / above_jobs;
            if cap >= bucket_floor_us(k) || k == 0 {
                return (cap, budget_us);
            }
        }
    }
    (0.0, 0.0)
}

/// The ration that fits `offer` into `budget_us`, and the work it leaves: none if it fits
/// whole; else the dearest jobs cut to `keep` of their cost, bucket by bucket from the dearest
/// until the rest fits (`whole_us` is the low end of the last bucket cut, so the ration errs
/// towards cutting a bucket's width too much: splitting a bucket as if its work were spread
/// evenly over its costs let in more than the lane served, and at 2 x C critical jobs were
/// refused room seven times as often). If even every job cut to `keep` is too much, the jobs
/// are water-filled instead: the cheap ones run whole and the dear ones at a cap, or not at
/// all below their floor (halving every job would cut the cheap ones too, which answer the
/// most jobs for their permit time).
fn ration(offer: &Offer, keep: f64, budget_us: f64) -> (Ration, f64) {
    let total: f64 = offer.work_us.iter().sum();
    if total <= budget_us {
        return (Ration::NONE, total);
    }
    if keep < 1.0 && keep * total <= budget_us {
        // Cutting bucket by bucket from the dearest, until what is left fits.
        let mut left_us = total;
        for k in (0..COST_BUCKETS).rev() {
            let saved = (1.0 - keep) * offer.work_us[k];
            left_us -= saved;
            if saved > 0.0 && left_us <= budget_us {
                let whole_us = if k == 0 { 0.0 } else { bucket_floor_us(k) };
                return (Ration { whole_us, keep, cap_us: f64::INFINITY }, left_us);
            }
        }
    }
    let (cap_us, left_us) = water_fill(offer, budget_us);
    (Ration { whole_us: 0.0, keep: 1.0, cap_us }, left_us)
}

/// What a job of each class may cost now (see `Ration`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rations {
    pub(crate) critical: Ration,
    pub(crate) sheddable: Ration,
}

impl Rations {
    const NONE: Rations = Rations { critical: Ration::NONE, sheddable: Ration::NONE };
}

/// At the start of one slot: the lane's work done so far, and whether its queue was backed up.
struct Mark {
    slot: AtomicU64,
    done_us: AtomicU64,
    backed_up: AtomicBool,
}

/// The offered-work meter of one lane.
pub(crate) struct Offered {
    epoch: Instant,
    /// The permits' whole time in a window, microseconds.
    nominal_us: f64,
    /// The share of the capacity that rationing fills, as configured: the most it fills.
    share: f64,
    /// The share of its cost a job cut by the ration keeps (see `Ration`).
    keep: f64,
    /// The share it fills now (f64 bits), steered by refusals of critical jobs.
    share_now: AtomicU64,
    /// The permit time the lane delivers in a window, learnt (f64 bits).
    capacity_us: AtomicU64,
    /// `[slot % RING]`.
    marks: Vec<Mark>,
    /// The slot being filled, counted from `epoch`.
    current: AtomicU64,
    /// `[slot % RING][0 critical, 1 sheddable]`.
    tallies: Vec<[Tally; 2]>,
    /// The rations' fields, as f64 bits, per class (critical, sheddable): whole_us, keep, cap_us.
    rations: [[AtomicU64; 3]; 2],
    /// The last slot in which the acceptance test refused room, or the ration cut a job
    /// (`u64::MAX`: never).
    refused_slot: AtomicU64,
    /// The last slot in which the acceptance test refused room to a critical job.
    refused_critical_slot: AtomicU64,
}

impl Offered {
    /// A meter for `permits` permits, rationing once offered work passes `share` of their time
    /// by cutting the dearest jobs to `keep` of their cost.
    pub(crate) fn new(permits: usize, share: f64, keep: f64) -> Offered {
        let nominal_us = permits.max(1) as f64 * (WINDOW * SLOT_US) as f64;
        let mark =
            || Mark { slot: AtomicU64::new(u64::MAX), done_us: AtomicU64::new(0), backed_up: AtomicBool::new(false) };
        Offered {
            epoch: Instant::now(),
            nominal_us,
            share: share.max(0.0),
            keep: if keep > 0.0 && keep <= 1.0 { keep } else { 1.0 },
            share_now: AtomicU64::new(share.max(0.0).to_bits()),
            capacity_us: AtomicU64::new(nominal_us.to_bits()),
            marks: (0..RING).map(|_| mark()).collect(),
            current: AtomicU64::new(0),
            tallies: (0..RING).map(|_| [Tally::new(), Tally::new()]).collect(),
            rations: std::array::from_fn(|_| {
                [Ration::NONE.whole_us, Ration::NONE.keep, Ration::NONE.cap_us].map(|v| AtomicU64::new(v.to_bits()))
            }),
            refused_slot: AtomicU64::new(u64::MAX),
            refused_critical_slot: AtomicU64::new(u64::MAX),
        }
    }

    /// Counts a job offered now at `cost_us` of permit time, and returns the rations in force.
    /// `lane` says how the lane stands: its work done so far and whether its queue is backed up.
    pub(crate) fn offer(&self, critical: bool, cost_us: f64, lane: impl Fn() -> (u64, bool)) -> Rations {
        self.offer_at(Instant::now(), critical, cost_us, lane)
    }

    fn offer_at(&self, now: Instant, critical: bool, cost_us: f64, lane: impl Fn() -> (u64, bool)) -> Rations {
        let slot = self.slot_of(now);
        let seen = self.current.load(Relaxed);
        if slot > seen && self.current.compare_exchange(seen, slot, Relaxed, Relaxed).is_ok() {
            let (done_us, backed_up) = lane();
            self.turn(seen, slot, done_us, backed_up);
        }
        let t = &self.tallies[slot as usize % RING][usize::from(!critical)];
        let k = bucket(cost_us);
        t.jobs[k].fetch_add(1, Relaxed);
        t.work_us[k].fetch_add(cost_us.max(0.0).round() as u64, Relaxed);
        self.stored()
    }

    /// Notes that the acceptance test refused room to a job now (`critical` says whose).
    pub(crate) fn refused(&self, critical: bool) {
        self.refused_at(Instant::now(), critical);
    }

    /// Notes that the ration cut a job now: the ration is still doing its work, and holds.
    pub(crate) fn cut(&self) {
        self.refused_at(Instant::now(), false);
    }

    fn refused_at(&self, now: Instant, critical: bool) {
        let slot = self.slot_of(now);
        self.refused_slot.store(slot, Relaxed);
        if critical {
            self.refused_critical_slot.store(slot, Relaxed);
        }
    }

    fn slot_of(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64 / SLOT_US
    }

    /// The permit time the lane delivers, as a share of the permits' whole time (learnt), and
    /// the share of it rationing fills now.
    pub(crate) fn capacity_share(&self) -> (f64, f64) {
        (f64::from_bits(self.capacity_us.load(Relaxed)) / self.nominal_us, f64::from_bits(self.share_now.load(Relaxed)))
    }

    /// The rations in force now: none once no job has been offered for longer than a ration is
    /// held (they are recomputed only when jobs come).
    pub(crate) fn rations(&self) -> Rations {
        let idle = self.slot_of(Instant::now()) > self.current.load(Relaxed) + HOLD;
        if idle { Rations::NONE } else { self.stored() }
    }

    fn stored(&self) -> Rations {
        let class = |c: &[AtomicU64; 3]| {
            let [whole_us, keep, cap_us] = std::array::from_fn(|i| f64::from_bits(c[i].load(Relaxed)));
            Ration { whole_us, keep, cap_us }
        };
        Rations { critical: class(&self.rations[0]), sheddable: class(&self.rations[1]) }
    }

    fn store(&self, class: usize, r: &Ration) {
        for (field, v) in self.rations[class].iter().zip([r.whole_us, r.keep, r.cap_us]) {
            field.store(v.to_bits(), Relaxed);
        }
    }

    /// The slot moved from `from` to `to`: clear the slots that come next (the one after `to`,
    /// and after an idle gap every slot not written since a whole ring ago, `to` included),
    /// learn the capacity, and recompute the rations from the complete slots before `to`.
    fn turn(&self, from: u64, to: u64, done_us: u64, backed_up: bool) {
        for s in (from + 2).max((to + 2).saturating_sub(RING as u64))..=to + 1 {
            self.tallies[s as usize % RING].iter().for_each(Tally::clear);
        }
        let capacity_us = self.learn(to, done_us, backed_up);
        let refused = self.refused_slot.load(Relaxed);
        let overloaded = refused != u64::MAX && refused + HOLD >= to;
        let share = self.steer(to);
        // Early in the lane's life the window is partly empty: scale the budget to what it spans.
        let budget_us = share * capacity_us * to.min(WINDOW) as f64 / WINDOW as f64;
        let (critical, sheddable) = if overloaded {
            let (critical, critical_left) = ration(&self.window(to, 0), self.keep, budget_us);
            (critical, ration(&self.window(to, 1), self.keep, budget_us - critical_left).0)
        } else {
            (Ration::NONE, Ration::NONE)
        };
        self.store(0, &critical);
        self.store(1, &sheddable);
    }

    /// The share to fill from slot `to` on: less if a critical job was refused room in the slot
    /// just ended, a little more (up to the configured share) if not.
    fn steer(&self, to: u64) -> f64 {
        let refused = self.refused_critical_slot.load(Relaxed);
        let last = f64::from_bits(self.share_now.load(Relaxed));
        let share = if refused != u64::MAX && refused + 1 >= to { last * 0.95 } else { last + 0.01 * self.share }
            .clamp(0.5 * self.share, self.share);
        self.share_now.store(share.to_bits(), Relaxed);
        share
    }

    /// Marks the start of slot `to` and returns the capacity: the work done over the window if
    /// the queue was backed up at every mark in it, else the last capacity raised by a tenth of
    /// the permits' time (never past it).
    fn learn(&self, to: u64, done_us: u64, backed_up: bool) -> f64 {
        let mark = &self.marks[to as usize % RING];
        mark.slot.store(to, Relaxed);
        mark.done_us.store(done_us, Relaxed);
        mark.backed_up.store(backed_up, Relaxed);
        let marked = |s: u64| {
            let m = &self.marks[s as usize % RING];
            (m.slot.load(Relaxed) == s).then(|| (m.done_us.load(Relaxed), m.backed_up.load(Relaxed)))
        };
        let start = to.checked_sub(WINDOW).and_then(marked);
        let busy = (to.saturating_sub(WINDOW)..=to).all(|s| marked(s).is_some_and(|(_, b)| b));
        let last = f64::from_bits(self.capacity_us.load(Relaxed));
        let capacity = match start {
            Some((done_before, _)) if busy => done_us.saturating_sub(done_before) as f64,
            _ => last + 0.1 * self.nominal_us,
        }
        .clamp(0.05 * self.nominal_us, self.nominal_us);
        self.capacity_us.store(capacity.to_bits(), Relaxed);
        capacity
    }

    /// What `class` (0 critical, 1 sheddable) offered in the complete slots before `to`.
    fn window(&self, to: u64, class: usize) -> Offer {
        let mut o = Offer { jobs: [0.0; COST_BUCKETS], work_us: [0.0; COST_BUCKETS] };
        for s in to.saturating_sub(WINDOW)..to {
            let t = &self.tallies[s as usize % RING][class];
            for k in 0..COST_BUCKETS {
                o.jobs[k] += t.jobs[k].load(Relaxed) as f64;
                o.work_us[k] += t.work_us[k].load(Relaxed) as f64;
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A lane that never backs up: the capacity stays the permits' whole time.
    fn idle() -> (u64, bool) {
        (0, false)
    }

    fn offer(jobs: &[(f64, f64)]) -> Offer {
        let mut o = Offer { jobs: [0.0; COST_BUCKETS], work_us: [0.0; COST_BUCKETS] };
        for &(n, cost) in jobs {
            o.jobs[bucket(cost)] += n;
            o.work_us[bucket(cost)] += n * cost;
        }
        o
    }

    #[test]
    fn water_filling_cuts_the_expensive_jobs_and_keeps_the_cheap_ones_whole() {
        // 100 jobs of 10 us and 10 of 1 000 us: 11 000 us offered.
        let o = offer(&[(100.0, 10.0), (10.0, 1_000.0)]);
        assert_eq!(water_fill(&o, 20_000.0), (f64::INFINITY, 11_000.0), "it fits: no cap");
        // 6 000 us of room: the cheap jobs take 1 000, the ten expensive ones 500 each.
        let (cap, left) = water_fill(&o, 6_000.0);
        assert!((cap - 500.0).abs() < 1e-9 && left == 6_000.0, "{cap} {left}");
        // 500 us of room: not even the cheap jobs fit whole; all are cut to ~4.5 us.
        let (cap, _) = water_fill(&o, 500.0);
        assert!((cap - 500.0 / 110.0).abs() < 1e-9, "{cap}");
        assert_eq!(water_fill(&o, 0.0).0, 0.0, "no room at all");
    }

    #[test]
    fn a_ration_that_keeps_half_cuts_the_fewest_jobs() {
        // 100 jobs of 10 us and 10 of 1 000 us: 11 000 us offered.
        let o = offer(&[(100.0, 10.0), (10.0, 1_000.0)]);
        assert_eq!(ration(&o, 0.5, 20_000.0), (Ration::NONE, 11_000.0), "it fits: no ration");
        // 8 000 us of room: 3 000 us to save, from six of the dear jobs at half their cost. The
        // ration cuts their whole bucket, [861, 1 024) us: 5 000 us saved, 6 000 us left.
        let (r, left) = ration(&o, 0.5, 8_000.0);
        assert_eq!((r.keep, r.cap_us, left), (0.5, f64::INFINITY, 6_000.0), "{r:?}");
        assert!((r.whole_us - 2f64.powf(9.75)).abs() < 1e-9, "{r:?}");
        assert_eq!((r.allowed_us(10.0), r.allowed_us(1_000.0)), (10.0, 500.0));
        // Two dear jobs a bucket apart, and room for the cheaper one whole: only the dearer is cut.
        let two = offer(&[(1.0, 1_000.0), (1.0, 1_300.0)]);
        let (r, left) = ration(&two, 0.5, 2_000.0);
        assert_eq!((r.allowed_us(1_000.0), r.allowed_us(1_300.0), left), (1_000.0, 650.0, 1_650.0), "{r:?}");
        // Water-filling the same room would cut all ten dear jobs, to 700 us each.
        assert!((water_fill(&o, 8_000.0).0 - 700.0).abs() < 1e-9);
        // 5 000 us: every job at half its cost is 5 500 us, still too much: water-filled, the
        // cheap jobs whole and the ten dear ones at 400 us.
        let (r, left) = ration(&o, 0.5, 5_000.0);
        assert_eq!((r.whole_us, r.keep, left), (0.0, 1.0, 5_000.0), "{r:?}");
        assert!((r.cap_us - 400.0).abs() < 1e-9, "{r:?}");
        assert_eq!((r.allowed_us(10.0), r.allowed_us(1_000.0)), (10.0, 400.0));
        // Keeping all of a cut job's cost is plain water-filling.
        let (r, _) = ration(&o, 1.0, 6_000.0);
        assert_eq!((r.whole_us, r.keep), (0.0, 1.0));
        assert!((r.cap_us - 500.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn critical_work_is_rationed_first_and_sheddable_work_gets_what_it_leaves() {
        // One permit, all of its time: 50 000 us a window; its acceptance test refusing room.
        let m = Offered::new(1, 1.0, 1.0);
        let t0 = m.epoch;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        m.refused_at(at(0), false);
        // 50 ms of 1 ms critical jobs (one a ms: the whole permit) and as many sheddable ones.
        for i in 0..50 {
            m.offer_at(at(i), true, 1_000.0, idle);
            m.offer_at(at(i), false, 1_000.0, idle);
        }
        let caps = m.offer_at(at(50), true, 1_000.0, idle);
        assert_eq!(caps.critical.cap_us, f64::INFINITY, "critical work alone fits: {caps:?}");
        assert_eq!(caps.sheddable.cap_us, 0.0, "nothing is left for sheddable work: {caps:?}");
        // Twice as much critical work: each job gets half its cost.
        m.refused_at(at(60), false);
        for i in 50..100 {
            m.offer_at(at(i), true, 1_000.0, idle);
            m.offer_at(at(i) + Duration::from_micros(500), true, 1_000.0, idle);
        }
        // With the job offered at 50 ms, 101 jobs in the window share its 50 000 us.
        let caps = m.offer_at(at(100), true, 1_000.0, idle);
        assert!((caps.critical.cap_us - 50_000.0 / 101.0).abs() < 1e-6, "{caps:?}");
        // A quiet window later, the rationing ends.
        for i in 100..200 {
            m.offer_at(at(i), i % 10 == 0, 100.0, idle);
        }
        assert_eq!(m.offer_at(at(200), true, 100.0, idle), Rations::NONE);
    }

    #[test]
    fn an_idle_gap_longer_than_the_ring_leaves_no_stale_counts() {
        let m = Offered::new(1, 1.0, 1.0);
        let t0 = m.epoch;
        m.refused_at(t0, false);
        for i in 0..60 {
            m.offer_at(t0 + Duration::from_millis(i), true, 3_000.0, idle);
        }
        assert!(m.offer_at(t0 + Duration::from_millis(60), true, 1.0, idle).critical.cap_us < 3_000.0);
        // A second later (slot 100), one small job in each of the next slots: the window
        // holds only those, whichever ring slots the old ones sat in.
        for i in 0..6 {
            m.offer_at(t0 + Duration::from_millis(1_000 + 10 * i), true, 10.0, idle);
        }
        let total = |o: Offer| (o.jobs.iter().sum::<f64>(), o.work_us.iter().sum::<f64>());
        assert_eq!(total(m.window(105, 0)), (5.0, 50.0));
        assert_eq!(m.stored().critical.cap_us, f64::INFINITY);
    }

    #[test]
    fn a_backed_up_lane_is_rationed_to_the_work_it_delivered() {
        // One permit; 1 ms critical jobs, one a ms, so the permit's whole time is offered.
        let m = Offered::new(1, 1.0, 1.0);
        let t0 = m.epoch;
        let done = std::cell::Cell::new(0u64);
        // Backed up all along, the lane delivers 600 us of work a ms: 30 000 us a window.
        let lane = || (done.get(), true);
        for i in 0..100 {
            done.set(i * 600);
            if i % 50 == 0 {
                m.refused_at(t0 + Duration::from_millis(i), false);
            }
            m.offer_at(t0 + Duration::from_millis(i), true, 1_000.0, lane);
        }
        let learnt = f64::from_bits(m.capacity_us.load(Relaxed));
        assert!((learnt - 30_000.0).abs() <= 600.0, "{learnt}");
        // 50 jobs of 1 000 us a window share 30 000 us: 600 us each.
        assert!((m.stored().critical.cap_us - 600.0).abs() <= 15.0, "{:?}", m.stored());
        // The queue empties: the capacity climbs back a tenth of the permit's time a slot.
        let capacity = || f64::from_bits(m.capacity_us.load(Relaxed));
        for i in 100..120 {
            m.offer_at(t0 + Duration::from_millis(i), true, 1_000.0, idle);
        }
        assert!((capacity() - learnt - 10_000.0).abs() < 1e-6, "two slots: {}", capacity());
        for i in 120..200 {
            m.offer_at(t0 + Duration::from_millis(i), true, 1_000.0, idle);
        }
        assert_eq!(capacity(), 50_000.0, "never past the permit's whole time");
    }

    #[test]
    fn a_lane_whose_every_job_still_fits_is_not_rationed() {
        // Three times the permit's time offered all along (a job every 333 us), but no job
        // refused room for the first 50 ms: no cap.
        let m = Offered::new(1, 1.0, 1.0);
        let t0 = m.epoch;
        let offer_until = |from_us: u64, to_us: u64| {
            for at_us in (from_us..to_us).step_by(333) {
                m.offer_at(t0 + Duration::from_micros(at_us), true, 1_000.0, || (0, true));
            }
        };
        offer_until(0, 60_000);
        assert_eq!(m.stored().critical.cap_us, f64::INFINITY);
        // A refusal at 50 ms puts the ration in force from the next slot, for 200 ms.
        m.refused_at(t0 + Duration::from_millis(50), false);
        offer_until(60_000, 70_000);
        assert!(m.stored().critical.cap_us < 1_000.0, "{:?}", m.stored());
        offer_until(70_000, 251_000);
        assert!(m.stored().critical.cap_us < 1_000.0, "still held at 250 ms: {:?}", m.stored());
        offer_until(251_000, 261_000);
        assert_eq!(m.stored().critical.cap_us, f64::INFINITY, "lapsed 200 ms after the refusal");
    }

    #[test]
    fn refusals_of_critical_jobs_steer_the_share_down_and_their_absence_back_up() {
        let m = Offered::new(1, 1.0, 1.0);
        let t0 = m.epoch;
        let share = |m: &Offered| m.capacity_share().1;
        // A critical refusal in every slot for 100 ms: 5% less a slot, down to 0.95^10.
        for slot in 1..=10 {
            m.refused_at(t0 + Duration::from_millis(10 * slot - 5), true);
            m.offer_at(t0 + Duration::from_millis(10 * slot), true, 10.0, idle);
        }
        assert!((share(&m) - 0.95f64.powi(10)).abs() < 1e-9, "{}", share(&m));
        // Sheddable refusals do not steer it; quiet slots win back 1% a slot.
        for slot in 11..=20 {
            m.refused_at(t0 + Duration::from_millis(10 * slot - 5), false);
            m.offer_at(t0 + Duration::from_millis(10 * slot), true, 10.0, idle);
        }
        assert!((share(&m) - (0.95f64.powi(10) + 0.1)).abs() < 1e-9, "{}", share(&m));
        // Never below half the configured share, never above it.
        for slot in 21..=200 {
            m.refused_at(t0 + Duration::from_millis(10 * slot - 5), true);
            m.offer_at(t0 + Duration::from_millis(10 * slot), true, 10.0, idle);
        }
        assert_eq!(share(&m), 0.5);
        for slot in 201..=400 {
            m.offer_at(t0 + Duration::from_millis(10 * slot), true, 10.0, idle);
        }
        assert_eq!(share(&m), 1.0);
    }
}
