//! `GET /v1/status`: what the router is doing now, as one JSON object (jobs/s by strategy, reason
//! and status over a recent window, totals, latency against budget, the CPU lane, each kernel
//! build); and `GET /`, the page that polls it every second and shows it.
//!
//! Nothing here counts: the rates are differences of the counters `/metrics` exports (the
//! summary's `Totals`), taken against an earlier sample that status requests keep for each other.

use super::App;
use super::summary::Totals;
use crate::metrics::Percentiles;
use crate::outcome::Status;
use crate::policy::{Reason, Strategy};
use crate::router::{Router, Snapshot};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The page: one static file, its script and style inline.
const PAGE: &str = include_str!("status.html");

/// The routes: `GET /` (the page) and `GET /v1/status` (what it shows).
pub(super) fn routes() -> axum::Router<Arc<App>> {
    let window = Arc::new(Window::default());
    axum::Router::new().route("/", get(page)).route("/v1/status", get(status).layer(Extension(window)))
}

/// The live status page: it polls `GET /v1/status` every second and shows it.
#[utoipa::path(
    get,
    operation_id = "status_page",
    path = "/",
    tag = "operations",
    responses((status = 200, description = "The page, one HTML file with its script and style inline.", content_type = "text/html; charset=utf-8", body = String)),
)]
pub(super) async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE)
}

/// What the router is doing now: rates over a recent window, totals, latency against budget,
/// the CPU lane and every kernel build.
#[utoipa::path(
    get,
    operation_id = "status",
    path = "/v1/status",
    tag = "operations",
    responses((status = 200, description = "The router now.", body = StatusReport)),
)]
pub(super) async fn status(
    State(app): State<Arc<App>>,
    Extension(window): Extension<Arc<Window>>,
) -> Json<StatusReport> {
    Json(report(&app, &window))
}

/// `GET /v1/status`: what the router is doing now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusReport {
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_s: f64,
    /// It takes jobs: not draining, and at least one kernel registered (as `/readyz`).
    pub ready: bool,
    /// A shutdown signal started the drain: new jobs are refused with 503.
    pub draining: bool,
    /// Seconds the rates (`per_s`) and the window's latency cover: since start at first, then
    /// the last 3 to 6 s while something polls at least that often (the page polls every
    /// second); after a pause, since the last request before it.
    pub window_s: f64,
    /// Jobs: totals since start and rates over the window.
    pub jobs: Jobs,
    /// Latency, over the window and since start.
    pub latency: Latency,
    /// The CPU lane now.
    pub lane: Lane,
    /// Every kernel build serving now, by name (native before Wasm).
    pub kernels: Vec<KernelRow>,
}

/// Jobs since start, and per second over the window.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Jobs {
    /// Jobs submitted since start.
    pub submitted: u64,
    /// Outcomes since start: every submitted job gets exactly one (jobs in flight have none yet).
    pub total: u64,
    /// Outcomes per second over the window.
    pub per_s: f64,
    /// Job requests the HTTP API accepted and has not answered yet.
    pub in_flight: usize,
    /// Outcomes by status: every status, in a fixed order.
    pub by_status: Vec<Rate>,
    /// Outcomes by the decision's strategy: every strategy, in a fixed order (a rejected job
    /// had no decision and counts under no strategy).
    pub by_strategy: Vec<Rate>,
    /// Outcomes by the decision's reason: the reasons decided since start.
    pub by_reason: Vec<Rate>,
}

/// One kind of outcome: how many since start, and how many per second over the window.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Rate {
    /// The status, strategy or reason, as outcomes and metrics name it.
    pub name: &'static str,
    /// Outcomes since start.
    pub total: u64,
    /// Outcomes per second over the window.
    pub per_s: f64,
}

/// Latency over the window and since start.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Latency {
    /// The window's outcomes.
    pub window: WindowLatency,
    /// Every outcome since start.
    pub since_start: SinceStart,
}

/// The percentiles of a distribution, in the unit the field's name gives.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Quantiles {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// The window's latency, end to end and against each job's budget.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WindowLatency {
    /// Outcomes in the window (every status).
    pub jobs: u64,
    /// Their end-to-end latency, milliseconds; `None` when the window had none.
    pub end_to_end_ms: Option<Quantiles>,
    /// Jobs answered (completed or degraded) in the window.
    pub answered: u64,
    /// Their end-to-end time over their own budget (1 = the whole budget); `None` when the
    /// window answered none.
    pub budget_share: Option<Quantiles>,
    /// The share of them answered within their budget; `None` when the window answered none.
    pub within_budget: Option<f64>,
}

/// Latency of every outcome since start, milliseconds, and answered jobs against their budget.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SinceStart {
    /// End to end, every outcome; `None` before the first.
    pub end_to_end_ms: Option<Quantiles>,
    /// Waiting for the CPU lane or a batch, the jobs that ran.
    pub queue_ms: Option<Quantiles>,
    /// Running, the jobs that ran.
    pub service_ms: Option<Quantiles>,
    /// End-to-end time over budget of the jobs answered (1 = the whole budget).
    pub budget_share: Option<Quantiles>,
    /// The share of them answered within their budget.
    pub within_budget: Option<f64>,
}

/// The CPU lane, where heavy kernels run: its permits and its bounded queue, now.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Lane {
    /// Heavy kernels allowed to run at once.
    pub permits: usize,
    /// Permits held now.
    pub permits_busy: usize,
    /// Jobs (and batches) waiting for a permit now.
    pub queue: usize,
    /// The queue's cap: a job that would go past it is dropped (`queue_full`).
    pub queue_capacity: usize,
    /// The deepest the queue has been.
    pub queue_peak: usize,
    /// Predicted wait for a permit now, milliseconds.
    pub predicted_wait_ms: f64,
    /// Share of the jobs decided in the last capacity window shed for load: the signal to scale on.
    pub shed_share: f64,
}

/// One kernel build serving now.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct KernelRow {
    /// The kernel's name.
    pub name: String,
    /// The serving version.
    pub version: String,
    /// `native` or `wasm`.
    pub runtime: &'static str,
    /// Measured over predicted service time, learnt online (1 = the manifest's cost model is
    /// right; 2 = runs take twice what it says). The policy scales predictions by it.
    pub cost_correction: f64,
    /// It refuses jobs now after repeated sandbox failures (reason `quarantined`).
    pub quarantined: bool,
    /// How long the quarantine has left, milliseconds; `None` while the kernel is open.
    pub quarantine_left_ms: Option<u64>,
    /// Outcomes since start, across the versions of this name and runtime.
    pub jobs: u64,
    /// Of those, answered (completed or degraded).
    pub served: u64,
    /// Outcomes per second over the window.
    pub per_s: f64,
}

/// Rates are taken against a sample at least this old (and less than twice as old).
const STEP: Duration = Duration::from_secs(3);

/// The two latest samples, `(older, newer)`: a request differences its own sample against
/// `older`, and moves them on when `newer` is a step old. Only status requests take the lock,
/// to swap two `Arc`s; no job touches it.
#[derive(Default)]
pub(super) struct Window(Mutex<Option<(Arc<Totals>, Arc<Totals>)>>);

impl Window {
    /// The sample to difference `now` against: one `STEP` to `2 * STEP` old once the server has
    /// run that long, the zero counts at `started` before.
    fn base_for(&self, now: &Arc<Totals>, started: Instant) -> Arc<Totals> {
        let mut samples = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (older, newer) = samples.get_or_insert_with(|| {
            let zero = Arc::new(now.zero_at(started));
            (zero.clone(), zero)
        });
        if now.at.saturating_duration_since(newer.at) >= STEP {
            *older = std::mem::replace(newer, now.clone());
        }
        older.clone()
    }
}

fn report(app: &App, window: &Window) -> StatusReport {
    let snap = app.router.snapshot();
    let now = Arc::new(Totals::of(&app.router, &snap));
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let uptime = since_epoch.saturating_sub(Duration::from_secs_f64(app.started_unix_s.max(0.0)));
    let started = now.at.checked_sub(uptime).unwrap_or(now.at);
    let before = window.base_for(&now, started);
    let mut report = assemble(&app.router, &snap, &before, &now);
    report.uptime_s = round(uptime.as_secs_f64(), 3);
    report.ready = app.ready();
    report.draining = app.lifecycle.is_draining();
    report.jobs.in_flight = app.lifecycle.in_flight();
    report.lane.shed_share = round(app.shed_share.get(), 4);
    report
}

/// The report of the window from `before` to `after`, with the lane as `snap` (taken with
/// `after`) saw it; the server's own fields (uptime, readiness, jobs in flight, the capacity
/// signal) are left for the caller.
fn assemble(router: &Router, snap: &Snapshot, before: &Totals, after: &Totals) -> StatusReport {
    let secs = after.at.saturating_duration_since(before.at).as_secs_f64();
    let per_s = |after: u64, before: u64| {
        if secs > 0.0 { round(after.saturating_sub(before) as f64 / secs, 3) } else { 0.0 }
    };
    let rate = |name, a, b| Rate { name, total: a, per_s: per_s(a, b) };
    let total = after.by_status.iter().sum();
    let jobs = Jobs {
        submitted: snap.submitted,
        total,
        per_s: per_s(total, before.by_status.iter().sum()),
        in_flight: 0,
        by_status: Status::ALL
            .iter()
            .map(|s| rate(s.as_str(), after.by_status[s.index()], before.by_status[s.index()]))
            .collect(),
        by_strategy: Strategy::ALL
            .iter()
            .map(|s| rate(s.as_str(), after.by_strategy[s.index()], before.by_strategy[s.index()]))
            .collect(),
        by_reason: Reason::ALL
            .iter()
            .filter(|r| after.by_reason[r.index()] > 0)
            .map(|r| rate(r.as_str(), after.by_reason[r.index()], before.by_reason[r.index()]))
            .collect(),
    };
    let latency_window = difference(&after.latency, &before.latency);
    let budget_window = difference(&after.budget_used, &before.budget_used);
    let latency = Latency {
        window: WindowLatency {
            jobs: latency_window.as_ref().map_or(0, Histogram::len),
            end_to_end_ms: latency_window.as_ref().and_then(|h| quantiles(h, 1e3)),
            answered: budget_window.as_ref().map_or(0, Histogram::len),
            budget_share: budget_window.as_ref().and_then(|h| quantiles(h, 1e3)),
            within_budget: budget_window.as_ref().and_then(within_budget),
        },
        since_start: SinceStart {
            end_to_end_ms: percentiles_ms(&snap.latency_total_us),
            queue_ms: percentiles_ms(&snap.latency_queue_us),
            service_ms: percentiles_ms(&snap.latency_service_us),
            budget_share: quantiles(&after.budget_used, 1e3),
            within_budget: within_budget(&after.budget_used),
        },
    };
    let p = snap.pressure;
    let lane = Lane {
        permits: p.permits,
        permits_busy: p.permits_in_use,
        queue: p.queue_depth,
        queue_capacity: p.queue_capacity,
        queue_peak: snap.queue_peak,
        predicted_wait_ms: round(p.predicted_wait_us() / 1e3, 3),
        shed_share: 0.0,
    };
    let at = Instant::now();
    let kernels = router
        .registry()
        .all()
        .iter()
        .map(|k| {
            let key = (k.name.to_string(), k.runtime().as_str());
            let jobs = after.by_kernel.get(&key).copied().unwrap_or(0);
            let left = k.quarantine.time_left(at);
            KernelRow {
                version: k.version.to_string(),
                runtime: key.1,
                cost_correction: round(k.stats.correction(), 4),
                quarantined: left.is_some(),
                quarantine_left_ms: left.map(|d| d.as_millis() as u64),
                jobs,
                served: [Status::Completed, Status::Degraded]
                    .iter()
                    .flat_map(|st| Strategy::ALL.map(|s| k.stats.get(Some(s), *st)))
                    .sum(),
                per_s: per_s(jobs, before.by_kernel.get(&key).copied().unwrap_or(0)),
                name: key.0,
            }
        })
        .collect();
    StatusReport {
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: 0.0,
        ready: false,
        draining: false,
        window_s: round(secs, 3),
        jobs,
        latency,
        lane,
        kernels,
    }
}

/// What `after` recorded since `before`; `None` when nothing (or when `before` is not an
/// earlier state of the same histogram, as a racing request's sample may be).
fn difference(after: &Histogram<u64>, before: &Histogram<u64>) -> Option<Histogram<u64>> {
    let mut window = after.clone();
    window.subtract(before).ok()?;
    (!window.is_empty()).then_some(window)
}

/// The percentiles of `h`, divided by `unit`; `None` when it is empty.
fn quantiles(h: &Histogram<u64>, unit: f64) -> Option<Quantiles> {
    let at = |q| round(h.value_at_quantile(q) as f64 / unit, 3);
    (!h.is_empty()).then(|| Quantiles { p50: at(0.5), p90: at(0.9), p99: at(0.99) })
}

fn percentiles_ms(p: &Percentiles) -> Option<Quantiles> {
    let ms = |us: u64| round(us as f64 / 1e3, 3);
    (p.count > 0).then(|| Quantiles { p50: ms(p.p50), p90: ms(p.p90), p99: ms(p.p99) })
}

/// The share of a budget histogram (thousandths) at or within the whole budget.
fn within_budget(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| round(h.count_between(0, 1000) as f64 / h.len() as f64, 4))
}

/// `x` to `digits` decimals, so the JSON reads as numbers a person would write.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterConfig;

    fn bundled_native_router() -> Router {
        let manifests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
        Router::from_dir(RouterConfig::default(), &manifests).expect("the bundled manifests load")
    }

    #[tokio::test]
    async fn rates_are_the_windows_own_counts_over_its_length() {
        let router = bundled_native_router();
        let before = Totals::now(&router);
        let mut after = Totals::now(&router);
        after.at = before.at + Duration::from_secs(4);
        let (cpu, drop) = (Strategy::CpuLane.index(), Strategy::Drop.index());
        let mut before = before;
        before.by_strategy[cpu] = 6;
        before.by_status[Status::Completed.index()] = 6;
        before.by_reason[Reason::FitsBudget.index()] = 6;
        before.by_kernel.insert(("mc-option".into(), "native"), 6);
        before.latency.record(1_000).unwrap();
        before.budget_used.record(100).unwrap();
        after.by_strategy[cpu] = 26;
        after.by_strategy[drop] = 2;
        after.by_status[Status::Completed.index()] = 26;
        after.by_status[Status::Dropped.index()] = 2;
        after.by_reason[Reason::FitsBudget.index()] = 26;
        after.by_reason[Reason::QueueFull.index()] = 2;
        after.by_kernel.insert(("mc-option".into(), "native"), 28);
        // Since start: 1 ms once; in the window 2 ms, 3 ms and 40 ms (the 99th percentile).
        for us in [1_000, 2_000, 3_000, 40_000] {
            after.latency.record(us).unwrap();
        }
        // In the window: 0.5 and 1.5 of the budget, one answer late.
        for share in [100, 500, 1_500] {
            after.budget_used.record(share).unwrap();
        }

        let r = assemble(&router, &router.snapshot(), &before, &after);
        assert_eq!(r.window_s, 4.0);
        assert_eq!((r.jobs.total, r.jobs.per_s), (28, 5.5), "22 outcomes in 4 s");
        let find = |rows: &[Rate], name: &str| rows.iter().find(|r| r.name == name).map(|r| (r.total, r.per_s));
        assert_eq!(find(&r.jobs.by_strategy, "cpu_lane"), Some((26, 5.0)));
        assert_eq!(find(&r.jobs.by_strategy, "drop"), Some((2, 0.5)));
        assert_eq!(find(&r.jobs.by_strategy, "inline"), Some((0, 0.0)), "every strategy has a row");
        assert_eq!(find(&r.jobs.by_status, "dropped"), Some((2, 0.5)));
        assert_eq!(find(&r.jobs.by_reason, "queue_full"), Some((2, 0.5)));
        assert_eq!(find(&r.jobs.by_reason, "cheap_inline"), None, "only reasons decided are listed");
        assert_eq!(r.jobs.by_status.len(), Status::ALL.len());
        assert_eq!(r.jobs.by_strategy.len(), Strategy::ALL.len());

        let w = &r.latency.window;
        assert_eq!((w.jobs, w.answered), (3, 2));
        let e2e = w.end_to_end_ms.expect("the window has outcomes");
        // Within the histogram's resolution (three significant digits).
        assert!((e2e.p50 - 3.0).abs() < 0.01 && (e2e.p99 - 40.0).abs() < 0.05, "{e2e:?}");
        let share = w.budget_share.expect("the window answered jobs");
        assert_eq!((share.p50, share.p99), (0.5, 1.5), "{share:?}");
        assert_eq!(w.within_budget, Some(0.5));
        assert_eq!(r.latency.since_start.within_budget, Some(0.6667), "2 of 3 since start");

        let option = r.kernels.iter().find(|k| k.name == "mc-option" && k.runtime == "native").expect("a row");
        assert_eq!((option.jobs, option.per_s), (28, 5.5));
        assert_eq!(option.version, "1.0.0");
        assert_eq!((option.cost_correction, option.quarantined, option.quarantine_left_ms), (1.0, false, None));
        assert!(r.kernels.iter().find(|k| k.name == "hashmix").is_some_and(|k| k.jobs == 0 && k.per_s == 0.0));
    }

    #[tokio::test]
    async fn the_json_has_every_field_and_a_row_per_build() {
        let router = bundled_native_router();
        let now = Totals::now(&router);
        let zero = now.zero_at(now.at);
        let r = assemble(&router, &router.snapshot(), &zero, &now);
        assert_eq!(r.window_s, 0.0);
        assert_eq!(r.jobs.per_s, 0.0, "no time passed: no rate, not a division by zero");
        let json = serde_json::to_value(&r).unwrap();
        for field in ["version", "uptime_s", "ready", "draining", "window_s", "jobs", "latency", "lane", "kernels"] {
            assert!(json.get(field).is_some(), "no {field} in {json}");
        }
        for field in ["submitted", "total", "per_s", "in_flight", "by_status", "by_strategy", "by_reason"] {
            assert!(json["jobs"].get(field).is_some(), "no jobs.{field} in {json}");
        }
        for field in ["permits", "permits_busy", "queue", "queue_capacity", "queue_peak", "predicted_wait_ms"] {
            assert!(json["lane"].get(field).is_some(), "no lane.{field} in {json}");
        }
        assert_eq!(json["lane"]["permits"], RouterConfig::default().cpu_permits);
        assert!(json["latency"]["window"]["end_to_end_ms"].is_null(), "no outcome yet: no percentiles");
        let builds: Vec<String> = router
            .registry()
            .all()
            .iter()
            .map(|k| format!("{}@{}/{}", k.name, k.version, k.runtime().as_str()))
            .collect();
        let rows: Vec<String> = json["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                format!(
                    "{}@{}/{}",
                    k["name"].as_str().unwrap(),
                    k["version"].as_str().unwrap(),
                    k["runtime"].as_str().unwrap()
                )
            })
            .collect();
        assert!(!builds.is_empty());
        assert_eq!(rows, builds);
        let row = &json["kernels"][0];
        for field in ["cost_correction", "quarantined", "quarantine_left_ms", "jobs", "served", "per_s"] {
            assert!(row.get(field).is_some(), "no kernels[0].{field} in {row}");
        }
    }

    #[tokio::test]
    async fn the_window_moves_on_a_step_at_a_time() {
        let router = Router::new(RouterConfig::default());
        let window = Window::default();
        let t0 = Totals::now(&router);
        let started = t0.at;
        let sample = |at: Duration| {
            let mut t = Totals::now(&router);
            t.at = started + at;
            Arc::new(t)
        };
        let s = |secs: u64| Duration::from_secs(secs);
        assert_eq!(window.base_for(&sample(s(1)), started).at, started, "since start at first");
        assert_eq!(window.base_for(&sample(s(4)), started).at, started, "the first step");
        assert_eq!(window.base_for(&sample(s(6)), started).at, started);
        assert_eq!(window.base_for(&sample(s(8)), started).at, started + s(4), "one step on");
        assert_eq!(window.base_for(&sample(s(9)), started).at, started + s(4));
        assert_eq!(
            window.base_for(&sample(s(30)), started).at,
            started + s(8),
            "after a pause, the last sample before it"
        );
    }
}
