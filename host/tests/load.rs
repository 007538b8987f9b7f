//! `helix load` and `helix bench` from the outside: the generator against a real in-process
//! router (its counts agree with the router's own), against an HTTP server over loopback (every
//! status maps to its outcome, a stalled reply shows in the percentiles, a dead server is a
//! transport failure), and the command line's runs, sweep, plot, bench and bad input.
//!
//! No test here asserts how fast anything runs: latency checks are lower bounds that a stall
//! guarantees, however slow the machine.

use axum::body::Bytes;
use axum::http::StatusCode;
use helix_host::load::Arrivals;
use helix_host::load::Mix;
use helix_host::load::{HttpTarget, Target};
use helix_host::load::{RunConfig, Source};
use helix_host::{Router, RouterConfig, Status};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::{helix, repo, temp_dir, text};

/// Native kernels only, with one job in twenty invalid and one naming no kernel.
const NATIVE_MIX: &str = r#"
[[job]]
kernel = "mc-option"
weight = 6
critical = 0.5
budget_ms = { range = [200, 1000] }
params = { spot = 100, strike = { range = [90, 110] }, vol = 0.2, maturity = 1, paths = { int = [1000, 20000] } }
[[job]]
kernel = "mc-var"
weight = 4
critical = 0.5
budget_ms = 1000
params = { positions = [1e6, 2e6], vols = [0.2, 0.3], correlation = [1, 0.3, 0.3, 1], paths = 5000 }
[[job]]
kernel = "hashmix"
weight = 5
budget_ms = 500
params = { compute_cost = { int = [64, 64000] } }
[[job]]
kernel = "primecount"
weight = 3
critical = 0
budget_ms = 500
params = { compute_cost = { int = [10000, 100000] } }
[[job]]
name = "bad strike"
kernel = "mc-option"
weight = 1
budget_ms = 100
params = { spot = 100, strike = -5, vol = 0.2, maturity = 1 }
[[job]]
kernel = "no-such-kernel"
weight = 1
budget_ms = 100
"#;

fn cfg() -> RunConfig {
    RunConfig { arrivals: Arrivals::Poisson, seed: 3, max_in_flight: 10_000, progress: false, ..RunConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_counts_balance_and_agree_with_the_router() {
    let router = Arc::new(Router::from_dir(RouterConfig::default(), &repo().join("manifests")).unwrap());
    let target = Arc::new(Target::InProcess(router.clone()));
    let source = Arc::new(Source::Mix(Mix::parse(NATIVE_MIX, "native").unwrap()));
    let r = helix_host::load::run(&target, &source, 200.0, Duration::from_millis(1500), cfg(), 1).await.unwrap();
    assert!(r.balanced(), "{:?}", r.all.counts);
    let c = r.all.counts;
    assert!(c.offered > 200, "{c:?}");
    assert_eq!(c.failed_not_issued, 0);
    // Every job the generator counted, the router counted the same way.
    let snap = router.snapshot();
    assert_eq!(snap.submitted, c.offered);
    for (status, n) in [
        (Status::Completed, c.completed),
        (Status::Degraded, c.degraded),
        (Status::Dropped, c.dropped),
        (Status::Rejected, c.rejected),
        (Status::Failed, c.failed),
    ] {
        assert_eq!(snap.count(status), n, "{status:?}");
    }
    // The unknown kernel and the invalid strikes were rejected (one job in ten between them).
    let unknown = r.by_kernel.iter().find(|k| k.kernel == "no-such-kernel").map_or(0, |k| k.offered);
    assert!(unknown > 0 && c.rejected > unknown, "{c:?}");
    assert!(c.rejected < c.offered / 4, "{c:?}");
    assert_eq!(r.critical.counts.offered + r.sheddable.counts.offered, c.offered);
}

/// A stand-in server: the kernel name says how to answer.
async fn stub_server() -> String {
    async fn answer(body: Bytes) -> (StatusCode, String) {
        let req: Value = serde_json::from_slice(&body).unwrap();
        let outcome = |status: &str, strategy: &str, reason: &str, granted: u64| {
            json!({"status": status, "decision": {"strategy": strategy, "reason": reason,
                   "units_requested": 100, "units_granted": granted}, "timings_us": {"queue": 7}})
            .to_string()
        };
        match req["kernel"].as_str().unwrap() {
            "ok" => (StatusCode::OK, outcome("completed", "cpu_lane", "fits_budget", 100)),
            "stall" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                (StatusCode::OK, outcome("completed", "cpu_lane", "fits_budget", 100))
            }
            "degraded" => (StatusCode::OK, outcome("degraded", "degrade", "degraded_to_fit", 25)),
            "drop" => (StatusCode::TOO_MANY_REQUESTS, outcome("dropped", "drop", "queue_full", 0)),
            "bad" => (StatusCode::BAD_REQUEST, json!({"status": "rejected"}).to_string()),
            "unknown" => (StatusCode::NOT_FOUND, json!({"status": "rejected"}).to_string()),
            "fail" => (StatusCode::INTERNAL_SERVER_ERROR, outcome("failed", "cpu_lane", "fits_budget", 100)),
            "drain" => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": {"kind": "draining"}}).to_string()),
            other => panic!("unexpected kernel {other}"),
        }
    }
    let app = axum::Router::new().route("/v1/jobs", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn stub_mix() -> Mix {
    let entry = |kernel: &str, weight: u32| {
        format!("[[job]]\nkernel = \"{kernel}\"\nweight = {weight}\ncritical = 0.5\nbudget_ms = 2000\n")
    };
    let text: String =
        [("ok", 10), ("stall", 2), ("degraded", 2), ("drop", 2), ("bad", 1), ("unknown", 1), ("fail", 1), ("drain", 1)]
            .into_iter()
            .map(|(k, w)| entry(k, w))
            .collect();
    Mix::parse(&text, "stub").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_statuses_become_outcomes_and_a_stall_shows_in_the_percentiles() {
    let base = stub_server().await;
    let target = Arc::new(Target::Http(Box::new(HttpTarget::new(&base).unwrap())));
    let source = Arc::new(Source::Mix(stub_mix()));
    let r = helix_host::load::run(&target, &source, 300.0, Duration::from_secs(1), cfg(), 1).await.unwrap();
    assert!(r.balanced(), "{:?}", r.all.counts);
    let n = |kernel: &str| r.by_kernel.iter().find(|k| k.kernel == kernel).map_or(0, |k| k.offered);
    let c = r.all.counts;
    assert_eq!(c.completed, n("ok") + n("stall"));
    assert_eq!(c.degraded, n("degraded"));
    assert_eq!((c.dropped, c.dropped_draining), (n("drop") + n("drain"), n("drain")));
    assert_eq!(c.rejected, n("bad") + n("unknown"));
    assert_eq!((c.failed, c.failed_transport), (n("fail"), 0));
    assert!(n("stall") * 100 > c.completed + c.degraded, "the stalled share is above 1% of answers");
    // The stalled replies took at least 300 ms from their due instants, and are over 1% of
    // the answered jobs: p99 sits among them.
    assert!(r.all.end_to_end_us.p99 >= 300_000, "{:?}", r.all.end_to_end_us);
    assert!(r.all.end_to_end_us.max >= 300_000);
    assert_eq!(r.all.degrade.jobs, n("degraded"));
    assert!((r.all.degrade.mean_share - 0.25).abs() < 1e-12);
    let reasons: Vec<&str> = r.all.by_reason.iter().map(|(reason, _)| *reason).collect();
    assert_eq!(reasons, vec!["degraded_to_fit", "queue_full"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_a_transport_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = Arc::new(Target::Http(Box::new(HttpTarget::new(&format!("http://127.0.0.1:{port}")).unwrap())));
    let source = Arc::new(Source::Mix(stub_mix()));
    let r = helix_host::load::run(&target, &source, 50.0, Duration::from_millis(400), cfg(), 1).await.unwrap();
    let c = r.all.counts;
    assert!(r.balanced() && c.offered > 0);
    assert_eq!((c.failed, c.failed_transport, c.completed), (c.offered, c.offered, 0));
    assert_eq!(r.goodput, 0.0);
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = temp_dir("bad");
    let trace = dir.join("trace.jsonl");
    std::fs::write(&trace, "{\"kind\":\"HashMix\",\"size_hint\":64,\"latency_budget_ms\":5}\n{\"kind\":\"Nope\"}\n")
        .unwrap();
    let mix = dir.join("mix.toml");
    std::fs::write(&mix, "[[job]]\nkernel = \"hashmix\"\nweight = -1\nbudget_ms = 5\n").unwrap();
    let trace_s = trace.to_str().unwrap();
    let mix_s = mix.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["load", "--trace", trace_s, "--rate", "10"], "line 2: unknown variant `Nope`"),
        (vec!["load", "--mix", mix_s, "--rate", "10"], "weight must be a positive number"),
        (vec!["load"], "give --rate R"),
        (vec!["load", "--rate", "0", "--warmup", "0"], "positive number of jobs per second"),
        (vec!["load", "--rate", "10", "--duration=-1"], "--duration must be"),
        (vec!["load", "--rate", "10", "--target", "ftp://x"], "only http://"),
        (vec!["load", "--rate", "10", "--mix", "/no/such/mix.toml"], "cannot read mix"),
        (vec!["load", "--rate", "10", "--plot", "x.svg"], "--sweep"),
        (vec!["load", "--rate", "10", "--arrivals", "bursty"], "poisson"),
    ];
    for (args, expected) in cases {
        let o = helix(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_run_and_a_trace_replay_write_balanced_json() {
    let dir = temp_dir("run");
    let mix = dir.join("native.toml");
    std::fs::write(&mix, NATIVE_MIX).unwrap();
    let out = dir.join("run.json");
    let o = helix(&[
        "load",
        "--mix",
        mix.to_str().unwrap(),
        "--rate",
        "100",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--arrivals",
        "constant",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(balanced)"), "{stdout}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let c = &json["run"]["all"]["counts"];
    assert_eq!(c["offered"], 100, "a constant schedule: exactly rate x duration");
    let sum: u64 =
        ["completed", "degraded", "dropped", "rejected", "failed"].iter().map(|k| c[k].as_u64().unwrap()).sum();
    assert_eq!(sum, 100);
    assert!(json["machine"]["logical_cpus"].as_u64().unwrap() >= 1);

    let trace = dir.join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"kind\":\"HashMix\",\"size_hint\":640,\"scaling_potential\":0.1,\"latency_budget_ms\":200}\n\
         {\"kind\":\"PrimeCount\",\"size_hint\":20000,\"scaling_potential\":0.0,\"latency_budget_ms\":200}\n\
         {\"kind\":\"MonteCarloRisk\",\"size_hint\":1000000,\"scaling_potential\":0.9,\"latency_budget_ms\":500,\"criticality\":\"sheddable\"}\n",
    )
    .unwrap();
    let out = dir.join("trace.json");
    let o = helix(&[
        "load",
        "--trace",
        trace.to_str().unwrap(),
        "--rate",
        "60",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--arrivals",
        "constant",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let kernels: Vec<&str> =
        json["run"]["by_kernel"].as_array().unwrap().iter().map(|k| k["kernel"].as_str().unwrap()).collect();
    assert_eq!(kernels, vec!["hashmix", "mc-var", "primecount"]);
    assert_eq!(json["run"]["sheddable"]["counts"]["offered"], 20, "every third job, as the trace says");
}

#[test]
fn a_sweep_finds_a_capacity_runs_its_multiples_and_draws_them() {
    let dir = temp_dir("sweep");
    let mix = dir.join("cheap.toml");
    std::fs::write(&mix, "[[job]]\nkernel = \"hashmix\"\nweight = 1\ncritical = 0.5\nbudget_ms = 1000\nparams = { compute_cost = 640 }\n")
        .unwrap();
    let (out, svg) = (dir.join("sweep.json"), dir.join("sweep.svg"));
    let o = helix(&[
        "load",
        "--sweep",
        "--mix",
        mix.to_str().unwrap(),
        "--start-rate",
        "20",
        "--max-rate",
        "40",
        "--probe-duration",
        "0.5",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--json",
        out.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let sweep = &json["sweep"];
    let c = sweep["capacity"].as_f64().unwrap();
    assert!(c > 0.0 && c <= 40.0, "{c}");
    let multiples: Vec<f64> = sweep["runs"].as_array().unwrap().iter().map(|r| r[0].as_f64().unwrap()).collect();
    assert_eq!(multiples, vec![0.5, 1.0, 1.5, 2.0, 3.0]);
    for run in sweep["runs"].as_array().unwrap() {
        let counts = &run[1]["all"]["counts"];
        let sum: u64 = ["completed", "degraded", "dropped", "rejected", "failed"]
            .iter()
            .map(|k| counts[k].as_u64().unwrap())
            .sum();
        assert_eq!(counts["offered"].as_u64().unwrap(), sum);
    }
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("| 2×C |") && table.contains("capacity C ="), "{table}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("goodput") && svg.contains("sheddable"), "{}", &svg[..200]);
}

#[test]
fn bench_quick_measures_every_bundled_kernel_both_ways() {
    let out = temp_dir("bench").join("bench.json");
    let o = helix(&["bench", "--quick", "--runs", "1", "--json", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let kernels: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["kernel"].as_str().unwrap()).collect();
    let every = ["basket-option", "ewma-cov", "hashmix", "mc-option", "mc-var", "particle-filter", "primecount"];
    assert_eq!(kernels.into_iter().collect::<Vec<_>>(), every);
    assert_eq!(json["missing_wasm"], json!([]), "cargo xtask test stages the Wasm kernels");
    for r in rows {
        let wasm = !matches!(r["kernel"].as_str().unwrap(), "hashmix" | "primecount");
        let native = r["kernel"] != "basket-option";
        assert_eq!(r["native"].is_object(), native, "{r}");
        assert_eq!(r["wasm_fuel"].is_object() && r["wasm_no_fuel"].is_object(), wasm, "{r}");
        if wasm {
            assert!(r["fuel_per_unit"].as_f64().unwrap() > 0.0, "{r}");
        }
        if wasm && native {
            assert!(r["wasm_over_native_fuel"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    assert_eq!(json["instantiation"].as_array().unwrap().len(), 5);
    assert!(String::from_utf8_lossy(&o.stdout).contains("| `mc-option` European, 1 step |"));
}
