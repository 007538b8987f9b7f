//! The route table: which handler answers which method and path, with each route's body limit,
//! the 404 for everything else, and the response counter around them all.

use super::respond::{ApiErrorKind, error};
use super::{App, admin, api, openapi, status};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use std::sync::Arc;

pub(super) fn routes(app: Arc<App>) -> axum::Router {
    let config = &app.config;
    axum::Router::new()
        .route("/v1/jobs", post(api::submit).layer(DefaultBodyLimit::max(config.max_body_bytes)))
        .route("/v1/kernels", get(api::kernels))
        .route(
            "/v1/kernels/{name}",
            get(api::kernel).merge(put(admin::upload).layer(DefaultBodyLimit::max(config.max_upload_bytes))),
        )
        .route("/v1/admin/reload", post(admin::reload))
        .route("/metrics", get(api::prometheus))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/openapi.json", get(openapi::document))
        .merge(status::routes())
        .fallback(|req: Request| async move {
            let message = format!("no route {} {}: GET /openapi.json lists them", req.method(), req.uri().path());
            error(StatusCode::NOT_FOUND, ApiErrorKind::NotFound, None, message)
        })
        .layer(axum::middleware::from_fn_with_state(app.clone(), api::count_responses))
        .with_state(app)
}
