//! Replay of a classic HelixRouter trace: JSON lines of `{"kind", "size_hint", "scaling_potential",
//! "latency_budget_ms"}` (plus optional `id`, `inputs` and `criticality`; `compute_cost` is read
//! as `size_hint`). Jobs convert as classic jobs always do (`ClassicJob` into `Job`); the replay
//! issues them in trace order on the run's schedule, from the top again if the run outlasts it.

use crate::job::{ClassicJob, ClassicKind, Criticality, Job};
use serde::Deserialize;

/// One trace line. Fields the router does not use (timestamps, tags) are ignored, so traces
/// from older tools replay as they are.
#[derive(Debug, Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<u64>,
    kind: ClassicKind,
    #[serde(alias = "compute_cost")]
    size_hint: u64,
    #[serde(default)]
    scaling_potential: f64,
    latency_budget_ms: u64,
    #[serde(default)]
    inputs: Vec<u64>,
    #[serde(default)]
    criticality: Criticality,
}

/// A classic job and how critical it is.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJob {
    pub classic: ClassicJob,
    pub criticality: Criticality,
}

/// A parsed classic trace, to replay.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The trace's jobs, in file order.
    pub jobs: Vec<TraceJob>,
}

impl Trace {
    /// Parses JSON lines; blank lines are skipped. An error names the source and the line.
    pub fn parse(text: &str, source: &str) -> Result<Trace, String> {
        let mut jobs = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let at = |msg: String| format!("trace {source} line {n}: {msg}");
            let line: Line = serde_json::from_str(raw).map_err(|e| at(e.to_string()))?;
            if line.latency_budget_ms == 0 {
                return Err(at("latency_budget_ms must be at least 1".into()));
            }
            if !(0.0..=1.0).contains(&line.scaling_potential) {
                return Err(at(format!("scaling_potential must be in [0, 1], got {}", line.scaling_potential)));
            }
            let classic = ClassicJob {
                id: line.id.unwrap_or(n as u64),
                kind: line.kind,
                inputs: line.inputs,
                compute_cost: line.size_hint,
                scaling_potential: line.scaling_potential,
                latency_budget_ms: line.latency_budget_ms,
            };
            jobs.push(TraceJob { classic, criticality: line.criticality });
        }
        if jobs.is_empty() {
            return Err(format!("trace {source}: no jobs"));
        }
        Ok(Trace { jobs })
    }

    /// Reads and parses the trace file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read trace {}: {e}", path.display()))?;
        Trace::parse(&text, &path.display().to_string())
    }

    /// The `index`-th job of the replay (cycling through the trace), numbered `id`. The seed
    /// comes from the trace's own id, so a replay draws what the trace's jobs drew.
    pub fn job(&self, index: u64, id: u64) -> Job {
        let t = &self.jobs[(index % self.jobs.len() as u64) as usize];
        let mut job: Job = t.classic.clone().into();
        job.seed = Some(job.seed());
        job.id = id;
        job.criticality = t.criticality;
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn good_lines_become_classic_jobs() {
        let text = r#"{"kind":"HashMix","size_hint":640,"scaling_potential":0.2,"latency_budget_ms":15,"inputs":[1,2]}

{"id":42,"kind":"MonteCarloRisk","size_hint":2000000,"scaling_potential":0.9,"latency_budget_ms":40,"criticality":"sheddable"}
{"kind":"PrimeCount","compute_cost":50000,"latency_budget_ms":9,"ts":"12:00:01"}
"#;
        let trace = Trace::parse(text, "t.jsonl").unwrap();
        assert_eq!(trace.jobs.len(), 3);
        let first = &trace.jobs[0].classic;
        assert_eq!(
            (first.id, first.kind, first.compute_cost, first.inputs.clone()),
            (1, ClassicKind::HashMix, 640, vec![1, 2])
        );
        assert_eq!(trace.jobs[1].classic.id, 42, "an id in the trace is kept");
        assert_eq!(trace.jobs[1].criticality, Criticality::Sheddable);
        assert_eq!(trace.jobs[2].classic.compute_cost, 50_000, "compute_cost reads as size_hint");

        let risk = trace.job(1, 100);
        assert_eq!((risk.id, risk.kernel.as_str(), risk.budget), (100, "mc-var", Duration::from_millis(40)));
        assert_eq!(risk.params.number("paths").unwrap(), 10_000.0);
        assert_eq!(risk.seed, Some(crate::job::mix64(42)), "the seed follows the trace's id");
        assert_eq!(trace.job(4, 101).kernel, "mc-var", "the replay cycles");
        assert_eq!(trace.job(2, 102).kernel, "primecount");
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let good = r#"{"kind":"HashMix","size_hint":64,"latency_budget_ms":5}"#;
        let cases = [
            ("not json", "line 2", "expected"),
            (r#"{"kind":"Sort","size_hint":1,"latency_budget_ms":5}"#, "line 2", "unknown variant `Sort`"),
            (r#"{"kind":"HashMix","latency_budget_ms":5}"#, "line 2", "missing field `size_hint`"),
            (r#"{"kind":"HashMix","size_hint":-3,"latency_budget_ms":5}"#, "line 2", "invalid value"),
            (r#"{"kind":"HashMix","size_hint":3,"latency_budget_ms":0}"#, "line 2", "at least 1"),
            (r#"{"kind":"HashMix","size_hint":3,"latency_budget_ms":5,"scaling_potential":2}"#, "line 2", "[0, 1]"),
            (r#"{"kind":"HashMix","size_hint":3,"latency_budget_ms":5,"criticality":"vital"}"#, "line 2", "vital"),
            (r#"{"kind":"HashMix","size_hint":3"#, "line 2", "EOF"),
        ];
        for (bad, line, what) in cases {
            let e = Trace::parse(&format!("{good}\n{bad}\n{good}\n"), "t.jsonl").unwrap_err();
            assert!(e.starts_with(&format!("trace t.jsonl {line}:")) && e.contains(what), "{bad}: {e}");
        }
        assert!(Trace::parse("\n  \n", "empty").unwrap_err().contains("no jobs"));
    }
}
