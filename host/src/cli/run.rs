//! `helix run`: one job through the router, its outcome printed.

use super::{init_logs, router};
use helix_host::serve::LogFormat;
use helix_host::{Criticality, Job, Runtime, Status};
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
