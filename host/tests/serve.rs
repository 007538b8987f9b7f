//! `helix serve` end to end: the real binary on a free loopback port, driven over real sockets.
//! Every bundled kernel over HTTP, every status code, admin auth, the body limit, hot
//! registration through the API, metrics read by a Prometheus text parser, a client that goes
//! away, and a SIGTERM drain that loses no accepted job.
//!
//! The Wasm kernels are built and staged by `cargo xtask test`.

use serde_json::{Value, json};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bundled_copy, guest_module, metric, stage_wasm, temp_dir, upload_kernel};

const TOKEN: &str = "test-admin-token";

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `helix serve` on a free port with `config` (TOML) and waits until it is ready.
    fn start(tag: &str, manifests: &Path, config: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = temp_dir(&format!("{tag}-run"));
        let config_path = dir.join("helix.toml");
        std::fs::write(&config_path, format!("summary_interval_s = 1\n{config}")).unwrap();
        let log = dir.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["serve", "--config", config_path.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
            .args(["--manifests", manifests.to_str().unwrap()])
            .env("HELIX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("helix starts");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log, agent };
        let start = Instant::now();
        while server.try_get("/readyz").map(|(s, _)| s) != Some(200) {
            assert!(start.elapsed() < Duration::from_secs(60), "not ready in time:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs `path`, once more on a transport error: a pooled connection may have been closed
    /// by the server after a refused upload whose body it did not read (a real client retries an
    /// idempotent GET the same way).
    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let once = || {
            let mut r = self.agent.get(format!("{}{path}", self.base)).call().ok()?;
            Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
        };
        once().or_else(once)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.try_get(path).expect("GET answered");
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// POSTs raw bytes; returns the status, the `Retry-After` header and the JSON body.
    fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut r = req.send(body).expect("POST answered");
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let text = r.body_mut().read_to_string().unwrap();
        (r.status().as_u16(), retry, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn job(&self, job: &Value) -> (u16, Value) {
        let (status, _, body) = self.post_raw("/v1/jobs", job.to_string().as_bytes(), &[]);
        (status, body)
    }

    /// PUTs a kernel as multipart form data: a manifest and, optionally, a module.
    fn upload(&self, name: &str, manifest: &str, module: Option<&[u8]>, token: Option<&str>) -> (u16, Value) {
        upload_kernel(&self.agent, &self.base, name, manifest, module, token)
    }

    fn metrics(&self) -> prometheus_parse::Scrape {
        let (status, text) = self.try_get("/metrics").expect("metrics answered");
        assert_eq!(status, 200);
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text parses")
    }

    fn sigterm(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -TERM failed");
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no exit after SIGTERM:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn histogram_count(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count)
            }
            _ => 0.0,
        })
        .sum()
}

fn option_params(paths: u64) -> Value {
    json!({"spot": 100, "strike": 97, "vol": 0.3, "rate": 0.02, "maturity": 0.75, "paths": paths})
}

/// A job for every bundled kernel, native and Wasm.
fn bundled_jobs() -> Vec<(&'static str, Option<&'static str>, Value)> {
    let var = json!({"positions": [1e6, -3e5, 2e6], "drifts": [0.05, 0.01, 0.07], "vols": [0.2, 0.35, 0.25],
        "correlation": [[1, 0.3, -0.2], [0.3, 1, 0.1], [-0.2, 0.1, 1]], "horizon": 0.04, "paths": 9000});
    let obs: Vec<f64> = (0..40).map(|t| (t as f64 * 0.3).sin() * 1.5).collect();
    let pf = json!({"a": 0.8, "q": 1.1, "r": 0.6, "observations": obs, "particles": 3000});
    let returns: Vec<f64> = (0..300 * 3).map(|k| 0.01 * ((k as f64 * 2.9).sin() + (k as f64 * 0.37).cos())).collect();
    let ewma = json!({"returns": returns, "assets": 3, "lambda": 0.97});
    let basket = json!({"spots": [100, 90], "weights": [0.5, 0.5], "vols": [0.2, 0.3], "correlation": [1, 0.4, 0.4, 1],
        "maturity": 1, "strike": 95, "paths": 20000});
    let mut jobs = Vec::new();
    for runtime in ["native", "wasm"] {
        jobs.push(("mc-option", Some(runtime), option_params(20000)));
        jobs.push(("mc-var", Some(runtime), var.clone()));
        jobs.push(("particle-filter", Some(runtime), pf.clone()));
        jobs.push(("ewma-cov", Some(runtime), ewma.clone()));
    }
    jobs.push(("basket-option", None, basket));
    jobs.push(("hashmix", None, json!({"inputs": [1, 2, 3], "compute_cost": 1000})));
    jobs.push(("primecount", None, json!({"compute_cost": 20000})));
    jobs
}

#[test]
fn every_bundled_kernel_answers_over_http_as_helix_run_does() {
    let dir = bundled_copy("kernels");
    let server = Server::start("kernels", &dir, "");
    for (kernel, runtime, params) in bundled_jobs() {
        let job = json!({"kernel": kernel, "runtime": runtime, "params": params, "budget_ms": 20000, "seed": 5});
        let (status, body) = server.job(&job);
        assert_eq!(status, 200, "{kernel} {runtime:?}: {body}");
        assert_eq!(body["status"], "completed", "{kernel}: {body}");
        assert_eq!(body["kernel"], kernel);
        assert!(!body["estimates"].as_object().unwrap().is_empty() || !body["arrays"].as_object().unwrap().is_empty());
        if runtime == Some("wasm") {
            assert!(body["fuel_used"].as_u64().unwrap() > 0, "{body}");
        }
    }

    // The CLI and the API give the same estimates for the same job.
    for runtime in ["native", "wasm"] {
        let out = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["run", "mc-var", "--seed", "5", "--budget-ms", "20000", "--json", "--runtime", runtime])
            .args(["--param", "positions=1e6,-3e5", "--param", "drifts=0.05,0.01", "--param", "vols=0.2,0.35"])
            .args(["--param", "correlation=1,0.3,0.3,1", "--param", "horizon=0.04", "--param", "paths=9000"])
            .env("HELIX_MANIFESTS", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        let job = json!({"kernel": "mc-var", "runtime": runtime, "seed": 5, "budget_ms": 20000, "params": {
            "positions": [1e6, -3e5], "drifts": [0.05, 0.01], "vols": [0.2, 0.35], "correlation": [[1, 0.3], [0.3, 1]],
            "horizon": 0.04, "paths": 9000}});
        let (status, api) = server.job(&job);
        assert_eq!(status, 200, "{api}");
        assert_eq!(cli["estimates"], api["estimates"], "{runtime}");
        assert!(api["estimates"]["var"]["value"].as_f64().unwrap() > 0.0, "{api}");
    }
}

#[test]
fn every_status_code_and_admin_auth() {
    let dir = bundled_copy("status");
    // A kernel that always traps, for the 500.
    stage_wasm(&dir, "panic-trap", &std::fs::read(guest_module("panic-trap")).unwrap(), "");
    let server = Server::start("status", &dir, "max_body_bytes = 4096\n");

    let ok = json!({"kernel": "mc-option", "params": option_params(10000), "budget_ms": 5000});
    assert_eq!(server.job(&ok).0, 200);

    // An error-targeted job: its outcome says what it asked and reached; a bad target is a 400
    // naming the field.
    let targeted = json!({"kernel": "mc-option", "params": option_params(1_000_000), "budget_ms": 5000,
        "target": {"relative_error": 0.01}});
    let (status, body) = server.job(&targeted);
    assert_eq!(status, 200, "{body}");
    let (price, target) = (&body["estimates"]["price"], &body["target"]);
    assert_eq!((target["met"].as_bool(), target["estimate"].as_str()), (Some(true), Some("price")), "{body}");
    assert!(price["std_error"].as_f64().unwrap() <= 0.01 * price["value"].as_f64().unwrap(), "{body}");
    let (status, body) = server.job(&json!({"kernel": "mc-option", "params": {}, "budget_ms": 50,
        "target": {"relative_error": -1}}));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("target.relative_error")), "{body}");

    let (status, body) = server.job(&json!({"kernel": "mc-option", "params": {"spot": -1}, "budget_ms": 50}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "spot");
    assert!(body["error"]["message"].as_str().unwrap().contains("must be in"), "the rule is named: {body}");

    let (status, _, body) = server.post_raw("/v1/jobs", br#"{"kernel": "mc-option", "budget_ms": "#, &[]);
    assert_eq!(status, 400, "malformed JSON: {body}");
    assert_eq!(body["error"]["kind"], "bad_request");
    let (status, body) =
        server.job(&json!({"kernel": "mc-option", "params": {}, "budget_ms": 5, "strategy": "inline"}));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown field `strategy`"), "{body}");

    let (status, body) = server.job(&json!({"kernel": "no-such-kernel", "params": {}, "budget_ms": 50}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["kind"], "unknown_kernel");

    let big = json!({"kernel": "mc-option", "params": {"spot": vec![1.0; 2000]}, "budget_ms": 50});
    let (status, body) = server.job(&big);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["kind"], "payload_too_large");

    // A 1e8-path job cannot fit 1 ms even at its degrade floor on an idle server: no retry
    // can help, so it is a 422 without a Retry-After (a balancer must not retry it), with the fix.
    let hopeless = json!({"kernel": "mc-option", "params": option_params(100_000_000), "budget_ms": 1});
    let (status, retry, body) = server.post_raw("/v1/jobs", hopeless.to_string().as_bytes(), &[]);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["decision"]["reason"], "budget_too_small");
    assert_eq!(body["error"]["field"], "budget_ms");
    assert!(body["error"]["message"].as_str().unwrap().contains("raise budget_ms"), "{body}");
    assert_eq!(retry, None, "{body}");

    // X-Request-Start: a job stamped 10 s ago with 5 s of budget has none left; a stamp just
    // now leaves it its budget; a malformed stamp is refused with the form to send.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let stamped = |t: String| server.post_raw("/v1/jobs", ok.to_string().as_bytes(), &[("x-request-start", &t)]);
    let (status, _, body) = stamped(format!("t={:.3}", now_s - 10.0));
    assert_eq!((status, &body["decision"]["reason"]), (429, &json!("deadline_passed")), "{body}");
    let (status, _, body) = stamped(format!("t={:.3}", now_s));
    assert_eq!(status, 200, "{body}");
    assert!(body["budget_us"].as_u64().unwrap() > 4_900_000, "{body}");
    // What the job spent before the server and what is kept back for the reply both show, and
    // both came off its budget.
    let (status, _, body) = stamped(format!("t={:.6}", now_s - 0.2));
    assert_eq!(status, 200, "{body}");
    let t = &body["timings_us"];
    let (before, reserve) = (t["before_server"].as_u64().unwrap(), t["reserved_for_reply"].as_u64().unwrap());
    assert!(before >= 200_000, "{body}");
    let whole = body["budget_us"].as_u64().unwrap() + before + reserve;
    assert!((4_999_990..=5_000_002).contains(&whole), "{whole} us of 5 s: {body}");
    // An unstamped job is charged nothing either way.
    let (_, _, body) = server.post_raw("/v1/jobs", ok.to_string().as_bytes(), &[]);
    assert!(body["timings_us"].get("reserved_for_reply").is_none(), "{body}");
    let (status, _, body) = stamped("t=yesterday".into());
    assert_eq!((status, &body["error"]["field"]), (400, &json!("X-Request-Start")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("t=SECONDS.FRACTION"), "{body}");

    let (status, body) = server.job(&json!({"kernel": "panic-trap", "params": {}, "budget_ms": 5000}));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["kind"], "sandbox");

    // The honest kernel still answers after the trap.
    assert_eq!(server.job(&ok).0, 200);

    let (status, body) = server.get("/v1/kernels");
    assert_eq!(status, 200);
    let names: Vec<&str> = body["kernels"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    for k in ["mc-option", "mc-var", "particle-filter", "ewma-cov", "basket-option", "panic-trap"] {
        assert!(names.contains(&k), "{k} not listed: {names:?}");
    }
    let (status, body) = server.get("/v1/kernels/mc-var");
    assert_eq!(status, 200);
    let runtimes: Vec<&str> =
        body["builds"].as_array().unwrap().iter().map(|b| b["runtime"].as_str().unwrap()).collect();
    assert_eq!(runtimes, ["native", "wasm"]);
    assert_eq!(body["builds"][1]["manifest"]["units"]["param"], "paths");
    assert_eq!(server.get("/v1/kernels/nope").0, 404);
    assert_eq!(server.get("/no/such/route").0, 404);
    assert_eq!(server.get("/healthz").0, 200);

    // Admin routes: no token or a wrong one is 401; the right one works.
    let (status, _, body) = server.post_raw("/v1/admin/reload", b"", &[]);
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = server.post_raw("/v1/admin/reload", b"", &[("authorization", "Bearer wrong")]);
    assert_eq!(status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = server.post_raw("/v1/admin/reload", b"", &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    assert!(body["refused"].as_array().unwrap().is_empty(), "{body}");
    let manifest = std::fs::read_to_string(dir.join("wasm/basket-option.toml")).unwrap();
    assert_eq!(server.upload("basket-option", &manifest, None, None).0, 401);

    let m = server.metrics();
    for code in ["200", "400", "401", "404", "413", "429", "500"] {
        assert!(metric(&m, "helix_http_responses_total", &[("code", code)]) >= 1.0, "code {code} not counted");
    }
}

#[test]
fn kernels_register_over_the_api_while_serving() {
    let dir = bundled_copy("upload");
    let server = Server::start("upload", &dir, "");
    let module = std::fs::read(dir.join("wasm/basket-option.wasm")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("wasm/basket-option.toml"))
        .unwrap()
        .replace("name = \"basket-option\"", "name = \"team-basket\"")
        .replace("path = \"basket-option.wasm\"", "path = \"team-basket.wasm\"");
    let job = json!({"kernel": "team-basket", "seed": 3, "budget_ms": 20000, "params": {"spots": [100], "weights": [1],
        "vols": [0.2], "correlation": [1], "maturity": 1, "strike": 100, "paths": 20000}});
    assert_eq!(server.job(&job).0, 404, "not registered yet");

    // Refused uploads leave nothing behind: a wrong sha256, a manifest for another name.
    let bad_sha = manifest.replace(&helix_host::wasm::sha256_hex(&module), &"0".repeat(64));
    let (status, body) = server.upload("team-basket", &bad_sha, Some(&module), Some(TOKEN));
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("sha256"), "{body}");
    let (status, body) = server.upload("other-name", &manifest, Some(&module), Some(TOKEN));
    assert_eq!(status, 422, "{body}");
    assert!(!dir.join("team-basket").exists(), "a refused upload reached the manifests folder");

    let (status, body) = server.upload("team-basket", &manifest, Some(&module), Some(TOKEN));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kernel"]["version"], "1.0.0");
    assert!(dir.join("team-basket/team-basket.toml").exists() && dir.join("team-basket/team-basket.wasm").exists());
    let (status, first) = server.job(&job);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["version"], "1.0.0");

    // A new version replaces it in place; the same job gives the same answer from it.
    let v2 = manifest.replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    let (status, body) = server.upload("team-basket", &v2, Some(&module), Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replaced"], true);
    let (status, second) = server.job(&job);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["version"], "1.1.0");
    assert_eq!(first["estimates"], second["estimates"]);
    let (_, listed) = server.get("/v1/kernels/team-basket");
    assert_eq!(listed["builds"][0]["version"], "1.1.0");

    let m = server.metrics();
    assert_eq!(metric(&m, "helix_kernel_info", &[("kernel", "team-basket"), ("version", "1.1.0")]), 1.0);
    assert!(metric(&m, "helix_kernel_registrations_total", &[("result", "loaded")]) >= 2.0);
}

#[test]
fn metrics_parse_and_move_as_jobs_run() {
    let dir = bundled_copy("metrics");
    let server = Server::start("metrics", &dir, "");
    let before = server.metrics();
    let job = json!({"kernel": "mc-option", "params": option_params(10000), "budget_ms": 5000});
    for _ in 0..5 {
        assert_eq!(server.job(&job).0, 200);
    }
    let wasm = json!({"kernel": "mc-var", "runtime": "wasm", "budget_ms": 20000, "params": {"positions": [1e6],
        "drifts": [0.05], "vols": [0.2], "correlation": [1], "horizon": 0.04, "paths": 5000}});
    assert_eq!(server.job(&wasm).0, 200);
    assert_eq!(server.job(&json!({"kernel": "nope", "budget_ms": 5})).0, 404);
    let after = server.metrics();

    let moved = |name: &str, labels: &[(&str, &str)]| metric(&after, name, labels) - metric(&before, name, labels);
    assert_eq!(moved("helix_jobs_submitted_total", &[]), 7.0);
    assert_eq!(moved("helix_jobs_total", &[("kernel", "mc-option"), ("status", "completed")]), 5.0);
    assert_eq!(moved("helix_jobs_unknown_kernel_total", &[]), 1.0);
    assert!(moved("helix_wasm_fuel_consumed_total", &[("kernel", "mc-var")]) > 0.0);
    assert!(metric(&after, "helix_wasm_fuel_per_unit", &[("kernel", "mc-var")]) > 0.0);
    assert_eq!(
        histogram_count(&after, "helix_job_duration_seconds") - histogram_count(&before, "helix_job_duration_seconds"),
        7.0
    );
    assert!(histogram_count(&after, "helix_job_service_seconds") >= 6.0);
    assert!(metric(&after, "helix_cpu_permits", &[]) >= 1.0);
    assert_eq!(metric(&after, "helix_ready", &[]), 1.0);
    assert!(metric(&after, "helix_decisions_total", &[]) >= 6.0);
    // Counters balance: every submitted job has exactly one counted outcome.
    let outcomes = metric(&after, "helix_jobs_total", &[]) + metric(&after, "helix_jobs_unknown_kernel_total", &[]);
    assert_eq!(outcomes, metric(&after, "helix_jobs_submitted_total", &[]));
    // Every family is typed, and counters follow the `_total` convention.
    let text = server.try_get("/metrics").unwrap().1;
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts[3] == "counter" {
            assert!(parts[2].ends_with("_total"), "{line}");
        }
    }
    // The periodic summary reached the log.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(server.log_text().contains("jobs/s"), "{}", server.log_text());
}

/// Occupies the one CPU permit with a job of about `ms` milliseconds, on its own thread.
fn busy_job(server: &Server, ms: u64) -> std::thread::JoinHandle<(u16, Value)> {
    // About 100 M paths/s native; the budget leaves the router no reason to degrade it.
    let job = json!({"kernel": "mc-option", "params": option_params(ms * 100_000), "budget_ms": 60000});
    let (agent, base) = (server.agent.clone(), server.base.clone());
    std::thread::spawn(move || {
        let mut r = agent.post(format!("{base}/v1/jobs")).send(job.to_string().as_bytes()).unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        (r.status().as_u16(), serde_json::from_str(&text).unwrap())
    })
}

#[test]
fn a_client_that_goes_away_frees_its_queued_job() {
    let dir = bundled_copy("disconnect");
    let server = Server::start("disconnect", &dir, "[router]\ncpu_permits = 1\n");
    let busy = busy_job(&server, 1000);
    let start = Instant::now();
    while metric(&server.metrics(), "helix_cpu_permits_in_use", &[]) < 1.0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the busy job never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A second job queues behind it; its client hangs up before the permit frees.
    let queued = json!({"kernel": "mc-option", "params": option_params(1_000_000), "budget_ms": 60000}).to_string();
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{queued}",
        queued.len()
    )
    .unwrap();
    while metric(&server.metrics(), "helix_cpu_queue_depth", &[]) < 1.0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the second job never queued");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(stream);
    let (status, body) = busy.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    loop {
        let m = server.metrics();
        if metric(&m, "helix_decisions_total", &[("reason", "cancelled")]) == 1.0 {
            assert_eq!(metric(&m, "helix_jobs_total", &[("status", "completed")]), 1.0, "the abandoned job ran");
            assert_eq!(metric(&m, "helix_http_jobs_in_flight", &[]), 0.0);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the abandoned job was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The capacity signals move with load: while one permit is held by a long job, short jobs
/// with tight budgets are shed, and the next window's shed share says so; the work per permit
/// counts the job running.
#[test]
fn capacity_signals_show_a_replica_shedding() {
    let dir = bundled_copy("capacity");
    let server = Server::start("capacity", &dir, "capacity_window_s = 1\n[router]\ncpu_permits = 1\n");
    assert_eq!(metric(&server.metrics(), "helix_capacity_shed_ratio", &[]), 0.0);
    let busy = busy_job(&server, 900);
    let start = Instant::now();
    while metric(&server.metrics(), "helix_cpu_permits_in_use", &[]) < 1.0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the busy job never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(metric(&server.metrics(), "helix_cpu_work_per_permit_seconds", &[]) > 0.1);
    // Jobs of a few milliseconds with 20 ms budgets cannot wait out the busy one.
    let short = json!({"kernel": "mc-option", "params": option_params(400_000), "budget_ms": 20});
    let shed = (0..20).filter(|_| server.job(&short).0 == 429).count();
    assert!(shed >= 15, "only {shed} of 20 shed");
    let start = Instant::now();
    while metric(&server.metrics(), "helix_capacity_shed_ratio", &[]) < 0.5 {
        assert!(start.elapsed() < Duration::from_secs(5), "the shed share never rose");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(busy.join().unwrap().0, 200);
}

#[test]
fn sigterm_drains_every_accepted_job_then_exits_zero() {
    let dir = bundled_copy("drain");
    let mut server = Server::start("drain", &dir, "drain_timeout_ms = 30000\n[router]\ncpu_permits = 1\n");
    let jobs: Vec<_> = (0..4).map(|_| busy_job(&server, 300)).collect();
    let start = Instant::now();
    while metric(&server.metrics(), "helix_http_jobs_in_flight", &[]) < 4.0 {
        assert!(start.elapsed() < Duration::from_secs(20), "jobs never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.sigterm();
    // While draining: not ready, and new jobs are turned away with 503.
    let start = Instant::now();
    loop {
        let (status, retry, body) = server.post_raw(
            "/v1/jobs",
            json!({"kernel": "mc-option", "params": option_params(1000), "budget_ms": 5000}).to_string().as_bytes(),
            &[],
        );
        if status == 503 {
            assert_eq!(body["error"]["kind"], "draining");
            assert!(retry.is_some());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still admitting after SIGTERM: {status}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.get("/readyz").0, 503);
    for j in jobs {
        let (status, body) = j.join().unwrap();
        assert_eq!(status, 200, "an accepted job was lost in the drain: {body}");
        assert_eq!(body["status"], "completed");
    }
    let exit = server.wait_exit();
    assert!(exit.success(), "exit {exit:?}:\n{}", server.log_text());
    assert!(server.log_text().contains("draining"));
}

/// Clients that stall cannot hold the server: one that sends half its headers is disconnected
/// after `header_timeout_ms`, one that sends half its body gets 408 after `body_timeout_ms`, and
/// with `max_connections` taken by stalled clients a new client is served as soon as they are
/// cut off.
#[test]
fn stalled_clients_are_cut_off_and_cannot_take_every_connection() {
    use std::io::Read;
    let dir = bundled_copy("stall");
    let server =
        Server::start("stall", &dir, "max_connections = 2\nheader_timeout_ms = 1000\nbody_timeout_ms = 1000\n");
    let addr = server.base.trim_start_matches("http://").to_string();
    let stall = |bytes: &[u8]| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(bytes).unwrap();
        s
    };
    // The readiness check's pooled connection idles out first, so the stalled clients below
    // hold both slots.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let mut half_headers = stall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n");
    let mut half_body = stall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"k",
    );
    // Both connection slots are held: a third client is served once the stalled ones are cut off.
    let (status, body) = server.get("/healthz");
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    assert!(started.elapsed() >= Duration::from_millis(900), "served before a slot was free");

    let mut reply = String::new();
    let n = half_headers.read_to_string(&mut reply).expect("the server closes the connection");
    assert_eq!(n, 0, "closed without an answer: {reply:?}");
    half_body.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_timeout"), "{reply}");
}
