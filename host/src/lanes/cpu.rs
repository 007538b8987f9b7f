//! The CPU lane: a bounded queue served earliest-deadline-first by one dispatcher task, which
//! hands each job to `spawn_blocking` only with a semaphore permit, so no more heavy kernels run
//! than there are permits and async threads never run them.

use super::work::LaneWork;
use crate::metrics::WorkGauge;
use crate::policy::Pressure;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Live state the policy reads: all atomics.
#[derive(Debug)]
pub(crate) struct LaneState {
    permits: usize,
    capacity: usize,
    semaphore: Arc<Semaphore>,
    depth: AtomicUsize,
    /// The deepest the queue has been: kept to show the cap holds.
    depth_peak: AtomicUsize,
    /// Predicted work queued. Added on enqueue and taken away on dequeue, both in this file.
    queued_work_us: AtomicU64,
    /// Predicted work running, held by the running work's guards.
    running: WorkGauge,
}

impl LaneState {
    pub(crate) fn pressure(&self) -> Pressure {
        Pressure {
            permits: self.permits,
            permits_in_use: self.permits - self.semaphore.available_permits().min(self.permits),
            queue_depth: self.depth.load(Relaxed),
            queue_capacity: self.capacity,
            queued_work_us: self.queued_work_us.load(Relaxed) as f64,
            running_work_us: self.running.get() as f64,
        }
    }

    /// The deepest the queue has been since the lane started.
    pub(crate) fn queue_peak(&self) -> usize {
        self.depth_peak.load(Relaxed)
    }
}

struct Queued {
    deadline: Instant,
    seq: u64,
    work: LaneWork,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed: the max-heap pops the earliest deadline, then the earliest arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// The lane's entrance: work goes in here and the dispatcher serves it.
pub(crate) struct CpuLane {
    tx: mpsc::Sender<(u64, LaneWork)>,
    seq: AtomicU64,
    pub(crate) state: Arc<LaneState>,
}

impl CpuLane {
    /// Starts the dispatcher on the current Tokio runtime.
    pub(crate) fn start(permits: usize, capacity: usize) -> CpuLane {
        let permits = permits.max(1);
        let capacity = capacity.max(1);
        let state = Arc::new(LaneState {
            permits,
            capacity,
            semaphore: Arc::new(Semaphore::new(permits)),
            depth: AtomicUsize::new(0),
            depth_peak: AtomicUsize::new(0),
            queued_work_us: AtomicU64::new(0),
            running: WorkGauge::default(),
        });
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(dispatch_loop(rx, state.clone()));
        CpuLane { tx, seq: AtomicU64::new(0), state }
    }

    /// Runs work now if a permit is free and nothing is queued (the queue would serve it first
    /// anyway, and skipping the dispatcher saves a thread wake-up); otherwise queues it, or hands
    /// it back if the queue is at its cap.
    pub(crate) fn submit(&self, work: LaneWork) -> Result<(), LaneWork> {
        let s = &self.state;
        if s.depth.load(Relaxed) == 0
            && let Ok(permit) = s.semaphore.clone().try_acquire_owned()
        {
            start(work, permit, s);
            return Ok(());
        }
        self.enqueue(work)
    }

    fn enqueue(&self, work: LaneWork) -> Result<(), LaneWork> {
        let s = &self.state;
        match s.depth.fetch_update(Relaxed, Relaxed, |d| (d < s.capacity).then_some(d + 1)) {
            Ok(before) => s.depth_peak.fetch_max(before + 1, Relaxed),
            Err(_) => return Err(work),
        };
        s.queued_work_us.fetch_add(work.predicted_us(), Relaxed);
        let seq = self.seq.fetch_add(1, Relaxed);
        self.tx.try_send((seq, work)).map_err(|e| {
            let (_, work) = e.into_inner();
            s.depth.fetch_sub(1, Relaxed);
            s.queued_work_us.fetch_sub(work.predicted_us(), Relaxed);
            work
        })
    }
}

fn dequeued(state: &LaneState, work: &LaneWork) {
    state.depth.fetch_sub(1, Relaxed);
    state.queued_work_us.fetch_sub(work.predicted_us(), Relaxed);
}

/// Pops the earliest deadline still worth running; cancelled and expired jobs (or batch
/// members) are dropped on the way.
fn pop_live(heap: &mut BinaryHeap<Queued>, state: &LaneState) -> Option<LaneWork> {
    while let Some(q) = heap.pop() {
        dequeued(state, &q.work);
        if let Some(work) = q.work.prune(Instant::now()) {
            return Some(work);
        }
    }
    None
}

async fn dispatch_loop(mut rx: mpsc::Receiver<(u64, LaneWork)>, state: Arc<LaneState>) {
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<Queued>, (seq, work): (u64, LaneWork)| {
        heap.push(Queued { deadline: work.deadline(), seq, work });
    };
    let mut open = true;
    loop {
        if heap.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(item) => push(&mut heap, item),
                None => return,
            }
        }
        // Wait for a permit, but keep taking arrivals: one may have an earlier deadline.
        let permit = tokio::select! {
            biased;
            permit = state.semaphore.clone().acquire_owned() => permit.expect("the lane semaphore is never closed"),
            item = rx.recv(), if open => {
                match item {
                    Some(item) => push(&mut heap, item),
                    None => open = false,
                }
                continue;
            }
        };
        while let Ok(item) = rx.try_recv() {
            push(&mut heap, item);
        }
        let Some(work) = pop_live(&mut heap, &state) else { continue };
        start(work, permit, &state);
    }
}

/// Hands work holding `permit` (plus any free permits it can use for chunks) to a blocking thread.
fn start(work: LaneWork, permit: OwnedSemaphorePermit, state: &Arc<LaneState>) {
    let mut permits = vec![permit];
    while permits.len() < work.chunks() {
        match state.semaphore.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    let lane = state.clone();
    tokio::task::spawn_blocking(move || work.run(permits, &lane.running));
}
