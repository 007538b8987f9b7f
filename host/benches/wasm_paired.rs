//! Native vs Wasm (fuel on, fuel off) per bundled kernel, sampled round-robin: each round runs
//! the three back to back, so all see the same machine noise, and the ratios come from the
//! minimum and the median of the rounds. A companion to the criterion bench `wasm` for shared,
//! noisy machines.
//!
//! Needs the staged guests (`cargo xtask kernels`). `cargo bench -p helix-host --bench
//! wasm_paired [-- ROUNDS] [FILTER]` (30 rounds by default; FILTER keeps the cases whose name
//! contains it).

use helix_host::bench::{native_job, staged_guest};
use helix_host::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine};
use std::hint::black_box;
use std::time::Instant;

const LIMITS: GuestLimits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 60_000 };

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(30);
    let filter = args.iter().find(|a| a.parse::<usize>().is_err()).cloned().unwrap_or_default();
    let on = WasmEngine::new(WasmConfig { cache_dir: None, ..WasmConfig::default() }).unwrap();
    let off = WasmEngine::new(WasmConfig { fuel: false, cache_dir: None, ..WasmConfig::default() }).unwrap();
    println!("{rounds} rounds; times in ms (min / median); Wasm/native and fuel on/off from the min / the median");
    for case in helix_host::bench::cases::all(false) {
        let (Some(kind), Some(units)) = (case.native, case.units) else { continue };
        let name = format!("{} {}", case.kernel, case.name);
        if !name.contains(&filter) {
            continue;
        }
        let job = [GuestJob { seed: 7, units: Some(units), params: case.params.clone() }];
        let (fueled, unmetered) = (staged_guest(&on, case.kernel), staged_guest(&off, case.kernel));
        let no_fuel = GuestLimits { fuel: None, ..LIMITS };
        let mut runs: [Box<dyn FnMut()>; 3] = [
            Box::new(|| drop(black_box(native_job(kind, &case.params, 7, Some(units)).unwrap()))),
            Box::new(|| drop(black_box(fueled.run(&job, LIMITS).unwrap()))),
            Box::new(|| drop(black_box(unmetered.run(&job, no_fuel).unwrap()))),
        ];
        // Each sample repeats the job for at least 20 ms; the first round warms up.
        let reps: Vec<u32> = runs
            .iter_mut()
            .map(|run| {
                let t = Instant::now();
                run();
                (0.02 / t.elapsed().as_secs_f64()).ceil().max(1.0) as u32
            })
            .collect();
        let mut times: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(rounds)).collect();
        for round in 0..rounds {
            // Rotate which goes first, so none always runs on a cold cache.
            for k in 0..3 {
                let v = (round + k) % 3;
                let t = Instant::now();
                for _ in 0..reps[v] {
                    runs[v]();
                }
                times[v].push(t.elapsed().as_secs_f64() * 1e3 / reps[v] as f64);
            }
        }
        let stats: Vec<(f64, f64)> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(f64::total_cmp);
                (t[0], t[t.len() / 2])
            })
            .collect();
        let [native, fuel, no_fuel] = [stats[0], stats[1], stats[2]];
        println!(
            "{name:<40} native {:.3} / {:.3}  fuel on {:.3} / {:.3}  off {:.3} / {:.3}  \
             wasm/native {:.2} / {:.2}  off {:.2} / {:.2}  on/off {:.3} / {:.3}",
            native.0,
            native.1,
            fuel.0,
            fuel.1,
            no_fuel.0,
            no_fuel.1,
            fuel.0 / native.0,
            fuel.1 / native.1,
            no_fuel.0 / native.0,
            no_fuel.1 / native.1,
            fuel.0 / no_fuel.0,
            fuel.1 / no_fuel.1
        );
    }
}
