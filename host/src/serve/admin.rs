//! Admin routes, behind the bearer token: upload a kernel, reload the manifests folder.

use super::App;
use super::respond::{error, kernel_json};
use crate::catalog::{ReloadReport, Upload, UploadError};
use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The response refusing an admin request, or `None` when its token is right.
fn refusal(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &app.admin_token else {
        let hint = format!("the admin API is disabled: set admin_token or {}", app.config.admin_token_env);
        return Some(error(StatusCode::FORBIDDEN, "admin_disabled", None, hint));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        return None;
    }
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", None, "a valid admin bearer token is required");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn report_json(r: &ReloadReport) -> Value {
    let refused: Vec<Value> = r.refused.iter().map(|e| json!({"source": e.source, "message": e.message})).collect();
    json!({"loaded": r.loaded, "removed": r.removed, "refused": refused})
}

/// `PUT /v1/kernels/{name}`, multipart: a `manifest` part (TOML) and, for Wasm kernels, a
/// `module` part.
pub(super) async fn upload(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(r) = refusal(&app, &headers) {
        return r;
    }
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(r) => return error(r.status(), "bad_request", None, r.body_text()),
    };
    let (mut manifest, mut module) = (None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return error(e.status(), "bad_request", None, e.body_text()),
        };
        let part = field.name().unwrap_or("").to_string();
        let read = match part.as_str() {
            "manifest" => field.text().await.map(|t| manifest = Some(t)),
            "module" => field.bytes().await.map(|b| module = Some(b.to_vec())),
            _ => {
                return error(StatusCode::BAD_REQUEST, "bad_request", Some(&part), "parts are `manifest` and `module`");
            }
        };
        if let Err(e) = read {
            return error(e.status(), "bad_request", Some(&part), e.body_text());
        }
    }
    let Some(manifest_text) = manifest else {
        return error(StatusCode::BAD_REQUEST, "bad_request", Some("manifest"), "the `manifest` part is missing");
    };
    match app.router.install(&name, Upload { manifest_text, module }).await {
        Ok(done) => {
            tracing::info!(kernel = %done.name, version = %done.version, location = %done.location, "kernel uploaded");
            let kernel = app.router.registry().pick(&done.name, Some(done.runtime)).map(|k| kernel_json(&k));
            let status = if done.replaced { StatusCode::OK } else { StatusCode::CREATED };
            let body = json!({"kernel": kernel, "replaced": done.replaced, "path": done.location, "report": report_json(&done.report)});
            (status, Json(body)).into_response()
        }
        Err(UploadError::Invalid(m)) => error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_kernel", None, m),
        Err(UploadError::Io(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, "io", None, m),
    }
}

/// `POST /v1/admin/reload`: picks up the manifests folder's changes now.
pub(super) async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&app, &headers) {
        return r;
    }
    match app.router.reload().await {
        Ok(report) => Json(report_json(&report)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "io", None, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abc", b"abd"));
        assert!(!super::same_secret(b"abc", b"abcd"));
        assert!(!super::same_secret(b"", b"a"));
    }
}
