//! Job request bodies from outside: decoding, parameter validation against every bundled
//! manifest, and the native kernels themselves on whatever passes admission (with the work
//! capped, so each input stays quick). Nothing may panic; bad input must come back as an error.

#![no_main]

use helix_host::admission::{Work, admit_native, admit_wasm};
use helix_host::manifest::Manifest;
use helix_host::JobRequest;
use helix_math::KernelKind;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// Every bundled manifest, with its built-in kernel when it is native.
static KERNELS: LazyLock<Vec<(Manifest, Option<KernelKind>)>> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    helix_host::catalog::manifest_paths(&dir)
        .expect("the bundled manifests folder")
        .iter()
        .filter_map(|p| Manifest::load(p).ok())
        .map(|m| {
            let kind = (m.runtime == helix_host::Runtime::Native)
                .then(|| KernelKind::from_name(m.entry.as_deref().unwrap_or(&m.name)))
                .flatten();
            (m, kind)
        })
        .collect()
});

/// Largest number of units a fuzzed job may run, so one input costs milliseconds at most.
const MAX_UNITS: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = JobRequest::decode(data) else { return };
    let Ok(job) = request.into_job(1) else { return };
    // A name outside the bundle still exercises every kernel's rules: pick one by the name.
    let kernels = &*KERNELS;
    let (manifest, kind) = kernels
        .iter()
        .find(|(m, _)| m.name == job.kernel)
        .unwrap_or_else(|| &kernels[job.kernel.len() % kernels.len()]);
    let seed = job.seed();
    match kind {
        Some(kind) => {
            if let Ok(admitted) = admit_native(manifest, *kind, job.params) {
                let Work::Native(prepared) = admitted.work else { unreachable!("native admission") };
                let block = prepared.block().max(1);
                let units = admitted.units.min(MAX_UNITS / block * block).max(1);
                let _ = prepared.run(seed, units);
            }
        }
        None => {
            let _ = admit_wasm(manifest, job.params);
        }
    }
});
