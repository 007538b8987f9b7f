//! The router: admission, the policy's decision, and the hand-off to the chosen lane.
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

use crate::admission::{Admitted, Rejection, admit_native, admit_wasm};
use crate::config::RouterConfig;
use crate::execute::{LaneWork, Pending};
use crate::job::Job;
use crate::lanes::batch::{Batcher, Member};
use crate::lanes::cpu::CpuLane;
use crate::manifest::ManifestError;
use crate::metrics::{Metrics, Percentiles};
use crate::outcome::{ErrorKind, JobError, Outcome, Status, Timings};
use crate::policy::{self, Decision, JobProfile, Pressure, Reason, Strategy};
use crate::registry::{Entry, Kernel, Registry};
use crate::reload::{ReloadCounts, ReloadReport, Reloader};
use crate::upload::{self, Installed, Upload, UploadError};
use crate::wasm::WasmEngine;
use helix_math::{Params, Value};
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::sync::oneshot;

/// State shared by the router and the work it hands out.
pub struct Shared {
    pub config: RouterConfig,
    pub metrics: Metrics,
}

impl Shared {
    /// Counts one outcome: exactly once per submitted job.
    pub fn record(&self, kernel: &Kernel, o: &Outcome) {
        kernel.stats.count(o.decision.map(|d| d.strategy), o.status);
        if let Some(d) = o.decision {
            self.metrics.decisions[d.strategy.index()][d.reason.index()].fetch_add(1, Relaxed);
        }
        self.metrics.total.record(o.timings.total_us);
        if matches!(o.status, Status::Completed | Status::Degraded | Status::Failed) {
            self.metrics.queue.record(o.timings.queue_us);
            self.metrics.service.record(o.timings.service_us);
        }
    }
}

pub struct Router {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    cpu: Arc<CpuLane>,
    wasm: Option<Arc<WasmEngine>>,
    reloader: Option<Arc<Reloader>>,
    load_errors: Vec<ManifestError>,
}

#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

impl Router {
    /// A router with no kernels; must be called inside a Tokio runtime. Without a Wasm engine
    /// (it failed to build) the router serves native kernels only and refuses Wasm manifests.
    pub fn new(config: RouterConfig) -> Router {
        let cpu = Arc::new(CpuLane::start(config.cpu_permits, config.queue_capacity));
        let wasm = WasmEngine::new(config.wasm.clone())
            .inspect_err(|e| tracing::error!(error = %e, "Wasm kernels disabled"))
            .ok();
        Router {
            wasm,
            reloader: None,
            shared: Arc::new(Shared { config, metrics: Metrics::default() }),
            registry: Arc::new(Registry::default()),
            cpu,
            load_errors: Vec::new(),
        }
    }

    /// A router serving every manifest in `dir`. Manifests that fail validation are skipped and
    /// reported by `load_errors`; an unreadable folder is an error. `reload` and `watch` keep
    /// the registry in step with the folder afterwards.
    pub fn from_dir(config: RouterConfig, dir: &Path) -> Result<Router, LoadError> {
        let mut router = Router::new(config);
        let reloader = Arc::new(Reloader::new(dir, router.wasm.clone()));
        let report =
            reloader.scan(&router.registry).map_err(|e| LoadError(format!("cannot read {}: {e}", dir.display())))?;
        router.load_errors = report.refused;
        router.reloader = Some(reloader);
        Ok(router)
    }

    /// Picks up new, changed and removed manifests now (compiling off the async threads).
    pub async fn reload(&self) -> Result<ReloadReport, LoadError> {
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
    pub async fn install(&self, name: &str, upload: Upload) -> Result<Installed, UploadError> {
        let reloader =
            self.reloader.clone().ok_or_else(|| UploadError::Io("this router has no manifests folder".into()))?;
        let (registry, engine, name) = (self.registry.clone(), self.wasm.clone(), name.to_string());
        tokio::task::spawn_blocking(move || upload::install(&reloader, &registry, engine.as_ref(), &name, upload))
            .await
            .map_err(|e| UploadError::Io(format!("install panicked: {e}")))?
    }

    /// Registrations since start; `None` without a manifests folder.
    pub fn reload_counts(&self) -> Option<&ReloadCounts> {
        self.reloader.as_deref().map(|r| &r.counts)
    }

    /// Watches the manifests folder, reloading what changed every `period`. The watch ends
    /// when the router is dropped.
    pub fn watch(self: &Arc<Self>, period: std::time::Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(router) = weak.upgrade() else { return };
                match router.reload().await {
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

    pub fn load_errors(&self) -> &[ManifestError] {
        &self.load_errors
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn wasm_engine(&self) -> Option<&Arc<WasmEngine>> {
        self.wasm.as_ref()
    }

    pub fn config(&self) -> &RouterConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub fn pressure(&self) -> Pressure {
        self.cpu.state.pressure()
    }

    /// Runs one job to its outcome.
    pub async fn submit(&self, mut job: Job) -> Outcome {
        let submitted = Instant::now();
        self.shared.metrics.submitted.fetch_add(1, Relaxed);
        let span =
            tracing::info_span!("job", id = job.id, kernel = %job.kernel, criticality = job.criticality.as_str());
        let Some(kernel) = self.registry.pick(&job.kernel, job.runtime) else {
            self.shared.metrics.unknown_kernel.fetch_add(1, Relaxed);
            let err = JobError {
                kind: ErrorKind::UnknownKernel,
                field: Some("kernel".into()),
                message: format!(
                    "no kernel {:?}{}",
                    job.kernel,
                    job.runtime.map_or(String::new(), |r| format!(" for runtime {}", r.as_str()))
                ),
            };
            let o = rejected(&job, None, err, submitted);
            self.shared.metrics.total.record(o.timings.total_us);
            return o;
        };
        let admitted = match admit(&kernel, std::mem::take(&mut job.params)) {
            Ok(a) => a,
            Err(r) => {
                let err = JobError { kind: ErrorKind::InvalidInput, field: r.field, message: r.message };
                let o = rejected(&job, Some(&kernel), err, submitted);
                self.shared.record(&kernel, &o);
                span.in_scope(|| tracing::debug!(status = "rejected", error = ?o.error, "job rejected"));
                return o;
            }
        };
        let batch_key = self.batch_key(&kernel, &admitted, job.seed());
        let mut profile = self.profile(&kernel, &admitted, &job, submitted, batch_key.is_some());
        profile.batch_open = batch_key.is_some_and(|k| kernel.batcher.get().is_some_and(|b| b.open.contains(k)));
        let mut decision = policy::decide(&profile, &self.cpu.state.pressure(), &self.shared.config.policy);
        if let Err(left) = kernel.quarantine.admit(submitted, &self.shared.config.quarantine) {
            // The wait is the quarantine's time left: clients are told when to retry.
            decision = Decision {
                strategy: Strategy::Drop,
                reason: Reason::Quarantined,
                units_granted: 0,
                predicted_wait_us: left.as_micros() as f64,
                ..decision
            };
        }
        let mut pending = Pending {
            id: job.id,
            kernel: kernel.clone(),
            criticality: job.criticality,
            work: Arc::new(admitted.work),
            seed: job.seed(),
            decision,
            profile,
            submitted,
            deadline: submitted + job.budget,
            reply: None,
            span: span.clone(),
            shared: self.shared.clone(),
        };
        span.in_scope(|| {
            tracing::debug!(
                strategy = decision.strategy.as_str(),
                reason = decision.reason.as_str(),
                units_requested = decision.units_requested,
                units_granted = decision.units_granted,
                predicted_cost_us = decision.predicted_cost_us,
                predicted_wait_us = decision.predicted_wait_us,
                "decided"
            )
        });
        let answered = "a job without a reply channel returns its outcome";
        match decision.strategy {
            Strategy::Drop => return pending.drop_with(decision.reason).expect(answered),
            Strategy::Inline => return pending.run_now(Vec::new(), None).expect(answered),
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        pending.reply = Some(tx);
        match decision.strategy {
            Strategy::Drop | Strategy::Inline => unreachable!("answered above"),
            Strategy::Spawn => {
                tokio::spawn(async move { pending.run_now(Vec::new(), None) });
            }
            Strategy::Batch => {
                let delay = std::time::Duration::from_secs_f64(
                    kernel.manifest.batch.as_ref().map_or(0.0, |b| b.max_delay_ms) / 1e3,
                );
                let member =
                    Member { key: batch_key.expect("batch needs a key"), close_by: submitted + delay, pending };
                if let Err(m) = self.batcher(&kernel).offer(member) {
                    let mut p = m.pending;
                    p.reply = None;
                    return p.drop_with(Reason::QueueFull).expect(answered);
                }
            }
            Strategy::CpuLane | Strategy::Split | Strategy::Degrade => {
                if let Err(work) = self.cpu.submit(LaneWork::Job(Box::new(pending))) {
                    let LaneWork::Job(mut p) = work else { unreachable!("enqueued a job") };
                    p.reply = None;
                    return p.drop_with(Reason::QueueFull).expect(answered);
                }
            }
        }
        match rx.await {
            Ok(o) => o,
            // The lane always answers; a closed channel means the runtime is shutting down.
            Err(_) => rejected(
                &job,
                Some(&kernel),
                JobError { kind: ErrorKind::Panic, field: None, message: "router shut down".into() },
                submitted,
            ),
        }
    }

    fn profile(&self, kernel: &Kernel, a: &Admitted, job: &Job, submitted: Instant, batchable: bool) -> JobProfile {
        let m = &kernel.manifest;
        let c = kernel.stats.correction();
        let degrade = m.degradable();
        let native = matches!(kernel.entry, Entry::Native(_));
        JobProfile {
            remaining_budget_us: job.budget.saturating_sub(submitted.elapsed()).as_micros() as f64,
            criticality: job.criticality,
            units: a.units,
            block: a.work.block(m),
            fixed_us: m.cost.fixed_us * c,
            per_unit_us: m.cost.per_unit_us(&a.params) * c,
            scaling_potential: m.scaling_potential,
            floor_fraction: degrade.filter(|_| a.work.degradable()).map(|u| u.floor_fraction),
            error_exponent: m.units.as_ref().map_or(0.5, |u| u.error_exponent),
            splittable: a.work.splittable(),
            batch_delay_us: if batchable { m.batch.as_ref().map(|b| b.max_delay_ms * 1e3) } else { None },
            batch_open: false,
            // A guest costs an instantiation and may run until its deadline: never on async threads.
            allow_async_lanes: native,
        }
    }

    /// Jobs share a batch when their kernel batches and the manifest's shared parameters, the
    /// seed and the units are equal.
    fn batch_key(&self, kernel: &Kernel, a: &Admitted, seed: u64) -> Option<u64> {
        let rule = kernel.manifest.batch.as_ref().filter(|_| self.shared.config.batching)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&kernel.manifest.name, &kernel.manifest.version, seed, a.units).hash(&mut h);
        for name in &rule.share_when_equal {
            name.hash(&mut h);
            match a.params.get(name) {
                Some(Value::Number(x)) => x.to_bits().hash(&mut h),
                Some(Value::Array(v)) => v.iter().for_each(|x| x.to_bits().hash(&mut h)),
                Some(Value::Text(t)) => t.hash(&mut h),
                None => 0u8.hash(&mut h),
            }
        }
        // Non-zero: zero marks an empty slot in the open-batch hint.
        Some(h.finish() | 1)
    }

    fn batcher<'k>(&self, kernel: &'k Kernel) -> &'k Batcher {
        kernel.batcher.get_or_init(|| {
            let max = kernel.manifest.batch.as_ref().map_or(2, |b| b.max_size);
            Batcher::start(max, self.shared.config.batch_queue_capacity, self.cpu.clone())
        })
    }

    /// Everything the router counts, at this moment.
    pub fn snapshot(&self) -> Snapshot {
        let m = &self.shared.metrics;
        let kernels = self
            .registry
            .stats()
            .into_iter()
            .map(|rec| KernelSnapshot {
                version: rec.current.as_ref().map(|k| k.manifest.version.clone()),
                kernel: rec.name,
                runtime: rec.runtime.as_str(),
                cost_correction: rec.stats.correction(),
                fuel_used: rec.stats.fuel_used(),
                fuel_per_unit: rec.stats.fuel_per_unit(),
                quarantined: rec.current.as_ref().is_some_and(|k| k.quarantine.is_closed(Instant::now())),
                quarantines: rec.stats.quarantines.load(Relaxed),
                counts: Strategy::ALL
                    .into_iter()
                    .map(Some)
                    .chain([None])
                    .flat_map(|s| Status::ALL.into_iter().map(move |st| (s, st)))
                    .filter_map(|(s, st)| {
                        let n = rec.stats.get(s, st);
                        (n > 0).then(|| CountSnapshot {
                            strategy: s.map_or("none", Strategy::as_str),
                            status: st.as_str(),
                            count: n,
                        })
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            submitted: m.submitted.load(Relaxed),
            unknown_kernel: m.unknown_kernel.load(Relaxed),
            latency_total_us: Percentiles::of(&m.total.merged()),
            latency_queue_us: Percentiles::of(&m.queue.merged()),
            latency_service_us: Percentiles::of(&m.service.merged()),
            pressure: self.pressure(),
            lane_running: m.lane_running.load(Relaxed),
            lane_running_max: m.lane_running_max.load(Relaxed),
            queue_peak: self.cpu.state.queue_peak(),
            heavy_on_async: m.heavy_on_async.load(Relaxed),
            kernels,
        }
    }
}

fn admit(kernel: &Kernel, params: Params) -> Result<Admitted, Rejection> {
    match &kernel.entry {
        Entry::Native(kind) => admit_native(&kernel.manifest, *kind, params),
        Entry::Wasm(_) => admit_wasm(&kernel.manifest, params),
    }
}

fn rejected(job: &Job, kernel: Option<&Kernel>, err: JobError, submitted: Instant) -> Outcome {
    let total_us = submitted.elapsed().as_micros() as u64;
    Outcome {
        id: job.id,
        kernel: kernel.map_or_else(|| Arc::from(job.kernel.as_str()), |k| k.name.clone()),
        version: kernel.map(|k| k.version.clone()),
        runtime: kernel.map(|k| k.runtime()).or(job.runtime),
        criticality: job.criticality,
        status: Status::Rejected,
        decision: None::<Decision>,
        estimates: Vec::new(),
        arrays: Vec::new(),
        error: Some(err),
        timings: Timings { queue_us: 0, service_us: 0, total_us },
        budget_us: job.budget.as_micros() as u64,
        fuel_used: None,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CountSnapshot {
    pub strategy: &'static str,
    pub status: &'static str,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct KernelSnapshot {
    pub kernel: String,
    /// The serving version; `None` once the kernel was removed.
    pub version: Option<String>,
    pub runtime: &'static str,
    pub cost_correction: f64,
    pub fuel_used: u64,
    /// Measured fuel per unit (Wasm kernels): the Wasm cost model's unit.
    pub fuel_per_unit: Option<f64>,
    /// The serving version refuses jobs now (see `quarantine`).
    pub quarantined: bool,
    /// Times a version of this kernel was quarantined.
    pub quarantines: u64,
    pub counts: Vec<CountSnapshot>,
}

/// The snapshot API: counters, latency percentiles, lane gauges and cost corrections.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub submitted: u64,
    pub unknown_kernel: u64,
    pub latency_total_us: Percentiles,
    pub latency_queue_us: Percentiles,
    pub latency_service_us: Percentiles,
    pub pressure: Pressure,
    pub lane_running: usize,
    pub lane_running_max: usize,
    /// The deepest the CPU lane's queue has been.
    pub queue_peak: usize,
    pub heavy_on_async: u64,
    pub kernels: Vec<KernelSnapshot>,
}

impl Snapshot {
    /// Outcomes counted across kernels, by status, plus unknown-kernel rejections.
    pub fn outcomes(&self) -> u64 {
        self.unknown_kernel + self.kernels.iter().flat_map(|k| &k.counts).map(|c| c.count).sum::<u64>()
    }

    pub fn count(&self, status: Status) -> u64 {
        self.kernels
            .iter()
            .flat_map(|k| &k.counts)
            .filter(|c| c.status == status.as_str())
            .map(|c| c.count)
            .sum::<u64>()
            + if status == Status::Rejected { self.unknown_kernel } else { 0 }
    }
}
