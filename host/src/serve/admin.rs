//! Admin routes, behind the bearer token: upload a kernel, reload the manifests folder.

use super::App;
use super::respond::{ApiError, ApiErrorKind, KernelBody, ReloadBody, UploadForm, Uploaded, error};
use crate::catalog::{Upload, UploadError};
use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The response refusing an admin request, or `None` when its token is right.
fn refusal(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &app.admin_token else {
        let hint = format!("the admin API is disabled: set admin_token or {}", app.config.admin_token_env);
        return Some(error(StatusCode::FORBIDDEN, ApiErrorKind::AdminDisabled, None, hint));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        return None;
    }
    let message = "a valid admin bearer token is required: `Authorization: Bearer TOKEN`";
    let mut r = error(StatusCode::UNAUTHORIZED, ApiErrorKind::Unauthorized, None, message);
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Registers a kernel on this server (and, through the shared store, on every replica).
///
/// Multipart: a `manifest` part (TOML) and, for a Wasm kernel, a `module` part. The kernel is
/// validated (the manifest's rules, the module's sha256, a compile of the component) before
/// anything is written; a build of the same name and runtime is replaced, and jobs in flight
/// finish on the old one.
#[utoipa::path(
    put,
    operation_id = "upload_kernel",
    path = "/v1/kernels/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "The kernel's name, as its manifest gives it.")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "It replaced a build of the same name and runtime.", body = Uploaded),
        (status = 201, description = "It is a new kernel or a new runtime of one.", body = Uploaded),
        (status = 400, description = "The form is malformed or lacks its `manifest` part.", body = ApiError),
        (status = 401, description = "The admin bearer token is missing or wrong.", body = ApiError),
        (status = 403, description = "The admin API is off (no admin token was configured).", body = ApiError),
        (status = 413, description = "The upload is larger than the server's limit.", body = ApiError),
        (status = 422, description = "The kernel failed validation; nothing was installed.", body = ApiError),
        (status = 500, description = "The kernel store could not be written.", body = ApiError),
    ),
)]
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
        Err(r) => return error(r.status(), ApiErrorKind::BadRequest, None, r.body_text()),
    };
    let (mut manifest, mut module) = (None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return error(e.status(), ApiErrorKind::BadRequest, None, e.body_text()),
        };
        let part = field.name().unwrap_or("").to_string();
        let read = match part.as_str() {
            "manifest" => field.text().await.map(|t| manifest = Some(t)),
            "module" => field.bytes().await.map(|b| module = Some(b.to_vec())),
            _ => {
                let message = "the parts are `manifest` and `module`";
                return error(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, Some(&part), message);
            }
        };
        if let Err(e) = read {
            return error(e.status(), ApiErrorKind::BadRequest, Some(&part), e.body_text());
        }
    }
    let Some(manifest_text) = manifest else {
        let message = "the `manifest` part is missing";
        return error(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, Some("manifest"), message);
    };
    match app.router.install(&name, Upload { manifest_text, module }).await {
        Ok(done) => {
            tracing::info!(kernel = %done.name, version = %done.version, location = %done.location, "kernel uploaded");
            let kernel = app.router.registry().pick(&done.name, Some(done.runtime)).map(|k| KernelBody::of(&k));
            let status = if done.replaced { StatusCode::OK } else { StatusCode::CREATED };
            let body = Uploaded {
                kernel,
                replaced: done.replaced,
                path: done.location.to_string(),
                report: ReloadBody::from(&done.report),
            };
            (status, Json(body)).into_response()
        }
        Err(UploadError::Invalid(m)) => error(StatusCode::UNPROCESSABLE_ENTITY, ApiErrorKind::InvalidKernel, None, m),
        Err(UploadError::Io(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, ApiErrorKind::Io, None, m),
    }
}

/// Picks up the manifests folder's (or store's) changes now, instead of at the next poll.
#[utoipa::path(
    post,
    operation_id = "reload_kernels",
    path = "/v1/admin/reload",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What the reload changed.", body = ReloadBody),
        (status = 401, description = "The admin bearer token is missing or wrong.", body = ApiError),
        (status = 403, description = "The admin API is off (no admin token was configured).", body = ApiError),
        (status = 500, description = "The manifests folder or store could not be read.", body = ApiError),
    ),
)]
pub(super) async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&app, &headers) {
        return r;
    }
    match app.router.reload().await {
        Ok(report) => Json(ReloadBody::from(&report)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, ApiErrorKind::Io, None, e.to_string()),
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
