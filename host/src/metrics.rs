//! Layer 4: what the router counts: outcomes per kernel × strategy × status, latency histograms
//! (end to end, queue wait, service), lane gauges and each kernel's cost-model correction, and the
//! guards that keep paired counters (running work, kernels in the lane) balanced even when a run
//! panics. Hot-path updates are atomics or a per-thread histogram shard: no global lock.

use crate::outcome::{Outcome, Status};
use crate::policy::{Reason, Strategy};
use crate::precision::Learnt;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Outcomes without a decision (rejections) count under this extra strategy slot.
pub const NO_STRATEGY: usize = Strategy::ALL.len();

/// Per-kernel counters and the online cost correction.
#[derive(Debug)]
pub struct KernelStats {
    counts: [[AtomicU64; Status::ALL.len()]; Strategy::ALL.len() + 1],
    /// measured / predicted service time, smoothed; stored as f64 bits.
    correction: AtomicU64,
    fuel_used: AtomicU64,
    fuel_units: AtomicU64,
    /// Times a version of this kernel was quarantined.
    pub quarantines: AtomicU64,
    /// The error of the corrected prediction (measured / predicted service time) at its median
    /// and its 99th percentile, tracked online (f64 bits).
    error_p50: AtomicU64,
    error_p99: AtomicU64,
    /// The variance per unit error-targeted jobs showed, per parameter class.
    pub learnt: Learnt,
    /// Error-targeted jobs answered, by whether they met their target: `[met, missed]`.
    pub targets: [AtomicU64; 2],
}

impl Default for KernelStats {
    fn default() -> Self {
        KernelStats {
            counts: Default::default(),
            correction: AtomicU64::new(1.0f64.to_bits()),
            fuel_used: AtomicU64::new(0),
            fuel_units: AtomicU64::new(0),
            quarantines: AtomicU64::new(0),
            error_p50: AtomicU64::new(1.0f64.to_bits()),
            error_p99: AtomicU64::new(1.0f64.to_bits()),
            learnt: Learnt::default(),
            targets: Default::default(),
        }
    }
}

/// Step of the online quantile estimates, in natural-log units: an estimate moves about 2% a
/// sample, so it follows a change in a few hundred runs and stays within a step of its target.
const QUANTILE_STEP: f64 = 0.02;

/// Moves the estimate of quantile `p` held in `cell` towards `ratio` (a stochastic
/// approximation in log space: up by `p` steps when the sample is above it, down by `1 - p`
/// steps otherwise, so it settles where a share `1 - p` of the samples lie above it).
fn track_quantile(cell: &AtomicU64, p: f64, ratio: f64) {
    let _ = cell.try_update(Relaxed, Relaxed, |bits| {
        let q = f64::from_bits(bits);
        let step = if ratio > q { p } else { p - 1.0 };
        Some((q * (QUANTILE_STEP * step).exp()).clamp(0.01, 100.0).to_bits())
    });
}

/// Weight of each new measurement in the cost correction.
const CORRECTION_GAIN: f64 = 0.05;

impl KernelStats {
    pub fn count(&self, strategy: Option<Strategy>, status: Status) {
        let s = strategy.map_or(NO_STRATEGY, Strategy::index);
        self.counts[s][status.index()].fetch_add(1, Relaxed);
    }

    pub fn get(&self, strategy: Option<Strategy>, status: Status) -> u64 {
        self.counts[strategy.map_or(NO_STRATEGY, Strategy::index)][status.index()].load(Relaxed)
    }

    pub fn correction(&self) -> f64 {
        f64::from_bits(self.correction.load(Relaxed))
    }

    /// Folds one measurement (`measured / predicted`, both uncorrected) into the correction.
    pub fn observe(&self, predicted_us: f64, measured_us: f64) {
        if !(predicted_us > 0.0 && measured_us > 0.0) {
            return;
        }
        let ratio = (measured_us / predicted_us).clamp(0.01, 100.0);
        let _ = self.correction.try_update(Relaxed, Relaxed, |bits| {
            let c = f64::from_bits(bits);
            Some(((1.0 - CORRECTION_GAIN) * c + CORRECTION_GAIN * ratio).clamp(0.05, 20.0).to_bits())
        });
    }

    /// Folds one run's prediction error, measured over corrected predicted service time, into
    /// the median and 99th-percentile estimates.
    pub fn observe_error(&self, ratio: f64) {
        if ratio.is_finite() && ratio > 0.0 {
            track_quantile(&self.error_p50, 0.5, ratio);
            track_quantile(&self.error_p99, 0.99, ratio);
        }
    }

    /// The prediction error (measured / predicted) at its median and its 99th percentile.
    pub fn prediction_error(&self) -> (f64, f64) {
        (f64::from_bits(self.error_p50.load(Relaxed)), f64::from_bits(self.error_p99.load(Relaxed)))
    }

    /// Records the fuel a guest burnt running `units` units.
    pub fn add_fuel(&self, fuel: u64, units: u64) {
        self.fuel_used.fetch_add(fuel, Relaxed);
        self.fuel_units.fetch_add(units, Relaxed);
    }

    /// Measured fuel per unit so far (the Wasm cost model's unit).
    pub fn fuel_per_unit(&self) -> Option<f64> {
        let units = self.fuel_units.load(Relaxed);
        (units > 0).then(|| self.fuel_used.load(Relaxed) as f64 / units as f64)
    }

    pub fn fuel_used(&self) -> u64 {
        self.fuel_used.load(Relaxed)
    }
}

/// A latency histogram in microseconds, sharded by thread so recording never contends, with
/// the exact sum beside it (Prometheus reports one; HdrHistogram keeps only bucketed values).
pub struct LatencyHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
    sum_us: AtomicU64,
}

const SHARDS: usize = 8;
/// One hour, in microseconds: the top of every histogram.
const MAX_US: u64 = 3_600_000_000;

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! { static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS; }
    SHARD.with(|s| *s)
}

fn empty_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            shards: (0..SHARDS).map(|_| Mutex::new(empty_histogram())).collect(),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, us: u64) {
        self.sum_us.fetch_add(us, Relaxed);
        let mut h = self.shards[shard_index()].lock().unwrap_or_else(|p| p.into_inner());
        h.saturating_record(us.clamp(1, MAX_US));
    }

    /// Sum of every recorded value, microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = empty_histogram();
        for s in &self.shards {
            let h = s.lock().unwrap_or_else(|p| p.into_inner());
            all.add(&*h).expect("same bounds");
        }
        all
    }
}

/// Percentiles of one histogram, microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The largest value.
    pub max: u64,
    /// The mean.
    pub mean: f64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Router-wide metrics.
#[derive(Default)]
pub struct Metrics {
    pub submitted: AtomicU64,
    /// Rejections of jobs naming no registered kernel (no per-kernel stats to count them in).
    pub unknown_kernel: AtomicU64,
    pub total: LatencyHistogram,
    pub queue: LatencyHistogram,
    pub service: LatencyHistogram,
    /// End-to-end time of the jobs answered (completed or degraded) over their budget, in
    /// thousandths (1000: the whole budget), so latency reads against what each job allowed.
    pub budget_used: LatencyHistogram,
    /// Decisions behind every outcome, by strategy and reason: why jobs ran the way they did.
    pub decisions: [[AtomicU64; Reason::ALL.len()]; Strategy::ALL.len()],
    /// Heavy kernels (predicted above the spawn threshold) that ran on an async worker: must stay 0.
    pub heavy_on_async: AtomicU64,
    /// Kernels running in the CPU lane now, and the most ever at once.
    pub lane_running: AtomicUsize,
    pub lane_running_max: AtomicUsize,
}

impl Metrics {
    /// Outcomes whose decision had this strategy and reason.
    pub fn decisions(&self, strategy: Strategy, reason: Reason) -> u64 {
        self.decisions[strategy.index()][reason.index()].load(Relaxed)
    }

    /// Counts one outcome of a kernel whose counters are `stats`: exactly once per submitted job.
    pub(crate) fn record(&self, stats: &KernelStats, o: &Outcome) {
        stats.count(o.decision.map(|d| d.strategy), o.status);
        if let Some(t) = &o.target {
            stats.targets[usize::from(!t.met)].fetch_add(1, Relaxed);
        }
        if let Some(d) = o.decision {
            self.decisions[d.strategy.index()][d.reason.index()].fetch_add(1, Relaxed);
        }
        self.total.record(o.timings.total_us);
        if matches!(o.status, Status::Completed | Status::Degraded | Status::Failed) {
            self.queue.record(o.timings.queue_us);
            self.service.record(o.timings.service_us);
        }
        if matches!(o.status, Status::Completed | Status::Degraded) && o.budget_us > 0 {
            self.budget_used.record(o.timings.total_us.saturating_mul(1000) / o.budget_us);
        }
    }

    /// Counts one kernel running in the CPU lane until the guard drops, panic or not.
    pub(crate) fn enter_lane(&self) -> InLane<'_> {
        let now = self.lane_running.fetch_add(1, Relaxed) + 1;
        self.lane_running_max.fetch_max(now, Relaxed);
        InLane(&self.lane_running)
    }
}

/// A kernel counted as running in the CPU lane; dropping it ends the count.
#[must_use = "the kernel counts as running only while the guard lives"]
pub(crate) struct InLane<'a>(&'a AtomicUsize);

impl Drop for InLane<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Predicted work in microseconds, added by a guard and taken away when the guard drops, so a
/// run that panics cannot leave its work counted for ever (the policy would see a busier lane).
/// What the guards held is also summed, in permit time, as the work done so far.
#[derive(Debug, Default)]
pub(crate) struct WorkGauge {
    running: AtomicU64,
    done: AtomicU64,
}

impl WorkGauge {
    pub(crate) fn get(&self) -> u64 {
        self.running.load(Relaxed)
    }

    /// Predicted permit time of the work whose guards have dropped, microseconds.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }

    /// Counts `us` until the guard drops.
    pub(crate) fn hold(&self, us: u64) -> HeldWork<'_> {
        self.hold_on(us, 1)
    }

    /// Counts `us` of work running on `permits` permits at once until the guard drops.
    pub(crate) fn hold_on(&self, us: u64, permits: usize) -> HeldWork<'_> {
        self.running.fetch_add(us, Relaxed);
        HeldWork { gauge: self, us, permits: permits as u64 }
    }
}

/// Work counted in a `WorkGauge`; dropping it takes the work away again.
#[must_use = "the work counts only while the guard lives"]
pub(crate) struct HeldWork<'a> {
    gauge: &'a WorkGauge,
    us: u64,
    permits: u64,
}

impl Drop for HeldWork<'_> {
    fn drop(&mut self) {
        self.gauge.running.fetch_sub(self.us, Relaxed);
        self.gauge.done.fetch_add(self.us * self.permits, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    #[test]
    fn the_prediction_error_quantiles_settle_where_the_samples_put_them() {
        let stats = KernelStats::default();
        // Ratios 0.5 .. 2.5 spread evenly (a deterministic shuffle): the median 1.5, the 99th
        // percentile 2.48.
        let n = 1_000u64;
        for round in 0..20 {
            for i in 0..n {
                let k = (i * 7919 + round) % n;
                stats.observe_error(0.5 + 2.0 * k as f64 / n as f64);
            }
        }
        let (p50, p99) = stats.prediction_error();
        assert!((p50 - 1.5).abs() < 0.1, "{p50}");
        assert!((p99 - 2.48).abs() < 0.1, "{p99}");
        stats.observe_error(f64::NAN);
        assert_eq!(stats.prediction_error(), (p50, p99), "a bad sample is ignored");
    }

    #[test]
    fn answered_jobs_record_their_share_of_the_budget_and_refusals_do_not() {
        let m = Metrics::default();
        let stats = KernelStats::default();
        let outcome = |status, total_us, budget_us| Outcome {
            id: 1,
            kernel: "k".into(),
            version: None,
            runtime: None,
            criticality: crate::job::Criticality::Critical,
            status,
            decision: None,
            estimates: Vec::new(),
            arrays: Vec::new(),
            error: None,
            timings: crate::outcome::Timings { queue_us: 0, service_us: 0, total_us },
            budget_us,
            fuel_used: None,
            batch_size: None,
            target: None,
        };
        m.record(&stats, &outcome(Status::Completed, 25_000, 50_000));
        m.record(&stats, &outcome(Status::Degraded, 75_000, 50_000));
        m.record(&stats, &outcome(Status::Dropped, 10, 50_000));
        m.record(&stats, &outcome(Status::Rejected, 10, 0));
        let h = m.budget_used.merged();
        assert_eq!(h.len(), 2, "only answered jobs count");
        assert!(h.equivalent(h.min(), 500) && h.equivalent(h.max(), 1_500), "{} {}", h.min(), h.max());
    }

    #[test]
    fn paired_counters_fall_back_when_the_work_panics() {
        let m = Metrics::default();
        let running = WorkGauge::default();
        let outer = running.hold(70);
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _in_lane = m.enter_lane();
            let _held = running.hold(500);
            assert_eq!((m.lane_running.load(Relaxed), running.get()), (1, 570));
            panic!("a bug between the two halves of a pair");
        }));
        assert!(r.is_err());
        assert_eq!((m.lane_running.load(Relaxed), m.lane_running_max.load(Relaxed), running.get()), (0, 1, 70));
        drop(outer);
        assert_eq!(running.get(), 0);
    }
}
