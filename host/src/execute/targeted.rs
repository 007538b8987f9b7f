//! An error-targeted job's rounds (see `precision`): run the first round, read the target
//! estimate's error, and continue until it is met or the grant is spent. A native run keeps
//! its chunks and simulates only the new units; a guest answers whole jobs, so each of its
//! rounds reruns from the start with more units (the same bits as one run of that size).

use super::native::{guarded, kernel_error, simulate_chunks};
use super::{Pending, mismatched_work};
use crate::admission::Work;
use crate::outcome::{ErrorKind, JobError, Outcome, TargetReport};
use crate::precision::{Plan, Spread, next_round};
use crate::wasm::WasmKernel;
use helix_math::{Estimate, Output};
use tokio::sync::OwnedSemaphorePermit;

/// How the rounds ended: the outcome, and the units simulated in all (what the run cost).
pub(super) struct Rounds {
    pub(super) outcome: Outcome,
    pub(super) units_run: u64,
}

impl Pending {
    /// Runs a native error-targeted job in rounds, within `cap` units.
    pub(super) fn native_rounds(&self, plan: &Plan, cap: u64, extra: Vec<OwnedSemaphorePermit>) -> Rounds {
        let Work::Native(prepared) = &*self.work else {
            return Rounds { outcome: self.failed(mismatched_work(&self.work)), units_run: 0 };
        };
        let block = prepared.block();
        let mut upto = plan.first_round.min(cap);
        let run = || -> Result<(Output, Estimate, u64, u32), JobError> {
            // Extra permits speed the first round only; later rounds run on this one.
            let mut chunks = simulate_chunks(&self.work, self.seed, 0..upto, extra, &self.ctx)?;
            let mut round = 1;
            loop {
                let out = prepared.finish(chunks.clone()).map_err(kernel_error)?.swap_remove(0);
                let e = target_estimate(&out.estimates, plan, &self.kernel.name)?;
                let Some(next) = next_std(plan, upto, e, round, block, cap) else {
                    return Ok((out, e, upto, round));
                };
                chunks.push(guarded(&|| prepared.simulate(self.seed, upto..next))?);
                upto = next;
                round += 1;
            }
        };
        match run() {
            Ok((out, e, units, rounds)) => {
                self.learn_estimate(plan, e, units);
                let mut o = self.completed(cap, out);
                o.target = Some(self.report(plan, e, units, rounds));
                Rounds { outcome: o, units_run: units }
            }
            Err(e) => Rounds { outcome: self.failed(e), units_run: upto },
        }
    }

    /// Runs a guest's error-targeted job in rounds, within `cap` units.
    pub(super) fn guest_rounds(&self, guest: &WasmKernel, plan: &Plan, cap: u64) -> Rounds {
        let block = self.work.block(&self.kernel.manifest);
        let (mut upto, mut units_run, mut fuel_used, mut round) = (plan.first_round.min(cap), 0, None, 1);
        loop {
            let job = match self.guest_job(upto) {
                Ok(job) => job,
                Err(e) => return Rounds { outcome: self.failed(e), units_run },
            };
            let run = guest.run(std::slice::from_ref(&job), self.guest_limits(upto));
            units_run += upto;
            if let Some(f) = run.as_ref().ok().and_then(|r| r.fuel_used) {
                fuel_used = Some(fuel_used.unwrap_or(0) + f);
            }
            let answer = run.map(|mut r| r.answers.swap_remove(0));
            let found = match &answer {
                Ok(Ok(out)) => target_estimate(&out.estimates, plan, &self.kernel.name),
                // A failure ends the job as a plain run's would.
                _ => return Rounds { outcome: self.guest_outcome(answer, fuel_used, cap), units_run },
            };
            let e = match found {
                Ok(e) => e,
                Err(missing) => return Rounds { outcome: self.failed(missing), units_run },
            };
            match next_std(plan, upto, e, round, block, cap) {
                Some(next) => {
                    upto = next;
                    round += 1;
                }
                None => {
                    let mut o = self.guest_outcome(answer, fuel_used, cap);
                    o.target = Some(self.report(plan, e, upto, round));
                    self.learn_estimate(plan, e, upto);
                    return Rounds { outcome: o, units_run };
                }
            }
        }
    }

    /// Records what the run showed of its class.
    fn learn_estimate(&self, plan: &Plan, e: Estimate, units: u64) {
        if let Some(spread) = e.std_error.and_then(|se| Spread::observed(e.value, se, units)) {
            self.kernel.stats.learnt.learn(plan.class, spread);
        }
    }

    fn report(&self, plan: &Plan, e: Estimate, units: u64, rounds: u32) -> TargetReport {
        let std_error = plan.tolerance.std_error_at(e.value);
        let reached = e.std_error.unwrap_or(f64::INFINITY);
        TargetReport {
            estimate: plan.estimate.clone(),
            tolerance: plan.tolerance,
            std_error,
            reached,
            met: reached <= std_error,
            units,
            rounds,
            learnt: plan.learnt,
        }
    }
}

/// The next round's units for an estimate `e` after `upto` units, or `None` when done. An
/// estimate without an error bar is as precise as it gets.
fn next_std(plan: &Plan, upto: u64, e: Estimate, round: u32, block: u64, cap: u64) -> Option<u64> {
    let se = e.std_error?;
    next_round(plan.tolerance, upto, e.value, se, round - 1, block, cap)
}

/// The estimate a target is about, from a native (`&str`) or a guest's (`String`) answer.
fn target_estimate<N: AsRef<str>>(
    estimates: &[(N, Estimate)],
    plan: &Plan,
    kernel: &str,
) -> Result<Estimate, JobError> {
    estimates.iter().find(|(n, _)| n.as_ref() == plan.estimate).map(|(_, e)| *e).ok_or_else(|| {
        let names: Vec<&str> = estimates.iter().map(|(n, _)| n.as_ref()).collect();
        JobError {
            kind: ErrorKind::InvalidInput,
            field: Some("target.estimate".into()),
            message: format!("kernel {kernel} gives no estimate {:?}; it gives: {}", plan.estimate, names.join(", ")),
        }
    })
}
