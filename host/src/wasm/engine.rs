//! One engine for every Wasm kernel: deterministic floating point, fuel, epochs, pooling.

use std::sync::{Arc, Weak};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// Sandbox limits and engine switches.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WasmConfig {
    /// Linear memory one instance may use, in bytes.
    pub memory_cap_bytes: usize,
    /// Wasm stack an instance may use, in bytes (deep recursion traps past it).
    pub stack_bytes: usize,
    /// Instances alive at once (pool slots).
    pub pool_instances: u32,
    /// Meter fuel (the deterministic cost unit and the per-job work limit).
    pub fuel: bool,
    /// Canonicalise NaNs after every float operation, so even a NaN's bits are the same on
    /// every host. Measured cost: `libm::exp` in a guest takes 91 ns with it, 27 ns without.
    pub canonicalize_nans: bool,
    /// How often the epoch advances: the wall-clock backstop's resolution.
    pub epoch_tick_ms: u64,
    /// Past its budget, a guest gets this much longer before the epoch stops it.
    pub grace_ms: u64,
    /// Largest output a guest may return: estimates plus array values.
    pub max_output_values: usize,
    /// Where compiled components are cached (keyed by module hash and engine configuration);
    /// defaults to `helix-cache` in the system's temporary folder.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            memory_cap_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            pool_instances: 64,
            fuel: true,
            canonicalize_nans: true,
            epoch_tick_ms: 1,
            grace_ms: 20,
            max_output_values: 1 << 20,
            cache_dir: Some(std::env::temp_dir().join("helix-cache")),
        }
    }
}

pub struct WasmEngine {
    pub engine: Engine,
    pub config: WasmConfig,
}

impl WasmEngine {
    /// Builds the engine and starts its epoch ticker (a thread that ends with the engine).
    pub fn new(config: WasmConfig) -> Result<Arc<WasmEngine>, String> {
        let mut c = Config::new();
        c.consume_fuel(config.fuel)
            .epoch_interruption(true)
            .max_wasm_stack(config.stack_bytes)
            .cranelift_opt_level(OptLevel::Speed)
            // Same bits on every host: no nondeterministic relaxed-SIMD lowering, canonical NaNs.
            .relaxed_simd_deterministic(true)
            .cranelift_nan_canonicalization(config.canonicalize_nans)
            .parallel_compilation(false);
        let mut pool = PoolingAllocationConfig::default();
        let n = config.pool_instances.max(1);
        // A Rust component is a few core instances (the kernel plus import shims).
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .max_core_instances_per_component(16)
            .max_memories_per_component(2)
            .max_tables_per_component(8)
            .max_memory_size(config.memory_cap_bytes);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&c).map_err(|e| format!("cannot build the Wasm engine: {e}"))?;
        let wasm = Arc::new(WasmEngine { engine, config });
        start_ticker(Arc::downgrade(&wasm));
        Ok(wasm)
    }

    /// Epoch ticks covering `ms` milliseconds plus the grace period.
    pub fn ticks_for(&self, ms: u64) -> u64 {
        (ms + self.config.grace_ms).div_ceil(self.config.epoch_tick_ms.max(1)).max(1)
    }
}

fn start_ticker(engine: Weak<WasmEngine>) {
    let tick = engine.upgrade().map_or(1, |e| e.config.epoch_tick_ms.max(1));
    std::thread::Builder::new()
        .name("helix-epoch".into())
        .spawn(move || {
            while let Some(e) = engine.upgrade() {
                e.engine.increment_epoch();
                drop(e);
                std::thread::sleep(Duration::from_millis(tick));
            }
        })
        .expect("spawn the epoch ticker");
}
