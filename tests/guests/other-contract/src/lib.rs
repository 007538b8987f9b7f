//! Exports `helix:kernel/runner@0.2.0`: a contract version this host does not speak.

wit_bindgen::generate!({ world: "kernel", path: "wit" });

struct Future;

impl exports::helix::kernel::runner::Guest for Future {
    fn run(seed: u64, units: u64) -> f64 {
        (seed ^ units) as f64
    }
}

export!(Future);
