//! Running a decided job: on the caller's thread, as a task, or on CPU-lane permits (split into
//! chunks when it holds several), with panics caught, and exactly one outcome recorded and sent.
//! `native` runs helix-math work, `guest` runs Wasm work, `batch` runs jobs that share work.

mod batch;
mod guest;
mod native;

pub use batch::BatchRun;
pub use native::{kernel_error, run_chunks};

use crate::admission::Work;
use crate::lanes::cpu::LaneState;
use crate::outcome::{JobError, Outcome, Status, Timings};
use crate::policy::{Decision, JobProfile, Reason, Strategy};
use crate::registry::{Entry, Kernel};
use crate::router::Shared;
use crate::wasm::GuestJob;
use helix_math::Output;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

thread_local! {
    /// Set on threads running CPU-lane work: the check that heavy kernels stay off async threads.
    pub(crate) static IN_CPU_LANE: Cell<bool> = const { Cell::new(false) };
}

/// What the dispatcher hands a job: its permits (one per chunk) and when it left the queue.
pub struct Dispatch {
    pub permits: Vec<OwnedSemaphorePermit>,
    pub dispatched: Instant,
    pub lane: Arc<LaneState>,
}

/// A job between decision and outcome.
pub struct Pending {
    pub id: u64,
    pub kernel: Arc<Kernel>,
    pub criticality: crate::job::Criticality,
    pub work: Arc<Work>,
    pub seed: u64,
    pub decision: Decision,
    pub profile: JobProfile,
    pub submitted: Instant,
    pub deadline: Instant,
    pub reply: Option<oneshot::Sender<Outcome>>,
    pub span: tracing::Span,
    pub shared: Arc<Shared>,
}

impl Pending {
    fn outcome(&self, status: Status) -> Outcome {
        Outcome {
            id: self.id,
            kernel: self.kernel.name.clone(),
            version: Some(self.kernel.version.clone()),
            runtime: Some(self.kernel.runtime()),
            criticality: self.criticality,
            status,
            decision: Some(self.decision),
            estimates: Vec::new(),
            arrays: Vec::new(),
            error: None,
            timings: Timings::default(),
            budget_us: (self.deadline - self.submitted).as_micros() as u64,
            fuel_used: None,
        }
    }

    /// Records the outcome and logs it in the job's span; sends it to a waiting caller, or
    /// returns it when the caller runs the job itself (no reply channel).
    pub fn finish(mut self, mut outcome: Outcome, service_start: Option<Instant>, service_us: u64) -> Option<Outcome> {
        let now = Instant::now();
        let queue_end = service_start.unwrap_or(now);
        outcome.timings = Timings {
            queue_us: (queue_end - self.submitted).as_micros() as u64,
            service_us,
            total_us: (now - self.submitted).as_micros() as u64,
        };
        self.shared.record(&self.kernel, &outcome);
        // One event per job at debug level, since a busy server finishes thousands a second;
        // failures are the exception worth a warning.
        self.span.in_scope(|| {
            if let Some(e) = outcome.error.as_ref().filter(|_| outcome.status == Status::Failed) {
                tracing::warn!(kind = e.kind.as_str(), message = %e.message, "job failed");
            }
            tracing::debug!(
                status = outcome.status.as_str(),
                strategy = outcome.decision.map(|d| d.strategy.as_str()),
                reason = outcome.decision.map(|d| d.reason.as_str()),
                units_granted = outcome.decision.map(|d| d.units_granted),
                predicted_us = outcome.decision.map(|d| d.predicted_cost_us as u64),
                queue_us = outcome.timings.queue_us,
                service_us,
                total_us = outcome.timings.total_us,
                budget_met = outcome.budget_met(),
                "job finished"
            )
        });
        match self.reply.take() {
            Some(reply) => {
                let _ = reply.send(outcome);
                None
            }
            None => Some(outcome),
        }
    }

    /// Ends the job without running it.
    pub fn drop_with(mut self, reason: Reason) -> Option<Outcome> {
        self.decision = Decision { strategy: Strategy::Drop, reason, units_granted: 0, chunks: 1, ..self.decision };
        let outcome = self.outcome(Status::Dropped);
        self.finish(outcome, None, 0)
    }

    /// Runs the job on the current thread with the given extra permits for chunks.
    pub fn run_now(mut self, extra: Vec<OwnedSemaphorePermit>, lane: Option<&LaneState>) -> Option<Outcome> {
        let units = self.decision.units_granted;
        let heavy = self.decision.predicted_cost_us > self.shared.config.policy.spawn_max_us;
        if heavy && !IN_CPU_LANE.with(Cell::get) {
            self.shared.metrics.heavy_on_async.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.decision.chunks = 1 + extra.len();
        let predicted = self.decision.predicted_cost_us as u64;
        if let Some(l) = lane {
            l.running_work(predicted, true);
        }
        let start = Instant::now();
        let outcome = match (&self.kernel.entry, &*self.work) {
            (Entry::Wasm(guest), Work::Wasm { params, counted }) => {
                let job = GuestJob { seed: self.seed, units: counted.then_some(units), params: params.clone() };
                let limits = self.guest_limits(units);
                let run = guest.run(std::slice::from_ref(&job), limits);
                let fuel = run.as_ref().ok().and_then(|r| r.fuel_used);
                let answer = run.map(|mut r| r.answers.swap_remove(0));
                self.guest_outcome(answer, fuel, units)
            }
            _ => match run_chunks(&self.work, self.seed, units, extra, &self.shared) {
                Ok(mut outputs) => self.completed(units, outputs.swap_remove(0)),
                Err(e) => self.failed(e),
            },
        };
        let service_us = start.elapsed().as_micros() as u64;
        if let Some(l) = lane {
            l.running_work(predicted, false);
        }
        self.observe_cost(units, service_us);
        self.finish(outcome, Some(start), service_us)
    }

    fn completed(&self, units: u64, out: Output) -> Outcome {
        let mut o = self.outcome(self.success_status(units));
        o.set_output(out);
        o
    }

    fn success_status(&self, units: u64) -> Status {
        if units < self.decision.units_requested { Status::Degraded } else { Status::Completed }
    }

    fn failed(&self, e: JobError) -> Outcome {
        let mut o = self.outcome(Status::Failed);
        o.error = Some(e);
        o
    }

    /// Feeds the kernel's cost correction with this run (uncorrected prediction vs measured).
    fn observe_cost(&self, units: u64, service_us: u64) {
        let c = self.kernel.stats.correction();
        let predicted = self.profile.cost_us(units) / c;
        let parallel = self.decision.chunks as f64;
        let s = self.profile.scaling_potential;
        let serial_equivalent = service_us as f64 * if parallel > 1.0 { 1.0 / ((1.0 - s) + s / parallel) } else { 1.0 };
        self.kernel.stats.observe(predicted, serial_equivalent);
    }

    /// Re-checks the budget when the job leaves the queue holding `permits` permits: the wait
    /// may have eaten the budget, or fewer permits than planned may be free.
    fn redecide_at_dispatch(&mut self, permits: usize) -> Option<Reason> {
        let now = Instant::now();
        if now >= self.deadline {
            return Some(Reason::DeadlinePassed);
        }
        let usable = (self.deadline - now).as_micros() as f64 * self.shared.config.policy.budget_use;
        let granted = self.decision.units_granted;
        let s = self.profile.scaling_potential;
        let chunks = if self.work.splittable() { permits.max(1) as f64 } else { 1.0 };
        let cost = JobProfile { per_unit_us: self.profile.per_unit_us * ((1.0 - s) + s / chunks), ..self.profile };
        if cost.cost_us(granted) <= usable {
            return None;
        }
        match self.profile.floor_units() {
            Some(floor) => {
                let fit = cost.units_within(usable).min(granted);
                if fit >= floor && fit > 0 {
                    self.decision.strategy = Strategy::Degrade;
                    self.decision.reason = Reason::DegradedToFit;
                    self.decision.units_granted = fit;
                    self.decision.predicted_cost_us = cost.cost_us(fit);
                    self.decision.error_factor =
                        (self.decision.units_requested as f64 / fit as f64).powf(self.profile.error_exponent);
                    None
                } else {
                    Some(Reason::BudgetUnreachable)
                }
            }
            None => Some(Reason::BudgetUnreachable),
        }
    }

    fn is_cancelled(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.is_closed())
    }
}

/// Work queued in the CPU lane.
pub enum LaneWork {
    Job(Box<Pending>),
    Batch(BatchRun),
}

impl LaneWork {
    pub fn deadline(&self) -> Instant {
        match self {
            LaneWork::Job(p) => p.deadline,
            LaneWork::Batch(b) => b.deadline,
        }
    }

    pub fn predicted_us(&self) -> u64 {
        match self {
            LaneWork::Job(p) => p.decision.predicted_cost_us as u64,
            LaneWork::Batch(b) => b.predicted_us,
        }
    }

    pub fn chunks(&self) -> usize {
        match self {
            LaneWork::Job(p) => p.decision.chunks,
            LaneWork::Batch(_) => 1,
        }
    }

    /// Drops what is no longer worth running (callers that went away, deadlines already passed)
    /// with that reason; a batch keeps its live members. `None` when nothing is left.
    pub fn prune(self, now: Instant) -> Option<LaneWork> {
        let verdict = |p: &Pending| {
            if p.is_cancelled() {
                Some(Reason::Cancelled)
            } else if now >= p.deadline {
                Some(Reason::DeadlinePassed)
            } else {
                None
            }
        };
        match self {
            LaneWork::Job(p) => match verdict(&p) {
                Some(reason) => {
                    p.drop_with(reason);
                    None
                }
                None => Some(LaneWork::Job(p)),
            },
            LaneWork::Batch(b) => {
                let mut live = Vec::with_capacity(b.members.len());
                for m in b.members {
                    match verdict(&m) {
                        Some(reason) => {
                            m.drop_with(reason);
                        }
                        None => live.push(m),
                    }
                }
                let deadline = live.iter().map(|m| m.deadline).min()?;
                Some(LaneWork::Batch(BatchRun { members: live, deadline, predicted_us: b.predicted_us }))
            }
        }
    }

    pub fn abandon(self, reason: Reason) {
        match self {
            LaneWork::Job(p) => {
                p.drop_with(reason);
            }
            LaneWork::Batch(b) => b.members.into_iter().for_each(|m| {
                m.drop_with(reason);
            }),
        }
    }

    /// Runs on a blocking thread holding the dispatch's permits; the permit is released only
    /// after the lane's running count drops, so the count never exceeds the permits.
    pub fn run(self, dispatch: Dispatch) {
        IN_CPU_LANE.with(|f| f.set(true));
        let shared = match &self {
            LaneWork::Job(p) => p.shared.clone(),
            LaneWork::Batch(b) => b.members[0].shared.clone(),
        };
        let Dispatch { mut permits, dispatched: _, lane } = dispatch;
        let own = permits.remove(0);
        shared.metrics.lane_enter();
        match self {
            LaneWork::Job(mut p) => match p.redecide_at_dispatch(1 + permits.len()) {
                Some(reason) => {
                    p.drop_with(reason);
                }
                None => {
                    p.run_now(permits, Some(&lane));
                }
            },
            LaneWork::Batch(b) => b.run(&lane),
        }
        shared.metrics.lane_exit();
        drop(own);
    }
}
