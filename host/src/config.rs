//! Layer 3: router configuration: lane sizes, queue cap and policy thresholds.

use crate::policy::PolicyConfig;
use crate::quarantine::QuarantineConfig;
use crate::wasm::WasmConfig;
use serde::{Deserialize, Serialize};

/// How the router runs: the `[router]` section of `helix serve`'s configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Heavy kernels running at once: the CPU lane's semaphore. Defaults to the core count.
    pub cpu_permits: usize,
    /// Jobs waiting for the CPU lane (batches count once); a full queue drops new heavy work.
    pub queue_capacity: usize,
    /// Jobs waiting to join a batch, per kernel.
    pub batch_queue_capacity: usize,
    /// Batch jobs that share work (off: every job runs alone).
    pub batching: bool,
    /// The policy's thresholds.
    pub policy: PolicyConfig,
    /// The Wasm engine's settings.
    pub wasm: WasmConfig,
    /// When a failing Wasm kernel is quarantined.
    pub quarantine: QuarantineConfig,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            cpu_permits: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_capacity: 256,
            batch_queue_capacity: 1024,
            batching: true,
            policy: PolicyConfig::default(),
            wasm: WasmConfig::default(),
            quarantine: QuarantineConfig::default(),
        }
    }
}
