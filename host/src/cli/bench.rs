//! `helix bench`: every bundled kernel at fixed work, native and Wasm.

use super::{init_logs, write_json};
use helix_host::serve::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct BenchArgs {
    /// An eighth of the work and three runs: a quick look, not numbers to publish.
    #[arg(long)]
    quick: bool,
    /// Runs per measurement [default: 5, or 3 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Also write the numbers, with the machine, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
}

pub(super) async fn run(a: BenchArgs) -> Result<ExitCode, String> {
    init_logs(LogFormat::Text, "warn");
    let cfg = helix_host::bench::BenchConfig {
        quick: a.quick,
        runs: a.runs.unwrap_or(if a.quick { 3 } else { 5 }).max(1),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let manifests = a.manifests;
    let report = tokio::task::spawn_blocking(move || helix_host::bench::run(&manifests, cfg))
        .await
        .map_err(|e| format!("the bench panicked: {e}"))??;
    print!("{}", report.render_table());
    if let Some(path) = a.json {
        write_json(&path, &serde_json::to_value(&report).map_err(|e| e.to_string())?)?;
    }
    Ok(ExitCode::SUCCESS)
}
