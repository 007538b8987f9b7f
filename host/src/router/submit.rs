//! The submit pipeline: find the kernel, admit the job against its manifest, profile it, let
//! the policy decide, and hand it to the lane the decision names (or answer it at once).

use super::Router;
use crate::admission::{Admitted, Rejection, admit_native, admit_wasm};
use crate::execute::Pending;
use crate::job::Criticality;
use crate::job::{ErrorTarget, Job};
use crate::lanes::{LaneWork, MEMBER_SHARE, Member};
use crate::outcome::{ErrorKind, JobError, Outcome, Status, Timings};
use crate::policy::{self, Admission, Decision, JobProfile, Placement, Reason, Strategy};
use crate::precision::{self, Plan};
use crate::registry::{Entry, Kernel};
use helix_math::{Params, Value};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::sync::oneshot;

impl Router {
    /// Runs one job to its outcome.
    pub async fn submit(&self, mut job: Job) -> Outcome {
        let submitted = Instant::now();
        let metrics = &self.ctx.metrics;
        metrics.submitted.fetch_add(1, Relaxed);
        let span =
            tracing::info_span!("job", id = job.id, kernel = %job.kernel, criticality = job.criticality.as_str());
        let Some(kernel) = self.registry().pick(&job.kernel, job.runtime) else {
            metrics.unknown_kernel.fetch_add(1, Relaxed);
            let err = JobError {
                kind: ErrorKind::UnknownKernel,
                field: Some("kernel".into()),
                message: self.registry().missing(&job.kernel, job.runtime),
            };
            let o = rejected(&job, None, err, submitted);
            metrics.total.record(o.timings.total_us);
            return o;
        };
        let mut admitted = match admit(&kernel, std::mem::take(&mut job.params)) {
            Ok(a) => a,
            Err(r) => {
                let err = JobError { kind: ErrorKind::InvalidInput, field: r.field, message: r.message };
                let o = rejected(&job, Some(&kernel), err, submitted);
                metrics.record(&kernel.stats, &o);
                span.in_scope(|| tracing::debug!(status = "rejected", error = ?o.error, "job rejected"));
                return o;
            }
        };
        let plan = match job.target.as_ref().map(|t| plan_target(t, &kernel, &admitted)) {
            None => None,
            Some(Ok(plan)) => {
                // The units the target needs replace the count, which stays as the ceiling.
                admitted.units = plan.requested;
                Some(plan)
            }
            Some(Err(message)) => {
                let err = JobError { kind: ErrorKind::InvalidInput, field: Some("target".into()), message };
                let o = rejected(&job, Some(&kernel), err, submitted);
                metrics.record(&kernel.stats, &o);
                return o;
            }
        };
        // A targeted job's units are its own: it never shares a batch.
        let batch_key = plan.is_none().then(|| self.batch_key(&kernel, &admitted, job.seed())).flatten();
        let correction = kernel.stats.correction();
        let mut profile = self.profile(&kernel, &admitted, &job, submitted, batch_key.is_some(), correction);
        profile.batch_open = batch_key.is_some_and(|k| self.batchers.is_open(&kernel, k));
        let (mut decision, displace_us) = self.decide(&profile, submitted + job.budget);
        if let Err(left) = kernel.quarantine.admit(submitted, &self.ctx.config.quarantine) {
            // The wait is the quarantine's time left: clients are told when to retry.
            decision = Decision {
                strategy: Strategy::Drop,
                reason: Reason::Quarantined,
                units_granted: 0,
                predicted_wait_us: left.as_micros() as f64,
                ..decision
            };
        }
        let mut pending = Pending {
            id: job.id,
            kernel: kernel.clone(),
            criticality: job.criticality,
            work: Arc::new(admitted.work),
            seed: job.seed(),
            decision,
            profile,
            correction,
            plan,
            submitted,
            deadline: submitted + job.budget,
            reply: None,
            span: span.clone(),
            ctx: self.ctx.clone(),
        };
        span.in_scope(|| {
            tracing::debug!(
                strategy = decision.strategy.as_str(),
                reason = decision.reason.as_str(),
                units_requested = decision.units_requested,
                units_granted = decision.units_granted,
                predicted_cost_us = decision.predicted_cost_us,
                predicted_wait_us = decision.predicted_wait_us,
                "decided"
            )
        });
        let answered = "a job without a reply channel returns its outcome";
        let refusal = (decision.reason == Reason::NeverFits)
            .then(|| never_fits_error(&pending.profile, self.cpu.state.pressure().permits, &self.ctx.config.policy));
        match decision.strategy {
            Strategy::Drop => {
                let mut o = pending.drop_with(decision.reason).expect(answered);
                o.error = refusal;
                return o;
            }
            Strategy::Inline => return pending.run_now(Vec::new(), None).expect(answered),
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        pending.reply = Some(tx);
        match decision.strategy {
            Strategy::Drop | Strategy::Inline => unreachable!("answered above"),
            Strategy::Spawn => {
                tokio::spawn(async move { pending.run_now(Vec::new(), None) });
            }
            Strategy::Batch => {
                let delay = std::time::Duration::from_secs_f64(
                    kernel.manifest.batch.as_ref().map_or(0.0, |b| b.max_delay_ms) / 1e3,
                );
                let member =
                    Member { key: batch_key.expect("batch needs a key"), close_by: submitted + delay, pending };
                if let Err(m) = self.batchers.offer(member) {
                    let mut p = m.pending;
                    p.reply = None;
                    return p.drop_with(Reason::QueueFull).expect(answered);
                }
            }
            Strategy::CpuLane | Strategy::Split | Strategy::Degrade => {
                // Room is made before the job arrives behind it.
                self.cpu.displace(displace_us);
                if let Err(work) = self.cpu.submit(LaneWork::Job(Box::new(pending))) {
                    let LaneWork::Job(mut p) = work else { unreachable!("enqueued a job") };
                    p.reply = None;
                    return p.drop_with(Reason::QueueFull).expect(answered);
                }
            }
        }
        match rx.await {
            Ok(o) => o,
            // The lane always answers; a closed channel means the runtime is shutting down.
            Err(_) => rejected(
                &job,
                Some(&kernel),
                JobError { kind: ErrorKind::Panic, field: None, message: "router shut down".into() },
                submitted,
            ),
        }
    }

    /// The policy's decision for a job due at `deadline`, and the permit time of queued sheddable
    /// work that must give way for it. Deadline admission counts a heavy job into the work
    /// offered to the CPU lane and places it in the lane's queue under its class's ration; a job
    /// cheap enough never to wait there is decided as the queue model decides it.
    fn decide(&self, profile: &JobProfile, deadline: Instant) -> (Decision, f64) {
        let cfg = &self.ctx.config.policy;
        let pressure = self.cpu.state.pressure();
        let own_fault = |d: Decision| match d.reason {
            Reason::BudgetUnreachable if policy::never_fits(profile, pressure.permits, cfg) => {
                Decision { reason: Reason::NeverFits, ..d }
            }
            _ => d,
        };
        match cfg.admission {
            Admission::Deadline if !profile.is_cheap(cfg) => {
                // A job joining an open batch adds only its share of the batch's cost.
                let cost = profile.cost_us(profile.units);
                let joins = profile.batch_open && profile.batch_delay_us.is_some();
                let offered = if joins { cost * MEMBER_SHARE } else { cost };
                let critical = profile.criticality == Criticality::Critical;
                let rations = self.cpu.state.offer(critical, offered);
                let place = Placement {
                    ration: if critical { rations.critical } else { rations.sheddable },
                    ..self.cpu.state.place(deadline)
                };
                let d = own_fault(policy::decide_placed(profile, &pressure, &place, cfg));
                // Overload starts with a refusal and lasts while the ration still cuts; refusals
                // of critical jobs steer how much the ration lets in.
                if d.reason.refuses_room() {
                    self.cpu.state.refused(critical && d.reason.shorts_critical());
                } else if d.reason == Reason::Rationed {
                    self.cpu.state.cut();
                }
                (d, policy::displacement(profile, &d, &place, pressure.permits, cfg))
            }
            _ => (own_fault(policy::decide(profile, &pressure, cfg)), 0.0),
        }
    }

    /// What the policy knows of a job, its costs scaled by the kernel's cost correction `c`.
    fn profile(
        &self,
        kernel: &Kernel,
        a: &Admitted,
        job: &Job,
        submitted: Instant,
        batchable: bool,
        c: f64,
    ) -> JobProfile {
        let m = &kernel.manifest;
        let degrade = m.degradable();
        let native = matches!(kernel.entry, Entry::Native(_));
        JobProfile {
            remaining_budget_us: job.budget.saturating_sub(submitted.elapsed()).as_micros() as f64,
            criticality: job.criticality,
            units: a.units,
            block: a.work.block(m),
            fixed_us: m.cost.fixed_us * c,
            per_unit_us: m.cost.per_unit_us(&a.params) * c,
            scaling_potential: m.scaling_potential,
            floor_fraction: degrade.filter(|_| a.work.degradable()).map(|u| u.floor_fraction),
            error_exponent: m.units.as_ref().map_or(0.5, |u| u.error_exponent),
            splittable: a.work.splittable(),
            batch_delay_us: if batchable { m.batch.as_ref().map(|b| b.max_delay_ms * 1e3) } else { None },
            batch_open: false,
            // A guest costs an instantiation and may run until its deadline: never on async threads.
            allow_async_lanes: native,
            spent_before_us: job.spent_before.as_micros() as f64,
            error_margin: kernel.stats.prediction_error().1.max(1.0),
        }
    }

    /// Jobs share a batch when their kernel batches and the manifest's shared parameters, the
    /// seed and the units are equal.
    fn batch_key(&self, kernel: &Kernel, a: &Admitted, seed: u64) -> Option<u64> {
        let rule = kernel.manifest.batch.as_ref().filter(|_| self.ctx.config.batching)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&kernel.manifest.name, &kernel.manifest.version, seed, a.units).hash(&mut h);
        for name in &rule.share_when_equal {
            name.hash(&mut h);
            match a.params.get(name) {
                Some(Value::Number(x)) => x.to_bits().hash(&mut h),
                Some(Value::Array(v)) => v.iter().for_each(|x| x.to_bits().hash(&mut h)),
                Some(Value::Text(t)) => t.hash(&mut h),
                None => 0u8.hash(&mut h),
            }
        }
        // Non-zero: zero marks an empty slot in the open-batch hint.
        Some(h.finish() | 1)
    }
}

/// What a job that can never fit its budget is told: what its floor costs, what its budget
/// leaves, and the fix.
fn never_fits_error(p: &JobProfile, permits: usize, cfg: &policy::PolicyConfig) -> JobError {
    let (units, cost) = policy::idle_floor(p, permits);
    let usable = policy::asked_budget_us(p) * cfg.budget_use;
    JobError {
        kind: ErrorKind::InvalidInput,
        field: Some("budget_ms".into()),
        message: format!(
            "even on an idle server its smallest run ({units} units) needs about {cost:.0} us, more than the {usable:.0} us its budget leaves for work: raise budget_ms or ask for fewer units (retrying cannot help)"
        ),
    }
}

/// An error-targeted job's plan: its units sized from what the kernel learnt of its class.
fn plan_target(target: &ErrorTarget, kernel: &Kernel, a: &Admitted) -> Result<Plan, String> {
    if !a.work.degradable() {
        let param = kernel.manifest.units.as_ref().map_or("the unit count", |u| u.param.as_str());
        return Err(format!("kernel {} takes a target only with `{param}`, its ceiling", kernel.name));
    }
    precision::plan(target, &kernel.name, kernel.manifest.units.as_ref(), &a.params, a.units, &kernel.stats.learnt)
}

fn admit(kernel: &Kernel, params: Params) -> Result<Admitted, Rejection> {
    match &kernel.entry {
        Entry::Native(kind) => admit_native(&kernel.manifest, *kind, params),
        Entry::Wasm(_) => admit_wasm(&kernel.manifest, params),
    }
}

fn rejected(job: &Job, kernel: Option<&Kernel>, err: JobError, submitted: Instant) -> Outcome {
    let total_us = submitted.elapsed().as_micros() as u64;
    Outcome {
        id: job.id,
        kernel: kernel.map_or_else(|| Arc::from(job.kernel.as_str()), |k| k.name.clone()),
        version: kernel.map(|k| k.version.clone()),
        runtime: kernel.map(|k| k.runtime()).or(job.runtime),
        criticality: job.criticality,
        status: Status::Rejected,
        decision: None::<Decision>,
        estimates: Vec::new(),
        arrays: Vec::new(),
        error: Some(err),
        timings: Timings { queue_us: 0, service_us: 0, total_us },
        budget_us: job.budget.as_micros() as u64,
        fuel_used: None,
        batch_size: None,
        target: None,
    }
}
