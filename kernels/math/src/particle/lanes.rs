//! An island's particles over vector lanes: each observation's propagation, weighting and
//! normalisation run `ROW` particles an operation, and the island's sums (weight total,
//! filtered mean, squared weights) go into `ROW` fixed slots, added in slot order at the end
//! of each pass, so the results are the same bits at every width, under every instruction set
//! and in Wasm. The normals come first, at the `Simd`'s width (`Simd::normals_from_words`),
//! one word per particle in particle order.

use crate::vmath::{self, F64s, LaneKernel, Mask};

/// Particles a row; arrays are padded to whole rows.
pub(super) const ROW: usize = 16;

/// Slot values added in slot order.
#[inline(always)]
fn total(slots: F64s<ROW>) -> f64 {
    slots.0.iter().fold(0.0, |acc, x| acc + x)
}

/// Propagates every particle (`x <- a x + q z`) and computes its log weight increment
/// `g = -(y - x)^2 / (2 r^2)`; returns the largest. Padding lanes (past `particles`) get
/// `g = -inf`, so they weigh nothing.
pub(super) struct Propagate<'a> {
    pub a: f64,
    pub q: f64,
    pub y: f64,
    pub inv_r2: f64,
    pub particles: usize,
    pub z: &'a [[f64; ROW]],
    pub x: &'a mut [[f64; ROW]],
    pub g: &'a mut [[f64; ROW]],
}

impl LaneKernel for Propagate<'_> {
    type Output = f64;

    #[inline(always)]
    fn run<const N: usize>(self) -> f64 {
        let neg_inf = F64s::splat(f64::NEG_INFINITY);
        let mut gmax = neg_inf;
        for (r, ((x, g), z)) in self.x.iter_mut().zip(self.g.iter_mut()).zip(self.z).enumerate() {
            let next = self.a * F64s(*x) + self.q * F64s(*z);
            let e = self.y - next;
            let mut gi = -0.5 * e * e * self.inv_r2;
            if (r + 1) * ROW > self.particles {
                gi = in_row(r, self.particles).select(gi, neg_inf);
            }
            gmax = gi.gt(gmax).select(gi, gmax);
            (*x, *g) = (next.0, gi.0);
        }
        // Max is exact, so any order gives the same; NaN never arises from finite inputs.
        gmax.0.iter().fold(f64::NEG_INFINITY, |m, &g| if g > m { g } else { m })
    }
}

/// The lanes of row `r` that hold one of the island's `particles`.
#[inline(always)]
fn in_row(r: usize, particles: usize) -> Mask<ROW> {
    Mask::first(particles.saturating_sub(r * ROW))
}

/// `w <- w exp(g - gmax)`; returns the sum of the new weights.
pub(super) struct Reweight<'a> {
    pub gmax: f64,
    pub g: &'a [[f64; ROW]],
    pub w: &'a mut [[f64; ROW]],
}

impl LaneKernel for Reweight<'_> {
    type Output = f64;

    #[inline(always)]
    fn run<const N: usize>(self) -> f64 {
        let mut sum = F64s::<ROW>::splat(0.0);
        for (w, g) in self.w.iter_mut().zip(self.g) {
            let next = F64s(*w) * vmath::exp(F64s(*g) - self.gmax);
            sum = sum + next;
            *w = next.0;
        }
        total(sum)
    }
}

/// `w <- w / s`; returns the filtered mean `sum w x` and `sum w^2`.
pub(super) struct Normalise<'a> {
    pub s: f64,
    pub x: &'a [[f64; ROW]],
    pub w: &'a mut [[f64; ROW]],
}

impl LaneKernel for Normalise<'_> {
    type Output = (f64, f64);

    #[inline(always)]
    fn run<const N: usize>(self) -> (f64, f64) {
        let (mut mean, mut sum_sq) = (F64s::<ROW>::splat(0.0), F64s::<ROW>::splat(0.0));
        for (w, x) in self.w.iter_mut().zip(self.x) {
            let next = F64s(*w) / self.s;
            mean = mean + next * F64s(*x);
            sum_sq = sum_sq + next * next;
            *w = next.0;
        }
        (total(mean), total(sum_sq))
    }
}
