//! Randomised quasi-Monte Carlo: a Sobol sequence with hash-based Owen scrambling.
//!
//! [`Sobol`] gives the unscrambled points as 32-bit integers (coordinate `x` stands for
//! `x / 2^32`), from Joe and Kuo's new-joe-kuo-6.21201 direction numbers, the set scipy uses.
//! A randomisation scrambles each coordinate with [`owen_scramble`] under its own seed from
//! [`scramble_seed`], then [`to_unit`] (or [`to_unit_fine`]) maps it into (0, 1):
//!
//! ```
//! use helix_math::qmc::{Sobol, owen_scramble, scramble_seed, to_unit};
//!
//! // Randomisation 0 of job 42: points 0..8 in 3 dimensions, one scramble seed a coordinate.
//! let sobol = Sobol::new(3).unwrap();
//! let seeds: Vec<u32> = (0..3).map(|d| scramble_seed(42, 0, d)).collect();
//! let mut x = [0u32; 3];
//! sobol.point(0, &mut x); // a block may start at any index
//! for index in 0..8 {
//!     let u: Vec<f64> = x.iter().zip(&seeds).map(|(&x, &seed)| to_unit(owen_scramble(x, seed))).collect();
//!     assert!(u.iter().all(|&u| 0.0 < u && u < 1.0));
//!     if index < 7 {
//!         sobol.next_from(index, &mut x);
//!     }
//! }
//! ```
//!
//! Every aligned block of `2^m` points (indices `k 2^m .. (k+1) 2^m`) is a `(t, m, s)`-net in
//! base 2 and stays one under the scramble, which permutes each coordinate's dyadic intervals
//! level by level. Independent randomisations of the same points give independent, unbiased
//! estimates whose spread is the estimator's standard error.

mod directions;
mod scramble;
mod sobol;

pub use scramble::{owen_scramble, scramble_seed, to_unit, to_unit_fine};
pub use sobol::Sobol;

/// The most dimensions [`Sobol`] has direction numbers for.
pub const MAX_DIMENSIONS: usize = 1024;
