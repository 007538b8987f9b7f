//! Bodies both the API and the admin routes answer with: the JSON error that is not a job
//! outcome, and a kernel build as the API shows it.

use crate::registry::{Entry, Kernel};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error that is not a job outcome: `{"error": {"kind", "field", "message"}}`.
pub(super) fn error(status: StatusCode, kind: &str, field: Option<&str>, message: impl Into<String>) -> Response {
    let body = json!({"error": {"kind": kind, "field": field, "message": message.into()}});
    (status, Json(body)).into_response()
}

/// A kernel build as the API shows it.
pub(super) fn kernel_json(k: &Kernel) -> Value {
    json!({
        "name": &*k.name,
        "version": &*k.version,
        "runtime": k.runtime().as_str(),
        "description": k.manifest.description,
        "module_sha256": match &k.entry { Entry::Wasm(w) => Some(w.sha256.as_str()), Entry::Native(_) => None },
        "manifest": serde_json::to_value(&k.manifest).unwrap_or(Value::Null),
    })
}
