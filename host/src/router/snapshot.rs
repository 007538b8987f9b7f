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
