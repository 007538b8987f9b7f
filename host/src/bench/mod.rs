//! Layer 9: `helix bench`: every bundled kernel at fixed work, native and Wasm (fuel metering on
//! and off), several runs each on one thread; units per second, the Wasm/native ratio, fuel per
//! unit and the cost of instantiating a guest.

pub mod cases;

use crate::admission::check_params;
use crate::catalog::manifest_paths;
use crate::job::Runtime;
use crate::machine::Machine;
use crate::manifest::Manifest;
use crate::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine, WasmKernel, load_file};
use helix_math::{KernelError, KernelKind, Output, Params, Prepared};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How `helix bench` runs.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// A smaller, faster pass: the cases that scale at an eighth of their work (see
    /// `cases::all`) and a fifth of the instantiation samples. How many runs is `runs`.
    pub quick: bool,
    /// Timed runs per measurement (after one warm-up job).
    pub runs: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Throughput over several runs, units per second.
#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    /// The median run's units per second.
    pub median: f64,
    /// The slowest run's units per second.
    pub min: f64,
    /// The fastest run's units per second.
    pub max: f64,
    /// Runs measured.
    pub runs: usize,
}

impl Measure {
    fn of(mut xs: Vec<f64>) -> Measure {
        xs.sort_by(f64::total_cmp);
        Measure { median: median(&xs), min: xs[0], max: xs[xs.len() - 1], runs: xs.len() }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// One case's results: native and Wasm throughput side by side.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The kernel's name.
    pub kernel: &'static str,
    /// The case's name, for the table.
    pub case: &'static str,
    /// Work done by one job, in `unit`s.
    pub work: u64,
    /// What one unit of `work` is.
    pub unit: &'static str,
    /// The native build (`None` when the kernel exists only as Wasm).
    pub native: Option<Measure>,
    /// The Wasm build with fuel metering on (`None` when it was not loaded).
    pub wasm_fuel: Option<Measure>,
    /// The Wasm build with fuel metering off (`None` when it was not loaded).
    pub wasm_no_fuel: Option<Measure>,
    /// Native median over Wasm median: how many times slower the guest is.
    pub wasm_over_native_fuel: Option<f64>,
    /// The same with fuel metering off.
    pub wasm_over_native_no_fuel: Option<f64>,
    /// Fuel burnt per unit of work (fuel on), exact and repeatable.
    pub fuel_per_unit: Option<f64>,
}

/// Instantiating a kernel's guest from its pre-linked, pooled instance plus an empty call.
#[derive(Clone, Debug, Serialize)]
pub struct Instantiation {
    /// The Wasm kernel's name.
    pub kernel: String,
    /// Median time, microseconds.
    pub median_us: f64,
    /// Fastest time, microseconds.
    pub min_us: f64,
    /// Times measured (after one untimed call).
    pub samples: usize,
}

/// What `helix bench` measured, and on what machine.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The machine the bench ran on.
    pub machine: Machine,
    /// Whether it was a `quick` pass.
    pub quick: bool,
    /// Timed runs per measurement.
    pub runs: usize,
    /// One row per case that has a native build or a loaded Wasm one.
    pub rows: Vec<Row>,
    /// Each loaded Wasm kernel's instantiation cost (fuel on), in kernel name order.
    pub instantiation: Vec<Instantiation>,
    /// Wasm kernels that could not be loaded (the bench runs their native build only).
    pub missing_wasm: Vec<String>,
    /// The vector code each side runs: instruction set and lanes a step.
    pub vectors: Vectors,
}

/// The vector code the kernels run (`helix_math::vmath`): its results are the same bits on
/// both sides and at every width, only the speed differs.
#[derive(Clone, Debug, Serialize)]
pub struct Vectors {
    /// Native: the instruction set detected on this CPU and the lanes a step (`Simd::best`).
    pub native: String,
    /// Wasm: what the guests are built for (`simd128`, `.cargo/config.toml`), at the same
    /// `Simd::best` width, two `f64` lanes a register.
    pub wasm: String,
}

impl Vectors {
    fn describe() -> Vectors {
        let simd = helix_math::vmath::Simd::best();
        let lanes = simd.width().lanes();
        let register = simd.isa().register_lanes().lanes();
        Vectors {
            native: format!("{} ({register} f64 lanes a register), {lanes} lanes a step", simd.isa().name()),
            wasm: format!("simd128 (2 f64 lanes a register), {lanes} lanes a step"),
        }
    }
}

/// A run's limits: fuel and time enough never to stop a benchmark job.
const LIMITS: GuestLimits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 600_000 };
const NO_FUEL: GuestLimits = GuestLimits { fuel: None, deadline_ms: 600_000 };

/// Each run repeats the job until this much time has passed, so short jobs are timed over many
/// repetitions rather than at the clock's resolution.
const MIN_RUN: Duration = Duration::from_millis(40);

/// Times `runs` runs of `job` (after one warm-up), returning units per second per run.
fn time_runs(runs: usize, work: u64, mut job: impl FnMut() -> Result<(), String>) -> Result<Vec<f64>, String> {
    job()?;
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let mut reps = 0u64;
        while reps == 0 || start.elapsed() < MIN_RUN {
            job()?;
            reps += 1;
        }
        rates.push((reps * work) as f64 / start.elapsed().as_secs_f64());
    }
    Ok(rates)
}

/// One native job as a Wasm guest runs it: from the job's parameters (parsed and checked, their
/// arrays moved into the kernel's inputs) to its output. Parsing is timed on both sides: the
/// guest parses inside its call, and for a kernel with a large array parameter (`ewma-cov`'s
/// 10 000 returns) it is a tenth of the native job.
pub fn native_job(
    kind: KernelKind,
    params: &Params,
    seed: u64,
    units: Option<u64>,
) -> Result<Vec<Output>, KernelError> {
    let parsed = Prepared::parse(kind, params.clone())?;
    parsed.prepared.run(seed, units.unwrap_or(parsed.units))
}

/// A bundled Wasm kernel as `cargo xtask kernels` staged it in this crate's
/// `../manifests/wasm/`, compiled into `engine` without the disk cache: the criterion benches'
/// way to a guest. Panics with the command to run when it is not staged.
pub fn staged_guest(engine: &Arc<WasmEngine>, name: &str) -> WasmKernel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/wasm");
    let m = Manifest::load(&dir.join(format!("{name}.toml"))).expect("staged manifest: run `cargo xtask kernels`");
    let module = m.module.expect("a wasm manifest names its module");
    load_file(engine, &dir.join(module.path), &module.sha256, None).expect("the staged module loads")
}

/// The Wasm kernels in `manifests`, loaded into `engine`, with their manifests, by name.
fn wasm_kernels(
    manifests: &Path,
    engine: &Arc<WasmEngine>,
) -> Result<BTreeMap<String, (WasmKernel, Manifest)>, String> {
    let paths = manifest_paths(manifests).map_err(|e| format!("cannot read {}: {e}", manifests.display()))?;
    let mut kernels = BTreeMap::new();
    for path in paths {
        let m = Manifest::load(&path).map_err(|e| e.to_string())?;
        let (Runtime::Wasm, Some(module)) = (m.runtime, &m.module) else { continue };
        let dir = path.parent().unwrap_or(Path::new("."));
        let k = load_file(engine, &dir.join(&module.path), &module.sha256, engine.config.cache_dir.as_deref())?;
        kernels.insert(m.name.clone(), (k, m));
    }
    Ok(kernels)
}

fn guest_run(k: &WasmKernel, job: &GuestJob, limits: GuestLimits) -> Result<Option<u64>, String> {
    let run = k.run(std::slice::from_ref(job), limits).map_err(|e| e.to_string())?;
    match &run.answers[..] {
        [Ok(_)] => Ok(run.fuel_used),
        [Err(e)] => Err(format!("{e:?}")),
        _ => Err("the guest answered the wrong number of jobs".into()),
    }
}

/// Runs the bench against the Wasm kernels in `manifests`.
pub fn run(manifests: &Path, cfg: BenchConfig) -> Result<BenchReport, String> {
    let fuel = WasmEngine::new(WasmConfig::default())?;
    let no_fuel = WasmEngine::new(WasmConfig { fuel: false, ..WasmConfig::default() })?;
    let metered = wasm_kernels(manifests, &fuel)?;
    let unmetered = wasm_kernels(manifests, &no_fuel)?;
    let cases = cases::all(cfg.quick);
    let steps =
        cases.iter().map(|c| 1 + 2 * usize::from(metered.contains_key(c.kernel))).sum::<usize>() + metered.len();
    let bar = if cfg.progress { ProgressBar::new(steps as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("bench [{bar:32}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for case in &cases {
        let mut native = None;
        if let Some(kind) = case.native {
            bar.set_message(format!("{} {} native", case.kernel, case.name));
            let rates = time_runs(cfg.runs, case.work, || {
                let out = native_job(kind, &case.params, 7, case.units).map_err(|e| format!("{}: {e}", case.kernel))?;
                std::hint::black_box(out);
                Ok(())
            })?;
            native = Some(Measure::of(rates));
            bar.inc(1);
        }
        let (mut wasm_fuel, mut wasm_no_fuel, mut fuel_per_unit) = (None, None, None);
        if let (Some((on, manifest)), Some((off, _))) = (metered.get(case.kernel), unmetered.get(case.kernel)) {
            // The manifest's defaults, filled in as the router's admission does.
            let params = check_params(manifest, case.params.clone())
                .map_err(|e| format!("{} {}: {e}", case.kernel, case.name))?;
            let job = GuestJob { seed: 7, units: case.units, params };
            bar.set_message(format!("{} {} wasm, fuel on", case.kernel, case.name));
            let fuel_used = guest_run(on, &job, LIMITS)?;
            fuel_per_unit = fuel_used.map(|f| f as f64 / case.work as f64);
            let rates = time_runs(cfg.runs, case.work, || guest_run(on, &job, LIMITS).map(drop))?;
            wasm_fuel = Some(Measure::of(rates));
            bar.inc(1);
            bar.set_message(format!("{} {} wasm, fuel off", case.kernel, case.name));
            let rates = time_runs(cfg.runs, case.work, || guest_run(off, &job, NO_FUEL).map(drop))?;
            wasm_no_fuel = Some(Measure::of(rates));
            bar.inc(1);
        }
        if native.is_none() && wasm_fuel.is_none() {
            continue;
        }
        let ratio = |w: &Option<Measure>| Some(native.as_ref()?.median / w.as_ref()?.median);
        rows.push(Row {
            kernel: case.kernel,
            case: case.name,
            work: case.work,
            unit: case.unit,
            wasm_over_native_fuel: ratio(&wasm_fuel),
            wasm_over_native_no_fuel: ratio(&wasm_no_fuel),
            native,
            wasm_fuel,
            wasm_no_fuel,
            fuel_per_unit,
        });
    }
    let samples = if cfg.quick { 100 } else { 500 };
    let mut instantiation = Vec::new();
    for (name, (k, _)) in &metered {
        bar.set_message(format!("{name} instantiation"));
        guest_empty(k)?;
        let mut times: Vec<f64> = (0..samples)
            .map(|_| {
                let t = Instant::now();
                guest_empty(k).map(|_| t.elapsed().as_secs_f64() * 1e6)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        instantiation.push(Instantiation {
            kernel: name.clone(),
            median_us: median(&times),
            min_us: times[0],
            samples,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(BenchReport {
        machine: Machine::describe(),
        quick: cfg.quick,
        runs: cfg.runs,
        rows,
        instantiation,
        missing_wasm: BUNDLED_WASM.iter().filter(|k| !metered.contains_key(**k)).map(|k| k.to_string()).collect(),
        vectors: Vectors::describe(),
    })
}

/// The kernels this project ships a Wasm build of.
const BUNDLED_WASM: [&str; 5] = ["basket-option", "ewma-cov", "mc-option", "mc-var", "particle-filter"];

fn guest_empty(k: &WasmKernel) -> Result<(), String> {
    k.run(&[], LIMITS).map(drop).map_err(|e| e.to_string())
}

/// Units per second in three significant figures with an SI prefix.
fn rate(x: f64) -> String {
    let (v, p) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, " ")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{p}")
}

impl BenchReport {
    /// The table, as Markdown (it reads as well in a terminal).
    pub fn render_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "machine: {}", self.machine.summary());
        let _ = writeln!(s, "vector code: native {}; Wasm {}", self.vectors.native, self.vectors.wasm);
        let _ = writeln!(
            s,
            "{} runs each, median units/s (min-max); one thread{}\n",
            self.runs,
            if self.quick { "; --quick: an eighth of the work" } else { "" }
        );
        let _ = writeln!(
            s,
            "| kernel | work | native | Wasm, fuel on | Wasm, fuel off | Wasm/native (fuel on) | Wasm/native (fuel off) | fuel per unit |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        let m = |x: &Option<Measure>, unit: &str| {
            x.as_ref().map_or("-".into(), |m| {
                let r = |x: f64| rate(x).trim_end().to_string();
                format!("{} {unit}/s ({}–{})", r(m.median), r(m.min), r(m.max))
            })
        };
        for r in &self.rows {
            let ratio = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}×"));
            let _ = writeln!(
                s,
                "| `{}` {} | {} {} | {} | {} | {} | {} | {} | {} |",
                r.kernel,
                r.case,
                r.work,
                r.unit,
                m(&r.native, r.unit),
                m(&r.wasm_fuel, r.unit),
                m(&r.wasm_no_fuel, r.unit),
                ratio(r.wasm_over_native_fuel),
                ratio(r.wasm_over_native_no_fuel),
                r.fuel_per_unit.map_or("-".into(), |f| format!("{f:.0}"))
            );
        }
        if !self.instantiation.is_empty() {
            let _ = writeln!(s, "\n| Wasm kernel | instantiate + empty call, median (min) |");
            let _ = writeln!(s, "|---|---|");
            for i in &self.instantiation {
                let _ = writeln!(
                    s,
                    "| `{}` | {:.1} µs ({:.1} µs), {} samples |",
                    i.kernel, i.median_us, i.min_us, i.samples
                );
            }
        }
        if !self.missing_wasm.is_empty() {
            let _ = writeln!(
                s,
                "\nno Wasm build loaded for {} (stage them with `cargo xtask kernels`)",
                self.missing_wasm.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_rates_read_right() {
        let m = Measure::of(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!((m.median, m.min, m.max, m.runs), (2.5, 1.0, 10.0, 4));
        assert_eq!(rate(106_400_000.0), "106 M");
        assert_eq!(rate(855_000.0), "855 k");
        assert_eq!(rate(8_470_000.0), "8.47 M");
        assert_eq!(rate(12.0), "12.0 ");
    }

    #[test]
    fn every_case_parses_natively() {
        for quick in [false, true] {
            for c in cases::all(quick) {
                if let Some(kind) = c.native {
                    Prepared::parse(kind, c.params.clone()).unwrap_or_else(|e| panic!("{}: {e}", c.name));
                }
            }
        }
    }
}
