//! Layer 13: the `helix` command line: the subcommands (one file each) and what they share.

mod bench;
mod fleet;
mod kernels;
mod load;
mod publish;
mod run;
mod serve;
mod soak;

use clap::{Parser, Subcommand};
use helix_host::serve::LogFormat;
use helix_host::{Router, RouterConfig};
use std::path::Path;
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
    Serve(serve::ServeArgs),
    /// Run one job through the router and print its outcome.
    Run(run::RunArgs),
    /// Every bundled kernel at fixed work, native and Wasm (fuel on and off): units/s, the
    /// Wasm/native ratio, fuel per unit and instantiation latency.
    Bench(bench::BenchArgs),
    /// Open-loop load: jobs arrive on a schedule whatever the router does, and each is timed
    /// from its scheduled arrival. One run (--rate), or a sweep that finds capacity C and runs
    /// at 0.5, 1, 1.5, 2 and 3 × C.
    Load(load::LoadArgs),
    /// A soak under attack: `helix serve` with hostile Wasm kernels beside the bundled ones,
    /// honest traffic past capacity alone and then with hostile jobs, bad requests and kernel
    /// re-registrations mixed in; checks that nothing is lost and everything stays bounded.
    Soak(soak::SoakArgs),
    /// List the registered kernels, or check one manifest.
    Kernels(kernels::KernelsArgs),
    /// Several `helix serve` replicas behind a real nginx on this machine, sharing one
    /// manifests folder or store, until SIGTERM or Ctrl-C.
    Fleet(fleet::FleetArgs),
    /// Validate a manifests folder and write it to a shared kernel store (module first).
    Publish(publish::PublishArgs),
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /openapi.json` serves).
    Openapi,
}

/// Parses the command line and runs the subcommand on a multi-threaded runtime.
pub fn main() -> ExitCode {
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
        Command::Serve(args) => serve::run(args).await,
        Command::Fleet(args) => fleet::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Soak(args) => soak::run(args).await,
        Command::Kernels(args) => kernels::run(args),
        Command::Publish(args) => publish::run(args).await,
        Command::Openapi => {
            print!("{}", helix_host::serve::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if s.is_finite() && s > 0.0 && s <= 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("--{what} must be a number of seconds in (0, 86400], got {s}"))
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

fn router(manifests: &Path) -> Result<Router, String> {
    Router::from_dir(RouterConfig::default(), manifests).map_err(|e| e.to_string())
}
