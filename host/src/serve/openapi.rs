//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the types that
//! write their bodies, served at `GET /openapi.json` and kept in `docs/openapi.json`.

use super::{admin, api, status};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HelixRouter",
        description = "A compute router for latency-budgeted quant and ML work. A job names a kernel, its parameters and a latency budget, never how it runs: the router decides, per job, and every reply says what it decided and why.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        api::submit,
        api::kernels,
        api::kernel,
        admin::upload,
        admin::reload,
        api::healthz,
        api::readyz,
        api::prometheus,
        status::status,
        status::page,
        document,
    ),
    modifiers(&AdminToken),
    tags(
        (name = "jobs", description = "Run jobs."),
        (name = "kernels", description = "The registered kernels and their parameters."),
        (name = "admin", description = "Register kernels; behind the admin bearer token."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    ),
)]
struct Document;

/// Declares the bearer token the admin routes name.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The server's admin token (`admin_token` in its config, or HELIX_ADMIN_TOKEN)."))
            .build();
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}

/// This document: the API's OpenAPI 3.1 description.
#[utoipa::path(
    get,
    operation_id = "openapi",
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object)),
)]
pub(super) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

/// The document, as JSON: pretty-printed, ending in a newline, the same bytes every time.
pub fn json() -> String {
    let mut document = Document::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut text = document.to_pretty_json().expect("an OpenAPI document always serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&super::json()).unwrap()
    }

    #[test]
    fn every_route_is_described() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        for route in [
            "/v1/jobs",
            "/v1/kernels",
            "/v1/kernels/{name}",
            "/v1/admin/reload",
            "/metrics",
            "/healthz",
            "/readyz",
            "/openapi.json",
        ] {
            assert!(paths.contains(&route), "{route} is not in {paths:?}");
        }
        assert!(doc["paths"]["/v1/kernels/{name}"]["put"]["security"][0].get("admin_token").is_some());
        assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    }

    #[test]
    fn the_metrics_route_names_the_exposition_content_type() {
        let doc = document();
        let content = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
        assert!(content.get(super::super::exposition::CONTENT_TYPE).is_some(), "{content}");
    }

    #[test]
    fn the_job_route_has_a_runnable_example_and_every_refusal_it_answers_with() {
        let doc = document();
        let job = &doc["components"]["schemas"]["Job"];
        let example = &job["example"];
        let request = crate::request::JobRequest::decode(example.to_string().as_bytes()).expect("the example decodes");
        assert_eq!(request.kernel, "mc-option");
        let responses = doc["paths"]["/v1/jobs"]["post"]["responses"].as_object().unwrap();
        let codes: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert_eq!(codes, ["200", "400", "404", "408", "413", "422", "429", "500", "503"]);
        assert!(responses["429"]["headers"].get("Retry-After").is_some());
        assert_eq!(job["additionalProperties"], false, "unknown fields are refused: {job}");
    }

    #[test]
    fn the_request_start_header_is_described_as_the_server_parses_it() {
        let doc = document();
        let params = doc["paths"]["/v1/jobs"]["post"]["parameters"].as_array().unwrap();
        let header = params.iter().find(|p| p["name"] == "X-Request-Start").expect("X-Request-Start is described");
        assert_eq!(header["schema"]["pattern"], super::super::request_start::PATTERN);
    }

    #[test]
    fn every_reason_and_strategy_is_listed_as_the_api_writes_it() {
        let doc = document();
        let listed = |name: &str| -> Vec<String> {
            let values = doc["components"]["schemas"][name]["enum"].as_array().unwrap_or_else(|| panic!("{name}"));
            let mut names: Vec<String> = values.iter().map(|v| v.as_str().unwrap().to_string()).collect();
            names.sort();
            names
        };
        let sorted = |mut names: Vec<String>| {
            names.sort();
            names
        };
        let reasons = sorted(crate::policy::Reason::ALL.iter().map(|r| r.as_str().to_string()).collect());
        assert_eq!(listed("Reason"), reasons);
        let strategies = sorted(crate::policy::Strategy::ALL.iter().map(|s| s.as_str().to_string()).collect());
        assert_eq!(listed("Strategy"), strategies);
    }
}
