//! Wasm kernels through the router: the same job gives the same bits natively and in Wasm, on
//! every strategy; hostile guests fail their own job (or their registration) with a clear error
//! while honest jobs beside them complete.
//!
//! The guests are built by `cargo xtask test` (into target/wasm and manifests/wasm).

use helix_host::ErrorKind;
use helix_host::{Job, Outcome, Router, RouterConfig, Runtime, Status};
use helix_math::{KernelKind, Params, Prepared};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::{arr, bundled_router, choice, guest_module, num, stage_wasm, staged, temp_dir};

/// An at-the-money European call: spot and strike 100, vol 0.2, one year.
fn atm_option() -> Params {
    Params::new().with("spot", num(100.0)).with("strike", num(100.0)).with("vol", num(0.2)).with("maturity", num(1.0))
}

/// Parameter sets covering every bundled kernel and mode.
fn cases() -> Vec<(&'static str, KernelKind, Params)> {
    let option = |style: &str, kind: &str| {
        Params::new()
            .with("style", choice(style))
            .with("type", choice(kind))
            .with("spot", num(100.0))
            .with("strike", num(97.0))
            .with("vol", num(0.3))
            .with("rate", num(0.02))
            .with("maturity", num(0.75))
            .with("steps", num(if style == "european" { 1.0 } else { 24.0 }))
            .with("paths", num(12_000.0))
    };
    let corr = [1.0, 0.3, -0.2, 0.3, 1.0, 0.1, -0.2, 0.1, 1.0];
    let var = |mode: &str| {
        Params::new()
            .with("positions", arr(&[1e6, -3e5, 2e6]))
            .with("drifts", arr(&[0.05, 0.01, 0.07]))
            .with("vols", arr(&[0.2, 0.35, 0.25]))
            .with("correlation", arr(&corr))
            .with("horizon", num(0.04))
            .with("mode", choice(mode))
            .with("paths", num(9_000.0))
    };
    let obs: Vec<f64> = (0..40).map(|t| (t as f64 * 0.3).sin() * 1.5).collect();
    let returns: Vec<f64> = (0..300 * 3).map(|k| 0.01 * ((k as f64 * 2.9).sin() + (k as f64 * 0.37).cos())).collect();
    vec![
        ("mc-option", KernelKind::McOption, option("european", "call")),
        ("mc-option", KernelKind::McOption, option("european", "put")),
        ("mc-option", KernelKind::McOption, option("asian", "call")),
        ("mc-option", KernelKind::McOption, option("barrier", "call").with("barrier", num(80.0))),
        (
            "mc-option",
            KernelKind::McOption,
            option("barrier", "put").with("barrier", num(130.0)).with("barrier_kind", choice("up-out")),
        ),
        ("mc-var", KernelKind::McVar, var("full")),
        ("mc-var", KernelKind::McVar, var("linear")),
        (
            "particle-filter",
            KernelKind::ParticleFilter,
            Params::new()
                .with("a", num(0.8))
                .with("q", num(1.1))
                .with("r", num(0.6))
                .with("observations", arr(&obs))
                .with("particles", num(3000.0)),
        ),
        (
            "ewma-cov",
            KernelKind::EwmaCov,
            Params::new().with("returns", arr(&returns)).with("assets", num(3.0)).with("lambda", num(0.97)),
        ),
        // Importance sampling: chosen by `auto` five standard deviations out, asked for near the money.
        ("mc-option", KernelKind::McOption, option("european", "call").set("strike", num(450.0))),
        ("mc-option", KernelKind::McOption, option("european", "put").with("method", choice("importance"))),
        ("mc-var", KernelKind::McVar, var("full").with("confidence", num(0.999))),
        ("mc-option", KernelKind::McOption, option("asian", "call").set("strike", num(170.0))),
        (
            "mc-option",
            KernelKind::McOption,
            option("barrier", "call").with("barrier", num(80.0)).set("strike", num(190.0)),
        ),
        // Randomised QMC: scrambled Sobol points, a Brownian bridge for the grids.
        ("mc-option", KernelKind::McOption, option("european", "call").with("method", choice("qmc"))),
        ("mc-option", KernelKind::McOption, option("asian", "call").with("method", choice("qmc"))),
        (
            "mc-option",
            KernelKind::McOption,
            option("barrier", "call").with("barrier", num(80.0)).with("method", choice("qmc")),
        ),
    ]
}

fn job(id: u64, kernel: &str, params: Params, seed: u64, runtime: Runtime) -> Job {
    let mut j = Job::new(id, kernel, params, Duration::from_secs(10));
    j.seed = Some(seed);
    j.runtime = Some(runtime);
    j
}

fn assert_same_answer(a: &Outcome, b: &Outcome, what: &str) {
    assert_eq!(a.status, Status::Completed, "{what}: {:?}", a.error);
    assert_eq!(b.status, Status::Completed, "{what}: {:?}", b.error);
    assert!(!a.estimates.is_empty(), "{what}");
    assert_eq!(a.estimates, b.estimates, "{what}");
    assert_eq!(a.arrays, b.arrays, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_give_the_same_bits_for_every_bundled_kernel() {
    let r = bundled_router(RouterConfig { batching: false, ..RouterConfig::default() });
    let mut id = 0;
    for (kernel, _, params) in cases() {
        for seed in [0u64, 1, 7, 42, 1_000_003, u64::MAX] {
            id += 1;
            let native = r.submit(job(id, kernel, params.clone(), seed, Runtime::Native)).await;
            let wasm = r.submit(job(id, kernel, params.clone(), seed, Runtime::Wasm)).await;
            assert_eq!((native.runtime, wasm.runtime), (Some(Runtime::Native), Some(Runtime::Wasm)));
            assert!(wasm.fuel_used.is_some_and(|f| f > 0), "a Wasm job reports its fuel");
            assert_same_answer(&native, &wasm, &format!("{kernel} seed {seed}"));
        }
    }
}

/// CPU lane, a batch, and a degraded run of the Wasm build all equal the native math for the
/// units they ran; a cheap Wasm job never runs on an async thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_answers_do_not_depend_on_the_strategy() {
    let mut cfg = RouterConfig::default();
    cfg.policy.batch_when_idle = true;
    let r = bundled_router(cfg);
    let (_, kind, params) = cases().swap_remove(2);
    let expected =
        |units: u64| Prepared::parse(kind, params.clone()).unwrap().prepared.run(9, units).unwrap().remove(0);
    let full = expected(12_000);

    let partner = params.clone().set("strike", num(110.0));
    let (a, b) = tokio::join!(
        r.submit(job(1, "mc-option", params.clone(), 9, Runtime::Wasm)),
        r.submit(job(2, "mc-option", partner, 9, Runtime::Wasm))
    );
    assert_eq!(a.decision.unwrap().strategy, helix_host::Strategy::Batch);
    assert_eq!(b.status, Status::Completed);
    for (name, e) in &full.estimates {
        assert_eq!(a.estimate(name), Some(*e), "batched {name}");
    }

    // Plans use a fifth of the budget, so a degraded guest finishes well inside its deadline
    // even on a loaded machine (a Wasm guest is stopped at its deadline).
    let mut cfg = RouterConfig { batching: false, ..RouterConfig::default() };
    cfg.policy.budget_use = 0.2;
    let r = bundled_router(cfg);
    let lane = r.submit(job(3, "mc-option", params.clone(), 9, Runtime::Wasm)).await;
    assert_eq!(lane.decision.unwrap().strategy, helix_host::Strategy::CpuLane);
    for (name, e) in &full.estimates {
        assert_eq!(lane.estimate(name), Some(*e), "cpu lane {name}");
    }

    let mut tight = job(4, "mc-option", params.clone().set("paths", num(2_000_000.0)), 9, Runtime::Wasm);
    tight.budget = Duration::from_millis(2_000);
    let degraded = r.submit(tight).await;
    assert_eq!(degraded.status, Status::Degraded, "{:?}", degraded.decision);
    let granted = degraded.decision.unwrap().units_granted;
    for (name, e) in &expected(granted).estimates {
        assert_eq!(degraded.estimate(name), Some(*e), "degraded {name}");
    }

    let cheap = r.submit(job(5, "mc-option", params.set("paths", num(1.0)), 9, Runtime::Wasm)).await;
    assert_eq!(cheap.status, Status::Completed);
    assert_eq!(cheap.decision.unwrap().strategy, helix_host::Strategy::CpuLane);
    assert_eq!(r.snapshot().heavy_on_async, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasm_only_basket_kernel_prices_a_one_asset_basket_like_black_scholes() {
    let r = bundled_router(RouterConfig::default());
    let params = Params::new()
        .with("spots", arr(&[100.0]))
        .with("weights", arr(&[1.0]))
        .with("vols", arr(&[0.25]))
        .with("correlation", arr(&[1.0]))
        .with("rate", num(0.03))
        .with("maturity", num(1.0))
        .with("strike", num(105.0))
        .with("paths", num(200_000.0));
    let mut j = Job::new(1, "basket-option", params, Duration::from_secs(10));
    j.seed = Some(5);
    let o = r.submit(j).await;
    assert_eq!((o.status, o.runtime), (Status::Completed, Some(Runtime::Wasm)), "{:?}", o.error);
    let m = helix_math::option::Market { spot: 100.0, rate: 0.03, dividend: 0.0, vol: 0.25, maturity: 1.0 };
    let bs = helix_math::option::closed_form::black_scholes(helix_math::option::OptionType::Call, 105.0, &m).price;
    let price = o.estimate("price").unwrap();
    assert!((price.value - bs).abs() <= 4.0 * price.std_error.unwrap(), "{price:?} vs {bs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_fail_alone_and_honest_jobs_beside_them_complete() {
    let dir = temp_dir("hostile");
    let read = |c: &str| std::fs::read(guest_module(c)).unwrap();
    for c in ["loop-forever", "memory-bomb", "deep-recursion", "panic-trap", "huge-output", "clock-sleep"] {
        stage_wasm(&dir, c, &read(c), "");
    }
    // These claim a second of work, so the limit under test (memory, stack, output size)
    // stops them before the fuel a claimed time buys runs out.
    for c in ["memory-bomb", "deep-recursion", "huge-output"] {
        let path = dir.join(format!("{c}.toml"));
        let m = std::fs::read_to_string(&path).unwrap().replace("fixed_us = 50.0", "fixed_us = 1000000.0");
        std::fs::write(path, m).unwrap();
    }
    stage_wasm(&dir, "loop-fueled", &read("loop-forever"), "[cost]\n");
    // The same spinning guest, but with a fuel rate: its fuel limit (4x a tiny prediction) stops it.
    let fueled = std::fs::read_to_string(dir.join("loop-fueled.toml"))
        .unwrap()
        .replace("per_unit_ns = 1.0", "per_unit_ns = 1.0\nfuel_per_unit = 1000.0")
        .replacen("[cost]\n\n[cost]", "[cost]", 1);
    std::fs::write(dir.join("loop-fueled.toml"), fueled).unwrap();
    // An honest kernel beside them: the bundled Wasm mc-option, as staged.
    for f in ["mc-option.toml", "mc-option.wasm"] {
        std::fs::copy(staged(f), dir.join(f)).unwrap();
    }

    // A permit each, so every hostile guest runs at once (time-sharing the cores).
    let r = Arc::new(Router::from_dir(RouterConfig { cpu_permits: 12, ..RouterConfig::default() }, &dir).unwrap());
    assert!(r.load_errors().is_empty(), "{:?}", r.load_errors());
    // Rust keeps large frames on a shadow stack in linear memory, so runaway recursion ends in
    // either the engine's stack limit or an out-of-bounds access below that shadow stack.
    let hostile: [(&str, &[&str]); 7] = [
        ("loop-forever", &["fuel"]),
        ("loop-fueled", &["fuel"]),
        ("memory-bomb", &["memory cap"]),
        ("deep-recursion", &["stack", "out of bounds memory access"]),
        ("panic-trap", &["trapped"]),
        ("huge-output", &["values"]),
        ("clock-sleep", &["trapped"]),
    ];
    let mut handles = Vec::new();
    for (i, (name, _)) in hostile.iter().enumerate() {
        let r = r.clone();
        let name = name.to_string();
        // The spinners get a short budget; fuel stops both (held to a rate or to a claimed time).
        let budget = Duration::from_millis(if name.starts_with("loop") { 300 } else { 10_000 });
        handles.push(tokio::spawn(async move { r.submit(Job::new(i as u64, &name, Params::new(), budget)).await }));
    }
    let honest: Vec<_> = (0..6)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let p = atm_option().with("paths", num(20_000.0));
                let mut j = Job::new(100 + i, "mc-option", p, Duration::from_secs(20));
                j.seed = Some(i);
                r.submit(j).await
            })
        })
        .collect();
    for (h, (name, needles)) in handles.into_iter().zip(hostile) {
        let o = tokio::time::timeout(Duration::from_secs(20), h).await.expect("a hostile job ends").unwrap();
        assert_eq!(o.status, Status::Failed, "{name}: {o:?}");
        let e = o.error.unwrap();
        assert_eq!(e.kind, ErrorKind::Sandbox, "{name}: {e:?}");
        assert!(
            needles.iter().any(|n| e.message.contains(n)),
            "{name}: expected one of {needles:?} in {:?}",
            e.message
        );
    }
    for h in honest {
        let o = h.await.unwrap();
        assert_eq!(o.status, Status::Completed, "{:?}", o.error);
    }
    let snap = r.snapshot();
    assert_eq!(snap.submitted, snap.outcomes());
}

/// A guest whose manifest gives no fuel rate is held to the time it claims: with a 10 s budget,
/// a spinning guest claiming 50 us is stopped by fuel after 4 x 50 us at the ceiling rate
/// (plus the floor), not after 10 s. With metering off, the wall-clock deadline stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_is_held_to_its_claimed_time_and_the_deadline_backstops_it_without_fuel() {
    let dir = temp_dir("claimed");
    stage_wasm(&dir, "spin", &std::fs::read(guest_module("loop-forever")).unwrap(), "");
    let r = Router::from_dir(RouterConfig::default(), &dir).unwrap();
    let o = r.submit(Job::new(1, "spin", Params::new(), Duration::from_secs(10))).await;
    let e = o.error.expect("it fails");
    let limit: u64 = e
        .message
        .split("ran out of fuel (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("stopped by fuel: {}", e.message));
    // 50 us claimed x 20 000 fuel/us x 4, plus the 20 M floor (1 ns per unit is noise).
    assert!((24_000_000..24_100_000).contains(&limit), "fuel limit {limit}");

    let unmetered = RouterConfig {
        wasm: helix_host::wasm::WasmConfig { fuel: false, ..helix_host::wasm::WasmConfig::default() },
        ..RouterConfig::default()
    };
    let r = Router::from_dir(unmetered, &dir).unwrap();
    let o = tokio::time::timeout(
        Duration::from_secs(20),
        r.submit(Job::new(2, "spin", Params::new(), Duration::from_millis(200))),
    )
    .await
    .expect("the deadline ends it");
    let e = o.error.expect("it fails");
    assert!(e.kind == ErrorKind::Sandbox && e.message.contains("deadline"), "{e:?}");
}

/// A kernel whose runs keep ending in the sandbox is quarantined: its jobs are dropped on
/// arrival (saying so, and for how long) while honest kernels run on; after the cool-down one
/// probe runs, and a failed probe doubles the cool-down; a new version starts on probation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_that_keeps_failing_in_the_sandbox_is_quarantined_then_probed() {
    use helix_host::QuarantineConfig;
    use helix_host::{Reason, Strategy};
    let dir = temp_dir("quarantine");
    let trap = std::fs::read(guest_module("panic-trap")).unwrap();
    stage_wasm(&dir, "trap", &trap, "");
    for f in ["mc-option.toml", "mc-option.wasm"] {
        std::fs::copy(staged(f), dir.join(f)).unwrap();
    }
    let quarantine = QuarantineConfig { after_failures: 3, cooldown_ms: 400, max_cooldown_ms: 10_000 };
    let r = Router::from_dir(RouterConfig { quarantine, ..RouterConfig::default() }, &dir).unwrap();
    assert!(r.load_errors().is_empty(), "{:?}", r.load_errors());
    let mut id = 0;
    let mut trap_job = async || {
        id += 1;
        r.submit(Job::new(id, "trap", Params::new(), Duration::from_secs(5))).await
    };
    let quarantined = |o: &Outcome| {
        o.status == Status::Dropped
            && o.decision.is_some_and(|d| d.strategy == Strategy::Drop && d.reason == Reason::Quarantined)
    };
    for _ in 0..3 {
        let o = trap_job().await;
        assert_eq!((o.status, o.error.map(|e| e.kind)), (Status::Failed, Some(ErrorKind::Sandbox)));
    }
    let o = trap_job().await;
    assert!(quarantined(&o), "{o:?}");
    let wait = o.decision.unwrap().predicted_wait_us;
    assert!(wait > 0.0 && wait <= 400_000.0, "the drop says how long is left: {wait} us");
    let snap = r.snapshot();
    let k = snap.kernels.iter().find(|k| k.kernel == "trap").unwrap();
    assert!(k.quarantined && k.quarantines == 1, "{k:?}");

    // Honest work is untouched.
    let p = atm_option().with("paths", num(2000.0));
    let o = r.submit(Job::new(100, "mc-option", p, Duration::from_secs(5))).await;
    assert_eq!(o.status, Status::Completed, "{:?}", o.error);

    // After the cool-down one probe runs; it fails, and the next cool-down is twice as long.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let o = trap_job().await;
    assert_eq!(o.status, Status::Failed, "the probe runs: {o:?}");
    let o = trap_job().await;
    assert!(quarantined(&o) && o.decision.unwrap().predicted_wait_us > 400_000.0, "{o:?}");

    // A new version (the team's next release) gets one chance: it fails, so it is quarantined
    // at once instead of after three more failures.
    let manifest = std::fs::read_to_string(dir.join("trap.toml")).unwrap().replace("1.0.0", "1.0.1");
    std::fs::write(dir.join("trap.toml"), manifest).unwrap();
    r.reload().await.unwrap();
    let o = trap_job().await;
    assert_eq!((o.status, o.version.as_deref()), (Status::Failed, Some("1.0.1")), "{o:?}");
    let o = trap_job().await;
    assert!(quarantined(&o), "{o:?}");
    assert_eq!(r.snapshot().kernels.iter().find(|k| k.kernel == "trap").unwrap().quarantines, 3);
}

/// A guest answering NaN (whose bits differ between hosts when the engine does not canonicalise)
/// fails its job as a numeric failure, as a native kernel's NaN does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_answer_is_refused_at_the_boundary() {
    let dir = temp_dir("nan");
    stage_wasm(&dir, "nan-output", &std::fs::read(guest_module("nan-output")).unwrap(), "");
    let r = Router::from_dir(RouterConfig::default(), &dir).unwrap();
    assert!(r.load_errors().is_empty(), "{:?}", r.load_errors());
    let o = r.submit(Job::new(1, "nan-output", Params::new(), Duration::from_secs(5))).await;
    assert_eq!(o.status, Status::Failed, "{o:?}");
    let e = o.error.unwrap();
    assert_eq!(e.kind, ErrorKind::NumericFailure, "{e:?}");
    assert!(e.message.contains("non-finite value in `ratio`"), "{}", e.message);
    assert!(o.estimates.is_empty(), "the NaN must not reach the outcome");
}

/// One pool slot, so every instance reuses the same memory and tables: whatever the previous
/// job wrote (the memory bomb fills up to the cap) must be gone, with every slot reset: all of
/// memory `madvise`d, the default (its first 512 KiB rewritten in place, which the checker's
/// 384 KiB of statics and the memory it grows straddle) and the pagemap reset.
#[test]
fn every_job_starts_from_a_pristine_memory_however_slots_are_recycled() {
    use helix_host::wasm::{GuestFailure, GuestJob, GuestLimits, WasmConfig, WasmEngine, load_file};
    let load = |engine: &Arc<WasmEngine>, c: &str| {
        let path = guest_module(c);
        let sha = helix_host::wasm::sha256_hex(&std::fs::read(&path).unwrap());
        load_file(engine, &path, &sha, None).unwrap()
    };
    let limits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 30_000 };
    let job = |params: Params| [GuestJob { seed: 1, units: None, params }];
    let default_keep = WasmConfig::default().keep_resident_bytes;
    for (keep_resident_bytes, pagemap_reset) in [(0, false), (default_keep, false), (default_keep, true)] {
        let config = WasmConfig {
            pool_instances: 1,
            keep_resident_bytes,
            pagemap_reset,
            cache_dir: None,
            ..WasmConfig::default()
        };
        let engine = WasmEngine::new(config).unwrap();
        let (checker, bomb, honest) =
            (load(&engine, "leftovers"), load(&engine, "memory-bomb"), load(&engine, "mc-option"));
        // The control: two jobs in one instance, so the second must find the first one's marks.
        let both = [job(Params::new()), job(Params::new())].concat();
        let run = checker.run(&both, limits).unwrap();
        let seen = run.answers[1].as_ref().unwrap().estimates[0].1.value;
        assert!(seen > 0.0, "the checker must see what the same instance wrote: {seen}");
        let option = atm_option();
        for round in 0..40 {
            match round % 4 {
                1 => assert!(matches!(bomb.run(&job(Params::new()), limits), Err(GuestFailure::MemoryCap { .. }))),
                2 => assert!(honest.run(&job(option.clone()), limits).unwrap().answers[0].is_ok()),
                _ => {}
            }
            let run = checker.run(&job(Params::new()), limits).unwrap();
            let out = run.answers[0].as_ref().unwrap();
            assert_eq!(
                out.estimates[0],
                ("leftovers".to_string(), helix_math::Estimate::exact(0.0)),
                "round {round}, keep_resident_bytes {keep_resident_bytes}, pagemap_reset {pagemap_reset}"
            );
        }
    }
}

/// The bundled guests are core modules (wasm32-unknown-unknown) that the host wraps into
/// components with no WASI imports, and the SDK's heap starts in the pages an instance is
/// given: small jobs never grow their memory, each growth being two `mprotect`s (one at the
/// growth, one at the slot's reset). std's own heap on that target grew it at every job.
#[test]
fn a_bundled_guest_imports_no_wasi_and_small_jobs_run_in_its_initial_memory() {
    use helix_host::wasm::{GuestJob, GuestLimits, WasmConfig, WasmEngine, load_file};
    let engine = WasmEngine::new(WasmConfig { cache_dir: None, ..WasmConfig::default() }).unwrap();
    let load = |c: &str| {
        let path = guest_module(c);
        let bytes = std::fs::read(&path).unwrap();
        (bytes[4..8].to_vec(), load_file(&engine, &path, &helix_host::wasm::sha256_hex(&bytes), None).unwrap())
    };
    let limits = GuestLimits { fuel: Some(u64::MAX / 4), deadline_ms: 30_000 };
    let (version, option) = load("mc-option");
    assert_eq!(version, [1, 0, 0, 0], "a bundled guest should be built as a core module");
    assert!(option.imports.iter().all(|i| !i.starts_with("wasi:")), "{:?}", option.imports);
    let initial = option.run(&[], limits).unwrap().memory_bytes;
    assert!(initial >= 64 << 10, "an instance starts with at least one page: {initial}");
    for (seed, units) in [(1, 1), (2, 64), (3, 1000)] {
        let run = option.run(&[GuestJob { seed, units: Some(units), params: atm_option() }], limits).unwrap();
        assert!(run.answers[0].is_ok(), "{:?}", run.answers[0]);
        assert_eq!(run.memory_bytes, initial, "a {units}-path job grew the guest's memory");
    }
    // The measure does see growth: the leftovers checker (a WASI component) grows past its statics.
    let (_, grower) = load("leftovers");
    let run = grower.run(&[GuestJob { seed: 1, units: None, params: Params::new() }], limits).unwrap();
    let grown = grower.run(&[], limits).unwrap().memory_bytes;
    assert!(run.memory_bytes > grown, "{} vs {grown}", run.memory_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_modules_are_refused_at_registration_with_the_reason() {
    let dir = temp_dir("refused");
    stage_wasm(&dir, "forbidden-import", &std::fs::read(guest_module("forbidden-import")).unwrap(), "");
    stage_wasm(&dir, "other-contract", &std::fs::read(guest_module("other-contract")).unwrap(), "");
    stage_wasm(&dir, "corrupt", b"\0asm this is not a component", "");
    stage_wasm(&dir, "bare-core", b"\0asm\x01\0\0\0", "");
    // A core module importing `env.f`, which no contract names.
    let env_import = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x02\x09\x01\x03env\x01f\0\0";
    stage_wasm(&dir, "core-import", env_import, "");
    stage_wasm(&dir, "wrong-sha", &std::fs::read(guest_module("panic-trap")).unwrap(), "");
    let text = std::fs::read_to_string(dir.join("wrong-sha.toml")).unwrap();
    let sha_line = text.lines().find(|l| l.starts_with("sha256")).unwrap();
    std::fs::write(dir.join("wrong-sha.toml"), text.replace(sha_line, &format!("sha256 = \"{}\"", "0".repeat(64))))
        .unwrap();
    std::fs::write(dir.join("not-toml.toml"), "name = [").unwrap();

    let r = Router::from_dir(RouterConfig::default(), &dir).unwrap();
    let refused: Vec<String> = r.load_errors().iter().map(|e| e.to_string()).collect();
    let expect = [
        ("forbidden-import", "which this host does not provide"),
        ("other-contract", "another contract version"),
        ("corrupt", "not a valid component"),
        ("bare-core", "does not export"),
        ("core-import", "build it with helix-kernel-sdk"),
        ("wrong-sha", "sha256"),
        ("not-toml", "not-toml.toml"),
    ];
    assert_eq!(refused.len(), expect.len(), "{refused:#?}");
    for (name, needle) in expect {
        assert!(refused.iter().any(|e| e.contains(name) && e.contains(needle)), "{name}/{needle}: {refused:#?}");
    }
    assert!(r.registry().all().is_empty());
}
