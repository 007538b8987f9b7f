//! `helix load`: open-loop load against an in-process router or a running `helix serve`.

use super::{init_logs, seconds, write_json};
use helix_host::load::{self, Search, Source, Target};
use helix_host::serve::{LogFormat, Overrides, ServeConfig};
use helix_host::{Router, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub(super) struct LoadArgs {
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
    /// How the rate moves during the run: steady, step:AT_S:FROM:TO (e.g. step:5:0.5:3: half
    /// the rate for 5 s, then three times it) or bursts:ON_S:OFF_S:HIGH:LOW, as multiples of
    /// --rate. A sweep runs steady, then one step from 0.5 to 3 × C.
    #[arg(long, default_value = "steady", conflicts_with = "sweep")]
    profile: String,
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
    /// In-process router only: a `helix serve` config file whose `[router]` section to use.
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    config: Option<PathBuf>,
}

pub(super) async fn run(a: LoadArgs) -> Result<ExitCode, String> {
    init_logs(LogFormat::Text, "warn");
    if a.rate.is_none() && !a.sweep {
        return Err("give --rate R (jobs per second) for one run, or --sweep".into());
    }
    if a.plot.is_some() && !a.sweep {
        return Err("--plot draws a sweep: add --sweep".into());
    }
    let duration = seconds("duration", a.duration)?;
    let source = Arc::new(match (&a.mix, &a.trace) {
        (_, Some(t)) => Source::Trace(load::Trace::load(t)?),
        (Some(m), None) => Source::Mix(load::Mix::load(m)?),
        (None, None) => Source::Mix(load::Mix::bundled()),
    });
    let target = Arc::new(match &a.target {
        Some(url) => Target::Http(Box::new(load::HttpTarget::new(url)?)),
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
        profile: a.profile.parse()?,
        seed: a.seed,
        max_in_flight: a.max_in_flight.max(1),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let machine = helix_host::machine::Machine::describe();
    eprintln!("machine: {}", machine.summary());
    let warm_rate = a.rate.unwrap_or(a.start_rate).min(a.start_rate) / 2.0;
    if a.warmup > 0.0 {
        eprintln!("warming up: {warm_rate:.0} jobs/s for {} s", a.warmup);
        let steady = load::RunConfig { profile: load::Profile::Steady, ..cfg };
        load::run(&target, &source, warm_rate, seconds("warmup", a.warmup)?, steady, 0).await?;
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
    let search = Search { start_rate: a.start_rate, max_rate: a.max_rate, tolerance: 0.05 };
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
        let svg = load::sweep_svg(&sweep, &title)?;
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
