//! Capacity and overload: find C, the highest rate whose p99 stays within budget (doubling
//! until a probe misses, then bisecting), then run at multiples of C to see how the router
//! behaves past it.

use super::report::RunReport;
use serde::Serialize;
use std::fmt::Write;

/// The rates the sweep reports, as multiples of the capacity.
pub const MULTIPLES: [f64; 5] = [0.5, 1.0, 1.5, 2.0, 3.0];

/// The sweep's step: from `STEP.0` to `STEP.1` times the capacity, halfway through a run.
pub const STEP: (f64, f64) = (0.5, 3.0);

/// How close a window's goodput must come to the steady value for the step to have settled.
pub const SETTLED_WITHIN: f64 = 0.10;

/// The run with the step in it, and how soon after the step its goodput settled at the steady
/// goodput of a run at the step's upper rate.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// When the rate stepped, seconds into the run.
    pub at_s: f64,
    /// The steady goodput it is held to, jobs per second (the run at `STEP.1` × C).
    pub steady_goodput: f64,
    /// From the step to the start of the first window whose goodput is within
    /// `SETTLED_WITHIN` of the steady goodput, milliseconds; `None` if none is.
    pub settled_after_ms: Option<f64>,
    /// From that window on, the lowest window goodput as a share of the steady goodput.
    pub lowest_after: f64,
    /// The run itself, with its windows.
    pub run: RunReport,
}

impl StepReport {
    /// Judges `run`, which stepped at `at_s`, against `steady_goodput`.
    pub fn of(run: RunReport, at_s: f64, steady_goodput: f64) -> StepReport {
        let after: Vec<_> = run.windows.iter().filter(|w| w.start_s + 1e-9 >= at_s).collect();
        let near = |g: f64| (g - steady_goodput).abs() <= SETTLED_WITHIN * steady_goodput;
        let first = after.iter().position(|w| near(w.goodput));
        let lowest_after = first.map_or(0.0, |i| {
            after[i..].iter().map(|w| w.goodput / steady_goodput.max(1e-9)).fold(f64::INFINITY, f64::min)
        });
        StepReport {
            at_s,
            steady_goodput,
            settled_after_ms: first.map(|i| (after[i].start_s - at_s) * 1e3),
            lowest_after,
            run,
        }
    }
}

/// How `find_capacity` searches for the capacity; rates are jobs per second.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    /// The first rate probed.
    pub start_rate: f64,
    /// Probes stop doubling here: C is reported as at least this.
    pub max_rate: f64,
    /// Bisection stops when the bracket is this narrow, relative to its low end.
    pub tolerance: f64,
}

impl Default for Search {
    fn default() -> Self {
        Search { start_rate: 200.0, max_rate: 100_000.0, tolerance: 0.05 }
    }
}

/// The search's answer, with every probe it ran (rate, within capacity, what the probe saw).
#[derive(Clone, Debug)]
pub struct Capacity<T> {
    pub rate: f64,
    /// C is at least `max_rate`: no probe missed.
    pub capped: bool,
    pub probes: Vec<(f64, bool, T)>,
}

/// Lowest rate probed before giving up: below it the target cannot meet budgets at all.
const MIN_RATE: f64 = 1.0;

/// Finds the highest rate at which `probe` passes. `probe(rate)` runs the load at `rate` and
/// says whether it stayed within capacity.
pub async fn find_capacity<T>(
    search: Search,
    mut probe: impl AsyncFnMut(f64) -> (bool, T),
) -> Result<Capacity<T>, String> {
    if !(search.start_rate >= MIN_RATE && search.max_rate >= search.start_rate && search.tolerance > 0.0) {
        return Err(format!(
            "the search needs 1 <= start rate <= max rate and a positive tolerance (got {:?})",
            search
        ));
    }
    let mut probes = Vec::new();
    let mut run = async |rate: f64, probes: &mut Vec<(f64, bool, T)>| {
        let (ok, seen) = probe(rate).await;
        probes.push((rate, ok, seen));
        ok
    };
    // Bracket: the highest passing rate and the lowest failing one.
    let (mut lo, mut hi) = (None::<f64>, None::<f64>);
    let mut rate = search.start_rate;
    while lo.is_none() || hi.is_none() {
        if run(rate, &mut probes).await {
            lo = Some(rate);
            if hi.is_none() {
                if rate >= search.max_rate {
                    return Ok(Capacity { rate, capped: true, probes });
                }
                rate = (rate * 2.0).min(search.max_rate);
            }
        } else {
            hi = Some(rate);
            if lo.is_none() {
                rate /= 2.0;
                if rate < MIN_RATE {
                    return Err(format!("even {} jobs/s misses its budgets: no capacity to measure", rate * 2.0));
                }
            }
        }
    }
    let (mut lo, mut hi) = (lo.expect("bracketed"), hi.expect("bracketed"));
    while (hi - lo) / lo > search.tolerance {
        let mid = (lo + hi) / 2.0;
        if run(mid, &mut probes).await {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Capacity { rate: lo, capped: false, probes })
}

/// A probe as the sweep's report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub rate: f64,
    pub within_capacity: bool,
    pub within_budget_share: f64,
}

/// A finished sweep: the capacity, the probes that found it, and a run at each multiple.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    /// The capacity C, jobs per second.
    pub capacity: f64,
    /// C is at least `capacity`: every probe up to the search's `max_rate` passed.
    pub capacity_capped: bool,
    /// The capacity search's probes, in the order they ran.
    pub probes: Vec<Probe>,
    /// One run per multiple of C in `MULTIPLES`: (the multiple, its report).
    pub runs: Vec<(f64, RunReport)>,
    /// The run that steps from `STEP.0` to `STEP.1` × C halfway through.
    pub step: Option<StepReport>,
}

impl SweepReport {
    /// The summary table, one row per multiple of C.
    pub fn render_table(&self) -> String {
        let mut s = String::new();
        let c = self.capacity;
        let _ = writeln!(
            s,
            "capacity C = {c:.0} jobs/s{} (the highest rate with 99% of offered jobs answered within budget)",
            if self.capacity_capped { " or more" } else { "" }
        );
        let _ = writeln!(
            s,
            "| load | offered/s | goodput/s | goodput/C | of which in full | in budget | p99 ms (answered) | p99/budget critical | p99/budget sheddable | critical: done / degraded / dropped | critical in budget: all / in full | fewest critical in budget (kernel) | sheddable: done / degraded / dropped | false rejects | late admits | start error p50 / p99 |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (m, r) in &self.runs {
            let class = |c: &super::report::ClassReport| {
                let n = c.counts.offered.max(1) as f64;
                format!(
                    "{:.1}% / {:.1}% / {:.1}%",
                    100.0 * c.counts.completed as f64 / n,
                    100.0 * c.counts.degraded as f64 / n,
                    100.0 * c.counts.dropped as f64 / n
                )
            };
            let worst = r
                .by_kernel
                .iter()
                .filter(|k| k.critical_offered > 0)
                .min_by(|a, b| a.critical_within_budget_share.total_cmp(&b.critical_within_budget_share))
                .map_or("-".to_string(), |k| format!("{:.1}% ({})", 100.0 * k.critical_within_budget_share, k.kernel));
            let replay = |share: fn(&super::replay::ReplayVerdict) -> f64| {
                r.replay.as_ref().map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * share(v)))
            };
            let _ = writeln!(
                s,
                "| {m}×C | {:.0} | {:.0} | {:.2} | {:.0} | {:.1}% | {:.1} | {:.2} | {:.2} | {} | {:.1}% / {:.1}% | {worst} | {} | {} | {} | {:.1}% / {:.1}% |",
                r.offered_rate,
                r.goodput,
                r.goodput / c,
                r.all.goodput_full,
                100.0 * r.all.within_budget_share,
                r.all.end_to_end_us.p99 as f64 / 1e3,
                r.critical.p99_budget_use,
                r.sheddable.p99_budget_use,
                class(&r.critical),
                100.0 * r.critical.within_budget_share,
                100.0 * r.critical.within_budget_full_share,
                class(&r.sheddable),
                replay(super::replay::ReplayVerdict::false_reject_share),
                replay(super::replay::ReplayVerdict::late_admit_share),
                100.0 * r.start_error.p50,
                100.0 * r.start_error.p99
            );
        }
        if let Some(step) = &self.step {
            let settled = step.settled_after_ms.map_or("never, in this run".to_string(), |ms| {
                format!("{ms:.0} ms after it (its lowest window after that: {:.0}%)", 100.0 * step.lowest_after)
            });
            let _ = writeln!(
                s,
                "step from {}×C to {}×C at {} s: goodput within {:.0}% of the steady {}×C goodput ({:.0}/s) {settled}",
                STEP.0,
                STEP.1,
                step.at_s,
                100.0 * SETTLED_WITHIN,
                STEP.1,
                step.steady_goodput
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn the_search_brackets_then_bisects_to_within_tolerance() {
        for true_capacity in [37.0, 200.0, 1234.0, 9000.0] {
            let search = Search { start_rate: 200.0, max_rate: 100_000.0, tolerance: 0.02 };
            let c = block_on(find_capacity(search, async |r| (r <= true_capacity, ()))).unwrap();
            assert!(!c.capped);
            assert!(c.rate <= true_capacity && c.rate >= true_capacity / 1.02, "{true_capacity}: {}", c.rate);
            // Every probe's verdict is the predicate's, and the answer was itself a passing probe.
            assert!(c.probes.iter().all(|(r, ok, _)| *ok == (*r <= true_capacity)));
            assert!(c.probes.iter().any(|(r, ok, _)| *ok && *r == c.rate));
        }
    }

    #[test]
    fn the_search_stops_at_its_ceiling_and_gives_up_at_its_floor() {
        let s = Search { start_rate: 100.0, max_rate: 1000.0, tolerance: 0.05 };
        let c = block_on(find_capacity(s, async |_| (true, ()))).unwrap();
        assert!(c.capped && c.rate == 1000.0);
        assert_eq!(c.probes.iter().map(|p| p.0).collect::<Vec<_>>(), vec![100.0, 200.0, 400.0, 800.0, 1000.0]);
        let e = block_on(find_capacity(s, async |_| (false, ()))).unwrap_err();
        assert!(e.contains("no capacity"), "{e}");
        let bad = Search { start_rate: 0.0, ..s };
        assert!(block_on(find_capacity(bad, async |_| (true, ()))).is_err());
    }

    #[test]
    fn a_step_settles_at_the_first_window_near_the_steady_goodput() {
        use super::super::record::Recorder;
        use super::super::report::WindowReport;
        let mut run = RunReport::new("t", "poisson", 100.0, 1.0, &Recorder::default());
        let goodputs = [300.0, 310.0, 500.0, 850.0, 950.0, 1020.0, 980.0];
        run.windows = goodputs
            .iter()
            .enumerate()
            .map(|(i, &g)| WindowReport {
                start_s: i as f64 * 0.1,
                offered_rate: 0.0,
                goodput: g,
                goodput_full: g,
                p99_ms: 0.0,
            })
            .collect();
        let step = StepReport::of(run.clone(), 0.2, 1000.0);
        assert!((step.settled_after_ms.unwrap() - 200.0).abs() < 1e-6, "{:?}", step.settled_after_ms);
        assert!((step.lowest_after - 0.95).abs() < 1e-12);
        let never = StepReport::of(run, 0.2, 2000.0);
        assert_eq!((never.settled_after_ms, never.lowest_after), (None, 0.0));
    }
}
