//! The status page in a real headless browser: `helix serve` (this build) on a free loopback
//! port, Chromium driven through chromedriver's WebDriver HTTP protocol. The page renders
//! without a script error, lists every registered kernel build, and its numbers follow the
//! jobs a client sends. A screenshot is written to `HELIX_STATUS_SCREENSHOT` when it is set
//! (`docs/status-page.png` is made so).
//!
//! `cargo xtask test` installs Debian's chromium and chromium-driver when they are missing and
//! passes them as `HELIX_CHROMIUM` and `HELIX_CHROMEDRIVER`; it also stages the Wasm kernels.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{agent, bundled_copy, free_port, post, temp_dir};

/// The longest any one wait in this test may take (a start, a page update).
const PATIENCE: Duration = Duration::from_secs(60);

/// A tool from `cargo xtask test`, named by `var`, as a full path (a bare name is looked up on
/// the PATH: chromedriver takes the browser's path as it is).
fn tool(var: &str) -> PathBuf {
    let Some(path) = std::env::var_os(var).map(PathBuf::from) else {
        panic!(
            "{var} is not set: run `cargo xtask test`, which installs Debian's chromium and chromium-driver and sets it"
        );
    };
    let path = if path.components().count() > 1 {
        path
    } else {
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&dirs).map(|d| d.join(&path)).find(|p| p.is_file()).unwrap_or(path)
    };
    let runs = Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(runs, "{var}={} does not run: run `cargo xtask test`, which installs it", path.display());
    path
}

/// A child process in a process group of its own, killed with its group (a browser and its
/// helpers) and reaped when dropped, so a failing test leaves nothing running.
struct Killed {
    child: Child,
    log: PathBuf,
}

impl Killed {
    fn spawn(command: &mut Command, log: PathBuf) -> Killed {
        let child = command
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        Killed { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_none()) {
            // SAFETY: kill(2) with the negated id of the group this test created for the child.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it gives an answer, for at most `PATIENCE`; `what` and the
/// last state `check` reported explain a timeout.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(answer) => return answer,
            Err(state) if start.elapsed() > PATIENCE => panic!("{what} within {PATIENCE:?}; last: {state}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `helix serve` on a free loopback port with a copy of the bundled manifests.
struct Helix {
    process: Killed,
    base: String,
    agent: ureq::Agent,
}

impl Helix {
    fn start() -> Helix {
        let manifests = bundled_copy("status-page");
        let port = free_port();
        let log = temp_dir("status-page-helix").join("serve.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_helix"));
        command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifests"]).arg(&manifests);
        let helix = Helix {
            process: Killed::spawn(&mut command, log),
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(),
        };
        wait_for("helix serve ready", || match helix.agent.get(format!("{}/readyz", helix.base)).call() {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{:?}\n{}", other.map(|r| r.status()), helix.process.log_text())),
        });
        helix
    }

    fn get_json(&self, path: &str) -> Value {
        let mut r = self.agent.get(format!("{}{path}", self.base)).call().unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }
}

/// A headless Chromium session through chromedriver on a free loopback port; the session is
/// closed, and chromedriver and the browser killed, when dropped.
struct Browser {
    base: String,
    agent: ureq::Agent,
    session: String,
    driver: Killed,
}

impl Browser {
    fn start(width: u32, height: u32) -> Browser {
        let chromium = tool("HELIX_CHROMIUM");
        let chromedriver = tool("HELIX_CHROMEDRIVER");
        let dir = temp_dir("status-page-browser");
        let port = free_port();
        // chromedriver takes only local connections unless told otherwise.
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let driver = Killed::spawn(&mut command, dir.join("chromedriver.log"));
        let base = format!("http://127.0.0.1:{port}");
        let agent = agent();
        wait_for("chromedriver ready", || match agent.get(format!("{base}/status")).call() {
            Ok(mut r) if r.status() == 200 => {
                let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                if v["value"]["ready"] == true { Ok(()) } else { Err(v.to_string()) }
            }
            other => Err(format!("{:?}\n{}", other.map(|r| r.status()), driver.log_text())),
        });
        let args = [
            "--headless=new".to_string(),
            // Root in a container has no user namespace for the sandbox; the page is our own.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-proxy-server".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", dir.join("profile").display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 10_000},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut browser = Browser { base, agent, session: String::new(), driver };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        // The window's size includes the browser's own frame: grow it so the page gets the size.
        let frame = browser.script("return [outerWidth - innerWidth, outerHeight - innerHeight]");
        let (dx, dy) = (frame[0].as_u64().unwrap_or(0), frame[1].as_u64().unwrap_or(0));
        let rect = json!({"width": u64::from(width) + dx, "height": u64::from(height) + dy});
        browser.in_session("POST", "/window/rect", Some(rect));
        browser
    }

    /// A WebDriver command; its `value`. A WebDriver error fails the test with its message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let answer = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or(json!({})).to_string().as_bytes()),
        };
        let mut r = answer.unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.driver.log_text()));
        let status = r.status().as_u16();
        let text = r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {status} {text}"));
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn in_session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.in_session("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs `script` in the page; what it returns.
    fn script(&self, script: &str) -> Value {
        self.in_session("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// The rendered text of the element `css` selects, as a reader sees it.
    fn text(&self, css: &str) -> String {
        let found = self.in_session("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element id");
        self.in_session("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or_default().to_string()
    }

    /// The page's state (`loading`, `ok` after a poll rendered, `error`), and its error text.
    fn state(&self) -> (String, String) {
        let v = self.script("return [document.body.dataset.state, document.getElementById('error').textContent]");
        (v[0].as_str().unwrap_or_default().to_string(), v[1].as_str().unwrap_or_default().to_string())
    }

    /// The window's screenshot, PNG.
    fn screenshot(&self) -> Vec<u8> {
        let encoded = self.in_session("GET", "/screenshot", None);
        base64_decode(encoded.as_str().expect("base64 text"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes the browser; the driver's group is killed after, whatever this answers.
            let _ = self.agent.delete(format!("{}/session/{}", self.base, self.session)).call();
        }
    }
}

/// Standard base64 (as WebDriver sends screenshots), padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("{:?} is not base64", c as char),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Thirty jobs of several kinds, sent at once so the lane fills: cheap ones that run inline,
/// sieves, 2M-path options with tight budgets that batch, degrade or are shed, Wasm options,
/// a portfolio VaR that splits, and four refused (bad input, no such kernel).
fn traffic() -> Vec<Value> {
    let option = |seed: u64| {
        json!({"kernel": "mc-option", "criticality": "sheddable", "budget_ms": 100, "seed": seed,
               "params": {"spot": 100, "strike": 100, "vol": 0.2, "maturity": 1, "paths": 2_000_000}})
    };
    let mut jobs = Vec::new();
    jobs.extend((0..6).map(|i| json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": 64 + i}})));
    jobs.extend(
        (0..4).map(|_| json!({"kernel": "primecount", "budget_ms": 1000, "params": {"compute_cost": 200_000}})),
    );
    jobs.extend((0..10).map(option));
    jobs.extend((0..3).map(|seed| {
        json!({"kernel": "mc-option", "runtime": "wasm", "budget_ms": 1000, "seed": seed,
               "params": {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1, "paths": 20_000}})
    }));
    jobs.extend((0..3).map(|seed| {
        json!({"kernel": "mc-var", "budget_ms": 500, "seed": seed,
               "params": {"positions": [1e6, -4e5, 2.5e6], "vols": [0.2, 0.35, 0.25],
                          "correlation": [[1, 0.2, 0.1], [0.2, 1, 0.3], [0.1, 0.3, 1]], "confidence": 0.99, "horizon": 0.04}})
    }));
    jobs.extend((0..2).map(|_| json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": -1}})));
    jobs.extend((0..2).map(|_| json!({"kernel": "no-such-kernel", "budget_ms": 1000, "params": {}})));
    jobs
}

#[test]
fn the_status_page_renders_every_kernel_and_follows_the_traffic() {
    let helix = Helix::start();
    let browser = Browser::start(1200, 800);
    browser.open(&format!("{}/", helix.base));
    assert_eq!(browser.in_session("GET", "/title", None), "HelixRouter status");
    wait_for("the page's first poll rendered", || match browser.state() {
        (state, _) if state == "ok" => Ok(()),
        (state, error) if state == "error" => panic!("the page shows an error: {error}"),
        other => Err(format!("{other:?}")),
    });

    // One row per build the server registered, keyed as the API names them.
    let registered: BTreeSet<String> = helix.get_json("/v1/kernels")["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            format!(
                "{}@{}/{}",
                k["name"].as_str().unwrap(),
                k["version"].as_str().unwrap(),
                k["runtime"].as_str().unwrap()
            )
        })
        .collect();
    assert!(registered.iter().any(|k| k.ends_with("/wasm")), "the Wasm kernels are staged: {registered:?}");
    let rows =
        browser.script("return [...document.querySelectorAll('#kernels tbody tr')].map(tr => tr.dataset.kernel)");
    let shown: Vec<String> = rows.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(shown.len(), registered.len(), "one row per build: {shown:?}");
    assert_eq!(shown.iter().cloned().collect::<BTreeSet<_>>(), registered);

    let before: u64 = browser.text("#total-jobs").parse().expect("the total is a number");
    let jobs = traffic();
    let sent = jobs.len() as u64;
    let senders: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (agent, base) = (helix.agent.clone(), helix.base.clone());
            std::thread::spawn(move || post(&agent, &base, &job).0)
        })
        .collect();
    let statuses: Vec<u16> = senders.into_iter().map(|s| s.join().expect("a sender")).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 2, "{statuses:?}");

    // Every job has its one outcome before its answer: the server's total is exact now.
    let status = helix.get_json("/v1/status");
    let total = status["jobs"]["total"].as_u64().unwrap();
    assert_eq!(total, before + sent, "{status}");
    let by_status: u64 =
        status["jobs"]["by_status"].as_array().unwrap().iter().map(|r| r["total"].as_u64().unwrap()).sum();
    assert_eq!(by_status, total, "{status}");

    let shown_total = wait_for("the page to show the new total", || {
        let text = browser.text("#total-jobs");
        if text == total.to_string() { Ok(text) } else { Err(format!("#total-jobs {text:?}, want {total}")) }
    });
    assert_eq!(shown_total, total.to_string());
    // The rows moved too: the jobs of the native option kernel are on its row.
    let option_jobs = browser.text(r#"#kernels tr[data-kernel="mc-option@1.0.0/native"] td:nth-child(5)"#);
    let option_total = status["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "mc-option" && k["runtime"] == "native")
        .map(|k| k["jobs"].as_u64().unwrap())
        .expect("a native mc-option row");
    assert_eq!(option_total, 10, "{status}");
    assert_eq!(option_jobs, "10");
    let (state, error) = browser.state();
    assert_eq!((state.as_str(), error.as_str()), ("ok", ""), "the page stayed healthy");

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot ({} bytes)", png.len());
    if let Some(path) = std::env::var_os("HELIX_STATUS_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("cannot write {}: {e}", PathBuf::from(&path).display()));
    }
}
