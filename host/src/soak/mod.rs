//! Layer 12: `helix soak`: the router under attack for minutes at a time. A `helix serve` child,
//! or a fleet of them behind nginx (`served`), gets the bundled kernels plus hostile Wasm
//! kernels, then three phases of the same honest traffic (the bundled mix, past capacity): alone,
//! then with hostile jobs and bad requests mixed in while kernels are re-registered every few
//! seconds, then alone again (the baseline is the mean of the two quiet phases, so drift on a
//! shared machine cancels out). A sampler reads every replica's memory and queue as it goes; at
//! the end everything is stopped with SIGTERM and `report` checks that nothing was lost, every
//! counter balances (across the fleet, with the refusals its balancer retried), memory and
//! queues stayed bounded, nothing panicked, and honest goodput held up against the hostile-free
//! phase.

mod chaos;
mod report;
mod scrape;
mod served;
mod swap;

pub use report::SoakReport;
pub use served::Balanced;

use crate::load::mix::Mix;
use crate::load::target::{HttpTarget, Target};
use crate::load::{RunConfig, Source};
use crate::replica::{Http, copy_manifests};
use report::{Phase, Sample};
use scrape::Scrape;
use served::Served;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a soak runs, against what, and for how long.
pub struct SoakConfig {
    /// The `helix` executable to serve with.
    pub binary: PathBuf,
    /// The bundled manifests (copied; the copy is what the server loads and uploads change).
    pub manifests: PathBuf,
    /// The built test guests the hostile kernels come from.
    pub hostile_modules: PathBuf,
    /// The honest traffic's job mix.
    pub mix: Mix,
    /// Honest jobs per second; `None`: `load` × the capacity found by a search first.
    pub rate: Option<f64>,
    /// The honest rate as a multiple of the capacity found, when `rate` is `None`.
    pub load: f64,
    /// The most honest jobs per second `load` × C may come to: what the machine running the
    /// load generator and the balancer beside the replicas can carry (`None`: no cap).
    pub max_rate: Option<f64>,
    /// Each phase's length.
    pub duration: Duration,
    /// Capacity probes' length.
    pub probe: Duration,
    /// Light load before phase 1 (half the rate), so cost corrections settle.
    pub warmup: Duration,
    /// Hostile jobs and bad requests per honest job.
    pub hostile_share: f64,
    /// Time between kernel re-registrations during the attack phase.
    pub swap_every: Duration,
    /// Seeds the honest traffic (the same seed offers the same jobs) and the hostile traffic.
    pub seed: u64,
    /// Extra `helix serve` configuration (TOML), e.g. to turn quarantine off.
    pub server_config: String,
    /// Soak a fleet behind nginx instead of one replica (`None`).
    pub balanced: Option<Balanced>,
    /// Report each step on stderr as the soak goes.
    pub progress: bool,
}

/// Slow-loris connections opened at the start of the attack phase, shared among the replicas.
/// They go to the replicas themselves: a balancer in front holds slow clients on its own
/// deadline (nginx's `client_header_timeout`), and the replicas' deadline is what is tested.
const STALLED_CONNECTIONS: usize = 64;
/// The server's header deadline during a soak: short, so stalled connections are cut off
/// within a phase, but longer than the generator keeps idle connections (`target::IDLE`), so
/// the server never closes one the generator is about to use.
const STALL_DEADLINE_MS: u64 = 6000;
const _: () = assert!(STALL_DEADLINE_MS as u128 > crate::load::target::IDLE.as_millis());

fn say(cfg: &SoakConfig, text: &str) {
    if cfg.progress {
        eprintln!("soak: {text}");
    }
}

/// Runs a soak: starts the server, finds the capacity unless `rate` is given, warms up, runs
/// the three phases, stops the server and reports. An error when a step cannot be carried out
/// (the server does not start, a run or a `/metrics` scrape fails); failed checks are in the
/// report instead.
pub async fn run(cfg: SoakConfig) -> Result<SoakReport, String> {
    let work = std::env::temp_dir().join(format!("helix-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let manifests = work.join("manifests");
    copy_manifests(&cfg.manifests, &manifests)?;
    chaos::stage_hostile(&cfg.hostile_modules, &manifests.join("hostile"))?;
    let max_body_bytes = crate::serve::ServeConfig::default().max_body_bytes;
    // A short header deadline, so slow-loris connections are cut off within a phase.
    let config = format!(
        "watch_interval_ms = 500\nsummary_interval_s = 0\nlog_format = \"json\"\nheader_timeout_ms = {STALL_DEADLINE_MS}\n{}",
        cfg.server_config
    );
    let mut served = Served::start(&cfg.binary, &work, &manifests, &config, cfg.balanced.as_ref()).await?;
    let front = served.front();
    let logs: Vec<PathBuf> = served.replicas().iter().map(|r| r.log.clone()).collect();
    say(&cfg, &format!("serving {front} from {} (logs: {logs:?})", manifests.display()));
    let http = Arc::new(Http::new(&front));
    let replica_http: Arc<Vec<Http>> = Arc::new(served.replicas().iter().map(|r| Http::new(&r.base)).collect());
    let target = Arc::new(Target::Http(Box::new(HttpTarget::new(&front)?)));
    let source = Arc::new(Source::Mix(cfg.mix.clone()));
    let run_cfg = RunConfig { seed: cfg.seed, ..RunConfig::default() };

    let (rate, capacity) = match cfg.rate {
        Some(r) => (r, None),
        None => {
            say(&cfg, "finding capacity C with the honest mix");
            let search = crate::load::Search::default();
            let mut index = 0;
            let c = crate::load::find_capacity(search, async |rate| {
                index += 1;
                match crate::load::run(&target, &source, rate, cfg.probe, run_cfg, index).await {
                    Ok(r) => {
                        say(
                            &cfg,
                            &format!(
                                "  probe {rate:.0} jobs/s: {:.1}% within budget",
                                100.0 * r.all.within_budget_share
                            ),
                        );
                        (r.within_capacity(), Ok(()))
                    }
                    Err(e) => (false, Err(e)),
                }
            })
            .await?;
            for (_, _, r) in &c.probes {
                r.clone()?;
            }
            let rate = cfg.load * c.rate;
            (cfg.max_rate.map_or(rate, |cap| rate.min(cap)), Some(c.rate))
        }
    };

    if !cfg.warmup.is_zero() {
        say(&cfg, &format!("warming up: {:.0} jobs/s for {} s", rate / 2.0, cfg.warmup.as_secs_f64()));
        crate::load::run(&target, &source, rate / 2.0, cfg.warmup, run_cfg, 0).await?;
    }
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let phase_now = Arc::new(Mutex::new(Phase::Honest));
    let pids: Vec<u32> = served.replicas().iter().map(|r| r.pid()).collect();
    let sampler =
        tokio::spawn(sample_loop(replica_http.clone(), pids, samples.clone(), sampling.clone(), phase_now.clone()));
    let started = Instant::now();
    let rss = |served: &Served| served.replicas().iter().map(|r| r.resident_bytes()).collect::<Vec<_>>();
    let rss_ready = rss(&served);

    // The same run index, so both phases send the same honest jobs on the same schedule.
    const HONEST_RUN: u64 = 1 << 20;
    say(&cfg, &format!("phase 1: honest traffic alone, {rate:.0} jobs/s for {} s", cfg.duration.as_secs()));
    // Every probe and warm-up request has been answered: what the balancer logs from now on
    // belongs to the phases the counters cover.
    let phases_start = std::time::SystemTime::now();
    let before = scrape_all(&replica_http).await?;
    let honest = crate::load::run(&target, &source, rate, cfg.duration, run_cfg, HONEST_RUN).await?;
    let after_honest = scrape_all(&replica_http).await?;
    let rss_warm = rss(&served);

    *phase_now.lock().unwrap_or_else(|p| p.into_inner()) = Phase::Chaos;
    let fault_rate = rate * cfg.hostile_share;
    say(
        &cfg,
        &format!(
            "phase 2: the same traffic, {fault_rate:.0} hostile jobs and bad requests/s, a re-registration every {} s",
            cfg.swap_every.as_secs_f64()
        ),
    );
    let stop_swaps = Arc::new(AtomicBool::new(false));
    let swaps = tokio::spawn({
        let (http, manifests, every, stop) = (http.clone(), manifests.clone(), cfg.swap_every, stop_swaps.clone());
        async move { swap::run(http, &manifests, every, stop).await }
    });
    let stalls = tokio::spawn({
        let addrs: Vec<String> = served.replicas().iter().map(|r| r.addr().to_string()).collect();
        async move {
            let each = STALLED_CONNECTIONS.div_ceil(addrs.len());
            let wait = Duration::from_millis(2 * STALL_DEADLINE_MS);
            let tallies =
                futures_util::future::join_all(addrs.iter().map(|a| chaos::stall_connections(a, each, wait))).await;
            tallies.into_iter().fold(chaos::StallTally::default(), chaos::StallTally::add)
        }
    });
    let faults = tokio::spawn(chaos::run(http.clone(), fault_rate, cfg.duration, cfg.seed ^ 0xC4A05, max_body_bytes));
    let chaos_honest = crate::load::run(&target, &source, rate, cfg.duration, run_cfg, HONEST_RUN).await?;
    let faults = faults.await.map_err(|e| format!("the chaos sender failed: {e}"))??;
    let stalls = stalls.await.map_err(|e| format!("the stalled connections failed: {e}"))?;
    stop_swaps.store(true, Relaxed);
    let swaps = swaps.await.map_err(|e| format!("the swapper failed: {e}"))??;
    let after_chaos = scrape_all(&replica_http).await?;
    let rss_after_chaos = rss(&served);

    *phase_now.lock().unwrap_or_else(|p| p.into_inner()) = Phase::After;
    say(&cfg, "phase 3: honest traffic alone again");
    let honest_after = crate::load::run(&target, &source, rate, cfg.duration, run_cfg, HONEST_RUN).await?;
    let after_all = scrape_all(&replica_http).await?;
    sampling.store(false, Relaxed);
    let _ = sampler.await;
    let rss_end = rss(&served);
    let running_at_end = served.is_running();
    let log_panics: Vec<String> = served.replicas().iter().flat_map(|r| r.panics_in_log()).collect();
    say(&cfg, "stopping (SIGTERM)");
    let (exits, retried_refusals) = served.stop(Duration::from_secs(60), phases_start).await;

    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(SoakReport::new(report::Inputs {
        traffic: report::Traffic {
            capacity,
            rate,
            fault_rate,
            duration_s: cfg.duration.as_secs_f64(),
            elapsed_s: started.elapsed().as_secs_f64(),
            honest,
            chaos_honest,
            honest_after,
            faults,
            stalls,
            swaps,
        },
        scrapes: [before, after_honest, after_chaos, after_all],
        rss: [rss_ready, rss_warm, rss_after_chaos, rss_end],
        samples,
        running_at_end,
        log_panics,
        exits,
        retried_refusals,
        logs,
    }))
}

async fn scrape(http: &Http) -> Result<Scrape, String> {
    // Retried once: a pooled connection may have been closed under load.
    for attempt in 0..2 {
        match http.get("/metrics", Duration::from_secs(10)).await {
            Ok((200, body)) => return Ok(Scrape::parse(&String::from_utf8_lossy(&body))),
            other if attempt == 1 => return Err(format!("GET /metrics: {other:?}")),
            _ => {}
        }
    }
    unreachable!("the loop returns")
}

/// Every replica's `/metrics`, in replica order.
async fn scrape_all(replicas: &[Http]) -> Result<Vec<Scrape>, String> {
    futures_util::future::join_all(replicas.iter().map(scrape)).await.into_iter().collect()
}

/// Every half second: each replica's resident memory and CPU-lane queue depth, and the CPU time
/// of the replicas together and of this process.
async fn sample_loop(
    replicas: Arc<Vec<Http>>,
    pids: Vec<u32>,
    samples: Arc<Mutex<Vec<Sample>>>,
    running: Arc<AtomicBool>,
    phase: Arc<Mutex<Phase>>,
) {
    let start = Instant::now();
    while running.load(Relaxed) {
        let rss = pids.iter().map(|pid| crate::machine::resident_bytes_of(&pid.to_string())).collect();
        let scrapes = futures_util::future::join_all(replicas.iter().map(scrape)).await;
        let queue = scrapes.iter().map(|s| s.as_ref().ok().map(|s| s.sum("helix_cpu_queue_depth") as u64)).collect();
        let cpu: Option<Vec<f64>> = pids.iter().map(|pid| crate::machine::cpu_seconds_of(&pid.to_string())).collect();
        let phase = *phase.lock().unwrap_or_else(|p| p.into_inner());
        let s = Sample {
            at_s: start.elapsed().as_secs_f64(),
            phase,
            rss_bytes: rss,
            queue_depth: queue,
            server_cpu_s: cpu.map(|c| c.iter().sum()),
            client_cpu_s: crate::machine::cpu_seconds_of("self"),
        };
        samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
