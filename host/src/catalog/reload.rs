//! Keeps the registry in step with the manifests folder: new and changed manifests (or their
//! modules) are validated, compiled and swapped in; removed ones are unregistered; a refused one
//! leaves the previous version serving. Runs on a poll (the file watch) or on request.

use super::build::{load_kernel, manifest_paths};
use crate::job::Runtime;
use crate::manifest::{Manifest, ManifestError};
use crate::registry::Registry;
use crate::wasm::WasmEngine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a file looked like when last read: changes to either file trigger a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    manifest: Option<(SystemTime, u64)>,
    module: Option<(SystemTime, u64)>,
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn stamp(manifest_path: &Path) -> Stamp {
    let module = Manifest::load(manifest_path)
        .ok()
        .and_then(|m| m.module)
        .and_then(|m| stamp_of(&manifest_path.parent().unwrap_or(Path::new(".")).join(m.path)));
    Stamp { manifest: stamp_of(manifest_path), module }
}

struct Known {
    stamp: Stamp,
    /// The kernel this file registered, if it was accepted.
    registered: Option<(String, Runtime)>,
}

/// What one scan changed.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// `name@version (runtime)` of each kernel registered or replaced.
    pub loaded: Vec<String>,
    /// `name (runtime)` of each kernel whose manifest was removed.
    pub removed: Vec<String>,
    /// Manifests that failed to load; a kernel they registered before keeps serving.
    pub refused: Vec<ManifestError>,
}

impl ReloadReport {
    /// Whether the scan found nothing to change and refused nothing.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.removed.is_empty() && self.refused.is_empty()
    }
}

/// Registrations since start, for the metrics.
#[derive(Debug, Default)]
pub struct ReloadCounts {
    /// Kernels registered or replaced.
    pub loaded: AtomicU64,
    /// Manifests refused.
    pub refused: AtomicU64,
    /// Kernels unregistered: their manifest was removed, or now names another kernel.
    pub removed: AtomicU64,
}

pub struct Reloader {
    dir: PathBuf,
    engine: Option<Arc<WasmEngine>>,
    pub counts: ReloadCounts,
    /// Only the reloading thread touches this; it is not on any job's path.
    known: Mutex<HashMap<PathBuf, Known>>,
}

impl Reloader {
    pub fn new(dir: &Path, engine: Option<Arc<WasmEngine>>) -> Reloader {
        Reloader { dir: dir.to_path_buf(), engine, counts: ReloadCounts::default(), known: Mutex::new(HashMap::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compares the folder with what was loaded and applies the differences. Blocking: it
    /// compiles modules, so call it off the async threads.
    pub fn scan(&self, registry: &Registry) -> Result<ReloadReport, std::io::Error> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        self.scan_locked(&mut known, registry)
    }

    /// Changes files in the folder with the watch held off, then rescans, so a change of
    /// several files (a module and its manifest) is never seen half done. `change` gets the
    /// manifest file that registered `name` for `runtime`, if any.
    pub fn apply<T>(
        &self,
        registry: &Registry,
        name: &str,
        runtime: Runtime,
        change: impl FnOnce(Option<&Path>) -> Result<T, String>,
    ) -> Result<(T, ReloadReport), String> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let current = known
            .iter()
            .find(|(_, k)| k.registered.as_ref().is_some_and(|(n, r)| n == name && *r == runtime))
            .map(|(p, _)| p.clone());
        let done = change(current.as_deref())?;
        let report =
            self.scan_locked(&mut known, registry).map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        Ok((done, report))
    }

    fn scan_locked(
        &self,
        known: &mut HashMap<PathBuf, Known>,
        registry: &Registry,
    ) -> Result<ReloadReport, std::io::Error> {
        let mut report = ReloadReport::default();
        let paths = manifest_paths(&self.dir)?;
        for path in &paths {
            let now = stamp(path);
            if known.get(path).is_some_and(|k| k.stamp == now) {
                continue;
            }
            let previous = known.get(path).and_then(|k| k.registered.clone());
            match load_kernel(path, self.engine.as_ref()) {
                Ok(kernel) => {
                    let id = (kernel.manifest.name.clone(), kernel.runtime());
                    report.loaded.push(format!("{}@{} ({})", id.0, kernel.manifest.version, id.1.as_str()));
                    registry.insert(kernel);
                    // A file renamed its kernel: the old name goes.
                    if let Some(old) = previous.filter(|old| *old != id) {
                        registry.remove(&old.0, old.1);
                        report.removed.push(format!("{} ({})", old.0, old.1.as_str()));
                    }
                    known.insert(path.clone(), Known { stamp: now, registered: Some(id) });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "manifest refused; any previous version keeps serving");
                    report.refused.push(e);
                    known.insert(path.clone(), Known { stamp: now, registered: previous });
                }
            }
        }
        let gone: Vec<PathBuf> = known.keys().filter(|p| !paths.contains(p)).cloned().collect();
        for path in gone {
            if let Some((name, runtime)) = known.remove(&path).and_then(|k| k.registered) {
                registry.remove(&name, runtime);
                report.removed.push(format!("{name} ({})", runtime.as_str()));
            }
        }
        self.counts.loaded.fetch_add(report.loaded.len() as u64, Relaxed);
        self.counts.refused.fetch_add(report.refused.len() as u64, Relaxed);
        self.counts.removed.fetch_add(report.removed.len() as u64, Relaxed);
        Ok(report)
    }
}
