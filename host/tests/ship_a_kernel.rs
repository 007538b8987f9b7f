//! `docs/ship-a-kernel.md`, followed as written. Its `sh step` blocks run in order in one shell,
//! starting in an empty folder outside the checkout, with `$HELIX` set to the checkout; its
//! `file=PATH` blocks are written where the shell then is, `$HELIX` replaced by the checkout's
//! path (Cargo does not expand it). A `json output` or `text output` block is what the step
//! before it prints: a JSON reply must hold every value shown (keys left out are not checked;
//! the sha256, fuel and timings, which depend on the toolchain and the machine, only exist), a
//! text must match line by line (sha256 digests masked; a shown line ending in `...` matches a
//! line that starts with the rest). The server the guide starts from the
//! checkout is this build's `helix serve` on a free loopback port with a copy of the bundled
//! manifests and the guide's admin token, so `localhost:8080` becomes its address and
//! `$HELIX/target/release/helix` this build's binary. The guest is built by the guide's own
//! `cargo build`, into its own target folder in the temporary one.
//!
//! The bundled Wasm kernels are built and staged by `cargo xtask test`, which also adds the
//! `wasm32-unknown-unknown` target the guide builds for.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bundled_copy, free_port, repo, temp_dir};

/// How long the guide's steps may take together: a cold build of the guest and its SDK is
/// about a minute on two cores, the rest seconds.
const STEPS_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Values in a reply that depend on the toolchain (the module's bytes) or on the machine.
const VARYING: [&str; 4] = ["module_sha256", "sha256", "fuel_used", "timings_us"];

/// A fenced block of the guide: its info string and text, and its first line's number.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            Some(_) if line == "```" => out.push(open.take().expect("open")),
            Some(b) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            None if line.starts_with("```") => {
                let info = line.trim_start_matches('`').trim().to_string();
                open = Some(Block { info, text: String::new(), line: i + 2 });
            }
            None => {}
        }
    }
    assert!(open.is_none(), "docs/ship-a-kernel.md has an unclosed fenced block");
    out
}

/// An output the guide shows for a step.
struct Shown {
    json: bool,
    text: String,
    line: usize,
}

/// A step the test runs, with the output the guide shows for it, if any.
struct Step {
    text: String,
    line: usize,
    shown: Option<Shown>,
}

/// `helix serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(work: &Path, manifests: &Path, token: &str) -> Server {
        let port = free_port();
        let log = work.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifests"])
            .arg(manifests)
            .env("HELIX_ADMIN_TOKEN", token)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("helix serve starts");
        let mut server = Server { child, base: format!("127.0.0.1:{port}"), log };
        let agent = support::agent();
        let start = Instant::now();
        loop {
            let ready = agent.get(format!("http://{}/readyz", server.base)).call().map(|r| r.status().as_u16());
            if ready.ok() == Some(200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("helix serve exited with {status} before it was ready:\n{}", server.log_text());
            }
            assert!(start.elapsed() < Duration::from_secs(120), "helix serve not ready:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// The guide's shell, in a process group of its own (cargo and its compilers in it), killed
/// as a group when dropped.
struct Shell {
    child: Child,
}

impl Shell {
    fn kill_group(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_group();
        }
    }
}

const MARK: &str = "@@helix-guide-step";

/// The shell script of the guide's steps and files, and the steps in order.
fn script(doc: &str, checkout: &str, server: &str, binary: &str) -> (String, Vec<Step>) {
    let mut script = String::from("set -euo pipefail\n");
    let mut steps: Vec<Step> = Vec::new();
    let mut after_step = false;
    for b in blocks(doc) {
        let info: Vec<&str> = b.info.split_whitespace().collect();
        if let Some(path) = info.iter().find_map(|w| w.strip_prefix("file=")) {
            let text = b.text.replace("$HELIX", checkout);
            assert!(!text.contains("HELIX_GUIDE_EOF"), "line {}", b.line);
            script.push_str(&format!(
                "mkdir -p \"$(dirname '{path}')\"\ncat > '{path}' <<'HELIX_GUIDE_EOF'\n{text}HELIX_GUIDE_EOF\n"
            ));
            after_step = false;
        } else if info == ["sh", "step"] {
            let text = b.text.replace("$HELIX/target/release/helix", binary).replace("localhost:8080", server);
            script.push_str(&format!("printf '\\n{MARK} {}@@\\n'\n{text}", steps.len()));
            steps.push(Step { text: b.text.clone(), line: b.line, shown: None });
            after_step = true;
        } else if info.len() == 2 && info[1] == "output" {
            assert!(after_step, "the output at line {} does not follow a `sh step` block", b.line);
            let json = match info[0] {
                "json" => true,
                "text" => false,
                other => panic!("line {}: outputs are `json output` or `text output`, not {other:?}", b.line),
            };
            steps.last_mut().expect("a step").shown = Some(Shown { json, text: b.text.clone(), line: b.line });
            after_step = false;
        } else {
            after_step = false;
        }
    }
    (script, steps)
}

/// What each step printed, split at the markers the script prints before each.
fn printed(stdout: &str, steps: usize) -> Vec<String> {
    let mut out = vec![String::new(); steps];
    let mut current = None;
    for line in stdout.lines() {
        if let Some(n) = line.strip_prefix(MARK).and_then(|r| r.trim().strip_suffix("@@")) {
            current = Some(n.parse::<usize>().expect("a step number"));
            continue;
        }
        if let Some(n) = current {
            out[n].push_str(line);
            out[n].push('\n');
        }
    }
    out
}

/// Every value of `shown` is in `actual` (a key `shown` leaves out is not checked).
fn holds(shown: &Value, actual: &Value, at: &str, wrong: &mut Vec<String>) {
    match (shown, actual) {
        (Value::Object(s), Value::Object(a)) => {
            for (key, value) in s {
                let here = format!("{at}.{key}");
                match a.get(key) {
                    None => wrong.push(format!("{here}: missing")),
                    Some(_) if VARYING.contains(&key.as_str()) => {}
                    // The manifests folder is the server's: the part below it must match.
                    Some(Value::String(p)) if key == "path" => {
                        let shown = value.as_str().unwrap_or_default();
                        let below = shown.rsplit_once("manifests/").map_or(shown, |(_, below)| below);
                        if !p.ends_with(below) {
                            wrong.push(format!("{here}: {p:?} is not {value}"));
                        }
                    }
                    Some(got) => holds(value, got, &here, wrong),
                }
            }
        }
        (Value::Array(s), Value::Array(a)) if s.len() == a.len() => {
            for (i, (s, a)) in s.iter().zip(a).enumerate() {
                holds(s, a, &format!("{at}[{i}]"), wrong);
            }
        }
        // The same number however it is written (`1` and `1.0`).
        (Value::Number(s), Value::Number(a)) if s.as_f64() == a.as_f64() => {}
        _ if shown == actual => {}
        _ => wrong.push(format!("{at}: the guide shows {shown}, the server answered {actual}")),
    }
}

/// A text with every sha256 digest (64 hex digits) replaced by `<sha256>`.
fn masked(text: &str) -> String {
    let word = |w: &str| {
        let hex = w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit());
        if hex { "<sha256>".to_string() } else { w.to_string() }
    };
    let line = |l: &str| l.trim_end().split(' ').map(word).collect::<Vec<_>>().join(" ");
    text.lines().map(line).collect::<Vec<_>>().join("\n")
}

/// A LEB128 number at `*at` of `bytes` (signed: sign-extended from its last byte), moving past it.
fn leb(bytes: &[u8], at: &mut usize, signed: bool) -> i64 {
    let (mut value, mut shift) = (0i64, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= i64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            if signed && shift < 64 && byte & 0x40 != 0 {
                value |= -1 << shift;
            }
            return value;
        }
    }
}

/// The sections of a Wasm module or component: id and contents.
fn sections(binary: &[u8]) -> Vec<(u8, &[u8])> {
    let (mut out, mut at) = (Vec::new(), 8);
    while at < binary.len() {
        let id = binary[at];
        at += 1;
        let len = leb(binary, &mut at, false) as usize;
        out.push((id, &binary[at..at + len]));
        at += len;
    }
    out
}

/// What the guide's build flags set in the kernel's core module (the module itself, as the
/// guide's wasm32-unknown-unknown build gives it, or a component's core module that exports the
/// contract): the stack pointer's start (the stack is first in memory, so
/// this is its size), the memory's initial pages, and how many locals are SIMD vectors.
struct Layout {
    stack_bytes: i64,
    initial_pages: i64,
    v128_locals: usize,
}

fn layout(binary: &[u8]) -> Layout {
    const CORE_MODULE: u8 = 1;
    let export = b"helix:kernel/runner@0.1.0#run";
    let module = if binary[4..8] == [1, 0, 0, 0] {
        binary
    } else {
        sections(binary)
            .into_iter()
            .find(|(id, m)| *id == CORE_MODULE && m.windows(export.len()).any(|w| w == export))
            .expect("the component has a core module exporting the contract")
            .1
    };
    let mut layout = Layout { stack_bytes: -1, initial_pages: -1, v128_locals: 0 };
    for (id, s) in sections(module) {
        let mut at = 0;
        match id {
            // Memory: a vector of limits (a flags byte, then the minimum).
            5 => {
                leb(s, &mut at, false);
                at += 1;
                layout.initial_pages = leb(s, &mut at, false);
            }
            // Globals: the first is the stack pointer, `i32 mut` set by `i32.const N`.
            6 => {
                leb(s, &mut at, false);
                assert_eq!(&s[at..at + 3], [0x7f, 0x01, 0x41], "the first global is a mutable i32 set by i32.const");
                at += 3;
                layout.stack_bytes = leb(s, &mut at, true);
            }
            // Code: each function body starts with its locals, as (count, type) pairs; 0x7b is v128.
            10 => {
                for _ in 0..leb(s, &mut at, false) {
                    let size = leb(s, &mut at, false) as usize;
                    let (mut local, end) = (at, at + size);
                    for _ in 0..leb(s, &mut local, false) {
                        leb(s, &mut local, false);
                        layout.v128_locals += usize::from(s[local] == 0x7b);
                        local += 1;
                    }
                    at = end;
                }
            }
            _ => {}
        }
    }
    layout
}

/// Runs the guide's script in `work` as a reader's shell would (no variables of the cargo
/// running this test), bounded by `STEPS_LIMIT`: its exit status, stdout and stderr.
fn run_steps(work: &Path, script: &str, checkout: &Path) -> (std::process::ExitStatus, String, String) {
    use std::os::unix::process::CommandExt;
    let script_path = work.join("guide.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut command = Command::new("bash");
    command.arg(&script_path).current_dir(work).env("HELIX", checkout);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let from_cargo = key.starts_with("CARGO_") && key != "CARGO_HOME";
        if from_cargo || ["CARGO", "RUSTFLAGS", "RUSTC", "RUSTC_WRAPPER", "RUSTDOCFLAGS"].contains(&&*key) {
            command.env_remove(&*key);
        }
    }
    let (stdout_path, stderr_path) = (work.join("steps.out"), work.join("steps.err"));
    let child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("bash runs");
    let mut shell = Shell { child };
    let start = Instant::now();
    let status = loop {
        if let Some(status) = shell.child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > STEPS_LIMIT {
            shell.kill_group();
            panic!("the guide's steps took over {} s", STEPS_LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    (status, read(&stdout_path), read(&stderr_path))
}

/// Checks what `step` printed against the output the guide shows for it; a JSON reply, parsed.
fn check_output(step: &Step, shown: &Shown, printed: &str) -> Option<Value> {
    if shown.json {
        let actual: Value = serde_json::from_str(printed.trim())
            .unwrap_or_else(|e| panic!("the step at line {} printed no JSON ({e}):\n{printed}", step.line));
        let shown_json: Value = serde_json::from_str(&shown.text)
            .unwrap_or_else(|e| panic!("the output at line {} is not JSON: {e}", shown.line));
        let mut wrong = Vec::new();
        holds(&shown_json, &actual, "", &mut wrong);
        assert!(
            wrong.is_empty(),
            "the output at line {} is not what the step printed:\n{}\n{actual}",
            shown.line,
            wrong.join("\n")
        );
        return Some(actual);
    }
    let (printed, shown_text) = (masked(printed.trim()), masked(shown.text.trim()));
    let (got, want): (Vec<&str>, Vec<&str>) = (printed.lines().collect(), shown_text.lines().collect());
    let matches = got.len() == want.len()
        && got.iter().zip(&want).all(|(g, w)| match w.strip_suffix("...") {
            Some(start) => g.starts_with(start),
            None => g == w,
        });
    assert!(matches, "the output at line {} is not what the step printed:\n{printed}", shown.line);
    None
}

/// The job `step` sent completed near the digital call's closed form, which the guide gives.
fn check_answer(doc: &str, step: &Step, answer: &Value) {
    assert_eq!(answer["status"], "completed", "{answer}");
    let price = &answer["estimates"]["price"];
    let (value, std_error) = (price["value"].as_f64().unwrap(), price["std_error"].as_f64().unwrap());
    let body = step.text.split_once("-d '").and_then(|(_, rest)| rest.split_once('\'')).expect("curl -d '{...}'").0;
    let job: Value = serde_json::from_str(body).expect("the job is JSON");
    let param = |name: &str| job["params"][name].as_f64().unwrap_or_else(|| panic!("the job gives no {name}"));
    let (spot, strike, vol, maturity, rate) =
        (param("spot"), param("strike"), param("vol"), param("maturity"), param("rate"));
    let d2 = ((spot / strike).ln() + (rate - 0.5 * vol * vol) * maturity) / (vol * maturity.sqrt());
    let closed_form = (-rate * maturity).exp() * helix_math::special::normal_cdf(d2);
    assert!((value - closed_form).abs() <= 4.0 * std_error, "{value} ± {std_error} against {closed_form}");
    let shown_form = format!("{closed_form:.5}");
    assert!(doc.contains(&shown_form), "the guide does not give the closed form {shown_form}");
}

/// The crate's own `.cargo/config.toml` took effect: `module` has the guide's stack size,
/// starts with one page of memory, and uses Wasm SIMD.
fn check_build_flags(doc: &str, module: &[u8]) {
    let config = blocks(doc)
        .into_iter()
        .find(|b| b.info.split_whitespace().any(|w| w == "file=.cargo/config.toml"))
        .expect("the guide writes .cargo/config.toml");
    assert!(config.text.contains("target-feature=+simd128"), "{}", config.text);
    let stack: i64 = config
        .text
        .split_once("-zstack-size=")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the config sets -zstack-size=N");
    let built = layout(module);
    assert_eq!(built.stack_bytes, stack, "the module's stack");
    assert_eq!(built.initial_pages, 1, "a 64 KiB page holds the stack, the statics and a small heap");
    assert!(built.v128_locals > 0, "the module uses no SIMD: simd128 was not on");
}

#[test]
fn the_ship_a_kernel_guide_works_from_a_folder_outside_the_checkout() {
    let doc = std::fs::read_to_string(repo().join("docs/ship-a-kernel.md")).expect("docs/ship-a-kernel.md");
    let checkout = repo().canonicalize().unwrap();
    let work = temp_dir("ship-a-kernel");
    assert!(!work.starts_with(&checkout), "{} is inside the checkout", work.display());

    // The guide starts the server with its own admin token; this one gets the same.
    let token = doc
        .split("HELIX_ADMIN_TOKEN=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the guide starts helix serve with HELIX_ADMIN_TOKEN=...");
    let manifests = bundled_copy("ship-a-kernel-manifests");
    let server = Server::start(&work, &manifests, token);

    let (script, steps) = script(&doc, checkout.to_str().unwrap(), &server.base, env!("CARGO_BIN_EXE_helix"));
    assert!(steps.len() >= 6, "{} steps", steps.len());
    let (status, stdout, stderr) = run_steps(&work, &script, &checkout);
    if !status.success() {
        let last = stdout.lines().filter_map(|l| l.strip_prefix(MARK)).next_back();
        let step = last.and_then(|n| n.trim().trim_end_matches("@@").parse::<usize>().ok()).and_then(|n| steps.get(n));
        let hint = "(`cargo xtask test` adds the wasm32-unknown-unknown target with rustup)";
        panic!(
            "the guide's steps failed with {status} in the step at line {}:\n{}\nstderr:\n{stderr}\nserver log:\n{}\n{hint}",
            step.map_or(0, |s| s.line),
            step.map_or("", |s| s.text.as_str()),
            server.log_text()
        );
    }

    let mut job = None;
    for (step, printed) in steps.iter().zip(printed(&stdout, steps.len())) {
        let Some(shown) = &step.shown else { continue };
        let answer = check_output(step, shown, &printed);
        if step.text.contains("/v1/jobs") && job.is_none() {
            job = answer.map(|a| (step, a));
        }
    }
    let (step, answer) = job.expect("a step submits a job and the guide shows its answer");
    check_answer(&doc, step, &answer);

    // The module the server got is the one the guide built.
    let kernel = answer["kernel"].as_str().unwrap();
    let folder = manifests.join(kernel);
    let served = helix_host::manifest::Manifest::load(&folder.join(format!("{kernel}.toml"))).unwrap();
    let module = std::fs::read(folder.join(&served.module.expect("a Wasm manifest").path)).unwrap();
    check_build_flags(&doc, &module);
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&manifests);
}
