//! Layer 3: admission: a job's parameters checked against its kernel's manifest, defaults filled
//! in, and the kernel's own validation run, before the job costs anything.

use crate::manifest::Manifest;
use helix_math::{KernelError, KernelKind, Params, Prepared, Value};
use std::fmt;

/// Why a job was rejected: the field and the rule it broke.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// The parameter at fault, where one is.
    pub field: Option<String>,
    /// The rule it broke, in words.
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

/// What runs: a native computation, or parameters for a Wasm guest.
#[derive(Clone, Debug)]
pub enum Work {
    /// A helix-math computation, parsed and ready to run.
    Native(Box<Prepared>),
    /// A guest job; the guest checks the rest of its parameters when it runs.
    Wasm {
        /// The parameters, checked against the manifest and with its defaults filled in.
        params: Params,
        /// The parameters name the unit count, so the router may grant fewer (degrade it).
        counted: bool,
    },
}

impl Work {
    /// Units per block (grants are multiples of it).
    pub fn block(&self, manifest: &Manifest) -> u64 {
        match self {
            Work::Native(p) => p.block(),
            Work::Wasm { .. } => manifest.units.as_ref().map_or(1, |u| u.block),
        }
    }

    /// Whether the work can run as chunks on several permits: native only (a guest answers
    /// whole jobs; partial results do not cross the sandbox boundary).
    pub fn splittable(&self) -> bool {
        matches!(self, Work::Native(p) if p.splittable())
    }

    /// Whether the router knows the unit count, and so may grant fewer.
    pub fn degradable(&self) -> bool {
        !matches!(self, Work::Wasm { counted: false, .. })
    }
}

/// A job that passed admission: its work and the units it asked for.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The parameters, with the manifest's defaults filled in.
    pub params: Params,
    /// What runs.
    pub work: Work,
    /// Units asked for (1 when the kernel has no unit count).
    pub units: u64,
}

/// Full admission for a native kernel: the manifest's rules, then the kernel's own.
pub fn admit_native(manifest: &Manifest, kind: KernelKind, params: Params) -> Result<Admitted, Rejection> {
    let params = check_params(manifest, params)?;
    let parsed = Prepared::parse(kind, params.clone())?;
    Ok(Admitted { params, work: Work::Native(Box::new(parsed.prepared)), units: parsed.units })
}

/// Admission for a Wasm kernel: the manifest's rules (the guest checks the rest when it runs).
pub fn admit_wasm(manifest: &Manifest, params: Params) -> Result<Admitted, Rejection> {
    let params = check_params(manifest, params)?;
    let (units, counted) = match manifest.units.as_ref().map(|u| params.get(&u.param)) {
        Some(Some(Value::Number(x))) if *x >= 1.0 => (*x as u64, true),
        Some(Some(_)) => {
            let name = &manifest.units.as_ref().expect("matched").param;
            return Err(reject(name, "must be a whole number >= 1"));
        }
        // The parameters leave the count to the kernel: run it whole.
        Some(None) | None => (1, false),
    };
    Ok(Admitted { work: Work::Wasm { params: params.clone(), counted }, params, units })
}
