//! `helix fleet`: replicas behind nginx on this machine, until SIGTERM or Ctrl-C.

use super::init_logs;
use helix_host::catalog::{Store, publish_folder};
use helix_host::fleet::{Fleet, FleetConfig};
use helix_host::serve::LogFormat;
use helix_host::wasm::WasmEngine;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub(super) struct FleetArgs {
    /// `helix serve` replicas behind the balancer, each on a free loopback port.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Where nginx listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Replicas one attempt may try after connection failures (nginx's
    /// proxy_next_upstream_tries). A job a replica refuses (429, 503) is sent once more, to
    /// another replica, whatever this is.
    #[arg(long, default_value_t = 2)]
    tries: usize,
    /// `helix serve` configuration (TOML) for every replica.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The nginx binary.
    #[arg(long, default_value = "nginx", env = "HELIX_NGINX")]
    nginx: PathBuf,
    /// Where the replicas' logs and nginx's configuration and logs go [default: a fresh folder
    /// under the system's temporary folder].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// The manifests folder: without --store, every replica serves and watches it.
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
    /// A shared kernel store (s3://BUCKET/PREFIX or file:///FOLDER): the manifests folder is
    /// published to it first, then every replica serves it and polls it ([store] in --config).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

pub(super) async fn run(a: FleetArgs) -> Result<ExitCode, String> {
    init_logs(LogFormat::Text, "info");
    let server_config = match &a.config {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read --config {}: {e}", p.display()))?,
        None => String::new(),
    };
    let source = match &a.store {
        Some(url) => {
            let store = Store::open(url, &Default::default())?;
            let engine = WasmEngine::new(Default::default()).ok();
            let keys = publish_folder(&a.manifests, &store, engine).await?;
            tracing::info!(store = %url, manifests = keys.len(), "published the manifests folder");
            PathBuf::from(url)
        }
        None => std::path::absolute(&a.manifests).map_err(|e| e.to_string())?,
    };
    let cfg = FleetConfig {
        binary: std::env::current_exe().map_err(|e| e.to_string())?,
        replicas: a.replicas,
        listen: a.listen,
        manifests: source,
        server_config,
        admin_token: std::env::var("HELIX_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        nginx: a.nginx,
        tries: a.tries,
        run_dir: a.run_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("helix-fleet-{}", std::process::id()))),
    };
    let fleet = Fleet::start(&cfg).await?;
    tracing::info!(
        balancer = %fleet.balancer,
        replicas = %fleet.replicas().join(" "),
        run_dir = %fleet.run_dir().display(),
        "fleet ready: nginx in front of {} replicas; SIGTERM or Ctrl-C stops it",
        cfg.replicas
    );
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: nginx first, then each replica drains");
    let codes = fleet.stop(Duration::from_secs(60)).await?;
    Ok(if codes.iter().all(|&c| c == 0) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
