//! The README's examples, run: every `helix run` and `curl` command in its `console` blocks whose
//! job is seeded runs here (against this build's `helix` and a live `helix serve` holding a copy
//! of the bundled manifests), and every figure the README shows for it — estimates and their
//! error bars, fuel, versions, target reports, error messages — must be what the command
//! gives now. Figures that depend on timing (decisions, timings, what a burst sheds) are not
//! compared, and the README says so beside them.
//!
//! A shown job's budget is raised before it runs: the debug build this test runs is slower than
//! the release build the README was captured with, and a seeded job run in full gives the same
//! bits however it is scheduled. Jobs the README shows degraded or dropped keep their budget,
//! and only their error message is compared.
//!
//! Commands of one block run in order in one temporary folder, as a reader would type them.

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bundled_copy, repo, temp_dir};

const TOKEN: &str = "s3cret";

/// One `$ command` of a console block and the output the README shows under it.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    shown: Vec<String>,
}

/// The console blocks, each as its examples in order.
fn console_blocks(readme: &str) -> Vec<Vec<Example>> {
    let mut blocks = Vec::new();
    let mut block: Option<Vec<Example>> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut block {
            None if line.trim_end() == "```console" => block = Some(Vec::new()),
            None => {}
            Some(_) if line.starts_with("```") => blocks.push(block.take().unwrap()),
            Some(examples) => {
                let continues = examples.last().is_some_and(|e: &Example| {
                    e.shown.is_empty() && (e.command.ends_with('\\') || e.command.matches('\'').count() % 2 == 1)
                });
                if let Some(command) = line.strip_prefix("$ ") {
                    examples.push(Example { line: i + 1, command: command.to_string(), shown: Vec::new() });
                } else if continues {
                    let e = examples.last_mut().unwrap();
                    e.command.push('\n');
                    e.command.push_str(line);
                } else if let Some(e) = examples.last_mut() {
                    e.shown.push(line.to_string());
                }
            }
        }
    }
    blocks
}

/// A `helix serve` on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    manifests: PathBuf,
}

impl Server {
    fn start() -> Server {
        let manifests = bundled_copy("readme-manifests");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifests"])
            .arg(&manifests)
            .env("HELIX_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("helix starts");
        let server = Server { child, port, manifests };
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let start = Instant::now();
        while agent.get(format!("http://127.0.0.1:{port}/readyz")).call().map(|r| r.status().as_u16()).ok() != Some(200)
        {
            assert!(start.elapsed() < Duration::from_secs(60), "helix serve was not ready in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the README shows the job ending as: the first word after the kernel's name in the text
/// output, or the JSON's `"status"`.
fn shown_status(shown: &[String]) -> Option<String> {
    let first = shown.first()?;
    if let Some(rest) = first.split("\"status\": \"").nth(1) {
        return rest.split('"').next().map(str::to_string);
    }
    first.split_whitespace().nth(1).map(str::to_string)
}

/// The command as this test runs it: this build's binary, the test server, and (for a job shown
/// answered in full) a budget no debug build misses.
fn runnable(e: &Example, port: u16) -> String {
    let full = !matches!(shown_status(&e.shown).as_deref(), Some("degraded" | "dropped" | "rejected"));
    let mut command = e.command.replace("cargo xtask helix ", "\"$HELIX_BIN\" ");
    command = command.replace("localhost:8080", &format!("127.0.0.1:{port}"));
    if full {
        command = replace_number_after(&command, "--budget-ms ", "600000");
        command = replace_number_after(&command, "\"budget_ms\": ", "600000");
        if command.contains("\"$HELIX_BIN\" run") && !command.contains("--budget-ms") {
            command.push_str(" --budget-ms 600000");
        }
    }
    command
}

fn replace_number_after(text: &str, marker: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        out.push_str(with);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    }
    out.push_str(rest);
    out
}

/// Whether the command runs a seeded job (or sets up for one), so what it shows is reproducible.
fn reproducible(e: &Example) -> bool {
    let c = &e.command;
    if c.contains(" ... ") || c.starts_with("for ") || c.starts_with("mkdir ") || c.contains("helix serve") {
        return false; // elided, or a burst whose outcomes depend on timing
    }
    if c.starts_with("cargo xtask helix run") || c.starts_with("curl -s localhost:8080/v1/jobs") {
        return c.contains("seed") || matches!(shown_status(&e.shown).as_deref(), Some("rejected" | "dropped"));
    }
    // Setting up a registration: files under the current (temporary) folder, uploads, reloads.
    c.starts_with("cd ")
        || c.starts_with("cp ")
        || c.starts_with("sed ")
        || c.contains("/v1/kernels/")
        || c.contains("/v1/admin/")
}

/// A shown figure that must be in the command's output.
#[derive(Debug, PartialEq)]
enum Figure {
    /// A line of `helix run`'s text output, as shown (an estimate, fuel, target or error line).
    Line(String),
    /// `"NAME": {"value": V, "std_error": S}`: the estimate to the digits shown.
    Estimate { name: String, value: String, std_error: String },
    /// `"KEY": VALUE` for a key whose value does not depend on timing.
    Field { key: String, value: String },
}

/// Keys whose shown value is reproducible for a seeded job. Not `module_sha256`: a module's
/// bytes differ between builds in different folders, though its code and fuel do not.
const FIELDS: [&str; 6] = ["status", "fuel_used", "units", "rounds", "reached_std_error", "version"];

fn figures(shown: &[String]) -> Vec<Figure> {
    let mut out = Vec::new();
    for line in shown {
        let trimmed = line.trim_start();
        let text_line = line.starts_with("  ") && !trimmed.starts_with('"') && !trimmed.starts_with("decision:");
        if text_line && !trimmed.starts_with("timings:") {
            out.push(Figure::Line(trimmed.split_whitespace().collect::<Vec<_>>().join(" ")));
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("{\"value\": ") {
            let name = rest[..at].trim_end().trim_end_matches(':').trim_end_matches('"');
            let name = name.rsplit('"').next().unwrap_or_default().to_string();
            let body = &rest[at + 10..];
            let value = body.split(',').next().unwrap_or_default().trim().to_string();
            let std_error = body.split("\"std_error\": ").nth(1).unwrap_or_default();
            let std_error = std_error.split(['}', ',']).next().unwrap_or_default().trim().to_string();
            out.push(Figure::Estimate { name, value, std_error });
            rest = &body[1..];
        }
        for key in FIELDS {
            let marker = format!("\"{key}\": ");
            for piece in line.split(&marker).skip(1) {
                let value = piece.split([',', '}']).next().unwrap_or_default().trim().to_string();
                out.push(Figure::Field { key: key.to_string(), value });
            }
        }
    }
    out
}

/// Whether `actual` equals the number `shown` to the digits shown.
fn agrees(shown: &str, actual: f64) -> bool {
    let Ok(x) = shown.parse::<f64>() else { return false };
    let decimals = shown.split(['e', 'E']).next().unwrap().split('.').nth(1).map_or(0, str::len) as i32;
    let exponent = shown.split(['e', 'E']).nth(1).and_then(|e| e.parse::<i32>().ok()).unwrap_or(0);
    (x - actual).abs() <= 10f64.powi(exponent - decimals) * 0.5 + 1e-12 * x.abs()
}

/// Every value of `key` anywhere in `json`.
fn values_of<'a>(json: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match json {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(v);
                }
                values_of(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| values_of(v, key, out)),
        _ => {}
    }
}

/// A text line as compared: words single-spaced, and the one timing-dependent figure of a
/// refusal (what the budget had left when the policy saw the job) masked.
fn comparable(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let leaves = words.get(i + 1..i + 4).is_some_and(|next| next == ["us", "its", "budget"]);
        out.push(if leaves { "N" } else { w });
    }
    out.join(" ")
}

fn check(figure: &Figure, output: &str) -> Result<(), String> {
    match figure {
        Figure::Line(line) => {
            let found = output.lines().any(|l| comparable(l) == comparable(line));
            if found { Ok(()) } else { Err(format!("the line `{line}`")) }
        }
        Figure::Estimate { name, value, std_error } => {
            let json: Value = serde_json::from_str(output).map_err(|e| format!("a JSON reply ({e})"))?;
            let estimate = &json["estimates"][name];
            let v = estimate["value"].as_f64().unwrap_or(f64::NAN);
            let s = estimate["std_error"].as_f64().unwrap_or(f64::NAN);
            let se_ok = if std_error == "null" { estimate["std_error"].is_null() } else { agrees(std_error, s) };
            if agrees(value, v) && se_ok {
                Ok(())
            } else {
                Err(format!("{name} = {value} ± {std_error} (it is now {v} ± {s})"))
            }
        }
        Figure::Field { key, value } => {
            let json: Value = serde_json::from_str(output).map_err(|e| format!("a JSON reply ({e})"))?;
            let mut found = Vec::new();
            values_of(&json, key, &mut found);
            let shown_text = value.trim_matches('"');
            let matches = |v: &&Value| match v {
                Value::String(s) => match shown_text.strip_suffix("...") {
                    Some(prefix) => s.starts_with(prefix),
                    None => s == shown_text,
                },
                Value::Number(n) => agrees(value, n.as_f64().unwrap_or(f64::NAN)),
                other => other.to_string() == *value,
            };
            if found.iter().any(matches) { Ok(()) } else { Err(format!("\"{key}\": {value} (it is now {found:?})")) }
        }
    }
}

fn run_shell(command: &str, cwd: &Path, server: &Server) -> String {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .env("HELIX_BIN", env!("CARGO_BIN_EXE_helix"))
        .env("HELIX_MANIFESTS", &server.manifests)
        .env("HELIX_ADMIN_TOKEN", TOKEN)
        .env("HELIX_REPO", repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("`{command}` did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_readme_examples_give_the_figures_it_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let server = Server::start();
    let (mut checked, mut failures) = (0, Vec::new());
    for (b, block) in console_blocks(&readme).iter().enumerate() {
        let cwd = temp_dir(&format!("readme-block-{b}"));
        for e in block.iter().filter(|e| reproducible(e)) {
            // The bundled manifests, as the README's commands name them from a checkout; the
            // demo folder, this block's own; the served copy, the test server's.
            let command = runnable(e, server.port)
                .replace(" manifests/wasm/", " \"$HELIX_REPO\"/manifests/wasm/")
                .replace("/tmp/helix-demo/manifests", server.manifests.to_str().unwrap())
                .replace("/tmp/helix-demo", cwd.to_str().unwrap());
            let output = run_shell(&command, &cwd, &server);
            for figure in figures(&e.shown) {
                checked += 1;
                if let Err(missing) = check(&figure, &output) {
                    failures.push(format!(
                        "README.md:{}: `{}` no longer shows {missing}\n  output: {output}",
                        e.line, e.command
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} figures are stale:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 40, "only {checked} figures were checked: the README's examples were not found");
    println!("{checked} figures checked");
}

#[test]
fn figures_are_read_from_both_kinds_of_output() {
    let shown = [
        "mc-option completed (native)".to_string(),
        "  decision: split because idle_parallel; units 2/2; ...".into(),
        "  price                      5.88901163 ± 3.125e-2".into(),
        "  timings: queue 67 us".into(),
        r#"{"status": "completed", "estimates": {"price": {"value": 5.5, "std_error": 0.0312}}, "fuel_used": 17, "version": "1.0..."}"#.into(),
    ];
    let f = figures(&shown);
    assert_eq!(f[0], Figure::Line("price 5.88901163 ± 3.125e-2".into()));
    assert!(f.contains(&Figure::Estimate { name: "price".into(), value: "5.5".into(), std_error: "0.0312".into() }));
    assert!(f.contains(&Figure::Field { key: "fuel_used".into(), value: "17".into() }));
    assert!(f.contains(&Figure::Field { key: "version".into(), value: "\"1.0...\"".into() }));
    assert!(agrees("0.0312", 0.031234) && !agrees("0.0312", 0.0314) && agrees("3.125e-2", 0.031249));
    let reply =
        r#"{"estimates": {"price": {"value": 5.5000001, "std_error": 0.03121}}, "version": "1.0.2", "fuel_used": 17}"#;
    assert!(
        f[1..]
            .iter()
            .filter(|f| !matches!(f, Figure::Field { key, .. } if key == "status"))
            .all(|f| check(f, reply).is_ok())
    );
    assert!(check(&Figure::Field { key: "fuel_used".into(), value: "18".into() }, reply).is_err());
    let refusal = "error: needs about 30904 us, more than the 774 us its budget leaves";
    assert_eq!(comparable(refusal), comparable("error:  needs about 30904 us, more than the 781 us its budget leaves"));
    assert_ne!(comparable(refusal), comparable("error: needs about 30905 us, more than the 774 us its budget leaves"));
}
