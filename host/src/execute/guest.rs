//! Wasm work: a guest's limits (fuel, wall clock) and the outcome of its answer or of the
//! sandbox's verdict.

use super::{Pending, mismatched_work};
use crate::admission::Work;
use crate::metrics::WorkGauge;
use crate::outcome::{ErrorKind, JobError, Outcome, Status};
use crate::registry::Entry;
use crate::wasm::{GuestError, GuestFailure, GuestJob, GuestLimits, GuestOutput, WasmKernel};
use std::borrow::Cow;
use std::time::Instant;

/// Fuel a guest may burn per microsecond of budget left: far above any kernel's real rate
/// (~5 per ns measured), so it only stops guests that would overrun anyway.
const FUEL_PER_US_CEILING: u64 = 20_000;
/// Fuel every guest run gets on top, for instantiation and argument copies.
const FUEL_FLOOR: u64 = 20_000_000;

impl Pending {
    /// The job a guest runs for `units` granted units: the seed, the parameters and, where the
    /// parameters name the unit count, the count granted.
    pub(super) fn guest_job(&self, units: u64) -> Result<GuestJob, JobError> {
        match &*self.work {
            Work::Wasm { params, counted } => {
                Ok(GuestJob { seed: self.seed, units: counted.then_some(units), params: params.clone() })
            }
            work @ Work::Native(_) => Err(mismatched_work(work)),
        }
    }

    /// The fuel and wall-clock limits for a guest running `units`: four times the fuel its
    /// manifest predicts, never more than the budget left could burn. A manifest without a fuel
    /// rate is held to the time it claims instead (its cost model before the router's learnt
    /// correction), counted at the ceiling rate: a guest that overruns its claim sixteen-fold
    /// is stopped after a few milliseconds, where the budget alone would let it burn all of it.
    pub(super) fn guest_limits(&self, units: u64) -> GuestLimits {
        let remaining_us = self.deadline.saturating_duration_since(Instant::now()).as_micros() as u64;
        let budget_fuel = remaining_us.saturating_mul(FUEL_PER_US_CEILING).saturating_add(FUEL_FLOOR);
        let declared = match &*self.work {
            Work::Wasm { params, counted: true } => self.kernel.manifest.cost.fuel(params, units),
            _ => None,
        };
        let fuel = declared.unwrap_or_else(|| {
            let claimed_us = self.profile.cost_us(units) / self.kernel.stats.correction();
            claimed_us * FUEL_PER_US_CEILING as f64
        });
        let limit = ((fuel * 4.0) as u64).saturating_add(FUEL_FLOOR).min(budget_fuel);
        let metered = matches!(&self.kernel.entry, Entry::Wasm(g) if g.meters_fuel());
        GuestLimits { fuel: metered.then_some(limit), deadline_ms: remaining_us.div_ceil(1000) }
    }

    /// The outcome for a guest's answer (or the sandbox's verdict).
    pub(super) fn guest_outcome(
        &self,
        answer: Result<Result<GuestOutput, GuestError>, GuestFailure>,
        fuel: Option<u64>,
        units: u64,
    ) -> Outcome {
        if let Some(f) = fuel {
            self.kernel.stats.add_fuel(f, units);
        }
        self.record_for_quarantine(answer.is_err());
        let mut o = match answer {
            // NaN and infinity are refused at the boundary, as native kernels refuse them: the
            // engine does not canonicalise NaNs (see `WasmConfig::canonicalize_nans`), so a
            // NaN's bits are the one thing that could differ between hosts.
            Ok(Ok(out)) if non_finite(&out).is_some() => {
                let name = non_finite(&out).unwrap_or_default();
                let m = format!("kernel {} returned a non-finite value in `{name}`", self.kernel.name);
                self.failed(JobError { kind: ErrorKind::NumericFailure, field: None, message: m })
            }
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
}

impl Pending {
    /// Feeds the kernel version's quarantine with how this run ended, and says so when it trips.
    fn record_for_quarantine(&self, sandbox_failure: bool) {
        let cfg = &self.ctx.config.quarantine;
        if let Some(cooldown) = self.kernel.quarantine.record(sandbox_failure, Instant::now(), cfg) {
            self.kernel.stats.quarantines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                kernel = %self.kernel.name,
                version = %self.kernel.version,
                cooldown_ms = cooldown.as_millis() as u64,
                "kernel quarantined: its runs keep failing in the sandbox; jobs are dropped until a probe answers"
            );
        }
    }
}

/// The name of the first estimate, error bar or array holding a NaN or an infinity.
fn non_finite(out: &GuestOutput) -> Option<String> {
    let estimate =
        out.estimates.iter().find(|(_, e)| !e.value.is_finite() || e.std_error.is_some_and(|s| !s.is_finite()));
    let array = || out.arrays.iter().find(|(_, a)| a.iter().any(|x| !x.is_finite()));
    estimate.map(|(n, _)| n.clone()).or_else(|| array().map(|(n, _)| n.clone()))
}

/// A Wasm batch: one instantiation, `run-batch` with every member's job, one answer each. Its
/// predicted cost counts in `running` while it runs.
pub(super) fn run_guest_batch(guest: &WasmKernel, members: Vec<Pending>, predicted_us: u64, running: &WorkGauge) {
    let mut jobs = Vec::with_capacity(members.len());
    let mut runnable = Vec::with_capacity(members.len());
    for m in members {
        match m.guest_job(m.decision.units_granted) {
            Ok(job) => {
                jobs.push(job);
                runnable.push(m);
            }
            Err(e) => {
                let o = m.failed(e);
                m.finish(o, None, 0);
            }
        }
    }
    let members = runnable;
    // The tightest member sets the wall-clock limit; fuel is the sum of the members' limits.
    let Some(limits) = members.iter().map(|m| m.guest_limits(m.decision.units_granted)).reduce(|a, l| GuestLimits {
        fuel: a.fuel.zip(l.fuel).map(|(x, y)| x.saturating_add(y)),
        deadline_ms: a.deadline_ms.min(l.deadline_ms),
    }) else {
        return;
    };
    let held = running.hold(predicted_us);
    let start = Instant::now();
    let run = guest.run(&jobs, limits);
    let service_us = start.elapsed().as_micros() as u64;
    drop(held);
    let size = members.len();
    let answers: Vec<_> = match run {
        Ok(r) if r.answers.len() == size => {
            // Fuel is shared work: each member is charged its share.
            let share = r.fuel_used.map(|f| f / size as u64);
            r.answers.into_iter().map(|a| (Ok(a), share)).collect()
        }
        Ok(r) => {
            let failure = GuestFailure::Trap(format!("answered {} of {size} jobs", r.answers.len()));
            (0..size).map(|_| (Err(failure.clone()), None)).collect()
        }
        Err(f) => (0..size).map(|_| (Err(f.clone()), None)).collect(),
    };
    for (m, (answer, fuel)) in members.into_iter().zip(answers) {
        let mut o = m.guest_outcome(answer, fuel, m.decision.units_granted);
        o.batch_size = std::num::NonZeroU32::new(size as u32);
        m.finish(o, Some(start), service_us);
    }
}
