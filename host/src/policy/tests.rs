//! The policy alone, table-driven: every strategy, the degrade arithmetic, every drop reason
//! and the transitions as pressure rises.

use super::*;

fn job() -> JobProfile {
    JobProfile {
        remaining_budget_us: 50_000.0,
        criticality: Criticality::Critical,
        units: 100_000,
        block: 1024,
        fixed_us: 5.0,
        per_unit_us: 0.01,
        scaling_potential: 0.95,
        floor_fraction: Some(0.05),
        error_exponent: 0.5,
        splittable: true,
        batch_delay_us: None,
        batch_open: false,
        allow_async_lanes: true,
        spent_before_us: 0.0,
        error_margin: 1.0,
    }
}

fn idle() -> Pressure {
    Pressure {
        permits: 2,
        permits_in_use: 0,
        queue_depth: 0,
        queue_capacity: 64,
        queued_work_us: 0.0,
        running_work_us: 0.0,
    }
}

fn busy(queue_depth: usize, queued_work_us: f64) -> Pressure {
    Pressure { permits_in_use: 2, queue_depth, queued_work_us, running_work_us: 2_000.0, ..idle() }
}

#[test]
fn each_strategy_where_it_belongs() {
    let cfg = PolicyConfig::default();
    let cases: Vec<(&str, JobProfile, Pressure, Strategy, Reason)> = vec![
        ("tiny job", JobProfile { units: 1000, ..job() }, idle(), Strategy::Inline, Reason::CheapInline),
        ("small job", JobProfile { units: 10_000, ..job() }, idle(), Strategy::Spawn, Reason::CheapSpawn),
        ("heavy, below split size", job(), idle(), Strategy::CpuLane, Reason::FitsBudget),
        (
            "heavy and parallel on idle",
            JobProfile { per_unit_us: 0.2, ..job() },
            idle(),
            Strategy::Split,
            Reason::IdleParallel,
        ),
        (
            "heavy, one permit free",
            JobProfile { per_unit_us: 0.2, ..job() },
            Pressure { permits_in_use: 1, ..idle() },
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
        (
            "heavy, serial kernel",
            JobProfile { per_unit_us: 0.2, scaling_potential: 0.1, ..job() },
            idle(),
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
        (
            "heavy, cannot split",
            JobProfile { per_unit_us: 0.2, splittable: false, ..job() },
            idle(),
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
        (
            "batchable, a batch is open",
            JobProfile { batch_delay_us: Some(2_000.0), batch_open: true, ..job() },
            idle(),
            Strategy::Batch,
            Reason::SharedWork,
        ),
        (
            "batchable, lane backed up",
            JobProfile { batch_delay_us: Some(2_000.0), ..job() },
            busy(2, 1_000.0),
            Strategy::Batch,
            Reason::SharedWork,
        ),
        (
            "batchable but alone on an idle lane",
            JobProfile { batch_delay_us: Some(2_000.0), ..job() },
            idle(),
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
        (
            "batchable but no time to wait",
            JobProfile { batch_delay_us: Some(2_000.0), batch_open: true, remaining_budget_us: 2_500.0, ..job() },
            idle(),
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
        (
            "too slow in full",
            JobProfile { remaining_budget_us: 500.0, ..job() },
            idle(),
            Strategy::Degrade,
            Reason::DegradedToFit,
        ),
        (
            "cheap wasm job stays off async threads",
            JobProfile { units: 1000, allow_async_lanes: false, ..job() },
            idle(),
            Strategy::CpuLane,
            Reason::FitsBudget,
        ),
    ];
    for (name, j, p, strategy, reason) in cases {
        let d = decide(&j, &p, &cfg);
        assert_eq!((d.strategy, d.reason), (strategy, reason), "{name}: {d:?}");
    }
}

#[test]
fn every_drop_reason() {
    let cfg = PolicyConfig::default();
    let cases: Vec<(&str, JobProfile, Pressure, Reason)> = vec![
        ("budget spent", JobProfile { remaining_budget_us: 0.0, ..job() }, idle(), Reason::DeadlinePassed),
        ("floor too slow", JobProfile { remaining_budget_us: 30.0, ..job() }, idle(), Reason::BudgetUnreachable),
        (
            "not degradable and too slow",
            JobProfile { remaining_budget_us: 500.0, floor_fraction: None, ..job() },
            idle(),
            Reason::BudgetUnreachable,
        ),
        ("queue at cap", job(), Pressure { queue_depth: 64, ..busy(64, 1e5) }, Reason::QueueFull),
        (
            "sheddable under pressure, floor misses",
            JobProfile { criticality: Criticality::Sheddable, remaining_budget_us: 5_000.0, ..job() },
            busy(40, 20_000.0),
            Reason::ShedUnderPressure,
        ),
        (
            "sheddable under pressure, not degradable",
            JobProfile { criticality: Criticality::Sheddable, floor_fraction: None, ..job() },
            busy(40, 1_000.0),
            Reason::ShedUnderPressure,
        ),
    ];
    for (name, j, p, reason) in cases {
        let d = decide(&j, &p, &cfg);
        assert_eq!((d.strategy, d.reason, d.units_granted), (Strategy::Drop, reason, 0), "{name}: {d:?}");
    }
}

#[test]
fn degrade_grants_whole_blocks_that_fit_and_reports_the_wider_error() {
    let cfg = PolicyConfig::default();
    let j = JobProfile { remaining_budget_us: 500.0, ..job() };
    let one_free = Pressure { permits_in_use: 1, ..idle() };
    let d = decide(&j, &one_free, &cfg);
    // 80% of 500 us, less 5 us fixed, at 0.01 us per unit: 39 500 units, rounded down to 38 blocks.
    assert_eq!(d.units_granted, 38 * 1024);
    assert!(d.predicted_cost_us <= 400.0);
    assert!((d.error_factor - (100_000.0f64 / (38.0 * 1024.0)).sqrt()).abs() < 1e-12);
    // The floor is 5% of the request, rounded up to whole blocks.
    assert_eq!(j.floor_units(), Some(5 * 1024));
    assert_eq!(JobProfile { units: 100, ..j }.floor_units(), Some(100), "never above the request");
}

#[test]
fn sheddable_work_goes_to_its_floor_under_pressure_while_critical_work_keeps_its_units() {
    let cfg = PolicyConfig::default();
    let pressure = busy(40, 4_000.0);
    let shed = decide(&JobProfile { criticality: Criticality::Sheddable, ..job() }, &pressure, &cfg);
    assert_eq!((shed.strategy, shed.reason, shed.units_granted), (Strategy::Degrade, Reason::ShedToFloor, 5 * 1024));
    let crit = decide(&job(), &pressure, &cfg);
    assert_eq!((crit.strategy, crit.units_granted), (Strategy::CpuLane, 100_000));
}

/// As the lane backs up, sheddable work gives way first: from 5 ms of predicted wait it runs at
/// its floor (or not at all), while a critical job under the same pressure keeps every unit
/// until its own budget no longer fits.
#[test]
fn sheddable_work_gives_way_before_critical_work_misses_its_budget() {
    let cfg = PolicyConfig::default();
    let shed = JobProfile { criticality: Criticality::Sheddable, ..job() };
    // (queued work in us, expected sheddable, expected critical); running work adds 1 ms of wait.
    let (full, floor) = (100_000, 5 * 1024);
    type Expected = (Strategy, Reason, u64);
    let cases: Vec<(f64, Expected, Expected)> = vec![
        (0.0, (Strategy::CpuLane, Reason::FitsBudget, full), (Strategy::CpuLane, Reason::FitsBudget, full)),
        (8_000.0, (Strategy::CpuLane, Reason::FitsBudget, full), (Strategy::CpuLane, Reason::FitsBudget, full)),
        (9_000.0, (Strategy::Degrade, Reason::ShedToFloor, floor), (Strategy::CpuLane, Reason::FitsBudget, full)),
        (40_000.0, (Strategy::Degrade, Reason::ShedToFloor, floor), (Strategy::CpuLane, Reason::FitsBudget, full)),
        (70_000.0, (Strategy::Degrade, Reason::ShedToFloor, floor), (Strategy::CpuLane, Reason::FitsBudget, full)),
        (
            77_000.0,
            (Strategy::Degrade, Reason::ShedToFloor, floor),
            (Strategy::Degrade, Reason::DegradedToFit, 97 * 1024),
        ),
        (80_000.0, (Strategy::Drop, Reason::ShedUnderPressure, 0), (Strategy::Drop, Reason::BudgetUnreachable, 0)),
    ];
    for (queued, s, c) in cases {
        let p = busy(4, queued);
        let ds = decide(&shed, &p, &cfg);
        let dc = decide(&job(), &p, &cfg);
        let wait = p.predicted_wait_us();
        assert_eq!((ds.strategy, ds.reason, ds.units_granted), s, "sheddable at {wait} us wait: {ds:?}");
        assert_eq!((dc.strategy, dc.reason, dc.units_granted), c, "critical at {wait} us wait: {dc:?}");
    }
}

#[test]
fn rising_pressure_moves_a_job_from_full_to_degraded_to_dropped() {
    let cfg = PolicyConfig::default();
    let j = JobProfile { remaining_budget_us: 10_000.0, ..job() };
    let mut seen = Vec::new();
    for queued_ms in [0.0, 4.0, 8.0, 12.0, 14.0, 15.4, 16.0, 30.0] {
        let d = decide(&j, &busy(4, queued_ms * 1000.0), &cfg);
        if seen.last() != Some(&d.strategy) {
            seen.push(d.strategy);
        }
    }
    assert_eq!(seen, vec![Strategy::CpuLane, Strategy::Degrade, Strategy::Drop]);
}

/// Invariants over a grid of jobs and pressures: grants never exceed requests, a degrade never
/// goes below the floor, and every CPU-lane plan fits the usable budget after the wait.
#[test]
fn decisions_respect_budget_floor_and_request_everywhere() {
    let cfg = PolicyConfig::default();
    for budget in [0.0, 50.0, 300.0, 1e3, 1e4, 1e5] {
        for per_unit in [1e-4, 0.01, 0.3] {
            for units in [1u64, 1000, 100_000, 3_000_000] {
                for (depth, work) in [(0, 0.0), (3, 5e3), (40, 1e5), (64, 1e6)] {
                    for crit in [Criticality::Critical, Criticality::Sheddable] {
                        let j = JobProfile {
                            remaining_budget_us: budget,
                            per_unit_us: per_unit,
                            units,
                            criticality: crit,
                            ..job()
                        };
                        let p = if depth == 0 { idle() } else { busy(depth, work) };
                        let d = decide(&j, &p, &cfg);
                        assert!(d.units_granted <= units, "{d:?}");
                        match d.strategy {
                            Strategy::Drop => assert_eq!(d.units_granted, 0),
                            Strategy::Degrade => {
                                assert!(
                                    d.units_granted >= j.floor_units().unwrap() && d.units_granted < units,
                                    "{j:?} {p:?} {d:?}"
                                );
                                assert!(d.predicted_wait_us + d.predicted_cost_us <= budget * cfg.budget_use + 1e-9);
                            }
                            Strategy::CpuLane | Strategy::Split | Strategy::Batch => {
                                assert_eq!(d.units_granted, units);
                                assert!(d.predicted_wait_us + d.predicted_cost_us <= budget * cfg.budget_use + 1e-9);
                            }
                            Strategy::Inline | Strategy::Spawn => assert!(d.predicted_cost_us <= cfg.spawn_max_us),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_degraded_job_on_an_idle_lane_still_uses_every_free_permit() {
    let cfg = PolicyConfig::default();
    let j = JobProfile { per_unit_us: 0.2, remaining_budget_us: 5_000.0, ..job() };
    let d = decide(&j, &idle(), &cfg);
    assert_eq!((d.strategy, d.chunks), (Strategy::Degrade, 2));
    // Two chunks at 95% scaling: the per-unit cost is 0.2 * (0.05 + 0.475) = 0.105 us.
    assert_eq!(d.units_granted, ((4_000.0 - 5.0) / 0.105) as u64 / 1024 * 1024);
    let busy_lane = decide(&j, &Pressure { permits_in_use: 1, ..idle() }, &cfg);
    assert_eq!((busy_lane.strategy, busy_lane.chunks), (Strategy::Degrade, 1));
    assert!(busy_lane.units_granted < d.units_granted);
}

/// A queued job re-checked when it reaches a permit: the decision stands while it still fits
/// what is left of the budget, shrinks to the whole blocks that fit (never below the floor, never
/// above what was granted), or drops with the reason.
#[test]
fn redecide_keeps_shrinks_or_drops_a_queued_job() {
    let cfg = PolicyConfig::default();
    // 100 000 units at 0.01 us plus 5 us: 1 005 us in full, on one permit.
    let serial = JobProfile { splittable: false, ..job() };
    let full = decide(&serial, &busy(2, 1_000.0), &cfg);
    assert_eq!((full.strategy, full.units_granted), (Strategy::CpuLane, 100_000));
    let degraded =
        Decision { strategy: Strategy::Degrade, reason: Reason::DegradedToFit, units_granted: 50 * 1024, ..full };
    // Twice the cost per unit: 2 005 us in full on one permit, 1 055 us on two (95% parallel).
    let heavy = JobProfile { per_unit_us: 0.02, ..job() };
    let split = Decision { strategy: Strategy::Split, chunks: 2, ..decide(&heavy, &idle(), &cfg) };
    type Expected = (Strategy, Reason, u64);
    let cases: Vec<(&str, JobProfile, Decision, f64, usize, Expected)> = vec![
        ("plenty left", serial, full, 50_000.0, 1, (Strategy::CpuLane, Reason::FitsBudget, 100_000)),
        ("just fits: 80% of 1 257 us", serial, full, 1_257.0, 1, (Strategy::CpuLane, Reason::FitsBudget, 100_000)),
        // 80% of 500 us, less 5 us, at 0.01 us a unit: 39 500 units, 38 whole blocks.
        ("the wait ate most of it", serial, full, 500.0, 1, (Strategy::Degrade, Reason::DegradedToFit, 38 * 1024)),
        ("the floor no longer fits", serial, full, 30.0, 1, (Strategy::Drop, Reason::BudgetUnreachable, 0)),
        (
            "not degradable",
            JobProfile { floor_fraction: None, ..serial },
            full,
            500.0,
            1,
            (Strategy::Drop, Reason::BudgetUnreachable, 0),
        ),
        ("deadline reached", serial, full, 0.0, 1, (Strategy::Drop, Reason::DeadlinePassed, 0)),
        ("deadline long gone", serial, full, -1e6, 1, (Strategy::Drop, Reason::DeadlinePassed, 0)),
        (
            "already degraded and fits: not raised",
            serial,
            degraded,
            50_000.0,
            1,
            (Strategy::Degrade, Reason::DegradedToFit, 50 * 1024),
        ),
        (
            "split on the two permits it planned",
            heavy,
            split,
            2_000.0,
            2,
            (Strategy::Split, Reason::IdleParallel, 100_000),
        ),
        // One permit free: 80% of 2 000 us, less 5 us, at 0.02 us a unit: 79 750 units, 77 blocks.
        ("split, but one permit free", heavy, split, 2_000.0, 1, (Strategy::Degrade, Reason::DegradedToFit, 77 * 1024)),
        (
            "two permits, but not splittable",
            JobProfile { splittable: false, ..heavy },
            split,
            2_000.0,
            2,
            (Strategy::Degrade, Reason::DegradedToFit, 77 * 1024),
        ),
    ];
    for (name, j, decided, remaining_us, permits, expected) in cases {
        let d = redecide(&j, &decided, remaining_us, permits, &cfg);
        assert_eq!((d.strategy, d.reason, d.units_granted), expected, "{name}: {d:?}");
        assert_eq!((d.units_requested, d.predicted_wait_us), (decided.units_requested, decided.predicted_wait_us));
        match d.strategy {
            Strategy::Drop => assert_eq!(d.chunks, 1, "{name}"),
            _ if d == decided => {}
            _ => {
                let on = j.on_chunks(if j.splittable { permits } else { 1 });
                assert_eq!(d.predicted_cost_us, on.cost_us(d.units_granted), "{name}");
                assert!(d.predicted_cost_us <= remaining_us * cfg.budget_use, "{name}: {d:?}");
                assert_eq!(d.error_factor, j.error_factor(d.units_granted), "{name}");
                assert!(d.units_granted >= j.floor_units().unwrap(), "{name}");
            }
        }
    }
}

#[test]
fn amdahl_shares_only_the_parallel_part() {
    assert_eq!(amdahl(0.95, 1), 1.0);
    assert_eq!(amdahl(0.95, 0), 1.0, "no chunks still means one run");
    assert!((amdahl(0.95, 2) - 0.525).abs() < 1e-15);
    assert!((amdahl(0.5, 4) - 0.625).abs() < 1e-15);
    assert_eq!(amdahl(0.0, 8), 1.0);
    assert_eq!(job().on_chunks(2).per_unit_us, job().per_unit_us * amdahl(0.95, 2));
    assert!((job().error_factor(25_000) - 2.0).abs() < 1e-15);
    assert_eq!(job().error_factor(0), f64::INFINITY);
}

/// A drop the job's own budget causes, whatever the lane's state, is told apart from one the
/// load causes: only the first can never succeed on retry.
#[test]
fn never_fits_only_when_even_an_idle_lane_misses_the_floor() {
    let cfg = PolicyConfig::default();
    // Floor 5 120 units at 0.01 us each on two chunks: about 27 us; the budget leaves 0.8 of it.
    let j = JobProfile { remaining_budget_us: 30.0, ..job() };
    assert_eq!(decide(&j, &idle(), &cfg).reason, Reason::BudgetUnreachable);
    assert!(never_fits(&j, 2, &cfg));
    // Behind a queue, a job whose floor fits an idle lane is dropped, but only for now.
    let j = JobProfile { remaining_budget_us: 1_000.0, ..job() };
    assert_eq!(decide(&j, &busy(10, 5_000.0), &cfg).reason, Reason::BudgetUnreachable);
    assert!(!never_fits(&j, 2, &cfg));
    // A job that cannot degrade must fit whole; one that cannot split gets one permit.
    let whole = JobProfile { floor_fraction: None, remaining_budget_us: 500.0, ..job() };
    assert!(never_fits(&whole, 2, &cfg) && !never_fits(&JobProfile { remaining_budget_us: 2_000.0, ..whole }, 2, &cfg));
    let serial = JobProfile { splittable: false, remaining_budget_us: 60.0, ..job() };
    assert!(never_fits(&serial, 2, &cfg) && !never_fits(&JobProfile { splittable: true, ..serial }, 2, &cfg));
    // Budget spent behind a balancer is lost to this attempt, not to every attempt: the job
    // is dropped for now (the fleet soak found 422s for jobs delayed in a loaded nginx).
    let delayed = JobProfile { remaining_budget_us: 30.0, spent_before_us: 970.0, ..job() };
    assert_eq!(decide(&delayed, &idle(), &cfg).reason, Reason::BudgetUnreachable);
    assert!(!never_fits(&delayed, 2, &cfg));
}
