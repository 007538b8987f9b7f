//! Parameter rules: type, range, length and allowed values, checked at admission.

use helix_math::Value;
use serde::{Deserialize, Serialize};

/// What kind of value a parameter takes (`type` in a manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A number: within `range`, or any finite number without one.
    Number,
    /// A whole number, within `range` when one is given.
    Integer,
    /// An array of numbers; a single number is accepted as an array of one.
    Array,
    /// One of the rule's `values`, as text.
    Enum,
}

/// How one parameter is checked at admission, and what it defaults to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamRule {
    /// The kind of value it takes (`type` in the file).
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What the parameter is, in words (empty when not given).
    #[serde(default)]
    pub description: String,
    /// Inclusive bounds for a number, an integer, or every element of an array.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Inclusive bounds on an array's length.
    #[serde(default)]
    pub length: Option<[usize; 2]>,
    /// The allowed values of an enum.
    #[serde(default)]
    pub values: Vec<String>,
    /// Filled in when a job leaves the parameter out; no default means required.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub default: Option<toml::Value>,
    /// Optional without a default: the kernel decides.
    #[serde(default)]
    pub optional: bool,
}

impl ParamRule {
    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some([lo, hi]) = self.range
            && (lo.is_nan() || hi.is_nan() || lo > hi)
        {
            return Err(format!("range [{lo}, {hi}] is empty"));
        }
        if let Some([lo, hi]) = self.length
            && lo > hi
        {
            return Err(format!("length [{lo}, {hi}] is empty"));
        }
        if self.kind == ParamType::Enum && self.values.is_empty() {
            return Err("an enum needs values".into());
        }
        if let Some(d) = &self.default {
            let v = self.default_value().ok_or_else(|| format!("default {d} does not match type"))?;
            self.check(&v).map_err(|e| format!("default {e}"))?;
        }
        Ok(())
    }

    /// The default as a job value.
    pub fn default_value(&self) -> Option<Value> {
        let d = self.default.as_ref()?;
        let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
        match self.kind {
            ParamType::Number | ParamType::Integer => num(d).map(Value::Number),
            ParamType::Array => d.as_array()?.iter().map(num).collect::<Option<Vec<f64>>>().map(Value::Array),
            ParamType::Enum => d.as_str().map(|s| Value::Text(s.to_string())),
        }
    }

    /// Checks a value against the rule; the error says which rule it broke.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        let in_range = |x: f64| match self.range {
            Some([lo, hi]) => x >= lo && x <= hi,
            None => x.is_finite(),
        };
        let range_text = || match self.range {
            Some([lo, hi]) => format!("in [{lo}, {hi}]"),
            None => "finite".to_string(),
        };
        match (self.kind, v) {
            (ParamType::Number, Value::Number(x)) => {
                if in_range(*x) {
                    Ok(())
                } else {
                    Err(format!("must be {}, got {x}", range_text()))
                }
            }
            (ParamType::Integer, Value::Number(x)) => {
                if x.fract() != 0.0 {
                    Err(format!("must be a whole number, got {x}"))
                } else if in_range(*x) {
                    Ok(())
                } else {
                    Err(format!("must be {}, got {x}", range_text()))
                }
            }
            (ParamType::Array, Value::Array(a)) => {
                if let Some([lo, hi]) = self.length
                    && !(lo..=hi).contains(&a.len())
                {
                    return Err(format!("must have {lo} to {hi} values, got {}", a.len()));
                }
                match a.iter().position(|x| !in_range(*x)) {
                    Some(i) => Err(format!("element {i} must be {}, got {}", range_text(), a[i])),
                    None => Ok(()),
                }
            }
            (ParamType::Array, Value::Number(x)) => self.check(&Value::Array(vec![*x])),
            (ParamType::Enum, Value::Text(t)) => {
                if self.values.iter().any(|v| v == t) {
                    Ok(())
                } else {
                    Err(format!("must be one of {}, got {t:?}", self.values.join(", ")))
                }
            }
            (kind, _) => Err(format!("must be {}", type_name(kind))),
        }
    }
}

fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Number => "a number",
        ParamType::Integer => "an integer",
        ParamType::Array => "an array of numbers",
        ParamType::Enum => "one of the listed values (text)",
    }
}
