//! Deadline admission: a heavy job is placed in the CPU lane's earliest-deadline-first queue by
//! its deadline. It waits only for the running work and the queued work due before it, and it
//! delays every queued job due after it, so it is admitted only if it finishes in time and they
//! all still do (an acceptance test over the queue's slack). Under overload, value decides who
//! gives way: queued sheddable work gives way to critical work, a job that cannot fit whole is
//! degraded to fit (never below its floor), and only what cannot fit even at its floor is dropped.

use super::{Decision, JobProfile, PolicyConfig, Pressure, Reason, Strategy};
use crate::job::Criticality;

/// Where a job would sit in the CPU lane's queue, from the queue's work by deadline. Times are
/// microseconds; slacks are permit time (one job costs its service time of it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Its wait for a permit: the remaining running work and the queued work due before it,
    /// spread over the permits.
    pub wait_us: f64,
    /// The same, counting only critical queued work (as if sheddable work gave way).
    pub wait_critical_us: f64,
    /// The least spare permit time before the deadline of any queued job due after it: the
    /// most it can cost without making one of them late.
    pub slack_us: f64,
    /// The same, counting only critical queued work.
    pub slack_critical_us: f64,
    /// What a job of its class may cost while more work is offered than the lane serves (see
    /// `Reason::Rationed`).
    pub ration: Ration,
}

/// A class's ration: the permit time a job of it may take, from what it would cost whole. A
/// job costing up to `whole_us` runs whole; a dearer one runs at `keep` of its cost, and at
/// most `cap_us`. Cutting the dearest jobs by a fixed share keeps the most jobs whole for the
/// permit time saved, at an error bar wider by a fixed factor (1/sqrt(keep) for Monte Carlo);
/// the cap takes over only when even every job cut to `keep` is too much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ration {
    /// Jobs costing up to this run whole, microseconds.
    pub whole_us: f64,
    /// The share of its cost a dearer job keeps, in (0, 1].
    pub keep: f64,
    /// The most any job may cost, microseconds.
    pub cap_us: f64,
}

impl Ration {
    /// No ration: every job may cost what it costs.
    pub const NONE: Ration = Ration { whole_us: f64::INFINITY, keep: 1.0, cap_us: f64::INFINITY };

    /// What a job that would cost `cost_us` whole may cost.
    pub fn allowed_us(&self, cost_us: f64) -> f64 {
        if cost_us <= self.whole_us { cost_us } else { (self.keep * cost_us).min(self.cap_us) }
    }
}

impl Default for Placement {
    /// An empty queue, and no ration.
    fn default() -> Placement {
        Placement {
            wait_us: 0.0,
            wait_critical_us: 0.0,
            slack_us: f64::INFINITY,
            slack_critical_us: f64::INFINITY,
            ration: Ration::NONE,
        }
    }
}

/// What a heavy job may cost and still fit: its own deadline (after `wait`, on one permit,
/// within the usable share of its budget, at its kernel's slow-run margin) and the queued jobs
/// due after it (`slack`, which their own margins and the usable share already guard).
fn room(job: &JobProfile, cfg: &PolicyConfig, wait_us: f64, slack_us: f64) -> f64 {
    ((job.remaining_budget_us * cfg.budget_use - wait_us) / job.error_margin.max(1.0)).min(slack_us)
}

/// The units `job` may run under `ration`, and whether the ration cut them: all of them if it
/// allows their cost; else as many as it allows, down to the floor. Below the
/// floor a critical job keeps its floor and a sheddable one gets `None` (it is shed). A job
/// that cannot degrade runs whole if critical (the acceptance test still decides) and is shed
/// if sheddable.
fn rationed(job: &JobProfile, ration: &Ration) -> Option<(u64, bool)> {
    let full = job.cost_us(job.units);
    let cap_us = ration.allowed_us(full);
    if full <= cap_us {
        return Some((job.units, false));
    }
    let critical = job.criticality == Criticality::Critical;
    match job.floor_units() {
        None => critical.then_some((job.units, false)),
        Some(floor) => {
            let units = job.units_within(cap_us);
            if units >= floor { Some((units, true)) } else { critical.then_some((floor, true)) }
        }
    }
}

/// Decides how `job` runs under deadline admission (see the module docs). Cheap jobs, the
/// batch and the split choices are decided as `decide` decides them.
pub fn decide_placed(job: &JobProfile, pressure: &Pressure, place: &Placement, cfg: &PolicyConfig) -> Decision {
    let wait = place.wait_us;
    if job.remaining_budget_us <= 0.0 {
        return Decision::drop(job, Reason::DeadlinePassed, wait);
    }
    if job.is_cheap(cfg) {
        return super::decide(job, pressure, cfg);
    }
    let full = job.cost_us(job.units);
    if pressure.queue_depth >= pressure.queue_capacity {
        return Decision::drop(job, Reason::QueueFull, wait);
    }
    let room_all = room(job, cfg, wait, place.slack_us);
    let batch = |units: u64| {
        let delay = job.batch_delay_us?;
        (full + delay <= room_all)
            .then(|| Decision::new(Strategy::Batch, Reason::SharedWork, job, units, full, wait + delay))
    };
    // Joining an open batch adds only a member's share of its cost: no ration applies.
    if job.batch_open
        && let Some(d) = batch(job.units)
    {
        return d;
    }
    let Some((units, rationed)) = rationed(job, &place.ration) else {
        return Decision::drop(job, Reason::Rationed, wait);
    };
    // Opening one costs the whole job if no partner comes: only within the ration.
    let batch_pays = cfg.batch_when_idle || pressure.queue_depth > 0 || pressure.free_permits() == 0;
    if !rationed
        && batch_pays
        && let Some(d) = batch(job.units)
    {
        return d;
    }
    if pressure.queue_depth == 0 && pressure.free_permits() >= 2 {
        // An idle lane: the split rules are the queue model's, whose wait is also 0 here.
        let d = super::decide(job, pressure, cfg);
        if d.strategy == Strategy::Split {
            return d;
        }
    }
    let cost = job.cost_us(units);
    // Whole (or at its ration) if it fits.
    let (as_is, as_is_reason) =
        if rationed { (Strategy::Degrade, Reason::Rationed) } else { (Strategy::CpuLane, Reason::FitsBudget) };
    if cost <= room_all {
        return Decision::new(as_is, as_is_reason, job, units, cost, wait);
    }
    let floor = job.floor_units();
    let fit_within =
        |room_us: f64| floor.map(|f| (f, job.units_within(room_us).min(units))).filter(|&(f, u)| u >= f && u > 0);
    if job.criticality == Criticality::Critical {
        // As many of its units as fit with every queued sheddable job gone; sheddable work gives
        // way only for what does not fit beside it.
        let room_critical = room(job, cfg, place.wait_critical_us, place.slack_critical_us);
        let (strategy, units) = if cost <= room_critical {
            (as_is, units)
        } else {
            match fit_within(room_critical) {
                Some((_, units)) => (Strategy::Degrade, units),
                None => return Decision::drop(job, Reason::BudgetUnreachable, wait),
            }
        };
        let cost = job.cost_us(units);
        let reason = if cost <= room_all { Reason::DegradedToFit } else { Reason::DisplacesSheddable };
        return Decision::new(strategy, reason, job, units, cost, wait);
    }
    match fit_within(room_all) {
        Some((f, units)) => {
            let reason = if units == f { Reason::ShedToFloor } else { Reason::DegradedToFit };
            Decision::new(Strategy::Degrade, reason, job, units, job.cost_us(units), wait)
        }
        None => Decision::drop(job, Reason::ShedUnderPressure, wait),
    }
}

/// Permit time, microseconds, of queued sheddable work that must give way for a job decided
/// `DisplacesSheddable` at `place` (0 for any other decision): enough for the jobs due after it
/// to fit (the permit time it lacks behind it) and for its own start (what it lacks before its
/// deadline, on every permit).
pub fn displacement(
    job: &JobProfile,
    decided: &Decision,
    place: &Placement,
    permits: usize,
    cfg: &PolicyConfig,
) -> f64 {
    if decided.reason != Reason::DisplacesSheddable {
        return 0.0;
    }
    let cost = decided.predicted_cost_us;
    let short_own = cost * job.error_margin.max(1.0) - (job.remaining_budget_us * cfg.budget_use - place.wait_us);
    let short_after = cost - place.slack_us;
    short_after.max(short_own * permits.max(1) as f64).max(0.0)
}

/// A queued sheddable job's decision once it gives way to critical work: run at its floor if
/// that is less than it was granted, or `None`: dropped (reason `Displaced` either way).
pub fn displaced(job: &JobProfile, decided: &Decision) -> Option<Decision> {
    let floor = job.floor_units().filter(|&f| f > 0 && f < decided.units_granted)?;
    let cost = job.on_chunks(decided.chunks).cost_us(floor);
    Some(Decision {
        strategy: Strategy::Degrade,
        reason: Reason::Displaced,
        units_granted: floor,
        predicted_cost_us: cost,
        error_factor: job.error_factor(floor),
        ..*decided
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 000 units at 0.01 us plus 5 us: 1 005 us in full, its floor 5 120 units (56 us);
    /// 20 ms of budget, of which 16 ms usable. Not splittable, not batchable.
    fn job(criticality: Criticality) -> JobProfile {
        JobProfile {
            remaining_budget_us: 20_000.0,
            criticality,
            units: 100_000,
            block: 1024,
            fixed_us: 5.0,
            per_unit_us: 0.01,
            scaling_potential: 0.0,
            floor_fraction: Some(0.05),
            error_exponent: 0.5,
            splittable: false,
            batch_delay_us: None,
            batch_open: false,
            allow_async_lanes: true,
            spent_before_us: 0.0,
            error_margin: 1.0,
        }
    }

    fn busy() -> Pressure {
        Pressure {
            permits: 2,
            permits_in_use: 2,
            queue_depth: 10,
            queue_capacity: 64,
            queued_work_us: 30_000.0,
            running_work_us: 2_000.0,
        }
    }

    /// A queue with `wait_us` ahead of the job and `slack_us` behind it, of which sheddable work
    /// makes up `sheddable_ahead_us` ahead (per permit) and `sheddable_after_us` of the slack.
    fn place(wait_us: f64, slack_us: f64, sheddable_ahead_us: f64, sheddable_after_us: f64) -> Placement {
        Placement {
            wait_us,
            wait_critical_us: wait_us - sheddable_ahead_us,
            slack_us,
            slack_critical_us: slack_us + sheddable_after_us,
            ration: Ration::NONE,
        }
    }

    type Expected = (Strategy, Reason, u64);

    /// A plain cap: every job may cost up to `cap_us`.
    fn capped(cap_us: f64) -> Ration {
        Ration { whole_us: 0.0, keep: 1.0, cap_us }
    }

    /// Jobs costing up to `whole_us` run whole, dearer ones at half their cost.
    fn half(whole_us: f64) -> Ration {
        Ration { whole_us, keep: 0.5, cap_us: f64::INFINITY }
    }

    #[test]
    fn the_acceptance_test_admits_displaces_degrades_or_drops() {
        let cfg = PolicyConfig { admission: super::super::Admission::Deadline, ..PolicyConfig::default() };
        let (critical, sheddable) = (job(Criticality::Critical), job(Criticality::Sheddable));
        let full = 100_000;
        // 16 000 us usable. Room for 500 us is 48 whole blocks at 0.01 us a unit and 5 us fixed:
        // 49 152 units; for 230 us, 21 blocks (21 504 units).
        let cases: Vec<(&str, JobProfile, Placement, Expected)> = vec![
            (
                "room to spare",
                critical,
                place(1_000.0, 50_000.0, 0.0, 0.0),
                (Strategy::CpuLane, Reason::FitsBudget, full),
            ),
            (
                "a long queue ahead, but due later: the wait is what is due before it",
                critical,
                place(14_500.0, 50_000.0, 0.0, 0.0),
                (Strategy::CpuLane, Reason::FitsBudget, full),
            ),
            (
                "it fits its own deadline but would make a queued job late: degraded to the slack",
                critical,
                place(1_000.0, 500.0, 0.0, 0.0),
                (Strategy::Degrade, Reason::DegradedToFit, 49_152),
            ),
            (
                "sheddable work due after it gives way for a critical job",
                critical,
                place(1_000.0, 500.0, 0.0, 2_000.0),
                (Strategy::CpuLane, Reason::DisplacesSheddable, full),
            ),
            (
                "sheddable work ahead of it gives way for a critical job",
                critical,
                place(15_500.0, 50_000.0, 2_000.0, 0.0),
                (Strategy::CpuLane, Reason::DisplacesSheddable, full),
            ),
            (
                "a sheddable job makes nobody give way: degraded to fit",
                sheddable,
                place(1_000.0, 500.0, 0.0, 2_000.0),
                (Strategy::Degrade, Reason::DegradedToFit, 49_152),
            ),
            (
                "a sheddable job with room only for its floor",
                sheddable,
                place(1_000.0, 60.0, 0.0, 0.0),
                (Strategy::Degrade, Reason::ShedToFloor, 5 * 1024),
            ),
            (
                "a sheddable job below its floor",
                sheddable,
                place(1_000.0, 40.0, 0.0, 50_000.0),
                (Strategy::Drop, Reason::ShedUnderPressure, 0),
            ),
            (
                "a critical job whose floor cannot be placed even with every sheddable job gone",
                critical,
                place(15_990.0, 40.0, 0.0, 0.0),
                (Strategy::Drop, Reason::BudgetUnreachable, 0),
            ),
            (
                "critical and not degradable: displaces or drops, never degrades",
                JobProfile { floor_fraction: None, ..critical },
                place(1_000.0, 500.0, 0.0, 0.0),
                (Strategy::Drop, Reason::BudgetUnreachable, 0),
            ),
            (
                "sheddable work gives way before a critical job is degraded",
                critical,
                place(1_000.0, 600.0, 0.0, 5_000.0),
                (Strategy::CpuLane, Reason::DisplacesSheddable, full),
            ),
            (
                "too big even with sheddable work gone: degraded to what fits with it gone",
                critical,
                place(1_000.0, 30.0, 0.0, 200.0),
                (Strategy::Degrade, Reason::DisplacesSheddable, 21 * 1024),
            ),
            (
                "more work offered than the lane serves: an expensive job runs at its ration",
                critical,
                Placement { ration: capped(500.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::Degrade, Reason::Rationed, 49_152),
            ),
            (
                "a ration below its floor: a critical job keeps its floor",
                critical,
                Placement { ration: capped(20.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::Degrade, Reason::Rationed, 5 * 1024),
            ),
            (
                "a ration below its floor: a sheddable job is shed",
                sheddable,
                Placement { ration: capped(20.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::Drop, Reason::Rationed, 0),
            ),
            (
                "a rationed job that still does not fit is degraded to fit",
                critical,
                Placement { ration: capped(500.0), ..place(1_000.0, 230.0, 0.0, 0.0) },
                (Strategy::Degrade, Reason::DegradedToFit, 21 * 1024),
            ),
            (
                "a ration that keeps half: a job dearer than its whole share runs at half its cost",
                critical,
                Placement { ration: half(500.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::Degrade, Reason::Rationed, 49_152),
            ),
            (
                "a ration that keeps half: a job within its whole share runs whole",
                sheddable,
                Placement { ration: half(2_000.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::CpuLane, Reason::FitsBudget, full),
            ),
            (
                "a ration that keeps half, and caps: the cap takes over below half its cost",
                critical,
                Placement { ration: Ration { cap_us: 230.0, ..half(0.0) }, ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::Degrade, Reason::Rationed, 21 * 1024),
            ),
            (
                "a job that costs less than its ration runs whole",
                sheddable,
                Placement { ration: capped(2_000.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) },
                (Strategy::CpuLane, Reason::FitsBudget, full),
            ),
            (
                // 1 500 us left after the wait: room for 750 us at twice the cost, 72 blocks.
                "a kernel whose runs are slow at p99: its own finish is planned at its margin",
                JobProfile { error_margin: 2.0, ..critical },
                place(14_500.0, 50_000.0, 0.0, 0.0),
                (Strategy::Degrade, Reason::DegradedToFit, 72 * 1024),
            ),
            (
                "the budget is gone",
                JobProfile { remaining_budget_us: 0.0, ..critical },
                place(0.0, 50_000.0, 0.0, 0.0),
                (Strategy::Drop, Reason::DeadlinePassed, 0),
            ),
        ];
        for (name, j, p, expected) in cases {
            let d = decide_placed(&j, &busy(), &p, &cfg);
            assert_eq!((d.strategy, d.reason, d.units_granted), expected, "{name}: {d:?}");
            let usable = j.remaining_budget_us * cfg.budget_use;
            let displace_us = displacement(&j, &d, &p, busy().permits, &cfg);
            match d.reason {
                _ if d.strategy == Strategy::Drop => assert_eq!(d.units_granted, 0, "{name}"),
                Reason::FitsBudget | Reason::DegradedToFit | Reason::ShedToFloor | Reason::Rationed => {
                    assert_eq!(displace_us, 0.0, "{name}");
                    let own = (usable - p.wait_us) / j.error_margin;
                    assert!(d.predicted_cost_us <= own.min(p.slack_us) + 1e-9, "{name}: {d:?}");
                }
                Reason::DisplacesSheddable => {
                    assert!(displace_us > 0.0, "{name}: {d:?}");
                    assert!(d.predicted_cost_us <= (usable - p.wait_critical_us).min(p.slack_critical_us) + 1e-9);
                }
                _ => assert_eq!(d.units_granted, 0, "{name}"),
            }
        }
    }

    #[test]
    fn displacement_asks_for_what_the_job_lacks_behind_it_and_for_its_own_start() {
        let cfg = PolicyConfig::default();
        let critical = job(Criticality::Critical);
        // It lacks 505 us of slack behind it: that much sheddable work must go.
        let behind = place(1_000.0, 500.0, 0.0, 2_000.0);
        let d = decide_placed(&critical, &busy(), &behind, &cfg);
        assert!((displacement(&critical, &d, &behind, 2, &cfg) - 505.0).abs() < 1e-9, "{d:?}");
        // It lacks 505 us of its own start: that much on each of the two permits.
        let ahead = place(15_500.0, 50_000.0, 2_000.0, 0.0);
        let d = decide_placed(&critical, &busy(), &ahead, &cfg);
        assert!((displacement(&critical, &d, &ahead, 2, &cfg) - 1_010.0).abs() < 1e-9, "{d:?}");
        // Nothing to displace for a job that fits.
        let fits = decide_placed(&critical, &busy(), &place(1_000.0, 50_000.0, 0.0, 0.0), &cfg);
        assert_eq!(displacement(&critical, &fits, &behind, 2, &cfg), 0.0);
    }

    #[test]
    fn cheap_jobs_and_a_full_queue_are_decided_as_before() {
        let cfg = PolicyConfig::default();
        let tiny = JobProfile { units: 1000, ..job(Criticality::Critical) };
        let idle = Pressure { permits_in_use: 0, queue_depth: 0, ..busy() };
        assert_eq!(decide_placed(&tiny, &idle, &Placement::default(), &cfg).strategy, Strategy::Inline);
        let full_queue = Pressure { queue_depth: 64, ..busy() };
        let d = decide_placed(&job(Criticality::Critical), &full_queue, &place(0.0, 1e6, 0.0, 0.0), &cfg);
        assert_eq!((d.strategy, d.reason), (Strategy::Drop, Reason::QueueFull));
        // A batchable job joins a batch when the batch's delay fits too.
        let batchable = JobProfile { batch_delay_us: Some(2_000.0), ..job(Criticality::Critical) };
        let d = decide_placed(&batchable, &busy(), &place(1_000.0, 50_000.0, 0.0, 0.0), &cfg);
        assert_eq!((d.strategy, d.reason), (Strategy::Batch, Reason::SharedWork));
        let d = decide_placed(&batchable, &busy(), &place(14_500.0, 50_000.0, 0.0, 0.0), &cfg);
        assert_eq!((d.strategy, d.reason), (Strategy::CpuLane, Reason::FitsBudget), "no time to wait for partners");
        // Under a ration, a job opens no batch (alone, it would cost its whole self) but joins
        // an open one (it adds only its share).
        let rationed = Placement { ration: capped(500.0), ..place(1_000.0, 50_000.0, 0.0, 0.0) };
        let d = decide_placed(&batchable, &busy(), &rationed, &cfg);
        assert_eq!((d.strategy, d.reason), (Strategy::Degrade, Reason::Rationed));
        let d = decide_placed(&JobProfile { batch_open: true, ..batchable }, &busy(), &rationed, &cfg);
        assert_eq!((d.strategy, d.reason, d.units_granted), (Strategy::Batch, Reason::SharedWork, 100_000));
    }

    #[test]
    fn displaced_work_runs_at_its_floor_or_not_at_all() {
        let cfg = PolicyConfig::default();
        let j = job(Criticality::Sheddable);
        let full = decide_placed(&j, &busy(), &place(1_000.0, 50_000.0, 0.0, 0.0), &cfg);
        let d = displaced(&j, &full).expect("a floor below its grant");
        assert_eq!((d.strategy, d.reason, d.units_granted), (Strategy::Degrade, Reason::Displaced, 5 * 1024));
        assert_eq!((d.predicted_cost_us, d.error_factor), (j.cost_us(5 * 1024), j.error_factor(5 * 1024)));
        assert_eq!(displaced(&j, &d), None, "already at its floor: dropped");
        assert_eq!(displaced(&JobProfile { floor_fraction: None, ..j }, &full), None, "no floor: dropped");
    }
}
