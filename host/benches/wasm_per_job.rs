//! The fixed per-job Wasm cost at p50/p90/p99: instantiate from the pooled, pre-linked instance
//! plus an empty call, and a one-path `mc-option` job, with the default slot reset, with all of
//! the memory `madvise`d (`keep_resident_bytes = 0`) and with the opt-in `pagemap_reset`,
//! sampled round-robin so every variant sees the same machine noise.
//!
//! Needs the staged guests (`cargo xtask kernels`). `cargo bench -p helix-host --bench
//! wasm_per_job [-- SAMPLES] [FILTER] [MODULE.wasm]` (10 000 per variant by default; FILTER keeps
//! the variants whose name contains it; MODULE.wasm adds another build of the `mc-option`
//! guest with the default reset, such as a wasm32-wasip2 one, to compare side by side).

use hdrhistogram::Histogram;
use helix_host::bench::staged_guest;
use helix_host::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine, WasmKernel};
use helix_math::{Params, Value};
use std::hint::black_box;
use std::time::Instant;

const LIMITS: GuestLimits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 60_000 };

fn main() {
    // `cargo bench` passes `--bench`; a bare number is the sample count.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let samples: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let other = args.iter().find(|a| a.ends_with(".wasm")).cloned();
    let filter = args.iter().find(|a| a.parse::<u64>().is_err() && !a.ends_with(".wasm")).cloned().unwrap_or_default();
    let engine = |c: WasmConfig| WasmEngine::new(WasmConfig { cache_dir: None, ..c }).unwrap();
    let default = engine(WasmConfig::default());
    let madvise = engine(WasmConfig { keep_resident_bytes: 0, ..WasmConfig::default() });
    let pagemap = engine(WasmConfig { pagemap_reset: true, ..WasmConfig::default() });
    let params = Params::new()
        .with("spot", Value::Number(100.0))
        .with("strike", Value::Number(100.0))
        .with("vol", Value::Number(0.2))
        .with("maturity", Value::Number(1.0));
    let one = [GuestJob { seed: 1, units: Some(1), params }];
    let mut kernels = vec![
        ("default".to_string(), staged_guest(&default, "mc-option")),
        ("madvise".to_string(), staged_guest(&madvise, "mc-option")),
        ("pagemap_reset".to_string(), staged_guest(&pagemap, "mc-option")),
    ];
    if let Some(path) = other {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let sha = helix_host::wasm::sha256_hex(&bytes);
        let k =
            helix_host::wasm::load_component(&default, &bytes, &sha, None).unwrap_or_else(|e| panic!("{path}: {e}"));
        kernels.push((format!("default, {}", path.rsplit('/').next().unwrap_or(&path)), k));
    }
    let variants: Vec<(String, &WasmKernel, &[GuestJob])> = kernels
        .iter()
        .flat_map(|(reset, k)| {
            [
                (format!("instantiate + empty call, {reset}"), k, &[][..]),
                (format!("one-path job, {reset}"), k, &one[..]),
            ]
        })
        .filter(|(name, _, _)| name.contains(&filter))
        .collect();
    let mut hists: Vec<Histogram<u64>> =
        variants.iter().map(|_| Histogram::new_with_bounds(1, 1_000_000_000, 3).unwrap()).collect();
    for (_, k, jobs) in &variants {
        for _ in 0..200 {
            black_box(k.run(jobs, LIMITS).unwrap());
        }
    }
    // Rounds of 100 back-to-back runs per variant: long enough for a slot-reset batch to cycle.
    for _ in 0..samples.div_ceil(100) {
        for ((_, k, jobs), h) in variants.iter().zip(&mut hists) {
            for _ in 0..100 {
                let t = Instant::now();
                black_box(k.run(jobs, LIMITS).unwrap());
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
        }
    }
    println!("per-job Wasm cost, {} samples each (us): p50 / p90 / p99", hists.first().map_or(0, Histogram::len));
    for ((name, _, _), h) in variants.iter().zip(&hists) {
        let q = |x| h.value_at_quantile(x) as f64 / 1000.0;
        println!("{name:<44} {:>6.2} / {:>6.2} / {:>6.2}", q(0.5), q(0.9), q(0.99));
    }
}
