//! `mc-var`'s paths over vector lanes: a block's paths in rows of `ROW`, one lane each, so the
//! factor normals, the Cholesky product and each position's repricing are one vector operation
//! for the whole row.
//!
//! A row's words come asset by asset: word `16 i + l` of the row is asset `i`'s normal for lane
//! `l`'s path, so path `p` of a block always draws the same words, whatever the block's path
//! count (the prefix property). The normals come first, at the `Simd`'s width
//! (`Simd::normals_from_words`); the rest runs at the row's 16 lanes, each lane doing the
//! scalar code's operations in its order, so the losses are the same bits at every width,
//! under every instruction set and in Wasm.

use super::{VarBook, VarMode};
use crate::rng::{BlockStream, Normals};
use crate::vmath::{self, F64s, LaneKernel, Simd};

/// Paths a row.
const ROW: usize = 16;

/// A row's words, normals and correlated normals, allocated once a run.
pub(super) struct Scratch {
    words: Vec<u64>,
    z: Vec<[f64; ROW]>,
    y: Vec<[f64; ROW]>,
}

impl Scratch {
    pub(super) fn new(assets: usize) -> Scratch {
        Scratch { words: vec![0; assets * ROW], z: vec![[0.0; ROW]; assets], y: vec![[0.0; ROW]; assets] }
    }
}

/// A block's `n` paths: each scenario's losses and (importance sampling, `shift` = the mean
/// shift and half its squared length) each path's likelihood ratio, appended in path order.
#[allow(clippy::too_many_arguments)]
pub(super) fn block(
    book: &VarBook,
    shift: Option<(&[f64], f64)>,
    simd: Simd,
    scratch: &mut Scratch,
    normals: &mut Normals<BlockStream>,
    n: usize,
    losses: &mut [Vec<f64>],
    weights: &mut Vec<f64>,
) {
    for first in (0..n).step_by(ROW) {
        normals.fill_words(&mut scratch.words);
        let z = scratch.z.as_flattened_mut();
        simd.normals_from_words(&scratch.words, z).expect("as many normals as words");
        let paths = (n - first).min(ROW);
        simd.run(RowPaths { book, shift, z: &mut scratch.z, y: &mut scratch.y, paths, losses, weights });
    }
}

/// One row's paths, `paths` of its lanes kept.
struct RowPaths<'a> {
    book: &'a VarBook,
    shift: Option<(&'a [f64], f64)>,
    z: &'a mut [[f64; ROW]],
    y: &'a mut [[f64; ROW]],
    paths: usize,
    losses: &'a mut [Vec<f64>],
    weights: &'a mut Vec<f64>,
}

impl LaneKernel for RowPaths<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const N: usize>(self) {
        let book = self.book;
        let d = book.assets();
        if let Some((mu, half_shift_sq)) = self.shift {
            // `rng::shift_normals`, lane-wise.
            let mut dot = F64s::<ROW>::splat(0.0);
            for (z, &m) in self.z.iter_mut().zip(mu) {
                dot = dot + m * F64s(*z);
                *z = (F64s(*z) + m).0;
            }
            let weight = vmath::exp(-dot - half_shift_sq);
            self.weights.extend_from_slice(&weight.0[..self.paths]);
        }
        // `linalg::lower_mul`, lane-wise: row `i` of the factor times the normals, in order.
        for (i, y) in self.y.iter_mut().enumerate() {
            let row = &book.chol[i * d..i * d + i + 1];
            let mut sum = F64s::<ROW>::splat(0.0);
            for (&l, z) in row.iter().zip(self.z.iter()) {
                sum = sum + l * F64s(*z);
            }
            *y = sum.0;
        }
        let positions = &book.portfolio.positions;
        for (s, out) in book.scenarios.iter().zip(self.losses.iter_mut()) {
            let (drift, scale) = book.coeffs[s.coeff_offset..s.coeff_offset + 2 * d].split_at(d);
            let mut pnl = F64s::<ROW>::splat(0.0);
            let terms = positions.iter().zip(drift).zip(scale).zip(self.y.iter());
            match s.mode {
                VarMode::Full => {
                    for (((&p, &mu), &sigma), y) in terms {
                        pnl = pnl + p * (vmath::exp(mu + sigma * F64s(*y)) - 1.0);
                    }
                }
                VarMode::Linear => {
                    for (((&p, &mu), &sigma), y) in terms {
                        pnl = pnl + p * (mu + sigma * F64s(*y));
                    }
                }
            }
            out.extend_from_slice(&(-pnl).0[..self.paths]);
        }
    }
}
