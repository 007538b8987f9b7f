//! A job mix: which kernels, with which parameter ranges, budgets and criticality, in what
//! shares. Written in TOML; `host/mixes/default.toml` is the bundled one.
//!
//! ```toml
//! [[job]]
//! name = "european option"          # shown in errors
//! kernel = "mc-option"
//! weight = 30                        # share of arrivals, relative to the other entries
//! critical = 0.5                     # fraction of these jobs that are critical (default 1)
//! budget_ms = { range = [20, 60] }   # or a number
//! runtime = "native"                 # optional: native | wasm
//! seed = 7                           # optional: a fixed seed (equal jobs may then share a batch)
//! [job.params]
//! style = "european"                 # fixed text (an enum choice)
//! strike = 100                       # fixed number
//! positions = [1e6, 2e6]             # fixed array
//! spot = { range = [90, 110] }       # uniform number
//! paths = { int = [20000, 100000] }  # uniform integer, both ends included
//! type = { choice = ["call", "put"] }
//! returns = { array_len = 500, range = [-0.02, 0.02] }  # an array of uniform draws
//! ```

use crate::job::{Criticality, Job, Runtime};
use crate::request::MAX_BUDGET_MS;
use helix_math::{Params, Value};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The bundled mix: option pricing, VaR, filtering and covariance, the classic kinds, and Wasm
/// kernels, half of it sheddable.
pub const DEFAULT_MIX: &str = include_str!("../../mixes/default.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    #[serde(default)]
    description: Option<String>,
    job: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    #[serde(default)]
    name: Option<String>,
    kernel: String,
    weight: f64,
    #[serde(default = "all_critical")]
    critical: f64,
    budget_ms: Draw,
    #[serde(default)]
    runtime: Option<Runtime>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    params: BTreeMap<String, ParamDraw>,
}

fn all_critical() -> f64 {
    1.0
}

/// A number, fixed or drawn uniformly.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Draw {
    Fixed(f64),
    Range { range: [f64; 2] },
}

/// How one parameter is drawn.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a number, an array of numbers, a string, or a table with range, int, choice or array_len"
)]
enum ParamDraw {
    Number(f64),
    Array(Vec<f64>),
    Text(String),
    // Before `Range`, which would otherwise match its `range` and ignore `array_len`.
    RandomArray { array_len: usize, range: [f64; 2] },
    Range { range: [f64; 2] },
    Int { int: [u64; 2] },
    Choice { choice: Vec<String> },
}

/// One entry, validated.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub kernel: String,
    pub weight: f64,
    pub critical: f64,
    budget_ms: Draw,
    pub runtime: Option<Runtime>,
    seed: Option<u64>,
    params: Vec<(String, ParamDraw)>,
}

/// A validated job mix, ready to draw jobs from.
#[derive(Clone, Debug)]
pub struct Mix {
    /// The mix file's `description` (empty when it has none).
    pub description: String,
    /// The `[[job]]` entries, in file order.
    pub entries: Vec<Entry>,
    total_weight: f64,
}

/// Largest array a mix may draw: keeps a typo from filling memory.
const MAX_ARRAY_LEN: usize = 1 << 20;

fn check_range(what: &str, [lo, hi]: [f64; 2]) -> Result<(), String> {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return Err(format!("{what}: range [{lo}, {hi}] must be finite with low <= high"));
    }
    Ok(())
}

impl Mix {
    /// Parses and checks a mix; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Mix, String> {
        let file: MixFile = toml::from_str(text).map_err(|e| format!("mix {source}: {e}"))?;
        if file.job.is_empty() {
            return Err(format!("mix {source}: no [[job]] entries"));
        }
        let mut entries = Vec::new();
        for (i, e) in file.job.into_iter().enumerate() {
            let name = e.name.clone().unwrap_or_else(|| e.kernel.clone());
            let at = |msg: String| format!("mix {source}: job {} ({name:?}): {msg}", i + 1);
            if e.kernel.is_empty() {
                return Err(at("kernel must not be empty".into()));
            }
            if !(e.weight.is_finite() && e.weight > 0.0) {
                return Err(at(format!("weight must be a positive number, got {}", e.weight)));
            }
            if !(0.0..=1.0).contains(&e.critical) {
                return Err(at(format!("critical must be a share in [0, 1], got {}", e.critical)));
            }
            let (lo, hi) = match e.budget_ms {
                Draw::Fixed(x) => (x, x),
                Draw::Range { range } => {
                    check_range("budget_ms", range).map_err(at)?;
                    (range[0], range[1])
                }
            };
            if !(lo > 0.0 && hi <= MAX_BUDGET_MS) {
                return Err(at(format!("budget_ms must be above 0 and at most {MAX_BUDGET_MS}")));
            }
            for (p, d) in &e.params {
                let what = format!("params.{p}");
                match d {
                    ParamDraw::Range { range } => check_range(&what, *range).map_err(at)?,
                    ParamDraw::Int { int: [lo, hi] } if lo > hi => {
                        return Err(at(format!("{what}: int [{lo}, {hi}] must have low <= high")));
                    }
                    ParamDraw::Choice { choice } if choice.is_empty() => {
                        return Err(at(format!("{what}: choice must list at least one value")));
                    }
                    ParamDraw::RandomArray { array_len, range } => {
                        check_range(&what, *range).map_err(at)?;
                        if *array_len == 0 || *array_len > MAX_ARRAY_LEN {
                            return Err(at(format!("{what}: array_len must be in 1..={MAX_ARRAY_LEN}")));
                        }
                    }
                    _ => {}
                }
            }
            entries.push(Entry {
                name,
                kernel: e.kernel,
                weight: e.weight,
                critical: e.critical,
                budget_ms: e.budget_ms,
                runtime: e.runtime,
                seed: e.seed,
                params: e.params.into_iter().collect(),
            });
        }
        let total_weight = entries.iter().map(|e| e.weight).sum();
        Ok(Mix { description: file.description.unwrap_or_default(), entries, total_weight })
    }

    /// The bundled mix, `DEFAULT_MIX`.
    pub fn bundled() -> Mix {
        Mix::parse(DEFAULT_MIX, "default").expect("the bundled mix is valid (a unit test checks it)")
    }

    /// Reads and parses the mix file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Mix, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read mix {}: {e}", path.display()))?;
        Mix::parse(&text, &path.display().to_string())
    }

    /// Draws job `id`: an entry by weight, then its criticality, budget and parameters.
    pub fn sample(&self, id: u64, rng: &mut ChaCha8Rng) -> Job {
        let mut pick = unit(rng) * self.total_weight;
        let entry = self
            .entries
            .iter()
            .find(|e| {
                pick -= e.weight;
                pick < 0.0
            })
            .unwrap_or_else(|| self.entries.last().expect("a mix has entries"));
        let critical = unit(rng) < entry.critical;
        let budget_ms = draw(&entry.budget_ms, rng);
        let mut params = Params::new();
        for (name, d) in &entry.params {
            params = params.with(name, draw_param(d, rng));
        }
        let mut job = Job::new(id, &entry.kernel, params, Duration::from_secs_f64(budget_ms / 1e3));
        job.criticality = if critical { Criticality::Critical } else { Criticality::Sheddable };
        job.runtime = entry.runtime;
        job.seed = entry.seed;
        job
    }
}

/// Uniform in [0, 1).
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn uniform(rng: &mut ChaCha8Rng, [lo, hi]: [f64; 2]) -> f64 {
    lo + (hi - lo) * unit(rng)
}

fn draw(d: &Draw, rng: &mut ChaCha8Rng) -> f64 {
    match d {
        Draw::Fixed(x) => *x,
        Draw::Range { range } => uniform(rng, *range),
    }
}

fn draw_param(d: &ParamDraw, rng: &mut ChaCha8Rng) -> Value {
    match d {
        ParamDraw::Number(x) => Value::Number(*x),
        ParamDraw::Array(xs) => Value::Array(xs.clone()),
        ParamDraw::Text(t) => Value::Text(t.clone()),
        ParamDraw::Range { range } => Value::Number(uniform(rng, *range)),
        ParamDraw::Int { int: [lo, hi] } => {
            let span = hi - lo + 1;
            Value::Number((lo + if span == 0 { rng.next_u64() } else { rng.next_u64() % span }) as f64)
        }
        ParamDraw::Choice { choice } => Value::Text(choice[(rng.next_u64() % choice.len() as u64) as usize].clone()),
        ParamDraw::RandomArray { array_len, range } => {
            Value::Array((0..*array_len).map(|_| uniform(rng, *range)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn the_bundled_mix_parses_and_draws_every_entry() {
        let mix = Mix::bundled();
        assert!(mix.entries.len() >= 6);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let jobs: Vec<Job> = (0..5000).map(|i| mix.sample(i, &mut rng)).collect();
        for e in &mix.entries {
            assert!(jobs.iter().any(|j| j.kernel == e.kernel && j.runtime == e.runtime), "{} never drawn", e.name);
        }
        let sheddable = jobs.iter().filter(|j| j.criticality == Criticality::Sheddable).count();
        assert!(sheddable > 1000 && sheddable < 4000, "{sheddable}");
    }

    #[test]
    fn draws_respect_weights_ranges_and_shares() {
        let text = r#"
            [[job]]
            kernel = "a"
            weight = 3
            critical = 0.25
            budget_ms = { range = [10, 20] }
            params = { x = { range = [1, 2] }, n = { int = [5, 7] }, s = { choice = ["p", "q"] }, v = { array_len = 4, range = [0, 1] }, f = 9, t = "fixed", arr = [1, 2] }
            [[job]]
            kernel = "b"
            weight = 1
            budget_ms = 5
            runtime = "wasm"
            seed = 11
        "#;
        let mix = Mix::parse(text, "test").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let jobs: Vec<Job> = (0..8000).map(|i| mix.sample(i, &mut rng)).collect();
        let a: Vec<&Job> = jobs.iter().filter(|j| j.kernel == "a").collect();
        let share = a.len() as f64 / jobs.len() as f64;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        let critical = a.iter().filter(|j| j.criticality == Criticality::Critical).count() as f64 / a.len() as f64;
        assert!((critical - 0.25).abs() < 0.03, "{critical}");
        let mut ints = std::collections::BTreeSet::new();
        for j in &a {
            assert!(j.budget >= Duration::from_millis(10) && j.budget <= Duration::from_millis(20));
            let x = j.params.number("x").unwrap();
            assert!((1.0..=2.0).contains(&x));
            ints.insert(j.params.number("n").unwrap() as u64);
            assert!(matches!(j.params.get("s"), Some(Value::Text(s)) if s == "p" || s == "q"));
            assert!(matches!(j.params.get("v"), Some(Value::Array(v)) if v.len() == 4));
            assert_eq!(j.params.get("f"), Some(&Value::Number(9.0)));
            assert_eq!(j.params.get("t"), Some(&Value::Text("fixed".into())));
            assert_eq!(j.params.get("arr"), Some(&Value::Array(vec![1.0, 2.0])));
            assert_eq!((j.runtime, j.seed), (None, None));
        }
        assert_eq!(ints.into_iter().collect::<Vec<_>>(), vec![5, 6, 7], "both ends included");
        let b = jobs.iter().find(|j| j.kernel == "b").unwrap();
        assert_eq!((b.runtime, b.seed, b.budget), (Some(Runtime::Wasm), Some(11), Duration::from_millis(5)));
        assert_eq!(b.criticality, Criticality::Critical, "critical defaults to 1");
    }

    #[test]
    fn bad_mixes_are_errors_that_say_where() {
        let cases = [
            ("", "missing field `job`"),
            ("job = []", "no [[job]] entries"),
            ("[[job]]\nkernel = \"a\"\nweight = 0\nbudget_ms = 5", "job 1 (\"a\"): weight must be a positive"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = 0", "budget_ms must be above 0"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = { range = [9, 3] }", "low <= high"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\ncritical = 2\nbudget_ms = 5", "critical must be a share"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = 5\nparams = { s = { choice = [] } }", "params.s"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = 5\nparams = { s = { rnage = [1, 2] } }", "params"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = 5\ncolour = 3", "unknown field `colour`"),
            ("[[job]]\nkernel = \"a\"\nweight = 1\nbudget_ms = 5\nparams = { n = { int = [3, 1] } }", "params.n"),
        ];
        for (text, expected) in cases {
            let e = Mix::parse(text, "m.toml").unwrap_err();
            assert!(e.contains(expected) && e.starts_with("mix m.toml"), "{text:?}: {e}");
        }
    }
}
