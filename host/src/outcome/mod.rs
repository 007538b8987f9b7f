//! Layer 3: every submitted job ends in exactly one `Outcome`: what happened, the decision behind
//! it, the answer (named estimates with standard errors) and where the time went.

mod body;

pub use body::OutcomeBody;

use crate::job::{Criticality, Runtime, Tolerance};
use crate::policy::Decision;
use helix_math::{Estimate, Output};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::Arc;

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran with every unit it asked for.
    Completed,
    /// It ran with fewer units than it asked for (a wider error bar), to fit its budget.
    Degraded,
    /// It did not run: the decision's reason says why (queue full, budget unreachable, ...).
    Dropped,
    /// It was refused before costing anything: an unknown kernel or invalid input.
    Rejected,
    /// It ran and failed: the error's kind says how.
    Failed,
}

impl Status {
    /// Every status, in the order of `index`.
    pub const ALL: [Status; 5] =
        [Status::Completed, Status::Degraded, Status::Dropped, Status::Rejected, Status::Failed];

    /// The status as the JSON outcome and the metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Degraded => "degraded",
            Status::Dropped => "dropped",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
        }
    }

    /// The status's place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The kind of a rejection or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The job named no registered kernel (or none for the runtime it asked for).
    UnknownKernel,
    /// A parameter broke its manifest's rule or the kernel's own check; `field` names it.
    InvalidInput,
    /// The computation gave a non-finite or otherwise unusable number.
    NumericFailure,
    /// The kernel panicked; the panic was caught.
    Panic,
    /// A Wasm guest trapped, ran out of fuel or time, or broke the contract.
    Sandbox,
    /// The router broke one of its own rules (a bug to report); only this job failed.
    Internal,
}

impl ErrorKind {
    /// The kind as the JSON outcome names it (`error.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownKernel => "unknown_kernel",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NumericFailure => "numeric_failure",
            ErrorKind::Panic => "panic",
            ErrorKind::Sandbox => "sandbox",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Why a job was rejected or failed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The parameter at fault, where one is.
    pub field: Option<String>,
    /// What to fix, in words.
    pub message: String,
}

/// Microseconds spent queued, in service and in all, from submission.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// From submission to the start of service (waiting for a permit or for batch partners).
    pub queue_us: u64,
    /// Running the kernel.
    pub service_us: u64,
    /// From submission to the outcome.
    pub total_us: u64,
}

/// How one submitted job ended: exactly one per job.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The job's id, as submitted.
    pub id: u64,
    /// The kernel it named.
    pub kernel: Arc<str>,
    /// The kernel version that took it; `None` when no kernel did.
    pub version: Option<Arc<str>>,
    /// The build that took it (or the one the job asked for, when none did).
    pub runtime: Option<Runtime>,
    /// The job's criticality, as submitted.
    pub criticality: Criticality,
    /// How it ended.
    pub status: Status,
    /// The policy's decision; `None` for a job rejected before it was decided.
    pub decision: Option<Decision>,
    /// The answer: named estimates with their standard errors. Names are static for native
    /// kernels and owned for Wasm ones.
    pub estimates: Vec<(Cow<'static, str>, Estimate)>,
    /// Named arrays of the answer (a covariance matrix, filtered states).
    pub arrays: Vec<(Cow<'static, str>, Vec<f64>)>,
    /// Why it was rejected or failed.
    pub error: Option<JobError>,
    /// Where the time went.
    pub timings: Timings,
    /// The job's latency budget, microseconds.
    pub budget_us: u64,
    /// Fuel a Wasm kernel burnt on it (its share, in a batch).
    pub fuel_used: Option<u64>,
    /// Jobs answered by the one run that answered this one, when it ran in a batch: the
    /// service time is the whole batch's.
    pub batch_size: Option<NonZeroU32>,
    /// How an error-targeted job fared against its target.
    pub target: Option<TargetReport>,
}

/// What an error-targeted job asked and reached.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetReport {
    /// The estimate the target is about.
    pub estimate: String,
    /// The target as asked.
    pub tolerance: Tolerance,
    /// The standard error the target came to at the estimate's value.
    pub std_error: f64,
    /// The estimate's standard error reached.
    pub reached: f64,
    /// `reached <= std_error`.
    pub met: bool,
    /// The units the answer is from.
    pub units: u64,
    /// Runs it took (the first sized from a learnt variance or a pilot, each later one
    /// continuing the last).
    pub rounds: u32,
    /// Whether the first round was sized from a variance learnt on earlier jobs (else it was
    /// a pilot).
    pub learnt: bool,
}

impl Outcome {
    /// It was answered (in full or degraded) within its budget.
    pub fn budget_met(&self) -> bool {
        matches!(self.status, Status::Completed | Status::Degraded) && self.timings.total_us <= self.budget_us
    }

    /// The estimate named `name`, if the answer has one.
    pub fn estimate(&self, name: &str) -> Option<Estimate> {
        self.estimates.iter().find(|(n, _)| n == name).map(|(_, e)| *e)
    }

    /// The array named `name`, if the answer has one.
    pub fn array(&self, name: &str) -> Option<&[f64]> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a.as_slice())
    }

    pub(crate) fn set_output(&mut self, out: Output) {
        self.estimates = out.estimates.into_iter().map(|(n, e)| (Cow::Borrowed(n), e)).collect();
        self.arrays = out.arrays.into_iter().map(|(n, a)| (Cow::Borrowed(n), a)).collect();
    }

    /// The JSON object `helix run --json` prints and `POST /v1/jobs` returns.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_body()).unwrap_or(Value::Null)
    }

    /// The outcome as its wire type, the one the OpenAPI schema is generated from.
    pub fn to_body(&self) -> OutcomeBody {
        OutcomeBody::from(self)
    }
}

/// A value as the text outcome prints it: eight decimals, or seven significant digits when that
/// would hide them (a deep out-of-the-money price of 4.9e-8 is not `0.00000005`).
fn shown(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e12) { format!("{v:.6e}") } else { format!("{v:.8}") }
}

/// A human-readable rendering for the terminal.
pub fn render_text(o: &Outcome) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{} {} ({})", o.kernel, o.status.as_str(), o.runtime.map_or("-", Runtime::as_str));
    if let Some(d) = o.decision {
        let _ = writeln!(
            s,
            "  decision: {} because {}; units {}/{}; predicted {:.0} us + {:.0} us wait",
            d.strategy.as_str(),
            d.reason.as_str(),
            d.units_granted,
            d.units_requested,
            d.predicted_cost_us,
            d.predicted_wait_us
        );
    }
    for (name, e) in &o.estimates {
        let value = shown(e.value);
        match e.std_error {
            Some(se) => _ = writeln!(s, "  {name:<18} {value:>18} ± {se:.3e}"),
            None => _ = writeln!(s, "  {name:<18} {value:>18}"),
        }
    }
    for (name, a) in &o.arrays {
        let shown: Vec<String> = a.iter().take(8).map(|x| format!("{x:.6}")).collect();
        let more = if a.len() > 8 { format!(", ... ({} values)", a.len()) } else { String::new() };
        let _ = writeln!(s, "  {name:<16} [{}{more}]", shown.join(", "));
    }
    if let Some(t) = &o.target {
        let asked = match t.tolerance {
            Tolerance::Absolute(x) => format!("{x:.3e}"),
            Tolerance::Relative(r) => format!("{r} of the value ({:.3e})", t.std_error),
        };
        let _ = writeln!(
            s,
            "  target: {} std error {asked}: {} at {:.3e} with {} units, {} round{} from a {}",
            t.estimate,
            if t.met { "met" } else { "not met" },
            t.reached,
            t.units,
            t.rounds,
            if t.rounds == 1 { "" } else { "s" },
            if t.learnt { "learnt variance" } else { "pilot" }
        );
    }
    if let Some(f) = o.fuel_used {
        let _ = writeln!(s, "  fuel used: {f}");
    }
    if let Some(e) = &o.error {
        let _ = writeln!(
            s,
            "  error: {} {}{}",
            e.kind.as_str(),
            e.field.as_ref().map_or(String::new(), |f| format!("`{f}` ")),
            e.message
        );
    }
    let t = o.timings;
    let _ = writeln!(
        s,
        "  timings: queue {} us, service {} us, total {} us (budget {} us, {})",
        t.queue_us,
        t.service_us,
        t.total_us,
        o.budget_us,
        match o.status {
            // Refused before any work: no budget was spent on it, so none was missed.
            Status::Rejected | Status::Dropped => "not run",
            _ if o.budget_met() => "met",
            _ => "missed",
        }
    );
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny_and_huge_values_keep_their_digits() {
        assert_eq!(super::shown(4.907_748e-8), "4.907748e-8");
        assert_eq!(super::shown(12.5), "12.50000000");
        assert_eq!(super::shown(0.0), "0.00000000");
        assert_eq!(super::shown(-2.5e13), "-2.500000e13");
    }
}
