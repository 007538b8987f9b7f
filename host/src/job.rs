//! Layer 1: what a client submits: a kernel, its parameters, a latency budget. Never a strategy.

use helix_math::{Params, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who is shed or degraded first under pressure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Must survive overload: degraded or dropped only when its own budget cannot be met.
    #[default]
    Critical,
    /// Gives way first under pressure: run at its floor, or dropped.
    Sheddable,
}

impl Criticality {
    /// The criticality as JSON and the logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Critical => "critical",
            Criticality::Sheddable => "sheddable",
        }
    }
}

/// Which build of a kernel runs it, where a kernel has more than one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Compiled into the host.
    Native,
    /// A sandboxed WebAssembly component.
    Wasm,
}

impl Runtime {
    /// The runtime as JSON, manifests and the metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Wasm => "wasm",
        }
    }
}

/// A kernel, its parameters and a latency budget, and how much it matters.
#[derive(Clone, Debug)]
pub struct Job {
    /// The caller's id for the job, echoed in its outcome.
    pub id: u64,
    /// The kernel's name, as its manifest gives it.
    pub kernel: String,
    /// The kernel's parameters, checked against its manifest on submission.
    pub params: Params,
    /// The latency budget, from submission to outcome.
    pub budget: Duration,
    /// The random seed. Defaults to a mix of the id, so distinct jobs draw distinct streams.
    pub seed: Option<u64>,
    /// Who gives way first under pressure.
    pub criticality: Criticality,
    /// A preferred build; `None` lets the registry pick.
    pub runtime: Option<Runtime>,
    /// A standard error to reach instead of a unit count: the router sizes the units from
    /// what it learnt of the kernel's variance, and the job's unit count becomes a ceiling.
    pub target: Option<ErrorTarget>,
    /// Budget already spent before the router got the job (`budget` is what is left): the
    /// time behind a balancer and on the way in, and a reserve for the way back. Only whether
    /// the job could ever fit looks at it: on an idle fleet that time would not have gone.
    pub spent_before: Duration,
}

/// The precision an error-targeted job asks of one of its estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorTarget {
    /// The estimate it is about; `None` means the kernel's own (its manifest's
    /// `[units] estimate`, `price` for the option kernels).
    pub estimate: Option<String>,
    /// How small its standard error must be.
    pub tolerance: Tolerance,
}

/// A standard error to reach: in the estimate's own units, or as a fraction of its size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// At most this standard error.
    Absolute(f64),
    /// At most this fraction of the estimate's absolute value.
    Relative(f64),
}

impl Tolerance {
    /// The standard error reached at an estimate of `value`.
    pub fn std_error_at(self, value: f64) -> f64 {
        match self {
            Tolerance::Absolute(se) => se,
            Tolerance::Relative(r) => r * value.abs(),
        }
    }
}

impl Job {
    /// A critical job with the default seed, on whichever build the registry picks.
    pub fn new(id: u64, kernel: &str, params: Params, budget: Duration) -> Self {
        Job {
            id,
            kernel: kernel.to_string(),
            params,
            budget,
            seed: None,
            criticality: Criticality::Critical,
            runtime: None,
            target: None,
            spent_before: Duration::ZERO,
        }
    }

    /// The seed the job runs with: the one it gives, or a mix of its id.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| mix64(self.id))
    }
}

/// SplitMix64's finaliser: neighbouring ids give unrelated seeds.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A job in the classic HelixRouter shape, as existing job streams carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassicJob {
    /// The job's id; it also seeds the job.
    pub id: u64,
    /// Which classic kernel.
    pub kind: ClassicKind,
    /// The job's inputs: the values HashMix mixes, the positions a risk job holds.
    #[serde(default)]
    pub inputs: Vec<u64>,
    /// The work asked for, in the classic kernel's own units.
    pub compute_cost: u64,
    /// Carried by classic streams; the router takes the kernel's from its manifest instead.
    #[serde(default)]
    pub scaling_potential: f64,
    /// The latency budget, milliseconds.
    pub latency_budget_ms: u64,
}

/// The classic job kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassicKind {
    /// Rounds of rotate-xor-multiply over the inputs: the `hashmix` kernel.
    HashMix,
    /// Primes up to a bound: the `primecount` kernel.
    PrimeCount,
    /// A portfolio VaR: the `mc-var` kernel on a portfolio made from the inputs.
    MonteCarloRisk,
}

/// Paths for a classic MonteCarloRisk job: `compute_cost / 200` clamped to 5 000–50 000,
/// as the classic kernel sized its work.
pub fn classic_risk_paths(compute_cost: u64) -> u64 {
    (compute_cost / 200).clamp(5_000, 50_000)
}

impl From<ClassicJob> for Job {
    fn from(c: ClassicJob) -> Job {
        let budget = Duration::from_millis(c.latency_budget_ms);
        let cost = Value::Number(c.compute_cost as f64);
        match c.kind {
            ClassicKind::HashMix => {
                let inputs = Value::Array(c.inputs.iter().map(|&x| (x & ((1 << 53) - 1)) as f64).collect());
                Job::new(c.id, "hashmix", Params::new().with("inputs", inputs).with("compute_cost", cost), budget)
            }
            ClassicKind::PrimeCount => Job::new(c.id, "primecount", Params::new().with("compute_cost", cost), budget),
            ClassicKind::MonteCarloRisk => Job::new(c.id, "mc-var", classic_risk_portfolio(&c), budget),
        }
    }
}

/// The classic risk job's portfolio: one position per input (1 to 8 of them), sized by the
/// input, with vols from 15% and a 0.3 equicorrelation, at 99% over one day.
fn classic_risk_portfolio(c: &ClassicJob) -> Params {
    let inputs: &[u64] = if c.inputs.is_empty() { &[1] } else { &c.inputs[..c.inputs.len().min(8)] };
    let d = inputs.len();
    let positions = inputs.iter().map(|&x| 1e6 * (1.0 + (x % 100) as f64 / 100.0)).collect();
    let vols = (0..d).map(|i| 0.15 + 0.05 * i as f64).collect();
    let correlation = (0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.3 }).collect();
    Params::new()
        .with("positions", Value::Array(positions))
        .with("vols", Value::Array(vols))
        .with("correlation", Value::Array(correlation))
        .with("paths", Value::Number(classic_risk_paths(c.compute_cost) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_jobs_convert_with_their_budgets_and_sizes() {
        let risk = ClassicJob {
            id: 7,
            kind: ClassicKind::MonteCarloRisk,
            inputs: vec![3, 5],
            compute_cost: 2_000_000,
            scaling_potential: 0.9,
            latency_budget_ms: 40,
        };
        let job: Job = risk.into();
        assert_eq!(job.kernel, "mc-var");
        assert_eq!(job.budget, Duration::from_millis(40));
        assert_eq!(job.params.number("paths").unwrap(), 10_000.0);
        assert_eq!(classic_risk_paths(100), 5_000);
        assert_eq!(classic_risk_paths(u64::MAX), 50_000);
        let json = r#"{"id":1,"kind":"PrimeCount","compute_cost":5000,"latency_budget_ms":9}"#;
        let job: Job = serde_json::from_str::<ClassicJob>(json).unwrap().into();
        assert_eq!((job.kernel.as_str(), job.seed()), ("primecount", mix64(1)));
    }
}
