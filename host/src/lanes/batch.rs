//! Batchers, one per kernel version, keyed by the version's id: each collects jobs that can
//! share work (same key), and closes a batch when it is full or when its earliest member's
//! delay runs out, whichever comes first. A closed batch is one CPU-lane job.

use super::cpu::CpuLane;
use super::work::LaneWork;
use crate::execute::{BatchRun, Pending};
use crate::policy::Reason;
use crate::registry::Kernel;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;
use tokio::sync::mpsc;

/// Every kernel version's batcher, started on the version's first batched job. Lookups are
/// lock-free (one map snapshot); the map is rebuilt only when a batcher starts, and then drops
/// the batchers of versions no job holds any more (their queues are empty: every queued job
/// holds its kernel).
pub(crate) struct Batchers {
    map: ArcSwap<HashMap<u64, Arc<Slot>>>,
    /// Each batcher's queue cap.
    capacity: usize,
    lane: Arc<CpuLane>,
}

struct Slot {
    kernel: Weak<Kernel>,
    batcher: OnceLock<Batcher>,
}

impl Batchers {
    pub(crate) fn new(capacity: usize, lane: Arc<CpuLane>) -> Batchers {
        Batchers { map: ArcSwap::default(), capacity, lane }
    }

    /// A batch of `kernel`'s with this key is open now (a hint: see `OpenKeys`).
    pub(crate) fn is_open(&self, kernel: &Kernel, key: u64) -> bool {
        self.map.load().get(&kernel.id).and_then(|s| s.batcher.get()).is_some_and(|b| b.open.contains(key))
    }

    /// Hands a member to its kernel's batcher (starting it on first use), or back if the
    /// batcher's queue is full.
    pub(crate) fn offer(&self, m: Member) -> Result<(), Box<Member>> {
        let kernel = m.pending.kernel.clone();
        if let Some(b) = self.map.load().get(&kernel.id).and_then(|s| s.batcher.get()) {
            return b.offer(m);
        }
        let slot = self.slot(&kernel);
        let max = kernel.manifest.batch.as_ref().map_or(2, |b| b.max_size);
        slot.batcher.get_or_init(|| Batcher::start(max, self.capacity, self.lane.clone())).offer(m)
    }

    fn slot(&self, kernel: &Arc<Kernel>) -> Arc<Slot> {
        if let Some(s) = self.map.load().get(&kernel.id) {
            return s.clone();
        }
        let fresh = Arc::new(Slot { kernel: Arc::downgrade(kernel), batcher: OnceLock::new() });
        self.map.rcu(|map| {
            let mut next: HashMap<u64, Arc<Slot>> =
                map.iter().filter(|(_, s)| s.kernel.strong_count() > 0).map(|(id, s)| (*id, s.clone())).collect();
            next.entry(kernel.id).or_insert_with(|| fresh.clone());
            next
        });
        self.map.load().get(&kernel.id).cloned().expect("the slot was just inserted")
    }
}

/// Which batch keys are open now: a lock-free hint the policy reads (a job joins an open batch
/// rather than waiting alone). Keys are non-zero hashes; a slot collision only costs a hint.
struct OpenKeys([AtomicU64; 256]);

impl Default for OpenKeys {
    fn default() -> Self {
        OpenKeys(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl OpenKeys {
    fn slot(&self, key: u64) -> &AtomicU64 {
        &self.0[(key ^ (key >> 32)) as usize % self.0.len()]
    }

    fn contains(&self, key: u64) -> bool {
        self.slot(key).load(Relaxed) == key
    }

    fn mark(&self, key: u64) {
        self.slot(key).store(key, Relaxed);
    }

    fn clear(&self, key: u64) {
        let _ = self.slot(key).compare_exchange(key, 0, Relaxed, Relaxed);
    }
}

/// A job waiting for partners.
pub(crate) struct Member {
    /// Jobs with equal keys share work.
    pub(crate) key: u64,
    /// The latest this member can wait for partners.
    pub(crate) close_by: Instant,
    pub(crate) pending: Pending,
}

/// One kernel version's batcher: the queue into its batching task.
struct Batcher {
    tx: mpsc::Sender<Member>,
    open: Arc<OpenKeys>,
}

struct Open {
    close_at: Instant,
    members: Vec<Pending>,
}

impl Batcher {
    fn start(max_size: usize, capacity: usize, lane: Arc<CpuLane>) -> Batcher {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let open = Arc::new(OpenKeys::default());
        tokio::spawn(batch_loop(rx, max_size.max(2), lane, open.clone()));
        Batcher { tx, open }
    }

    /// Hands a member to the batcher, or back if its queue is full.
    fn offer(&self, m: Member) -> Result<(), Box<Member>> {
        self.tx.try_send(m).map_err(|e| Box::new(e.into_inner()))
    }
}

async fn batch_loop(mut rx: mpsc::Receiver<Member>, max_size: usize, lane: Arc<CpuLane>, keys: Arc<OpenKeys>) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    loop {
        let next_close = open.values().map(|o| o.close_at).min();
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else {
                    open.into_values().for_each(|o| close(o.members, &lane));
                    return;
                };
                let batch = open.entry(m.key).or_insert_with(|| {
                    keys.mark(m.key);
                    Open { close_at: m.close_by, members: Vec::new() }
                });
                batch.close_at = batch.close_at.min(m.close_by);
                batch.members.push(m.pending);
                if batch.members.len() >= max_size {
                    let full = open.remove(&m.key).expect("just inserted");
                    keys.clear(m.key);
                    close(full.members, &lane);
                }
            }
            _ = tokio::time::sleep_until(next_close.unwrap_or_else(Instant::now).into()), if next_close.is_some() => {
                let now = Instant::now();
                let due: Vec<u64> = open.iter().filter(|(_, o)| o.close_at <= now).map(|(k, _)| *k).collect();
                for key in due {
                    keys.clear(key);
                    close(open.remove(&key).expect("due key is open").members, &lane);
                }
            }
        }
    }
}

/// What each member after the first adds to a batch's cost, as a share of the costliest
/// member's: shared paths dominate, and each extra member adds its payoff or quantile work.
pub(crate) const MEMBER_SHARE: f64 = 0.1;

fn close(mut members: Vec<Pending>, lane: &CpuLane) {
    let work = if members.len() == 1 {
        LaneWork::Job(Box::new(members.pop().expect("one member")))
    } else {
        let deadline = members.iter().map(|m| m.deadline).min().expect("members");
        let most = members.iter().map(|m| m.decision.predicted_cost_us).fold(0.0, f64::max);
        let predicted_us = (most * (1.0 + MEMBER_SHARE * (members.len() - 1) as f64)) as u64;
        LaneWork::Batch(BatchRun { members, deadline, predicted_us })
    };
    if let Err(work) = lane.submit(work) {
        work.abandon(Reason::QueueFull);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::registry::Entry;
    use helix_math::KernelKind;

    fn kernel_version() -> Arc<Kernel> {
        let text = "name = \"primecount\"\nversion = \"1.0.0\"\nruntime = \"native\"\n\
                    [cost]\nfixed_us = 1.0\nper_unit_ns = 3.1\n";
        Arc::new(Kernel::new(Manifest::parse(text, "test").unwrap(), Entry::Native(KernelKind::PrimeCount)))
    }

    #[tokio::test]
    async fn a_batcher_goes_once_no_job_holds_its_kernel_version() {
        let batchers = Batchers::new(4, Arc::new(CpuLane::start(1, 4, 1.0, 1.0)));
        let (old, new) = (kernel_version(), kernel_version());
        let first = batchers.slot(&old);
        assert!(Arc::ptr_eq(&first, &batchers.slot(&old)), "one slot per version");
        let old_id = old.id;
        drop((first, old));
        batchers.slot(&new);
        let map = batchers.map.load();
        assert!(!map.contains_key(&old_id) && map.contains_key(&new.id), "{:?}", map.keys().collect::<Vec<_>>());
    }
}
