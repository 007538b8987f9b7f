//! Admission: a job's parameters checked against its kernel's manifest, defaults filled in,
//! and the kernel's own validation run, before the job costs anything.

use crate::manifest::Manifest;
use helix_math::{KernelError, KernelKind, Params, Prepared};
use std::fmt;

/// Why a job was rejected: the field and the rule it broke.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "`{field}` {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl From<KernelError> for Rejection {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::InvalidInput { param, reason } => {
                Rejection { field: Some(param.to_string()), message: reason }
            }
            KernelError::NumericFailure(why) => Rejection { field: None, message: why },
        }
    }
}

fn reject(field: &str, message: impl Into<String>) -> Rejection {
    Rejection { field: Some(field.to_string()), message: message.into() }
}

/// Checks every parameter against the manifest and fills in the defaults.
pub fn check_params(manifest: &Manifest, mut params: Params) -> Result<Params, Rejection> {
    for (i, (name, value)) in params.0.iter().enumerate() {
        let rule = manifest.params.get(name).ok_or_else(|| {
            let known: Vec<&str> = manifest.params.keys().map(String::as_str).collect();
            reject(name, format!("is not a parameter of {} (known: {})", manifest.name, known.join(", ")))
        })?;
        if params.0[..i].iter().any(|(n, _)| n == name) {
            return Err(reject(name, "is given twice"));
        }
        rule.check(value).map_err(|m| reject(name, m))?;
    }
    for (name, rule) in &manifest.params {
        if params.get(name).is_none() {
            match rule.default_value() {
                Some(v) => params.0.push((name.clone(), v)),
                None if rule.optional => {}
                None => return Err(reject(name, "is required")),
            }
        }
    }
    Ok(params)
}

/// A job that passed admission: its computation and the units it asked for.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub params: Params,
    pub prepared: Prepared,
    pub units: u64,
}

/// Full admission for a native kernel.
pub fn admit_native(manifest: &Manifest, kind: KernelKind, params: Params) -> Result<Admitted, Rejection> {
    let params = check_params(manifest, params)?;
    let parsed = Prepared::parse(kind, &params)?;
    Ok(Admitted { params, prepared: parsed.prepared, units: parsed.units })
}
