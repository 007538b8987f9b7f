//! The API's handlers: jobs, kernels, health, readiness, metrics. Admin routes live in `admin`,
//! the route table in `routes`.

use super::request_start;
use super::respond::{
    Alive, AliveWord, ApiError, ApiErrorDetail, ApiErrorKind, KernelBody, KernelBuilds, KernelList, Readiness,
    ReadyWord, RejectedWord, RequestRejected, error,
};
use super::{App, metrics};
use crate::outcome::{ErrorKind, Outcome, OutcomeBody, Status};
use crate::policy::Reason;
use crate::request::JobRequest;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

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

/// Runs a job within its latency budget, or refuses it before any work.
///
/// The router picks how the job runs (inline, spawned, CPU lane, batch, split, degraded) or
/// drops it, and the reply says which and why. A refusal is quick and costs no work: 429 and
/// 503 carry `Retry-After` and are safe to retry on any replica (answers are deterministic by
/// seed); 422 means no replica could ever answer in time, so it must not be retried.
#[utoipa::path(
    post,
    operation_id = "submit_job",
    path = "/v1/jobs",
    tag = "jobs",
    request_body = JobRequest,
    params(
        ("X-Request-Start" = Option<String>, Header, pattern = r"^(t=)?[0-9]+(\.[0-9]+)?$",
            description = "When the request first reached the serving path, `t=SECONDS.MILLIS` (Unix time, as nginx's `t=${msec}`): the time before this server is charged to the budget, so a retried job never gets its budget twice."),
    ),
    responses(
        (status = 200, description = "Answered: `status` is `completed`, or `degraded` (fewer units, a wider error bar) to fit the budget.", body = OutcomeBody),
        (status = 400, description = "The body is not a job, or a parameter breaks its rule (`error.field` names it).", body = BadJob),
        (status = 404, description = "No kernel has this name (or none for the runtime asked for); the message suggests the nearest name.", body = OutcomeBody),
        (status = 408, description = "The body did not arrive in time.", body = ApiError),
        (status = 413, description = "The body is larger than the server's limit.", body = ApiError),
        (status = 422, description = "The budget is too small even for an idle server (`decision.reason` is `budget_too_small`, the message gives the smallest budget or units that fit): do not retry.", body = OutcomeBody),
        (status = 429, description = "Dropped before any work because the server is busy now (`decision.reason` says why): retry after `Retry-After`, on this or another replica.", body = OutcomeBody,
            headers(("Retry-After" = u64, description = "Seconds until the server expects to have room."))),
        (status = 500, description = "The kernel ran and failed: `error.kind` is `numeric_failure`, `panic`, `sandbox` (a Wasm trap, fuel or memory limit) or `internal`. Only this job is affected.", body = OutcomeBody),
        (status = 503, description = "The server is draining, or the kernel is quarantined after repeated failures: retry after `Retry-After`, on another replica.", body = Unavailable,
            headers(("Retry-After" = u64, description = "Seconds to wait: 1 while draining, the quarantine's time left otherwise."))),
    ),
)]
pub(super) async fn submit(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Held until the reply is written, or dropped with this future if the client goes away,
    // which also closes the job's reply channel and frees it from any queue.
    let Some(_in_flight) = app.lifecycle.admit() else {
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, ApiErrorKind::Draining, None, "the server is shutting down");
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let body = match body {
        Ok(b) => b,
        Err(r) if super::listen::is_body_timeout(&r) => {
            return error(StatusCode::REQUEST_TIMEOUT, ApiErrorKind::BodyTimeout, None, r.body_text());
        }
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = app.config.max_body_bytes;
            let message = format!("the body is larger than {limit} bytes");
            return error(r.status(), ApiErrorKind::PayloadTooLarge, None, message);
        }
        Err(r) => return error(r.status(), ApiErrorKind::BadRequest, None, r.body_text()),
    };
    // Time the job spent before it reached this server (a balancer, a first replica) is its own.
    let spent = match headers.get(request_start::HEADER).map(|v| v.to_str().map_err(|e| e.to_string())) {
        None => None,
        Some(v) => match v.and_then(|v| request_start::spent(v, SystemTime::now())) {
            Ok(d) => Some(d),
            Err(message) => {
                return error(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, Some("X-Request-Start"), message);
            }
        },
    };
    let id = app.next_id.fetch_add(1, Relaxed);
    let mut charged = None;
    let job = match JobRequest::decode(&body).and_then(|r| r.into_job(id)) {
        Ok(mut job) => {
            if let Some(spent) = spent {
                // And so is the way back, which takes about what the way in took (`transit`).
                let (kept, reserve) = app.transit.reserve(spent, job.budget.saturating_sub(spent));
                job.spent_before = job.budget.saturating_sub(kept);
                job.budget = kept;
                charged = Some((spent, reserve));
            }
            job
        }
        Err(e) => {
            let error = ApiErrorDetail { kind: ApiErrorKind::BadRequest, field: e.field, message: e.message };
            let body = RequestRejected { status: RejectedWord::Rejected, error };
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let outcome = app.router.submit(job).await;
    let status = status_of(&outcome);
    let mut body = outcome.to_body();
    if let Some((spent, reserve)) = charged {
        body.timings_us.before_server = Some(spent.as_micros() as u64);
        body.timings_us.reserved_for_reply = Some(reserve.as_micros() as u64);
    }
    let mut response = (status, Json(body)).into_response();
    if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s(&outcome)));
    }
    response
}

/// What `POST /v1/jobs` answers with 400: a body that is not a job, a malformed header, or a job
/// whose input its kernel refused.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents a response; the handler writes its members directly.
pub(super) enum BadJob {
    /// The body is not a job.
    Request(RequestRejected),
    /// A malformed `X-Request-Start`, or a body that could not be read.
    Header(ApiError),
    /// The job was rejected: `error.kind` is `invalid_input`, `error.field` the parameter.
    Job(Box<OutcomeBody>),
}

/// What `POST /v1/jobs` answers with 503: the server is draining, or the kernel is quarantined.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documents a response; the handler writes its members directly.
pub(super) enum Unavailable {
    /// The server is draining.
    Draining(ApiError),
    /// The kernel is quarantined: a dropped outcome with `decision.reason` `quarantined`.
    Quarantined(Box<OutcomeBody>),
}

/// Every registered kernel build, with its manifest.
#[utoipa::path(get, operation_id = "list_kernels",
    path = "/v1/kernels", tag = "kernels", responses((status = 200, description = "Every build: a kernel with a native and a Wasm build is listed twice.", body = KernelList)))]
pub(super) async fn kernels(State(app): State<Arc<App>>) -> Json<KernelList> {
    Json(KernelList { kernels: app.router.registry().all().iter().map(|k| KernelBody::of(k)).collect() })
}

/// The builds of one kernel, with their parameters and rules.
#[utoipa::path(
    get,
    operation_id = "get_kernel",
    path = "/v1/kernels/{name}",
    tag = "kernels",
    params(("name" = String, Path, description = "The kernel's name.")),
    responses(
        (status = 200, description = "Its builds.", body = KernelBuilds),
        (status = 404, description = "No kernel has this name; the message suggests the nearest one.", body = ApiError),
    ),
)]
pub(super) async fn kernel(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    let builds: Vec<KernelBody> =
        app.router.registry().all().iter().filter(|k| *k.name == name).map(|k| KernelBody::of(k)).collect();
    if builds.is_empty() {
        let message = app.router.registry().missing(&name, None);
        return error(StatusCode::NOT_FOUND, ApiErrorKind::UnknownKernel, Some("name"), message);
    }
    Json(KernelBuilds { name, builds }).into_response()
}

/// Liveness: the process answers HTTP.
#[utoipa::path(get, operation_id = "healthz",
    path = "/healthz", tag = "operations", responses((status = 200, description = "It is alive.", body = Alive)))]
pub(super) async fn healthz() -> Json<Alive> {
    Json(Alive { status: AliveWord::Alive })
}

/// Readiness: 200 while the server takes jobs, 503 while it drains or has no kernel.
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "It takes jobs.", body = Readiness),
        (status = 503, description = "It is draining, or has no kernel registered.", body = Readiness),
    ),
)]
pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    let kernels = app.router.registry().all().len() as u64;
    let (code, status) = if app.lifecycle.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, ReadyWord::Draining)
    } else if kernels == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, ReadyWord::NoKernels)
    } else {
        (StatusCode::OK, ReadyWord::Ready)
    };
    (code, Json(Readiness { status, kernels })).into_response()
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(
    get,
    operation_id = "metrics",
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Every metric, as Prometheus scrapes it.", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
)]
pub(super) async fn prometheus(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, super::exposition::CONTENT_TYPE)], metrics::render(&app)).into_response()
}

/// Counts every response by status code (`helix_http_responses_total`).
pub(super) async fn count_responses(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    app.http.count(response.status().as_u16());
    response
}
