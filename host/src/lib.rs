//! HelixRouter's host: the router library behind the `helix` binary. A job names a kernel, its
//! parameters and a latency budget; the router decides how it runs (inline, as a task, in the
//! CPU lane, batched, split, degraded or dropped) and says why.
//!
//! Start from [`Router`]: build it from a manifests folder, [`submit`](Router::submit) a
//! [`Job`], and read its [`Outcome`] (the answer, the [`Decision`] behind it, the timings).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use helix_host::{Job, Router, RouterConfig, Status};
//! use helix_math::{Params, Value};
//! use std::time::Duration;
//!
//! let router = Router::from_dir(RouterConfig::default(), "manifests".as_ref())?;
//! let params = Params::new().with("compute_cost", Value::Number(5_000.0));
//! let outcome = router.submit(Job::new(1, "primecount", params, Duration::from_millis(20))).await;
//! assert!(matches!(outcome.status, Status::Completed | Status::Degraded | Status::Dropped));
//! println!("{} because {}", outcome.status.as_str(), outcome.decision.unwrap().reason.as_str());
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! A module uses only modules of earlier layers in this list, so the import graph has no cycle;
//! each module's first doc line names its layer, and `host/tests/layers.rs` holds the code to
//! both:
//!
//! 1. `job`, `machine`, `quarantine`, `wasm`: the job, `/proc`, a kernel's quarantine, the sandbox;
//! 2. `manifest`, `policy`, `request`: the kernel contract, the pure decision, the JSON job;
//! 3. `outcome`, `config`, `admission`, `precision`: what a job ends as, the settings, checking
//!    a job, sizing an error-targeted one;
//! 4. `metrics`: what the router counts, and the guards that keep paired counters balanced;
//! 5. `registry`: the map of kernels serving now;
//! 6. `execute`, `catalog`: running one decided piece of work; building kernels from
//!    manifests, reloading the folder and installing uploads;
//! 7. `lanes`: the CPU lane (earliest deadline first, under the semaphore) and the batchers;
//! 8. `router`: the submit pipeline;
//! 9. `serve`, `load`, `bench`: the HTTP service, the load generator, the kernel benchmark;
//! 10. `replica`: one `helix serve` as a child process, and an HTTP client for it;
//! 11. `fleet`: replicas behind a real nginx;
//! 12. `soak`: the soak under attack, of one replica or a fleet;
//! 13. `cli`: the `helix` binary's command line.

#![warn(missing_docs)]

pub mod admission;
pub mod bench;
pub mod catalog;
mod config;
mod execute;
pub mod fleet;
mod job;
mod lanes;
pub mod load;
pub mod machine;
pub mod manifest;
mod metrics;
mod outcome;
mod policy;
mod precision;
mod quarantine;
pub mod registry;
pub mod replica;
mod request;
mod router;
pub mod serve;
pub mod soak;
pub mod wasm;

pub use catalog::LoadError;
pub use config::RouterConfig;
pub use job::{ClassicJob, ClassicKind, Criticality, ErrorTarget, Job, Runtime, Tolerance};
pub use metrics::Percentiles;
pub use outcome::{ErrorKind, JobError, Outcome, Status, Timings, render_text};
pub use policy::{Admission, Decision, PolicyConfig, Pressure, Reason, Strategy};
pub use quarantine::QuarantineConfig;
pub use request::{JobRequest, ParamValue, RequestError, TargetRequest};
pub use router::{CountSnapshot, KernelSnapshot, Ration, Router, Snapshot};
