//! One run's report, made from what the generator recorded: offered and achieved rate,
//! goodput, outcomes by strategy and reason, degrade depth, and latency percentiles end to end
//! and queued, for critical and sheddable jobs apart; as numbers, JSON or text.

use super::record::{ClassRecorder, Decided, Recorder, WINDOW_US, WindowRecorder};
use super::replay::ReplayVerdict;
use crate::metrics::Percentiles;
use crate::outcome::Status;
use crate::policy::{Reason, Strategy};
use serde::Serialize;
use std::fmt::Write;

/// The share of offered jobs that must be answered within budget for a rate to count as within
/// capacity: "p99 within budget", counting a job without an answer as over budget.
pub const CAPACITY_QUANTILE: f64 = 0.99;

/// Outcome counts; they balance: `offered = completed + degraded + dropped + rejected + failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub offered: u64,
    pub completed: u64,
    pub degraded: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Of the failed: jobs the generator could not issue (its in-flight cap was reached).
    pub failed_not_issued: u64,
    /// Of the failed: no answer from an HTTP target (connection error or timeout).
    pub failed_transport: u64,
    /// Of the dropped: an HTTP target answered 503 because it is draining.
    pub dropped_draining: u64,
}

impl Counts {
    pub fn balanced(&self) -> bool {
        self.offered == self.completed + self.degraded + self.dropped + self.rejected + self.failed
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DegradeDepth {
    pub jobs: u64,
    /// Mean granted / requested units over degraded jobs.
    pub mean_share: f64,
    pub min_share: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyCount {
    pub strategy: &'static str,
    pub status: &'static str,
    pub count: u64,
}

/// One class's report (critical, sheddable, or all).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassReport {
    pub counts: Counts,
    pub within_budget: u64,
    /// Jobs answered within budget per second of the run.
    pub goodput: f64,
    /// Of the goodput, jobs completed with every unit they asked for (not degraded).
    pub goodput_full: f64,
    /// Answered within budget / offered.
    pub within_budget_share: f64,
    /// Completed in full within budget / offered.
    pub within_budget_full_share: f64,
    /// Answered jobs, from scheduled arrival to answer.
    pub end_to_end_us: Percentiles,
    /// Answered jobs, the router's queue wait.
    pub queue_us: Percentiles,
    /// Answered jobs: p99 of latency / budget (at most 1 when p99 is within budget).
    pub p99_budget_use: f64,
    pub degrade: DegradeDepth,
    pub by_strategy: Vec<StrategyCount>,
    /// Why jobs were dropped or degraded: (reason, jobs).
    pub by_reason: Vec<(&'static str, u64)>,
}

impl ClassReport {
    pub fn of(r: &ClassRecorder, duration_s: f64) -> ClassReport {
        let s = |st: Status| r.status[st.index()];
        let counts = Counts {
            offered: r.offered,
            completed: s(Status::Completed),
            degraded: s(Status::Degraded),
            dropped: s(Status::Dropped),
            rejected: s(Status::Rejected),
            failed: s(Status::Failed),
            failed_not_issued: r.not_issued,
            failed_transport: r.transport,
            dropped_draining: r.draining,
        };
        let names = Strategy::ALL.map(Strategy::as_str);
        let by_strategy = (0..=Strategy::ALL.len())
            .flat_map(|i| Status::ALL.into_iter().map(move |st| (i, st)))
            .filter(|&(i, st)| r.by_strategy[i][st.index()] > 0)
            .map(|(i, st)| StrategyCount {
                strategy: names.get(i).copied().unwrap_or("none"),
                status: st.as_str(),
                count: r.by_strategy[i][st.index()],
            })
            .collect();
        let by_reason = Reason::ALL
            .into_iter()
            .filter(|x| r.by_reason[x.index()] > 0)
            .map(|x| (x.as_str(), r.by_reason[x.index()]))
            .collect();
        let degrade = if r.degraded_jobs > 0 {
            DegradeDepth {
                jobs: r.degraded_jobs,
                mean_share: r.degraded_share_sum / r.degraded_jobs as f64,
                min_share: r.degraded_share_min,
            }
        } else {
            DegradeDepth::default()
        };
        ClassReport {
            counts,
            within_budget: r.within_budget,
            goodput: if duration_s > 0.0 { r.within_budget as f64 / duration_s } else { 0.0 },
            goodput_full: if duration_s > 0.0 { r.within_budget_full as f64 / duration_s } else { 0.0 },
            within_budget_share: if r.offered > 0 { r.within_budget as f64 / r.offered as f64 } else { 1.0 },
            within_budget_full_share: if r.offered > 0 { r.within_budget_full as f64 / r.offered as f64 } else { 1.0 },
            end_to_end_us: Percentiles::of(&r.end_to_end),
            queue_us: Percentiles::of(&r.queue),
            p99_budget_use: if r.budget_use.is_empty() {
                0.0
            } else {
                r.budget_use.value_at_quantile(0.99) as f64 / 1e3
            },
            degrade,
            by_strategy,
            by_reason,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelReport {
    pub kernel: String,
    pub offered: u64,
    pub answered: u64,
    pub dropped: u64,
    pub within_budget_share: f64,
    /// Critical jobs offered, and the share of them answered within budget (1 with none).
    pub critical_offered: u64,
    pub critical_within_budget_share: f64,
    /// p99 of latency / budget over answered jobs.
    pub p99_budget_use: f64,
}

/// The jobs that arrived in one window of the run (`WINDOW_US` wide).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WindowReport {
    /// When the window starts, seconds into the run.
    pub start_s: f64,
    /// Jobs per second that arrived in it.
    pub offered_rate: f64,
    /// Of those, jobs per second answered within budget.
    pub goodput: f64,
    /// Of the goodput, jobs completed with every unit they asked for.
    pub goodput_full: f64,
    /// p99 latency of the answered ones, milliseconds (0 when none was answered).
    pub p99_ms: f64,
}

impl WindowReport {
    fn of(index: usize, w: &WindowRecorder) -> WindowReport {
        let per_s = 1e6 / WINDOW_US as f64;
        let mut answered = w.answered_us.clone();
        answered.sort_unstable();
        let p99_ms = match answered.len() {
            0 => 0.0,
            n => answered[((n - 1) as f64 * 0.99).round() as usize] as f64 / 1e3,
        };
        WindowReport {
            start_s: (index as u64 * WINDOW_US) as f64 / 1e6,
            offered_rate: w.offered as f64 * per_s,
            goodput: w.in_budget as f64 * per_s,
            goodput_full: w.in_budget_full as f64 * per_s,
            p99_ms,
        }
    }
}

/// How far off the router's predicted start of a job was: |actual queue wait - predicted wait|
/// as a share of the job's budget, over jobs that ran after waiting in the CPU lane or a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StartError {
    /// Jobs it is taken over.
    pub jobs: u64,
    /// The median error, as a share of budget.
    pub p50: f64,
    /// The 99th percentile, as a share of budget.
    pub p99: f64,
}

impl StartError {
    fn of(decided: &[Decided]) -> StartError {
        let queued = [Strategy::CpuLane, Strategy::Split, Strategy::Degrade, Strategy::Batch];
        let mut errors: Vec<f64> = decided
            .iter()
            .filter(|d| queued.contains(&d.strategy) && d.budget_us > 0)
            .filter_map(|d| Some((d.queue_us? as f64 - d.predicted_wait_us).abs() / d.budget_us as f64))
            .collect();
        if errors.is_empty() {
            return StartError::default();
        }
        errors.sort_by(f64::total_cmp);
        let at = |q: f64| errors[((errors.len() - 1) as f64 * q).round() as usize];
        StartError { jobs: errors.len() as u64, p50: at(0.5), p99: at(0.99) }
    }
}

/// A run's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// Where the jobs went: the server's jobs URL, or the in-process router.
    pub target: String,
    /// The arrival process (`poisson` or `constant`).
    pub arrivals: &'static str,
    /// The schedule's rate, jobs per second.
    pub rate: f64,
    /// How long jobs were scheduled for, seconds.
    pub duration_s: f64,
    /// Jobs scheduled per second.
    pub offered_rate: f64,
    /// Jobs issued per second (the generator keeping up: equal to the offered rate unless its
    /// in-flight cap was reached).
    pub achieved_rate: f64,
    /// Jobs answered within budget per second.
    pub goodput: f64,
    /// How late the generator issued jobs after their due instant, microseconds (issued jobs
    /// only): the generator's own health.
    pub issue_lateness_us: Percentiles,
    /// Answered jobs: time spent outside the router, microseconds (issuing the job, and over
    /// HTTP the way to the server and back).
    pub outside_router_us: Percentiles,
    /// Every job, critical and sheddable together.
    pub all: ClassReport,
    /// Critical jobs only.
    pub critical: ClassReport,
    /// Sheddable jobs only.
    pub sheddable: ClassReport,
    /// One entry per kernel (with its runtime when the job named one), in name order.
    pub by_kernel: Vec<KernelReport>,
    /// Rejected and failed jobs by kernel and error kind (`kernel: kind`).
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Jobs each kernel version ran (`kernel@version`).
    pub versions: std::collections::BTreeMap<String, u64>,
    /// The error of the router's predicted start times.
    pub start_error: StartError,
    /// The replay check (see `replay`): how the router's drops and admissions compare with a
    /// clairvoyant schedule's; `None` when the router's permits are unknown.
    pub replay: Option<ReplayVerdict>,
    /// How the rate moved (`steady`, or the step or bursts).
    pub profile: String,
    /// The run in windows by arrival time (see `WindowReport`).
    pub windows: Vec<WindowReport>,
}

impl RunReport {
    /// The report of a run at `rate` jobs per second for `duration_s` seconds, from what `rec`
    /// recorded.
    pub fn new(target: &str, arrivals: &'static str, rate: f64, duration_s: f64, rec: &Recorder) -> RunReport {
        let mut all = rec.critical.clone();
        all.merge(&rec.sheddable);
        let all = ClassReport::of(&all, duration_s);
        let per_s = |n: u64| if duration_s > 0.0 { n as f64 / duration_s } else { 0.0 };
        RunReport {
            target: target.to_string(),
            arrivals,
            rate,
            duration_s,
            offered_rate: per_s(all.counts.offered),
            achieved_rate: per_s(all.counts.offered - all.counts.failed_not_issued),
            goodput: all.goodput,
            issue_lateness_us: Percentiles::of(&rec.lateness),
            outside_router_us: Percentiles::of(&rec.outside),
            by_kernel: rec
                .kernels
                .iter()
                .map(|(name, k)| KernelReport {
                    kernel: name.clone(),
                    offered: k.offered,
                    answered: k.answered,
                    dropped: k.dropped,
                    within_budget_share: k.within_budget as f64 / k.offered.max(1) as f64,
                    critical_offered: k.critical_offered,
                    critical_within_budget_share: if k.critical_offered > 0 {
                        k.critical_within_budget as f64 / k.critical_offered as f64
                    } else {
                        1.0
                    },
                    p99_budget_use: if k.budget_use.is_empty() {
                        0.0
                    } else {
                        k.budget_use.value_at_quantile(0.99) as f64 / 1e3
                    },
                })
                .collect(),
            errors: rec.errors.clone(),
            versions: rec.versions.clone(),
            start_error: StartError::of(&rec.decided),
            replay: None,
            profile: "steady".into(),
            windows: rec.windows.iter().enumerate().map(|(i, w)| WindowReport::of(i, w)).collect(),
            critical: ClassReport::of(&rec.critical, duration_s),
            sheddable: ClassReport::of(&rec.sheddable, duration_s),
            all,
        }
    }

    /// Whether the outcome counts balance for every class (see `Counts`).
    pub fn balanced(&self) -> bool {
        [&self.all, &self.critical, &self.sheddable].iter().all(|c| c.counts.balanced())
    }

    /// Within capacity: at least `CAPACITY_QUANTILE` of the offered jobs answered within budget.
    pub fn within_capacity(&self) -> bool {
        self.all.within_budget_share >= CAPACITY_QUANTILE
    }

    /// The report as a JSON value, one key per field.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report serialises")
    }

    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let c = &self.all.counts;
        let profile = if self.profile == "steady" { String::new() } else { format!(" ({})", self.profile) };
        let _ = writeln!(
            s,
            "{} {:.0} jobs/s{profile} for {:.0} s against {}",
            self.arrivals, self.rate, self.duration_s, self.target
        );
        let _ = writeln!(
            s,
            "  offered {:.1}/s, achieved {:.1}/s, goodput {:.1}/s ({}; {:.1}% of offered jobs answered within budget)",
            self.offered_rate,
            self.achieved_rate,
            self.goodput,
            if self.all.goodput_full >= self.goodput {
                "all in full".to_string()
            } else {
                format!("{:.1}/s in full, the rest degraded", self.all.goodput_full)
            },
            100.0 * self.all.within_budget_share
        );
        let _ = writeln!(
            s,
            "  outcomes: {} offered = {} completed + {} degraded + {} dropped + {} rejected + {} failed ({})",
            c.offered,
            c.completed,
            c.degraded,
            c.dropped,
            c.rejected,
            c.failed,
            if c.balanced() { "balanced" } else { "DO NOT BALANCE" }
        );
        if c.failed_not_issued + c.failed_transport + c.dropped_draining > 0 {
            let _ = writeln!(
                s,
                "  of which: {} not issued by the generator (in-flight cap), {} without an answer (transport), \
                 {} refused by a draining server",
                c.failed_not_issued, c.failed_transport, c.dropped_draining
            );
        }
        if !self.errors.is_empty() {
            let e: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(s, "  rejected or failed, by kernel and error: {}", e.join(", "));
        }
        let by: Vec<String> =
            self.all.by_strategy.iter().map(|b| format!("{} {} {}", b.strategy, b.status, b.count)).collect();
        let _ = writeln!(s, "  by strategy: {}", by.join(", "));
        for (name, r) in [("critical", &self.critical), ("sheddable", &self.sheddable)] {
            if !r.by_reason.is_empty() {
                let why: Vec<String> = r.by_reason.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
                let _ = writeln!(s, "  {name} dropped or degraded because: {}", why.join(", "));
            }
        }
        let d = &self.all.degrade;
        if d.jobs > 0 {
            let _ = writeln!(
                s,
                "  degrade depth: {} jobs ran {:.0}% of their units on average (least {:.0}%)",
                d.jobs,
                100.0 * d.mean_share,
                100.0 * d.min_share
            );
        }
        if let Some(v) = &self.replay {
            let _ = writeln!(
                s,
                "  replay against clairvoyant EDF schedules: of {} dropped, {} ({:.1}%) would have fitted beside \
                 the jobs run (false rejects; critical: {} of {}); of {} run, {} ({:.1}%) answered past budget \
                 (critical: {} of {}); scheduling the arrivals alone, a clairvoyant served {} of the drops, its \
                 permits {:.0}% busy with service (the router's {:.0}%); lane cost per run {:.0} us",
                v.dropped,
                v.false_rejects,
                100.0 * v.false_reject_share(),
                v.false_rejects_critical,
                v.dropped_critical,
                v.ran,
                v.late_admits,
                100.0 * v.late_admit_share(),
                v.late_admits_critical,
                v.ran_critical,
                v.clairvoyant_served_dropped,
                100.0 * v.clairvoyant_busy,
                100.0 * v.router_busy,
                v.lane_overhead_us
            );
        }
        let e = &self.start_error;
        if e.jobs > 0 {
            let _ = writeln!(
                s,
                "  predicted start: off by {:.1}% of the budget at p50, {:.1}% at p99 ({} queued jobs)",
                100.0 * e.p50,
                100.0 * e.p99,
                e.jobs
            );
        }
        let _ = writeln!(
            s,
            "  {:<10} {:>7} {:>9} {:>8} {:>8} {:>9}  {:<34} {:<34} p99/budget",
            "",
            "offered",
            "completed",
            "degraded",
            "dropped",
            "goodput/s",
            "end to end ms p50/p90/p99/p99.9/max",
            "queue ms p50/p90/p99/p99.9/max",
        );
        for (name, r) in [("critical", &self.critical), ("sheddable", &self.sheddable), ("all", &self.all)] {
            let ms = |p: Percentiles| {
                [p.p50, p.p90, p.p99, p.p999, p.max].map(|us| format!("{:.1}", us as f64 / 1e3)).join("/")
            };
            let _ = writeln!(
                s,
                "  {:<10} {:>7} {:>9} {:>8} {:>8} {:>9.1}  {:<36} {:<30} {:.2}",
                name,
                r.counts.offered,
                r.counts.completed,
                r.counts.degraded,
                r.counts.dropped,
                r.goodput,
                ms(r.end_to_end_us),
                ms(r.queue_us),
                r.p99_budget_use
            );
        }
        let _ = writeln!(
            s,
            "  {:<26} {:>7} {:>9} {:>8} {:>10} {:>18}",
            "by kernel", "offered", "in budget", "dropped", "p99/budget", "critical in budget"
        );
        for k in &self.by_kernel {
            let _ = writeln!(
                s,
                "    {:<24} {:>7} {:>8.1}% {:>8} {:>10.2} {:>17.1}%",
                k.kernel,
                k.offered,
                100.0 * k.within_budget_share,
                k.dropped,
                k.p99_budget_use,
                100.0 * k.critical_within_budget_share
            );
        }
        let l = self.issue_lateness_us;
        let _ = writeln!(s, "  issue lateness: p50 {} us, p99 {} us, max {} us", l.p50, l.p99, l.max);
        let o = self.outside_router_us;
        let _ = writeln!(
            s,
            "  outside the router (issuing, and over HTTP the way there and back): p50 {} us, p99 {} us, max {} us",
            o.p50, o.p99, o.max
        );
        if self.profile != "steady" {
            let _ =
                writeln!(s, "  by arrival, {} ms windows (start s: offered/s, goodput/s, p99 ms):", WINDOW_US / 1000);
            for row in self.windows.chunks(5) {
                let cells: Vec<String> = row
                    .iter()
                    .map(|w| {
                        format!("{:>5.1}: {:>6.0} {:>6.0} {:>6.1}", w.start_s, w.offered_rate, w.goodput, w.p99_ms)
                    })
                    .collect();
                let _ = writeln!(s, "   {}", cells.join("  |"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Criticality;
    use crate::load::record::Sample;
    use crate::load::target::{Failure, Observed};

    fn sample(crit: Criticality, status: Status, latency_ms: u64, budget_ms: u64) -> Sample {
        Sample {
            kernel: "k".into(),
            criticality: crit,
            budget_us: budget_ms * 1000,
            arrival_us: 0,
            latency_us: latency_ms * 1000,
            lateness_us: 5,
            observed: Observed {
                status,
                strategy: Some(match status {
                    Status::Dropped => Strategy::Drop,
                    Status::Degraded => Strategy::Degrade,
                    _ => Strategy::CpuLane,
                }),
                reason: Some(match status {
                    Status::Dropped => Reason::QueueFull,
                    Status::Degraded => Reason::DegradedToFit,
                    _ => Reason::FitsBudget,
                }),
                units_requested: 1000,
                units_granted: if status == Status::Degraded { 250 } else { 1000 },
                queue_us: Some(latency_ms * 500),
                failure: None,
                version: None,
                error: (status == Status::Failed).then(|| "sandbox".into()),
                predicted_cost_us: Some(latency_ms as f64 * 400.0),
                predicted_wait_us: Some(latency_ms as f64 * 500.0),
                service_us: (status != Status::Dropped).then_some(latency_ms * 400),
                batch_size: None,
                router_total_us: (status != Status::Dropped).then_some(latency_ms * 900),
            },
        }
    }

    #[test]
    fn counters_balance_and_goodput_counts_answers_within_budget() {
        let mut rec = Recorder::default();
        let (c, s) = (Criticality::Critical, Criticality::Sheddable);
        // Critical: 6 completed within budget, 2 completed late, 1 degraded in time, 1 failed.
        for i in 0..6 {
            let mut done = sample(c, Status::Completed, 10, 20);
            done.observed.version = (i == 0).then(|| "2.0.0".into());
            rec.record(&done);
        }
        for _ in 0..2 {
            rec.record(&sample(c, Status::Completed, 30, 20));
        }
        rec.record(&sample(c, Status::Degraded, 15, 20));
        rec.record(&sample(c, Status::Failed, 1, 20));
        // Sheddable: 3 dropped, 1 rejected, 1 degraded late, 1 not issued.
        for _ in 0..3 {
            rec.record(&sample(s, Status::Dropped, 1, 20));
        }
        rec.record(&sample(s, Status::Rejected, 1, 20));
        let mut late_degrade = sample(s, Status::Degraded, 40, 20);
        late_degrade.observed.units_granted = 50;
        rec.record(&late_degrade);
        let mut not_issued = sample(s, Status::Failed, 0, 20);
        not_issued.observed.failure = Some(Failure::NotIssued);
        not_issued.observed.strategy = None;
        not_issued.observed.error = None;
        rec.record(&not_issued);

        let r = RunReport::new("test", "constant", 8.0, 2.0, &rec);
        assert!(r.balanced());
        assert_eq!(
            r.all.counts,
            Counts {
                offered: 16,
                completed: 8,
                degraded: 2,
                dropped: 3,
                rejected: 1,
                failed: 2,
                failed_not_issued: 1,
                failed_transport: 0,
                dropped_draining: 0,
            }
        );
        assert_eq!((r.critical.within_budget, r.sheddable.within_budget, r.all.within_budget), (7, 0, 7));
        assert_eq!(r.goodput, 3.5, "7 answers within budget over 2 s");
        assert_eq!(r.all.goodput_full, 3.0, "one of them degraded");
        assert_eq!(r.errors.iter().collect::<Vec<_>>(), [(&"k: sandbox".to_string(), &1)]);
        assert_eq!(r.versions.iter().collect::<Vec<_>>(), [(&"k@2.0.0".to_string(), &1)]);
        assert_eq!(r.critical.goodput, 3.5);
        assert_eq!((r.offered_rate, r.achieved_rate), (8.0, 7.5));
        assert!((r.all.within_budget_share - 7.0 / 16.0).abs() < 1e-12);
        assert!(!r.within_capacity());
        // Degrade depth: granted 250 and 50 of 1000.
        assert_eq!(r.all.degrade.jobs, 2);
        assert!((r.all.degrade.mean_share - 0.15).abs() < 1e-12 && (r.all.degrade.min_share - 0.05).abs() < 1e-12);
        // Percentiles cover answered jobs only: 10 of them, the slowest 40 ms.
        assert_eq!(r.all.end_to_end_us.count, 10);
        assert!(r.all.end_to_end_us.max >= 40_000 && r.all.end_to_end_us.max < 40_100);
        // A tenth of every answered job's latency was spent outside the router: 1-4 ms.
        assert_eq!(r.outside_router_us.count, 10);
        assert!(
            r.outside_router_us.p50 >= 1_000 && r.outside_router_us.max >= 4_000 && r.outside_router_us.max < 4_010
        );
        assert!(r.sheddable.p99_budget_use >= 2.0, "40 ms of a 20 ms budget");
        assert!(r.critical.p99_budget_use >= 1.5, "the late completions");
        let by = |strategy: &str, status: &str| {
            r.all.by_strategy.iter().find(|b| b.strategy == strategy && b.status == status).map_or(0, |b| b.count)
        };
        assert_eq!((by("cpu_lane", "completed"), by("drop", "dropped"), by("none", "failed")), (8, 3, 1));
        assert_eq!(r.sheddable.by_reason, vec![("degraded_to_fit", 1), ("queue_full", 3)]);
        assert_eq!(r.critical.by_reason, vec![("degraded_to_fit", 1)]);
        let text = r.render_text();
        assert!(text.contains("16 offered = 8 completed + 2 degraded + 3 dropped + 1 rejected + 2 failed (balanced)"));
        assert!(text.contains("1 not issued by the generator"), "{text}");
    }

    #[test]
    fn capacity_needs_99_percent_of_offered_jobs_within_budget() {
        let mut rec = Recorder::default();
        for _ in 0..990 {
            rec.record(&sample(Criticality::Critical, Status::Completed, 5, 10));
        }
        for _ in 0..10 {
            rec.record(&sample(Criticality::Critical, Status::Dropped, 0, 10));
        }
        assert!(RunReport::new("t", "poisson", 1.0, 1.0, &rec).within_capacity());
        rec.record(&sample(Criticality::Sheddable, Status::Completed, 50, 10));
        assert!(!RunReport::new("t", "poisson", 1.0, 1.0, &rec).within_capacity());
    }

    #[test]
    fn an_empty_run_reports_zeros_not_nan() {
        let r = RunReport::new("t", "poisson", 10.0, 0.0, &Recorder::default());
        assert!(r.balanced());
        assert_eq!((r.goodput, r.offered_rate, r.all.p99_budget_use), (0.0, 0.0, 0.0));
        assert!(!serde_json::to_string(&r.to_json()).unwrap().contains("NaN"));
    }

    #[test]
    fn the_start_error_is_taken_over_queued_jobs_as_a_share_of_budget() {
        let d = |strategy, queue_us: Option<u64>, predicted_wait_us: f64| Decided {
            kernel: "k".into(),
            critical: true,
            arrival_us: 0,
            budget_us: 10_000,
            ran: queue_us.is_some(),
            in_budget: true,
            strategy,
            predicted_cost_us: 1.0,
            predicted_wait_us,
            queue_us,
            service_us: queue_us.map(|_| 1),
            lane_share: 1.0,
        };
        let decided = [
            d(Strategy::CpuLane, Some(1_000), 0.0),
            d(Strategy::CpuLane, Some(0), 500.0),
            d(Strategy::Batch, Some(2_000), 2_000.0),
            // Not queued in the lane, or never ran: not counted.
            d(Strategy::Inline, Some(9_000), 0.0),
            d(Strategy::Drop, None, 7_000.0),
        ];
        let e = StartError::of(&decided);
        assert_eq!((e.jobs, e.p50, e.p99), (3, 0.05, 0.1), "{e:?}");
        assert_eq!(StartError::of(&[]), StartError::default());
    }
}
