//! Filling a shared store from a manifests folder (`helix publish`, `helix fleet --store`):
//! every manifest is validated as a replica would load it (its module read, hash-checked and
//! compiled) before anything is written, then each kernel is written module first.

use super::build::{load_kernel, manifest_paths};
use super::store::Store;
use crate::wasm::WasmEngine;
use std::path::Path;
use std::sync::Arc;

/// One kernel to write: the manifest's key in the store, its text, its module's bytes.
struct Staged {
    key: String,
    text: String,
    module: Option<Vec<u8>>,
}

/// Validates every manifest in `dir` (and its subfolders), then writes them all to `store`;
/// the keys written. Nothing is written if any manifest is refused: a half-published folder
/// would leave replicas serving a mix. Blocking work (compiling) runs off the async threads.
pub async fn publish_folder(dir: &Path, store: &Store, engine: Option<Arc<WasmEngine>>) -> Result<Vec<String>, String> {
    let dir = dir.to_path_buf();
    let staged = tokio::task::spawn_blocking(move || stage(&dir, engine.as_ref()))
        .await
        .map_err(|e| format!("validation panicked: {e}"))??;
    let mut keys = Vec::with_capacity(staged.len());
    for s in staged {
        store.publish(&s.key, &s.text, s.module).await?;
        keys.push(s.key);
    }
    Ok(keys)
}

fn stage(dir: &Path, engine: Option<&Arc<WasmEngine>>) -> Result<Vec<Staged>, String> {
    let paths = manifest_paths(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if paths.is_empty() {
        return Err(format!("{} holds no manifests (*.toml, or */*.toml): pass --manifests DIR", dir.display()));
    }
    let mut refused = Vec::new();
    let mut staged = Vec::new();
    for path in &paths {
        let kernel = match load_kernel(path, engine) {
            Ok(k) => k,
            Err(e) => {
                refused.push(e.to_string());
                continue;
            }
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let module = match &kernel.manifest.module {
            Some(m) => {
                let file = folder.join(&m.path);
                Some(std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?)
            }
            None => None,
        };
        let relative = path.strip_prefix(dir).unwrap_or(path);
        let key = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        staged.push(Staged { key, text, module });
    }
    if refused.is_empty() { Ok(staged) } else { Err(format!("nothing published; refused: {}", refused.join("; "))) }
}
