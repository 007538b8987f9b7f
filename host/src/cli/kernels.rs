//! `helix kernels`: the registered kernels, or one manifest checked without a server.

use super::router;
use clap::Subcommand;
use helix_host::RouterConfig;
use helix_host::registry::Entry;
use helix_host::wasm::{CONTRACT_EXPORT, WasmEngine};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct KernelsArgs {
    #[command(subcommand)]
    action: Option<KernelsAction>,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum KernelsAction {
    /// Validate a manifest and its module (schema, sha256, contract exports, imports) without
    /// starting a server.
    Check { path: PathBuf },
}

pub(super) fn run(a: KernelsArgs) -> Result<ExitCode, String> {
    match a.action {
        Some(KernelsAction::Check { path }) => check(&path),
        None => list(&a.manifests, a.json),
    }
}

fn check(path: &Path) -> Result<ExitCode, String> {
    let engine = WasmEngine::new(RouterConfig::default().wasm)?;
    match helix_host::catalog::load_kernel(path, Some(&engine)) {
        Ok(k) => {
            let m = &k.manifest;
            println!("ok: {} {} ({})", m.name, m.version, m.runtime.as_str());
            if let Entry::Wasm(w) = &k.entry {
                println!("  module sha256 {}", w.sha256);
                println!("  exports {CONTRACT_EXPORT}");
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

fn list(manifests: &Path, json: bool) -> Result<ExitCode, String> {
    let router = router(manifests)?;
    let mut kernels = router.registry().all();
    kernels.sort_by(|a, b| (&a.manifest.name, a.runtime().as_str()).cmp(&(&b.manifest.name, b.runtime().as_str())));
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
            let units =
                m.units.as_ref().map_or("-".to_string(), |u| format!("{} ({:.0}%)", u.param, u.floor_fraction * 100.0));
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
