//! Work is cut into fixed blocks of units (paths, particles, rows). A chunk is a run of whole
//! blocks, except that the last block of a job may be short; partial results keep one entry per
//! block so they can be merged in block order whatever the chunking.

use crate::error::{KernelError, Result};
use std::ops::Range;

/// Units per block for every Monte Carlo kernel.
pub const BLOCK: u64 = 1024;

/// The blocks covering `units`, as (block index, units to run in it). `units.start` must be a
/// block boundary so that every block starts its stream from the beginning.
pub fn blocks(units: &Range<u64>, block: u64) -> Result<impl Iterator<Item = (u64, u64)>> {
    if !units.start.is_multiple_of(block) {
        return Err(KernelError::invalid("units", format!("chunk start {} is not a multiple of {block}", units.start)));
    }
    if units.end < units.start {
        return Err(KernelError::invalid("units", "chunk end before its start"));
    }
    let (start, end) = (units.start, units.end);
    Ok((start / block..end.div_ceil(block)).map(move |b| (b, (end - b * block).min(block))))
}

/// Per-block results of a contiguous run of units.
#[derive(Clone, Debug, PartialEq)]
pub struct Partial<B> {
    pub units: Range<u64>,
    pub blocks: Vec<B>,
}

impl<B> Partial<B> {
    /// Appends the chunk that follows this one.
    pub fn append(&mut self, next: Partial<B>) -> Result<()> {
        if next.units.start != self.units.end {
            return Err(KernelError::invalid(
                "units",
                format!("chunk {:?} does not follow {:?}", next.units, self.units),
            ));
        }
        self.units.end = next.units.end;
        self.blocks.extend(next.blocks);
        Ok(())
    }

    /// Joins chunks given in any order into one run.
    pub fn join(mut parts: Vec<Partial<B>>) -> Result<Partial<B>> {
        parts.sort_by_key(|p| p.units.start);
        let mut it = parts.into_iter();
        let mut all = it.next().ok_or_else(|| KernelError::invalid("units", "no chunks to join"))?;
        for p in it {
            all.append(p)?;
        }
        Ok(all)
    }

    pub fn len(&self) -> u64 {
        self.units.end - self.units.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `0..units` into `chunks` block-aligned ranges (for callers that parallelise a job).
pub fn split(units: u64, chunks: u64, block: u64) -> Vec<Range<u64>> {
    let nblocks = units.div_ceil(block).max(1);
    let chunks = chunks.clamp(1, nblocks);
    (0..chunks)
        .map(|c| {
            let lo = (nblocks * c / chunks) * block;
            let hi = ((nblocks * (c + 1) / chunks) * block).min(units);
            lo.min(units)..hi
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_units_with_a_short_last_block() {
        let b: Vec<_> = blocks(&(2048..5000), 1024).unwrap().collect();
        assert_eq!(b, vec![(2, 1024), (3, 1024), (4, 904)]);
        assert!(blocks(&(10..20), 1024).is_err());
    }

    #[test]
    fn split_is_block_aligned_and_covers_everything() {
        for units in [1u64, 1023, 1024, 1025, 10_000, 100_000] {
            for chunks in [1u64, 2, 3, 7, 200] {
                let r = split(units, chunks, 1024);
                assert_eq!(r.first().unwrap().start, 0);
                assert_eq!(r.last().unwrap().end, units);
                assert!(r.windows(2).all(|w| w[0].end == w[1].start && w[1].start % 1024 == 0));
            }
        }
    }
}
