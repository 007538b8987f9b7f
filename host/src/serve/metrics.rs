//! `GET /metrics`: everything the router and the server count, as Prometheus text.

use super::exposition::{Exposition, Kind};
use super::{App, process};
use crate::machine::resident_bytes_of;
use crate::policy::{Reason, Strategy};
use crate::registry::Entry;
use std::sync::atomic::Ordering::Relaxed;

pub fn render(app: &App) -> String {
    let router = &app.router;
    let snap = router.snapshot();
    let m = router.metrics();
    let mut e = Exposition::default();

    e.single("helix_jobs_submitted_total", Kind::Counter, "Jobs submitted to the router.", snap.submitted as f64);
    e.family(
        "helix_jobs_total",
        Kind::Counter,
        "Job outcomes by kernel, runtime, strategy and status; strategy \"none\" marks rejections.",
    );
    for k in &snap.kernels {
        for c in &k.counts {
            let labels =
                [("kernel", k.kernel.as_str()), ("runtime", k.runtime), ("strategy", c.strategy), ("status", c.status)];
            e.sample("helix_jobs_total", &labels, c.count as f64);
        }
    }
    e.single(
        "helix_jobs_unknown_kernel_total",
        Kind::Counter,
        "Jobs rejected because they named no registered kernel.",
        snap.unknown_kernel as f64,
    );
    e.family("helix_decisions_total", Kind::Counter, "Policy decisions behind every outcome, by strategy and reason.");
    for s in Strategy::ALL {
        for r in Reason::ALL {
            let n = m.decisions(s, r);
            if n > 0 {
                e.sample("helix_decisions_total", &[("strategy", s.as_str()), ("reason", r.as_str())], n as f64);
            }
        }
    }

    e.histogram(
        "helix_job_duration_seconds",
        "End-to-end job latency, from submission to outcome.",
        &m.total.merged(),
        m.total.sum_us(),
    );
    e.histogram(
        "helix_job_queue_wait_seconds",
        "Time jobs that ran spent waiting for the CPU lane or a batch.",
        &m.queue.merged(),
        m.queue.sum_us(),
    );
    e.histogram(
        "helix_job_service_seconds",
        "Time jobs that ran spent running.",
        &m.service.merged(),
        m.service.sum_us(),
    );

    let p = snap.pressure;
    e.single("helix_cpu_permits", Kind::Gauge, "Heavy kernels allowed to run at once.", p.permits as f64);
    e.single("helix_cpu_permits_in_use", Kind::Gauge, "CPU-lane permits held now.", p.permits_in_use as f64);
    e.single("helix_cpu_queue_depth", Kind::Gauge, "Jobs waiting for the CPU lane.", p.queue_depth as f64);
    e.single(
        "helix_cpu_queue_depth_peak",
        Kind::Gauge,
        "The deepest the CPU lane's queue has been.",
        snap.queue_peak as f64,
    );
    e.single("helix_cpu_queue_capacity", Kind::Gauge, "The CPU lane's queue cap.", p.queue_capacity as f64);
    e.single(
        "helix_cpu_predicted_wait_seconds",
        Kind::Gauge,
        "Predicted wait for a CPU-lane permit now.",
        p.predicted_wait_us() / 1e6,
    );
    e.single(
        "helix_cpu_work_per_permit_seconds",
        Kind::Gauge,
        "Predicted CPU-lane work queued and running, per permit: how far behind the lane is.",
        (p.queued_work_us + p.running_work_us) / p.permits.max(1) as f64 / 1e6,
    );
    e.single(
        "helix_capacity_shed_ratio",
        Kind::Gauge,
        "Share of the jobs decided in the last capacity window (10 s) that were dropped for this replica's load: the signal to scale on.",
        app.shed_share.get(),
    );
    e.single("helix_cpu_lane_running", Kind::Gauge, "Kernels running in the CPU lane now.", snap.lane_running as f64);
    e.single(
        "helix_cpu_queued_work_seconds",
        Kind::Gauge,
        "Predicted work waiting in the CPU lane's queue.",
        p.queued_work_us / 1e6,
    );
    e.single(
        "helix_cpu_lane_running_peak",
        Kind::Gauge,
        "Most kernels ever running in the CPU lane at once.",
        snap.lane_running_max as f64,
    );
    e.single(
        "helix_cpu_permit_held_seconds_total",
        Kind::Counter,
        "Permit time held by CPU-lane runs, from hand-off to release (the kernels' service time plus the lane's cost per run).",
        snap.lane_held_us as f64 / 1e6,
    );
    e.single(
        "helix_cpu_lane_runs_total",
        Kind::Counter,
        "Runs in the CPU lane (a batch is one).",
        snap.lane_runs as f64,
    );
    e.single(
        "helix_cpu_lane_capacity_ratio",
        Kind::Gauge,
        "Permit time the CPU lane delivered while backed up, as a share of its permits' time: what deadline admission's ration fills.",
        snap.ration.capacity_share,
    );
    e.single(
        "helix_ration_fill_ratio",
        Kind::Gauge,
        "The share of the CPU lane's delivered permit time the ration fills now (ration_share, less while critical jobs are still refused room).",
        snap.ration.fill_share,
    );
    let r = &snap.ration;
    ration_gauge(
        &mut e,
        "helix_ration_whole_below_seconds",
        "While more work is offered than the CPU lane serves: a job of the class costing more runs at ration_keep of its units (absent: none is cut so).",
        [r.critical_whole_us, r.sheddable_whole_us],
    );
    ration_gauge(
        &mut e,
        "helix_ration_cap_seconds",
        "While more work is offered than the CPU lane serves: the most a job of the class may cost (absent: no cap).",
        [r.critical_cap_us, r.sheddable_cap_us],
    );
    e.single(
        "helix_heavy_on_async_total",
        Kind::Counter,
        "Heavy kernels that ran on an async worker thread (should stay 0).",
        snap.heavy_on_async as f64,
    );

    e.family("helix_kernel_info", Kind::Gauge, "Registered kernels: 1 per kernel, runtime and serving version.");
    for k in router.registry().all() {
        let labels = [("kernel", &*k.name), ("runtime", k.runtime().as_str()), ("version", &*k.version)];
        e.sample("helix_kernel_info", &labels, 1.0);
    }
    e.family(
        "helix_kernel_cost_correction",
        Kind::Gauge,
        "Measured over predicted service time, learnt online per kernel (1 = the manifest is right).",
    );
    for k in &snap.kernels {
        let labels = [("kernel", k.kernel.as_str()), ("runtime", k.runtime)];
        e.sample("helix_kernel_cost_correction", &labels, k.cost_correction);
    }
    e.family(
        "helix_kernel_prediction_error_ratio",
        Kind::Gauge,
        "Measured over predicted (corrected) service time of a kernel's runs, at a quantile, tracked online; deadline admission plans each job's own finish at the 0.99 quantile.",
    );
    for k in &snap.kernels {
        let (p50, p99) = k.prediction_error;
        for (q, v) in [("0.5", p50), ("0.99", p99)] {
            let labels = [("kernel", k.kernel.as_str()), ("runtime", k.runtime), ("quantile", q)];
            e.sample("helix_kernel_prediction_error_ratio", &labels, v);
        }
    }
    e.family("helix_kernel_quarantined", Kind::Gauge, "1 while the kernel's serving version is quarantined.");
    for k in snap.kernels.iter().filter(|k| k.runtime == "wasm") {
        e.sample("helix_kernel_quarantined", &[("kernel", &k.kernel)], if k.quarantined { 1.0 } else { 0.0 });
    }
    e.family(
        "helix_kernel_quarantines_total",
        Kind::Counter,
        "Times a kernel was quarantined after repeated sandbox failures.",
    );
    for k in snap.kernels.iter().filter(|k| k.runtime == "wasm") {
        e.sample("helix_kernel_quarantines_total", &[("kernel", &k.kernel)], k.quarantines as f64);
    }
    e.family(
        "helix_kernel_targets_total",
        Kind::Counter,
        "Error-targeted jobs answered, by whether their standard error reached the target.",
    );
    for k in &snap.kernels {
        for (met, n) in [("true", k.targets_met), ("false", k.targets_missed)] {
            e.sample(
                "helix_kernel_targets_total",
                &[("kernel", &k.kernel), ("runtime", k.runtime), ("met", met)],
                n as f64,
            );
        }
    }
    e.family("helix_wasm_fuel_consumed_total", Kind::Counter, "Fuel burnt by Wasm kernels.");
    for k in snap.kernels.iter().filter(|k| k.runtime == "wasm") {
        e.sample("helix_wasm_fuel_consumed_total", &[("kernel", &k.kernel)], k.fuel_used as f64);
    }
    e.family("helix_wasm_fuel_per_unit", Kind::Gauge, "Measured fuel per work unit: the Wasm cost model's unit.");
    for k in snap.kernels.iter().filter(|k| k.runtime == "wasm") {
        if let Some(f) = k.fuel_per_unit {
            e.sample("helix_wasm_fuel_per_unit", &[("kernel", &k.kernel)], f);
        }
    }
    e.family("helix_kernel_registrations_total", Kind::Counter, "Manifest registrations since start, by result.");
    if let Some(c) = router.reload_counts() {
        for (result, n) in [("loaded", &c.loaded), ("refused", &c.refused), ("removed", &c.removed)] {
            e.sample("helix_kernel_registrations_total", &[("result", result)], n.load(Relaxed) as f64);
        }
    }
    if let Some(c) = router.store_counts() {
        e.family("helix_store_requests_total", Kind::Counter, "Shared kernel store traffic since start: listings (one per poll), objects downloaded (only what changed), listings and downloads that failed (tried again at the next poll).");
        for (kind, n) in [("list", &c.polls), ("fetch", &c.fetches), ("failed", &c.failures)] {
            e.sample("helix_store_requests_total", &[("kind", kind)], n.load(Relaxed) as f64);
        }
    }
    let wasm_kernels = router.registry().all().iter().filter(|k| matches!(k.entry, Entry::Wasm(_))).count();
    e.single("helix_wasm_kernels", Kind::Gauge, "Wasm kernels registered now.", wasm_kernels as f64);

    e.family("helix_http_responses_total", Kind::Counter, "HTTP responses by status code.");
    for (code, n) in app.http.counts() {
        e.sample("helix_http_responses_total", &[("code", &code)], n as f64);
    }
    e.single(
        "helix_http_jobs_in_flight",
        Kind::Gauge,
        "Job requests accepted and not yet answered.",
        app.lifecycle.in_flight() as f64,
    );
    e.single(
        "helix_http_reply_reserve_seconds",
        Kind::Gauge,
        "Budget kept back for the reply's way back, from the p99 of the way in of X-Request-Start stamped requests.",
        app.transit.estimate_s(),
    );
    e.single(
        "helix_ready",
        Kind::Gauge,
        "1 when kernels are loaded and the server is not draining.",
        app.ready() as u8 as f64,
    );
    e.single(
        "helix_draining",
        Kind::Gauge,
        "1 once a shutdown signal started the drain.",
        app.lifecycle.is_draining() as u8 as f64,
    );
    e.single(
        "helix_panics_total",
        Kind::Counter,
        "Panics caught (each ended one job at most).",
        process::panics() as f64,
    );
    if let Some(rss) = resident_bytes_of("self") {
        e.single("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.", rss as f64);
    }
    e.single("helix_start_time_seconds", Kind::Gauge, "When the server started, Unix time.", app.started_unix_s);
    e.finish()
}

/// A ration's bound per class (critical, sheddable), in seconds; a class without one has no sample.
fn ration_gauge(e: &mut Exposition, name: &str, help: &str, by_class: [Option<f64>; 2]) {
    e.family(name, Kind::Gauge, help);
    for (class, us) in ["critical", "sheddable"].into_iter().zip(by_class) {
        if let Some(us) = us {
            e.sample(name, &[("criticality", class)], us / 1e6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ration_gauge_has_a_sample_per_class_that_has_a_bound() {
        let mut e = Exposition::default();
        ration_gauge(&mut e, "t_seconds", "test", [Some(1_500.0), None]);
        let text = e.finish();
        assert!(text.contains("# TYPE t_seconds gauge\n"), "{text}");
        assert!(text.contains("t_seconds{criticality=\"critical\"} 0.0015\n"), "{text}");
        assert!(!text.contains("sheddable"), "{text}");
    }
}
