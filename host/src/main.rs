//! `helix`: the HelixRouter command line.

use clap::{Parser, Subcommand};
use helix_host::serve::{LogFormat, Overrides, ServeConfig};
use helix_host::{Criticality, Job, Router, RouterConfig, Runtime};
use helix_math::{Params, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "helix", version, about = "HelixRouter: a latency-budgeted compute router for quant and ML kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the router over HTTP until SIGTERM or Ctrl-C.
    Serve {
        /// A TOML config file (every field optional); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The manifests folder [default: manifests].
        #[arg(long, env = "HELIX_MANIFESTS")]
        manifests: Option<PathBuf>,
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Run one job through the router and print its outcome.
    Run {
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
    },
    /// List the registered kernels, or check one manifest.
    Kernels {
        #[command(subcommand)]
        action: Option<KernelsAction>,
        #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
        manifests: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KernelsAction {
    /// Validate a manifest and its module (schema, sha256, contract exports, imports) without
    /// starting a server.
    Check { path: PathBuf },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("helix: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve { config, listen, manifests, log_format } => {
            let config = ServeConfig::load(config.as_deref(), Overrides { listen, manifests, log_format })?;
            init_logs(config.log_format, "info");
            let clean = helix_host::serve::serve(config).await?;
            Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Run { kernel, params, budget_ms, seed, criticality, runtime, json, manifests } => {
            init_logs(LogFormat::Text, "warn");
            let router = router(&manifests)?;
            let mut job = Job::new(1, &kernel, parse_params(&params)?, Duration::from_millis(budget_ms));
            job.seed = seed;
            job.criticality = match criticality {
                CriticalityArg::Critical => Criticality::Critical,
                CriticalityArg::Sheddable => Criticality::Sheddable,
            };
            job.runtime = runtime.map(|r| match r {
                RuntimeArg::Native => Runtime::Native,
                RuntimeArg::Wasm => Runtime::Wasm,
            });
            let outcome = router.submit(job).await;
            if json {
                println!("{}", outcome.to_json());
            } else {
                print!("{}", helix_host::outcome::render_text(&outcome));
            }
            Ok(match outcome.status {
                helix_host::Status::Completed | helix_host::Status::Degraded => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            })
        }
        Command::Kernels { action: Some(KernelsAction::Check { path }), .. } => {
            let engine = helix_host::wasm::WasmEngine::new(RouterConfig::default().wasm)?;
            match helix_host::registry::Kernel::load(&path, Some(&engine)) {
                Ok(k) => {
                    let m = &k.manifest;
                    println!("ok: {} {} ({})", m.name, m.version, m.runtime.as_str());
                    if let helix_host::registry::Entry::Wasm(w) = &k.entry {
                        println!("  module sha256 {}", w.sha256);
                        println!("  exports {}", helix_host::wasm::CONTRACT_EXPORT);
                        println!(
                            "  imports {}",
                            if w.imports.is_empty() { "nothing".to_string() } else { w.imports.join(", ") }
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("refused: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Kernels { action: None, manifests, json } => {
            let router = router(&manifests)?;
            let mut kernels = router.registry().all();
            kernels.sort_by(|a, b| {
                (&a.manifest.name, a.runtime().as_str()).cmp(&(&b.manifest.name, b.runtime().as_str()))
            });
            if json {
                let list: Vec<_> =
                    kernels.iter().map(|k| serde_json::to_value(&k.manifest).expect("manifest serialises")).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<16} {:<8} {:<8} {:<10} {:>8}  {:<9}  units (floor)",
                    "kernel", "version", "runtime", "cost", "scaling", "batching"
                );
                for k in &kernels {
                    let m = &k.manifest;
                    let units = m
                        .units
                        .as_ref()
                        .map_or("-".to_string(), |u| format!("{} ({:.0}%)", u.param, u.floor_fraction * 100.0));
                    let batch = m.batch.as_ref().map_or("-".to_string(), |b| format!("up to {}", b.max_size));
                    let cost = format!("{}us+{}ns", m.cost.fixed_us, m.cost.per_unit_ns);
                    println!(
                        "{:<16} {:<8} {:<8} {:<10} {:>8.2}  {:<9}  {units}",
                        m.name,
                        m.version,
                        m.runtime.as_str(),
                        cost,
                        m.scaling_potential,
                        batch
                    );
                }
            }
            for e in router.load_errors() {
                eprintln!("refused: {e}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level (`RUST_LOG=debug` shows every decision).
fn init_logs(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn router(manifests: &std::path::Path) -> Result<Router, String> {
    Router::from_dir(RouterConfig::default(), manifests).map_err(|e| e.to_string())
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
