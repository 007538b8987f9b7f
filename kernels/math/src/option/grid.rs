//! Path-dependent paths (Asian, barrier) over vector lanes: a block's paths walk their grid in
//! rows of `ROW` paths, one lane each, so a step is one vector operation for the whole row.
//!
//! A row's random words come step by step: word `16 k + l` of the row is step `k` of lane `l`'s
//! path, so path `p` of a block always draws the same words, whatever the block's path count
//! (the prefix property). Steps go in chunks: the chunk's normals first, at the `Simd`'s width
//! (`Simd::normals_from_words`), then the walk over them at the row's 16 lanes, whatever the
//! width; at the end of the row each contract's samples go into its fixed slots (`slots`).
//! Every lane does the scalar walk's operations in its order, so the bits are the same at every
//! width, under every instruction set and in Wasm.

use super::slots::{ROW, Slots, filled};
use super::{BarrierKind, Contract, OptionBook, OptionType, Style, Sums};
use crate::rng::{BlockStream, Normals};
use crate::vmath::{self, F64s, LaneKernel, Mask, Simd};

/// Steps a chunk: its words and normals fill 4 KB each.
const CHUNK_STEPS: usize = 32;
const CHUNK_WORDS: usize = CHUNK_STEPS * ROW;

/// A chunk's words and normals, allocated once a run.
pub(super) struct Scratch {
    words: Box<[u64; CHUNK_WORDS]>,
    normals: Box<[f64; CHUNK_WORDS]>,
}

impl Scratch {
    pub(super) fn new() -> Scratch {
        Scratch { words: Box::new([0; CHUNK_WORDS]), normals: Box::new([0.0; CHUNK_WORDS]) }
    }
}

/// The grid: per step `x += drift + sd * z` in log price, from `log_spot`.
#[derive(Clone, Copy)]
struct Walk {
    drift: f64,
    sd: f64,
    log_spot: f64,
    inv_steps: f64,
}

/// A row's paths so far: log price, its lowest and highest, the sums of prices and of log
/// prices, and (importance sampling) the dot product of the tilt with the normals.
#[derive(Clone, Copy)]
struct Row {
    x: F64s<ROW>,
    lo: F64s<ROW>,
    hi: F64s<ROW>,
    sum_s: F64s<ROW>,
    sum_x: F64s<ROW>,
    dot: F64s<ROW>,
}

/// A grid block; `tilt`: the step normals' shift and half its squared length, if tilted.
pub(super) fn grid_block(
    book: &OptionBook,
    tilt: Option<(&[f64], f64)>,
    simd: Simd,
    scratch: &mut Scratch,
    normals: &mut Normals<BlockStream>,
    n: u64,
    sums: &mut [Sums],
) {
    let m = &book.market;
    let dt = m.maturity / book.steps as f64;
    let walk = Walk {
        drift: (m.rate - m.dividend - 0.5 * m.vol * m.vol) * dt,
        sd: m.vol * dt.sqrt(),
        log_spot: libm::log(m.spot),
        inv_steps: 1.0 / book.steps as f64,
    };
    let average = book.contracts.iter().any(|c| c.style == Style::Asian);
    let log_levels = super::log_levels(book);
    let steps = book.steps as usize;
    let mut slots = vec![Slots::ZERO; book.contracts.len()];
    let n = n as usize;
    for first in (0..n).step_by(ROW) {
        let mut row = Row {
            x: F64s::splat(walk.log_spot),
            lo: F64s::splat(f64::INFINITY),
            hi: F64s::splat(f64::NEG_INFINITY),
            sum_s: F64s::splat(0.0),
            sum_x: F64s::splat(0.0),
            dot: F64s::splat(0.0),
        };
        for start in (0..steps).step_by(CHUNK_STEPS) {
            let chunk = (steps - start).min(CHUNK_STEPS);
            let (words, z) = (&mut scratch.words[..chunk * ROW], &mut scratch.normals[..chunk * ROW]);
            normals.fill_words(words);
            simd.normals_from_words(words, z).expect("as many normals as words");
            let shift = tilt.map(|(mu, _)| &mu[start..start + chunk]);
            let z = z.as_chunks::<ROW>().0;
            if average {
                simd.run(Steps::<true> { walk, z, shift, row: &mut row });
            } else {
                simd.run(Steps::<false> { walk, z, shift, row: &mut row });
            }
        }
        let rows = (n - first).min(ROW);
        let valid = (rows < ROW).then(|| filled(rows));
        let half_shift_sq = tilt.map(|(_, half)| half);
        simd.run(RowEnd {
            walk,
            row: &row,
            contracts: &book.contracts,
            log_levels: &log_levels,
            half_shift_sq,
            valid,
            slots: &mut slots,
        });
    }
    for (sum, slots) in sums.iter_mut().zip(&slots) {
        *sum = slots.finish(n);
    }
}

/// A chunk of steps of a row; `AVERAGE`: also sum the prices (Asian contracts), an `exp` a
/// step the other books do without.
struct Steps<'a, const AVERAGE: bool> {
    walk: Walk,
    z: &'a [[f64; ROW]],
    /// Importance sampling: the chunk's steps' shifts of the normals.
    shift: Option<&'a [f64]>,
    row: &'a mut Row,
}

impl<const AVERAGE: bool> LaneKernel for Steps<'_, AVERAGE> {
    type Output = ();

    #[inline(always)]
    fn run<const N: usize>(self) {
        let Walk { drift, sd, .. } = self.walk;
        let Row { mut x, mut lo, mut hi, mut sum_s, mut sum_x, mut dot } = *self.row;
        for (k, &zk) in self.z.iter().enumerate() {
            let mut zk = F64s(zk);
            if let Some(shift) = self.shift {
                // `rng::shift_normals`, lane-wise: the dot product with the drawn normal.
                dot = dot + shift[k] * zk;
                zk = zk + shift[k];
            }
            x = x + (drift + sd * zk);
            lo = x.lt(lo).select(x, lo);
            hi = x.gt(hi).select(x, hi);
            sum_x = sum_x + x;
            if AVERAGE {
                sum_s = sum_s + vmath::exp(x);
            }
        }
        *self.row = Row { x, lo, hi, sum_s, sum_x, dot };
    }
}

/// A finished row's samples into each contract's slots.
struct RowEnd<'a> {
    walk: Walk,
    row: &'a Row,
    contracts: &'a [Contract],
    log_levels: &'a [f64],
    /// Importance sampling: half the tilt's squared length (the weight's constant).
    half_shift_sq: Option<f64>,
    valid: Option<Mask<ROW>>,
    slots: &'a mut [Slots],
}

impl LaneKernel for RowEnd<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const N: usize>(self) {
        let row = self.row;
        let st = vmath::exp(row.x);
        let weight = self.half_shift_sq.map(|half| vmath::exp(-row.dot - half));
        let (mean_s, mean_x) = (row.sum_s * self.walk.inv_steps, row.sum_x * self.walk.inv_steps);
        let (zero, one) = (F64s::splat(0.0), F64s::splat(1.0));
        for ((c, slots), &log_level) in self.contracts.iter().zip(self.slots.iter_mut()).zip(self.log_levels) {
            let [first, second] = sample(c, log_level, st, row.lo, row.hi, mean_s, mean_x);
            let paying = first.gt(zero).select(one, zero);
            match weight {
                Some(w) => slots.add(w * first, w * second, paying, self.valid),
                None => slots.add(first, second, paying, self.valid),
            }
        }
    }
}

/// `super::grid_sample` over lanes: (payoff, geometric-average payoff) for an Asian option,
/// (payoff, 0) otherwise.
#[inline(always)]
fn sample(
    c: &Contract,
    log_level: f64,
    st: F64s<ROW>,
    lo: F64s<ROW>,
    hi: F64s<ROW>,
    mean_s: F64s<ROW>,
    mean_x: F64s<ROW>,
) -> [F64s<ROW>; 2] {
    let zero = F64s::splat(0.0);
    let vanilla = |s| vanilla(c.kind, c.strike, s);
    match c.style {
        Style::Asian => [vanilla(mean_s), vanilla(vmath::exp(mean_x))],
        Style::Barrier { kind, .. } => {
            let level = F64s::splat(log_level);
            let out = match kind {
                BarrierKind::DownOut => lo.le(level),
                BarrierKind::UpOut => hi.ge(level),
            };
            [out.select(zero, vanilla(st)), zero]
        }
        Style::European => [vanilla(st), zero],
    }
}

/// A vanilla payoff at `s`, `max(s - K, 0)` or `max(K - s, 0)`, as `select::positive_part`.
#[inline(always)]
fn vanilla(kind: OptionType, strike: f64, s: F64s<ROW>) -> F64s<ROW> {
    let zero = F64s::splat(0.0);
    let intrinsic = match kind {
        OptionType::Call => s - strike,
        OptionType::Put => strike - s,
    };
    intrinsic.gt(zero).select(intrinsic, zero)
}
