//! Layer 9: `helix serve`: the router as a long-running HTTP service, with Prometheus metrics, an
//! admin API for kernels, a periodic summary, and a graceful drain on SIGTERM or Ctrl-C.

mod admin;
mod api;
mod capacity;
mod config;
mod exposition;
mod lifecycle;
mod listen;
mod metrics;
mod openapi;
mod process;
mod request_start;
mod respond;
mod routes;
mod status;
mod summary;
mod transit;

pub use config::{LogFormat, Overrides, ServeConfig};
pub use openapi::json as openapi_json;

use crate::catalog::is_store_url;
use crate::router::Router;
use lifecycle::Lifecycle;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What the HTTP handlers share.
pub struct App {
    /// The router that runs the jobs.
    pub router: Arc<Router>,
    /// The settings the server was started with.
    pub config: ServeConfig,
    admin_token: Option<String>,
    /// Jobs in flight, and whether the server is draining.
    pub lifecycle: Arc<Lifecycle>,
    next_id: AtomicU64,
    http: HttpCounts,
    /// The reserve for the way back of stamped requests.
    transit: transit::Transit,
    /// The share of jobs shed for load in the last window: the signal to scale on.
    shed_share: Arc<capacity::ShedShare>,
    started_unix_s: f64,
}

impl App {
    /// Whether the server takes jobs: it is not draining and has at least one kernel.
    pub fn ready(&self) -> bool {
        !self.lifecycle.is_draining() && !self.router.registry().all().is_empty()
    }
}

/// Responses by status code: the codes this API answers with, and one slot for any other.
struct HttpCounts {
    counts: [AtomicU64; CODES.len() + 1],
}

const CODES: [u16; 13] = [200, 201, 400, 401, 403, 404, 405, 413, 415, 422, 429, 500, 503];

impl HttpCounts {
    fn count(&self, code: u16) {
        let slot = CODES.iter().position(|c| *c == code).unwrap_or(CODES.len());
        self.counts[slot].fetch_add(1, Relaxed);
    }

    /// `(code, count)` for every code seen.
    fn counts(&self) -> Vec<(String, u64)> {
        let label = |i: usize| CODES.get(i).map_or("other".to_string(), u16::to_string);
        (0..=CODES.len()).map(|i| (label(i), self.counts[i].load(Relaxed))).filter(|(_, n)| *n > 0).collect()
    }
}

/// After the drain, how long connections get to write their last answers and close.
const CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// Serves until SIGTERM or Ctrl-C, then drains. `Ok(true)` when every accepted job finished
/// within the drain deadline.
pub async fn serve(config: ServeConfig) -> Result<bool, String> {
    process::count_panics();
    process::return_large_blocks_to_the_os();
    let source = config.manifests.to_string_lossy().into_owned();
    let (router, poll_ms) = if is_store_url(&source) {
        let router = Router::from_store(config.router.clone(), &source, &config.store).await;
        (router.map_err(|e| e.to_string())?, config.store.poll_ms)
    } else {
        let router = Router::from_dir(config.router.clone(), &config.manifests);
        (router.map_err(|e| e.to_string())?, config.watch_interval_ms)
    };
    for e in router.load_errors() {
        tracing::warn!(error = %e, "manifest refused");
    }
    let router = Arc::new(router);
    if poll_ms > 0 {
        router.watch(Duration::from_millis(poll_ms));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Arc::new(App {
        admin_token: config.resolve_admin_token(),
        router: router.clone(),
        lifecycle: Arc::default(),
        next_id: AtomicU64::new(1),
        http: HttpCounts { counts: Default::default() },
        transit: Default::default(),
        shed_share: Arc::default(),
        started_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        config,
    });
    banner(&app, addr);
    let window = Duration::from_secs(app.config.capacity_window_s.max(1));
    tokio::spawn(capacity::run(Arc::downgrade(&router), app.shed_share.clone(), window));
    if app.config.summary_interval_s > 0 {
        tokio::spawn(summary::run(Arc::downgrade(&router), Duration::from_secs(app.config.summary_interval_s)));
    }

    let stop = Arc::new(tokio::sync::Notify::new());
    let mut server = tokio::spawn(listen::serve(
        listener,
        routes::routes(app.clone()),
        app.config.clone(),
        stop.clone(),
        CONNECTION_GRACE,
    ));
    tokio::select! {
        () = lifecycle::shutdown_signal() => {}
        ended = &mut server => return Err(format!("the server stopped: {ended:?}")),
    }
    app.lifecycle.start_drain();
    let drain = Duration::from_millis(app.config.drain_timeout_ms);
    tracing::info!(in_flight = app.lifecycle.in_flight(), deadline_ms = app.config.drain_timeout_ms, "draining");
    let clean = tokio::time::timeout(drain, app.lifecycle.drained()).await.is_ok();
    if !clean {
        tracing::warn!(in_flight = app.lifecycle.in_flight(), "drain deadline passed with jobs in flight");
    }
    // Every accepted job has its answer; let the connections write them and close.
    stop.notify_one();
    let _ = tokio::time::timeout(CONNECTION_GRACE + Duration::from_secs(1), server).await;
    let snap = router.snapshot();
    tracing::info!(submitted = snap.submitted, outcomes = snap.outcomes(), "stopped");
    Ok(clean)
}

fn banner(app: &App, addr: std::net::SocketAddr) {
    let c = &app.config;
    let kernels = app.router.registry().all();
    let mut names: Vec<String> =
        kernels.iter().map(|k| format!("{}@{} ({})", k.name, k.version, k.runtime().as_str())).collect();
    names.sort();
    tracing::info!("helix {} listening on http://{addr}", env!("CARGO_PKG_VERSION"));
    tracing::info!("{} kernels from {}: {}", kernels.len(), c.manifests.display(), names.join(", "));
    tracing::info!(
        "cpu lane: {} permits, queue {}; batch queue {} per kernel; wasm engine {}",
        c.router.cpu_permits,
        c.router.queue_capacity,
        c.router.batch_queue_capacity,
        if app.router.wasm_engine().is_some() { "on" } else { "OFF" }
    );
    let watch = if c.watch_interval_ms > 0 { format!("every {} ms", c.watch_interval_ms) } else { "off".into() };
    let admin = if app.admin_token.is_some() { "on".to_string() } else { format!("off (set {})", c.admin_token_env) };
    tracing::info!("manifest watch {watch}; admin API {admin}; body limit {} bytes", c.max_body_bytes);
}
