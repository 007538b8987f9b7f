//! HelixRouter's kernel math: deterministic Monte Carlo estimators shared, source for source,
//! by the native kernels and the Wasm guests.
//!
//! Every Monte Carlo kernel measures its work in *units* (paths, particles, rows) cut into fixed
//! blocks; block `i` always draws from ChaCha8 stream `i` of the job's seed and partial results
//! merge in block order. So a job's answer is bit-identical however its units are chunked or
//! threaded, and a run with fewer units is an exact prefix of the full run: the degrade knob.
//! Transcendental functions come from `libm` so native and wasm32 builds agree to the bit
//! (`vmath` computes them in vector lanes with `libm`'s bits).

// Numeric code indexes several arrays in step; index loops read better there.
#![allow(clippy::needless_range_loop)]

pub mod chunk;
pub mod classic;
pub mod error;
pub mod ewma;
pub mod job;
pub mod linalg;
pub mod moments;
pub mod option;
pub mod output;
pub mod params;
pub mod particle;
pub mod qmc;
pub mod rng;
pub mod select;
pub mod special;
pub mod var;
pub mod vmath;

pub use error::KernelError;
pub use job::{Chunk, KernelKind, Parsed, Prepared};
pub use output::{Estimate, Output};
pub use params::{Params, Value};
