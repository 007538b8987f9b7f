//! Layer 2: kernel manifests: one TOML file per kernel naming its parameters and their rules, its
//! cost model, scaling potential, degrade knob and batching rule. Validated once, at load.

mod cost;
mod rules;

pub use cost::{CostModel, ScaleTerm};
pub use rules::{ParamRule, ParamType};

use crate::job::Runtime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A manifest as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The kernel's name, as jobs name it: 1-64 characters of a-z, 0-9, '-' or '_'.
    pub name: String,
    /// The build's version, 1-32 characters; jobs run by it report it.
    pub version: String,
    /// Whether the kernel is built in (native) or a Wasm component.
    pub runtime: Runtime,
    /// What the kernel computes, in words (empty when not given).
    #[serde(default)]
    pub description: String,
    /// Native kernels: the built-in kernel it runs (defaults to `name`).
    #[serde(default)]
    pub entry: Option<String>,
    /// Wasm kernels: the component file, relative to the manifest, and its sha256.
    #[serde(default)]
    pub module: Option<ModuleRef>,
    /// Fraction of the work that parallelises across chunks (Amdahl), 0 to 1.
    #[serde(default)]
    pub scaling_potential: f64,
    /// The work-size parameter and the degrade knob; `None` for a kernel without a unit count.
    #[serde(default)]
    pub units: Option<Units>,
    /// How long a job is predicted to take (and, for Wasm, how much fuel it gets).
    pub cost: CostModel,
    /// How jobs may share a batch; `None`: they never do.
    #[serde(default)]
    pub batch: Option<BatchRule>,
    /// The parameters the kernel takes, by name, with their rules.
    #[serde(default)]
    pub params: BTreeMap<String, ParamRule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
/// A Wasm kernel's component file and the hash it must have.
pub struct ModuleRef {
    /// The component file, relative to the manifest's folder (it may not leave it).
    pub path: String,
    /// The file's sha256, 64 hex digits; a file that does not match is refused.
    pub sha256: String,
}

/// The work-size parameter and how far the router may turn it down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Units {
    /// The parameter that counts units (paths, particles, rows).
    pub param: String,
    /// Units per block: grants and chunk boundaries are multiples of it.
    #[serde(default = "one")]
    pub block: u64,
    /// Smallest fraction of the requested units a degraded job may be granted; 1 disables degrade.
    #[serde(default = "one_f")]
    pub floor_fraction: f64,
    /// Error shrinks as units^-exponent (0.5 for Monte Carlo): a degraded job's error bar widens
    /// by (requested / granted)^exponent.
    #[serde(default = "half")]
    pub error_exponent: f64,
    /// The estimate an error-targeted job is about when it names none (`price`, `var`).
    #[serde(default)]
    pub estimate: Option<String>,
}

fn one() -> u64 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}

/// Jobs whose `share_when_equal` parameters (and seed and units) are equal run as one batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRule {
    /// Most jobs in one batch (2 to 1024); a batch closes as soon as it is full.
    pub max_size: usize,
    /// Longest a batch stays open for more jobs, milliseconds from its earliest member's
    /// submission (0 to 1000).
    pub max_delay_ms: f64,
    /// The parameters that must be equal for jobs to share a batch.
    pub share_when_equal: Vec<String>,
}

/// Why a manifest was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestError {
    /// The manifest's file path, or the name it was parsed or built under.
    pub source: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manifest {}: {}", self.source, self.message)
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Parses and validates TOML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Manifest, ManifestError> {
        let err = |message: String| ManifestError { source: source.to_string(), message };
        let m: Manifest = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        m.validate().map_err(err)?;
        Ok(m)
    }

    /// Reads, parses and validates the manifest file at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError { source: path.display().to_string(), message: e.to_string() })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!("name {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'", self.name));
        }
        if self.version.is_empty() || self.version.len() > 32 {
            return Err("version must be 1-32 characters".into());
        }
        if !(0.0..=1.0).contains(&self.scaling_potential) {
            return Err(format!("scaling_potential must be in [0, 1], got {}", self.scaling_potential));
        }
        match (self.runtime, &self.module) {
            (Runtime::Wasm, None) => return Err("a wasm kernel needs [module] path and sha256".into()),
            (Runtime::Native, Some(_)) => return Err("a native kernel has no [module]".into()),
            (Runtime::Wasm, Some(m)) => {
                if m.sha256.len() != 64 || !m.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err("module.sha256 must be 64 hex digits".into());
                }
                if m.path.contains("..") || Path::new(&m.path).is_absolute() {
                    return Err("module.path must be relative and stay inside the manifests folder".into());
                }
            }
            (Runtime::Native, None) => {}
        }
        for (name, rule) in &self.params {
            rule.validate().map_err(|e| format!("params.{name}: {e}"))?;
        }
        if let Some(u) = &self.units {
            match self.params.get(&u.param) {
                Some(r) if r.kind == ParamType::Integer => {}
                _ => return Err(format!("units.param {:?} must be an integer parameter", u.param)),
            }
            if u.block == 0 {
                return Err("units.block must be at least 1".into());
            }
            if !(u.floor_fraction > 0.0 && u.floor_fraction <= 1.0) {
                return Err(format!("units.floor_fraction must be in (0, 1], got {}", u.floor_fraction));
            }
            if !(u.error_exponent >= 0.0 && u.error_exponent <= 4.0) {
                return Err(format!("units.error_exponent must be in [0, 4], got {}", u.error_exponent));
            }
        }
        self.cost.validate(&self.params)?;
        if let Some(b) = &self.batch {
            if b.max_size < 2 || b.max_size > 1024 {
                return Err("batch.max_size must be in 2..=1024".into());
            }
            if !(b.max_delay_ms >= 0.0 && b.max_delay_ms <= 1000.0) {
                return Err("batch.max_delay_ms must be in [0, 1000]".into());
            }
            if let Some(p) = b.share_when_equal.iter().find(|p| !self.params.contains_key(*p)) {
                return Err(format!("batch.share_when_equal names unknown parameter {p:?}"));
            }
        }
        Ok(())
    }

    /// The degrade knob, if the kernel can run fewer units than asked.
    pub fn degradable(&self) -> Option<&Units> {
        self.units.as_ref().filter(|u| u.floor_fraction < 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        name = "toy"
        version = "1.0.0"
        runtime = "native"
        scaling_potential = 0.9
        [units]
        param = "paths"
        block = 1024
        floor_fraction = 0.1
        [cost]
        fixed_us = 3.0
        per_unit_ns = 10.0
        scale = ["steps", "len(w)^2"]
        [batch]
        max_size = 8
        max_delay_ms = 1.0
        share_when_equal = ["steps"]
        [params.paths]
        type = "integer"
        range = [1, 1e6]
        default = 1000
        [params.steps]
        type = "integer"
        range = [1, 100]
        [params.w]
        type = "array"
        length = [1, 10]
    "#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(GOOD, "toy").unwrap();
        assert_eq!(m.degradable().unwrap().floor_fraction, 0.1);
        assert_eq!(m.cost.terms().len(), 2);
    }

    #[test]
    fn bad_manifests_are_refused_with_the_reason() {
        for (bad, needle) in [
            (GOOD.replace("name = \"toy\"", "name = \"Toy Kernel\""), "name"),
            (GOOD.replace("scaling_potential = 0.9", "scaling_potential = 1.5"), "scaling_potential"),
            (GOOD.replace("floor_fraction = 0.1", "floor_fraction = 0"), "floor_fraction"),
            (GOOD.replace("\"len(w)^2\"", "\"len(nope)\""), "nope"),
            (GOOD.replace("share_when_equal = [\"steps\"]", "share_when_equal = [\"x\"]"), "share_when_equal"),
            (GOOD.replace("runtime = \"native\"", "runtime = \"wasm\""), "module"),
            (GOOD.replace("range = [1, 100]", "range = [100, 1]"), "range"),
            (GOOD.replace("version = \"1.0.0\"", "version = \"1.0.0\"\nsurprise = 1"), "surprise"),
            ("not toml at all [".to_string(), "toy"),
        ] {
            let e = Manifest::parse(&bad, "toy").expect_err(needle);
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }
}
