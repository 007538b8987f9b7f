//! Layer 2: the JSON form of a job, as `POST /v1/jobs` takes it: decoded with errors that name the
//! field at fault, so a client learns what to fix without reading the server's logs.

use crate::job::{Criticality, ErrorTarget, Job, Runtime, Tolerance};
use helix_math::{Params, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest budget a job may ask for: beyond it a "budget" is no budget at all.
pub const MAX_BUDGET_MS: f64 = 3_600_000.0;

/// A job: a kernel, its parameters and a latency budget, never how it runs
/// (`{"kernel", "params", "budget_ms", "seed"?, "criticality"?, "runtime"?, "target"?}`).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = Job,
    example = json!({"kernel": "mc-option", "budget_ms": 50, "seed": 3,
        "params": {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1}})
)]
pub struct JobRequest {
    /// The kernel's name.
    pub kernel: String,
    /// The kernel's parameters by name (`GET /v1/kernels/{name}` lists them with their rules).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// The latency budget, milliseconds (more than 0, at most an hour).
    #[schema(exclusive_minimum = 0, maximum = 3_600_000)]
    pub budget_ms: f64,
    /// The random seed (default: derived from the job id).
    #[serde(default)]
    pub seed: Option<u64>,
    /// `critical` (the default) or `sheddable`.
    #[serde(default)]
    pub criticality: Option<Criticality>,
    /// The build to run, where the kernel has both.
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// A standard error to reach instead of a unit count (the unit count is then a ceiling).
    #[serde(default)]
    pub target: Option<TargetRequest>,
}

/// `{"std_error": 0.01}` or `{"relative_error": 0.001}`, and optionally `"estimate": "es"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    /// The standard error to reach, in the estimate's units.
    #[serde(default)]
    pub std_error: Option<f64>,
    /// The standard error to reach, as a fraction of the estimate's absolute value.
    #[serde(default)]
    pub relative_error: Option<f64>,
    /// The estimate the target is about (default: the kernel's own, such as `price`).
    #[serde(default)]
    pub estimate: Option<String>,
}

impl TargetRequest {
    /// The target this asks for, or what is wrong with it.
    pub fn into_target(self) -> Result<ErrorTarget, RequestError> {
        let invalid = |field: &str, message: String| RequestError { field: Some(format!("target.{field}")), message };
        let tolerance = match (self.std_error, self.relative_error) {
            (Some(se), None) => Tolerance::Absolute(se),
            (None, Some(r)) => Tolerance::Relative(r),
            _ => {
                return Err(RequestError {
                    field: Some("target".into()),
                    message:
                        "give exactly one of `std_error` (absolute) and `relative_error` (a fraction of the estimate)"
                            .into(),
                });
            }
        };
        let (field, x) = match tolerance {
            Tolerance::Absolute(x) => ("std_error", x),
            Tolerance::Relative(x) => ("relative_error", x),
        };
        if !(x.is_finite() && x > 0.0) {
            return Err(invalid(field, format!("must be a number above 0 (got {x})")));
        }
        Ok(ErrorTarget { estimate: self.estimate, tolerance })
    }
}

// Written by hand: exactly one of the two tolerances, which the derive cannot say.
impl utoipa::PartialSchema for TargetRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let form = |field: &str, description: &str| {
            let tolerance = ObjectBuilder::new().schema_type(Type::Number).exclusive_minimum(Some(0.0));
            let estimate = ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The estimate the target is about (default: the kernel's own, such as `price`)."));
            ObjectBuilder::new()
                .property(field, tolerance.description(Some(description)))
                .property("estimate", estimate)
                .required(field)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(form("std_error", "The standard error to reach, in the estimate's units."))
            .item(form("relative_error", "The standard error to reach, as a fraction of the estimate's size."))
            .description(Some("A standard error to reach instead of a unit count: the unit count becomes a ceiling."))
            .into()
    }
}

impl utoipa::ToSchema for TargetRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "ErrorTarget".into()
    }
}

/// A parameter: a number, a list of numbers, a matrix as a list of rows (flattened row-major,
/// as kernels take matrices), or text (an enum choice).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "a number, an array of numbers, an array of rows, or a string")]
pub enum ParamValue {
    /// A number.
    Number(f64),
    /// A list of numbers.
    Array(Vec<f64>),
    /// A matrix as its rows, all of one length.
    Matrix(Vec<Vec<f64>>),
    /// A choice, such as an option's `style`.
    Text(String),
}

// Written by hand: the derive would say `oneOf`, which an empty array (a list and a matrix
// at once) breaks; any of the forms will do.
impl utoipa::PartialSchema for ParamValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
        let number = || ObjectBuilder::new().schema_type(Type::Number);
        AnyOfBuilder::new()
            .item(number().description(Some("A number.")))
            .item(ArrayBuilder::new().items(number()).description(Some("A list of numbers.")))
            .item(
                ArrayBuilder::new()
                    .items(ArrayBuilder::new().items(number()))
                    .description(Some("A matrix as its rows, all of one length.")),
            )
            .item(ObjectBuilder::new().schema_type(Type::String).description(Some("A choice, such as `style`.")))
            .description(Some("A parameter, checked against the kernel's manifest rule."))
            .into()
    }
}

impl utoipa::ToSchema for ParamValue {}

/// Why a request could not become a job.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    /// The field at fault (`params.spot`, `budget_ms`), when the error has one.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "`{field}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl JobRequest {
    /// Decodes a request body.
    pub fn decode(body: &[u8]) -> Result<JobRequest, RequestError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            RequestError { field, message: e.into_inner().to_string() }
        })
    }

    /// The job this request describes, numbered `id`.
    pub fn into_job(self, id: u64) -> Result<Job, RequestError> {
        if !(self.budget_ms > 0.0 && self.budget_ms <= MAX_BUDGET_MS) {
            return Err(RequestError {
                field: Some("budget_ms".into()),
                message: format!("must be above 0 and at most {MAX_BUDGET_MS} (got {})", self.budget_ms),
            });
        }
        let mut params = Params::new();
        for (name, value) in self.params {
            let value = match value {
                ParamValue::Number(x) => Value::Number(x),
                ParamValue::Array(xs) => Value::Array(xs),
                ParamValue::Matrix(rows) => {
                    let width = rows.first().map_or(0, Vec::len);
                    if rows.iter().any(|r| r.len() != width) {
                        return Err(RequestError {
                            field: Some(format!("params.{name}")),
                            message: "matrix rows must all have the same length".into(),
                        });
                    }
                    Value::Array(rows.concat())
                }
                ParamValue::Text(t) => Value::Text(t),
            };
            params = params.with(&name, value);
        }
        let mut job = Job::new(id, &self.kernel, params, Duration::from_secs_f64(self.budget_ms / 1e3));
        job.seed = self.seed;
        job.criticality = self.criticality.unwrap_or_default();
        job.runtime = self.runtime;
        job.target = self.target.map(TargetRequest::into_target).transpose()?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_request_becomes_a_job() {
        let body = br#"{"kernel": "mc-var", "budget_ms": 25.5, "seed": 7, "criticality": "sheddable",
            "runtime": "wasm", "params": {"paths": 20000, "weights": [0.5, 0.5], "cov": [[1, 0.1], [0.1, 1]],
            "mode": "full"}}"#;
        let job = JobRequest::decode(body).unwrap().into_job(9).unwrap();
        assert_eq!((job.id, job.kernel.as_str(), job.seed), (9, "mc-var", Some(7)));
        assert_eq!(job.budget, Duration::from_micros(25_500));
        assert_eq!(job.criticality, Criticality::Sheddable);
        assert_eq!(job.runtime, Some(Runtime::Wasm));
        assert_eq!(job.params.get("paths"), Some(&Value::Number(20000.0)));
        assert_eq!(job.params.get("cov"), Some(&Value::Array(vec![1.0, 0.1, 0.1, 1.0])));
        assert_eq!(job.params.get("mode"), Some(&Value::Text("full".into())));
    }

    fn error_of(body: &str) -> RequestError {
        match JobRequest::decode(body.as_bytes()).and_then(|r| r.into_job(1)) {
            Ok(job) => panic!("{body} was accepted as {job:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 10, "params": {"spot": {"x": 1}}}"#);
        assert_eq!(e.field.as_deref(), Some("params.spot"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": "soon"}"#);
        assert_eq!(e.field.as_deref(), Some("budget_ms"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 10, "strategy": "inline"}"#);
        assert!(e.message.contains("unknown field `strategy`"), "{e}");
        let e = error_of(r#"{"budget_ms": 10}"#);
        assert!(e.message.contains("missing field `kernel`"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 0}"#);
        assert_eq!(e.field.as_deref(), Some("budget_ms"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 1e300}"#);
        assert_eq!(e.field.as_deref(), Some("budget_ms"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5, "params": {"cov": [[1, 2], [3]]}}"#);
        assert_eq!(e.field.as_deref(), Some("params.cov"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5, "seed": -1}"#);
        assert_eq!(e.field.as_deref(), Some("seed"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5, "target": {"std_error": 0}}"#);
        assert_eq!(e.field.as_deref(), Some("target.std_error"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5, "target": {"std_error": 1, "relative_error": 0.1}}"#);
        assert!(e.field.as_deref() == Some("target") && e.message.contains("exactly one"), "{e}");
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5, "target": {"error": 1}}"#);
        assert!(e.message.contains("unknown field `error`"), "{e}");
    }

    #[test]
    fn a_target_replaces_the_unit_count() {
        let body =
            br#"{"kernel": "mc-option", "budget_ms": 20, "target": {"relative_error": 0.001, "estimate": "delta"}}"#;
        let job = JobRequest::decode(body).unwrap().into_job(1).unwrap();
        let want = ErrorTarget { estimate: Some("delta".into()), tolerance: Tolerance::Relative(0.001) };
        assert_eq!(job.target, Some(want));
        let body = br#"{"kernel": "mc-option", "budget_ms": 20, "target": {"std_error": 0.01}}"#;
        let job = JobRequest::decode(body).unwrap().into_job(1).unwrap();
        assert_eq!(job.target.unwrap().tolerance, Tolerance::Absolute(0.01));
    }

    #[test]
    fn malformed_json_says_where_it_broke() {
        let e = error_of(r#"{"kernel": "mc-var", "budget_ms": 5"#);
        assert!(e.message.contains("EOF") && e.message.contains("column 35"), "{e}");
        let e = error_of("42");
        assert_eq!(e.field, None);
        assert!(e.message.contains("expected struct JobRequest"), "{e}");
    }
}
