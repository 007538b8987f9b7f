//! A batch: several jobs answered by one run on shared work (one combined book natively, one
//! `run-batch` call in Wasm).

use super::{Pending, guest::run_guest_batch, native::run_chunks};
use crate::admission::Work;
use crate::metrics::WorkGauge;
use crate::outcome::Status;
use crate::registry::Entry;
use helix_math::Prepared;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// Several jobs answered by one run on shared work.
pub(crate) struct BatchRun {
    pub(crate) members: Vec<Pending>,
    /// The tightest member's deadline: the batch runs to it.
    pub(crate) deadline: Instant,
    pub(crate) predicted_us: u64,
}

impl BatchRun {
    /// Runs the batch on this thread; its predicted cost counts in `running` while it runs.
    pub(crate) fn run(self, running: &WorkGauge) {
        let members = self.members;
        let kernel = members[0].kernel.clone();
        if let Entry::Wasm(guest) = &kernel.entry {
            return run_guest_batch(guest, members, self.predicted_us, running);
        }
        let refs: Vec<&Prepared> = members
            .iter()
            .filter_map(|m| match &*m.work {
                Work::Native(p) => Some(&**p),
                Work::Wasm { .. } => None,
            })
            .collect();
        let combined = if refs.len() == members.len() { Prepared::combine(&refs) } else { None };
        let Some(combined) = combined else {
            // Members that turned out not to share work run one after another.
            for m in members {
                m.run_now(Vec::new(), Some(running));
            }
            return;
        };
        let first = &members[0];
        let (seed, units, ctx) = (first.seed, first.decision.units_granted, first.ctx.clone());
        let held = running.hold(self.predicted_us);
        let start = Instant::now();
        let result = run_chunks(&Arc::new(Work::Native(Box::new(combined))), seed, units, Vec::new(), &ctx);
        let service_us = start.elapsed().as_micros() as u64;
        drop(held);
        let size = NonZeroU32::new(members.len() as u32);
        match result {
            Ok(outputs) => {
                for (m, out) in members.into_iter().zip(outputs) {
                    let mut o = m.outcome(Status::Completed);
                    o.set_output(out);
                    o.batch_size = size;
                    m.finish(o, Some(start), service_us);
                }
            }
            Err(e) => {
                for m in members {
                    let mut o = m.outcome(Status::Failed);
                    o.error = Some(e.clone());
                    o.batch_size = size;
                    m.finish(o, Some(start), service_us);
                }
            }
        }
    }
}
