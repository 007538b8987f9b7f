//! Native work: helix-math computations, whole or as block-aligned chunks on several permits,
//! with panics caught.

use super::{Context, mark_cpu_lane_thread, mismatched_work};
use crate::admission::Work;
use crate::outcome::{ErrorKind, JobError};
use helix_math::chunk::split;
use helix_math::{Chunk, KernelError, Output};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Runs `units` of a native job: on this thread alone, or as block-aligned chunks with one
/// chunk per extra permit on other blocking threads. Panics become the job's failure.
pub(super) fn run_chunks(
    work: &Arc<Work>,
    seed: u64,
    units: u64,
    extra: Vec<OwnedSemaphorePermit>,
    ctx: &Arc<Context>,
) -> Result<Vec<Output>, JobError> {
    let Work::Native(prepared) = &**work else { return Err(mismatched_work(work)) };
    let chunks = simulate_chunks(work, seed, 0..units, extra, ctx)?;
    prepared.finish(chunks).map_err(kernel_error)
}

/// Simulates units `range` of a native job (block-aligned start), split as `run_chunks` says,
/// without finishing: the chunks of a run that may continue.
pub(super) fn simulate_chunks(
    work: &Arc<Work>,
    seed: u64,
    range: Range<u64>,
    extra: Vec<OwnedSemaphorePermit>,
    ctx: &Arc<Context>,
) -> Result<Vec<Chunk>, JobError> {
    let Work::Native(prepared) = &**work else { return Err(mismatched_work(work)) };
    if extra.is_empty() || !prepared.splittable() {
        return Ok(vec![guarded(&|| prepared.simulate(seed, range.clone()))?]);
    }
    let ranges = split(range.end - range.start, 1 + extra.len() as u64, prepared.block());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut ranges = ranges.into_iter().map(|r| r.start + range.start..r.end + range.start);
    let mine = ranges.next().expect("split gives at least one range");
    for (range, permit) in ranges.zip(extra) {
        let (w, tx, ctx) = (work.clone(), tx.clone(), ctx.clone());
        tokio::task::spawn_blocking(move || {
            mark_cpu_lane_thread();
            let in_lane = ctx.metrics.enter_lane();
            let Work::Native(p) = &*w else { unreachable!("checked above") };
            let r = guarded(&|| p.simulate(seed, range.clone()));
            // The lane count drops before the permit, so it never exceeds the permits.
            drop(in_lane);
            drop(permit);
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let mut chunks = vec![guarded(&|| prepared.simulate(seed, mine.clone()))?];
    for r in rx {
        chunks.push(r?);
    }
    Ok(chunks)
}

/// Runs kernel code with panics caught: a panic becomes the job's failure, never the host's.
pub(super) fn guarded<T>(f: &dyn Fn() -> Result<T, KernelError>) -> Result<T, JobError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_error)?.map_err(kernel_error)
}

pub(super) fn kernel_error(e: KernelError) -> JobError {
    match e {
        KernelError::InvalidInput { param, reason } => {
            JobError { kind: ErrorKind::InvalidInput, field: Some(param.to_string()), message: reason }
        }
        KernelError::NumericFailure(m) => JobError { kind: ErrorKind::NumericFailure, field: None, message: m },
    }
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> JobError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "kernel panicked".into());
    JobError { kind: ErrorKind::Panic, field: None, message: format!("kernel panicked: {message}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_kernel_becomes_a_failure_with_its_message() {
        let r: Result<(), JobError> = guarded(&|| panic!("bad index 7"));
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Panic);
        assert!(e.message.contains("bad index 7"), "{}", e.message);
        let r: Result<(), JobError> = guarded(&|| Err(KernelError::NumericFailure("nan".into())));
        assert_eq!(r.unwrap_err().kind, ErrorKind::NumericFailure);
    }
}
