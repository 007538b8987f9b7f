//! What the router counts, at one moment: outcomes per kernel, strategy and status, latency
//! percentiles, the lane's gauges and each kernel's learnt cost correction.

use super::Router;
use crate::metrics::Percentiles;
use crate::outcome::Status;
use crate::policy::{Pressure, Strategy};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

impl Router {
    /// Everything the router counts, at this moment.
    pub fn snapshot(&self) -> Snapshot {
        let m = &self.ctx.metrics;
        let kernels = self
            .registry()
            .stats()
            .into_iter()
            .map(|rec| KernelSnapshot {
                version: rec.current.as_ref().map(|k| k.manifest.version.clone()),
                kernel: rec.name,
                runtime: rec.runtime.as_str(),
                cost_correction: rec.stats.correction(),
                prediction_error: rec.stats.prediction_error(),
                fuel_used: rec.stats.fuel_used(),
                fuel_per_unit: rec.stats.fuel_per_unit(),
                quarantined: rec.current.as_ref().is_some_and(|k| k.quarantine.is_closed(Instant::now())),
                quarantines: rec.stats.quarantines.load(Relaxed),
                targets_met: rec.stats.targets[0].load(Relaxed),
                targets_missed: rec.stats.targets[1].load(Relaxed),
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
        let (lane_held_us, lane_runs) = self.cpu.state.held();
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
            lane_held_us,
            lane_runs,
            ration: {
                let (rations, capacity_share, fill_share) = self.cpu.state.ration();
                let finite = |us: f64| us.is_finite().then_some(us);
                Ration {
                    critical_whole_us: finite(rations.critical.whole_us),
                    critical_cap_us: finite(rations.critical.cap_us),
                    sheddable_whole_us: finite(rations.sheddable.whole_us),
                    sheddable_cap_us: finite(rations.sheddable.cap_us),
                    keep: self.ctx.config.policy.ration_keep,
                    capacity_share,
                    fill_share,
                }
            },
            heavy_on_async: m.heavy_on_async.load(Relaxed),
            kernels,
        }
    }
}

/// Outcomes of one kernel with one strategy and status.
#[derive(Clone, Debug, Serialize)]
pub struct CountSnapshot {
    /// The decision's strategy; `none` for jobs rejected before a decision.
    pub strategy: &'static str,
    /// How the jobs ended.
    pub status: &'static str,
    /// How many.
    pub count: u64,
}

/// One kernel and runtime, across its versions.
#[derive(Clone, Debug, Serialize)]
pub struct KernelSnapshot {
    /// The kernel's name.
    pub kernel: String,
    /// The serving version; `None` once the kernel was removed.
    pub version: Option<String>,
    /// `native` or `wasm`.
    pub runtime: &'static str,
    /// Measured over predicted service time, learnt online (1 = the manifest is right).
    pub cost_correction: f64,
    /// Measured over predicted service time of its runs, at the median and the 99th
    /// percentile (online estimates): how far the corrected cost model can be trusted.
    pub prediction_error: (f64, f64),
    /// Fuel its Wasm runs burnt in all.
    pub fuel_used: u64,
    /// Measured fuel per unit (Wasm kernels): the Wasm cost model's unit.
    pub fuel_per_unit: Option<f64>,
    /// The serving version refuses jobs now (see `quarantine`).
    pub quarantined: bool,
    /// Times a version of this kernel was quarantined.
    pub quarantines: u64,
    /// Error-targeted jobs that met their target.
    pub targets_met: u64,
    /// Error-targeted jobs answered short of their target (their ceiling or grant too small).
    pub targets_missed: u64,
    /// Its outcomes, by strategy and status (the non-zero ones).
    pub counts: Vec<CountSnapshot>,
}

/// What deadline admission rations now: while more work is offered than the CPU lane serves, a
/// job of a class costing more than its `whole_us` runs at `keep` of its units, and at most
/// at its cap (reason `rationed`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ration {
    /// Critical jobs costing up to this run whole, microseconds of permit time; `None`: no
    /// critical job is cut to `keep`.
    pub critical_whole_us: Option<f64>,
    /// The most a critical job may cost now, microseconds; `None`: no cap.
    pub critical_cap_us: Option<f64>,
    /// The same for sheddable jobs (a cap of 0: sheddable work is shed).
    pub sheddable_whole_us: Option<f64>,
    /// The same for sheddable jobs.
    pub sheddable_cap_us: Option<f64>,
    /// The share of its units a job cut to it keeps (`ration_keep`).
    pub keep: f64,
    /// The permit time the lane delivered while backed up, as a share of the permits' whole
    /// time: what the ration fills (learnt over the last 50 ms; 1 until the lane backs up).
    pub capacity_share: f64,
    /// The share of that capacity the ration fills now: `ration_share`, less while critical
    /// jobs are still refused room.
    pub fill_share: f64,
}

/// The snapshot API: counters, latency percentiles, lane gauges and cost corrections.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Jobs submitted.
    pub submitted: u64,
    /// Jobs rejected because they named no registered kernel.
    pub unknown_kernel: u64,
    /// End-to-end latency of every outcome, microseconds.
    pub latency_total_us: Percentiles,
    /// Queue wait of the jobs that ran, microseconds.
    pub latency_queue_us: Percentiles,
    /// Service time of the jobs that ran, microseconds.
    pub latency_service_us: Percentiles,
    /// The CPU lane now.
    pub pressure: Pressure,
    /// Kernels running in the CPU lane now.
    pub lane_running: usize,
    /// The most kernels ever running in the CPU lane at once (never above the permits).
    pub lane_running_max: usize,
    /// The deepest the CPU lane's queue has been.
    pub queue_peak: usize,
    /// Permit time the CPU lane's runs have held, from hand-off to release, microseconds.
    pub lane_held_us: u64,
    /// Runs in the CPU lane (a batch is one).
    pub lane_runs: u64,
    /// The CPU lane's ration (deadline admission).
    pub ration: Ration,
    /// Heavy kernels that ran on an async worker thread: must stay 0.
    pub heavy_on_async: u64,
    /// Every kernel and runtime ever registered.
    pub kernels: Vec<KernelSnapshot>,
}

impl Snapshot {
    /// Outcomes counted across kernels, by status, plus unknown-kernel rejections.
    pub fn outcomes(&self) -> u64 {
        self.unknown_kernel + self.kernels.iter().flat_map(|k| &k.counts).map(|c| c.count).sum::<u64>()
    }

    /// Outcomes with `status`, across kernels (rejections include unknown kernels).
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
