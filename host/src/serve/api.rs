//! The HTTP API: jobs, kernels, health, metrics. Admin routes live in `admin`.

use super::request_start;
use super::respond::{error, kernel_json};
use super::{App, admin, metrics};
use crate::outcome::{ErrorKind, Outcome, Status};
use crate::policy::Reason;
use crate::request::JobRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

pub fn routes(app: Arc<App>) -> axum::Router {
    let config = &app.config;
    axum::Router::new()
        .route("/v1/jobs", post(submit).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/v1/kernels", get(kernels))
        .route(
            "/v1/kernels/{name}",
            get(kernel).merge(put(admin::upload).layer(DefaultBodyLimit::max(config.max_upload_bytes))),
        )
        .route("/v1/admin/reload", post(admin::reload))
        .route("/metrics", get(prometheus))
        .route("/healthz", get(|| async { Json(json!({"status": "alive"})) }))
        .route("/readyz", get(readyz))
        .merge(super::status::routes())
        .fallback(|req: Request| async move {
            error(StatusCode::NOT_FOUND, "not_found", None, format!("no route {} {}", req.method(), req.uri().path()))
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), count_responses))
        .with_state(app)
}

/// The HTTP status of a job's outcome.
pub fn status_of(o: &Outcome) -> StatusCode {
    match o.status {
        Status::Completed | Status::Degraded => StatusCode::OK,
        // A quarantined kernel is unavailable for a while, whatever the load.
        Status::Dropped if o.decision.is_some_and(|d| d.reason == Reason::Quarantined) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // Not even an idle replica could answer it in time: retrying cannot help.
        Status::Dropped if o.decision.is_some_and(|d| d.reason == Reason::NeverFits) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Status::Dropped => StatusCode::TOO_MANY_REQUESTS,
        Status::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        Status::Rejected => match o.error.as_ref().map(|e| e.kind) {
            Some(ErrorKind::UnknownKernel) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

/// Seconds a dropped job's client should wait before retrying: the predicted wait for the CPU
/// lane at the moment of the drop (for a quarantined kernel, the quarantine's time left), at
/// least one second.
fn retry_after_s(o: &Outcome) -> u64 {
    let wait_s = o.decision.map_or(0.0, |d| d.predicted_wait_us / 1e6);
    if wait_s.is_finite() { wait_s.ceil().clamp(1.0, 60.0) as u64 } else { 1 }
}

async fn submit(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Held until the reply is written, or dropped with this future if the client goes away,
    // which also closes the job's reply channel and frees it from any queue.
    let Some(_in_flight) = app.lifecycle.admit() else {
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "draining", None, "the server is shutting down");
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let body = match body {
        Ok(b) => b,
        Err(r) if super::listen::is_body_timeout(&r) => {
            return error(StatusCode::REQUEST_TIMEOUT, "body_timeout", None, r.body_text());
        }
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = app.config.max_body_bytes;
            return error(r.status(), "payload_too_large", None, format!("the body is larger than {limit} bytes"));
        }
        Err(r) => return error(r.status(), "bad_request", None, r.body_text()),
    };
    // Time the job spent before it reached this server (a balancer, a first replica) is its own.
    let spent = match headers.get(request_start::HEADER).map(|v| v.to_str().map_err(|e| e.to_string())) {
        None => None,
        Some(v) => match v.and_then(|v| request_start::spent(v, SystemTime::now())) {
            Ok(d) => Some(d),
            Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", Some("X-Request-Start"), message),
        },
    };
    let id = app.next_id.fetch_add(1, Relaxed);
    let mut charged = None;
    let job = match JobRequest::decode(&body).and_then(|r| r.into_job(id)) {
        Ok(mut job) => {
            if let Some(spent) = spent {
                // And so is the way back, which takes about what the way in took (`transit`).
                let (kept, reserve) = app.transit.reserve(spent, job.budget.saturating_sub(spent));
                job.budget = kept;
                charged = Some((spent, reserve));
            }
            job
        }
        Err(e) => {
            let body =
                json!({"status": "rejected", "error": {"kind": "bad_request", "field": e.field, "message": e.message}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let outcome = app.router.submit(job).await;
    let status = status_of(&outcome);
    let mut body = outcome.to_json();
    if let Some((spent, reserve)) = charged {
        body["timings_us"]["before_server"] = json!(spent.as_micros() as u64);
        body["timings_us"]["reserved_for_reply"] = json!(reserve.as_micros() as u64);
    }
    let mut response = (status, Json(body)).into_response();
    if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s(&outcome)));
    }
    response
}

async fn kernels(State(app): State<Arc<App>>) -> Json<Value> {
    let list: Vec<Value> = app.router.registry().all().iter().map(|k| kernel_json(k)).collect();
    Json(json!({"kernels": list}))
}

async fn kernel(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    let builds: Vec<Value> =
        app.router.registry().all().iter().filter(|k| *k.name == name).map(|k| kernel_json(k)).collect();
    if builds.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_kernel",
            Some("name"),
            app.router.registry().missing(&name, None),
        );
    }
    Json(json!({"name": name, "builds": builds})).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let kernels = app.router.registry().all().len();
    let (status, word) = if app.lifecycle.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if kernels == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "no_kernels")
    } else {
        (StatusCode::OK, "ready")
    };
    (status, Json(json!({"status": word, "kernels": kernels}))).into_response()
}

async fn prometheus(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, super::exposition::CONTENT_TYPE)], metrics::render(&app)).into_response()
}

async fn count_responses(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    app.http.count(response.status().as_u16());
    response
}
