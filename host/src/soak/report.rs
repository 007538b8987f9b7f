//! What a soak found: the two phases side by side, the faults and what they got back, the
//! re-registrations, memory and queue over time, and the checks, each with the numbers behind
//! its verdict.

use super::chaos::{FaultTally, StallTally};
use super::scrape::Scrape;
use super::swap::{SWAPPED, SwapTally};
use crate::load::report::RunReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Phase {
    Honest,
    Chaos,
    After,
}

/// One reading of the replicas by the sampler.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub at_s: f64,
    pub phase: Phase,
    /// Each replica's resident memory and CPU-lane queue depth (`None`: could not be read).
    pub rss_bytes: Vec<Option<u64>>,
    pub queue_depth: Vec<Option<u64>>,
    /// CPU seconds used so far by the replicas together, and by this process (the load
    /// generator).
    pub server_cpu_s: Option<f64>,
    pub client_cpu_s: Option<f64>,
}

/// The load a soak offered and what each part of it got back.
#[derive(Clone, Debug, Serialize)]
pub struct Traffic {
    pub capacity: Option<f64>,
    pub rate: f64,
    pub fault_rate: f64,
    pub duration_s: f64,
    pub elapsed_s: f64,
    pub honest: RunReport,
    pub chaos_honest: RunReport,
    /// The honest traffic alone again, after the attack.
    pub honest_after: RunReport,
    pub faults: Faults,
    pub stalls: StallTally,
    pub swaps: SwapTally,
}

/// Faults by kind.
type Faults = BTreeMap<String, FaultTally>;

impl Traffic {
    /// The three phases' honest runs, with the faults sent beside each.
    fn phases(&self) -> [(&'static str, &RunReport, Option<&Faults>); 3] {
        [
            ("phase 1, honest traffic alone", &self.honest, None),
            ("phase 2, the same under attack", &self.chaos_honest, Some(&self.faults)),
            ("phase 3, alone again", &self.honest_after, None),
        ]
    }
}

/// Everything a soak run collected; where there are several replicas, one entry per replica in
/// replica order.
pub struct Inputs {
    pub traffic: Traffic,
    /// Every replica's, before phase 1 and after each phase.
    pub scrapes: [Vec<Scrape>; 4],
    /// Every replica's: when ready, after phase 1 (warm), after phase 2, after phase 3.
    pub rss: [Vec<Option<u64>>; 4],
    pub samples: Vec<Sample>,
    /// Every replica (and the balancer) still running at the end.
    pub running_at_end: bool,
    pub log_panics: Vec<String>,
    /// Each replica's exit code after SIGTERM.
    pub exits: Vec<Result<i32, String>>,
    /// A fleet's: refusals its balancer sent on to another replica.
    pub retried_refusals: Option<Result<u64, String>>,
    pub logs: Vec<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// A throughput comparison, which a noisy machine can fail without a bug; the others are
    /// correctness.
    pub performance: bool,
    pub detail: String,
}

/// Outcomes the server counted in a phase, by status (unknown kernels count as rejected).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusCounts {
    pub completed: u64,
    pub degraded: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl StatusCounts {
    fn total(&self) -> u64 {
        self.completed + self.degraded + self.dropped + self.rejected + self.failed
    }

    /// The phases' counts together.
    fn sum(phases: &[StatusCounts]) -> StatusCounts {
        phases.iter().fold(StatusCounts::default(), |a, p| StatusCounts {
            completed: a.completed + p.completed,
            degraded: a.degraded + p.degraded,
            dropped: a.dropped + p.dropped,
            rejected: a.rejected + p.rejected,
            failed: a.failed + p.failed,
        })
    }

    /// The server's count between two scrapes.
    fn server(a: &Scrape, b: &Scrape) -> (u64, StatusCounts) {
        let d = |name: &str| (b.sum(name) - a.sum(name)).round() as u64;
        let s = |status: &str| {
            (b.sum_where("helix_jobs_total", "status", status) - a.sum_where("helix_jobs_total", "status", status))
                .round() as u64
        };
        let counts = StatusCounts {
            completed: s("completed"),
            degraded: s("degraded"),
            dropped: s("dropped"),
            rejected: s("rejected") + d("helix_jobs_unknown_kernel_total"),
            failed: s("failed"),
        };
        (d("helix_jobs_submitted_total"), counts)
    }

    /// What the client was answered: the honest run's outcomes (answers only) plus the faults
    /// that reached the router, by their HTTP status.
    fn client(run: &RunReport, faults: Option<&Faults>) -> StatusCounts {
        let c = &run.all.counts;
        let mut s = StatusCounts {
            completed: c.completed,
            degraded: c.degraded,
            dropped: c.dropped - c.dropped_draining,
            rejected: c.rejected,
            failed: c.failed - c.failed_not_issued - c.failed_transport,
        };
        for t in faults.into_iter().flat_map(|f| f.values()).filter(|t| t.reaches_router) {
            for (&code, &n) in &t.by_status {
                match code {
                    200 => s.completed += n,
                    429 | 503 => s.dropped += n,
                    400 | 404 => s.rejected += n,
                    _ => s.failed += n,
                }
            }
        }
        s
    }
}

/// A soak's findings and its checks' verdicts; `passed` says whether it passed.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// The load offered, and what the honest runs and the faults got back.
    #[serde(flatten)]
    pub traffic: Traffic,
    /// Quarantines of each hostile kernel, as the server counted them by the end.
    pub quarantines: BTreeMap<String, u64>,
    /// Per phase: outcomes as the server counted them, and as the client was answered.
    pub server_counts: Vec<StatusCounts>,
    /// Per phase: outcomes as the client was answered (honest jobs, and faults that reached the
    /// router); equal to `server_counts` when every accepted job got one outcome (in a fleet,
    /// once the refusals the balancer retried are added to the drops).
    pub client_counts: Vec<StatusCounts>,
    /// A fleet's: jobs one replica refused and the balancer sent to another.
    pub retried_refusals: Option<u64>,
    /// Jobs each replica was sent over the whole soak (refusals the balancer retried included).
    pub jobs_by_replica: Vec<u64>,
    /// Each replica's resident memory at points of the soak, MiB.
    pub rss_mib: Vec<RssSummary>,
    /// Each replica's CPU-lane queue: its cap and the deepest it got.
    pub queue: Vec<QueueSummary>,
    /// Cores in use in each phase, in phase order.
    pub cpu: Vec<PhaseCpu>,
    /// The sampler's readings, about every half second.
    pub samples: Vec<Sample>,
    /// Each check, with its verdict and the numbers behind it.
    pub checks: Vec<Check>,
    /// Each replica's log file.
    pub logs: Vec<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RssSummary {
    pub ready: f64,
    /// After the honest phase: the warm-up.
    pub warm: f64,
    /// The attack's highest reading (a memory bomb running touches up to its cap).
    pub chaos_peak: f64,
    /// The lowest reading in the attack's second quarter and in its last: the floor the spikes
    /// return to, which a leak would raise.
    pub chaos_floor_early: f64,
    pub chaos_floor_late: f64,
    pub after_chaos: f64,
    pub end: f64,
}

/// Cores in use during a phase, from the sampler's CPU-time readings.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseCpu {
    pub phase: Phase,
    pub server_cores: f64,
    /// The load generator (this process): it shares the machine with the server.
    pub generator_cores: f64,
}

impl PhaseCpu {
    fn of(samples: &[Sample], phase: Phase) -> PhaseCpu {
        let in_phase: Vec<&Sample> = samples.iter().filter(|s| s.phase == phase).collect();
        let rate = |cpu: fn(&Sample) -> Option<f64>| match (in_phase.first(), in_phase.last()) {
            (Some(a), Some(b)) if b.at_s > a.at_s => match (cpu(a), cpu(b)) {
                (Some(x), Some(y)) => (y - x) / (b.at_s - a.at_s),
                _ => f64::NAN,
            },
            _ => f64::NAN,
        };
        PhaseCpu { phase, server_cores: rate(|s| s.server_cpu_s), generator_cores: rate(|s| s.client_cpu_s) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueSummary {
    pub capacity: u64,
    pub deepest_sampled: u64,
    /// The server's own record of its deepest queue.
    pub peak: u64,
}

const MIB: f64 = 1024.0 * 1024.0;
/// Memory may grow this much after warm-up (memory bombs fill guest memories up to their cap
/// while they run, pooled instances come and go), but not keep growing.
const RSS_SLACK_MIB: f64 = 128.0;
/// Between the attack's second and last quarters, a leak would show as a rising floor.
const RSS_TREND_SLACK_MIB: f64 = 32.0;
/// Honest goodput under attack, at least this share of the hostile-free phase's.
const GOODPUT_FLOOR: f64 = 0.9;

impl SoakReport {
    /// Summarises what a soak collected and runs the checks on it.
    pub fn new(i: Inputs) -> SoakReport {
        let t = &i.traffic;
        let replicas = i.logs.len();
        let mib = |b: Option<u64>| b.map_or(f64::NAN, |b| b as f64 / MIB);
        let chaos: Vec<&Sample> = i.samples.iter().filter(|s| s.phase == Phase::Chaos).collect();
        let quarter = |q: usize| &chaos[q * chaos.len() / 4..(q + 1) * chaos.len() / 4];
        let reading = |s: &Sample, r: usize| s.rss_bytes.get(r).copied().flatten();
        let floor = |xs: &[&Sample], r: usize| xs.iter().filter_map(|s| reading(s, r)).min();
        let at = |point: usize, r: usize| mib(i.rss[point].get(r).copied().flatten());
        let rss: Vec<RssSummary> = (0..replicas)
            .map(|r| RssSummary {
                ready: at(0, r),
                warm: at(1, r),
                chaos_peak: mib(chaos.iter().filter_map(|s| reading(s, r)).max()),
                chaos_floor_early: mib(floor(quarter(1), r)),
                chaos_floor_late: mib(floor(quarter(3), r)),
                after_chaos: at(2, r),
                end: at(3, r),
            })
            .collect();
        let queue: Vec<QueueSummary> = i.scrapes[3]
            .iter()
            .enumerate()
            .map(|(r, last)| QueueSummary {
                capacity: last.sum("helix_cpu_queue_capacity") as u64,
                deepest_sampled: i
                    .samples
                    .iter()
                    .filter_map(|s| s.queue_depth.get(r).copied().flatten())
                    .max()
                    .unwrap_or(0),
                peak: last.sum("helix_cpu_queue_depth_peak") as u64,
            })
            .collect();
        let jobs_by_replica: Vec<u64> = (0..replicas)
            .map(|r| {
                let n = |point: usize| i.scrapes[point].get(r).map_or(0.0, |s| s.sum("helix_jobs_submitted_total"));
                (n(3) - n(0)).round() as u64
            })
            .collect();
        // The fleet's counters: every sum below is over the replicas.
        let scrapes = i.scrapes.each_ref().map(|s| Scrape::merged(s));
        let last = &scrapes[3];
        let quarantines = super::chaos::HOSTILE
            .iter()
            .map(|h| (h.name.to_string(), last.sum_where("helix_kernel_quarantines_total", "kernel", h.name) as u64))
            .collect();
        let (submitted, server_counts): (Vec<u64>, Vec<StatusCounts>) =
            scrapes.windows(2).map(|w| StatusCounts::server(&w[0], &w[1])).unzip();
        let client_counts: Vec<StatusCounts> =
            t.phases().iter().map(|(_, run, faults)| StatusCounts::client(run, *faults)).collect();

        let mut checks = Vec::new();
        let mut check =
            |name, passed, performance, detail: String| checks.push(Check { name, passed, performance, detail });
        let lost_honest = |r: &RunReport| {
            let c = &r.all.counts;
            c.failed_not_issued + c.failed_transport + c.dropped_draining
        };
        let lost: u64 = t.phases().iter().map(|(_, run, _)| lost_honest(run)).sum();
        let lost_faults: u64 = t.faults.values().map(|t| t.lost).sum();
        check(
            "no job lost",
            lost + lost_faults == 0,
            false,
            format!("{lost} honest and {lost_faults} hostile requests without an answer"),
        );
        let balanced = submitted.iter().zip(&server_counts).all(|(&n, c)| n == c.total());
        let sums: Vec<String> =
            submitted.iter().zip(&server_counts).map(|(n, c)| format!("{n} = {}", c.total())).collect();
        check(
            "counters balance",
            balanced && t.phases().iter().all(|(_, run, _)| run.balanced()),
            false,
            format!("server, jobs submitted = outcomes, by phase: {}; client reports balance", sums.join(", ")),
        );
        let (one_outcome, outcome_detail) = match &i.retried_refusals {
            None => (
                server_counts == client_counts,
                format!("server counted {server_counts:?}; client was answered {client_counts:?}"),
            ),
            // A job one replica refused and the balancer sent on has two outcomes on the
            // servers' side (a drop, then its answer) and one on the client's; the access log
            // holds the phases together, so the whole soak is balanced at once.
            Some(Ok(retried)) => {
                let (server, mut client) = (StatusCounts::sum(&server_counts), StatusCounts::sum(&client_counts));
                client.dropped += retried;
                (
                    server == client,
                    format!(
                        "replicas counted {server:?}; client was answered, plus {retried} refusals the balancer sent on, {client:?}"
                    ),
                )
            }
            Some(Err(e)) => (false, e.clone()),
        };
        check("one outcome per accepted job", one_outcome, false, outcome_detail);
        let queues: Vec<String> = queue
            .iter()
            .map(|q| format!("deepest {} (sampled {}) of a cap of {}", q.peak, q.deepest_sampled, q.capacity))
            .collect();
        check(
            "queue within its cap",
            queue.len() == replicas
                && queue.iter().all(|q| q.capacity > 0 && q.peak <= q.capacity && q.deepest_sampled <= q.capacity),
            false,
            queues.join("; "),
        );
        let panics = last.sum("helix_panics_total") as u64;
        check(
            "no panic, clean exit",
            panics == 0
                && i.log_panics.is_empty()
                && i.running_at_end
                && i.exits.len() == replicas
                && i.exits.iter().all(|e| *e == Ok(0)),
            false,
            format!(
                "{panics} panics counted, {} in the logs, running at the end: {}, exits after SIGTERM: {:?}",
                i.log_panics.len(),
                i.running_at_end,
                i.exits
            ),
        );
        let memory_ok = rss.iter().all(|r| {
            r.end <= r.warm + RSS_SLACK_MIB && r.chaos_floor_late <= r.chaos_floor_early + RSS_TREND_SLACK_MIB
        });
        let memory: Vec<String> = rss
            .iter()
            .map(|r| {
                format!(
                    "warm {:.0} MiB, end {:.0} MiB; the attack's floor {:.0} then {:.0} MiB",
                    r.warm, r.end, r.chaos_floor_early, r.chaos_floor_late
                )
            })
            .collect();
        check(
            "memory bounded after warm-up",
            memory_ok,
            false,
            format!(
                "{} (allowed +{RSS_SLACK_MIB:.0} MiB after warm-up, +{RSS_TREND_SLACK_MIB:.0} MiB between the floors)",
                memory.join("; ")
            ),
        );
        let unexpected: u64 = t.faults.values().map(|t| t.unexpected).sum();
        let sent: u64 = t.faults.values().map(|t| t.sent).sum();
        check(
            "every fault refused or contained",
            unexpected == 0 && sent > 0 && t.stalls.cut_off == t.stalls.opened,
            false,
            format!(
                "{sent} hostile jobs and bad requests, {unexpected} answered otherwise; {} of {} stalled connections cut off",
                t.stalls.cut_off, t.stalls.opened
            ),
        );
        let mut allowed: Vec<String> = t.swaps.versions.clone();
        allowed.extend(
            t.honest.versions.keys().filter_map(|k| k.strip_prefix(&format!("{SWAPPED}@")).map(str::to_string)),
        );
        let misrouted: Vec<&String> = [&t.chaos_honest, &t.honest_after]
            .iter()
            .flat_map(|r| r.versions.keys())
            .filter(|k| match k.strip_prefix(&format!("{SWAPPED}@")) {
                Some(v) => !allowed.iter().any(|a| a == v),
                None => !t.honest.versions.contains_key(*k),
            })
            .collect();
        let swapped_served = t.chaos_honest.versions.keys().filter(|k| k.starts_with(&format!("{SWAPPED}@"))).count();
        check(
            "re-registrations lose and misroute nothing",
            t.swaps.unexpected.is_empty() && t.swaps.honest_swaps > 0 && misrouted.is_empty(),
            false,
            format!(
                "{} versions of {SWAPPED} and {} of a hostile kernel registered, {} bad uploads refused; {} versions of {SWAPPED} answered jobs; unexpected: {:?}; unknown versions: {:?}",
                t.swaps.honest_swaps,
                t.swaps.hostile_swaps,
                t.swaps.refused_as_expected,
                swapped_served,
                t.swaps.unexpected,
                misrouted
            ),
        );
        let alone = (t.honest.goodput + t.honest_after.goodput) / 2.0;
        let ratio = t.chaos_honest.goodput / alone.max(f64::MIN_POSITIVE);
        // On a shared machine the server's share of the cores moves between phases; goodput
        // per core the server actually got shows the attack's own cost apart from that.
        let cpu: Vec<PhaseCpu> =
            [Phase::Honest, Phase::Chaos, Phase::After].into_iter().map(|p| PhaseCpu::of(&i.samples, p)).collect();
        let per_core: Vec<f64> = t.phases().iter().zip(&cpu).map(|((_, r, _), c)| r.goodput / c.server_cores).collect();
        let per_core_ratio = per_core[1] / ((per_core[0] + per_core[2]) / 2.0);
        check(
            "honest goodput holds under attack",
            ratio >= GOODPUT_FLOOR,
            true,
            format!(
                "{:.0}/s under attack vs {alone:.0}/s alone (mean of {:.0} before and {:.0} after): {ratio:.3} (at least {GOODPUT_FLOOR}); \
                 per server core {:.0} vs {:.0} and {:.0}: {per_core_ratio:.3}",
                t.chaos_honest.goodput, t.honest.goodput, t.honest_after.goodput, per_core[1], per_core[0], per_core[2]
            ),
        );
        SoakReport {
            traffic: i.traffic,
            quarantines,
            server_counts,
            client_counts,
            retried_refusals: i.retried_refusals.and_then(Result::ok),
            jobs_by_replica,
            rss_mib: rss,
            queue,
            cpu,
            samples: i.samples,
            checks,
            logs: i.logs,
        }
    }

    /// Every correctness check passed (and the performance ones too, when asked).
    pub fn passed(&self, with_performance: bool) -> bool {
        self.checks.iter().all(|c| c.passed || (c.performance && !with_performance))
    }

    /// The report for a terminal.
    pub fn render_text(&self) -> String {
        let t = &self.traffic;
        let mut s = String::new();
        let load = match t.capacity {
            Some(c) => format!(" = {:.1} × C, C = {c:.0} jobs/s", t.rate / c),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "soak: honest traffic {:.0} jobs/s{load}; {:.0} s per phase, {:.0} s in all",
            t.rate, t.duration_s, t.elapsed_s
        );
        for (name, r, _) in t.phases() {
            let c = &r.all.counts;
            let _ = writeln!(
                s,
                "{name}: goodput {:.0}/s ({:.1}% of offered within budget), critical p99/budget {:.2}; \
                 {} offered = {} completed + {} degraded + {} dropped + {} rejected + {} failed",
                r.goodput,
                100.0 * r.all.within_budget_share,
                r.critical.p99_budget_use,
                c.offered,
                c.completed,
                c.degraded,
                c.dropped,
                c.rejected,
                c.failed
            );
        }
        let sent: u64 = t.faults.values().map(|t| t.sent).sum();
        let _ = writeln!(s, "faults injected: {sent} ({:.0}/s)", t.fault_rate);
        for (kind, t) in &t.faults {
            let answers: Vec<String> = t.by_status.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            let _ = writeln!(
                s,
                "  {kind:<28} {:>6} sent: {}{}{}",
                t.sent,
                answers.join(", "),
                if t.unexpected > 0 {
                    format!("; {} UNEXPECTED {:?}", t.unexpected, t.examples)
                } else {
                    String::new()
                },
                if t.lost > 0 { format!("; {} LOST", t.lost) } else { String::new() }
            );
        }
        let _ = writeln!(
            s,
            "  {:<28} {:>6} opened: {} cut off by the server's header deadline (longest held {:.1} s)",
            "stalled connections",
            t.stalls.opened,
            t.stalls.cut_off,
            t.stalls.longest_held_ms as f64 / 1e3
        );
        let q: Vec<String> = self.quarantines.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "quarantines: {}", q.join(", "));
        let _ = writeln!(
            s,
            "re-registrations: {} versions of {SWAPPED}, {} of hostile-loop, {} bad uploads refused",
            t.swaps.honest_swaps, t.swaps.hostile_swaps, t.swaps.refused_as_expected
        );
        if let Some(n) = self.retried_refusals {
            let _ = writeln!(
                s,
                "jobs by replica: {:?}; refusals the balancer sent on to another replica: {n}",
                self.jobs_by_replica
            );
        }
        for (k, r) in self.rss_mib.iter().enumerate() {
            let replica = if self.rss_mib.len() > 1 { format!(" of replica {k}") } else { String::new() };
            let _ = writeln!(
                s,
                "memory (RSS){replica}: {:.0} MiB ready, {:.0} MiB after phase 1; under attack peak {:.0} MiB, floor {:.0} then {:.0} MiB; {:.0} MiB after it, {:.0} MiB at the end",
                r.ready, r.warm, r.chaos_peak, r.chaos_floor_early, r.chaos_floor_late, r.after_chaos, r.end
            );
        }
        let cores =
            |f: fn(&PhaseCpu) -> f64| self.cpu.iter().map(|c| format!("{:.2}", f(c))).collect::<Vec<_>>().join(" / ");
        let _ = writeln!(
            s,
            "cores in use by phase: server {}, load generator {} (of {})",
            cores(|c| c.server_cores),
            cores(|c| c.generator_cores),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        for q in &self.queue {
            let _ =
                writeln!(s, "CPU-lane queue: deepest {} (sampled {}), cap {}", q.peak, q.deepest_sampled, q.capacity);
        }
        let _ = writeln!(s, "checks:");
        for c in &self.checks {
            let verdict = match (c.passed, c.performance) {
                (true, _) => "ok  ",
                (false, false) => "FAIL",
                (false, true) => "SLOW",
            };
            let _ = writeln!(s, "  [{verdict}] {}: {}", c.name, c.detail);
        }
        for log in &self.logs {
            let _ = writeln!(s, "server log: {}", log.display());
        }
        s
    }
}
