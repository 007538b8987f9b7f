//! `helix run`: one job through the router, its outcome printed.

use super::{init_logs, router};
use helix_host::serve::LogFormat;
use helix_host::{Criticality, Job, Runtime, Status, TargetRequest};
use helix_math::{Params, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub(super) struct RunArgs {
    /// Kernel name, e.g. mc-option, mc-var, particle-filter, ewma-cov, hashmix, primecount.
    kernel: String,
    /// A parameter, NAME=VALUE; arrays as comma-separated values, matrices row-major.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Latency budget in milliseconds.
    #[arg(long, default_value_t = 1000)]
    budget_ms: u64,
    /// Random seed (default: derived from the job id).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, value_enum, default_value = "critical")]
    criticality: CriticalityArg,
    /// Which build to run where a kernel has both.
    #[arg(long, value_enum)]
    runtime: Option<RuntimeArg>,
    /// Run until the target estimate's standard error is at most this, instead of a fixed unit
    /// count; the unit parameter (`paths`, default 100000) becomes the most it may use.
    #[arg(long, value_name = "SE", conflicts_with = "target_relative")]
    target_error: Option<f64>,
    /// As --target-error, as a fraction of the estimate (0.001: a tenth of a percent).
    #[arg(long, value_name = "FRACTION")]
    target_relative: Option<f64>,
    /// The estimate a target is about (default: the kernel's own, such as `price` or `var`).
    #[arg(long, value_name = "NAME")]
    target_estimate: Option<String>,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CriticalityArg {
    Critical,
    Sheddable,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RuntimeArg {
    Native,
    Wasm,
}

pub(super) async fn run(a: RunArgs) -> Result<ExitCode, String> {
    init_logs(LogFormat::Text, "warn");
    let router = router(&a.manifests)?;
    let mut job = Job::new(1, &a.kernel, parse_params(&a.params)?, Duration::from_millis(a.budget_ms));
    job.seed = a.seed;
    job.criticality = match a.criticality {
        CriticalityArg::Critical => Criticality::Critical,
        CriticalityArg::Sheddable => Criticality::Sheddable,
    };
    job.runtime = a.runtime.map(|r| match r {
        RuntimeArg::Native => Runtime::Native,
        RuntimeArg::Wasm => Runtime::Wasm,
    });
    if a.target_error.is_some() || a.target_relative.is_some() {
        let target =
            TargetRequest { std_error: a.target_error, relative_error: a.target_relative, estimate: a.target_estimate };
        job.target = Some(target.into_target().map_err(|e| {
            let flag = match e.field.as_deref() {
                Some("target.relative_error") => "--target-relative",
                _ => "--target-error",
            };
            format!("{flag}: {}", e.message)
        })?);
    } else if a.target_estimate.is_some() {
        return Err("--target-estimate needs --target-error or --target-relative".into());
    }
    let outcome = router.submit(job).await;
    if a.json {
        println!("{}", outcome.to_json());
    } else {
        print!("{}", helix_host::render_text(&outcome));
    }
    Ok(match outcome.status {
        Status::Completed | Status::Degraded => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// `NAME=VALUE`: a number, comma-separated numbers (an array), or text (an enum choice).
fn parse_params(raw: &[String]) -> Result<Params, String> {
    let mut params = Params::new();
    for p in raw {
        let (name, value) = p.split_once('=').ok_or_else(|| format!("--param {p:?} must be NAME=VALUE"))?;
        let value = value.trim();
        let parsed = if value.contains(',') {
            let xs: Result<Vec<f64>, _> = value.split(',').map(|x| x.trim().parse::<f64>()).collect();
            Value::Array(xs.map_err(|_| format!("--param {name}: {value:?} is not a list of numbers"))?)
        } else if let Ok(x) = value.parse::<f64>() {
            Value::Number(x)
        } else {
            Value::Text(value.to_string())
        };
        params = params.with(name.trim(), parsed);
    }
    Ok(params)
}
