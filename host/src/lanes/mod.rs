//! Where jobs run once decided: the CPU lane (earliest deadline first, bounded, under the
//! core-sized semaphore) and the per-kernel batchers that feed it.

pub mod batch;
pub mod cpu;
