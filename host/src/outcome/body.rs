//! The outcome as it goes over the wire (`POST /v1/jobs`, `helix run --json`): one typed struct
//! per JSON object, so the OpenAPI schema is generated from the very types that write the
//! replies and cannot drift from them. Non-finite numbers are written as `null`.

use super::{ErrorKind, Outcome, Status};
use crate::job::{Criticality, Runtime, Tolerance};
use crate::policy::{Decision, Reason, Strategy};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How one job ended: what happened, the decision behind it, the answer and where the time went.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Outcome)]
pub struct OutcomeBody {
    /// The job's id on this server.
    pub id: u64,
    /// How it ended.
    pub status: Status,
    /// The kernel it named.
    pub kernel: String,
    /// The kernel version that took it; `null` when none did.
    #[schema(required = true)]
    pub version: Option<String>,
    /// The build that took it (or the one the job asked for, when none did).
    #[schema(required = true)]
    pub runtime: Option<Runtime>,
    /// The job's criticality, as submitted.
    pub criticality: Criticality,
    /// The router's decision; `null` for a job rejected before it was decided.
    #[schema(required = true)]
    pub decision: Option<DecisionBody>,
    /// The answer: each estimate by name (`price`, `var`, `es`, ...).
    pub estimates: BTreeMap<String, EstimateBody>,
    /// Named arrays of the answer (a covariance matrix row-major, filtered states).
    pub arrays: BTreeMap<String, Vec<Option<f64>>>,
    /// Where the time went, microseconds.
    pub timings_us: TimingsBody,
    /// The job's latency budget, microseconds (less what it spent before this server saw it).
    pub budget_us: u64,
    /// Answered, in full or degraded, within its budget.
    pub budget_met: bool,
    /// Why it was rejected or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobErrorBody>,
    /// Fuel a Wasm kernel burnt on it (its share, in a batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// Jobs answered by the one run that answered this one, when it ran in a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// How an error-targeted job fared against its target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetBody>,
}

/// How the router ran the job, and why.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = Decision)]
pub struct DecisionBody {
    /// How the job ran.
    pub strategy: Strategy,
    /// Why.
    pub reason: Reason,
    /// Work units the job asked for (paths, particles; 1 for a kernel without a count).
    pub units_requested: u64,
    /// Work units it ran with: fewer when degraded, 0 when dropped.
    pub units_granted: u64,
    /// Chunks it ran as (1 unless split).
    pub chunks: u64,
    /// Predicted service time of the units granted (of those asked for, when dropped).
    #[schema(required = true)]
    pub predicted_cost_us: Option<f64>,
    /// Predicted wait for a permit (for a quarantined kernel, its time left).
    #[schema(required = true)]
    pub predicted_wait_us: Option<f64>,
    /// How much wider the error bar is expected to be than with every unit asked for.
    #[schema(required = true)]
    pub error_factor: Option<f64>,
}

/// One estimate and its standard error.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = Estimate)]
pub struct EstimateBody {
    /// The estimate; `null` if it was not a finite number.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Its Monte Carlo standard error; `null` for an exact value.
    #[schema(required = true)]
    pub std_error: Option<f64>,
}

/// Microseconds from submission.
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
#[schema(as = Timings)]
pub struct TimingsBody {
    /// Waiting for a permit or for batch partners.
    pub queue: u64,
    /// Running the kernel.
    pub service: u64,
    /// From submission to the outcome.
    pub total: u64,
    /// Spent before this server saw the job, from its `X-Request-Start` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_server: Option<u64>,
    /// Kept back from the budget for the way back to the client, when `X-Request-Start` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_for_reply: Option<u64>,
}

/// Why a job was rejected or failed.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = JobError)]
pub struct JobErrorBody {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The parameter at fault, where one is.
    #[schema(required = true)]
    pub field: Option<String>,
    /// What to fix, in words.
    pub message: String,
}

/// What an error-targeted job asked for and reached.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = TargetReport)]
pub struct TargetBody {
    /// The estimate the target is about.
    pub estimate: String,
    /// The standard error asked for, when asked in the estimate's units.
    #[schema(required = true)]
    pub std_error: Option<f64>,
    /// The standard error asked for as a fraction of the estimate, when asked so.
    #[schema(required = true)]
    pub relative_error: Option<f64>,
    /// The standard error the target came to at the estimate's value.
    #[schema(required = true)]
    pub target_std_error: Option<f64>,
    /// The standard error reached.
    #[schema(required = true)]
    pub reached_std_error: Option<f64>,
    /// Whether the reached standard error is at most the target.
    pub met: bool,
    /// The units the answer is from.
    pub units: u64,
    /// Runs it took.
    pub rounds: u32,
    /// What the first run was sized from.
    pub sized_from: SizedFrom,
}

/// What the first run of an error-targeted job was sized from.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SizedFrom {
    /// The variance learnt on earlier jobs of the same class.
    Learnt,
    /// A pilot run of this job.
    Pilot,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl From<&Decision> for DecisionBody {
    fn from(d: &Decision) -> Self {
        DecisionBody {
            strategy: d.strategy,
            reason: d.reason,
            units_requested: d.units_requested,
            units_granted: d.units_granted,
            chunks: d.chunks as u64,
            predicted_cost_us: finite(d.predicted_cost_us),
            predicted_wait_us: finite(d.predicted_wait_us),
            error_factor: finite(d.error_factor),
        }
    }
}

impl From<&Outcome> for OutcomeBody {
    fn from(o: &Outcome) -> Self {
        let estimates = o
            .estimates
            .iter()
            .map(|(n, e)| {
                (n.to_string(), EstimateBody { value: finite(e.value), std_error: e.std_error.and_then(finite) })
            })
            .collect();
        let arrays = o.arrays.iter().map(|(n, a)| (n.to_string(), a.iter().map(|&x| finite(x)).collect())).collect();
        OutcomeBody {
            id: o.id,
            status: o.status,
            kernel: o.kernel.to_string(),
            version: o.version.as_deref().map(str::to_string),
            runtime: o.runtime,
            criticality: o.criticality,
            decision: o.decision.as_ref().map(DecisionBody::from),
            estimates,
            arrays,
            timings_us: TimingsBody {
                queue: o.timings.queue_us,
                service: o.timings.service_us,
                total: o.timings.total_us,
                ..TimingsBody::default()
            },
            budget_us: o.budget_us,
            budget_met: o.budget_met(),
            error: o.error.as_ref().map(|e| JobErrorBody {
                kind: e.kind,
                field: e.field.clone(),
                message: e.message.clone(),
            }),
            fuel_used: o.fuel_used,
            batch_size: o.batch_size.map(|n| n.get()),
            target: o.target.as_ref().map(|t| {
                let (std_error, relative_error) = match t.tolerance {
                    Tolerance::Absolute(x) => (Some(x), None),
                    Tolerance::Relative(x) => (None, Some(x)),
                };
                TargetBody {
                    estimate: t.estimate.clone(),
                    std_error,
                    relative_error,
                    target_std_error: finite(t.std_error),
                    reached_std_error: finite(t.reached),
                    met: t.met,
                    units: t.units,
                    rounds: t.rounds,
                    sized_from: if t.learnt { SizedFrom::Learnt } else { SizedFrom::Pilot },
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Reason, Strategy};
    use helix_math::Estimate;
    use std::borrow::Cow;
    use std::sync::Arc;

    fn outcome() -> Outcome {
        Outcome {
            id: 4,
            kernel: Arc::from("mc-option"),
            version: Some(Arc::from("1.0.0")),
            runtime: Some(Runtime::Wasm),
            criticality: Criticality::Sheddable,
            status: Status::Degraded,
            decision: Some(Decision {
                strategy: Strategy::Degrade,
                reason: Reason::DegradedToFit,
                units_requested: 1000,
                units_granted: 250,
                chunks: 1,
                predicted_cost_us: 120.5,
                predicted_wait_us: f64::INFINITY,
                error_factor: 2.0,
            }),
            estimates: vec![(Cow::Borrowed("price"), Estimate { value: 5.5, std_error: Some(0.25) })],
            arrays: vec![(Cow::Borrowed("states"), vec![1.0, f64::NAN])],
            error: None,
            timings: super::super::Timings { queue_us: 3, service_us: 5, total_us: 9 },
            budget_us: 10,
            fuel_used: Some(77),
            batch_size: None,
            target: None,
        }
    }

    #[test]
    fn the_wire_form_keeps_every_field_and_writes_non_finite_numbers_as_null() {
        let json = outcome().to_json();
        let expected = serde_json::json!({
            "id": 4, "status": "degraded", "kernel": "mc-option", "version": "1.0.0", "runtime": "wasm",
            "criticality": "sheddable",
            "decision": {"strategy": "degrade", "reason": "degraded_to_fit", "units_requested": 1000,
                "units_granted": 250, "chunks": 1, "predicted_cost_us": 120.5, "predicted_wait_us": null,
                "error_factor": 2.0},
            "estimates": {"price": {"value": 5.5, "std_error": 0.25}},
            "arrays": {"states": [1.0, null]},
            "timings_us": {"queue": 3, "service": 5, "total": 9},
            "budget_us": 10, "budget_met": true, "fuel_used": 77,
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn a_job_refused_before_any_decision_keeps_its_null_fields() {
        let mut o = outcome();
        (o.version, o.runtime, o.decision, o.fuel_used) = (None, None, None, None);
        o.status = Status::Rejected;
        o.error =
            Some(super::super::JobError { kind: ErrorKind::UnknownKernel, field: None, message: "no kernel".into() });
        let json = o.to_json();
        for key in ["version", "runtime", "decision"] {
            assert!(json[key].is_null() && json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["error"], serde_json::json!({"kind": "unknown_kernel", "field": null, "message": "no kernel"}));
        assert!(json.get("fuel_used").is_none() && json.get("target").is_none(), "{json}");
    }

    #[test]
    fn budget_too_small_is_named_as_the_api_names_it() {
        assert_eq!(serde_json::to_value(Reason::NeverFits).unwrap(), Reason::NeverFits.as_str());
        for s in Strategy::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
