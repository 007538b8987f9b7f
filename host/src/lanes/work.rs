//! What the CPU lane queues: one job, or one batch of jobs that share work. Queued work is
//! pruned of callers that went away and deadlines that passed, and re-decided (`policy::
//! redecide`) when it reaches a permit.

use crate::execute::{BatchRun, Pending, mark_cpu_lane_thread};
use crate::job::Criticality;
use crate::metrics::WorkGauge;
use crate::policy::{self, Reason, Strategy};
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;

/// Work queued in the CPU lane.
pub(crate) enum LaneWork {
    Job(Box<Pending>),
    Batch(BatchRun),
}

impl LaneWork {
    pub(super) fn deadline(&self) -> Instant {
        match self {
            LaneWork::Job(p) => p.deadline,
            LaneWork::Batch(b) => b.deadline,
        }
    }

    pub(super) fn predicted_us(&self) -> u64 {
        match self {
            LaneWork::Job(p) => p.decision.predicted_cost_us as u64,
            LaneWork::Batch(b) => b.predicted_us,
        }
    }

    /// Permits the work can use: its chunks (a batch runs on one).
    pub(super) fn chunks(&self) -> usize {
        match self {
            LaneWork::Job(p) => p.decision.chunks,
            LaneWork::Batch(_) => 1,
        }
    }

    /// Permit time the work is predicted to take: its run on each of its chunks.
    pub(super) fn permit_us(&self) -> u64 {
        self.predicted_us() * self.chunks() as u64
    }

    /// Critical work, or a batch with a critical member: what sheddable work gives way to.
    pub(super) fn is_critical(&self) -> bool {
        match self {
            LaneWork::Job(p) => p.criticality == Criticality::Critical,
            LaneWork::Batch(b) => b.members.iter().any(|m| m.criticality == Criticality::Critical),
        }
    }

    /// Gives way to critical work, if this is a sheddable job: it stays queued at its floor
    /// (`Some`), or is dropped now (`None`), with reason `displaced` either way. Anything else
    /// comes back as it was.
    pub(super) fn give_way(self) -> Option<LaneWork> {
        match self {
            LaneWork::Job(mut p) if p.criticality == Criticality::Sheddable => {
                match policy::displaced(&p.profile, &p.decision) {
                    Some(d) => {
                        p.decision = d;
                        Some(LaneWork::Job(p))
                    }
                    None => {
                        p.drop_with(Reason::Displaced);
                        None
                    }
                }
            }
            other => Some(other),
        }
    }

    /// Drops what is no longer worth running (callers that went away, deadlines already passed)
    /// with that reason; a batch keeps its live members. `None` when nothing is left.
    pub(super) fn prune(self, now: Instant) -> Option<LaneWork> {
        let verdict = |p: &Pending| {
            if p.is_cancelled() {
                Some(Reason::Cancelled)
            } else if now >= p.deadline {
                Some(Reason::DeadlinePassed)
            } else {
                None
            }
        };
        match self {
            LaneWork::Job(p) => match verdict(&p) {
                Some(reason) => {
                    p.drop_with(reason);
                    None
                }
                None => Some(LaneWork::Job(p)),
            },
            LaneWork::Batch(b) => {
                let mut live = Vec::with_capacity(b.members.len());
                for m in b.members {
                    match verdict(&m) {
                        Some(reason) => {
                            m.drop_with(reason);
                        }
                        None => live.push(m),
                    }
                }
                let deadline = live.iter().map(|m| m.deadline).min()?;
                Some(LaneWork::Batch(BatchRun { members: live, deadline, predicted_us: b.predicted_us }))
            }
        }
    }

    /// Ends every job in the work without running it.
    pub(crate) fn abandon(self, reason: Reason) {
        match self {
            LaneWork::Job(p) => {
                p.drop_with(reason);
            }
            LaneWork::Batch(b) => b.members.into_iter().for_each(|m| {
                m.drop_with(reason);
            }),
        }
    }

    /// Runs on a lane worker's thread holding `permits` (the first its own, the rest for chunks),
    /// its predicted cost counted in `running` meanwhile. The permit is released only after the
    /// lane's running count drops, so the count never exceeds the permits.
    pub(super) fn run(self, mut permits: Vec<OwnedSemaphorePermit>, running: &WorkGauge) {
        mark_cpu_lane_thread();
        let ctx = match &self {
            LaneWork::Job(p) => p.ctx.clone(),
            LaneWork::Batch(b) => b.members[0].ctx.clone(),
        };
        let own = permits.remove(0);
        let in_lane = ctx.metrics.enter_lane();
        match self {
            LaneWork::Job(mut p) => {
                let decision = p.redecide(1 + permits.len());
                if decision.strategy == Strategy::Drop {
                    p.drop_with(decision.reason);
                } else {
                    p.decision = decision;
                    p.run_now(permits, Some(running));
                }
            }
            LaneWork::Batch(b) => b.run(running),
        }
        drop(in_lane);
        drop(own);
    }
}
