//! Where the load goes: a router in this process, or a `helix serve` over HTTP. Either way the
//! answer comes back as an `Observed`: the outcome's status and decision, or why there was none.

use crate::job::Job;
use crate::outcome::{Outcome, Status};
use crate::policy::{Reason, Strategy};
use crate::router::Router;
use helix_math::Value;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Duration;

/// Why the generator saw no outcome from the router.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The generator did not issue the job: its in-flight cap was reached. Counted as failed.
    NotIssued,
    /// No answer from the server: connection refused, reset, or timed out. Counted as failed.
    Transport(String),
    /// The server answered 503: it is draining for shutdown. Counted as dropped: the router
    /// turned the job away for lack of service, not for bad input.
    Draining,
}

/// A job's answer as the generator records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub status: Status,
    pub strategy: Option<Strategy>,
    pub reason: Option<Reason>,
    pub units_requested: u64,
    pub units_granted: u64,
    /// The router's queue wait, when it ran the job.
    pub queue_us: Option<u64>,
    pub failure: Option<Failure>,
    /// The kernel version that answered, when one ran the job.
    pub version: Option<String>,
    /// The error's kind, for rejected and failed jobs (e.g. `sandbox`, `invalid_input`).
    pub error: Option<String>,
    /// The decision's predicted service time, microseconds (for a drop, of the work asked for).
    pub predicted_cost_us: Option<f64>,
    /// The decision's predicted wait for a permit, microseconds.
    pub predicted_wait_us: Option<f64>,
    /// The router's measured service time, when it ran the job (a batch's, for its members).
    pub service_us: Option<u64>,
    /// Jobs in the batch that answered it, when it ran in one.
    pub batch_size: Option<u64>,
    /// From the router's receipt of the job to its outcome, when it answered: beside the
    /// latency, what the job spent outside the router (issuing it, the network, the client).
    pub router_total_us: Option<u64>,
}

impl Observed {
    pub fn failed(failure: Failure) -> Observed {
        let status = if failure == Failure::Draining { Status::Dropped } else { Status::Failed };
        Observed {
            status,
            strategy: None,
            reason: None,
            units_requested: 0,
            units_granted: 0,
            queue_us: None,
            failure: Some(failure),
            version: None,
            error: None,
            predicted_cost_us: None,
            predicted_wait_us: None,
            service_us: None,
            batch_size: None,
            router_total_us: None,
        }
    }

    pub fn of(o: &Outcome) -> Observed {
        let ran = matches!(o.status, Status::Completed | Status::Degraded | Status::Failed);
        Observed {
            status: o.status,
            strategy: o.decision.map(|d| d.strategy),
            reason: o.decision.map(|d| d.reason),
            units_requested: o.decision.map_or(0, |d| d.units_requested),
            units_granted: o.decision.map_or(0, |d| d.units_granted),
            queue_us: ran.then_some(o.timings.queue_us),
            failure: None,
            version: o.version.as_deref().filter(|_| ran).map(str::to_string),
            error: o.error.as_ref().map(|e| e.kind.as_str().to_string()),
            predicted_cost_us: o.decision.map(|d| d.predicted_cost_us),
            predicted_wait_us: o.decision.map(|d| d.predicted_wait_us),
            service_us: ran.then_some(o.timings.service_us),
            batch_size: o.batch_size.map(|n| u64::from(n.get())),
            router_total_us: Some(o.timings.total_us),
        }
    }
}

/// Where `helix load` sends its jobs.
pub enum Target {
    /// A router in this process, called directly.
    InProcess(Arc<Router>),
    /// A `helix serve` server, over HTTP.
    // Boxed: the client is large and a target is made once per run.
    Http(Box<HttpTarget>),
}

impl Target {
    /// The target as reports name it: the server's jobs URL, or "the in-process router".
    pub fn describe(&self) -> String {
        match self {
            Target::InProcess(_) => "the in-process router".into(),
            Target::Http(h) => h.jobs.to_string(),
        }
    }

    /// Sends one job and waits for what came of it.
    pub async fn submit(&self, job: Job) -> Observed {
        match self {
            Target::InProcess(router) => Observed::of(&router.submit(job).await),
            Target::Http(h) => h.submit(job).await,
        }
    }

    /// The router's CPU lane: its own for a router in this process, what `/metrics` says for
    /// a server (`None` when it does not answer).
    pub async fn lane(&self) -> Option<LaneUse> {
        match self {
            Target::InProcess(router) => {
                let s = router.snapshot();
                Some(LaneUse { permits: s.pressure.permits, held_us: s.lane_held_us, runs: s.lane_runs })
            }
            Target::Http(h) => h.lane().await,
        }
    }
}

/// The router's CPU lane as the replay needs it: its permits, and the permit time its runs had
/// held so far (microseconds) over how many runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneUse {
    pub permits: usize,
    pub held_us: u64,
    pub runs: u64,
}

/// How long the client keeps an idle connection: below the server's header timeout (10 s by
/// default), so the client, not the server, closes it, and a request never goes out on a
/// connection the server is closing.
pub const IDLE: Duration = Duration::from_secs(5);

/// A `helix serve` server reached over HTTP.
pub struct HttpTarget {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `POST` jobs here.
    pub jobs: Uri,
    /// Past its budget, how long to wait for an answer before counting a transport failure.
    pub grace: Duration,
}

impl HttpTarget {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<HttpTarget, String> {
        let uri: Uri = base.parse().map_err(|e| format!("--target {base:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("--target {base:?}: only http:// is supported, not {other}://")),
            None => return Err(format!("--target {base:?} needs a scheme, e.g. http://127.0.0.1:8080")),
        }
        let authority = uri.authority().ok_or_else(|| format!("--target {base:?} names no host"))?;
        let jobs = format!("http://{authority}/v1/jobs").parse().map_err(|e| format!("{e}"))?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(IDLE).build_http();
        Ok(HttpTarget { client, jobs, grace: Duration::from_secs(10) })
    }

    /// The lane's permits and use from the server's `/metrics`.
    async fn lane(&self) -> Option<LaneUse> {
        let authority = self.jobs.authority()?;
        let uri: Uri = format!("http://{authority}/metrics").parse().ok()?;
        let get = async {
            let response = self.client.get(uri).await.ok()?;
            response.into_body().collect().await.ok().map(|b| b.to_bytes())
        };
        let body = tokio::time::timeout(Duration::from_secs(5), get).await.ok()??;
        let text = String::from_utf8_lossy(&body).into_owned();
        let value = |name: &str| {
            let prefix = format!("{name} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))?.trim().parse::<f64>().ok()
        };
        Some(LaneUse {
            permits: value("helix_cpu_permits")? as usize,
            held_us: (value("helix_cpu_permit_held_seconds_total")? * 1e6).round() as u64,
            runs: value("helix_cpu_lane_runs_total")? as u64,
        })
    }

    async fn submit(&self, job: Job) -> Observed {
        let wait = job.budget + self.grace;
        // Stamped as it leaves, so the server charges the job the time the request takes to reach it.
        let sent = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let request = Request::post(self.jobs.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-request-start", format!("t={:.6}", sent.as_secs_f64()))
            .body(Full::new(Bytes::from(request_body(&job).to_string())))
            .expect("a valid request");
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| e.to_string())?;
            let code = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((code, body))
        };
        match tokio::time::timeout(wait, exchange).await {
            Err(_) => Observed::failed(Failure::Transport(format!("no answer within {} ms", wait.as_millis()))),
            Ok(Err(e)) => Observed::failed(Failure::Transport(e)),
            Ok(Ok((code, body))) => observe_response(code, &body),
        }
    }
}

/// The `POST /v1/jobs` body for a job.
pub fn request_body(job: &Job) -> Json {
    let params: serde_json::Map<String, Json> = job
        .params
        .0
        .iter()
        .map(|(name, v)| {
            let v = match v {
                Value::Number(x) => json!(x),
                Value::Array(xs) => json!(xs),
                Value::Text(t) => json!(t),
            };
            (name.clone(), v)
        })
        .collect();
    let mut body = json!({
        "kernel": job.kernel,
        "params": params,
        "budget_ms": job.budget.as_secs_f64() * 1e3,
        "criticality": job.criticality.as_str(),
    });
    if let Some(seed) = job.seed {
        body["seed"] = json!(seed);
    }
    if let Some(r) = job.runtime {
        body["runtime"] = json!(r.as_str());
    }
    body
}

/// Maps a response to an outcome: 200 is completed or degraded (the body says which), 429
/// dropped, 422 dropped as too small a budget for any server (or a refused upload: rejected),
/// 400 and 404 rejected, 500 failed, 503 dropped (by a quarantined kernel, or by a draining
/// server).
pub fn observe_response(code: StatusCode, body: &[u8]) -> Observed {
    let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
    let status = match code.as_u16() {
        200 => match json["status"].as_str() {
            Some("degraded") => Status::Degraded,
            Some("completed") => Status::Completed,
            other => {
                return Observed::failed(Failure::Transport(format!("200 with an unexpected status {other:?}")));
            }
        },
        429 => Status::Dropped,
        422 if json["status"] == "dropped" => Status::Dropped,
        400 | 404 | 422 => Status::Rejected,
        // A quarantined kernel's drop; any other 503 is a draining server.
        503 if json["status"] == "dropped" => Status::Dropped,
        503 => return Observed::failed(Failure::Draining),
        500 => Status::Failed,
        other => return Observed::failed(Failure::Transport(format!("unexpected HTTP status {other}"))),
    };
    let decision = &json["decision"];
    let strategy = decision["strategy"].as_str().and_then(|s| Strategy::ALL.into_iter().find(|x| x.as_str() == s));
    let reason = decision["reason"].as_str().and_then(|s| Reason::ALL.into_iter().find(|x| x.as_str() == s));
    let ran = matches!(status, Status::Completed | Status::Degraded | Status::Failed);
    Observed {
        status,
        strategy,
        reason,
        units_requested: decision["units_requested"].as_u64().unwrap_or(0),
        units_granted: decision["units_granted"].as_u64().unwrap_or(0),
        queue_us: json["timings_us"]["queue"].as_u64().filter(|_| ran),
        failure: None,
        version: json["version"].as_str().filter(|_| ran).map(str::to_string),
        error: json["error"]["kind"].as_str().map(str::to_string),
        predicted_cost_us: decision["predicted_cost_us"].as_f64(),
        predicted_wait_us: decision["predicted_wait_us"].as_f64(),
        service_us: json["timings_us"]["service"].as_u64().filter(|_| ran),
        batch_size: json["batch_size"].as_u64(),
        router_total_us: json["timings_us"]["total"].as_u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Criticality, Runtime};
    use crate::request::JobRequest;
    use helix_math::Params;

    #[test]
    fn a_job_round_trips_through_its_request_body() {
        let params = Params::new()
            .with("spot", Value::Number(100.0))
            .with("vols", Value::Array(vec![0.1, 0.2]))
            .with("style", Value::Text("asian".into()));
        let mut job = Job::new(3, "mc-option", params.clone(), Duration::from_micros(12_500));
        job.seed = Some(9);
        job.criticality = Criticality::Sheddable;
        job.runtime = Some(Runtime::Wasm);
        let body = request_body(&job).to_string();
        let back = JobRequest::decode(body.as_bytes()).unwrap().into_job(3).unwrap();
        assert_eq!((back.kernel.as_str(), back.budget, back.seed), ("mc-option", job.budget, Some(9)));
        assert_eq!((back.criticality, back.runtime), (Criticality::Sheddable, Some(Runtime::Wasm)));
        for (name, v) in &params.0 {
            assert_eq!(back.params.get(name), Some(v), "{name}");
        }
    }

    #[test]
    fn http_statuses_map_to_outcomes() {
        let body = |status: &str, strategy: &str| {
            json!({"status": status, "decision": {"strategy": strategy, "reason": "fits_budget", "units_requested": 1000, "units_granted": 250},
                   "timings_us": {"queue": 70, "service": 5, "total": 80}})
            .to_string()
        };
        let o = observe_response(StatusCode::OK, body("degraded", "degrade").as_bytes());
        assert_eq!(
            (o.status, o.strategy, o.units_granted, o.queue_us),
            (Status::Degraded, Some(Strategy::Degrade), 250, Some(70))
        );
        let o = observe_response(StatusCode::OK, body("completed", "cpu_lane").as_bytes());
        assert_eq!(
            (o.status, o.strategy, o.reason),
            (Status::Completed, Some(Strategy::CpuLane), Some(Reason::FitsBudget))
        );
        let o = observe_response(StatusCode::TOO_MANY_REQUESTS, body("dropped", "drop").as_bytes());
        assert_eq!((o.status, o.strategy, o.queue_us), (Status::Dropped, Some(Strategy::Drop), None));
        assert_eq!(observe_response(StatusCode::BAD_REQUEST, b"{}").status, Status::Rejected);
        let o = observe_response(StatusCode::UNPROCESSABLE_ENTITY, body("dropped", "drop").as_bytes());
        assert_eq!(o.status, Status::Dropped);
        assert_eq!(observe_response(StatusCode::NOT_FOUND, b"{}").status, Status::Rejected);
        assert_eq!(observe_response(StatusCode::INTERNAL_SERVER_ERROR, b"{}").status, Status::Failed);
        let o = observe_response(StatusCode::SERVICE_UNAVAILABLE, b"{}");
        assert_eq!((o.status, o.failure), (Status::Dropped, Some(Failure::Draining)));
        let o = observe_response(StatusCode::IM_A_TEAPOT, b"");
        assert!(matches!((o.status, o.failure), (Status::Failed, Some(Failure::Transport(_)))));
    }

    #[test]
    fn bad_target_urls_are_errors() {
        assert!(HttpTarget::new("https://example.test").err().unwrap().contains("only http://"));
        assert!(HttpTarget::new("127.0.0.1:8080").is_err());
        assert!(HttpTarget::new("not a url").err().unwrap().contains("is not a URL"));
    }
}
