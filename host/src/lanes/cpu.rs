//! The CPU lane: a bounded queue served earliest-deadline-first by one worker thread per permit.
//! A worker takes the earliest live job only with a semaphore permit and runs it itself, so no
//! more heavy kernels run than there are permits and async threads never run them. Under
//! backlog a worker that finishes a job takes the next one at once, on the same thread: no
//! thread is woken between two jobs (a dispatcher handing each job to `spawn_blocking` woke
//! two, and cost about 100 us of permit time per run on two busy cores). On an idle lane an
//! arrival wakes exactly one idle worker.

use super::ledger::{Entry, Ledger};
use super::offered::{Offered, Rations};
use super::work::LaneWork;
use crate::metrics::WorkGauge;
use crate::policy::{Placement, Pressure};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

/// Live state the policy reads: all atomics.
pub(crate) struct LaneState {
    permits: usize,
    capacity: usize,
    semaphore: Arc<Semaphore>,
    depth: AtomicUsize,
    /// The deepest the queue has been: kept to show the cap holds.
    depth_peak: AtomicUsize,
    /// Predicted work queued. Added on enqueue and taken away on dequeue, both in this file.
    queued_work_us: AtomicU64,
    /// The same work by deadline, for deadline admission; added and taken away beside it.
    ledger: Ledger,
    /// Predicted work running, held by the running work's guards.
    running: WorkGauge,
    /// The work offered to the router lately, and the ration it implies.
    offered: Offered,
    /// Permit time held by lane runs so far, from the pop to the release, microseconds; and the
    /// runs. Beside the kernels' service time, the lane's cost per run.
    held_us: AtomicU64,
    runs: AtomicU64,
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

    /// Where a job due at `deadline` would sit in the queue now. Running work counts for half
    /// its prediction: on average, that much of it is left.
    pub(crate) fn place(&self, deadline: Instant) -> Placement {
        self.ledger.place(deadline, self.permits, 0.5 * self.running.get() as f64)
    }

    /// Counts a job offered now at `cost_us` of permit time; returns the rations in force.
    pub(crate) fn offer(&self, critical: bool, cost_us: f64) -> Rations {
        self.offered.offer(critical, cost_us, || (self.running.done(), self.depth.load(Relaxed) > 0))
    }

    /// Notes that deadline admission refused room to a job now; `critical_short`: a critical
    /// job got less than it asked (see `offered`).
    pub(crate) fn refused(&self, critical_short: bool) {
        self.offered.refused(critical_short);
    }

    /// Notes that the ration cut a job now.
    pub(crate) fn cut(&self) {
        self.offered.cut();
    }

    /// The rations in force, the share of the permits' time the lane delivers (learnt), and the
    /// share of that the ration fills now.
    pub(crate) fn ration(&self) -> (Rations, f64, f64) {
        let (capacity, share) = self.offered.capacity_share();
        (self.offered.rations(), capacity, share)
    }

    /// Permit time the lane's runs have held so far, microseconds, and the runs.
    pub(crate) fn held(&self) -> (u64, u64) {
        (self.held_us.load(Relaxed), self.runs.load(Relaxed))
    }

    /// The deepest the queue has been since the lane started.
    pub(crate) fn queue_peak(&self) -> usize {
        self.depth_peak.load(Relaxed)
    }

    fn queued(&self, work: &LaneWork) -> Entry {
        self.queued_work_us.fetch_add(work.predicted_us(), Relaxed);
        self.ledger.add(work.deadline(), work.permit_us(), work.is_critical())
    }

    fn dequeued(&self, work: &LaneWork, entry: Entry) {
        self.depth.fetch_sub(1, Relaxed);
        self.queued_work_us.fetch_sub(work.predicted_us(), Relaxed);
        self.ledger.remove(entry);
    }
}

/// What reaches the workers.
enum Arrival {
    /// Work to queue, in order of arrival, as the ledger counted it.
    Work(u64, Entry, LaneWork),
    /// Critical work was admitted on the understanding that this much permit time of queued
    /// sheddable work gives way, earliest deadline first.
    Displace(u64),
}

/// Work in the queue, as the ledger counted it.
struct Queued {
    entry: Entry,
    work: LaneWork,
}

/// The queue: earliest deadline first, then earliest arrival.
type Queue = BTreeMap<(Instant, u64), Queued>;

/// The lane's entrance: work goes in here and the workers serve it.
pub(crate) struct CpuLane {
    /// `None` only while the lane is dropped: closing the channel tells the workers to finish.
    tx: Option<mpsc::Sender<Arrival>>,
    /// Rung once per arrival: wakes one idle worker, or lets the next one to wait go on.
    wake: Arc<Notify>,
    seq: AtomicU64,
    pub(crate) state: Arc<LaneState>,
}

impl Drop for CpuLane {
    /// The workers serve what is queued, then exit.
    fn drop(&mut self) {
        drop(self.tx.take());
        self.wake.notify_waiters();
    }
}

impl CpuLane {
    /// Starts one worker thread per permit. Work is rationed once the work offered passes
    /// `ration_share` of the permits' time, the dearest jobs cut to `ration_keep` of their cost.
    pub(crate) fn start(permits: usize, capacity: usize, ration_share: f64, ration_keep: f64) -> CpuLane {
        let permits = permits.max(1);
        let capacity = capacity.max(1);
        let state = Arc::new(LaneState {
            permits,
            capacity,
            semaphore: Arc::new(Semaphore::new(permits)),
            depth: AtomicUsize::new(0),
            depth_peak: AtomicUsize::new(0),
            queued_work_us: AtomicU64::new(0),
            ledger: Ledger::new(),
            running: WorkGauge::default(),
            offered: Offered::new(permits, ration_share, ration_keep),
            held_us: AtomicU64::new(0),
            runs: AtomicU64::new(0),
        });
        // Room for a displacement beside every queued job.
        let (tx, rx) = mpsc::channel(2 * capacity);
        let dispatch = Arc::new(Mutex::new(Dispatch { rx, queue: Queue::new(), open: true }));
        let wake = Arc::new(Notify::new());
        for i in 0..permits {
            let (dispatch, wake, state) = (dispatch.clone(), wake.clone(), state.clone());
            std::thread::Builder::new()
                .name(format!("helix-lane-{i}"))
                .spawn(move || {
                    // A runtime of the worker's own, to wait for arrivals and permits; the
                    // kernels it runs block only this thread.
                    match tokio::runtime::Builder::new_current_thread().build() {
                        Ok(rt) => rt.block_on(work_loop(dispatch, wake, state)),
                        Err(e) => tracing::error!(error = %e, "a CPU lane worker could not start"),
                    }
                })
                .expect("a CPU lane worker thread starts");
        }
        CpuLane { tx: Some(tx), wake, seq: AtomicU64::new(0), state }
    }

    /// Queues work for the workers, or hands it back if the queue is at its cap.
    pub(crate) fn submit(&self, work: LaneWork) -> Result<(), LaneWork> {
        let s = &self.state;
        match s.depth.try_update(Relaxed, Relaxed, |d| (d < s.capacity).then_some(d + 1)) {
            Ok(before) => s.depth_peak.fetch_max(before + 1, Relaxed),
            Err(_) => return Err(work),
        };
        let entry = s.queued(&work);
        let seq = self.seq.fetch_add(1, Relaxed);
        let tx = self.tx.as_ref().expect("the lane is open while it takes work");
        tx.try_send(Arrival::Work(seq, entry, work)).map_err(|e| match e.into_inner() {
            Arrival::Work(_, entry, work) => {
                s.dequeued(&work, entry);
                work
            }
            Arrival::Displace(_) => unreachable!("sent work"),
        })?;
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the workers to have `permit_us` of queued sheddable work give way. Best effort:
    /// with the channel full, the work stays and is re-decided when it reaches a permit.
    pub(crate) fn displace(&self, permit_us: f64) {
        if permit_us > 0.0
            && let Some(tx) = &self.tx
        {
            let _ = tx.try_send(Arrival::Displace(permit_us.ceil() as u64));
        }
    }
}

fn arrive(queue: &mut Queue, arrival: Arrival, state: &LaneState) {
    match arrival {
        Arrival::Work(seq, entry, work) => {
            queue.insert((work.deadline(), seq), Queued { entry, work });
        }
        Arrival::Displace(permit_us) => displace(queue, permit_us, state),
    }
}

/// Sheddable jobs give way, earliest deadline first (they stand before the most deadlines),
/// until `permit_us` of permit time is freed: each runs at its floor, or is dropped.
fn displace(queue: &mut Queue, permit_us: u64, state: &LaneState) {
    let mut freed = 0;
    let sheddable: Vec<(Instant, u64)> =
        queue.iter().filter(|(_, q)| !q.work.is_critical()).map(|(key, _)| *key).collect();
    for key in sheddable {
        if freed >= permit_us {
            return;
        }
        let Some(Queued { entry, work }) = queue.remove(&key) else { continue };
        let (before, predicted) = (work.permit_us(), work.predicted_us());
        match work.give_way() {
            Some(work) => {
                let after = entry.with_cost(work.permit_us());
                state.queued_work_us.fetch_sub(predicted - work.predicted_us(), Relaxed);
                state.ledger.replace(entry, after);
                freed += before - work.permit_us();
                queue.insert(key, Queued { entry: after, work });
            }
            None => {
                state.depth.fetch_sub(1, Relaxed);
                state.queued_work_us.fetch_sub(predicted, Relaxed);
                state.ledger.remove(entry);
                freed += before;
            }
        }
    }
}

/// Pops the earliest deadline still worth running; cancelled and expired jobs (or batch
/// members) are dropped on the way.
fn pop_live(queue: &mut Queue, state: &LaneState) -> Option<LaneWork> {
    while let Some((_, q)) = queue.pop_first() {
        state.dequeued(&q.work, q.entry);
        if let Some(work) = q.work.prune(Instant::now()) {
            return Some(work);
        }
    }
    None
}

/// The queue and its arrivals, shared by the workers. A worker holds it only to move the
/// arrivals into the queue and pop the earliest job, never while it waits or runs: it is held
/// for microseconds, and only by the lane's own threads. Submitters never take it: they send,
/// and ring the lane's `wake`.
struct Dispatch {
    rx: mpsc::Receiver<Arrival>,
    queue: Queue,
    open: bool,
}

/// What a worker does next.
enum Next {
    Run(LaneWork, OwnedSemaphorePermit),
    /// Work is queued but a split job's chunks hold every permit.
    AwaitPermit,
    AwaitArrival,
    /// The lane is closed and its queue empty.
    Exit,
}

impl Dispatch {
    /// Takes the arrivals in, then the earliest live work if there is a permit for it (`permit`,
    /// or a free one).
    fn next(&mut self, state: &LaneState, permit: Option<OwnedSemaphorePermit>) -> Next {
        loop {
            match self.rx.try_recv() {
                Ok(arrival) => arrive(&mut self.queue, arrival, state),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    break;
                }
            }
        }
        let idle = if self.open { Next::AwaitArrival } else { Next::Exit };
        if self.queue.is_empty() {
            return idle;
        }
        let Some(permit) = permit.or_else(|| state.semaphore.clone().try_acquire_owned().ok()) else {
            return Next::AwaitPermit;
        };
        match pop_live(&mut self.queue, state) {
            Some(work) => Next::Run(work, permit),
            None => idle,
        }
    }
}

/// One worker: takes the next work and runs it here, until the lane closes.
async fn work_loop(dispatch: Arc<Mutex<Dispatch>>, wake: Arc<Notify>, state: Arc<LaneState>) {
    let mut permit = None;
    loop {
        // Listening before looking: a ring (or the lane's closing) after the look is not missed.
        let rung = wake.notified();
        tokio::pin!(rung);
        rung.as_mut().enable();
        let next = dispatch.lock().unwrap_or_else(|p| p.into_inner()).next(&state, permit.take());
        match next {
            Next::Run(work, held) => run(work, held, &state),
            Next::AwaitPermit => {
                permit =
                    Some(state.semaphore.clone().acquire_owned().await.expect("the lane semaphore is never closed"));
            }
            Next::AwaitArrival => rung.await,
            Next::Exit => return,
        }
    }
}

/// Runs work holding `permit` (plus any free permits it can use for chunks) on this thread.
fn run(work: LaneWork, permit: OwnedSemaphorePermit, state: &LaneState) {
    let started = Instant::now();
    let mut permits = vec![permit];
    while permits.len() < work.chunks() {
        match state.semaphore.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    // Kernel panics are caught inside as the job's failure; this catches anything else, so a
    // bug costs its jobs (their callers see the reply channel close) and never the worker.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run(permits, &state.running)));
    if ran.is_err() {
        tracing::error!("a CPU lane run panicked outside its kernel; its jobs are lost, the worker goes on");
    }
    state.held_us.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
    state.runs.fetch_add(1, Relaxed);
}
