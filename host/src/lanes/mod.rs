//! Layer 7: where decided work waits and which permit runs it: the CPU lane (earliest deadline
//! first, bounded, under the core-sized semaphore; `cpu`), its queued work by deadline for
//! deadline admission (`ledger`), the work offered to it and the ration that implies
//! (`offered`), what it queues (`work`: a job or a batch) and the per-kernel batchers that feed
//! it (`batch`). Running the work is `execute`'s job.

mod batch;
mod cpu;
mod ledger;
mod offered;
mod work;

pub(crate) use batch::{Batchers, MEMBER_SHARE, Member};
pub(crate) use cpu::CpuLane;
pub(crate) use work::LaneWork;
