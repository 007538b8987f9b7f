//! Layer 2: the policy: pure functions from a job's cost, budget and criticality, the live pressure
//! and the configuration to a `Decision` naming how the job runs and why — `decide` when the job
//! arrives, `redecide` when a queued job reaches a permit.

use crate::job::Criticality;
use serde::Serialize;

/// How a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// On the caller's thread: cheaper than any hand-off.
    Inline,
    /// As its own Tokio task: cheap, but should not hold the caller.
    Spawn,
    /// In the CPU lane: on a worker thread under the core-sized semaphore, earliest deadline first.
    CpuLane,
    /// With other jobs that share work, as one CPU-lane run.
    Batch,
    /// As block-aligned chunks on several idle permits, merged in block order.
    Split,
    /// In the CPU lane with fewer units than asked, so it fits its budget.
    Degrade,
    /// Not at all.
    Drop,
}

impl Strategy {
    /// Every strategy, in the order of `index`.
    pub const ALL: [Strategy; 7] = [
        Strategy::Inline,
        Strategy::Spawn,
        Strategy::CpuLane,
        Strategy::Batch,
        Strategy::Split,
        Strategy::Degrade,
        Strategy::Drop,
    ];

    /// The strategy as outcomes, logs and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Inline => "inline",
            Strategy::Spawn => "spawn",
            Strategy::CpuLane => "cpu_lane",
            Strategy::Batch => "batch",
            Strategy::Split => "split",
            Strategy::Degrade => "degrade",
            Strategy::Drop => "drop",
        }
    }

    /// The strategy's place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The short machine-readable reason for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Predicted cost is below the inline threshold.
    CheapInline,
    /// Predicted cost is below the spawn threshold.
    CheapSpawn,
    /// Full work fits the budget after the predicted wait.
    FitsBudget,
    /// The kernel shares work across jobs and the budget allows the batch delay.
    SharedWork,
    /// Idle permits and a parallel kernel: chunks finish sooner.
    IdleParallel,
    /// Full work would miss the budget; fewer units fit.
    DegradedToFit,
    /// Sheddable work under pressure runs at its floor.
    ShedToFloor,
    /// Even the floor cannot meet the budget.
    BudgetUnreachable,
    /// Even the floor would miss the budget on an idle lane with every permit: no wait, no
    /// retry and no other replica can answer it in time (HTTP 422, never retried).
    #[serde(rename = "budget_too_small")]
    NeverFits,
    /// Sheddable work under pressure, not degradable to fit.
    ShedUnderPressure,
    /// The CPU lane's queue is at its cap.
    QueueFull,
    /// The budget was spent before the job could be decided or dispatched.
    DeadlinePassed,
    /// The caller went away while the job was queued.
    Cancelled,
    /// The kernel version is quarantined after repeated sandbox failures (see `quarantine`).
    Quarantined,
    /// Critical work that fits only if queued sheddable work gives way: it runs, and that work
    /// is degraded or dropped at once (deadline admission).
    DisplacesSheddable,
    /// Queued sheddable work given way to critical work: run at its floor, or dropped.
    Displaced,
    /// More work is offered than the lane can serve: a job among its class's dearest runs at
    /// the share of its units the ration keeps, or at its cap (never below its floor), so cheap
    /// jobs still run whole; a sheddable job whose floor the ration does not pay for is dropped
    /// (deadline admission).
    Rationed,
}

impl Reason {
    /// Every reason, in the order of `index`.
    pub const ALL: [Reason; 17] = [
        Reason::CheapInline,
        Reason::CheapSpawn,
        Reason::FitsBudget,
        Reason::SharedWork,
        Reason::IdleParallel,
        Reason::DegradedToFit,
        Reason::ShedToFloor,
        Reason::BudgetUnreachable,
        Reason::ShedUnderPressure,
        Reason::QueueFull,
        Reason::DeadlinePassed,
        Reason::Cancelled,
        Reason::Quarantined,
        Reason::DisplacesSheddable,
        Reason::Displaced,
        Reason::Rationed,
        Reason::NeverFits,
    ];

    /// The reason's place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Deadline admission's acceptance test found no room for the job as it asked (it was
    /// dropped, degraded to fit, or made sheddable work give way): the lane is overloaded.
    pub fn refuses_room(self) -> bool {
        matches!(
            self,
            Reason::DegradedToFit
                | Reason::ShedToFloor
                | Reason::BudgetUnreachable
                | Reason::ShedUnderPressure
                | Reason::QueueFull
                | Reason::DisplacesSheddable
        )
    }

    /// A drop the lane's load caused: on a replica with room the job would have run. What an
    /// autoscaler counts (`helix_capacity_shed_ratio`).
    pub fn sheds_for_load(self) -> bool {
        matches!(
            self,
            Reason::BudgetUnreachable
                | Reason::ShedUnderPressure
                | Reason::QueueFull
                | Reason::DeadlinePassed
                | Reason::Displaced
                | Reason::Rationed
        )
    }

    /// For a critical job: a refusal that left the job itself with less than it asked (not
    /// one that queued sheddable work made room for). The ration lets in too much critical
    /// work while these happen.
    pub fn shorts_critical(self) -> bool {
        self.refuses_room() && self != Reason::DisplacesSheddable
    }

    /// The reason as outcomes, logs and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CheapInline => "cheap_inline",
            Reason::CheapSpawn => "cheap_spawn",
            Reason::FitsBudget => "fits_budget",
            Reason::SharedWork => "shared_work",
            Reason::IdleParallel => "idle_parallel",
            Reason::DegradedToFit => "degraded_to_fit",
            Reason::ShedToFloor => "shed_to_floor",
            Reason::BudgetUnreachable => "budget_unreachable",
            Reason::ShedUnderPressure => "shed_under_pressure",
            Reason::QueueFull => "queue_full",
            Reason::DeadlinePassed => "deadline_passed",
            Reason::Cancelled => "cancelled",
            Reason::Quarantined => "quarantined",
            Reason::DisplacesSheddable => "displaces_sheddable",
            Reason::Displaced => "displaced",
            Reason::Rationed => "rationed",
            Reason::NeverFits => "budget_too_small",
        }
    }
}

/// What the policy knows about a job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobProfile {
    pub remaining_budget_us: f64,
    /// Budget the job spent before it reached this router (behind a balancer, on the way in
    /// and held back for the way back): not in `remaining_budget_us`, but an idle fleet would
    /// not have spent it, so whether a job can ever fit counts it (`never_fits`).
    pub spent_before_us: f64,
    pub criticality: Criticality,
    pub units: u64,
    /// Grants are multiples of this (the kernel's block).
    pub block: u64,
    pub fixed_us: f64,
    pub per_unit_us: f64,
    pub scaling_potential: f64,
    /// The smallest fraction of units it may run, if degradable.
    pub floor_fraction: Option<f64>,
    pub error_exponent: f64,
    pub splittable: bool,
    /// The kernel batches this job, with at most this delay waiting for partners.
    pub batch_delay_us: Option<f64>,
    /// A batch with this job's key is already open.
    pub batch_open: bool,
    /// The Inline and Spawn lanes are allowed (not for kernels whose per-job overhead makes a
    /// synchronous run pointless).
    pub allow_async_lanes: bool,
    /// The kernel's prediction error at its 99th percentile (measured over predicted service
    /// time, at least 1): deadline admission plans the job's own finish at this multiple of
    /// its cost, so it meets its budget even when its run is one of the slow ones.
    pub error_margin: f64,
}

/// The CPU lane's state when the job is decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// CPU-lane permits: heavy kernels allowed to run at once.
    pub permits: usize,
    /// Permits held now.
    pub permits_in_use: usize,
    /// Jobs (and batches) waiting for a permit.
    pub queue_depth: usize,
    /// The queue's cap.
    pub queue_capacity: usize,
    /// Predicted work queued ahead, microseconds.
    pub queued_work_us: f64,
    /// Predicted work running now, microseconds.
    pub running_work_us: f64,
}

impl Pressure {
    /// Expected wait for a permit: queued work plus half the running work, spread over the permits.
    pub fn predicted_wait_us(&self) -> f64 {
        if self.permits_in_use < self.permits && self.queue_depth == 0 {
            return 0.0;
        }
        (self.queued_work_us + 0.5 * self.running_work_us) / self.permits.max(1) as f64
    }

    /// Permits free now.
    pub fn free_permits(&self) -> usize {
        self.permits.saturating_sub(self.permits_in_use)
    }
}

/// Policy thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Jobs predicted below this run inline.
    pub inline_max_us: f64,
    /// Jobs predicted below this run as Tokio tasks; above it, only the CPU lane.
    pub spawn_max_us: f64,
    /// Jobs predicted above this may split on an idle machine.
    pub split_min_us: f64,
    /// Kernels below this scaling potential never split.
    pub split_min_scaling: f64,
    /// Fraction of the remaining budget the plan may use; the rest absorbs prediction error.
    pub budget_use: f64,
    /// The queue model: sheddable work is degraded to its floor or dropped once the queue is
    /// this full.
    pub shed_queue_fraction: f64,
    /// ... or once the predicted wait exceeds this (deadline admission needs neither).
    pub shed_wait_us: f64,
    /// Open a new batch even when the lane is idle (otherwise a batch starts only when the lane
    /// is backed up, or a job joins one already open, so a lone job never waits for partners).
    pub batch_when_idle: bool,
    /// How heavy jobs are admitted to the CPU lane.
    pub admission: Admission,
    /// Deadline admission, while the lane is overloaded: once the work offered over the last
    /// 50 ms passes this share of the permit time the CPU lane delivers, the dearest jobs are
    /// cut (reason `rationed`; see `ration_keep`) so that the rationed work fits that share.
    /// Critical work is rationed against it all, sheddable work against
    /// what critical work leaves. The share backs off (to half at most) while critical jobs are
    /// still refused room. A little over 1 by default: the learnt capacity is the work done
    /// while backed up, and arrivals come in bursts, so filling exactly that left the lane
    /// about 4% idle under a ration at 2 x C; the acceptance test still refuses what does not fit.
    pub ration_share: f64,
    /// Deadline admission, under a ration: the share of its units a job the ration cuts keeps.
    /// The ration cuts the dearest jobs to this share, from the cost up that makes the rest fit,
    /// so it keeps the most jobs whole for the permit time it must save; only if cutting every
    /// job to this share is not enough does it cut every job above a cap to the cap instead
    /// (water-filling), which is what 1 always does. At 0.5 a cut Monte Carlo answer's error bar
    /// is 1.41 times as wide; a cap saving the same permit time cuts about three times as many
    /// jobs, by less (at 2 x C with `helix load`: critical jobs in full 88-91% against 83-86%).
    pub ration_keep: f64,
}

/// How the policy decides whether a heavy job fits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// From the wait all queued work imposes, as in a FIFO queue; sheddable work gives way past
    /// `shed_queue_fraction` or `shed_wait_us` (`decide`). The model before deadline admission,
    /// kept for comparison.
    Queue,
    /// From the job's place in the earliest-deadline-first queue, with an acceptance test that
    /// keeps every queued job due after it in time, and sheddable work giving way to critical
    /// work, and work rationed while more is offered than the lane serves (`decide_placed`).
    #[default]
    Deadline,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            inline_max_us: 20.0,
            spawn_max_us: 200.0,
            split_min_us: 2_000.0,
            split_min_scaling: 0.5,
            budget_use: 0.8,
            shed_queue_fraction: 0.5,
            // A few typical heavy jobs per permit: past it the lane is backed up, and sheddable
            // work gives way while critical work still fits its (tens of ms) budgets. At 50 ms
            // it gave way only after critical jobs were already being dropped for budget
            // (measured with `helix load`: at 2x capacity critical and sheddable jobs were
            // dropped alike, 45% each).
            shed_wait_us: 5_000.0,
            batch_when_idle: false,
            admission: Admission::Deadline,
            ration_share: 1.05,
            ration_keep: 0.5,
        }
    }
}

/// The policy's answer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// How the job runs.
    pub strategy: Strategy,
    /// Why.
    pub reason: Reason,
    /// Work units the job asked for (paths, particles; 1 for a kernel without a count).
    pub units_requested: u64,
    /// Work units it runs with: fewer when degraded, 0 when dropped.
    pub units_granted: u64,
    /// Chunks to run (1 unless split).
    pub chunks: usize,
    /// Predicted service time of the units granted, microseconds; for a drop, of the units
    /// asked for.
    pub predicted_cost_us: f64,
    /// Predicted wait for a permit, microseconds (for a quarantined kernel, its time left).
    pub predicted_wait_us: f64,
    /// How much wider the error bar is expected to be: (requested / granted)^exponent.
    pub error_factor: f64,
}

impl Decision {
    fn new(strategy: Strategy, reason: Reason, job: &JobProfile, units: u64, cost: f64, wait: f64) -> Self {
        Decision {
            strategy,
            reason,
            units_requested: job.units,
            units_granted: units,
            chunks: 1,
            predicted_cost_us: cost,
            predicted_wait_us: wait,
            error_factor: job.error_factor(units),
        }
    }

    /// Not running `job`, for `reason`, with the wait that was predicted. The predicted cost
    /// stays that of the work asked for: what the drop saved, and what a retry would cost.
    pub fn drop(job: &JobProfile, reason: Reason, wait: f64) -> Self {
        Decision::new(Strategy::Drop, reason, job, 0, job.cost_us(job.units), wait)
    }
}

/// The share of its serial time a job takes on `chunks` chunks, by Amdahl's law: the part
/// `scaling_potential` of the work divides among the chunks, the rest does not.
pub fn amdahl(scaling_potential: f64, chunks: usize) -> f64 {
    if chunks <= 1 {
        return 1.0;
    }
    (1.0 - scaling_potential) + scaling_potential / chunks as f64
}

impl JobProfile {
    /// Cheap enough to run inline or as a task, never waiting in the CPU lane: both admission
    /// models decide such a job with `decide`.
    pub fn is_cheap(&self, cfg: &PolicyConfig) -> bool {
        self.allow_async_lanes && self.cost_us(self.units) <= cfg.spawn_max_us.max(cfg.inline_max_us)
    }

    /// Predicted service time of `units` units, microseconds.
    pub fn cost_us(&self, units: u64) -> f64 {
        self.fixed_us + self.per_unit_us * units as f64
    }

    /// The same job run as `chunks` chunks: each unit costs its Amdahl share.
    pub fn on_chunks(&self, chunks: usize) -> JobProfile {
        JobProfile { per_unit_us: self.per_unit_us * amdahl(self.scaling_potential, chunks), ..*self }
    }

    /// How much wider the error bar gets when `granted` of the requested units run.
    pub fn error_factor(&self, granted: u64) -> f64 {
        if granted > 0 { (self.units as f64 / granted as f64).powf(self.error_exponent) } else { f64::INFINITY }
    }

    /// The floor in units (block-rounded up, at most the request), if degradable.
    pub fn floor_units(&self) -> Option<u64> {
        let f = self.floor_fraction?;
        let raw = ((self.units as f64 * f).ceil() as u64).max(1);
        Some(round_up(raw, self.block).min(self.units))
    }

    /// The most units whose cost fits `available_us`, rounded down to whole blocks.
    pub fn units_within(&self, available_us: f64) -> u64 {
        if available_us <= self.fixed_us {
            return 0;
        }
        if self.per_unit_us <= 0.0 {
            return self.units;
        }
        let raw = ((available_us - self.fixed_us) / self.per_unit_us).floor().min(self.units as f64) as u64;
        if raw >= self.units { self.units } else { raw / self.block * self.block }
    }
}

fn round_up(x: u64, block: u64) -> u64 {
    x.div_ceil(block) * block
}

/// Decides how `job` runs under `pressure`.
pub fn decide(job: &JobProfile, pressure: &Pressure, cfg: &PolicyConfig) -> Decision {
    let wait = pressure.predicted_wait_us();
    if job.remaining_budget_us <= 0.0 {
        return Decision::drop(job, Reason::DeadlinePassed, wait);
    }
    let full = job.cost_us(job.units);
    if job.allow_async_lanes && full <= cfg.inline_max_us {
        return Decision::new(Strategy::Inline, Reason::CheapInline, job, job.units, full, 0.0);
    }
    if job.allow_async_lanes && full <= cfg.spawn_max_us {
        return Decision::new(Strategy::Spawn, Reason::CheapSpawn, job, job.units, full, 0.0);
    }
    if pressure.queue_depth >= pressure.queue_capacity {
        return Decision::drop(job, Reason::QueueFull, wait);
    }
    let usable = job.remaining_budget_us * cfg.budget_use;
    let pressured = pressure.queue_depth as f64 >= cfg.shed_queue_fraction * pressure.queue_capacity as f64
        || wait >= cfg.shed_wait_us;
    if job.criticality == Criticality::Sheddable && pressured {
        return match job.floor_units() {
            Some(floor) if wait + job.cost_us(floor) <= usable => {
                // A job smaller than one block has no smaller run: it goes whole.
                let strategy = if floor < job.units { Strategy::Degrade } else { Strategy::CpuLane };
                Decision::new(strategy, Reason::ShedToFloor, job, floor, job.cost_us(floor), wait)
            }
            _ => Decision::drop(job, Reason::ShedUnderPressure, wait),
        };
    }
    let batch_pays = job.batch_open || cfg.batch_when_idle || pressure.queue_depth > 0 || pressure.free_permits() == 0;
    if let Some(delay) = job.batch_delay_us
        && batch_pays
        && wait + delay + full <= usable
    {
        return Decision::new(Strategy::Batch, Reason::SharedWork, job, job.units, full, wait + delay);
    }
    // On an idle lane a parallel kernel can spread over the free permits (Amdahl speed-up).
    let free = pressure.free_permits();
    let blocks = job.units.div_ceil(job.block.max(1));
    let chunks = if job.splittable
        && job.scaling_potential >= cfg.split_min_scaling
        && free >= 2
        && pressure.queue_depth == 0
        && blocks >= 2
    {
        free.min(blocks as usize)
    } else {
        1
    };
    let parallel = job.on_chunks(chunks);
    let with_chunks = |mut d: Decision| {
        d.chunks = chunks;
        d
    };
    // Split when the job is big enough to be worth it, or when only splitting meets the budget.
    if chunks > 1 && (full >= cfg.split_min_us || wait + full > usable) && parallel.cost_us(job.units) <= usable {
        let cost = parallel.cost_us(job.units);
        return with_chunks(Decision::new(Strategy::Split, Reason::IdleParallel, job, job.units, cost, 0.0));
    }
    if wait + full <= usable {
        return Decision::new(Strategy::CpuLane, Reason::FitsBudget, job, job.units, full, wait);
    }
    if let Some(floor) = job.floor_units() {
        let fit = parallel.units_within(usable - wait);
        if fit >= floor && fit > 0 {
            let d = Decision::new(Strategy::Degrade, Reason::DegradedToFit, job, fit, parallel.cost_us(fit), wait);
            return with_chunks(d);
        }
    }
    Decision::drop(job, Reason::BudgetUnreachable, wait)
}

/// A drop for an unreachable budget that no lane state could have avoided: even the floor (the
/// whole job, if it cannot degrade), spread over all `permits`, costs more than the budget
/// lets it use. Such a drop is the job's own fault, not the lane's load: it says so
/// (`NeverFits`), and is no sign of overload.
pub fn never_fits(job: &JobProfile, permits: usize, cfg: &PolicyConfig) -> bool {
    idle_floor(job, permits).1 > asked_budget_us(job) * cfg.budget_use
}

/// The budget as the client gave it: what is left, and what was spent before this router.
pub fn asked_budget_us(job: &JobProfile) -> f64 {
    job.remaining_budget_us + job.spent_before_us
}

/// The job's smallest run (its floor, or all of it if it cannot degrade) and what it costs,
/// microseconds, on an idle lane spread over all `permits`.
pub fn idle_floor(job: &JobProfile, permits: usize) -> (u64, f64) {
    let units = job.floor_units().unwrap_or(job.units);
    let chunks = if job.splittable { permits.max(1) } else { 1 };
    (units, job.on_chunks(chunks).cost_us(units))
}

/// Re-checks a queued job's decision when it reaches the CPU lane holding `permits` permits
/// with `remaining_budget_us` of its budget left: the wait may have eaten the budget, or fewer
/// permits than planned may be free. The decision stands if it still fits; otherwise the job
/// is degraded to what fits (never below its floor) or dropped.
pub fn redecide(
    job: &JobProfile,
    decided: &Decision,
    remaining_budget_us: f64,
    permits: usize,
    cfg: &PolicyConfig,
) -> Decision {
    let dropped = |reason| Decision { strategy: Strategy::Drop, reason, units_granted: 0, chunks: 1, ..*decided };
    if remaining_budget_us <= 0.0 {
        return dropped(Reason::DeadlinePassed);
    }
    let usable = remaining_budget_us * cfg.budget_use;
    let granted = decided.units_granted;
    let cost = job.on_chunks(if job.splittable { permits } else { 1 });
    if cost.cost_us(granted) <= usable {
        return *decided;
    }
    match job.floor_units() {
        Some(floor) => {
            let fit = cost.units_within(usable).min(granted);
            if fit >= floor && fit > 0 {
                Decision {
                    strategy: Strategy::Degrade,
                    reason: Reason::DegradedToFit,
                    units_granted: fit,
                    predicted_cost_us: cost.cost_us(fit),
                    error_factor: job.error_factor(fit),
                    ..*decided
                }
            } else {
                dropped(Reason::BudgetUnreachable)
            }
        }
        None => dropped(Reason::BudgetUnreachable),
    }
}

mod placed;

pub use placed::{Placement, Ration, decide_placed, displaced, displacement};

#[cfg(test)]
mod tests;
