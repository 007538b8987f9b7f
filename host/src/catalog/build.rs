//! Building kernels from manifests: a native kernel from its built-in entry point, a Wasm
//! kernel from the module beside its manifest (read, checked against its sha256, compiled).

use crate::job::Runtime;
use crate::manifest::{Manifest, ManifestError};
use crate::registry::{Entry, Kernel};
use crate::wasm::{WasmEngine, load_file};
use helix_math::KernelKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads the manifest at `path` and builds its kernel (reading and compiling its module, for a
/// Wasm kernel), without registering it. Blocking: it compiles.
pub fn load_kernel(path: &Path, engine: Option<&Arc<WasmEngine>>) -> Result<Kernel, ManifestError> {
    let m = Manifest::load(path)?;
    match (m.runtime, engine) {
        (Runtime::Native, _) => native_kernel(m),
        (Runtime::Wasm, Some(e)) => wasm_kernel(m, path.parent().unwrap_or(Path::new(".")), e),
        (Runtime::Wasm, None) => Err(ManifestError {
            source: path.display().to_string(),
            message: "wasm kernels need the Wasm engine, which this router was built without".into(),
        }),
    }
}

/// Builds a native kernel from its manifest: the entry point must be built in, and its unit
/// parameter the one the manifest names.
pub fn native_kernel(manifest: Manifest) -> Result<Kernel, ManifestError> {
    let entry_name = manifest.entry.clone().unwrap_or_else(|| manifest.name.clone());
    let kind = KernelKind::from_name(&entry_name).ok_or_else(|| ManifestError {
        source: manifest.name.clone(),
        message: format!(
            "no built-in kernel {entry_name:?} (built in: {})",
            KernelKind::ALL.map(KernelKind::name).join(", ")
        ),
    })?;
    if let Some(u) = &manifest.units
        && kind.unit_param() != Some(u.param.as_str())
    {
        let message = match kind.unit_param() {
            Some(param) => format!("units.param must be {param:?} for {entry_name}, got {:?}", u.param),
            None => format!("{entry_name} counts no units: remove [units]"),
        };
        return Err(ManifestError { source: manifest.name.clone(), message });
    }
    Ok(Kernel::new(manifest, Entry::Native(kind)))
}

/// Builds a Wasm kernel: reads, checks and compiles the module its manifest names, which lives
/// in `dir`, next to the manifest.
fn wasm_kernel(manifest: Manifest, dir: &Path, engine: &Arc<WasmEngine>) -> Result<Kernel, ManifestError> {
    let module = manifest.module.as_ref().expect("validated: a wasm manifest has a module");
    let cache = engine.config.cache_dir.as_deref();
    let k = load_file(engine, &dir.join(&module.path), &module.sha256, cache)
        .map_err(|message| ManifestError { source: manifest.name.clone(), message })?;
    Ok(Kernel::new(manifest, Entry::Wasm(k)))
}

/// The `*.toml` files in `dir` and in its immediate subfolders, sorted.
pub fn manifest_paths(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            for sub in std::fs::read_dir(&p)? {
                paths.push(sub?.path());
            }
        } else {
            paths.push(p);
        }
    }
    paths.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"));
    paths.sort();
    Ok(paths)
}
