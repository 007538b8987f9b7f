//! A contract's running sums over one block of vector paths, in `ROW` fixed accumulator
//! slots: sample `j` of a block (a path, or an antithetic pair) adds into slot `j % ROW`, in
//! order, and the slots are summed 0, 1, ..., ROW - 1 when the block ends. However many lanes
//! the code runs at, each slot sees the same additions in the same order, so a block's sums
//! are the same bits at every width, under every instruction set and in Wasm.

use super::Sums;
use crate::moments::BlockSums;
use crate::vmath::{F64s, Mask};

/// Samples a row: the slots per quantity.
pub(super) const ROW: usize = 16;
/// The lanes of a row that hold one of its `filled` samples.
#[inline(always)]
pub(super) fn filled(filled: usize) -> Mask<ROW> {
    Mask::first(filled)
}

/// Per slot: the sums of a sample's two quantities (payoff and delta, or payoff and control
/// variate), of their squares and product (for `BlockSums<2>`), and of its paying paths.
#[derive(Clone, Copy)]
pub(super) struct Slots {
    first: [f64; ROW],
    second: [f64; ROW],
    first_sq: [f64; ROW],
    second_first: [f64; ROW],
    second_sq: [f64; ROW],
    paying: [f64; ROW],
}

impl Slots {
    pub(super) const ZERO: Slots = Slots {
        first: [0.0; ROW],
        second: [0.0; ROW],
        first_sq: [0.0; ROW],
        second_first: [0.0; ROW],
        second_sq: [0.0; ROW],
        paying: [0.0; ROW],
    };

    /// Adds a row of samples; `valid`: the lanes of a partial row that hold samples (the
    /// others add nothing).
    #[inline(always)]
    pub(super) fn add(&mut self, first: F64s<ROW>, second: F64s<ROW>, paying: F64s<ROW>, valid: Option<Mask<ROW>>) {
        let zero = F64s::splat(0.0);
        let (first, second, paying) = match valid {
            Some(valid) => (valid.select(first, zero), valid.select(second, zero), valid.select(paying, zero)),
            None => (first, second, paying),
        };
        accumulate(&mut self.first, first);
        accumulate(&mut self.second, second);
        accumulate(&mut self.first_sq, first * first);
        accumulate(&mut self.second_first, second * first);
        accumulate(&mut self.second_sq, second * second);
        accumulate(&mut self.paying, paying);
    }

    /// The block's sums over its `samples` samples: each quantity's slots in slot order.
    pub(super) fn finish(&self, samples: usize) -> Sums {
        let total = |slots: &[f64; ROW]| slots.iter().fold(0.0, |acc, x| acc + x);
        let moments = BlockSums::from_raw(
            samples as f64,
            [total(&self.first), total(&self.second)],
            [[total(&self.first_sq), 0.0], [total(&self.second_first), total(&self.second_sq)]],
        );
        Sums { moments, contributing: total(&self.paying) as u64, by_randomisation: Vec::new() }
    }
}

#[inline(always)]
fn accumulate(slots: &mut [f64; ROW], x: F64s<ROW>) {
    *slots = (F64s(*slots) + x).0;
}
