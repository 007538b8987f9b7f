//! What the generator counts while a run goes: every job's outcome and latency, by
//! criticality class and by kernel, into counters and HdrHistograms (`report` makes the numbers).

use super::target::{Failure, Observed};
use crate::job::Criticality;
use crate::outcome::Status;
use crate::policy::{Reason, Strategy};
use hdrhistogram::Histogram;

/// What one job came to, as the generator saw it.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The kernel, with `(wasm)` when the job asked for that build.
    pub kernel: String,
    pub criticality: Criticality,
    pub budget_us: u64,
    /// Its scheduled arrival, microseconds from the start of the run.
    pub arrival_us: u64,
    /// From the job's scheduled arrival to its answer: lateness in issuing it counts.
    pub latency_us: u64,
    /// How late the generator issued it.
    pub lateness_us: u64,
    pub observed: Observed,
}

/// Counts and histograms for one criticality class.
#[derive(Clone, Debug)]
pub struct ClassRecorder {
    pub offered: u64,
    pub status: [u64; Status::ALL.len()],
    /// Outcomes by strategy (the last row: no decision) and status.
    pub by_strategy: [[u64; Status::ALL.len()]; Strategy::ALL.len() + 1],
    /// Dropped and degraded jobs by the reason the router gave.
    pub by_reason: [u64; Reason::ALL.len()],
    /// Answered (completed or degraded) within budget, measured from the scheduled arrival.
    pub within_budget: u64,
    /// Of those, completed with every unit asked for.
    pub within_budget_full: u64,
    pub not_issued: u64,
    pub transport: u64,
    pub draining: u64,
    pub(super) degraded_share_sum: f64,
    pub(super) degraded_share_min: f64,
    pub(super) degraded_jobs: u64,
    /// Answered jobs: end to end, microseconds.
    pub(super) end_to_end: Histogram<u64>,
    /// Answered jobs: the router's queue wait, microseconds.
    pub(super) queue: Histogram<u64>,
    /// Answered jobs: latency as thousandths of the job's budget.
    pub(super) budget_use: Histogram<u64>,
}

/// Latency as thousandths of the budget.
pub(super) fn per_mille(s: &Sample) -> u64 {
    (s.latency_us as f64 * 1e3 / s.budget_us.max(1) as f64).ceil() as u64
}

pub(super) fn histogram() -> Histogram<u64> {
    // One hour in microseconds; three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

impl Default for ClassRecorder {
    fn default() -> Self {
        ClassRecorder {
            offered: 0,
            status: [0; Status::ALL.len()],
            by_strategy: [[0; Status::ALL.len()]; Strategy::ALL.len() + 1],
            by_reason: [0; Reason::ALL.len()],
            within_budget: 0,
            within_budget_full: 0,
            not_issued: 0,
            transport: 0,
            draining: 0,
            degraded_share_sum: 0.0,
            degraded_share_min: f64::INFINITY,
            degraded_jobs: 0,
            end_to_end: histogram(),
            queue: histogram(),
            budget_use: histogram(),
        }
    }
}

impl ClassRecorder {
    fn record(&mut self, s: &Sample) {
        let o = &s.observed;
        self.offered += 1;
        self.status[o.status.index()] += 1;
        self.by_strategy[o.strategy.map_or(Strategy::ALL.len(), Strategy::index)][o.status.index()] += 1;
        if let Some(reason) = o.reason.filter(|_| matches!(o.status, Status::Dropped | Status::Degraded)) {
            self.by_reason[reason.index()] += 1;
        }
        match o.failure {
            Some(Failure::NotIssued) => self.not_issued += 1,
            Some(Failure::Transport(_)) => self.transport += 1,
            Some(Failure::Draining) => self.draining += 1,
            None => {}
        }
        if !matches!(o.status, Status::Completed | Status::Degraded) {
            return;
        }
        if s.latency_us <= s.budget_us {
            self.within_budget += 1;
            self.within_budget_full += u64::from(o.status == Status::Completed);
        }
        if o.status == Status::Degraded && o.units_requested > 0 {
            let share = o.units_granted as f64 / o.units_requested as f64;
            self.degraded_share_sum += share;
            self.degraded_share_min = self.degraded_share_min.min(share);
            self.degraded_jobs += 1;
        }
        self.end_to_end.saturating_record(s.latency_us.max(1));
        if let Some(q) = o.queue_us {
            self.queue.saturating_record(q.max(1));
        }
        self.budget_use.saturating_record(per_mille(s).max(1));
    }

    pub fn merge(&mut self, other: &ClassRecorder) {
        self.offered += other.offered;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (ra, rb) in self.by_strategy.iter_mut().zip(other.by_strategy) {
            for (a, b) in ra.iter_mut().zip(rb) {
                *a += b;
            }
        }
        for (a, b) in self.by_reason.iter_mut().zip(other.by_reason) {
            *a += b;
        }
        self.within_budget += other.within_budget;
        self.within_budget_full += other.within_budget_full;
        self.not_issued += other.not_issued;
        self.transport += other.transport;
        self.draining += other.draining;
        self.degraded_share_sum += other.degraded_share_sum;
        self.degraded_share_min = self.degraded_share_min.min(other.degraded_share_min);
        self.degraded_jobs += other.degraded_jobs;
        self.end_to_end.add(&other.end_to_end).expect("same bounds");
        self.queue.add(&other.queue).expect("same bounds");
        self.budget_use.add(&other.budget_use).expect("same bounds");
    }
}

/// Per kernel: which work meets its budgets and which does not.
#[derive(Clone, Debug)]
pub struct KernelTally {
    pub offered: u64,
    pub answered: u64,
    pub dropped: u64,
    pub within_budget: u64,
    /// Critical jobs offered, and answered within budget.
    pub critical_offered: u64,
    pub critical_within_budget: u64,
    pub(super) budget_use: Histogram<u64>,
}

/// One job the router decided (ran or dropped), kept whole for the replay check and the error of
/// the predicted start.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Decided {
    pub(super) kernel: String,
    pub(super) critical: bool,
    pub(super) arrival_us: u64,
    pub(super) budget_us: u64,
    /// Completed, degraded or failed; otherwise dropped.
    pub(super) ran: bool,
    /// Answered (completed or degraded) within budget, from the scheduled arrival.
    pub(super) in_budget: bool,
    pub(super) strategy: Strategy,
    pub(super) predicted_cost_us: f64,
    pub(super) predicted_wait_us: f64,
    /// The router's queue wait, when it ran the job.
    pub(super) queue_us: Option<u64>,
    /// The router's service time, when it ran the job: its share of a batch's, in a batch.
    pub(super) service_us: Option<u64>,
    /// The share of a CPU-lane run the job was: 1 alone, one member's share in a batch, 0 on
    /// the async threads (inline or spawned); 1 for a drop (a heavy job would run in the lane).
    pub(super) lane_share: f64,
}

impl Decided {
    /// The job, if the router decided it: an outcome with a decision, run or dropped by the
    /// policy (not a rejection, not a generator or transport failure, not a draining server).
    fn of(s: &Sample) -> Option<Decided> {
        let o = &s.observed;
        let strategy = o.strategy.filter(|_| o.failure.is_none())?;
        let ran = match o.status {
            Status::Completed | Status::Degraded | Status::Failed => true,
            Status::Dropped => false,
            Status::Rejected => return None,
        };
        Some(Decided {
            kernel: s.kernel.clone(),
            critical: s.criticality == Criticality::Critical,
            arrival_us: s.arrival_us,
            budget_us: s.budget_us,
            ran,
            in_budget: matches!(o.status, Status::Completed | Status::Degraded) && s.latency_us <= s.budget_us,
            strategy,
            predicted_cost_us: o.predicted_cost_us.unwrap_or(0.0),
            predicted_wait_us: o.predicted_wait_us.unwrap_or(0.0),
            queue_us: o.queue_us,
            service_us: o.service_us.map(|t| t / o.batch_size.unwrap_or(1).max(1)),
            lane_share: match strategy {
                Strategy::Inline | Strategy::Spawn => 0.0,
                Strategy::Batch => 1.0 / o.batch_size.unwrap_or(1).max(1) as f64,
                Strategy::CpuLane | Strategy::Split | Strategy::Degrade | Strategy::Drop => 1.0,
            },
        })
    }
}

/// How wide a window of the run is, by arrival: the resolution of `RunReport::windows`.
pub const WINDOW_US: u64 = 100_000;

/// The jobs that arrived in one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct WindowRecorder {
    pub(super) offered: u64,
    /// Answered within budget.
    pub(super) in_budget: u64,
    /// Of those, completed with every unit they asked for.
    pub(super) in_budget_full: u64,
    /// Latency of every answered job, microseconds.
    pub(super) answered_us: Vec<u64>,
}

/// Everything the generator records during a run.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub critical: ClassRecorder,
    pub sheddable: ClassRecorder,
    pub kernels: std::collections::BTreeMap<String, KernelTally>,
    /// How late jobs were issued, microseconds: the generator's own health.
    pub lateness: Histogram<u64>,
    /// Answered jobs: the time spent outside the router (latency less the router's own time,
    /// microseconds): issuing the job, and over HTTP the way to the server and back.
    pub outside: Histogram<u64>,
    /// Rejected and failed jobs by `kernel: error kind`.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Jobs run by each `kernel@version`.
    pub versions: std::collections::BTreeMap<String, u64>,
    /// Every job the router decided, in the order answers came.
    pub(super) decided: Vec<Decided>,
    /// The run in windows of `WINDOW_US` by arrival, in order.
    pub(super) windows: Vec<WindowRecorder>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            critical: ClassRecorder::default(),
            sheddable: ClassRecorder::default(),
            kernels: Default::default(),
            lateness: histogram(),
            outside: histogram(),
            errors: Default::default(),
            versions: Default::default(),
            decided: Vec::new(),
            windows: Vec::new(),
        }
    }
}

impl Recorder {
    pub fn record(&mut self, s: &Sample) {
        if s.observed.failure != Some(Failure::NotIssued) {
            self.lateness.saturating_record(s.lateness_us.max(1));
        }
        let k = self.kernels.entry(s.kernel.clone()).or_insert_with(|| KernelTally {
            offered: 0,
            answered: 0,
            dropped: 0,
            within_budget: 0,
            critical_offered: 0,
            critical_within_budget: 0,
            budget_use: histogram(),
        });
        k.offered += 1;
        let critical = s.criticality == Criticality::Critical;
        k.critical_offered += u64::from(critical);
        if let Some(e) = &s.observed.error {
            *self.errors.entry(format!("{}: {e}", s.kernel)).or_default() += 1;
        }
        if let Some(v) = &s.observed.version {
            *self.versions.entry(format!("{}@{v}", s.kernel)).or_default() += 1;
        }
        match s.observed.status {
            Status::Completed | Status::Degraded => {
                k.answered += 1;
                k.within_budget += u64::from(s.latency_us <= s.budget_us);
                k.critical_within_budget += u64::from(critical && s.latency_us <= s.budget_us);
                k.budget_use.saturating_record(per_mille(s).max(1));
                if let Some(router) = s.observed.router_total_us {
                    self.outside.saturating_record(s.latency_us.saturating_sub(router).max(1));
                }
            }
            Status::Dropped => k.dropped += 1,
            _ => {}
        }
        match s.criticality {
            Criticality::Critical => self.critical.record(s),
            Criticality::Sheddable => self.sheddable.record(s),
        }
        self.decided.extend(Decided::of(s));
        let at = (s.arrival_us / WINDOW_US) as usize;
        if self.windows.len() <= at {
            self.windows.resize_with(at + 1, WindowRecorder::default);
        }
        let w = &mut self.windows[at];
        w.offered += 1;
        if matches!(s.observed.status, Status::Completed | Status::Degraded) {
            w.answered_us.push(s.latency_us);
            if s.latency_us <= s.budget_us {
                w.in_budget += 1;
                w.in_budget_full += u64::from(s.observed.status == Status::Completed);
            }
        }
    }
}
