//! The OpenAPI document against the real server: `docs/openapi.json` is what `GET /openapi.json`
//! serves and what `helix openapi` prints; `openapi-spec-validator` accepts it; and
//! `schemathesis`, an independent property-based tester, runs a bounded number of generated
//! requests against a live `helix serve` with every response checked against its schema, its
//! status codes, content types and headers, no 5xx but the documented kernel failures
//! (`openapi/hooks.py`), and schema-invalid requests refused.
//!
//! The Python tools come from the venv `cargo xtask test` makes (`HELIX_PYTHON`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bundled_copy, repo, temp_dir};

const TOKEN: &str = "openapi-test-token";
/// schemathesis's cases per operation: enough to reach every documented refusal, bounded.
const CASES_PER_OPERATION: &str = "100";
/// Past this schemathesis is stuck, and is stopped.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// A `helix serve` on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(tag: &str) -> Server {
        let manifests = bundled_copy(tag);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = temp_dir(&format!("{tag}-log")).join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifests"])
            .arg(&manifests)
            .env("HELIX_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("helix starts");
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
        let start = Instant::now();
        while server.get("/readyz").map(|(status, _)| status) != Some(200) {
            assert!(start.elapsed() < Duration::from_secs(60), "not ready in time:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent.get(format!("{}{path}", self.base)).call().ok()?;
        Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn committed() -> (PathBuf, String) {
    let path = repo().join("docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

/// A tool installed beside the venv's Python.
fn python_tool(name: &str) -> PathBuf {
    let Some(python) = std::env::var_os("HELIX_PYTHON") else {
        panic!(
            "HELIX_PYTHON is not set: run `cargo xtask test`, which makes the venv (target/py) with \
             tools/python-test-requirements.txt and passes its python"
        );
    };
    let tool = PathBuf::from(python).with_file_name(name);
    assert!(tool.exists(), "{} is missing: run `cargo xtask test`, which installs it", tool.display());
    tool
}

/// Runs `command` to completion within `limit`, returning its exit success and its output.
fn run_bounded(mut command: Command, out_dir: &Path, limit: Duration) -> (bool, String) {
    let (stdout, stderr) = (out_dir.join("out.txt"), out_dir.join("err.txt"));
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output =
        std::fs::read_to_string(&stdout).unwrap_or_default() + &std::fs::read_to_string(&stderr).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("{command:?} did not finish within {limit:?}:\n{output}"));
    (status.success(), output)
}

#[test]
fn the_committed_document_is_what_the_server_serves_and_the_cli_prints() {
    let (path, committed) = committed();
    let server = Server::start("openapi-served");
    let (status, served) = server.get("/openapi.json").expect("GET /openapi.json answered");
    assert_eq!(status, 200);
    let printed = Command::new(env!("CARGO_BIN_EXE_helix")).arg("openapi").output().expect("helix openapi runs");
    assert!(printed.status.success());
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), served, "`helix openapi` and the server differ");
    assert!(
        served == committed,
        "{} is not what the server serves: regenerate it with \
         `cargo run -q -p helix-host --bin helix -- openapi > docs/openapi.json` and commit it",
        path.display()
    );
}

#[test]
fn openapi_spec_validator_accepts_the_document() {
    let (path, _) = committed();
    let out = temp_dir("openapi-validator");
    let mut command = Command::new(python_tool("openapi-spec-validator"));
    command.arg(&path);
    let (ok, output) = run_bounded(command, &out, Duration::from_secs(120));
    assert!(ok, "openapi-spec-validator refused {}:\n{output}", path.display());
    assert!(output.contains("OK"), "{output}");
}

#[test]
fn schemathesis_finds_no_failure_against_the_live_server() {
    let server = Server::start("openapi-schemathesis");
    let out = temp_dir("openapi-schemathesis-out");
    let junit = out.join("junit.xml");
    let mut command = Command::new(python_tool("schemathesis"));
    command
        .args(["run", &format!("{}/openapi.json", server.base)])
        // Every check but two: a schema-valid job may still name no registered kernel or break
        // its kernel's parameter rules (the schema cannot know the kernels), so 2xx is not
        // owed to every valid body; and 5xx are judged by the hook, which allows the
        // documented kernel failures.
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance,not_a_server_error"])
        .args(["--max-examples", CASES_PER_OPERATION, "--seed", "20261202", "--workers", "1"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--request-timeout", "30", "--no-color", "--generation-database", "none"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", repo().join("host/tests/openapi"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&out);
    let (ok, output) = run_bounded(command, &out, RUN_LIMIT);
    println!("{output}");
    assert!(ok, "schemathesis found failures:\n{output}\nserver log:\n{}", server.log_text());
    // It passed; make sure it tested something: every operation, and many cases.
    let report = std::fs::read_to_string(&junit).expect("schemathesis wrote its report");
    for operation in ["POST /v1/jobs", "GET /v1/kernels/{name}", "PUT /v1/kernels/{name}", "POST /v1/admin/reload"] {
        assert!(report.contains(operation), "{operation} was not tested:\n{report}");
    }
    let metrics = server.get("/metrics").expect("metrics answered").1;
    let total = |name: &str| -> f64 {
        metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    let (submitted, ran) = (total("helix_jobs_submitted_total"), total("helix_jobs_total{"));
    assert!(submitted >= 100.0 && ran >= 10.0, "schemathesis submitted only {submitted} jobs, {ran} reached a kernel");
    println!("schemathesis: {submitted} jobs submitted, {ran} reached a kernel");
}
