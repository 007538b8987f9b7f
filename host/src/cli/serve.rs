//! `helix serve`: the router as a long-running HTTP service.

use super::init_logs;
use helix_host::serve::{LogFormat, Overrides, ServeConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct ServeArgs {
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
}

pub(super) async fn run(a: ServeArgs) -> Result<ExitCode, String> {
    let overrides = Overrides { listen: a.listen, manifests: a.manifests, log_format: a.log_format };
    let config = ServeConfig::load(a.config.as_deref(), overrides)?;
    init_logs(config.log_format, "info");
    let clean = helix_host::serve::serve(config).await?;
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
