//! The replay check: a run's arrivals replayed offline through a clairvoyant schedule, to judge
//! the router's admissions against what was possible. The clairvoyant serves the same permits
//! earliest deadline first, without preemption (as the CPU lane does), and admits a job only if
//! its acceptance test, which knows every job's actual service time, finds that the job and
//! every job already waiting still finish within their budgets. Against it, a *false reject* is
//! a job the router dropped that the clairvoyant served within budget, and a *late admit* is a
//! job the router ran that was answered past its budget.

use super::record::Decided;
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
}

/// What the replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ReplayVerdict {
    /// Jobs the router dropped.
    pub dropped: u64,
    /// Of those, jobs the clairvoyant schedule served within budget.
    pub false_rejects: u64,
    /// Critical jobs the router dropped.
    pub dropped_critical: u64,
    /// Of those, jobs the clairvoyant schedule served within budget.
    pub false_rejects_critical: u64,
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
    /// at the first job that would finish past its deadline and says so.
    fn run(&mut self, since_us: u64, until_us: u64, check: bool) -> bool {
        while let Some(&Reverse(next)) = self.waiting.peek() {
            let (permit, free_us) = self.next_free();
            let start_us = free_us.max(since_us);
            if start_us >= until_us {
                break;
            }
            self.waiting.pop();
            let finish_us = start_us + next.service_us;
            if check && finish_us > next.deadline_us {
                return false;
            }
            self.free_at_us[permit] = finish_us;
        }
        true
    }

    /// The acceptance test: with `job` added, does every waiting job still finish in time?
    fn admits(&self, job: Waiting, now_us: u64) -> bool {
        let mut trial = self.clone();
        trial.waiting.push(Reverse(job));
        trial.run(now_us, u64::MAX, true)
    }
}

/// Replays `jobs` through the clairvoyant schedule on `permits` permits.
pub fn replay(jobs: &[ReplayJob], permits: usize) -> ReplayVerdict {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs[i].arrival_us);
    let mut schedule = Schedule { free_at_us: vec![0; permits.max(1)], waiting: BinaryHeap::new() };
    let mut v = ReplayVerdict::default();
    let mut last_arrival_us = 0;
    let mut served_us = 0u64;
    for i in order {
        let j = &jobs[i];
        // Up to this arrival: what the permits that freed in the meantime took.
        schedule.run(last_arrival_us, j.arrival_us, false);
        last_arrival_us = j.arrival_us;
        let candidate = Waiting { deadline_us: j.arrival_us + j.budget_us, seq: i, service_us: j.service_us };
        let served = schedule.admits(candidate, j.arrival_us);
        if served {
            schedule.waiting.push(Reverse(candidate));
            v.clairvoyant_served += 1;
            served_us += j.service_us;
        }
        match (j.ran, j.critical) {
            (true, critical) => {
                v.ran += 1;
                v.late_admits += u64::from(!j.in_budget);
                if critical {
                    v.ran_critical += 1;
                    v.late_admits_critical += u64::from(!j.in_budget);
                }
            }
            (false, critical) => {
                v.dropped += 1;
                v.false_rejects += u64::from(served);
                if critical {
                    v.dropped_critical += 1;
                    v.false_rejects_critical += u64::from(served);
                }
            }
        }
    }
    let span_us = jobs.iter().map(|j| j.arrival_us).max().unwrap_or(0).max(1);
    let permit_us = (permits.max(1) as u64 * span_us) as f64;
    v.clairvoyant_busy = served_us as f64 / permit_us;
    v.router_busy = jobs.iter().filter(|j| j.ran).map(|j| j.service_us).sum::<u64>() as f64 / permit_us;
    v
}

/// The replay of a run's decided jobs on `permits` permits. A job the router ran keeps its
/// measured service time; a dropped one gets its predicted cost (of the work it asked for) times
/// the median ratio of measured to predicted service time over the jobs of its kernel that ran
/// alone (1 when none did), so the clairvoyant is judged on the costs the run actually saw. A
/// batch member counts for its share of the batch's time, and a split job as one permit's run.
pub(super) fn of_run(decided: &[Decided], permits: usize) -> ReplayVerdict {
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
    let jobs: Vec<ReplayJob> = decided
        .iter()
        .map(|d| {
            let estimate = || d.predicted_cost_us * medians.get(d.kernel.as_str()).copied().unwrap_or(1.0);
            ReplayJob {
                arrival_us: d.arrival_us,
                budget_us: d.budget_us,
                critical: d.critical,
                service_us: d.service_us.unwrap_or_else(|| estimate().round() as u64),
                ran: d.ran,
                in_budget: d.in_budget,
            }
        })
        .collect();
    replay(&jobs, permits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A critical job: arrival, budget, service (all microseconds), and what the router did.
    fn job(arrival_us: u64, budget_us: u64, service_us: u64, ran: bool, in_budget: bool) -> ReplayJob {
        ReplayJob { arrival_us, budget_us, critical: true, service_us, ran, in_budget }
    }

    #[test]
    fn a_drop_the_clairvoyant_would_have_served_is_a_false_reject() {
        // One permit. A runs 0-5; B (deadline 11) fits after it, 5-10. C (deadline 7) would go
        // before B and end at 8: late, so the clairvoyant refuses C and serves B.
        let jobs = [job(0, 10, 5, true, true), job(1, 10, 5, false, false), job(2, 5, 3, true, false)];
        let v = replay(&jobs, 1);
        assert_eq!((v.dropped, v.false_rejects, v.ran, v.late_admits), (1, 1, 2, 1), "{v:?}");
        assert_eq!(v.clairvoyant_served, 2);
        assert_eq!((v.false_reject_share(), v.late_admit_share()), (1.0, 0.5));
    }

    #[test]
    fn a_newcomer_that_would_make_a_queued_job_late_is_refused() {
        // One permit. A runs 0-10; B (deadline 21) waits and would run 10-20. C (deadline 16)
        // alone would fit at 10-15, but EDF would put it before B and push B to 15-25: late.
        let jobs = [job(0, 100, 10, true, true), job(1, 20, 10, true, true), job(2, 14, 5, false, false)];
        let v = replay(&jobs, 1);
        assert_eq!((v.clairvoyant_served, v.false_rejects), (2, 0), "{v:?}");
        // Without B, C fits: its drop is then a false reject.
        let v = replay(&[jobs[0], jobs[2]], 1);
        assert_eq!((v.clairvoyant_served, v.false_rejects), (2, 1), "{v:?}");
    }

    #[test]
    fn every_permit_serves_and_an_idle_one_starts_a_job_on_arrival() {
        // Three jobs at once that each need their whole budget: two permits serve two.
        let at_once = [job(0, 10, 10, true, true), job(0, 10, 10, true, true), job(0, 10, 10, false, false)];
        let v = replay(&at_once, 2);
        assert_eq!((v.clairvoyant_served, v.false_rejects), (2, 0), "{v:?}");
        assert_eq!(replay(&at_once, 3).clairvoyant_served, 3);
        // A job long after the others starts at its arrival, not when the permit last freed.
        let later = [job(0, 10, 10, true, true), job(1_000, 10, 10, false, false)];
        assert_eq!(replay(&later, 1).false_rejects, 1);
        // Arrival order decides, not the order of the slice.
        let shuffled = [later[1], later[0]];
        assert_eq!(replay(&shuffled, 1), replay(&later, 1));
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
        }
    }

    #[test]
    fn a_dropped_job_is_costed_at_its_kernel_s_measured_over_predicted_ratio() {
        // The kernel's jobs ran at twice their prediction. The dropped one, predicted at 5 us,
        // so takes 10: after the first job (0-10) it would end at 20, past its deadline of 19.
        let run = [decided(0, 20, 5.0, Some(10)), decided(1, 18, 5.0, None), decided(500, 20, 5.0, Some(10))];
        let v = of_run(&run, 1);
        assert_eq!((v.dropped, v.false_rejects, v.clairvoyant_served), (1, 0, 2), "{v:?}");
        // Taken at its bare prediction it would have fitted (0-10, then 10-15): a false reject.
        let as_predicted = [decided(0, 20, 10.0, Some(10)), decided(1, 18, 5.0, None)];
        assert_eq!(of_run(&as_predicted, 1).false_rejects, 1);
    }
}
