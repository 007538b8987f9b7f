//! Layer 8: the router: the submit pipeline (`submit`: admission, the policy's decision, the
//! hand-off to the chosen lane) over the catalog of kernels, and what it counts (`snapshot`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use helix_host::{Job, Router, RouterConfig};
//! use helix_math::{Params, Value};
//! use std::time::Duration;
//!
//! let router = Router::from_dir(RouterConfig::default(), "manifests".as_ref())?;
//! let params = Params::new()
//!     .with("spot", Value::Number(100.0))
//!     .with("strike", Value::Number(105.0))
//!     .with("vol", Value::Number(0.2))
//!     .with("maturity", Value::Number(1.0));
//! let outcome = router.submit(Job::new(1, "mc-option", params, Duration::from_millis(50))).await;
//! println!("{}", outcome.to_json());
//! # Ok(()) }
//! ```

mod snapshot;
mod submit;

pub use snapshot::{CountSnapshot, KernelSnapshot, Ration, Snapshot};

use crate::catalog::{
    Catalog, Installed, LoadError, ReloadCounts, ReloadReport, StoreConfig, StoreCounts, Upload, UploadError,
};
use crate::config::RouterConfig;
use crate::execute::Context;
use crate::lanes::{Batchers, CpuLane};
use crate::manifest::ManifestError;
use crate::metrics::Metrics;
use crate::policy::Pressure;
use crate::registry::Registry;
use crate::wasm::WasmEngine;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Runs jobs: decides how each runs under the live pressure, runs it there, and answers with
/// its outcome. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Router {
    ctx: Arc<Context>,
    catalog: Arc<Catalog>,
    cpu: Arc<CpuLane>,
    batchers: Batchers,
}

impl Router {
    /// A router with no kernels; must be called inside a Tokio runtime. Without a Wasm engine
    /// (it failed to build) the router serves native kernels only and refuses Wasm manifests.
    pub fn new(config: RouterConfig) -> Router {
        let catalog = Catalog::empty(Router::engine(&config));
        Router::with_catalog(config, catalog)
    }

    /// A router serving every manifest in `dir`; must be called inside a Tokio runtime.
    /// Manifests that fail validation are skipped and reported by `load_errors`; an unreadable
    /// folder is an error. `reload` and `watch` keep the kernels in step with the folder.
    pub fn from_dir(config: RouterConfig, dir: &Path) -> Result<Router, LoadError> {
        let catalog = Catalog::from_dir(dir, Router::engine(&config))?;
        Ok(Router::with_catalog(config, catalog))
    }

    /// A router serving every manifest in the shared store at `url` (`s3://…`, `file:///…`),
    /// mirrored locally; `reload` and `watch` sync with the store, and uploads are written to
    /// it, so every replica polling it serves them. Must be called inside a Tokio runtime.
    pub async fn from_store(config: RouterConfig, url: &str, store: &StoreConfig) -> Result<Router, LoadError> {
        let catalog = Catalog::from_store(url, store, Router::engine(&config)).await?;
        Ok(Router::with_catalog(config, catalog))
    }

    fn engine(config: &RouterConfig) -> Option<Arc<WasmEngine>> {
        WasmEngine::new(config.wasm.clone()).inspect_err(|e| tracing::error!(error = %e, "Wasm kernels disabled")).ok()
    }

    fn with_catalog(config: RouterConfig, catalog: Catalog) -> Router {
        let policy = &config.policy;
        let cpu = Arc::new(CpuLane::start(
            config.cpu_permits,
            config.queue_capacity,
            policy.ration_share,
            policy.ration_keep,
        ));
        Router {
            batchers: Batchers::new(config.batch_queue_capacity, cpu.clone()),
            ctx: Arc::new(Context { config, metrics: Metrics::default() }),
            catalog: Arc::new(catalog),
            cpu,
        }
    }

    /// Picks up new, changed and removed manifests now (compiling off the async threads).
    pub async fn reload(&self) -> Result<ReloadReport, LoadError> {
        self.catalog.reload().await
    }

    /// Validates an uploaded kernel away from the manifests folder, then installs and registers
    /// it (compiling off the async threads).
    pub async fn install(&self, name: &str, upload: Upload) -> Result<Installed, UploadError> {
        self.catalog.install(name, upload).await
    }

    /// Watches the manifests folder, reloading what changed every `period`, until the router is
    /// dropped.
    pub fn watch(&self, period: Duration) {
        self.catalog.watch(period);
    }

    /// Shared store traffic since start; `None` without a store.
    pub fn store_counts(&self) -> Option<&StoreCounts> {
        self.catalog.store_counts()
    }

    /// Registrations since start; `None` without a manifests folder.
    pub fn reload_counts(&self) -> Option<&ReloadCounts> {
        self.catalog.reload_counts()
    }

    /// The manifests refused when the router was built from its folder.
    pub fn load_errors(&self) -> &[ManifestError] {
        self.catalog.load_errors()
    }

    /// The kernels serving now.
    pub fn registry(&self) -> &Registry {
        self.catalog.registry()
    }

    /// The engine Wasm kernels run on; `None` when it failed to build.
    pub fn wasm_engine(&self) -> Option<&Arc<WasmEngine>> {
        self.catalog.engine()
    }

    /// The configuration the router was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.ctx.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// The CPU lane's state now, as the policy sees it.
    pub fn pressure(&self) -> Pressure {
        self.cpu.state.pressure()
    }
}
