//! Installing a kernel uploaded through the admin API: the manifest and module are validated in
//! a staging folder first (schema, sha256, contract exports, imports, compilation), and only
//! then moved into the manifests folder (or written to the shared store, by the catalog) and
//! registered. A refused upload leaves the folder, the store and the serving version untouched.

use super::build::load_kernel;
use super::reload::{ReloadReport, Reloader};
use crate::job::Runtime;
use crate::manifest::Manifest;
use crate::registry::Registry;
use crate::wasm::WasmEngine;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A manifest's text and, for a Wasm kernel, its module.
pub struct Upload {
    /// The manifest, as TOML text.
    pub manifest_text: String,
    /// The component's bytes: required for a Wasm kernel, refused for a native one.
    pub module: Option<Vec<u8>>,
}

/// Why an upload was refused.
#[derive(Debug, PartialEq)]
pub enum UploadError {
    /// The upload itself is wrong (the client's fault).
    Invalid(String),
    /// The folder could not be written (the server's fault).
    Io(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Invalid(m) | UploadError::Io(m) => f.write_str(m),
        }
    }
}

/// An upload that was installed and registered.
#[derive(Debug)]
pub struct Installed {
    /// The kernel's name.
    pub name: String,
    /// The version now registered.
    pub version: String,
    /// The kernel's runtime.
    pub runtime: Runtime,
    /// Where the manifest now lives: a file, or its URL in the shared store.
    pub location: String,
    /// An earlier version was registered and is now replaced.
    pub replaced: bool,
    /// What the rescan after installing changed in the registry.
    pub report: ReloadReport,
}

/// Checks `upload` as kernel `name` in a private folder: the manifest's schema, the module's
/// sha256 and contract, its compilation. Blocking: it compiles the module.
pub fn validate(engine: Option<&Arc<WasmEngine>>, name: &str, upload: &Upload) -> Result<Manifest, UploadError> {
    let invalid = UploadError::Invalid;
    let manifest = Manifest::parse(&upload.manifest_text, "manifest").map_err(|e| invalid(e.to_string()))?;
    if manifest.name != name {
        return Err(invalid(format!("the manifest names kernel {:?}, not {name:?}", manifest.name)));
    }
    let module_file = module_file(&manifest, upload)?;
    let staging = Staging::new().map_err(UploadError::Io)?;
    let staged_manifest = staging.dir.join(format!("{name}.toml"));
    write(&staged_manifest, upload.manifest_text.as_bytes())?;
    if let (Some(file), Some(bytes)) = (&module_file, &upload.module) {
        write(&staging.dir.join(file), bytes)?;
    }
    load_kernel(&staged_manifest, engine).map_err(|e| invalid(format!("refused: {}", e.message)))?;
    Ok(manifest)
}

/// The module's file name beside the manifest, when the upload has one as it must.
fn module_file(manifest: &Manifest, upload: &Upload) -> Result<Option<String>, UploadError> {
    let invalid = UploadError::Invalid;
    match (&manifest.module, &upload.module) {
        (Some(m), Some(_)) => Ok(Some(plain_file_name(&m.path).map_err(invalid)?)),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid("a wasm manifest needs its module uploaded beside it".into())),
        (None, Some(_)) => Err(invalid("a native manifest takes no module".into())),
    }
}

/// Validates `upload` as kernel `name` and installs it in the manifests folder. Blocking: it
/// compiles the module.
pub fn install(
    reloader: &Reloader,
    registry: &Registry,
    engine: Option<&Arc<WasmEngine>>,
    name: &str,
    upload: Upload,
) -> Result<Installed, UploadError> {
    let manifest = validate(engine, name, &upload)?;
    let module_file = module_file(&manifest, &upload)?;
    let runtime = manifest.runtime;
    let (installed, report) = reloader
        .apply(registry, name, runtime, |current| {
            let replaced = current.is_some();
            // A new kernel gets a folder of its own, so its module cannot collide with another's.
            let target =
                current.map_or_else(|| reloader.dir().join(name).join(format!("{name}.toml")), Path::to_path_buf);
            let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let old_module =
                current.and_then(|p| Manifest::load(p).ok()).and_then(|m| m.module).map(|m| dir.join(m.path));
            if let Some(file) = &module_file {
                let path = dir.join(file);
                if path.exists() && old_module.as_ref() != Some(&path) {
                    return Err(format!("{} already exists and is not this kernel's module", path.display()));
                }
                // Module first: the manifest that names it appears only once it is complete.
                write_atomically(&path, upload.module.as_deref().unwrap_or_default())?;
            }
            write_atomically(&target, upload.manifest_text.as_bytes())?;
            // Jobs in flight hold the compiled code, not the file: the old module can go.
            if let Some(old) = old_module.filter(|old| module_file.as_ref().map(|f| dir.join(f)).as_ref() != Some(old))
            {
                let _ = std::fs::remove_file(old);
            }
            Ok((target, replaced))
        })
        .map_err(UploadError::Io)?;
    let (path, replaced) = installed;
    registered(&report, name, &manifest)?;
    let location = path.display().to_string();
    Ok(Installed {
        name: name.to_string(),
        version: manifest.version,
        runtime: manifest.runtime,
        location,
        replaced,
        report,
    })
}

/// Whether the rescan after writing registered the uploaded version, and why not otherwise.
pub fn registered(report: &ReloadReport, name: &str, manifest: &Manifest) -> Result<(), UploadError> {
    let id = format!("{name}@{} ({})", manifest.version, manifest.runtime.as_str());
    if report.loaded.contains(&id) {
        return Ok(());
    }
    let why: Vec<String> = report.refused.iter().map(ToString::to_string).collect();
    Err(UploadError::Io(format!("{id} was written but not registered: {}", why.join("; "))))
}

/// Writes beside `path`, then renames over it: a reader (the watch, another replica) sees the
/// old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let file = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{file}.part"));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Modules sit next to their manifest: a path that leaves the folder is refused.
pub fn plain_file_name(path: &str) -> Result<String, String> {
    let mut parts = Path::new(path).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(f)), None) if path.ends_with(".wasm") => Ok(f.to_string_lossy().into_owned()),
        _ => Err(format!("module.path {path:?} must be a plain file name ending in .wasm")),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), UploadError> {
    std::fs::write(path, bytes).map_err(|e| UploadError::Io(format!("cannot write {}: {e}", path.display())))
}

/// A private folder outside the watched one, removed when done.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new() -> Result<Staging, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir =
            std::env::temp_dir().join(format!("helix-upload-{}-{}", std::process::id(), NEXT.fetch_add(1, Relaxed)));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Staging { dir })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_must_stay_beside_the_manifest() {
        assert_eq!(plain_file_name("k.wasm").unwrap(), "k.wasm");
        for bad in ["../k.wasm", "/tmp/k.wasm", "sub/k.wasm", "k.toml", "", "."] {
            assert!(plain_file_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
