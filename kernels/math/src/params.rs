//! Named job parameters as the router and the Wasm contract carry them, with typed accessors
//! whose errors name the parameter.

use crate::error::{KernelError, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Array(Vec<f64>),
    /// An enumerated choice such as `style = "asian"`.
    Text(String),
}

/// Parameters by name; later entries do not override earlier ones (first wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub Vec<(String, Value)>);

impl Params {
    pub fn new() -> Self {
        Params(Vec::new())
    }

    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.0.push((name.to_string(), value));
        self
    }

    /// Replaces the value of `name`, or adds it.
    pub fn set(mut self, name: &str, value: Value) -> Self {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_string(), value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn number(&self, name: &'static str) -> Result<f64> {
        match self.get(name) {
            Some(Value::Number(x)) => Ok(*x),
            Some(Value::Array(a)) if a.len() == 1 => Ok(a[0]),
            Some(_) => Err(KernelError::invalid(name, "must be a number")),
            None => Err(KernelError::invalid(name, "is required")),
        }
    }

    pub fn number_or(&self, name: &'static str, default: f64) -> Result<f64> {
        if self.get(name).is_some() { self.number(name) } else { Ok(default) }
    }

    /// A non-negative whole number that fits in `u64` exactly.
    pub fn count(&self, name: &'static str) -> Result<u64> {
        let x = self.number(name)?;
        whole(name, x)
    }

    pub fn count_or(&self, name: &'static str, default: u64) -> Result<u64> {
        if self.get(name).is_some() { self.count(name) } else { Ok(default) }
    }

    /// The array `name`, moved out (the parameter is left an empty array).
    pub fn take_array(&mut self, name: &'static str) -> Result<Vec<f64>> {
        match self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v) {
            Some(Value::Array(a)) => Ok(std::mem::take(a)),
            Some(Value::Number(x)) => Ok(vec![*x]),
            Some(_) => Err(KernelError::invalid(name, "must be an array of numbers")),
            None => Err(KernelError::invalid(name, "is required")),
        }
    }

    pub fn array(&self, name: &'static str) -> Result<&[f64]> {
        match self.get(name) {
            Some(Value::Array(a)) => Ok(a),
            Some(Value::Number(x)) => Ok(std::slice::from_ref(x)),
            Some(_) => Err(KernelError::invalid(name, "must be an array of numbers")),
            None => Err(KernelError::invalid(name, "is required")),
        }
    }

    pub fn text_or<'a>(&'a self, name: &'static str, default: &'a str) -> Result<&'a str> {
        match self.get(name) {
            Some(Value::Text(t)) => Ok(t),
            Some(_) => Err(KernelError::invalid(name, "must be text")),
            None => Ok(default),
        }
    }

    /// One of `choices`, by name.
    pub fn choice<T: Copy>(&self, name: &'static str, default: &str, choices: &[(&str, T)]) -> Result<T> {
        let t = self.text_or(name, default)?;
        choices.iter().find(|(n, _)| *n == t).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            KernelError::invalid(name, format!("must be one of {}, got {t:?}", names.join(", ")))
        })
    }
}

/// Largest integer a double holds exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

pub(crate) fn whole(name: &'static str, x: f64) -> Result<u64> {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= MAX_EXACT {
        Ok(x as u64)
    } else {
        Err(KernelError::invalid(name, format!("must be a whole number in 0..=2^53, got {x}")))
    }
}
