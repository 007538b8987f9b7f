//! One Wasm kernel: validated at load (sha256, contract export, allowed imports), then run per
//! job or per batch in a fresh store with fuel, an epoch deadline and a memory cap.

use super::bindings::helix::kernel::types as wit;
use super::bindings::{Kernel as KernelBindings, KernelPre};
use super::engine::WasmEngine;
use super::{CONTRACT_EXPORT, cache};
use helix_math::{Estimate, Params, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{ResourceLimiter, Store, Trap};

/// Per-store state: the memory cap, whether the guest hit it, and the most memory it asked for.
pub struct GuestState {
    cap: usize,
    cap_hit: bool,
    peak_memory: usize,
}

impl ResourceLimiter for GuestState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.peak_memory = self.peak_memory.max(desired);
        if desired > self.cap {
            self.cap_hit = true;
            return Err(wasmtime::format_err!("memory cap of {} bytes exceeded (asked for {desired})", self.cap));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Imports a kernel may name: the contract's own type definitions (no functions), and the
/// command-line, stream and monotonic-clock interfaces that Rust's `wasm32-wasip2` standard
/// library links even when a kernel never uses them (the clock since Rust 1.99). The host
/// satisfies those with functions that trap, so a kernel gets no files, network, clock or
/// environment, and one that reads the clock fails its own job.
const ALLOWED_IMPORTS: [&str; 4] = [super::CONTRACT_TYPES, "wasi:cli/", "wasi:io/", "wasi:clocks/monotonic-clock@"];

/// A validated, compiled kernel, linked ahead so that each run only instantiates it.
pub struct WasmKernel {
    engine: Arc<WasmEngine>,
    pre: KernelPre<GuestState>,
    /// The module's sha256, as lowercase hex.
    pub sha256: String,
    /// The names of the interfaces the component imports (all of them allowed ones).
    pub imports: Vec<String>,
}

/// A job as the guest receives it.
#[derive(Clone, Debug)]
pub struct GuestJob {
    /// Block i of the job draws from stream i of this seed.
    pub seed: u64,
    /// `None`: as many as the parameters ask for.
    pub units: Option<u64>,
    /// The job's named parameters.
    pub params: Params,
}

/// What one run may use.
#[derive(Clone, Copy, Debug)]
pub struct GuestLimits {
    /// Fuel for the whole run (`None` when the engine does not meter fuel).
    pub fuel: Option<u64>,
    /// Wall-clock milliseconds before the epoch stops the guest (the grace is added on top).
    pub deadline_ms: u64,
}

/// A guest's answer to one job.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestOutput {
    /// Named estimates, each a value and an optional standard error.
    pub estimates: Vec<(String, Estimate)>,
    /// Named arrays of values.
    pub arrays: Vec<(String, Vec<f64>)>,
    /// Units (paths, particles, rows) the guest says it ran.
    pub units_done: u64,
}

/// A guest's own error for one job.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestError {
    /// A parameter broke its rule; nothing was computed.
    InvalidInput {
        /// The parameter's name.
        param: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// Valid inputs, but no finite answer: the guest's message.
    NumericFailure(String),
}

/// A completed run: one answer per job, and the fuel it burnt.
#[derive(Clone, Debug)]
pub struct GuestRun {
    /// One answer per job, in the order of the jobs.
    pub answers: Vec<Result<GuestOutput, GuestError>>,
    /// Fuel the whole run burnt, all its jobs together (`None` when it had no fuel limit).
    pub fuel_used: Option<u64>,
    /// The largest linear memory the instance had, in bytes: its initial pages, or what it grew
    /// to (each growth is two `mprotect`s, one now and one when its slot is reset).
    pub memory_bytes: usize,
}

/// Why a run produced no answers: the sandbox stopped it.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestFailure {
    /// The guest used up its fuel.
    OutOfFuel {
        /// The fuel the run was given.
        limit: u64,
    },
    /// The epoch stopped the guest past its wall-clock deadline (plus the grace).
    Deadline {
        /// The run's deadline in milliseconds, without the grace.
        ms: u64,
    },
    /// The guest tried to grow its memory past the cap.
    MemoryCap {
        /// The memory cap, in bytes.
        bytes: usize,
    },
    /// The guest overflowed its Wasm stack.
    StackOverflow,
    /// The answers held more values (estimates plus array values) than the engine allows.
    OutputTooLarge {
        /// Values in all the run's answers together.
        values: usize,
        /// The most allowed (`max_output_values`).
        limit: usize,
    },
    /// Any other trap or error from the sandbox, with its message.
    Trap(String),
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::OutOfFuel { limit } => write!(f, "ran out of fuel ({limit} units)"),
            GuestFailure::Deadline { ms } => write!(f, "stopped at its wall-clock deadline ({ms} ms)"),
            GuestFailure::MemoryCap { bytes } => write!(f, "exceeded its memory cap of {bytes} bytes"),
            GuestFailure::StackOverflow => write!(f, "overflowed its stack"),
            GuestFailure::OutputTooLarge { values, limit } => write!(f, "returned {values} values (limit {limit})"),
            GuestFailure::Trap(m) => write!(f, "trapped: {m}"),
        }
    }
}

/// The sha256 of a module, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates and compiles a component: its sha256, the contract export, its imports.
pub fn load_component(
    engine: &Arc<WasmEngine>,
    bytes: &[u8],
    expected_sha256: &str,
    cache_dir: Option<&Path>,
) -> Result<WasmKernel, String> {
    let sha = sha256_hex(bytes);
    if !sha.eq_ignore_ascii_case(expected_sha256) {
        return Err(format!("module sha256 is {sha}, the manifest says {expected_sha256}"));
    }
    let component = cache::compile(&engine.engine, bytes, &sha, cache_dir)?;
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&engine.engine).map(|(name, _)| name.to_string()).collect();
    if !exports.iter().any(|e| e == CONTRACT_EXPORT) {
        return Err(format!(
            "does not export `{CONTRACT_EXPORT}` (it exports: {}); is it built for another contract version?",
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        ));
    }
    let imports: Vec<String> = ty.imports(&engine.engine).map(|(name, _)| name.to_string()).collect();
    if let Some(bad) = imports.iter().find(|i| !ALLOWED_IMPORTS.iter().any(|a| i.starts_with(a))) {
        return Err(format!(
            "imports `{bad}`, which this host does not provide: kernels get no files, network, clock or environment"
        ));
    }
    let mut linker: Linker<GuestState> = Linker::new(&engine.engine);
    linker.define_unknown_imports_as_traps(&component).map_err(|e| format!("cannot link: {e}"))?;
    let pre = linker.instantiate_pre(&component).map_err(|e| format!("cannot link: {e}"))?;
    let pre = KernelPre::new(pre).map_err(|e| format!("does not match the contract: {e}"))?;
    Ok(WasmKernel { engine: engine.clone(), pre, sha256: sha, imports })
}

impl WasmKernel {
    /// Whether runs are metered by fuel (the engine's `fuel` switch).
    pub fn meters_fuel(&self) -> bool {
        self.engine.config.fuel
    }

    /// Runs `jobs` in one fresh instance: `run` for one job, `run-batch` for several.
    pub fn run(&self, jobs: &[GuestJob], limits: GuestLimits) -> Result<GuestRun, GuestFailure> {
        let cap = self.engine.config.memory_cap_bytes;
        let mut store = Store::new(&self.engine.engine, GuestState { cap, cap_hit: false, peak_memory: 0 });
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        if let Some(f) = limits.fuel {
            store.set_fuel(f).map_err(|e| GuestFailure::Trap(e.to_string()))?;
        }
        store.set_epoch_deadline(self.engine.ticks_for(limits.deadline_ms));
        store.epoch_deadline_trap();
        let result = self.call(&mut store, jobs);
        let fuel_used = limits.fuel.map(|f| f.saturating_sub(store.get_fuel().unwrap_or(0)));
        let answers = result.map_err(|e| classify(e, &store, limits))?;
        let values: usize = answers
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .map(|o| o.estimates.len() + o.arrays.iter().map(|a| a.values.len()).sum::<usize>())
            .sum();
        let limit = self.engine.config.max_output_values;
        if values > limit {
            return Err(GuestFailure::OutputTooLarge { values, limit });
        }
        let memory_bytes = store.data().peak_memory;
        Ok(GuestRun { answers: answers.into_iter().map(from_wit).collect(), fuel_used, memory_bytes })
    }

    fn call(
        &self,
        store: &mut Store<GuestState>,
        jobs: &[GuestJob],
    ) -> wasmtime::Result<Vec<Result<wit::Output, wit::KernelError>>> {
        let instance: KernelBindings = self.pre.instantiate(&mut *store)?;
        let runner = instance.helix_kernel_runner();
        let params: Vec<Vec<wit::Param>> = jobs.iter().map(|j| wit_params(&j.params)).collect();
        let wit_jobs: Vec<wit::Job> =
            jobs.iter().zip(&params).map(|(j, p)| wit::Job { seed: j.seed, units: j.units, params: p }).collect();
        if let [one] = wit_jobs.as_slice() {
            Ok(vec![runner.call_run(&mut *store, one.clone())?])
        } else {
            runner.call_run_batch(&mut *store, &wit_jobs)
        }
    }
}

fn classify(e: wasmtime::Error, store: &Store<GuestState>, limits: GuestLimits) -> GuestFailure {
    if store.data().cap_hit {
        return GuestFailure::MemoryCap { bytes: store.data().cap };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => GuestFailure::OutOfFuel { limit: limits.fuel.unwrap_or(0) },
        Some(Trap::Interrupt) => GuestFailure::Deadline { ms: limits.deadline_ms },
        Some(Trap::StackOverflow) => GuestFailure::StackOverflow,
        Some(t) => GuestFailure::Trap(t.to_string()),
        None => GuestFailure::Trap(format!("{e:#}")),
    }
}

fn wit_params(p: &Params) -> Vec<wit::Param<'_>> {
    p.0.iter()
        .map(|(name, v)| wit::Param {
            name,
            value: match v {
                Value::Number(x) => wit::Value::Scalar(*x),
                Value::Array(a) => wit::Value::Array(a),
                Value::Text(t) => wit::Value::Choice(t),
            },
        })
        .collect()
}

fn from_wit(r: Result<wit::Output, wit::KernelError>) -> Result<GuestOutput, GuestError> {
    match r {
        Ok(o) => Ok(GuestOutput {
            estimates: o
                .estimates
                .into_iter()
                .map(|e| (e.name, Estimate { value: e.value, std_error: e.std_error }))
                .collect(),
            arrays: o.arrays.into_iter().map(|a| (a.name, a.values)).collect(),
            units_done: o.units_done,
        }),
        Err(wit::KernelError::InvalidInput(i)) => Err(GuestError::InvalidInput { param: i.param, reason: i.reason }),
        Err(wit::KernelError::NumericFailure(m)) => Err(GuestError::NumericFailure(m)),
    }
}

/// Reads a manifest's module file and loads it.
pub fn load_file(
    engine: &Arc<WasmEngine>,
    path: &Path,
    sha256: &str,
    cache_dir: Option<&Path>,
) -> Result<WasmKernel, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
    load_component(engine, &bytes, sha256, cache_dir)
}
