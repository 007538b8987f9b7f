//! Layer 1: the Wasm sandbox: kernels as components of `helix:kernel@0.1.0`, compiled once (and
//! cached on disk), instantiated per job from a pre-linked `InstancePre` out of a pooling
//! allocator, metered by fuel, stopped by an epoch deadline, capped in memory, and given no
//! authority.

mod cache;
mod engine;
mod kernel;

pub use engine::{WasmConfig, WasmEngine};
pub use kernel::{
    GuestError, GuestFailure, GuestJob, GuestLimits, GuestOutput, GuestRun, WasmKernel, load_component, load_file,
    sha256_hex,
};

/// Host bindings for the contract in `wit/kernel.wit`.
mod bindings {
    wasmtime::component::bindgen!({
        world: "kernel",
        path: "../wit",
        // Jobs go to the guest borrowed: a large array parameter is copied once, into the
        // guest, not first into an owned copy.
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

/// The contract version this host speaks, as components export it.
pub const CONTRACT_EXPORT: &str = "helix:kernel/runner@0.1.0";
/// The contract's type definitions, which components import (they carry no functions).
pub const CONTRACT_TYPES: &str = "helix:kernel/types@0.1.0";
