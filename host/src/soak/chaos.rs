//! The hostile share of a soak: Wasm kernels that misbehave (spin, hoard memory, trap, recurse
//! without end, answer too much) and job requests that are wrong (malformed JSON, unknown
//! fields or kernels, parameters breaking their rules, absurd budgets, oversized bodies), sent
//! open loop beside the honest traffic. Each kind has the answers it may get; any other answer
//! is a violation, and no answer at all is a lost job.

use crate::load::mix::unit;
use crate::load::schedule::{Arrivals, Schedule};
use crate::replica::Http;
use hyper::body::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A hostile Wasm kernel: its name in the soak, the test guest it is built from, and what its
/// manifest claims beyond a small cost.
pub struct Hostile {
    pub name: &'static str,
    pub guest: &'static str,
    pub claims: &'static str,
}

pub const HOSTILE: [Hostile; 6] = [
    // Claims no fuel rate: only the wall-clock deadline stops it, after its whole budget.
    Hostile { name: "hostile-loop", guest: "loop_forever_guest", claims: "" },
    Hostile { name: "hostile-loop-fueled", guest: "loop_forever_guest", claims: "fuel_per_unit = 1000.0\n" },
    Hostile { name: "hostile-memory-bomb", guest: "memory_bomb_guest", claims: "" },
    Hostile { name: "hostile-trap", guest: "panic_trap_guest", claims: "" },
    Hostile { name: "hostile-recursion", guest: "deep_recursion_guest", claims: "" },
    Hostile { name: "hostile-huge-output", guest: "huge_output_guest", claims: "" },
];

/// Writes each hostile kernel's module and manifest into `dir` from the built test guests in
/// `modules` (`cargo xtask kernels` builds them into target/wasm/wasm32-wasip2/release).
pub fn stage_hostile(modules: &Path, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for h in &HOSTILE {
        let src = modules.join(format!("{}.wasm", h.guest));
        let bytes = std::fs::read(&src).map_err(|e| {
            format!("cannot read the hostile guest {} ({e}); `cargo xtask kernels` builds it", src.display())
        })?;
        std::fs::write(dir.join(format!("{}.wasm", h.name)), &bytes).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(format!("{}.toml", h.name)), hostile_manifest(h.name, "1.0.0", h.claims, &bytes))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A hostile kernel's manifest: it claims to be cheap.
pub fn hostile_manifest(name: &str, version: &str, claims: &str, module: &[u8]) -> String {
    let sha = crate::wasm::sha256_hex(module);
    format!(
        "name = \"{name}\"\nversion = \"{version}\"\nruntime = \"wasm\"\n\n[cost]\nfixed_us = 200.0\nper_unit_ns = 1.0\n{claims}\n\
         [module]\npath = \"{name}.wasm\"\nsha256 = \"{sha}\"\n"
    )
}

/// One kind of hostile request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Fault {
    /// A job for one of the hostile kernels (index into `HOSTILE`).
    Kernel(usize),
    MalformedJson,
    UnknownField,
    UnknownKernel,
    ParamOutOfRange,
    ParamWrongType,
    AbsurdBudget,
    OversizedBody,
}

impl Fault {
    pub fn name(self) -> String {
        match self {
            Fault::Kernel(i) => HOSTILE[i].name.to_string(),
            Fault::MalformedJson => "malformed JSON".into(),
            Fault::UnknownField => "unknown field".into(),
            Fault::UnknownKernel => "unknown kernel".into(),
            Fault::ParamOutOfRange => "parameter out of range".into(),
            Fault::ParamWrongType => "parameter of the wrong type".into(),
            Fault::AbsurdBudget => "absurd budget".into(),
            Fault::OversizedBody => "oversized body".into(),
        }
    }

    /// The HTTP statuses this request may be answered with. A hostile kernel's job fails in
    /// the sandbox (500) or is dropped: by load shedding (429) or by quarantine (503).
    fn reaches_router(self) -> bool {
        matches!(self, Fault::Kernel(_) | Fault::UnknownKernel | Fault::ParamOutOfRange | Fault::ParamWrongType)
    }

    fn allowed(self) -> &'static [u16] {
        match self {
            Fault::Kernel(_) => &[500, 429, 503],
            Fault::UnknownKernel => &[404],
            Fault::OversizedBody => &[413],
            _ => &[400],
        }
    }

    /// Every kind, hostile kernels first.
    fn every() -> impl Iterator<Item = Fault> {
        (0..HOSTILE.len()).map(Fault::Kernel).chain([
            Fault::MalformedJson,
            Fault::UnknownField,
            Fault::UnknownKernel,
            Fault::ParamOutOfRange,
            Fault::ParamWrongType,
            Fault::AbsurdBudget,
            Fault::OversizedBody,
        ])
    }

    /// The `index`th fault of a run: each kind once first, so that a short run sends every
    /// kind, then draws with hostile kernels and bad requests equally often (the oversized
    /// body, a megabyte each, a tenth as often as the other bad requests).
    fn nth(index: usize, rng: &mut ChaCha8Rng) -> Fault {
        if let Some(fault) = Fault::every().nth(index) {
            return fault;
        }
        if rng.next_u64() & 1 == 0 {
            return Fault::Kernel((rng.next_u64() % HOSTILE.len() as u64) as usize);
        }
        match rng.next_u64() % 61 {
            0..10 => Fault::MalformedJson,
            10..20 => Fault::UnknownField,
            20..30 => Fault::UnknownKernel,
            30..40 => Fault::ParamOutOfRange,
            40..50 => Fault::ParamWrongType,
            50..60 => Fault::AbsurdBudget,
            _ => Fault::OversizedBody,
        }
    }

    fn body(self, rng: &mut ChaCha8Rng, max_body_bytes: usize) -> Bytes {
        let budget_ms = 20.0 + 30.0 * unit(rng);
        let option = |paths: Value, spot: Value| {
            json!({"kernel": "mc-option", "budget_ms": budget_ms, "params": {
                "style": "european", "spot": spot, "strike": 100, "vol": 0.2, "maturity": 1, "paths": paths}})
        };
        let body = match self {
            Fault::Kernel(i) => {
                let criticality = if rng.next_u64() & 1 == 0 { "critical" } else { "sheddable" };
                json!({"kernel": HOSTILE[i].name, "params": {}, "budget_ms": budget_ms, "criticality": criticality})
            }
            Fault::MalformedJson => return Bytes::from_static(b"{\"kernel\": \"mc-option\", \"params\": {\"spot\": 1"),
            Fault::UnknownField => {
                let mut b = option(json!(1000), json!(100));
                b["colour"] = json!("red");
                b
            }
            Fault::UnknownKernel => json!({"kernel": "no-such-kernel", "params": {}, "budget_ms": budget_ms}),
            Fault::ParamOutOfRange => option(json!(-5), json!(100)),
            Fault::ParamWrongType => option(json!(1000), json!("a hundred")),
            Fault::AbsurdBudget => {
                let mut b = option(json!(1000), json!(100));
                b["budget_ms"] = json!(1e15);
                b
            }
            Fault::OversizedBody => {
                let mut b = option(json!(1000), json!(100));
                b["params"]["padding"] = json!("x".repeat(max_body_bytes + 1024));
                b
            }
        };
        Bytes::from(body.to_string())
    }
}

/// What one fault kind got back.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultTally {
    pub sent: u64,
    /// Answers by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Answers outside the allowed statuses, or a hostile job that did not fail in the sandbox.
    pub unexpected: u64,
    /// No answer at all.
    pub lost: u64,
    /// A few of the unexpected answers, for the report.
    pub examples: Vec<String>,
    /// The request is a valid job the router itself answers (the others are refused by the
    /// HTTP layer before they become jobs).
    pub reaches_router: bool,
}

/// Sends `rate` faults per second for `duration` (Poisson arrivals), waits for every answer and
/// returns the tallies by fault kind.
pub async fn run(
    http: Arc<Http>,
    rate: f64,
    duration: Duration,
    seed: u64,
    max_body_bytes: usize,
) -> Result<BTreeMap<String, FaultTally>, String> {
    let tallies: Arc<Mutex<BTreeMap<String, FaultTally>>> = Arc::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = tokio::time::Instant::now();
    let mut answers = Vec::new();
    for (index, offset) in Schedule::new(Arrivals::Poisson, rate, duration, seed)?.enumerate() {
        tokio::time::sleep_until(start + offset).await;
        let fault = Fault::nth(index, &mut rng);
        let body = fault.body(&mut rng, max_body_bytes);
        let (http, tallies) = (http.clone(), tallies.clone());
        answers.push(tokio::spawn(async move {
            let answer = http.post_json("/v1/jobs", body, Duration::from_secs(30)).await;
            let mut t = tallies.lock().unwrap_or_else(|p| p.into_inner());
            record(t.entry(fault.name()).or_default(), fault, answer);
        }));
    }
    for a in answers {
        a.await.map_err(|e| format!("a chaos request task failed: {e}"))?;
    }
    let t = tallies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(t)
}

fn record(t: &mut FaultTally, fault: Fault, answer: crate::replica::Answer) {
    t.sent += 1;
    t.reaches_router = fault.reaches_router();
    let (code, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            t.lost += 1;
            if t.examples.len() < 3 {
                t.examples.push(format!("no answer: {e}"));
            }
            return;
        }
    };
    *t.by_status.entry(code).or_default() += 1;
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // A hostile job's 500 must be the sandbox stopping it, not the router failing.
    let wrong_failure = matches!(fault, Fault::Kernel(_)) && code == 500 && json["error"]["kind"] != "sandbox";
    if !fault.allowed().contains(&code) || wrong_failure {
        t.unexpected += 1;
        if t.examples.len() < 3 {
            let text = String::from_utf8_lossy(&body);
            t.examples.push(format!("{code}: {}", &text[..text.len().min(300)]));
        }
    }
}

/// Slow-loris clients: connections that send half a request's headers and wait.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StallTally {
    pub opened: u64,
    /// Closed by the server (its header deadline) before the soak gave up waiting.
    pub cut_off: u64,
    pub longest_held_ms: u64,
}

impl StallTally {
    /// Two tallies as one (stalls on several replicas).
    pub fn add(self, other: StallTally) -> StallTally {
        StallTally {
            opened: self.opened + other.opened,
            cut_off: self.cut_off + other.cut_off,
            longest_held_ms: self.longest_held_ms.max(other.longest_held_ms),
        }
    }
}

/// Opens `count` connections to `addr` that each send half a request and wait up to `wait`
/// for the server to close them.
pub async fn stall_connections(addr: &str, count: usize, wait: Duration) -> StallTally {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tasks = Vec::new();
    for _ in 0..count {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
            s.write_all(b"POST /v1/jobs HTTP/1.1\r\nHost: soak\r\nContent-Type: appl").await.ok()?;
            let mut buf = [0u8; 256];
            let closed = match tokio::time::timeout(wait, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => true,
                Ok(Ok(_)) | Err(_) => false,
            };
            Some((closed, start.elapsed()))
        }));
    }
    let mut t = StallTally::default();
    for task in tasks {
        t.opened += 1;
        if let Ok(Some((closed, held))) = task.await {
            t.cut_off += u64::from(closed);
            t.longest_held_ms = t.longest_held_ms.max(held.as_millis() as u64);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_fault_kind() {
        let mut t = FaultTally::default();
        let sandbox = Bytes::from(r#"{"status":"failed","error":{"kind":"sandbox","message":"ran out of fuel"}}"#);
        record(&mut t, Fault::Kernel(0), Ok((500, sandbox)));
        record(&mut t, Fault::Kernel(0), Ok((503, Bytes::from(r#"{"status":"dropped"}"#))));
        assert_eq!((t.sent, t.unexpected, t.lost), (2, 0, 0));
        let panic = Bytes::from(r#"{"status":"failed","error":{"kind":"panic"}}"#);
        record(&mut t, Fault::Kernel(0), Ok((500, panic)));
        record(&mut t, Fault::Kernel(0), Ok((200, Bytes::from("{}"))));
        assert_eq!(t.unexpected, 2, "a router failure and a completed hostile job are both violations");
        let mut bad = FaultTally::default();
        record(&mut bad, Fault::UnknownKernel, Ok((404, Bytes::new())));
        record(&mut bad, Fault::UnknownKernel, Ok((400, Bytes::new())));
        record(&mut bad, Fault::UnknownKernel, Err("reset".into()));
        assert_eq!((bad.sent, bad.unexpected, bad.lost, bad.by_status.len()), (3, 1, 1, 2));
    }

    #[test]
    fn a_run_sends_every_kind_first_then_draws() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let first: std::collections::BTreeSet<_> = (0..13).map(|i| Fault::nth(i, &mut rng)).collect();
        assert_eq!(first.len(), HOSTILE.len() + 7, "{first:?}");
        let later: std::collections::BTreeSet<_> = (13..2000).map(|i| Fault::nth(i, &mut rng)).collect();
        assert_eq!(later, first, "every kind is drawn again");
    }

    #[test]
    fn every_bad_request_body_is_what_it_claims() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let decode = |f: Fault, rng: &mut ChaCha8Rng| crate::request::JobRequest::decode(&f.body(rng, 1000));
        assert!(decode(Fault::MalformedJson, &mut rng).is_err());
        assert!(decode(Fault::UnknownField, &mut rng).unwrap_err().message.contains("colour"));
        assert!(decode(Fault::AbsurdBudget, &mut rng).and_then(|r| r.into_job(1)).is_err());
        for f in [Fault::UnknownKernel, Fault::ParamOutOfRange, Fault::ParamWrongType, Fault::Kernel(2)] {
            assert!(decode(f, &mut rng).and_then(|r| r.into_job(1)).is_ok(), "{f:?} decodes; the router refuses it");
        }
        assert!(Fault::OversizedBody.body(&mut rng, 1000).len() > 1000);
    }
}
