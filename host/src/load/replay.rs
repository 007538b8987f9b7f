//! The replay check: a run's arrivals replayed offline through clairvoyant schedules, to judge
//! the router's admissions against what was possible. A clairvoyant serves the same permits
//! earliest deadline first, without preemption (as the CPU lane does), and admits a job only if
//! its acceptance test, which knows every job's actual service time, finds that the job and
//! every job already waiting still finish within their budgets.
//!
//! A *false reject* is a job the router dropped that would have fitted beside the jobs it ran:
//! the clairvoyant takes the router's runs as given and, in arrival order, admits each dropped
//! job that finishes in time without making late any job that was in time without it. A *late
//! admit* is a job the router ran that was answered past its budget.
//!
//! Beside it, an independent clairvoyant schedules the same arrivals alone, and the report
//! says how many of the router's drops it served. Under overload that count measures which of
//! many equally good sets of jobs two online policies kept, not admission errors: a router that
//! serves every other job of a stream that fills its permits twice over drops half the jobs,
//! none of which fit beside those it ran, while a clairvoyant that kept the other half "served"
//! every one of them.

use super::record::Decided;
use super::target::LaneUse;
use crate::policy::Strategy;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;

/// One job the router decided, as the replay sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayJob {
    /// Its scheduled arrival, microseconds from the start of the run.
    pub arrival_us: u64,
    /// Its latency budget, microseconds.
    pub budget_us: u64,
    /// A critical job (else sheddable).
    pub critical: bool,
    /// Its service time, microseconds: measured when the router ran it, estimated otherwise.
    pub service_us: u64,
    /// The router ran it (completed, degraded or failed); otherwise it dropped it.
    pub ran: bool,
    /// The router answered it within its budget.
    pub in_budget: bool,
    /// It needs a permit: false for a job the router ran on its async threads (too cheap for
    /// the lane), which the schedules leave out (its CPU shows in the lane's cost per run).
    pub on_permits: bool,
}

/// What the replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ReplayVerdict {
    /// Jobs the router dropped.
    pub dropped: u64,
    /// Of those, jobs that would have fitted beside the jobs the router ran.
    pub false_rejects: u64,
    /// Critical jobs the router dropped.
    pub dropped_critical: u64,
    /// Of those, jobs that would have fitted beside the jobs the router ran.
    pub false_rejects_critical: u64,
    /// Jobs the router dropped that the independent clairvoyant served.
    pub clairvoyant_served_dropped: u64,
    /// The same, critical jobs.
    pub clairvoyant_served_dropped_critical: u64,
    /// Jobs the router ran.
    pub ran: u64,
    /// Of those, jobs answered past their budget.
    pub late_admits: u64,
    /// Critical jobs the router ran.
    pub ran_critical: u64,
    /// Of those, jobs answered past their budget.
    pub late_admits_critical: u64,
    /// Jobs the clairvoyant schedule served (all within budget, by its acceptance test).
    pub clairvoyant_served: u64,
    /// The service time of the jobs it served over the permit time of the run (permits times
    /// the span of arrivals): how busy its permits were. Near 1, the replayed costs fill the
    /// permits; well below it while the router was overloaded, the router's permits spend time
    /// outside the measured service (hand-offs, sharing the cores).
    pub clairvoyant_busy: f64,
    /// The same for the router: the measured service time of the jobs it ran over the permit
    /// time of the run. The gap to `clairvoyant_busy` is permit time the router did not turn
    /// into service.
    pub router_busy: f64,
    /// What a CPU-lane run held its permit for beyond the kernel's service time, on average
    /// over the run (hand-off, re-decision, the outcome), microseconds: added to every lane
    /// job's service time in the replay, since the permit was not free for another job then.
    pub lane_overhead_us: f64,
}

impl ReplayVerdict {
    /// False rejects as a share of the jobs the router dropped (0 when it dropped none).
    pub fn false_reject_share(&self) -> f64 {
        share(self.false_rejects, self.dropped)
    }

    /// Late admits as a share of the jobs the router ran (0 when it ran none).
    pub fn late_admit_share(&self) -> f64 {
        share(self.late_admits, self.ran)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// A job waiting in the clairvoyant's queue: served by deadline, then by arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    deadline_us: u64,
    seq: usize,
    service_us: u64,
}

/// The clairvoyant schedule at one instant: when each permit is next free, and who waits.
#[derive(Clone)]
struct Schedule {
    free_at_us: Vec<u64>,
    waiting: BinaryHeap<Reverse<Waiting>>,
}

impl Schedule {
    /// The permit free first, and when.
    fn next_free(&self) -> (usize, u64) {
        self.free_at_us.iter().copied().enumerate().min_by_key(|&(_, t)| t).expect("at least one permit")
    }

    /// Starts waiting jobs, earliest deadline first, on the permits as they free, until the next
    /// start would be at `until_us` or later. `since_us` is the latest arrival so far: no job
    /// starts before it, since every permit that freed earlier already took what was waiting
    /// (so every waiting job has arrived by the time a permit takes one). With `check`, stops
    /// at the first job that would finish past its deadline and says so; with `late`, notes
    /// every such job there.
    fn run(&mut self, since_us: u64, until_us: u64, check: bool, mut late: Option<&mut Vec<usize>>) -> bool {
        while let Some(&Reverse(next)) = self.waiting.peek() {
            let (permit, free_us) = self.next_free();
            let start_us = free_us.max(since_us);
            if start_us >= until_us {
                break;
            }
            self.waiting.pop();
            let finish_us = start_us + next.service_us;
            if finish_us > next.deadline_us {
                if check {
                    return false;
                }
                if let Some(late) = late.as_deref_mut() {
                    late.push(next.seq);
                }
            }
            self.free_at_us[permit] = finish_us;
        }
        true
    }

    /// The jobs, by `seq`, that finish past their deadlines if the schedule runs on from
    /// `now_us` with `arrivals` (time and job, in order) joining it and nothing else.
    fn late_with(mut self, now_us: u64, arrivals: impl Iterator<Item = (u64, Waiting)>) -> Vec<usize> {
        let mut late = Vec::new();
        let mut since_us = now_us;
        for (at_us, job) in arrivals {
            self.run(since_us, at_us, false, Some(&mut late));
            self.waiting.push(Reverse(job));
            since_us = at_us;
        }
        self.run(since_us, u64::MAX, false, Some(&mut late));
        late.sort_unstable();
        late
    }

    /// The acceptance test: with `job` added, does every waiting job still finish in time?
    fn admits(&self, job: Waiting, now_us: u64) -> bool {
        let mut trial = self.clone();
        trial.waiting.push(Reverse(job));
        trial.run(now_us, u64::MAX, true, None)
    }

    /// The acceptance test beside forced work: with the jobs the router ran still to come
    /// (`arrivals`), `job` finishes in time and every job that finished in time without it
    /// still does.
    fn fits_beside(&self, job: Waiting, now_us: u64, arrivals: &[(u64, Waiting)]) -> bool {
        let before = self.clone().late_with(now_us, arrivals.iter().copied());
        let mut trial = self.clone();
        trial.waiting.push(Reverse(job));
        let after = trial.late_with(now_us, arrivals.iter().copied());
        after.iter().all(|seq| *seq != job.seq && before.binary_search(seq).is_ok())
    }
}

/// Replays `jobs` through both clairvoyant schedules on `permits` permits.
pub fn replay(jobs: &[ReplayJob], permits: usize) -> ReplayVerdict {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs[i].arrival_us);
    let waiting = |i: usize| {
        let j = &jobs[i];
        Waiting { deadline_us: j.arrival_us + j.budget_us, seq: i, service_us: j.service_us }
    };
    // The jobs the router ran, by arrival: the work a dropped job must fit beside. A drop can
    // delay only what arrives before its own deadline plus the longest budget.
    let ran: Vec<(u64, Waiting)> = order
        .iter()
        .filter(|&&i| jobs[i].ran && jobs[i].on_permits)
        .map(|&i| (jobs[i].arrival_us, waiting(i)))
        .collect();
    let horizon_us = jobs.iter().map(|j| j.budget_us).max().unwrap_or(0);
    let empty = Schedule { free_at_us: vec![0; permits.max(1)], waiting: BinaryHeap::new() };
    // The independent clairvoyant, and the one that takes the router's runs as given.
    let (mut alone, mut beside) = (empty.clone(), empty);
    let mut v = ReplayVerdict::default();
    let (mut last_arrival_us, mut ran_so_far) = (0, 0);
    let mut served_us = 0u64;
    for i in order {
        let j = &jobs[i];
        if !j.on_permits {
            v.ran += u64::from(j.ran);
            v.late_admits += u64::from(j.ran && !j.in_budget);
            v.ran_critical += u64::from(j.ran && j.critical);
            v.late_admits_critical += u64::from(j.ran && j.critical && !j.in_budget);
            continue;
        }
        // Up to this arrival: what the permits that freed in the meantime took.
        alone.run(last_arrival_us, j.arrival_us, false, None);
        beside.run(last_arrival_us, j.arrival_us, false, None);
        last_arrival_us = j.arrival_us;
        let candidate = waiting(i);
        let served = alone.admits(candidate, j.arrival_us);
        if served {
            alone.waiting.push(Reverse(candidate));
            v.clairvoyant_served += 1;
            served_us += j.service_us;
        }
        let critical = u64::from(j.critical);
        if j.ran {
            beside.waiting.push(Reverse(candidate));
            ran_so_far += 1;
            v.ran += 1;
            v.late_admits += u64::from(!j.in_budget);
            v.ran_critical += critical;
            v.late_admits_critical += critical * u64::from(!j.in_budget);
            continue;
        }
        v.dropped += 1;
        v.dropped_critical += critical;
        v.clairvoyant_served_dropped += u64::from(served);
        v.clairvoyant_served_dropped_critical += critical * u64::from(served);
        let reach_us = candidate.deadline_us + horizon_us;
        let to_come = &ran[ran_so_far..];
        let to_come = &to_come[..to_come.partition_point(|&(at_us, _)| at_us <= reach_us)];
        if beside.fits_beside(candidate, j.arrival_us, to_come) {
            beside.waiting.push(Reverse(candidate));
            v.false_rejects += 1;
            v.false_rejects_critical += critical;
        }
    }
    let span_us = jobs.iter().map(|j| j.arrival_us).max().unwrap_or(0).max(1);
    let permit_us = (permits.max(1) as u64 * span_us) as f64;
    v.clairvoyant_busy = served_us as f64 / permit_us;
    v.router_busy = jobs.iter().filter(|j| j.ran && j.on_permits).map(|j| j.service_us).sum::<u64>() as f64 / permit_us;
    v
}

/// The replay of a run's decided jobs on the lane's permits, `before` and `after` being the lane's
/// use when the run started and ended. A job the router ran keeps its measured service time; a
/// dropped one gets its predicted cost (of the work it asked for) times the median ratio of
/// measured to predicted service time over the jobs of its kernel that ran alone (1 when none
/// did), so the clairvoyant is judged on the costs the run actually saw. A batch member counts
/// for its share of the batch's time, and a split job as one permit's run. Each lane job (and
/// each drop) also costs its share of the lane's measured overhead per run.
pub(super) fn of_run(decided: &[Decided], before: LaneUse, after: LaneUse) -> ReplayVerdict {
    let mut ratios: HashMap<&str, Vec<f64>> = HashMap::new();
    // Batch members ran for their share of shared work, cheaper than alone: not their measure.
    for d in decided.iter().filter(|d| d.predicted_cost_us > 0.0 && d.strategy != Strategy::Batch) {
        if let Some(service) = d.service_us {
            ratios.entry(&d.kernel).or_default().push(service as f64 / d.predicted_cost_us);
        }
    }
    let medians: HashMap<&str, f64> = ratios
        .into_iter()
        .map(|(k, mut r)| {
            r.sort_by(f64::total_cmp);
            (k, r[r.len() / 2])
        })
        .collect();
    let lane_service_us: f64 =
        decided.iter().filter(|d| d.ran && d.lane_share > 0.0).filter_map(|d| d.service_us).map(|us| us as f64).sum();
    let runs = after.runs.saturating_sub(before.runs);
    let held_us = after.held_us.saturating_sub(before.held_us) as f64;
    let overhead_us = if runs > 0 { ((held_us - lane_service_us) / runs as f64).max(0.0) } else { 0.0 };
    let jobs: Vec<ReplayJob> = decided
        .iter()
        .map(|d| {
            let estimate = || d.predicted_cost_us * medians.get(d.kernel.as_str()).copied().unwrap_or(1.0);
            let service = d.service_us.map_or_else(estimate, |s| s as f64);
            ReplayJob {
                arrival_us: d.arrival_us,
                budget_us: d.budget_us,
                critical: d.critical,
                service_us: (service + overhead_us * d.lane_share).round() as u64,
                ran: d.ran,
                in_budget: d.in_budget,
                on_permits: d.lane_share > 0.0,
            }
        })
        .collect();
    let mut v = replay(&jobs, after.permits);
    v.lane_overhead_us = overhead_us;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A critical job: arrival, budget, service (all microseconds), and what the router did.
    fn job(arrival_us: u64, budget_us: u64, service_us: u64, ran: bool, in_budget: bool) -> ReplayJob {
        ReplayJob { arrival_us, budget_us, critical: true, service_us, ran, in_budget, on_permits: true }
    }

    #[test]
    fn a_drop_that_fits_beside_the_router_s_runs_is_a_false_reject() {
        // One permit. The router ran A (0-5) and dropped B (deadline 11), which fits after it.
        let jobs = [job(0, 10, 5, true, true), job(1, 10, 5, false, false)];
        let v = replay(&jobs, 1);
        assert_eq!((v.dropped, v.false_rejects, v.clairvoyant_served_dropped), (1, 1, 1), "{v:?}");
        assert_eq!(v.false_reject_share(), 1.0);
        // A third job the router ran, due at 12, would be pushed late by B: B no longer fits.
        let crowded = [jobs[0], jobs[1], job(2, 10, 5, true, true)];
        let v = replay(&crowded, 1);
        assert_eq!((v.false_rejects, v.late_admits), (0, 0), "{v:?}");
    }

    #[test]
    fn a_newcomer_that_would_make_a_queued_job_late_is_refused() {
        // One permit. A runs 0-10; B (deadline 21) waits and would run 10-20. C (deadline 16)
        // alone would fit at 10-15, but EDF would put it before B and push B to 15-25: late.
        let jobs = [job(0, 100, 10, true, true), job(1, 20, 10, true, true), job(2, 14, 5, false, false)];
        let v = replay(&jobs, 1);
        assert_eq!((v.clairvoyant_served, v.false_rejects, v.clairvoyant_served_dropped), (2, 0, 0), "{v:?}");
        // Without B, C fits: its drop is then a false reject.
        let v = replay(&[jobs[0], jobs[2]], 1);
        assert_eq!((v.clairvoyant_served, v.false_rejects), (2, 1), "{v:?}");
    }

    #[test]
    fn a_job_the_router_ran_late_anyway_does_not_shield_a_drop() {
        // The router ran A (0-10) past its deadline of 5, and dropped B (deadline 31): B fits
        // after A, and makes late no job that was in time.
        let jobs = [job(0, 5, 10, true, false), job(1, 30, 5, false, false)];
        let v = replay(&jobs, 1);
        assert_eq!((v.late_admits, v.false_rejects), (1, 1), "{v:?}");
    }

    #[test]
    fn keeping_a_different_but_equally_full_set_is_no_false_reject() {
        // One permit; a job every 5 us that needs 10 us within a budget of 10: only a job that
        // starts on arrival makes it, so at most every other one. The router kept the odd ones;
        // the independent clairvoyant keeps the even ones and so served every drop.
        let jobs: Vec<ReplayJob> = (0..10).map(|k| job(5 * k, 10, 10, k % 2 == 1, k % 2 == 1)).collect();
        let v = replay(&jobs, 1);
        assert_eq!((v.dropped, v.clairvoyant_served_dropped), (5, 5), "{v:?}");
        assert_eq!(v.false_rejects, 0, "none fitted beside the jobs the router ran: {v:?}");
        // Had it dropped every job, each would be a false reject but those after one it took.
        let none_run: Vec<ReplayJob> = jobs.iter().map(|j| ReplayJob { ran: false, in_budget: false, ..*j }).collect();
        assert_eq!(replay(&none_run, 1).false_rejects, 5);
    }

    #[test]
    fn every_permit_serves_and_an_idle_one_starts_a_job_on_arrival() {
        // Three jobs at once that each need their whole budget: two permits serve two.
        let at_once = [job(0, 10, 10, true, true), job(0, 10, 10, true, true), job(0, 10, 10, false, false)];
        let v = replay(&at_once, 2);
        assert_eq!((v.clairvoyant_served, v.false_rejects), (2, 0), "{v:?}");
        assert_eq!(replay(&at_once, 3).clairvoyant_served, 3);
        assert_eq!(replay(&at_once, 3).false_rejects, 1);
        // A job long after the others starts at its arrival, not when the permit last freed.
        let later = [job(0, 10, 10, true, true), job(1_000, 10, 10, false, false)];
        assert_eq!(replay(&later, 1).false_rejects, 1);
        // Arrival order decides, not the order of the slice.
        let shuffled = [later[1], later[0]];
        assert_eq!(replay(&shuffled, 1), replay(&later, 1));
    }

    #[test]
    fn a_job_run_on_the_async_threads_takes_no_permit() {
        // One permit. The router ran I inline (0-10) and dropped B (deadline 11), which fits
        // on the permit at once; I still counts as run, and as late when it was.
        let inline = ReplayJob { on_permits: false, ..job(0, 5, 10, true, false) };
        let v = replay(&[inline, job(1, 10, 5, false, false)], 1);
        assert_eq!((v.ran, v.late_admits, v.false_rejects, v.clairvoyant_served), (1, 1, 1, 1), "{v:?}");
    }

    #[test]
    fn critical_and_sheddable_jobs_are_counted_apart() {
        let sheddable = |j: ReplayJob| ReplayJob { critical: false, ..j };
        let jobs = [
            job(0, 10, 5, true, true),
            sheddable(job(0, 10, 5, true, false)),
            sheddable(job(20, 10, 5, false, false)),
            job(40, 10, 5, false, false),
        ];
        let v = replay(&jobs, 1);
        assert_eq!((v.ran, v.ran_critical, v.late_admits, v.late_admits_critical), (2, 1, 1, 0), "{v:?}");
        assert_eq!((v.dropped, v.dropped_critical, v.false_rejects, v.false_rejects_critical), (2, 1, 2, 1));
    }

    fn decided(arrival_us: u64, budget_us: u64, predicted_cost_us: f64, service_us: Option<u64>) -> Decided {
        Decided {
            kernel: "k".into(),
            critical: true,
            arrival_us,
            budget_us,
            ran: service_us.is_some(),
            in_budget: service_us.is_some(),
            strategy: if service_us.is_some() { Strategy::CpuLane } else { Strategy::Drop },
            predicted_cost_us,
            predicted_wait_us: 0.0,
            queue_us: service_us.map(|_| 0),
            service_us,
            lane_share: 1.0,
        }
    }

    /// One permit, whose runs held it `held_us` in all over `runs` runs.
    fn lane(held_us: u64, runs: u64) -> (LaneUse, LaneUse) {
        (LaneUse { permits: 1, held_us: 0, runs: 0 }, LaneUse { permits: 1, held_us, runs })
    }

    #[test]
    fn a_dropped_job_is_costed_at_its_kernel_s_measured_over_predicted_ratio() {
        // The kernel's jobs ran at twice their prediction. The dropped one, predicted at 5 us,
        // so takes 10: after the first job (0-10) it would end at 20, past its deadline of 19.
        let run = [decided(0, 20, 5.0, Some(10)), decided(1, 18, 5.0, None), decided(500, 20, 5.0, Some(10))];
        let (before, after) = lane(20, 2);
        let v = of_run(&run, before, after);
        assert_eq!((v.dropped, v.false_rejects, v.clairvoyant_served), (1, 0, 2), "{v:?}");
        // Taken at its bare prediction it would have fitted (0-10, then 10-15): a false reject.
        let as_predicted = [decided(0, 20, 10.0, Some(10)), decided(1, 18, 5.0, None)];
        let (before, after) = lane(10, 1);
        assert_eq!(of_run(&as_predicted, before, after).false_rejects, 1);
    }

    #[test]
    fn the_lane_s_cost_per_run_is_charged_to_every_lane_job() {
        // The run held its permit 14 us for 10 us of service: 4 us of overhead. The drop (5 us)
        // fits after it (10-15 by deadline 19) on service alone, but not at 14-19 plus 4 us.
        let run = [decided(0, 20, 10.0, Some(10)), decided(1, 18, 5.0, None)];
        let (before, after) = lane(10, 1);
        assert_eq!(of_run(&run, before, after).false_rejects, 1);
        let (before, after) = lane(14, 1);
        let v = of_run(&run, before, after);
        assert_eq!((v.lane_overhead_us, v.false_rejects), (4.0, 0), "{v:?}");
        // A job on the async threads held no permit: its service is not the lane's.
        let inline = Decided { strategy: Strategy::Inline, lane_share: 0.0, service_us: Some(2), ..run[0].clone() };
        let v = of_run(&[run[0].clone(), inline, run[1].clone()], before, after);
        assert_eq!(v.lane_overhead_us, 4.0, "{v:?}");
    }
}
