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
        let header = ["kernel", "version", "runtime", "cost", "scaling", "batching", "units (floor)"].map(String::from);
        let rows: Vec<[String; 7]> = kernels
            .iter()
            .map(|k| {
                let m = &k.manifest;
                let units =
                    m.units.as_ref().map_or("-".into(), |u| format!("{} ({:.0}%)", u.param, u.floor_fraction * 100.0));
                [
                    m.name.clone(),
                    m.version.clone(),
                    m.runtime.as_str().to_string(),
                    format!("{}us+{}ns", m.cost.fixed_us, m.cost.per_unit_ns),
                    format!("{:.2}", m.scaling_potential),
                    m.batch.as_ref().map_or("-".into(), |b| format!("up to {}", b.max_size)),
                    units,
                ]
            })
            .collect();
        print!("{}", table(&header, &rows));
    }
    for e in router.load_errors() {
        eprintln!("refused: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows under a header, each column as wide as its widest cell; `scaling` (a number) is
/// right-aligned.
fn table(header: &[String; 7], rows: &[[String; 7]]) -> String {
    let width = |c: usize| std::iter::once(header).chain(rows).map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..7).map(width).collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(c, cell)| {
                    if c == 4 { format!("{cell:>w$}", w = widths[c]) } else { format!("{cell:<w$}", w = widths[c]) }
                },
            )
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_lines_up_whatever_its_longest_cell() {
        let header = ["kernel", "version", "runtime", "cost", "scaling", "batching", "units (floor)"].map(String::from);
        let row = |name: &str, cost: &str| [name, "1.0.0", "native", cost, "0.50", "-", "-"].map(String::from);
        let text = table(&header, &[row("hashmix", "0.2us+0.027ns"), row("a-much-longer-kernel-name", "3us+12ns")]);
        let lines: Vec<&str> = text.lines().collect();
        let column = |l: &str| l.find("native").or_else(|| l.find("runtime")).unwrap();
        assert!(lines.iter().all(|l| column(l) == column(lines[0])), "{text}");
        // The cost column is as wide as its longest cell, so the numbers after it line up too.
        assert_eq!(lines[1].find("0.50").unwrap(), lines[2].find("0.50").unwrap(), "{text}");
    }
}
