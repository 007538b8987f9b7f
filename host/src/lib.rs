//! HelixRouter's host: the router library behind the `helix` binary. A job names a kernel, its
//! parameters and a latency budget; the router decides how it runs (inline, as a task, in the
//! CPU lane, batched, split, degraded or dropped) and says why.

pub mod admission;
pub mod bench;
pub mod config;
pub mod execute;
pub mod job;
pub mod lanes;
pub mod load;
pub mod machine;
pub mod manifest;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod quarantine;
pub mod registry;
pub mod reload;
pub mod request;
pub mod router;
pub mod serve;
pub mod soak;
pub mod upload;
pub mod wasm;

pub use config::RouterConfig;
pub use job::{ClassicJob, Criticality, Job, Runtime};
pub use outcome::{Outcome, Status};
pub use router::{Router, Snapshot};
