//! Arbitrary jobs through real Wasm kernels (the bundled guests, built by `cargo xtask kernels`),
//! with no admission in front: whatever crosses the boundary, the host gets an answer, a typed
//! guest error, or a sandbox failure; never a panic. Where the guest answers, the native build
//! of the same kernel must give the same bits.

#![no_main]

use arbitrary::Arbitrary;
use helix_host::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine, WasmKernel, load_file};
use helix_math::{KernelKind, Params, Prepared, Value};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The bundled guests, their native twins (if any) and the parameter names they know.
struct Guest {
    kernel: WasmKernel,
    native: Option<KernelKind>,
    names: Vec<String>,
}

static GUESTS: LazyLock<Vec<Guest>> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/wasm");
    let engine = WasmEngine::new(WasmConfig::default()).expect("the Wasm engine");
    let mut guests = Vec::new();
    for path in helix_host::catalog::manifest_paths(&dir).expect("manifests/wasm: run `cargo xtask kernels`") {
        let m = helix_host::manifest::Manifest::load(&path).expect("a staged manifest");
        let module = m.module.as_ref().expect("a wasm manifest");
        let kernel = load_file(&engine, &dir.join(&module.path), &module.sha256, None).expect("a staged module");
        let native = KernelKind::from_name(&m.name);
        guests.push(Guest { kernel, native, names: m.params.keys().cloned().collect() });
    }
    assert!(!guests.is_empty(), "no guests staged in {}", dir.display());
    guests
});

#[derive(Arbitrary, Debug)]
enum FuzzValue {
    Number(f64),
    Small(u16),
    Array(Vec<f64>),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct FuzzJob {
    guest: u8,
    seed: u64,
    units: Option<u16>,
    /// (index into the guest's parameter names, or an unknown name past them; value)
    params: Vec<(u8, FuzzValue)>,
}

fuzz_target!(|job: FuzzJob| {
    let guests = &*GUESTS;
    let guest = &guests[job.guest as usize % guests.len()];
    let mut params = Params::new();
    for (i, v) in job.params {
        let name = guest.names.get(i as usize).cloned().unwrap_or_else(|| format!("unknown{i}"));
        let value = match v {
            FuzzValue::Number(x) => Value::Number(x),
            FuzzValue::Small(n) => Value::Number(f64::from(n)),
            FuzzValue::Array(xs) => Value::Array(xs),
            FuzzValue::Text(t) => Value::Text(t),
        };
        params = params.with(&name, value);
    }
    // Work stays small: a fuzzed job asks the guest for at most a few thousand units.
    let units = Some(u64::from(job.units.unwrap_or(1024)).clamp(1, 4096));
    let wasm_job = GuestJob { seed: job.seed, units, params: params.clone() };
    let limits = GuestLimits { fuel: Some(2_000_000_000), deadline_ms: 2_000 };
    let Ok(run) = guest.kernel.run(std::slice::from_ref(&wasm_job), limits) else { return };
    assert_eq!(run.answers.len(), 1, "one job in, one answer out");
    let (Some(Ok(answer)), Some(kind)) = (run.answers.first(), guest.native) else { return };
    let parsed = Prepared::parse(kind, params.clone()).expect("the guest accepted what native parsing refuses");
    let native = parsed.prepared.run(job.seed, units.unwrap()).expect("native fails where Wasm answered");
    let native = &native[0];
    assert_eq!(answer.estimates.len(), native.estimates.len());
    for ((wn, we), (nn, ne)) in answer.estimates.iter().zip(&native.estimates) {
        assert_eq!(wn, nn);
        assert_eq!(we.value.to_bits(), ne.value.to_bits(), "{wn}: Wasm {} vs native {}", we.value, ne.value);
    }
});
