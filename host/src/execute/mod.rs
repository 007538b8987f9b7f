//! Layer 6: running one decided piece of work, native or Wasm: on the caller's thread, as a task,
//! or on the permits the lane hands it (split into chunks when it holds several), with panics
//! caught, and exactly one outcome recorded and sent. `native` runs helix-math work, `guest` runs
//! Wasm work, `batch` runs jobs that share work. Where the work waits first is the lanes' business.

mod batch;
mod guest;
mod native;
mod targeted;

pub(crate) use batch::BatchRun;

use crate::admission::Work;
use crate::config::RouterConfig;
use crate::job::Criticality;
use crate::metrics::{Metrics, WorkGauge};
use crate::outcome::{ErrorKind, JobError, Outcome, Status, Timings};
use crate::policy::{self, Decision, JobProfile, Reason, Strategy};
use crate::precision::Plan;
use crate::registry::{Entry, Kernel};
use helix_math::Output;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

thread_local! {
    /// Set on threads running CPU-lane work: the check that heavy kernels stay off async threads.
    static IN_CPU_LANE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as one the CPU lane runs kernels on (see `heavy_on_async`).
pub(crate) fn mark_cpu_lane_thread() {
    IN_CPU_LANE.with(|f| f.set(true));
}

/// What running work shares with the router that decided it: the settings it is held to and the
/// metrics it counts into.
pub(crate) struct Context {
    pub(crate) config: RouterConfig,
    pub(crate) metrics: Metrics,
}

/// A job between decision and outcome.
pub(crate) struct Pending {
    pub(crate) id: u64,
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) criticality: Criticality,
    pub(crate) work: Arc<Work>,
    pub(crate) seed: u64,
    pub(crate) decision: Decision,
    pub(crate) profile: JobProfile,
    /// The kernel's cost correction when `profile` was built: the factor its costs carry.
    pub(crate) correction: f64,
    /// How an error-targeted job runs its rounds; `None` for a job that names its units.
    pub(crate) plan: Option<Plan>,
    pub(crate) submitted: Instant,
    pub(crate) deadline: Instant,
    /// Where a caller waits for the outcome; `None` when the caller runs the job itself.
    pub(crate) reply: Option<oneshot::Sender<Outcome>>,
    pub(crate) span: tracing::Span,
    pub(crate) ctx: Arc<Context>,
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
            batch_size: None,
            target: None,
        }
    }

    /// Records the outcome and logs it in the job's span; sends it to a waiting caller, or
    /// returns it when the caller runs the job itself (no reply channel).
    fn finish(mut self, mut outcome: Outcome, service_start: Option<Instant>, service_us: u64) -> Option<Outcome> {
        let now = Instant::now();
        let queue_end = service_start.unwrap_or(now);
        outcome.timings = Timings {
            queue_us: (queue_end - self.submitted).as_micros() as u64,
            service_us,
            total_us: (now - self.submitted).as_micros() as u64,
        };
        self.ctx.metrics.record(&self.kernel.stats, &outcome);
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
                target_met = outcome.target.as_ref().map(|t| t.met),
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
    pub(crate) fn drop_with(mut self, reason: Reason) -> Option<Outcome> {
        self.decision = Decision { strategy: Strategy::Drop, reason, units_granted: 0, chunks: 1, ..self.decision };
        let outcome = self.outcome(Status::Dropped);
        self.finish(outcome, None, 0)
    }

    /// The decision to run on, now that the job reached the CPU lane holding `permits` permits
    /// (see `policy::redecide`).
    pub(crate) fn redecide(&self, permits: usize) -> Decision {
        let left = self.deadline.saturating_duration_since(Instant::now());
        policy::redecide(&self.profile, &self.decision, left.as_secs_f64() * 1e6, permits, &self.ctx.config.policy)
    }

    /// Runs the job on the current thread with the given extra permits for chunks; its
    /// predicted cost counts in `running` (the lane's running work) while it runs.
    pub(crate) fn run_now(mut self, extra: Vec<OwnedSemaphorePermit>, running: Option<&WorkGauge>) -> Option<Outcome> {
        let units = self.decision.units_granted;
        let heavy = self.decision.predicted_cost_us > self.ctx.config.policy.spawn_max_us;
        if heavy && !IN_CPU_LANE.with(Cell::get) {
            self.ctx.metrics.heavy_on_async.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.decision.chunks = 1 + extra.len();
        let held = running.map(|r| r.hold_on(self.decision.predicted_cost_us as u64, self.decision.chunks));
        let start = Instant::now();
        let (outcome, units_run) = match (&self.kernel.entry, &self.plan) {
            (Entry::Native(_), Some(plan)) => {
                let r = self.native_rounds(plan, units, extra);
                (r.outcome, r.units_run)
            }
            (Entry::Wasm(guest), Some(plan)) => {
                let r = self.guest_rounds(guest, plan, units);
                (r.outcome, r.units_run)
            }
            (Entry::Wasm(guest), None) => match self.guest_job(units) {
                Ok(job) => {
                    let run = guest.run(std::slice::from_ref(&job), self.guest_limits(units));
                    let fuel = run.as_ref().ok().and_then(|r| r.fuel_used);
                    let answer = run.map(|mut r| r.answers.swap_remove(0));
                    (self.guest_outcome(answer, fuel, units), units)
                }
                Err(e) => (self.failed(e), units),
            },
            (Entry::Native(_), None) => match native::run_chunks(&self.work, self.seed, units, extra, &self.ctx) {
                Ok(mut outputs) => (self.completed(units, outputs.swap_remove(0)), units),
                Err(e) => (self.failed(e), units),
            },
        };
        let service_us = start.elapsed().as_micros() as u64;
        drop(held);
        self.observe_cost(units_run, service_us);
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

    /// Feeds the kernel's cost correction with this run (uncorrected prediction vs measured,
    /// the measurement scaled back to one chunk's worth of serial time). The profile is undone
    /// with the correction it was built with: the one in force now moved while the job queued,
    /// and undoing with it fed each change back into the next (a rise made the prediction look
    /// smaller, so it rose again; under load it ran to its clamp, 20 times the cost model).
    fn observe_cost(&self, units: u64, service_us: u64) {
        let corrected = self.profile.cost_us(units);
        let serial_equivalent =
            service_us as f64 / policy::amdahl(self.profile.scaling_potential, self.decision.chunks);
        self.kernel.stats.observe_error(serial_equivalent / corrected);
        self.kernel.stats.observe(corrected / self.correction, serial_equivalent);
    }

    /// The caller went away: nobody waits for the outcome.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.is_closed())
    }
}

/// The failure of a job whose work was admitted for the other runtime than its kernel's.
/// Admission builds the work for the kernel it checked, so this is a router bug; it fails the
/// job alone, with the same words whichever runner found it.
fn mismatched_work(work: &Work) -> JobError {
    let (given, runner) = match work {
        Work::Native(_) => ("native", "Wasm"),
        Work::Wasm { .. } => ("Wasm", "native"),
    };
    JobError {
        kind: ErrorKind::Internal,
        field: None,
        message: format!(
            "{given} work reached the {runner} runner (a router bug: admission builds work for its kernel)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Runtime;
    use crate::manifest::Manifest;
    use helix_math::{KernelKind, Params, Prepared, Value};

    /// A job on the native `primecount` whose work is `work`, decided to run whole.
    fn pending(work: Work) -> Pending {
        let text = "name = \"primecount\"\nversion = \"1.0.0\"\nruntime = \"native\"\n\
                    [cost]\nfixed_us = 1.0\nper_unit_ns = 3.1\n[params.compute_cost]\ntype = \"integer\"\n";
        let manifest = Manifest::parse(text, "test").unwrap();
        let kernel = Arc::new(Kernel::new(manifest, Entry::Native(KernelKind::PrimeCount)));
        let profile = JobProfile {
            remaining_budget_us: 1e6,
            criticality: Criticality::Critical,
            units: 1,
            block: 1,
            fixed_us: 1.0,
            per_unit_us: 0.0,
            scaling_potential: 0.0,
            floor_fraction: None,
            error_exponent: 0.5,
            splittable: false,
            batch_delay_us: None,
            batch_open: false,
            allow_async_lanes: true,
            spent_before_us: 0.0,
            error_margin: 1.0,
        };
        let pressure = crate::policy::Pressure { permits: 1, queue_capacity: 1, ..Default::default() };
        let decision = policy::decide(&profile, &pressure, &Default::default());
        let now = Instant::now();
        Pending {
            id: 7,
            kernel,
            criticality: Criticality::Critical,
            work: Arc::new(work),
            seed: 1,
            decision,
            profile,
            correction: 1.0,
            plan: None,
            submitted: now,
            deadline: now + std::time::Duration::from_secs(1),
            reply: None,
            span: tracing::Span::none(),
            ctx: Arc::new(Context { config: RouterConfig::default(), metrics: Metrics::default() }),
        }
    }

    #[test]
    fn work_of_the_wrong_runtime_fails_its_job_alike_in_both_runners() {
        let params = Params::new().with("compute_cost", Value::Number(20_000.0));
        let native = Work::Native(Box::new(Prepared::parse(KernelKind::PrimeCount, params.clone()).unwrap().prepared));
        let guest = pending(native).guest_job(1).unwrap_err();
        let wasm = pending(Work::Wasm { params, counted: false });
        let ran = wasm.run_now(Vec::new(), None).expect("no reply channel: the outcome comes back");
        let native_runner = ran.error.clone().unwrap();
        for (e, given, runner) in [(&guest, "native", "Wasm"), (&native_runner, "Wasm", "native")] {
            assert_eq!(e.kind, ErrorKind::Internal, "{e:?}");
            assert!(e.message.starts_with(&format!("{given} work reached the {runner} runner")), "{e:?}");
        }
        assert_eq!((ran.status, ran.runtime), (Status::Failed, Some(Runtime::Native)));
    }
}
