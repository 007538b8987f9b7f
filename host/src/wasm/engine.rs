//! One engine for every Wasm kernel: deterministic floating point, fuel, epochs, pooling.

use std::sync::{Arc, Weak};
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

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
    /// Canonicalise NaNs after every float operation, so even a NaN's sign and payload are the
    /// same on every host. Off by default: cranelift puts a compare and a blend on each float
    /// operation's dependency chain, which measured 2-5x on the bundled kernels (`libm::exp` in
    /// a guest: 41 ns with it, 6.4 ns without, native 5.5 ns). Without it results are still
    /// deterministic on a host and bit-identical to native code (which does not canonicalise
    /// either); NaN bits could differ only between host architectures, and only reach an answer
    /// through a kernel that inspects a NaN's bits, since the host refuses non-finite answers.
    /// Turn it on for kernels that need NaN bits identical across x86 and ARM hosts.
    pub canonicalize_nans: bool,
    /// How often the epoch advances: the wall-clock backstop's resolution.
    pub epoch_tick_ms: u64,
    /// Past its budget, a guest gets this much longer before the epoch stops it.
    pub grace_ms: u64,
    /// Largest output a guest may return: estimates plus array values.
    pub max_output_values: usize,
    /// Most bytes at the start of a finished instance's memory that its slot reset rewrites in
    /// place (zeroes, or the module's initial data) and keeps resident; the rest is handed back
    /// to the kernel with `madvise`, and the next job faults in what it touches. The rewrite
    /// covers only the memory the instance had (`min` of this and its size), at ~1.3 us per
    /// 64 KiB, so a guest pays for the memory it starts with: guests built with this
    /// repository's `.cargo/config.toml` start with one 64 KiB page (a 16 KiB stack, then the
    /// statics and a small heap), where a small job fits; `ewma-cov` starts with two, for its
    /// window. A job that grows its memory past that gets up to this much rewritten instead of
    /// faulted in: measured, the 50-asset `ewma-cov` job (a 400 KB window) 617-666 -> 537-552
    /// us with 512 KiB against 128 KiB, and no change for jobs that fit their first pages.
    /// With 64 pool slots that is at most 32 MiB kept resident.
    pub keep_resident_bytes: usize,
    /// Reset a finished instance's memory by rewriting only the pages it dirtied (Linux 6.7+
    /// `PAGEMAP_SCAN`, up to 1 MiB per slot, kept resident) instead of `madvise`: measured,
    /// instantiate + empty call 13.8 -> 7.5 us and a one-path job 18 -> 10.4 us at p50. Off
    /// by default, and refused when the host has swap: wasmtime 48 skips a dirty page that
    /// was swapped out, so the next instance in that slot would read the previous job's data
    /// (bytecodealliance/wasmtime#14357). Only for hosts that never enable swap.
    pub pagemap_reset: bool,
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
            canonicalize_nans: false,
            epoch_tick_ms: 1,
            grace_ms: 20,
            max_output_values: 1 << 20,
            keep_resident_bytes: 512 << 10,
            pagemap_reset: false,
            cache_dir: Some(std::env::temp_dir().join("helix-cache")),
        }
    }
}

/// The one Wasm engine every kernel is compiled and run with, and the limits it was built with.
pub struct WasmEngine {
    /// The wasmtime engine (fuel, epoch interruption, pooling allocator as `config` says).
    pub engine: Engine,
    /// The sandbox limits and switches the engine was built with.
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
            // Deterministic relaxed SIMD (same bits on every host); NaN canonicalisation per the config.
            .relaxed_simd_deterministic(true)
            .cranelift_nan_canonicalization(config.canonicalize_nans)
            .parallel_compilation(false);
        // `HELIX_PERFMAP=1`: compiled guest code is listed in /tmp/perf-PID.map, so `perf report`
        // names guest functions (with their Rust names when the module keeps its name section).
        if std::env::var_os("HELIX_PERFMAP").is_some() {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
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
        // A finished instance's slot is reset for the next one: the start of its memory is
        // rewritten in place (see `keep_resident_bytes`), the rest `madvise`d (then page faults
        // as the next job touches it). Tables are small: zero them with `memset` instead of a
        // syscall; and hand slots back to the kernel 16 at a time. Measured: instantiate +
        // empty call 20.6 -> 13.8 us at p50 (p99 46 -> 30 us), a one-path job 27 -> 18 us.
        pool.table_keep_resident(64 << 10)
            .decommit_batch_size(16)
            .linear_memory_keep_resident(config.keep_resident_bytes);
        if config.pagemap_reset {
            match pagemap_reset_refusal() {
                None => {
                    pool.pagemap_scan(Enabled::Yes)
                        .linear_memory_keep_resident(config.keep_resident_bytes.max(1 << 20));
                }
                Some(why) => tracing::warn!("Wasm slots are reset with madvise: {why}"),
            }
        }
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

/// Why the `PAGEMAP_SCAN` reset cannot be used here, if it cannot.
fn pagemap_reset_refusal() -> Option<&'static str> {
    if !PoolingAllocationConfig::is_pagemap_scan_available() {
        return Some("this kernel has no PAGEMAP_SCAN");
    }
    match std::fs::read_to_string("/proc/swaps") {
        // A header line, then one line per active swap device.
        Ok(swaps) if swaps.lines().skip(1).all(|l| l.trim().is_empty()) => None,
        Ok(_) => Some("the host has swap, which this reset does not handle safely"),
        Err(_) => Some("cannot tell whether the host has swap"),
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
