//! The fixed work `helix bench` runs: every bundled kernel, with the parameter sets of the
//! criterion bench (`host/benches/wasm.rs`) so the two agree.

use helix_math::{KernelKind, Params, Value};

/// One benchmark job: a kernel, its parameters, and the work it does.
pub struct Case {
    /// What runs, for the table.
    pub name: &'static str,
    /// The kernel's name, as its manifest gives it.
    pub kernel: &'static str,
    /// `None`: the kernel exists only as Wasm.
    pub native: Option<KernelKind>,
    /// The job's parameters.
    pub params: Params,
    /// Units one job asks for (`None` for kernels without a unit count).
    pub units: Option<u64>,
    /// Work done by one job, in `unit`s: what "units/s" counts.
    pub work: u64,
    /// What one unit of `work` is (`paths`, `rows`, `rounds`, ...).
    pub unit: &'static str,
}

fn num(x: f64) -> Value {
    Value::Number(x)
}

fn option(style: &str, steps: f64) -> Params {
    Params::new()
        .with("style", Value::Text(style.into()))
        .with("spot", num(100.0))
        .with("strike", num(100.0))
        .with("vol", num(0.25))
        .with("maturity", num(1.0))
        .with("steps", num(steps))
        .with("barrier", num(80.0))
}

fn equicorrelation(d: usize, rho: f64) -> Value {
    Value::Array((0..d * d).map(|k| if k / d == k % d { 1.0 } else { rho }).collect())
}

/// Every case; `quick` divides the work of the cases that scale (paths, particles, hash rounds)
/// by 8, to at least 1 024 units; the EWMA windows and the prime sieve keep their size.
pub fn all(quick: bool) -> Vec<Case> {
    let scale = |units: u64| if quick { (units / 8).max(1024) } else { units };
    let d = 10;
    let var = Params::new()
        .with("positions", Value::Array(vec![1e6; d]))
        .with("vols", Value::Array((0..d).map(|i| 0.15 + 0.02 * i as f64).collect()))
        .with("correlation", equicorrelation(d, 0.3));
    let pf = Params::new()
        .with("a", num(0.9))
        .with("q", num(1.0))
        .with("r", num(0.7))
        .with("observations", Value::Array((0..50).map(|t| (t as f64 * 0.3).sin() * 2.0).collect()));
    let returns: Vec<f64> = (0..1000 * 10).map(|k| 0.01 * ((k * 7919 % 1000) as f64 / 500.0 - 1.0)).collect();
    let ewma = Params::new().with("returns", Value::Array(returns)).with("assets", num(10.0));
    // Fifty assets: a job of the others' size (milliseconds, not tens of microseconds, where the
    // fixed cost of a Wasm job is most of it); hashed returns, so its 1000 rows have full rank.
    let hashed = |k: u64| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
    let wide = Params::new()
        .with("returns", Value::Array((0..1000 * 50).map(|k| 0.02 * hashed(k)).collect()))
        .with("assets", num(50.0));
    let basket = Params::new()
        .with("spots", Value::Array(vec![100.0, 95.0, 110.0]))
        .with("weights", Value::Array(vec![0.4, 0.3, 0.3]))
        .with("vols", Value::Array(vec![0.2, 0.25, 0.3]))
        .with("correlation", equicorrelation(3, 0.3))
        .with("maturity", num(1.0))
        .with("strike", num(100.0));
    let hash_rounds = scale(100_000);
    let hashmix = Params::new()
        .with("inputs", Value::Array(vec![1.0, 2.0, 3.0]))
        .with("compute_cost", num((hash_rounds * 64) as f64));
    let case = |name, kernel, native, params, units: u64, unit| Case {
        name,
        kernel,
        native,
        params,
        units: Some(units),
        work: units,
        unit,
    };
    let (mc, var_k) = (Some(KernelKind::McOption), Some(KernelKind::McVar));
    vec![
        case("European, 1 step", "mc-option", mc, option("european", 1.0), scale(400_000), "paths"),
        case("Asian, 64 fixings", "mc-option", mc, option("asian", 64.0), scale(8_192), "paths"),
        case("barrier, 252 dates", "mc-option", mc, option("barrier", 252.0), scale(4_096), "paths"),
        case("10 assets, full", "mc-var", var_k, var, scale(40_960), "paths"),
        case("50 observations", "particle-filter", Some(KernelKind::ParticleFilter), pf, scale(8_192), "particles"),
        case("50 assets, 1000 rows", "ewma-cov", Some(KernelKind::EwmaCov), wide, 1_000, "rows"),
        case("10 assets, 1000 rows", "ewma-cov", Some(KernelKind::EwmaCov), ewma, 1_000, "rows"),
        case("3 assets", "basket-option", None, basket, scale(40_960), "paths"),
        Case {
            name: "rotate-xor-multiply",
            kernel: "hashmix",
            native: Some(KernelKind::HashMix),
            params: hashmix,
            units: None,
            work: hash_rounds,
            unit: "rounds",
        },
        Case {
            name: "sieve to 250 000",
            kernel: "primecount",
            native: Some(KernelKind::PrimeCount),
            params: Params::new().with("compute_cost", num(250_000.0)),
            units: None,
            work: 250_000,
            unit: "numbers",
        },
    ]
}
