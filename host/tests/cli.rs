//! The real `helix` binary: `helix run --json` prints the documented object, its estimates equal
//! the library's for the same job, and bad input exits non-zero with the field named.

use helix_math::{KernelKind, Params, Prepared, Value};
use serde_json::Value as Json;

mod support;
use support::{staged, temp_dir};

/// The `helix` binary's success, stdout and stderr.
fn helix(args: &[&str]) -> (bool, String, String) {
    let out = support::helix(args);
    (out.status.success(), support::text(&out.stdout), support::text(&out.stderr))
}

#[test]
fn run_json_matches_the_library_bit_for_bit() {
    let (ok, stdout, stderr) = helix(&[
        "run",
        "mc-option",
        "--param",
        "style=asian",
        "--param",
        "spot=100",
        "--param",
        "strike=95",
        "--param",
        "vol=0.3",
        "--param",
        "maturity=0.5",
        "--param",
        "steps=12",
        "--param",
        "paths=30000",
        "--seed",
        "11",
        "--budget-ms",
        "5000",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: Json = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["kernel"], "mc-option");
    assert_eq!(v["runtime"], "native");
    for key in ["strategy", "reason", "units_requested", "units_granted"] {
        assert!(!v["decision"][key].is_null(), "decision.{key}");
    }
    for key in ["queue", "service", "total"] {
        assert!(v["timings_us"][key].is_u64(), "timings_us.{key}");
    }
    let params = Params::new()
        .with("style", Value::Text("asian".into()))
        .with("spot", Value::Number(100.0))
        .with("strike", Value::Number(95.0))
        .with("vol", Value::Number(0.3))
        .with("maturity", Value::Number(0.5))
        .with("steps", Value::Number(12.0))
        .with("paths", Value::Number(30000.0));
    let parsed = Prepared::parse(KernelKind::McOption, params.clone()).unwrap();
    let expected = parsed.prepared.run(11, parsed.units).unwrap().remove(0);
    for (name, e) in &expected.estimates {
        assert_eq!(v["estimates"][name]["value"].as_f64(), Some(e.value), "{name}");
        assert_eq!(v["estimates"][name]["std_error"].as_f64(), e.std_error, "{name}");
    }
}

/// The deep out-of-the-money cases of `rare.json` (three to six standard deviations out),
/// through `helix run` as a user sends them, in both runtimes: `auto` prices them by importance
/// sampling, within 4 standard errors of the closed form at a relative standard error of at
/// most 1% at 200 000 paths, and the Wasm build gives the same bits.
#[test]
fn deep_out_of_the_money_options_through_helix_run_in_both_runtimes() {
    let rare: Json = serde_json::from_str(include_str!("../../kernels/math/tests/data/rare.json")).unwrap();
    for c in rare["cases"]["deep_otm_european"].as_array().unwrap() {
        let mut answers = Vec::new();
        for runtime in ["native", "wasm"] {
            let mut args = vec!["run".to_string(), "mc-option".into()];
            for (param, key) in [
                ("type", "type"),
                ("spot", "spot"),
                ("strike", "strike"),
                ("rate", "rate"),
                ("dividend", "dividend"),
                ("vol", "vol"),
                ("maturity", "maturity_years"),
            ] {
                let value = c[key].as_str().map_or_else(|| c[key].to_string(), str::to_string);
                args.extend(["--param".into(), format!("{param}={value}")]);
            }
            args.extend(
                ["--param", "paths=200000", "--seed", "5", "--budget-ms", "60000", "--runtime", runtime, "--json"]
                    .map(String::from),
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, stdout, stderr) = helix(&args);
            assert!(ok, "{runtime} {c}: {stderr}");
            let v: Json = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(v["status"], "completed", "{runtime} {c}: {v}");
            let (value, se) = (
                v["estimates"]["price"]["value"].as_f64().unwrap(),
                v["estimates"]["price"]["std_error"].as_f64().unwrap(),
            );
            let truth = c["price"].as_f64().unwrap();
            assert!(se > 0.0 && se <= 0.01 * truth, "{runtime} {c}: standard error {se}");
            assert!((value - truth).abs() <= 4.0 * se, "{runtime} {c}: {value} ± {se}");
            assert!(v["estimates"]["importance_shift"]["value"].is_f64(), "{runtime}: the method is named");
            answers.push(v["estimates"].clone());
        }
        assert_eq!(answers[0], answers[1], "native and Wasm give the same bits for {c}");
    }
}

/// The tail cases of `rare.json` (a lognormal position's 99.9% to 99.997% VaR and ES) through
/// `helix run` in both runtimes: `auto` answers them by importance sampling, within 4 standard
/// errors of the closed form at a relative standard error of at most 0.5% at 400 000 paths, and
/// the Wasm build gives the same bits.
#[test]
fn tail_var_and_es_through_helix_run_in_both_runtimes() {
    let rare: Json = serde_json::from_str(include_str!("../../kernels/math/tests/data/rare.json")).unwrap();
    for c in rare["cases"]["tail_lognormal_var_es"].as_array().unwrap() {
        let mut answers = Vec::new();
        for runtime in ["native", "wasm"] {
            let param = |name: &str, key: &str| format!("{name}={}", c[key]);
            let args = [
                param("positions", "value"),
                param("drifts", "drift"),
                param("vols", "vol"),
                "correlation=1".to_string(),
                param("horizon", "horizon_years"),
                param("confidence", "confidence"),
                "paths=400000".to_string(),
            ];
            let mut argv = vec!["run", "mc-var"];
            for a in &args {
                argv.extend(["--param", a.as_str()]);
            }
            argv.extend(["--seed", "5", "--budget-ms", "60000", "--runtime", runtime, "--json"]);
            let (ok, stdout, stderr) = helix(&argv);
            assert!(ok, "{runtime} {c}: {stderr}");
            let v: Json = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(v["status"], "completed", "{runtime} {c}: {v}");
            for name in ["var", "es"] {
                let e = &v["estimates"][name];
                let (value, se) = (e["value"].as_f64().unwrap(), e["std_error"].as_f64().unwrap());
                let truth = c[name].as_f64().unwrap();
                assert!(se > 0.0 && se <= 0.005 * truth, "{runtime} {name} {c}: standard error {se}");
                assert!((value - truth).abs() <= 4.0 * se, "{runtime} {name} {c}: {value} ± {se}");
            }
            answers.push(v["estimates"].clone());
        }
        assert_eq!(answers[0], answers[1], "native and Wasm give the same bits for {c}");
    }
}

#[test]
fn arrays_and_exact_estimates_print_with_null_errors() {
    let (ok, stdout, _) = helix(&[
        "run",
        "ewma-cov",
        "--param",
        "returns=0.01,0.02,-0.01,0.03,0.0,-0.02",
        "--param",
        "assets=2",
        "--json",
    ]);
    assert!(ok);
    let v: Json = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["arrays"]["covariance"].as_array().unwrap().len(), 4);
    assert!(v["estimates"]["weight_used"]["std_error"].is_null());
}

#[test]
fn bad_input_exits_non_zero_and_names_the_field() {
    let (ok, stdout, _) = helix(&[
        "run",
        "mc-var",
        "--param",
        "positions=1,2",
        "--param",
        "vols=0.2,-0.1",
        "--param",
        "correlation=1,0,0,1",
        "--json",
    ]);
    assert!(!ok);
    let v: Json = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["error"]["field"], "vols");
    let (ok, _, stderr) = helix(&["run", "mc-var", "--param", "novalue"]);
    assert!(!ok && stderr.contains("NAME=VALUE"), "{stderr}");
}

#[test]
fn kernels_lists_every_bundled_manifest() {
    let (ok, stdout, stderr) = helix(&["kernels"]);
    assert!(ok, "{stderr}");
    for k in ["mc-option", "mc-var", "particle-filter", "ewma-cov", "hashmix", "primecount"] {
        assert!(stdout.contains(k), "{k} missing:\n{stdout}");
    }
    assert!(!stderr.contains("refused"), "{stderr}");
}

#[test]
fn kernels_check_accepts_a_good_manifest_and_explains_a_bad_one() {
    let staged_manifest = staged("mc-var.toml");
    let (ok, stdout, stderr) = helix(&["kernels", "check", staged_manifest.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: mc-var 1.0.0 (wasm)") && stdout.contains("helix:kernel/runner@0.1.0"), "{stdout}");

    let dir = temp_dir("check");
    let text = std::fs::read_to_string(&staged_manifest).unwrap();
    std::fs::copy(staged("mc-var.wasm"), dir.join("mc-var.wasm")).unwrap();
    let sha_line = text.lines().find(|l| l.starts_with("sha256")).unwrap();
    std::fs::write(dir.join("bad.toml"), text.replace(sha_line, &format!("sha256 = \"{}\"", "ab".repeat(32)))).unwrap();
    let (ok, stdout, _) = helix(&["kernels", "check", dir.join("bad.toml").to_str().unwrap()]);
    assert!(!ok && stdout.contains("refused") && stdout.contains("sha256"), "{stdout}");
}
