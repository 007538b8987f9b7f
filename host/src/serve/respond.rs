//! The bodies the API answers with, other than a job's outcome (`outcome::OutcomeBody`): one
//! typed struct per JSON object, the same types the OpenAPI document is generated from.

use crate::catalog::ReloadReport;
use crate::job::Runtime;
use crate::manifest::Manifest;
use crate::registry::{Entry, Kernel};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// What a request that is not a job outcome went wrong with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    /// No such route.
    NotFound,
    /// The body is not what the route takes, or a header is malformed; `field` names it.
    BadRequest,
    /// The body did not arrive within the server's body deadline.
    BodyTimeout,
    /// The body is larger than the route's limit.
    PayloadTooLarge,
    /// No kernel has this name.
    UnknownKernel,
    /// The server is shutting down: another replica can take the request.
    Draining,
    /// The admin API is off: the server was started without an admin token.
    AdminDisabled,
    /// The admin bearer token is missing or wrong.
    Unauthorized,
    /// An uploaded kernel failed validation; nothing was installed.
    InvalidKernel,
    /// The server could not read or write its kernel store.
    Io,
}

/// An error that is not a job outcome.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// What went wrong, where, and what to do about it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApiErrorDetail {
    /// The kind of error.
    pub kind: ApiErrorKind,
    /// The field, part or header at fault, where one is.
    #[schema(required = true)]
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A `POST /v1/jobs` body that is not a job (malformed JSON, an unknown or mistyped field).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRejected {
    /// Always `rejected`.
    pub status: RejectedWord,
    /// What is wrong; `kind` is `bad_request`.
    pub error: ApiErrorDetail,
}

/// The status of a request rejected before it became a job.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectedWord {
    /// The request was refused as it stood.
    Rejected,
}

/// The answer of an error that is not a job outcome.
pub(super) fn error(
    status: StatusCode,
    kind: ApiErrorKind,
    field: Option<&str>,
    message: impl Into<String>,
) -> Response {
    let body = ApiError { error: ApiErrorDetail { kind, field: field.map(str::to_string), message: message.into() } };
    (status, Json(body)).into_response()
}

/// One registered build of a kernel.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Kernel)]
pub struct KernelBody {
    /// The kernel's name, as jobs name it.
    pub name: String,
    /// The build's version.
    pub version: String,
    /// Built in, or a sandboxed Wasm component.
    pub runtime: Runtime,
    /// What the kernel computes.
    pub description: String,
    /// A Wasm build's module hash; `null` for a native build.
    #[schema(required = true)]
    pub module_sha256: Option<String>,
    /// The manifest the build was registered from: its parameters and their rules, its cost
    /// model, degrade knob and batching rule.
    pub manifest: Manifest,
}

impl KernelBody {
    pub(super) fn of(k: &Kernel) -> Self {
        KernelBody {
            name: k.name.to_string(),
            version: k.version.to_string(),
            runtime: k.runtime(),
            description: k.manifest.description.clone(),
            module_sha256: match &k.entry {
                Entry::Wasm(w) => Some(w.sha256.to_string()),
                Entry::Native(_) => None,
            },
            manifest: k.manifest.clone(),
        }
    }
}

/// Every registered build.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KernelList {
    /// One entry per build: a kernel with a native and a Wasm build is listed twice.
    pub kernels: Vec<KernelBody>,
}

/// The builds of one kernel.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KernelBuilds {
    /// The kernel's name.
    pub name: String,
    /// Its builds: native, Wasm, or both.
    pub builds: Vec<KernelBody>,
}

/// `GET /healthz`: the process answers.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Alive {
    /// Always `alive`.
    pub status: AliveWord,
}

/// The one status of a live process.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AliveWord {
    /// The process answers HTTP.
    Alive,
}

/// `GET /readyz`: whether the server takes jobs.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Ready, or why not.
    pub status: ReadyWord,
    /// Kernel builds registered.
    pub kernels: u64,
}

/// Whether a server takes jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyWord {
    /// It takes jobs.
    Ready,
    /// It is shutting down.
    Draining,
    /// It has no kernel registered.
    NoKernels,
}

/// What a reload or an upload changed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReloadBody {
    /// `name@version (runtime)` of each build registered or replaced.
    pub loaded: Vec<String>,
    /// `name (runtime)` of each build whose manifest was removed.
    pub removed: Vec<String>,
    /// Manifests that failed to load; a build they registered before keeps serving.
    pub refused: Vec<RefusedManifest>,
}

/// A manifest that failed to load.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RefusedManifest {
    /// Its file, or the name it was uploaded under.
    pub source: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<&ReloadReport> for ReloadBody {
    fn from(r: &ReloadReport) -> Self {
        ReloadBody {
            loaded: r.loaded.clone(),
            removed: r.removed.clone(),
            refused: r
                .refused
                .iter()
                .map(|e| RefusedManifest { source: e.source.clone(), message: e.message.clone() })
                .collect(),
        }
    }
}

/// An installed upload.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Uploaded {
    /// The build as now registered; `null` if a concurrent change removed it already.
    #[schema(required = true)]
    pub kernel: Option<KernelBody>,
    /// Whether it replaced a build of the same name and runtime.
    pub replaced: bool,
    /// Where its manifest was written (a file, or a store key).
    pub path: String,
    /// What the reload that installed it changed.
    pub report: ReloadBody,
}

/// `PUT /v1/kernels/{name}`'s multipart form.
#[derive(ToSchema)]
#[allow(dead_code)] // Read part by part from the multipart stream; the type documents the form.
pub struct UploadForm {
    /// The kernel's manifest, TOML.
    manifest: String,
    /// A Wasm kernel's component, the file the manifest's `module.path` names.
    #[schema(value_type = Option<String>, format = Binary)]
    module: Option<Vec<u8>>,
}
