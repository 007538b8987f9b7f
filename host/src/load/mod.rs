//! Layer 9: `helix load`: an open-loop load generator. Jobs arrive on a schedule (`schedule`),
//! drawn from a job mix or a classic trace (`mix`, `trace`), and go to a router in this process or
//! a server over HTTP (`target`); `drive` issues them and times each from its due instant into
//! `record`, `report` turns the counts into numbers, `sweep` finds capacity and runs past it,
//! `plot` draws the sweep.

mod drive;
pub(crate) mod mix;
mod plot;
mod record;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod schedule;
mod sweep;
pub(crate) mod target;
mod trace;

pub use mix::Mix;
pub use plot::sweep_svg;
pub use report::RunReport;
pub use schedule::{Arrivals, Profile};
pub use sweep::{Search, StepReport, SweepReport, find_capacity};
pub use target::{HttpTarget, Target};
pub use trace::Trace;

use crate::job::Job;
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use schedule::Schedule;
use std::sync::Arc;
use std::time::Duration;

/// Where jobs come from.
pub enum Source {
    /// Jobs drawn at random from a job mix.
    Mix(Mix),
    /// A classic trace's jobs, replayed in order.
    Trace(Trace),
}

impl Source {
    /// The kernels (and runtimes) the source sends, to check against a registry before a run.
    pub fn kernels(&self) -> Vec<(String, Option<crate::job::Runtime>)> {
        let mut k: Vec<_> = match self {
            Source::Mix(m) => m.entries.iter().map(|e| (e.kernel.clone(), e.runtime)).collect(),
            Source::Trace(t) => t.jobs.iter().map(|j| (Job::from(j.classic.clone()).kernel, None)).collect(),
        };
        k.sort();
        k.dedup();
        k
    }
}

/// How every run of a `helix load` invocation is driven.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig {
    /// How arrivals are spaced.
    pub arrivals: Arrivals,
    /// How the rate moves during each run.
    pub profile: Profile,
    /// Seeds the arrival times and the jobs drawn from a mix, so a run can be repeated.
    pub seed: u64,
    /// Jobs in flight at once; past it a due job is not issued and counts as failed.
    pub max_in_flight: usize,
    /// Show a progress bar on the terminal during each run.
    pub progress: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            arrivals: Arrivals::Poisson,
            profile: Profile::Steady,
            seed: 1,
            max_in_flight: 10_000,
            progress: false,
        }
    }
}

/// One run at `rate` jobs/s for `duration`. `run_index` keeps job ids (and so default seeds)
/// distinct across the runs of a sweep.
pub async fn run(
    target: &Arc<Target>,
    source: &Arc<Source>,
    rate: f64,
    duration: Duration,
    cfg: RunConfig,
    run_index: u64,
) -> Result<RunReport, String> {
    let schedule = Schedule::new(cfg.arrivals, rate, duration, cfg.seed ^ run_index.wrapping_mul(0x9E37))?
        .with_profile(cfg.profile)?;
    // Its own stream, so the jobs drawn do not depend on the arrival process.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(1 + run_index);
    let base = run_index << 40;
    let src = source.clone();
    let make_job = move |i: u64| match &*src {
        Source::Mix(m) => m.sample(base + i, &mut rng),
        Source::Trace(t) => t.job(i, base + i),
    };
    let t = target.clone();
    let submit = move |job: Job| {
        let t = t.clone();
        async move { t.submit(job).await }
    };
    let bar = progress_bar(cfg.progress, rate, duration);
    let tick = |issued: u64, in_flight: usize, at_s: f64| {
        bar.set_position((at_s * 1e3) as u64);
        bar.set_message(format!("{issued} issued, {in_flight} in flight"));
    };
    let lane_before = target.lane().await;
    let recorder = drive::drive(schedule, make_job, submit, cfg.max_in_flight, &tick).await;
    bar.finish_and_clear();
    let mut report = RunReport::new(&target.describe(), cfg.arrivals.as_str(), rate, duration.as_secs_f64(), &recorder);
    report.replay = match (lane_before, target.lane().await) {
        (Some(before), Some(after)) => Some(replay::of_run(&recorder.decided, before, after)),
        _ => None,
    };
    report.profile = cfg.profile.describe();
    if !report.balanced() {
        return Err(format!("the counters do not balance: {:?}", report.all.counts));
    }
    Ok(report)
}

/// Finds the capacity C (probes of `probe` each, reported on stderr as they finish), then runs
/// `duration` at each of `sweep::MULTIPLES` × C.
pub async fn sweep_runs(
    target: &Arc<Target>,
    source: &Arc<Source>,
    search: sweep::Search,
    probe: Duration,
    duration: Duration,
    cfg: RunConfig,
) -> Result<sweep::SweepReport, String> {
    let cfg = RunConfig { profile: Profile::Steady, ..cfg };
    let mut index = 1;
    let capacity = sweep::find_capacity(search, async |rate| {
        index += 1;
        match run(target, source, rate, probe, cfg, index).await {
            Ok(r) => {
                let ok = r.within_capacity();
                eprintln!(
                    "probe {rate:>8.0} jobs/s: {:.2}% answered within budget, goodput {:.0}/s -> {}",
                    100.0 * r.all.within_budget_share,
                    r.goodput,
                    if ok { "within capacity" } else { "over" }
                );
                (ok, Ok(r))
            }
            Err(e) => (false, Err(e)),
        }
    })
    .await?;
    let mut probes = Vec::new();
    for (rate, ok, r) in capacity.probes {
        let r = r?;
        probes.push(sweep::Probe { rate, within_capacity: ok, within_budget_share: r.all.within_budget_share });
    }
    let c = capacity.rate;
    eprintln!("capacity C = {c:.0} jobs/s");
    let mut runs = Vec::new();
    for m in sweep::MULTIPLES {
        index += 1;
        runs.push((m, run(target, source, m * c, duration, cfg, index).await?));
    }
    let (from, to) = sweep::STEP;
    let at_s = duration.as_secs_f64() / 2.0;
    let stepping = RunConfig { profile: Profile::Step { at_s, from, to }, ..cfg };
    index += 1;
    let stepped = run(target, source, c, duration, stepping, index).await?;
    let steady = runs.iter().find(|(m, _)| *m == to).map_or(0.0, |(_, r)| r.goodput);
    let step = Some(sweep::StepReport::of(stepped, at_s, steady));
    Ok(sweep::SweepReport { capacity: c, capacity_capped: capacity.capped, probes, runs, step })
}

fn progress_bar(show: bool, rate: f64, duration: Duration) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:32}] {elapsed:>4} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{rate:.0} jobs/s"));
    bar
}
