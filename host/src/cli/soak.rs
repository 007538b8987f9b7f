//! `helix soak`: `helix serve` (or a fleet of it behind nginx) under honest load past capacity,
//! then under attack.

use super::{init_logs, seconds, write_json};
use helix_host::serve::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub(super) struct SoakArgs {
    /// Seconds per phase (honest alone, under attack, then alone again).
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Honest jobs per second [default: --load × the capacity C found first].
    #[arg(long)]
    rate: Option<f64>,
    /// The honest load as a multiple of the capacity C.
    #[arg(long, default_value_t = 3.0)]
    load: f64,
    /// Seconds per capacity probe.
    #[arg(long, default_value_t = 5.0)]
    probe_duration: f64,
    /// Seconds of light load before phase 1, so cost corrections settle.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Hostile jobs and bad requests per honest job.
    #[arg(long, default_value_t = 0.1)]
    hostile_share: f64,
    /// Seconds between kernel re-registrations.
    #[arg(long, default_value_t = 2.0)]
    swap_every: f64,
    /// The honest job mix (TOML) [default: the bundled mix].
    #[arg(long, value_name = "FILE")]
    mix: Option<PathBuf>,
    /// Seeds the traffic: the same seed offers the same jobs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Turn kernel quarantine off in the server (to see what it saves).
    #[arg(long)]
    no_quarantine: bool,
    /// Extra `helix serve` configuration (TOML) for the server under test.
    #[arg(long, value_name = "FILE")]
    server_config: Option<PathBuf>,
    /// Where the hostile test guests were built [default: target/wasm/wasm32-wasip2/release
    /// beside the manifests folder].
    #[arg(long, value_name = "DIR")]
    hostile_modules: Option<PathBuf>,
    /// Soak a fleet of this many replicas behind nginx (sharing one manifests folder) instead
    /// of one server: the traffic goes through the balancer, the checks cover every replica.
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// The nginx binary, for --replicas.
    #[arg(long, default_value = "nginx", env = "HELIX_NGINX")]
    nginx: PathBuf,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
}

pub(super) async fn run(a: SoakArgs) -> Result<ExitCode, String> {
    init_logs(LogFormat::Text, "warn");
    let manifests = std::path::absolute(&a.manifests).map_err(|e| e.to_string())?;
    let hostile_modules = match a.hostile_modules {
        Some(d) => d,
        None => manifests.parent().unwrap_or(&manifests).join("target/wasm/wasm32-wasip2/release"),
    };
    let mut server_config = match &a.server_config {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => String::new(),
    };
    if a.no_quarantine {
        server_config.push_str("\n[router.quarantine]\nafter_failures = 0\n");
    }
    if !(a.hostile_share > 0.0 && a.load > 0.0) {
        return Err("--hostile-share and --load must be positive".into());
    }
    let cfg = helix_host::soak::SoakConfig {
        binary: std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
        manifests,
        hostile_modules,
        mix: match &a.mix {
            Some(m) => helix_host::load::Mix::load(m)?,
            None => helix_host::load::Mix::bundled(),
        },
        rate: a.rate,
        load: a.load,
        max_rate: None,
        duration: seconds("duration", a.duration)?,
        probe: seconds("probe-duration", a.probe_duration)?,
        warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
        hostile_share: a.hostile_share,
        swap_every: seconds("swap-every", a.swap_every)?,
        seed: a.seed,
        server_config,
        balanced: match a.replicas {
            Some(0) => return Err("--replicas must be at least 1".into()),
            Some(replicas) => Some(helix_host::soak::Balanced { replicas, nginx: a.nginx }),
            None => None,
        },
        progress: true,
    };
    let machine = helix_host::machine::Machine::describe();
    eprintln!("machine: {}", machine.summary());
    let report = helix_host::soak::run(cfg).await?;
    print!("{}", report.render_text());
    if let Some(path) = &a.json {
        let json = serde_json::json!({"machine": machine, "soak": report});
        write_json(path, &json)?;
    }
    Ok(if report.passed(true) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
