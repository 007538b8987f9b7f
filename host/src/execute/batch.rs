//! A batch: several jobs answered by one run on shared work (one combined book natively, one
//! `run-batch` call in Wasm).

use super::{Pending, guest::run_guest_batch, native::run_chunks};
use crate::admission::Work;
use crate::lanes::cpu::LaneState;
use crate::outcome::Status;
use crate::registry::Entry;
use helix_math::Prepared;
use std::sync::Arc;
use std::time::Instant;

/// Several jobs answered by one run on shared work.
pub struct BatchRun {
    pub members: Vec<Pending>,
    pub deadline: Instant,
    pub predicted_us: u64,
}

impl BatchRun {
    pub(super) fn run(self, lane: &LaneState) {
        let members = self.members;
        if matches!(members[0].kernel.entry, Entry::Wasm(_)) {
            let kernel = members[0].kernel.clone();
            let Entry::Wasm(guest) = &kernel.entry else { unreachable!("matched above") };
            return run_guest_batch(guest, members, self.predicted_us, lane);
        }
        let refs: Vec<&Prepared> = members
            .iter()
            .filter_map(|m| match &*m.work {
                Work::Native(p) => Some(p),
                Work::Wasm { .. } => None,
            })
            .collect();
        let combined = if refs.len() == members.len() { Prepared::combine(&refs) } else { None };
        let Some(combined) = combined else {
            // Members that turned out not to share work run one after another.
            for m in members {
                m.run_now(Vec::new(), Some(lane));
            }
            return;
        };
        let first = &members[0];
        let (seed, units, shared) = (first.seed, first.decision.units_granted, first.shared.clone());
        lane.running_work(self.predicted_us, true);
        let start = Instant::now();
        let result = run_chunks(&Arc::new(Work::Native(combined)), seed, units, Vec::new(), &shared);
        let service_us = start.elapsed().as_micros() as u64;
        lane.running_work(self.predicted_us, false);
        match result {
            Ok(outputs) => {
                for (m, out) in members.into_iter().zip(outputs) {
                    let mut o = m.outcome(Status::Completed);
                    o.set_output(out);
                    m.finish(o, Some(start), service_us);
                }
            }
            Err(e) => {
                for m in members {
                    let mut o = m.outcome(Status::Failed);
                    o.error = Some(e.clone());
                    m.finish(o, Some(start), service_us);
                }
            }
        }
    }
}
