//! `ewma-cov`: RiskMetrics-style exponentially weighted covariance of a window of returns
//! (zero mean, weights `lambda^age` normalised to one), with its Cholesky factor and the vols:
//! the feature transform that turns a return history into the inputs of `mc-var`.
//!
//! Units are rows of history, newest first, so a run with fewer units uses the most recent rows
//! and its error against the full window is bounded by the dropped weight `lambda^units`.

use crate::chunk::{self, Partial};
use crate::error::{KernelError, Result, all_finite};
use crate::linalg::cholesky;
use crate::output::{Estimate, Output};
use std::ops::Range;

/// Rows per block: small, because a row costs only d(d+1)/2 multiply-adds.
pub const ROWS_PER_BLOCK: u64 = 64;
/// Most assets accepted.
pub const MAX_ASSETS: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub struct ReturnWindow {
    /// T×d row-major, oldest row first.
    pub returns: Vec<f64>,
    pub assets: usize,
    pub lambda: f64,
}

impl ReturnWindow {
    pub fn validate(&self) -> Result<()> {
        self.check_shape()?;
        all_finite("returns", &self.returns)
    }

    /// Everything but the values: sizes and `lambda`.
    fn check_shape(&self) -> Result<()> {
        if self.assets == 0 || self.assets > MAX_ASSETS {
            return Err(KernelError::invalid("assets", format!("must be in 1..={MAX_ASSETS}, got {}", self.assets)));
        }
        if self.returns.is_empty() || !self.returns.len().is_multiple_of(self.assets) {
            return Err(KernelError::invalid(
                "returns",
                format!("needs a positive multiple of assets = {} values, got {}", self.assets, self.returns.len()),
            ));
        }
        if !(self.lambda > 0.0 && self.lambda < 1.0) {
            return Err(KernelError::invalid("lambda", format!("must be in (0, 1), got {}", self.lambda)));
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        (self.returns.len() / self.assets) as u64
    }
}

/// Per block: the weight sum, then the weighted cross-products of the lower triangle.
pub type EwmaPartial = Partial<Vec<f64>>;

/// Accumulates the rows of ages `units` (0 = newest; block-aligned start). Only the window's
/// shape is checked here: its values were checked once when it was parsed (`validate`).
pub fn simulate(w: &ReturnWindow, units: Range<u64>) -> Result<EwmaPartial> {
    let mut blocks = Vec::new();
    each_block(w, &units, |sums| blocks.push(sums.to_vec()))?;
    Ok(Partial { units, blocks })
}

/// Calls `f` with the sums of each block of `units`, in order (one buffer, rewritten per block).
fn each_block(w: &ReturnWindow, units: &Range<u64>, mut f: impl FnMut(&[f64])) -> Result<()> {
    w.check_shape()?;
    if units.end > w.rows() {
        return Err(KernelError::invalid("rows", format!("asks for {} rows of a {}-row window", units.end, w.rows())));
    }
    let d = w.assets;
    let rows = w.rows();
    let mut sums = BlockSums::new(d, w.lambda, units.end.saturating_sub(units.start));
    let mut acc = vec![0.0; sums_len(d)];
    for (b, n) in chunk::blocks(units, ROWS_PER_BLOCK)? {
        let first = b * ROWS_PER_BLOCK;
        // The window is stored oldest first: ages first..first + n are these rows, reversed.
        sums.block(
            first,
            &w.returns[((rows - first - n) * d as u64) as usize..((rows - first) * d as u64) as usize],
            &mut acc,
        );
        f(&acc);
    }
    Ok(())
}

/// Lanes per packed group of columns: four doubles, two SIMD registers.
const LANES: usize = 4;
const BLOCK_ROWS: usize = ROWS_PER_BLOCK as usize;

/// One block's sums, computed column-wise. The block's rows are packed as `[f64; 4]` groups of
/// four columns (group q holds columns 4q..4q + 4 for each age, zero past the last asset), so
/// each group of four sums is one contiguous walk down the block, with no bounds checks and two
/// SIMD multiply-adds per age, natively and in Wasm (see [`group_sums`]). Row by
/// row, a row's few products per triangle row made loops of 1 to `d` steps, each step paying a
/// loop's checks (in Wasm, fuel and interruption too). Every sum still adds its terms
/// `(weight * r_i) * r_j` in age order, so the bits are those of the row-by-row loop.
struct BlockSums {
    d: usize,
    lambda: f64,
    /// `lambda^k` for k in 0..64 (or fewer): a block's weights are its first's times these.
    powers: Vec<f64>,
    weights: Vec<f64>,
    /// Group q, age a at `q * BLOCK_ROWS + a`.
    packed: Vec<[f64; LANES]>,
}

impl BlockSums {
    /// For blocks of at most `longest` rows.
    fn new(d: usize, lambda: f64, longest: u64) -> Self {
        BlockSums {
            d,
            lambda,
            powers: (0..longest.min(ROWS_PER_BLOCK)).map(|k| libm::pow(lambda, k as f64)).collect(),
            weights: vec![0.0; BLOCK_ROWS],
            packed: vec![[0.0; LANES]; d.div_ceil(LANES) * BLOCK_ROWS],
        }
    }

    /// The weight sum and the triangle's sums (laid out as [`sums_len`] says) of a block of
    /// rows (stored oldest first), the newest of age `first`.
    #[inline(never)]
    fn block(&mut self, first: u64, block: &[f64], acc: &mut [f64]) {
        let d = self.d;
        let n = block.len() / d;
        // Two `pow`s a block, not one a row (which was 3/4 of the kernel's time): the weight of
        // age first + k is lambda^first * lambda^k, within 2 ulp of lambda^(first + k), and
        // the same whatever the chunking, since blocks start at multiples of 64.
        let base = libm::pow(self.lambda, first as f64);
        for (w, power) in self.weights[..n].iter_mut().zip(&self.powers) {
            *w = base * power;
        }
        for (q, packed) in self.packed.as_chunks_mut::<BLOCK_ROWS>().0.iter_mut().enumerate() {
            pack(&mut packed[..n], block, d, q * LANES);
        }
        let weights = &self.weights[..n];
        let Some((sum, triangle)) = acc.split_first_mut() else { return };
        *sum = weights.iter().fold(0.0, |s, w| s + w);
        let mut rows = triangle.as_chunks_mut::<LANES>().0;
        for i in 0..d {
            // Sums (i, j) for j in 0..=i, up to twelve at a time, each group's written whole
            // (a store of two SIMD registers, where a copy of its first few lanes would be a
            // call out of Wasm); the last group's extra lanes are computed and never read.
            let group = |q: usize| &self.packed[q * BLOCK_ROWS..][..n];
            let (ri, lane, groups) = (group(i / LANES), i % LANES, i / LANES + 1);
            let (mut row, rest) = std::mem::take(&mut rows).split_at_mut(groups);
            rows = rest;
            let mut q = 0;
            while let Some(out) = row.first_chunk_mut::<3>() {
                *out = group_sums(weights, ri, lane, [group(q), group(q + 1), group(q + 2)]);
                (row, q) = (&mut row[3..], q + 3);
            }
            match row {
                [one] => [*one] = group_sums(weights, ri, lane, [group(q)]),
                [one, two] => [*one, *two] = group_sums(weights, ri, lane, [group(q), group(q + 1)]),
                _ => {}
            }
        }
    }
}

/// Length of a block's sums: the weight sum, then each row of the triangle padded as
/// [`padded_row`] says.
fn sums_len(d: usize) -> usize {
    1 + (0..d).map(padded_row).sum::<usize>()
}

/// Values kept for row i of the triangle: its sums (i, 0..=i), padded to whole groups of four.
fn padded_row(i: usize) -> usize {
    (i / LANES + 1) * LANES
}

/// Row i of the triangle's sums, (i, j) for j in 0..=i, from the padded layout of [`sums_len`].
fn triangle_rows(d: usize, sums: &[f64]) -> impl Iterator<Item = &[f64]> {
    let mut at = 1;
    (0..d).map(move |i| {
        let row = &sums[at..at + i + 1];
        at += padded_row(i);
        row
    })
}

/// Columns `first..first + 4` (those that exist) of each row of `block`, newest row first.
#[inline(never)]
fn pack(out: &mut [[f64; LANES]], block: &[f64], d: usize, first: usize) {
    if first + LANES <= d {
        for (out, row) in out.iter_mut().zip(block.rchunks_exact(d)) {
            if let Some(group) = row[first..].first_chunk::<LANES>() {
                *out = *group;
            }
        }
    } else {
        // Lane by lane, not a copy of the row's tail: in Wasm a copy of a few values is a call
        // out to the host's `memmove`.
        for (out, row) in out.iter_mut().zip(block.rchunks_exact(d)) {
            *out = std::array::from_fn(|l| row.get(first + l).copied().unwrap_or(0.0));
        }
    }
}

/// For each of the `G` groups `r`: `sum((w[a] * ri[a][lane]) * r[a][l])` per lane l, adding in
/// order of age a. Not inlined, up to three groups and four ages a step: in Wasm, cranelift
/// keeps the sums on the stack across each step of a loop with fuel and interruption checks
/// (their slow paths are calls), so a step's cost is mostly fixed; and the groups' sums are
/// independent chains of adds, which keeps the adder busy natively too.
#[inline(never)]
fn group_sums<const G: usize>(
    w: &[f64],
    ri: &[[f64; LANES]],
    lane: usize,
    r: [&[[f64; LANES]]; G],
) -> [[f64; LANES]; G] {
    let n = w.len();
    let (ri, r, lane) = (&ri[..n], r.map(|r| &r[..n]), lane % LANES);
    let mut s = [[0.0; LANES]; G];
    let step = |s: &mut [[f64; LANES]; G], a: usize| {
        let x = w[a] * ri[a][lane];
        for (s, r) in s.iter_mut().zip(&r) {
            for (s, &rj) in s.iter_mut().zip(&r[a]) {
                *s += x * rj;
            }
        }
    };
    let mut a = 0;
    while a + 4 <= n {
        for k in a..a + 4 {
            step(&mut s, k);
        }
        a += 4;
    }
    for k in a..n {
        step(&mut s, k);
    }
    s
}

/// Normalises the weighted sums into the covariance, its Cholesky factor and the vols.
pub fn finish(w: &ReturnWindow, partial: &EwmaPartial) -> Result<Output> {
    let first = partial.blocks.first().ok_or_else(|| KernelError::invalid("rows", "must be at least 1"))?;
    let mut total = vec![0.0; first.len()];
    for b in &partial.blocks {
        add(&mut total, b);
    }
    normalise(w, &total, partial.len())
}

/// Adds a block's sums into the total: the one order of addition, whether blocks were kept
/// (`finish`) or added as they came (`run`).
fn add(total: &mut [f64], block: &[f64]) {
    total.iter_mut().zip(block).for_each(|(t, x)| *t += x);
}

/// The covariance, its Cholesky factor and the vols from the total sums of `rows` rows.
fn normalise(w: &ReturnWindow, total: &[f64], rows: u64) -> Result<Output> {
    let d = w.assets;
    let mut cov = vec![0.0; d * d];
    for (i, row) in triangle_rows(d, total).enumerate() {
        for (j, sum) in row.iter().enumerate() {
            cov[i * d + j] = sum / total[0];
            cov[j * d + i] = cov[i * d + j];
        }
    }
    let vols: Vec<f64> = (0..d).map(|i| cov[i * d + i].sqrt()).collect();
    let chol = cholesky(&cov, d, "returns").map_err(|_| {
        KernelError::NumericFailure(format!(
            "covariance of {rows} rows is not positive definite (needs at least {d} independent rows)"
        ))
    })?;
    Ok(Output {
        estimates: vec![("weight_used", Estimate::exact(1.0 - libm::pow(w.lambda, rows as f64)))],
        arrays: vec![("covariance", cov), ("cholesky", chol), ("vols", vols)],
        units_done: rows,
    })
}

/// Uses the `rows` most recent rows in one call.
pub fn run(w: &ReturnWindow, rows: u64) -> Result<Output> {
    w.validate()?;
    run_parsed(w, rows)
}

/// [`run`] for a window whose values were checked when it was parsed. Each block's sums are
/// added into the total as they come, in the order `finish` adds them (so the same bits),
/// instead of being kept: for 50 assets and 1000 rows that is 160 KB a job does not allocate,
/// which in Wasm is 40 pages a fresh instance does not fault in.
pub(crate) fn run_parsed(w: &ReturnWindow, rows: u64) -> Result<Output> {
    if rows == 0 {
        return Err(KernelError::invalid("rows", "must be at least 1"));
    }
    // Sized at the first block, once `each_block` has checked the window's shape.
    let mut total = Vec::new();
    each_block(w, &(0..rows), |sums| {
        if total.is_empty() {
            total = vec![0.0; sums.len()];
        }
        add(&mut total, sums);
    })?;
    normalise(w, &total, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain loop the packed one replaces: row by row, newest first, each sum adding
    /// `(weight * r_i) * r_j` in age order.
    fn row_by_row(w: &ReturnWindow, units: Range<u64>) -> Vec<Vec<f64>> {
        let d = w.assets;
        chunk::blocks(&units, ROWS_PER_BLOCK)
            .unwrap()
            .map(|(b, n)| {
                let first = b * ROWS_PER_BLOCK;
                let mut acc = vec![0.0; 1 + d * (d + 1) / 2];
                for age in first..first + n {
                    let weight = libm::pow(w.lambda, first as f64) * libm::pow(w.lambda, (age - first) as f64);
                    let row = &w.returns[((w.rows() - 1 - age) as usize) * d..][..d];
                    acc[0] += weight;
                    let mut k = 1;
                    for i in 0..d {
                        for j in 0..=i {
                            acc[k] += weight * row[i] * row[j];
                            k += 1;
                        }
                    }
                }
                acc
            })
            .collect()
    }

    #[test]
    fn the_packed_sums_are_bit_identical_to_a_plain_row_by_row_loop() {
        for d in [1, 2, 3, 4, 5, 7, 8, 9, 13, 33] {
            for t in [1, 5, 63, 64, 65, 130, 300] {
                if t < d {
                    continue;
                }
                let returns = (0..t * d).map(|k| 0.01 * (((k * 7919 + d) % 1013) as f64 / 506.0 - 1.0)).collect();
                let w = ReturnWindow { returns, assets: d, lambda: 0.97 };
                let t = t as u64;
                for units in [0..t, 0..t / 2 + 1, (t / 64) * 64..t] {
                    let got = simulate(&w, units.clone()).unwrap().blocks;
                    let want = row_by_row(&w, units.clone());
                    let lower = |sums: &Vec<f64>| {
                        let rows = triangle_rows(d, sums).flatten().copied();
                        std::iter::once(sums[0]).chain(rows).map(f64::to_bits).collect::<Vec<_>>()
                    };
                    let same = got.len() == want.len()
                        && got
                            .iter()
                            .map(lower)
                            .eq(want.iter().map(|b| b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
                    assert!(same, "d = {d}, rows {units:?}");
                }
            }
        }
    }
}
