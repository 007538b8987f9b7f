//! `helix`: the HelixRouter command line.

use clap::{Parser, Subcommand};
use helix_host::serve::{LogFormat, Overrides, ServeConfig};
use helix_host::{Criticality, Job, Router, RouterConfig, Runtime};
use helix_math::{Params, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "helix", version, about = "HelixRouter: a latency-budgeted compute router for quant and ML kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the router over HTTP until SIGTERM or Ctrl-C.
    Serve {
        /// A TOML config file (every field optional); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The manifests folder [default: manifests].
        #[arg(long, env = "HELIX_MANIFESTS")]
        manifests: Option<PathBuf>,
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Run one job through the router and print its outcome.
    Run {
        /// Kernel name, e.g. mc-option, mc-var, particle-filter, ewma-cov, hashmix, primecount.
        kernel: String,
        /// A parameter, NAME=VALUE; arrays as comma-separated values, matrices row-major.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Latency budget in milliseconds.
        #[arg(long, default_value_t = 1000)]
        budget_ms: u64,
        /// Random seed (default: derived from the job id).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, value_enum, default_value = "critical")]
        criticality: CriticalityArg,
        /// Which build to run where a kernel has both.
        #[arg(long, value_enum)]
        runtime: Option<RuntimeArg>,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
        manifests: PathBuf,
    },
    /// Every bundled kernel at fixed work, native and Wasm (fuel on and off): units/s, the
    /// Wasm/native ratio, fuel per unit and instantiation latency.
    Bench {
        /// An eighth of the work and three runs: a quick look, not numbers to publish.
        #[arg(long)]
        quick: bool,
        /// Runs per measurement [default: 5, or 3 with --quick].
        #[arg(long)]
        runs: Option<usize>,
        /// Also write the numbers, with the machine, as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
        manifests: PathBuf,
    },
    /// Open-loop load: jobs arrive on a schedule whatever the router does, and each is timed
    /// from its scheduled arrival. One run (--rate), or a sweep that finds capacity C and runs
    /// at 0.5, 1, 1.5, 2 and 3 × C.
    Load(LoadArgs),
    /// A soak under attack: `helix serve` with hostile Wasm kernels beside the bundled ones,
    /// honest traffic past capacity alone and then with hostile jobs, bad requests and kernel
    /// re-registrations mixed in; checks that nothing is lost and everything stays bounded.
    Soak(SoakArgs),
    /// List the registered kernels, or check one manifest.
    Kernels {
        #[command(subcommand)]
        action: Option<KernelsAction>,
        #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
        manifests: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct LoadArgs {
    /// A running `helix serve` (http://HOST:PORT); without it, a router in this process.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// A job mix (TOML) [default: the bundled mix, host/mixes/default.toml].
    #[arg(long, value_name = "FILE", conflicts_with = "trace")]
    mix: Option<PathBuf>,
    /// Replay a classic HelixRouter trace (JSON lines) instead of a mix.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Jobs per second.
    #[arg(long, conflicts_with = "sweep")]
    rate: Option<f64>,
    /// Seconds per run (each multiple of C, in a sweep).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Find capacity C, then run at 0.5, 1, 1.5, 2 and 3 × C.
    #[arg(long)]
    sweep: bool,
    /// Sweep: the first rate probed, jobs/s.
    #[arg(long, default_value_t = 200.0)]
    start_rate: f64,
    /// Sweep: the highest rate probed, jobs/s.
    #[arg(long, default_value_t = 100_000.0)]
    max_rate: f64,
    /// Sweep: seconds per capacity probe.
    #[arg(long, default_value_t = 5.0)]
    probe_duration: f64,
    /// Seconds of light load (half the start rate, or of --rate if lower) before measuring, so
    /// the router's cost corrections settle; not reported.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// How arrivals are spaced: exponential gaps (independent clients) or evenly.
    #[arg(long, default_value = "poisson", value_parser = ["poisson", "constant"])]
    arrivals: String,
    /// Seeds the arrival times and the jobs drawn: the same seed offers the same load.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Jobs in flight at once; a job due past it is not issued and counts as failed.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Write the numbers, with the machine, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw goodput and p99 against offered load (needs --sweep).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
    /// In-process router only: a `helix serve` config file whose [router] section to use.
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SoakArgs {
    /// Seconds per phase (honest alone, then under attack).
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Honest jobs per second [default: --load × the capacity C found first].
    #[arg(long)]
    rate: Option<f64>,
    /// The honest load as a multiple of the capacity C.
    #[arg(long, default_value_t = 3.0)]
    load: f64,
    /// Seconds per capacity probe.
    #[arg(long, default_value_t = 5.0)]
    probe_duration: f64,
    /// Seconds of light load before phase 1, so cost corrections settle.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Hostile jobs and bad requests per honest job.
    #[arg(long, default_value_t = 0.1)]
    hostile_share: f64,
    /// Seconds between kernel re-registrations.
    #[arg(long, default_value_t = 2.0)]
    swap_every: f64,
    /// The honest job mix (TOML) [default: the bundled mix].
    #[arg(long, value_name = "FILE")]
    mix: Option<PathBuf>,
    /// Seeds the traffic: the same seed offers the same jobs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Turn kernel quarantine off in the server (to see what it saves).
    #[arg(long)]
    no_quarantine: bool,
    /// Extra `helix serve` configuration (TOML) for the server under test.
    #[arg(long, value_name = "FILE")]
    server_config: Option<PathBuf>,
    /// Where the hostile test guests were built [default: target/wasm/wasm32-wasip2/release
    /// beside the manifests folder].
    #[arg(long, value_name = "DIR")]
    hostile_modules: Option<PathBuf>,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[arg(long, default_value = "manifests", env = "HELIX_MANIFESTS")]
    manifests: PathBuf,
}

#[derive(Subcommand)]
enum KernelsAction {
    /// Validate a manifest and its module (schema, sha256, contract exports, imports) without
    /// starting a server.
    Check { path: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CriticalityArg {
    Critical,
    Sheddable,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RuntimeArg {
    Native,
    Wasm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("helix: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve { config, listen, manifests, log_format } => {
            let config = ServeConfig::load(config.as_deref(), Overrides { listen, manifests, log_format })?;
            init_logs(config.log_format, "info");
            let clean = helix_host::serve::serve(config).await?;
            Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Run { kernel, params, budget_ms, seed, criticality, runtime, json, manifests } => {
            init_logs(LogFormat::Text, "warn");
            let router = router(&manifests)?;
            let mut job = Job::new(1, &kernel, parse_params(&params)?, Duration::from_millis(budget_ms));
            job.seed = seed;
            job.criticality = match criticality {
                CriticalityArg::Critical => Criticality::Critical,
                CriticalityArg::Sheddable => Criticality::Sheddable,
            };
            job.runtime = runtime.map(|r| match r {
                RuntimeArg::Native => Runtime::Native,
                RuntimeArg::Wasm => Runtime::Wasm,
            });
            let outcome = router.submit(job).await;
            if json {
                println!("{}", outcome.to_json());
            } else {
                print!("{}", helix_host::outcome::render_text(&outcome));
            }
            Ok(match outcome.status {
                helix_host::Status::Completed | helix_host::Status::Degraded => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            })
        }
        Command::Bench { quick, runs, json, manifests } => {
            init_logs(LogFormat::Text, "warn");
            let cfg = helix_host::bench::BenchConfig {
                quick,
                runs: runs.unwrap_or(if quick { 3 } else { 5 }).max(1),
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let report = tokio::task::spawn_blocking(move || helix_host::bench::run(&manifests, cfg))
                .await
                .map_err(|e| format!("the bench panicked: {e}"))??;
            print!("{}", report.render_table());
            if let Some(path) = json {
                write_json(&path, &serde_json::to_value(&report).map_err(|e| e.to_string())?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            init_logs(LogFormat::Text, "warn");
            load(args).await
        }
        Command::Soak(args) => {
            init_logs(LogFormat::Text, "warn");
            soak(args).await
        }
        Command::Kernels { action: Some(KernelsAction::Check { path }), .. } => {
            let engine = helix_host::wasm::WasmEngine::new(RouterConfig::default().wasm)?;
            match helix_host::registry::Kernel::load(&path, Some(&engine)) {
                Ok(k) => {
                    let m = &k.manifest;
                    println!("ok: {} {} ({})", m.name, m.version, m.runtime.as_str());
                    if let helix_host::registry::Entry::Wasm(w) = &k.entry {
                        println!("  module sha256 {}", w.sha256);
                        println!("  exports {}", helix_host::wasm::CONTRACT_EXPORT);
                        println!(
                            "  imports {}",
                            if w.imports.is_empty() { "nothing".to_string() } else { w.imports.join(", ") }
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("refused: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Kernels { action: None, manifests, json } => {
            let router = router(&manifests)?;
            let mut kernels = router.registry().all();
            kernels.sort_by(|a, b| {
                (&a.manifest.name, a.runtime().as_str()).cmp(&(&b.manifest.name, b.runtime().as_str()))
            });
            if json {
                let list: Vec<_> =
                    kernels.iter().map(|k| serde_json::to_value(&k.manifest).expect("manifest serialises")).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<16} {:<8} {:<8} {:<10} {:>8}  {:<9}  units (floor)",
                    "kernel", "version", "runtime", "cost", "scaling", "batching"
                );
                for k in &kernels {
                    let m = &k.manifest;
                    let units = m
                        .units
                        .as_ref()
                        .map_or("-".to_string(), |u| format!("{} ({:.0}%)", u.param, u.floor_fraction * 100.0));
                    let batch = m.batch.as_ref().map_or("-".to_string(), |b| format!("up to {}", b.max_size));
                    let cost = format!("{}us+{}ns", m.cost.fixed_us, m.cost.per_unit_ns);
                    println!(
                        "{:<16} {:<8} {:<8} {:<10} {:>8.2}  {:<9}  {units}",
                        m.name,
                        m.version,
                        m.runtime.as_str(),
                        cost,
                        m.scaling_potential,
                        batch
                    );
                }
            }
            for e in router.load_errors() {
                eprintln!("refused: {e}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    if s.is_finite() && s > 0.0 && s <= 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("--{what} must be a number of seconds in (0, 86400], got {s}"))
    }
}

async fn soak(a: SoakArgs) -> Result<ExitCode, String> {
    let manifests = std::path::absolute(&a.manifests).map_err(|e| e.to_string())?;
    let hostile_modules = match a.hostile_modules {
        Some(d) => d,
        None => manifests.parent().unwrap_or(&manifests).join("target/wasm/wasm32-wasip2/release"),
    };
    let mut server_config = match &a.server_config {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => String::new(),
    };
    if a.no_quarantine {
        server_config.push_str("\n[router.quarantine]\nafter_failures = 0\n");
    }
    if !(a.hostile_share > 0.0 && a.load > 0.0) {
        return Err("--hostile-share and --load must be positive".into());
    }
    let cfg = helix_host::soak::SoakConfig {
        binary: std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?,
        manifests,
        hostile_modules,
        mix: match &a.mix {
            Some(m) => helix_host::load::mix::Mix::load(m)?,
            None => helix_host::load::mix::Mix::bundled(),
        },
        rate: a.rate,
        load: a.load,
        duration: seconds("duration", a.duration)?,
        probe: seconds("probe-duration", a.probe_duration)?,
        warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
        hostile_share: a.hostile_share,
        swap_every: seconds("swap-every", a.swap_every)?,
        seed: a.seed,
        server_config,
        progress: true,
    };
    let machine = helix_host::machine::Machine::describe();
    eprintln!("machine: {}", machine.summary());
    let report = helix_host::soak::run(cfg).await?;
    print!("{}", report.render_text());
    if let Some(path) = &a.json {
        let json = serde_json::json!({"machine": machine, "soak": report});
        write_json(path, &json)?;
    }
    Ok(if report.passed(true) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn load(a: LoadArgs) -> Result<ExitCode, String> {
    use helix_host::load::{self, Source, sweep, target::Target};
    use std::sync::Arc;
    if a.rate.is_none() && !a.sweep {
        return Err("give --rate R (jobs per second) for one run, or --sweep".into());
    }
    if a.plot.is_some() && !a.sweep {
        return Err("--plot draws a sweep: add --sweep".into());
    }
    let duration = seconds("duration", a.duration)?;
    let source = Arc::new(match (&a.mix, &a.trace) {
        (_, Some(t)) => Source::Trace(load::trace::Trace::load(t)?),
        (Some(m), None) => Source::Mix(load::mix::Mix::load(m)?),
        (None, None) => Source::Mix(load::mix::Mix::bundled()),
    });
    let target = Arc::new(match &a.target {
        Some(url) => Target::Http(Box::new(load::target::HttpTarget::new(url)?)),
        None => {
            let config = ServeConfig::load(a.config.as_deref(), Overrides::default())?;
            let router = Router::from_dir(config.router, &a.manifests).map_err(|e| e.to_string())?;
            for (kernel, runtime) in source.kernels() {
                if router.registry().pick(&kernel, runtime).is_none() {
                    let build = runtime.map_or(String::new(), |r| format!(" ({})", r.as_str()));
                    let hint = if runtime == Some(Runtime::Wasm) || kernel == "basket-option" {
                        " (the Wasm kernels are staged by `cargo xtask kernels`)"
                    } else {
                        ""
                    };
                    eprintln!(
                        "warning: the load sends {kernel}{build}, which {} does not register: \
                         those jobs will be rejected{hint}",
                        a.manifests.display()
                    );
                }
            }
            Target::InProcess(Arc::new(router))
        }
    });
    let cfg = load::RunConfig {
        arrivals: a.arrivals.parse()?,
        seed: a.seed,
        max_in_flight: a.max_in_flight.max(1),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let machine = helix_host::machine::Machine::describe();
    eprintln!("machine: {}", machine.summary());
    let warm_rate = a.rate.unwrap_or(a.start_rate).min(a.start_rate) / 2.0;
    if a.warmup > 0.0 {
        eprintln!("warming up: {warm_rate:.0} jobs/s for {} s", a.warmup);
        load::run(&target, &source, warm_rate, seconds("warmup", a.warmup)?, cfg, 0).await?;
    }
    if let Some(rate) = a.rate {
        let report = load::run(&target, &source, rate, duration, cfg, 1).await?;
        print!("{}", report.render_text());
        if let Some(path) = &a.json {
            let json = serde_json::json!({"machine": machine, "run": report.to_json()});
            write_json(path, &json)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let probe_duration = seconds("probe-duration", a.probe_duration)?;
    let search = sweep::Search { start_rate: a.start_rate, max_rate: a.max_rate, tolerance: 0.05 };
    let sweep = load::sweep_runs(&target, &source, search, probe_duration, duration, cfg).await?;
    let c = sweep.capacity;
    for (m, report) in &sweep.runs {
        println!("--- {m} × C ---");
        print!("{}", report.render_text());
    }
    println!();
    print!("{}", sweep.render_table());
    if let Some(path) = &a.json {
        let json = serde_json::json!({"machine": machine, "sweep": sweep});
        write_json(path, &json)?;
    }
    if let Some(path) = &a.plot {
        let title = format!("helix load --sweep: C = {c:.0} jobs/s, {}", machine.cpu);
        let svg = load::plot::sweep_svg(&sweep, &title)?;
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs go to stderr; `RUST_LOG` overrides the level (`RUST_LOG=debug` shows every decision).
fn init_logs(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn router(manifests: &std::path::Path) -> Result<Router, String> {
    Router::from_dir(RouterConfig::default(), manifests).map_err(|e| e.to_string())
}

/// `NAME=VALUE`: a number, comma-separated numbers (an array), or text (an enum choice).
fn parse_params(raw: &[String]) -> Result<Params, String> {
    let mut params = Params::new();
    for p in raw {
        let (name, value) = p.split_once('=').ok_or_else(|| format!("--param {p:?} must be NAME=VALUE"))?;
        let value = value.trim();
        let parsed = if value.contains(',') {
            let xs: Result<Vec<f64>, _> = value.split(',').map(|x| x.trim().parse::<f64>()).collect();
            Value::Array(xs.map_err(|_| format!("--param {name}: {value:?} is not a list of numbers"))?)
        } else if let Ok(x) = value.parse::<f64>() {
            Value::Number(x)
        } else {
            Value::Text(value.to_string())
        };
        params = params.with(name.trim(), parsed);
    }
    Ok(params)
}
