//! A kernel's batcher: collects jobs that can share work (same key), and closes a batch when it
//! is full or when its earliest member's delay runs out, whichever comes first. A closed batch
//! is one CPU-lane job.

use crate::execute::{BatchRun, LaneWork, Pending};
use crate::lanes::cpu::CpuLane;
use crate::policy::Reason;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::mpsc;

/// Which batch keys are open now: a lock-free hint the policy reads (a job joins an open batch
/// rather than waiting alone). Keys are non-zero hashes; a slot collision only costs a hint.
pub struct OpenKeys([AtomicU64; 256]);

impl Default for OpenKeys {
    fn default() -> Self {
        OpenKeys(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl OpenKeys {
    fn slot(&self, key: u64) -> &AtomicU64 {
        &self.0[(key ^ (key >> 32)) as usize % self.0.len()]
    }

    pub fn contains(&self, key: u64) -> bool {
        self.slot(key).load(Relaxed) == key
    }

    fn mark(&self, key: u64) {
        self.slot(key).store(key, Relaxed);
    }

    fn clear(&self, key: u64) {
        let _ = self.slot(key).compare_exchange(key, 0, Relaxed, Relaxed);
    }
}

pub struct Member {
    /// Jobs with equal keys share work.
    pub key: u64,
    /// The latest this member can wait for partners.
    pub close_by: Instant,
    pub pending: Pending,
}

pub struct Batcher {
    tx: mpsc::Sender<Member>,
    pub open: Arc<OpenKeys>,
}

struct Open {
    close_at: Instant,
    members: Vec<Pending>,
}

impl Batcher {
    pub fn start(max_size: usize, capacity: usize, lane: Arc<CpuLane>) -> Batcher {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let open = Arc::new(OpenKeys::default());
        tokio::spawn(batch_loop(rx, max_size.max(2), lane, open.clone()));
        Batcher { tx, open }
    }

    /// Hands a member to the batcher, or back if its queue is full.
    pub fn offer(&self, m: Member) -> Result<(), Box<Member>> {
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

fn close(mut members: Vec<Pending>, lane: &CpuLane) {
    let work = if members.len() == 1 {
        LaneWork::Job(Box::new(members.pop().expect("one member")))
    } else {
        let deadline = members.iter().map(|m| m.deadline).min().expect("members");
        let most = members.iter().map(|m| m.decision.predicted_cost_us).fold(0.0, f64::max);
        // Shared paths dominate; each extra member adds its payoff or quantile work.
        let predicted_us = (most * (1.0 + 0.1 * (members.len() - 1) as f64)) as u64;
        LaneWork::Batch(BatchRun { members, deadline, predicted_us })
    };
    if let Err(work) = lane.submit(work) {
        work.abandon(Reason::QueueFull);
    }
}
