//! Running a decided job: on the caller's thread, as a task, or on CPU-lane permits (split into
//! chunks when it holds several), with panics caught, and exactly one outcome recorded and sent.

use crate::admission::Work;
use crate::lanes::cpu::LaneState;
use crate::outcome::{ErrorKind, JobError, Outcome, Status, Timings};
use crate::policy::{Decision, JobProfile, Reason, Strategy};
use crate::registry::{Entry, Kernel};
use crate::router::Shared;
use crate::wasm::{GuestError, GuestJob, GuestLimits, GuestOutput, WasmKernel};
use helix_math::chunk::split;
use helix_math::{KernelError, Output, Prepared};
use std::borrow::Cow;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

thread_local! {
    /// Set on threads running CPU-lane work: the check that heavy kernels stay off async threads.
    static IN_CPU_LANE: Cell<bool> = const { Cell::new(false) };
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
        self.span.in_scope(|| {
            tracing::info!(
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

    /// The fuel and wall-clock limits for a guest running `units`: four times the predicted
    /// fuel (when the manifest gives a rate), never more than the budget left could burn.
    fn guest_limits(&self, units: u64) -> GuestLimits {
        let remaining_us = self.deadline.saturating_duration_since(Instant::now()).as_micros() as u64;
        let budget_fuel = remaining_us.saturating_mul(FUEL_PER_US_CEILING).saturating_add(FUEL_FLOOR);
        let fuel = match &*self.work {
            Work::Wasm { params, counted: true } => self.kernel.manifest.cost.fuel(params, units),
            _ => None,
        };
        let limit = fuel.map_or(budget_fuel, |f| ((f * 4.0) as u64).saturating_add(FUEL_FLOOR).min(budget_fuel));
        let metered = matches!(&self.kernel.entry, Entry::Wasm(g) if g.meters_fuel());
        GuestLimits { fuel: metered.then_some(limit), deadline_ms: remaining_us.div_ceil(1000) }
    }

    /// The outcome for a guest's answer (or the sandbox's verdict).
    fn guest_outcome(
        &self,
        answer: Result<Result<GuestOutput, GuestError>, crate::wasm::GuestFailure>,
        fuel: Option<u64>,
        units: u64,
    ) -> Outcome {
        if let Some(f) = fuel {
            self.kernel.stats.add_fuel(f, units);
        }
        let mut o = match answer {
            Ok(Ok(out)) => {
                let mut o = self.outcome(self.success_status(units));
                o.estimates = out.estimates.into_iter().map(|(n, e)| (Cow::Owned(n), e)).collect();
                o.arrays = out.arrays.into_iter().map(|(n, a)| (Cow::Owned(n), a)).collect();
                o
            }
            Ok(Err(GuestError::InvalidInput { param, reason })) => {
                let mut o = self.outcome(Status::Rejected);
                o.error = Some(JobError { kind: ErrorKind::InvalidInput, field: Some(param), message: reason });
                o
            }
            Ok(Err(GuestError::NumericFailure(m))) => {
                self.failed(JobError { kind: ErrorKind::NumericFailure, field: None, message: m })
            }
            Err(f) => self.failed(JobError {
                kind: ErrorKind::Sandbox,
                field: None,
                message: format!("kernel {} {f}", self.kernel.name),
            }),
        };
        o.fuel_used = fuel;
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

/// Fuel a guest may burn per microsecond of budget left: far above any kernel's real rate
/// (~5 per ns measured), so it only stops guests that would overrun anyway.
const FUEL_PER_US_CEILING: u64 = 20_000;
/// Fuel every guest run gets on top, for instantiation and argument copies.
const FUEL_FLOOR: u64 = 20_000_000;

/// Runs `units` of a native job: on this thread alone, or as block-aligned chunks with one
/// chunk per extra permit on other blocking threads. Panics become the job's failure.
pub fn run_chunks(
    work: &Arc<Work>,
    seed: u64,
    units: u64,
    extra: Vec<OwnedSemaphorePermit>,
    shared: &Arc<Shared>,
) -> Result<Vec<Output>, JobError> {
    let Work::Native(prepared) = &**work else {
        return Err(JobError {
            kind: ErrorKind::Panic,
            field: None,
            message: "a Wasm job reached the native runner".into(),
        });
    };
    if extra.is_empty() || !prepared.splittable() {
        let chunk = guarded(&|| prepared.simulate(seed, 0..units))?;
        return prepared.finish(vec![chunk]).map_err(kernel_error);
    }
    let ranges = split(units, 1 + extra.len() as u64, prepared.block());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut ranges = ranges.into_iter();
    let mine = ranges.next().expect("split gives at least one range");
    for (range, permit) in ranges.zip(extra) {
        let (w, tx, shared) = (work.clone(), tx.clone(), shared.clone());
        tokio::task::spawn_blocking(move || {
            IN_CPU_LANE.with(|f| f.set(true));
            shared.metrics.lane_enter();
            let Work::Native(p) = &*w else { unreachable!("checked above") };
            let r = guarded(&|| p.simulate(seed, range.clone()));
            shared.metrics.lane_exit();
            drop(permit);
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let mut chunks = vec![guarded(&|| prepared.simulate(seed, mine.clone()))?];
    for r in rx {
        chunks.push(r?);
    }
    prepared.finish(chunks).map_err(kernel_error)
}

/// Runs kernel code with panics caught: a panic becomes the job's failure, never the host's.
fn guarded<T>(f: &dyn Fn() -> Result<T, KernelError>) -> Result<T, JobError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_error)?.map_err(kernel_error)
}

pub fn kernel_error(e: KernelError) -> JobError {
    match e {
        KernelError::InvalidInput { param, reason } => {
            JobError { kind: ErrorKind::InvalidInput, field: Some(param.to_string()), message: reason }
        }
        KernelError::NumericFailure(m) => JobError { kind: ErrorKind::NumericFailure, field: None, message: m },
    }
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> JobError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "kernel panicked".into());
    JobError { kind: ErrorKind::Panic, field: None, message: format!("kernel panicked: {message}") }
}

/// Several jobs answered by one run on shared work.
pub struct BatchRun {
    pub members: Vec<Pending>,
    pub deadline: Instant,
    pub predicted_us: u64,
}

impl BatchRun {
    fn run(self, lane: &LaneState) {
        let members = self.members;
        if matches!(members[0].kernel.entry, Entry::Wasm(_)) {
            let kernel = members[0].kernel.clone();
            let Entry::Wasm(guest) = &kernel.entry else { unreachable!("matched above") };
            return run_guest_batch(guest, members, self.predicted_us, lane);
        }
        let refs: Vec<&Prepared> = members
            .iter()
            .filter_map(|m| match &*m.work {
                Work::Native(p) => Some(p),
                Work::Wasm { .. } => None,
            })
            .collect();
        let combined = if refs.len() == members.len() { Prepared::combine(&refs) } else { None };
        let Some(combined) = combined else {
            // Members that turned out not to share work run one after another.
            for m in members {
                m.run_now(Vec::new(), Some(lane));
            }
            return;
        };
        let first = &members[0];
        let (seed, units, shared) = (first.seed, first.decision.units_granted, first.shared.clone());
        lane.running_work(self.predicted_us, true);
        let start = Instant::now();
        let result = run_chunks(&Arc::new(Work::Native(combined)), seed, units, Vec::new(), &shared);
        let service_us = start.elapsed().as_micros() as u64;
        lane.running_work(self.predicted_us, false);
        match result {
            Ok(outputs) => {
                for (m, out) in members.into_iter().zip(outputs) {
                    let mut o = m.outcome(Status::Completed);
                    o.set_output(out);
                    m.finish(o, Some(start), service_us);
                }
            }
            Err(e) => {
                for m in members {
                    let mut o = m.outcome(Status::Failed);
                    o.error = Some(e.clone());
                    m.finish(o, Some(start), service_us);
                }
            }
        }
    }
}

/// A Wasm batch: one instantiation, `run-batch` with every member's job, one answer each.
fn run_guest_batch(guest: &WasmKernel, members: Vec<Pending>, predicted_us: u64, lane: &LaneState) {
    let jobs: Vec<GuestJob> = members
        .iter()
        .map(|m| match &*m.work {
            Work::Wasm { params, counted } => {
                GuestJob { seed: m.seed, units: counted.then_some(m.decision.units_granted), params: params.clone() }
            }
            Work::Native(_) => GuestJob { seed: m.seed, units: None, params: helix_math::Params::new() },
        })
        .collect();
    // The tightest member sets the wall-clock limit; fuel is the sum of the members' limits.
    let limits =
        members.iter().map(|m| m.guest_limits(m.decision.units_granted)).fold(None, |acc: Option<GuestLimits>, l| {
            Some(match acc {
                None => l,
                Some(a) => GuestLimits {
                    fuel: a.fuel.zip(l.fuel).map(|(x, y)| x.saturating_add(y)),
                    deadline_ms: a.deadline_ms.min(l.deadline_ms),
                },
            })
        });
    let limits = limits.expect("a batch has members");
    lane.running_work(predicted_us, true);
    let start = Instant::now();
    let run = guest.run(&jobs, limits);
    let service_us = start.elapsed().as_micros() as u64;
    lane.running_work(predicted_us, false);
    match run {
        Ok(r) if r.answers.len() == members.len() => {
            // Fuel is shared work: each member is charged its share.
            let share = r.fuel_used.map(|f| f / members.len() as u64);
            for (m, answer) in members.into_iter().zip(r.answers) {
                let o = m.guest_outcome(Ok(answer), share, m.decision.units_granted);
                m.finish(o, Some(start), service_us);
            }
        }
        Ok(r) => {
            let failure =
                crate::wasm::GuestFailure::Trap(format!("answered {} of {} jobs", r.answers.len(), members.len()));
            for m in members {
                let o = m.guest_outcome(Err(failure.clone()), None, m.decision.units_granted);
                m.finish(o, Some(start), service_us);
            }
        }
        Err(f) => {
            for m in members {
                let o = m.guest_outcome(Err(f.clone()), None, m.decision.units_granted);
                m.finish(o, Some(start), service_us);
            }
        }
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

    /// Whether every caller has gone away.
    pub fn is_cancelled(&self) -> bool {
        match self {
            LaneWork::Job(p) => p.is_cancelled(),
            LaneWork::Batch(b) => b.members.iter().all(Pending::is_cancelled),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_kernel_becomes_a_failure_with_its_message() {
        let r: Result<(), JobError> = guarded(&|| panic!("bad index 7"));
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Panic);
        assert!(e.message.contains("bad index 7"), "{}", e.message);
        let r: Result<(), JobError> = guarded(&|| Err(KernelError::NumericFailure("nan".into())));
        assert_eq!(r.unwrap_err().kind, ErrorKind::NumericFailure);
    }
}
