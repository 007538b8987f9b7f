//! The open-loop engine: a scheduler issues each job at its due instant, whatever the target is
//! doing, as its own task; latency runs from the due instant, so a stalled target or a late
//! scheduler shows in the numbers instead of hiding (no coordinated omission).

use super::record::{Recorder, Sample};
use super::target::{Failure, Observed};
use crate::job::Job;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Called as the run goes: (jobs issued so far, jobs in flight, seconds into the schedule).
pub type Progress<'a> = &'a (dyn Fn(u64, usize, f64) + Sync);

/// Issues `make_job(i)` at each offset of `schedule` through `submit`, at most `max_in_flight`
/// at once (a job due when the cap is reached is not issued, and counts as a generator-side
/// failure), and waits for every answer.
pub async fn drive<S, J, F, Fut>(
    schedule: S,
    mut make_job: J,
    submit: F,
    max_in_flight: usize,
    progress: Progress<'_>,
) -> Recorder
where
    S: Iterator<Item = Duration>,
    J: FnMut(u64) -> Job,
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Observed> + Send + 'static,
{
    // Waiting for every slot at the end takes a u32 count.
    let cap = max_in_flight.clamp(1, u32::MAX as usize);
    let submit = Arc::new(submit);
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let slots = Arc::new(Semaphore::new(cap));
    let start = Instant::now();
    let mut issued = 0u64;
    for (i, offset) in schedule.enumerate() {
        let due = start + offset;
        tokio::time::sleep_until(due).await;
        let job = make_job(i as u64);
        let (criticality, budget_us) = (job.criticality, job.budget.as_micros() as u64);
        let kernel = match job.runtime {
            Some(r) => format!("{} ({})", job.kernel, r.as_str()),
            None => job.kernel.clone(),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let sample = Sample {
                kernel,
                criticality,
                budget_us,
                arrival_us: offset.as_micros() as u64,
                latency_us: 0,
                lateness_us: 0,
                observed: Observed::failed(Failure::NotIssued),
            };
            lock(&recorder).record(&sample);
            continue;
        };
        let (submit, recorder) = (submit.clone(), recorder.clone());
        let arrival_us = offset.as_micros() as u64;
        tokio::spawn(async move {
            let issued_at = Instant::now();
            // The deadline is fixed at the due instant: a job issued late has that much less
            // budget left, and the router is told so (as a client forwards a deadline).
            let mut job = job;
            job.budget = job.budget.saturating_sub(issued_at - due).max(Duration::from_micros(1));
            let observed = submit(job).await;
            let done = Instant::now();
            let sample = Sample {
                kernel,
                criticality,
                budget_us,
                arrival_us,
                latency_us: (done - due).as_micros() as u64,
                lateness_us: (issued_at - due).as_micros() as u64,
                observed,
            };
            lock(&recorder).record(&sample);
            drop(slot);
        });
        issued += 1;
        if issued.is_multiple_of(64) {
            progress(issued, cap - slots.available_permits(), offset.as_secs_f64());
        }
    }
    // Every slot back means every issued job has answered.
    let _ = slots.acquire_many(cap as u32).await;
    lock(&recorder).clone()
}

fn lock(r: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Criticality;
    use crate::load::report::RunReport;
    use crate::load::schedule::{Arrivals, Schedule};
    use crate::outcome::Status;
    use crate::policy::Strategy;
    use helix_math::Params;

    fn job(i: u64) -> Job {
        let mut j = Job::new(i, "k", Params::new(), Duration::from_millis(50));
        if i % 2 == 1 {
            j.criticality = Criticality::Sheddable;
        }
        j
    }

    fn completed() -> Observed {
        Observed {
            status: Status::Completed,
            strategy: Some(Strategy::CpuLane),
            reason: None,
            units_requested: 1,
            units_granted: 1,
            queue_us: Some(0),
            failure: None,
            version: None,
            error: None,
            predicted_cost_us: Some(100.0),
            predicted_wait_us: Some(0.0),
            service_us: Some(100),
            batch_size: None,
            router_total_us: Some(100),
        }
    }

    fn constant(rate: f64, secs: u64) -> Schedule {
        Schedule::new(Arrivals::Constant, rate, Duration::from_secs(secs), 1).unwrap()
    }

    // Paused time: the clock moves only when every task waits, so these runs are exact.
    #[tokio::test(start_paused = true)]
    async fn jobs_are_issued_on_schedule_and_timed_from_it() {
        let issued = Arc::new(Mutex::new(Vec::new()));
        let log = issued.clone();
        let start = Instant::now();
        let rec = drive(
            constant(100.0, 2),
            job,
            move |_| {
                log.lock().unwrap().push(Instant::now() - start);
                async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    completed()
                }
            },
            10_000,
            &|_, _, _| {},
        )
        .await;
        let issued = issued.lock().unwrap();
        assert_eq!(issued.len(), 200);
        for (i, t) in issued.iter().enumerate() {
            assert_eq!(*t, Duration::from_millis(10 * i as u64), "job {i}");
        }
        let r = RunReport::new("t", "constant", 100.0, 2.0, &rec);
        assert!(r.balanced());
        assert_eq!((r.all.counts.completed, r.critical.counts.offered, r.sheddable.counts.offered), (200, 100, 100));
        // Three jobs overlap at any time: open loop, not one at a time.
        // Every job took exactly 30 ms (HdrHistogram reports the top of a 3-digit bucket).
        let e = r.all.end_to_end_us;
        assert!(e.p50 >= 30_000 && e.max <= 30_050, "{e:?}");
        assert_eq!(r.goodput, 100.0);
    }

    /// A target that answers in 1 ms, except that everything arriving in [1 s, 1.5 s) waits
    /// until 1.5 s: the stall must show in the percentiles, job by job from its due time.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_target_shows_its_stall_in_the_percentiles() {
        let start = Instant::now();
        let rec = drive(
            constant(1000.0, 4),
            job,
            move |_| async move {
                let now = Instant::now() - start;
                if now >= Duration::from_millis(1000) && now < Duration::from_millis(1500) {
                    tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                completed()
            },
            100_000,
            &|_, _, _| {},
        )
        .await;
        let r = RunReport::new("t", "constant", 1000.0, 4.0, &rec);
        let e = r.all.end_to_end_us;
        assert_eq!(e.count, 4000);
        // 500 of 4000 jobs (12.5%) waited up to 500 ms: p90 lands inside the stall, p99 near its top.
        assert_eq!(e.p50, 1000);
        assert!(e.p90 >= 100_000 && e.p90 <= 110_000, "{e:?}");
        assert!(e.p99 >= 460_000, "{e:?}");
        assert!(e.max >= 500_000 && e.max <= 502_000, "{e:?}");
        // Budgets are 50 ms: the stalled jobs missed, and goodput shows it.
        assert!(r.all.within_budget >= 3500 && r.all.within_budget <= 3560, "{}", r.all.within_budget);
    }

    /// The scheduler itself stalls (the target blocks the only runtime thread for 300 ms): the
    /// jobs due meanwhile go out late, and their latency counts from when they were due.
    #[tokio::test(flavor = "current_thread")]
    async fn a_late_scheduler_is_charged_to_the_latency_not_hidden() {
        let blocked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rec = drive(
            constant(500.0, 2),
            job,
            move |j| {
                let blocked = blocked.clone();
                async move {
                    if j.id == 250 && !blocked.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        // Blocks the runtime: no job can be issued until it returns.
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    completed()
                }
            },
            100_000,
            &|_, _, _| {},
        )
        .await;
        let r = RunReport::new("t", "constant", 500.0, 2.0, &rec);
        // ~150 of 1000 jobs were due during the 300 ms block; their latency is their lateness.
        // Lower bounds only: a slower machine makes them larger, never smaller.
        assert!(r.all.end_to_end_us.max >= 290_000, "{:?}", r.all.end_to_end_us);
        assert!(r.all.end_to_end_us.p90 >= 80_000, "{:?}", r.all.end_to_end_us);
        assert!(r.issue_lateness_us.max >= 290_000, "{:?}", r.issue_lateness_us);
        assert!(r.balanced());
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_over_the_in_flight_cap_are_counted_as_generator_failures() {
        let rec = drive(
            constant(100.0, 1),
            job,
            |_| async {
                tokio::time::sleep(Duration::from_millis(45)).await;
                completed()
            },
            2,
            &|_, _, _| {},
        )
        .await;
        let r = RunReport::new("t", "constant", 100.0, 1.0, &rec);
        assert!(r.balanced());
        // Two slots, 45 ms each, one arrival every 10 ms: of every five arrivals, two run.
        assert_eq!(r.all.counts.completed + r.all.counts.failed, 100);
        assert_eq!(r.all.counts.failed, r.all.counts.failed_not_issued);
        assert!(r.all.counts.failed_not_issued >= 55, "{:?}", r.all.counts);
        assert!(r.achieved_rate < r.offered_rate);
    }
}
