//! Layer 6: where the registry's kernels come from: building kernels from manifests (`build`),
//! keeping the registry in step with the manifests folder (`reload`, on request or on a watch) and
//! installing uploaded kernels (`upload`). Everything here compiles, so it runs off the async
//! threads and never on a job's path.

mod build;
mod reload;
mod upload;

pub use build::{load_kernel, manifest_paths, native_kernel};
pub use reload::{ReloadCounts, ReloadReport};
pub use upload::{Installed, Upload, UploadError};

use crate::manifest::ManifestError;
use crate::registry::Registry;
use crate::wasm::WasmEngine;
use reload::Reloader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why the manifests folder could not be read (a manifest that fails validation is not this:
/// it is skipped and reported, and the rest still load).
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// The registry and what feeds it: the Wasm engine kernels compile on, and the manifests
/// folder, if there is one.
pub(crate) struct Catalog {
    registry: Arc<Registry>,
    engine: Option<Arc<WasmEngine>>,
    reloader: Option<Arc<Reloader>>,
    load_errors: Vec<ManifestError>,
}

impl Catalog {
    /// No kernels and no folder: kernels are registered by hand.
    pub(crate) fn empty(engine: Option<Arc<WasmEngine>>) -> Catalog {
        Catalog { registry: Arc::default(), engine, reloader: None, load_errors: Vec::new() }
    }

    /// Every manifest in `dir`, registered; manifests that fail validation are skipped and kept
    /// in `load_errors`. Blocking: it compiles modules.
    pub(crate) fn from_dir(dir: &Path, engine: Option<Arc<WasmEngine>>) -> Result<Catalog, LoadError> {
        let mut catalog = Catalog::empty(engine);
        let reloader = Arc::new(Reloader::new(dir, catalog.engine.clone()));
        let report =
            reloader.scan(&catalog.registry).map_err(|e| LoadError(format!("cannot read {}: {e}", dir.display())))?;
        catalog.load_errors = report.refused;
        catalog.reloader = Some(reloader);
        Ok(catalog)
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn engine(&self) -> Option<&Arc<WasmEngine>> {
        self.engine.as_ref()
    }

    pub(crate) fn load_errors(&self) -> &[ManifestError] {
        &self.load_errors
    }

    /// Registrations since start; `None` without a manifests folder.
    pub(crate) fn reload_counts(&self) -> Option<&ReloadCounts> {
        self.reloader.as_deref().map(|r| &r.counts)
    }

    /// Picks up new, changed and removed manifests now (compiling off the async threads).
    pub(crate) async fn reload(&self) -> Result<ReloadReport, LoadError> {
        let reloader = self.reloader.clone().ok_or_else(|| LoadError("this router has no manifests folder".into()))?;
        let registry = self.registry.clone();
        let dir = reloader.dir().display().to_string();
        tokio::task::spawn_blocking(move || reloader.scan(&registry))
            .await
            .map_err(|e| LoadError(format!("reload panicked: {e}")))?
            .map_err(|e| LoadError(format!("cannot read {dir}: {e}")))
    }

    /// Validates an uploaded kernel away from the manifests folder, then installs and registers
    /// it (compiling off the async threads).
    pub(crate) async fn install(&self, name: &str, upload: Upload) -> Result<Installed, UploadError> {
        let reloader =
            self.reloader.clone().ok_or_else(|| UploadError::Io("this router has no manifests folder".into()))?;
        let (registry, engine, name) = (self.registry.clone(), self.engine.clone(), name.to_string());
        tokio::task::spawn_blocking(move || upload::install(&reloader, &registry, engine.as_ref(), &name, upload))
            .await
            .map_err(|e| UploadError::Io(format!("install panicked: {e}")))?
    }

    /// Reloads what changed in the manifests folder every `period`, until the catalog is dropped.
    pub(crate) fn watch(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(catalog) = weak.upgrade() else { return };
                match catalog.reload().await {
                    Ok(report) if !report.is_empty() => tracing::info!(
                        loaded = ?report.loaded,
                        removed = ?report.removed,
                        refused = report.refused.len(),
                        "manifests reloaded"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "manifest watch failed"),
                }
            }
        });
    }
}
