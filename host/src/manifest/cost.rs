//! The cost model: `fixed_us + per_unit_ns * units * product(scale terms) * product(choice
//! factors)`, where a scale term is a parameter's value or length, optionally clamped and raised
//! to a power (`"steps"`, `"len(positions)^2"`, `"compute_cost[10000..250000]"`), and a choice
//! factor what one value of an enum parameter costs against the others (`[cost.choice.method]
//! qmc = 2.5`: a quasi-Monte Carlo path costs two and a half plain ones).

use super::ParamRule;
use helix_math::{Params, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A kernel's predicted cost: `fixed_us + per_unit_ns * units * product(scale terms)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// Cost of a job apart from its units, microseconds.
    pub fixed_us: f64,
    /// Cost of one unit before the scale terms, nanoseconds.
    pub per_unit_ns: f64,
    /// Factors of the per-unit cost: `NAME`, `len(NAME)` or `NAME[LO..HI]`, each with an
    /// optional `^POWER` (1 to 3).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    scale: Vec<ScaleTerm>,
    /// Per enum parameter, the factor each of its values multiplies the per-unit cost by (a
    /// value not listed: 1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    choice: BTreeMap<String, BTreeMap<String, f64>>,
    /// Wasm kernels: fuel per unit (scaled like the time), which sets the per-job fuel limit.
    #[serde(default)]
    pub fuel_per_unit: Option<f64>,
}

/// One factor of the per-unit cost, written `NAME`, `len(NAME)` or `NAME[LO..HI]`, each with an
/// optional `^POWER`. A parameter the job does not give, or that is text, reads as 1 (before the
/// clamp and the power).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScaleTerm {
    /// The parameter it reads.
    pub param: String,
    /// Written `len(NAME)`: the parameter's length, so a single number counts as 1. An array
    /// counts its length either way.
    pub length: bool,
    /// Inclusive bounds the value is clamped to before the power (`NAME[LO..HI]`).
    pub clamp: Option<(f64, f64)>,
    /// The power the value is raised to, 1 to 3.
    pub power: i32,
}

impl CostModel {
    /// A cost model with these terms and no fuel rate.
    pub fn new(fixed_us: f64, per_unit_ns: f64, scale: Vec<ScaleTerm>) -> Self {
        CostModel { fixed_us, per_unit_ns, scale, choice: BTreeMap::new(), fuel_per_unit: None }
    }

    /// The scale terms, in the order written.
    pub fn terms(&self) -> &[ScaleTerm] {
        &self.scale
    }

    pub(super) fn validate(&self, params: &BTreeMap<String, ParamRule>) -> Result<(), String> {
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        if !valid(self.fixed_us) || !valid(self.per_unit_ns) {
            return Err("cost.fixed_us and cost.per_unit_ns must be finite and >= 0".into());
        }
        if let Some(t) = self.scale.iter().find(|t| !params.contains_key(&t.param)) {
            return Err(format!("cost.scale names unknown parameter {:?}", t.param));
        }
        for (name, factors) in &self.choice {
            let values = match params.get(name) {
                Some(rule) if !rule.values.is_empty() => &rule.values,
                _ => return Err(format!("cost.choice.{name} needs an enum parameter {name:?}")),
            };
            for (value, factor) in factors {
                if !values.contains(value) {
                    return Err(format!("cost.choice.{name} names {value:?}, not one of {values:?}"));
                }
                if !(factor.is_finite() && *factor > 0.0) {
                    return Err(format!("cost.choice.{name}.{value} must be a number above 0"));
                }
            }
        }
        Ok(())
    }

    /// Per-unit cost in microseconds for these parameters.
    pub fn per_unit_us(&self, params: &Params) -> f64 {
        self.per_unit_ns * 1e-3 * self.scale_factor(params)
    }

    /// Predicted fuel for `units`, if the manifest gives a fuel rate.
    pub fn fuel(&self, params: &Params, units: u64) -> Option<f64> {
        Some(self.fuel_per_unit? * self.scale_factor(params) * units as f64)
    }

    fn scale_factor(&self, params: &Params) -> f64 {
        let chosen = |(name, factors): (&String, &BTreeMap<String, f64>)| match params.get(name) {
            Some(Value::Text(v)) => factors.get(v).copied().unwrap_or(1.0),
            _ => 1.0,
        };
        self.scale.iter().map(|t| t.value(params)).product::<f64>() * self.choice.iter().map(chosen).product::<f64>()
    }
}

impl ScaleTerm {
    fn value(&self, params: &Params) -> f64 {
        let raw = match params.get(&self.param) {
            Some(Value::Number(x)) if !self.length => *x,
            Some(Value::Array(a)) => a.len() as f64,
            Some(Value::Number(_)) => 1.0,
            _ => 1.0,
        };
        let v = match self.clamp {
            Some((lo, hi)) => raw.clamp(lo, hi),
            None => raw,
        };
        v.max(0.0).powi(self.power)
    }
}

impl TryFrom<String> for ScaleTerm {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("scale term {s:?} must look like NAME, len(NAME), NAME[LO..HI], optionally ^POWER");
        let (base, power) = match s.split_once('^') {
            Some((b, p)) => (b.trim(), p.trim().parse::<i32>().ok().filter(|p| (1..=3).contains(p)).ok_or_else(bad)?),
            None => (s.trim(), 1),
        };
        let (base, clamp) = match base.split_once('[') {
            Some((b, rest)) => {
                let inner = rest.strip_suffix(']').ok_or_else(bad)?;
                let (lo, hi) = inner.split_once("..").ok_or_else(bad)?;
                let (lo, hi) =
                    (lo.trim().parse::<f64>().map_err(|_| bad())?, hi.trim().parse::<f64>().map_err(|_| bad())?);
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    return Err(bad());
                }
                (b, Some((lo, hi)))
            }
            None => (base, None),
        };
        let (param, length) = match base.strip_prefix("len(").and_then(|b| b.strip_suffix(')')) {
            Some(inner) => (inner, true),
            None => (base, false),
        };
        let valid = !param.is_empty() && param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad());
        }
        Ok(ScaleTerm { param: param.to_string(), length, clamp, power })
    }
}

impl From<ScaleTerm> for String {
    fn from(t: ScaleTerm) -> String {
        let mut s = if t.length { format!("len({})", t.param) } else { t.param.clone() };
        if let Some((lo, hi)) = t.clamp {
            s.push_str(&format!("[{lo}..{hi}]"));
        }
        if t.power != 1 {
            s.push_str(&format!("^{}", t.power));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(s: &str) -> ScaleTerm {
        ScaleTerm::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn terms_parse_and_scale_the_per_unit_cost() {
        let m = CostModel::new(5.0, 100.0, vec![term("len(positions)^2"), term("cost[10..20]")]);
        let p = Params::new().with("positions", Value::Array(vec![1.0; 4])).with("cost", Value::Number(1000.0));
        // 100 ns * 16 * 20 = 32 us per unit.
        assert!((m.per_unit_us(&p) - 32.0).abs() < 1e-12);
        assert_eq!(String::from(term("len(x)^2")), "len(x)^2");
        for bad in ["", "len(x", "x^9", "x[5..1]", "a b"] {
            assert!(ScaleTerm::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_choice_factor_scales_the_cost_of_its_value_only() {
        let m: CostModel = toml::from_str(
            "fixed_us = 1.0\nper_unit_ns = 10.0\nscale = [\"steps\"]\n[choice.method]\nqmc = 2.5\nimportance = 1.5\n",
        )
        .unwrap();
        let p =
            |method: &str| Params::new().with("steps", Value::Number(4.0)).with("method", Value::Text(method.into()));
        assert!((m.per_unit_us(&p("qmc")) - 0.1).abs() < 1e-12);
        assert!((m.per_unit_us(&p("importance")) - 0.06).abs() < 1e-12);
        assert!((m.per_unit_us(&p("plain")) - 0.04).abs() < 1e-12);
        let rule = |values: &[&str]| -> ParamRule {
            let list = values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
            toml::from_str(&format!("type = \"enum\"\nvalues = [{list}]\n")).unwrap()
        };
        let steps: ParamRule = toml::from_str("type = \"integer\"\n").unwrap();
        let mut params =
            BTreeMap::from([("steps".to_string(), steps), ("method".to_string(), rule(&["plain", "qmc"]))]);
        let err = m.validate(&params).unwrap_err();
        assert!(err.contains("\"importance\", not one of"), "{err}");
        params.insert("method".into(), rule(&["plain", "qmc", "importance"]));
        assert_eq!(m.validate(&params), Ok(()));
        params.remove("method");
        assert!(m.validate(&params).unwrap_err().contains("needs an enum parameter"));
    }
}
