//! The guest SDK: a HelixRouter Wasm kernel is a type implementing [`Kernel`], exported with
//! [`export_kernel!`], built with `cargo build --release --target wasm32-unknown-unknown` (a core
//! module, which the host makes a component at load; a `wasm32-wasip2` build works too).
//!
//! ```ignore
//! use helix_kernel_sdk::{Job, Kernel, export_kernel};
//! use helix_math::{Estimate, KernelError, Output};
//!
//! struct Doubler;
//!
//! impl Kernel for Doubler {
//!     fn run(job: Job) -> Result<Output, KernelError> {
//!         let x = job.params.number("x")?;
//!         Ok(Output { estimates: vec![("twice", Estimate::exact(2.0 * x))], arrays: vec![], units_done: 1 })
//!     }
//! }
//!
//! export_kernel!(Doubler);
//! ```
//!
//! Parameters arrive validated against the kernel's manifest (types, ranges, defaults filled);
//! the kernel checks the rules a manifest cannot express. `job.units` is the router's grant: a
//! degraded job gets fewer units than its parameters name, and must run exactly that many.

pub use helix_math::{Estimate, KernelError, Output, Params, Value};

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod heap;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "kernel",
        path: "../../wit",
        default_bindings_module: "helix_kernel_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
    });
}

use bindings::exports::helix::kernel::runner::Guest;
use bindings::helix::kernel::types as wit;

/// A job as the kernel sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub seed: u64,
    /// Units to run (the grant); `None`: as many as the parameters ask for.
    pub units: Option<u64>,
    pub params: Params,
}

/// What a kernel implements: `run`, and optionally `run_batch` to share work across jobs. Jobs
/// come by value, so a kernel can keep a large array parameter without copying it.
pub trait Kernel {
    fn run(job: Job) -> Result<Output, KernelError>;

    /// Answers several jobs in one instantiation; by default one after another.
    fn run_batch(jobs: Vec<Job>) -> Vec<Result<Output, KernelError>> {
        jobs.into_iter().map(Self::run).collect()
    }
}

/// Exports a [`Kernel`] as the component's `helix:kernel/runner@0.1.0`.
#[macro_export]
macro_rules! export_kernel {
    ($kernel:ident) => {
        $crate::bindings::export_bindings!($kernel with_types_in $crate::bindings);
    };
}

impl<K: Kernel> Guest for K {
    fn run(job: wit::Job) -> Result<wit::Output, wit::KernelError> {
        K::run(from_wit(job)).map(to_wit).map_err(error_to_wit)
    }

    fn run_batch(jobs: Vec<wit::Job>) -> Vec<Result<wit::Output, wit::KernelError>> {
        let jobs: Vec<Job> = jobs.into_iter().map(from_wit).collect();
        K::run_batch(jobs).into_iter().map(|r| r.map(to_wit).map_err(error_to_wit)).collect()
    }
}

fn from_wit(job: wit::Job) -> Job {
    let params = job
        .params
        .into_iter()
        .map(|p| {
            let v = match p.value {
                wit::Value::Scalar(x) => Value::Number(x),
                wit::Value::Array(a) => Value::Array(a),
                wit::Value::Choice(c) => Value::Text(c),
            };
            (p.name, v)
        })
        .collect();
    Job { seed: job.seed, units: job.units, params: Params(params) }
}

fn to_wit(out: Output) -> wit::Output {
    wit::Output {
        estimates: out
            .estimates
            .into_iter()
            .map(|(name, e)| wit::Estimate { name: name.to_string(), value: e.value, std_error: e.std_error })
            .collect(),
        arrays: out
            .arrays
            .into_iter()
            .map(|(name, values)| wit::NamedArray { name: name.to_string(), values })
            .collect(),
        units_done: out.units_done,
    }
}

fn error_to_wit(e: KernelError) -> wit::KernelError {
    match e {
        KernelError::InvalidInput { param, reason } => {
            wit::KernelError::InvalidInput(wit::InvalidInput { param: param.to_string(), reason })
        }
        KernelError::NumericFailure(why) => wit::KernelError::NumericFailure(why),
    }
}

/// The bundled kernels' guests: a kernel of `helix-math` by kind, sharing work across a batch
/// exactly as the native build does.
pub mod bundled {
    use super::Job;
    use helix_math::{KernelError, KernelKind, Output, Prepared};

    /// Runs one job of a bundled kernel for its granted units.
    pub fn run(kind: KernelKind, job: Job) -> Result<Output, KernelError> {
        let parsed = Prepared::parse(kind, job.params)?;
        first(parsed.prepared.run(job.seed, job.units.unwrap_or(parsed.units)))
    }

    /// Runs a batch: jobs whose books combine (same seed and units, shared underlying or
    /// portfolio) run once on shared work; the rest run alone.
    pub fn run_batch(kind: KernelKind, jobs: Vec<Job>) -> Vec<Result<Output, KernelError>> {
        let n = jobs.len();
        // Each job's book and its draws (seed, units).
        type Parsed = Result<(Prepared, (u64, u64)), KernelError>;
        let parsed: Vec<Parsed> = jobs
            .into_iter()
            .map(|j| Prepared::parse(kind, j.params).map(|p| (p.prepared, (j.seed, j.units.unwrap_or(p.units)))))
            .collect();
        let draws: Vec<Option<(u64, u64)>> = parsed.iter().map(|p| p.as_ref().ok().map(|(_, d)| *d)).collect();
        let same_draws = draws.first().is_some_and(|f| f.is_some() && draws.iter().all(|d| d == f));
        if same_draws {
            let refs: Vec<&Prepared> = parsed.iter().map(|p| &p.as_ref().expect("checked").0).collect();
            if let Some(combined) = Prepared::combine(&refs) {
                let (seed, units) = draws[0].expect("checked");
                return match combined.run(seed, units) {
                    Ok(outs) => outs.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e); n],
                };
            }
        }
        parsed.into_iter().map(|p| p.and_then(|(prepared, (seed, units))| first(prepared.run(seed, units)))).collect()
    }

    /// A single job's output (a lone job's book has one).
    fn first(outs: Result<Vec<Output>, KernelError>) -> Result<Output, KernelError> {
        outs.map(|mut outs| outs.swap_remove(0))
    }

    /// Declares and exports a bundled kernel's guest.
    #[macro_export]
    macro_rules! bundled_kernel {
        ($name:ident, $kind:expr) => {
            struct $name;
            impl $crate::Kernel for $name {
                fn run(job: $crate::Job) -> Result<$crate::Output, $crate::KernelError> {
                    $crate::bundled::run($kind, job)
                }
                fn run_batch(jobs: Vec<$crate::Job>) -> Vec<Result<$crate::Output, $crate::KernelError>> {
                    $crate::bundled::run_batch($kind, jobs)
                }
            }
            $crate::export_kernel!($name);
        };
    }
}
