//! Layer 6: where the registry's kernels come from: building kernels from manifests (`build`),
//! keeping the registry in step with the manifests folder (`reload`, on request or on a watch),
//! installing uploaded kernels (`upload`), and a shared store that replicas poll (`store`) and
//! mirror into a local folder (`mirror`). Everything here compiles or waits on the store, so it
//! runs off the async threads' critical work and never on a job's path.

mod build;
mod mirror;
mod publish;
mod reload;
mod store;
mod upload;

pub use build::{load_kernel, manifest_paths, native_kernel};
pub use mirror::StoreCounts;
pub use publish::publish_folder;
pub use reload::{ReloadCounts, ReloadReport};
pub use store::{Store, StoreConfig, is_store_url};
pub use upload::{Installed, Upload, UploadError};

use mirror::{Mirror, MirrorState};

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
    /// The shared store the folder mirrors, if the kernels come from one.
    store: Option<Synced>,
    load_errors: Vec<ManifestError>,
}

/// A store's mirror and what it knows; the lock makes a sync and the scan after it one step,
/// so the reloader never sees a half-written mirror. Held by the poll and by uploads only.
struct Synced {
    mirror: Mirror,
    state: tokio::sync::Mutex<MirrorState>,
}

impl Catalog {
    /// No kernels and no folder: kernels are registered by hand.
    pub(crate) fn empty(engine: Option<Arc<WasmEngine>>) -> Catalog {
        Catalog { registry: Arc::default(), engine, reloader: None, store: None, load_errors: Vec::new() }
    }

    /// Every manifest in `dir`, registered; manifests that fail validation are skipped and kept
    /// in `load_errors`. Blocking: it compiles modules.
    pub(crate) fn from_dir(dir: &Path, engine: Option<Arc<WasmEngine>>) -> Result<Catalog, LoadError> {
        let mut catalog = Catalog::empty(engine);
        let reloader = Arc::new(Reloader::new(dir, catalog.engine.clone()));
        let report = reloader.scan(&catalog.registry).map_err(|e| {
            let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            LoadError(format!(
                "cannot read the manifests folder {}: {e}: pass --manifests DIR (or set HELIX_MANIFESTS) to a folder of \
                 kernel manifests, or a store URL for helix serve",
                shown.display()
            ))
        })?;
        catalog.load_errors = report.refused;
        catalog.reloader = Some(reloader);
        Ok(catalog)
    }

    /// Every manifest in the store at `url`, mirrored into `config.mirror` (or a temporary
    /// folder of this process) and registered, as `from_dir` does for a folder.
    pub(crate) async fn from_store(
        url: &str,
        config: &StoreConfig,
        engine: Option<Arc<WasmEngine>>,
    ) -> Result<Catalog, LoadError> {
        let store = Store::open(url, &config.options).map_err(LoadError)?;
        let own = || std::env::temp_dir().join(format!("helix-mirror-{}", std::process::id()));
        let dir = config.mirror.clone().unwrap_or_else(own);
        let mirror = Mirror::new(store, &dir, config.mirror.is_none()).map_err(LoadError)?;
        let mut catalog = Catalog::empty(engine);
        catalog.reloader = Some(Arc::new(Reloader::new(&dir, catalog.engine.clone())));
        catalog.store = Some(Synced { mirror, state: Default::default() });
        let report = catalog.reload().await?;
        catalog.load_errors = report.refused;
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

    /// Store traffic since start; `None` without a store.
    pub(crate) fn store_counts(&self) -> Option<&StoreCounts> {
        self.store.as_ref().map(|s| &s.mirror.counts)
    }

    /// Picks up new, changed and removed manifests now (syncing the store first, if there is
    /// one; compiling off the async threads).
    pub(crate) async fn reload(&self) -> Result<ReloadReport, LoadError> {
        match &self.store {
            Some(synced) => {
                let mut state = synced.state.lock().await;
                self.sync_and_scan(synced, &mut state).await
            }
            None => self.scan().await,
        }
    }

    async fn scan(&self) -> Result<ReloadReport, LoadError> {
        let reloader = self.reloader.clone().ok_or_else(|| LoadError("this router has no manifests folder".into()))?;
        let registry = self.registry.clone();
        let dir = reloader.dir().display().to_string();
        tokio::task::spawn_blocking(move || reloader.scan(&registry))
            .await
            .map_err(|e| LoadError(format!("reload panicked: {e}")))?
            .map_err(|e| LoadError(format!("cannot read {dir}: {e}")))
    }

    /// Brings the mirror in step with the store, then registers what changed in it; the
    /// store's refusals join the report. The caller holds the sync lock.
    async fn sync_and_scan(&self, synced: &Synced, state: &mut MirrorState) -> Result<ReloadReport, LoadError> {
        let refused = synced.mirror.sync(state).await.map_err(LoadError)?;
        let mut report = self.scan().await?;
        if let Some(r) = &self.reloader {
            r.counts.refused.fetch_add(refused.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        report.refused.extend(refused);
        Ok(report)
    }

    /// Validates an uploaded kernel away from the manifests folder, then installs and registers
    /// it (compiling off the async threads). With a store, the kernel is written there (module
    /// first), so every replica polling it picks it up.
    pub(crate) async fn install(&self, name: &str, upload: Upload) -> Result<Installed, UploadError> {
        let reloader =
            self.reloader.clone().ok_or_else(|| UploadError::Io("this router has no manifests folder".into()))?;
        let (registry, engine, name) = (self.registry.clone(), self.engine.clone(), name.to_string());
        let Some(synced) = &self.store else {
            return tokio::task::spawn_blocking(move || {
                upload::install(&reloader, &registry, engine.as_ref(), &name, upload)
            })
            .await
            .map_err(|e| UploadError::Io(format!("install panicked: {e}")))?;
        };
        let (manifest, upload) =
            tokio::task::spawn_blocking(move || upload::validate(engine.as_ref(), &name, &upload).map(|m| (m, upload)))
                .await
                .map_err(|e| UploadError::Io(format!("install panicked: {e}")))??;
        let (name, runtime) = (manifest.name.clone(), manifest.runtime);
        let mut state = synced.state.lock().await;
        let (key, replaced) = Mirror::key_for(&state, &name, runtime).map_err(UploadError::Invalid)?;
        let store = &synced.mirror.store;
        store.publish(&key, &upload.manifest_text, upload.module).await.map_err(UploadError::Io)?;
        let report = self.sync_and_scan(synced, &mut state).await.map_err(|e| UploadError::Io(e.0))?;
        upload::registered(&report, &name, &manifest)?;
        let location = store.location(&key);
        Ok(Installed { name, version: manifest.version, runtime, location, replaced, report })
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
