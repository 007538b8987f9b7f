//! The shared kernel store, end to end: a fleet of real `helix serve` replicas behind a real
//! nginx, all polling one store: a shared folder (`file://`) and an S3-compatible server
//! (`moto_server`, from PyPI's `moto[server]`, which `cargo xtask test` installs), each started
//! and stopped by its test, on loopback. Registration counts polls, not time: a kernel uploaded
//! through one replica must be served by another within two of that replica's polls.

use helix_host::catalog::{Store, publish_folder};
use helix_host::fleet::{Fleet, FleetConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{agent, bundled_copy, free_port, metric, nginx, post, scrape, temp_dir, upload_kernel};

const TOKEN: &str = "store-test-token";
const POLL_MS: u64 = 300;

/// A store for one test: its URL, the options that reach it, and the server behind it.
struct Kit {
    url: String,
    options: BTreeMap<String, String>,
    /// The shared folder, for a `file://` store.
    folder: Option<PathBuf>,
    moto: Option<Moto>,
}

/// `moto_server` as a child process, killed when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn folder_store(tag: &str) -> Kit {
    let dir = temp_dir(&format!("{tag}-store"));
    Kit { url: format!("file://{}/kernels", dir.display()), options: BTreeMap::new(), folder: Some(dir), moto: None }
}

/// The `moto_server` the tests run: `HELIX_MOTO`, or `moto_server` on the PATH.
fn moto_binary() -> PathBuf {
    let path = std::env::var_os("HELIX_MOTO").map_or_else(|| PathBuf::from("moto_server"), PathBuf::from);
    let found = Command::new(&path).arg("--help").output().is_ok_and(|o| o.status.success());
    assert!(found, "{} is missing: run `cargo xtask test`, which installs moto[server] in a venv", path.display());
    path
}

/// An S3-compatible server on a free loopback port, with an empty bucket.
fn s3_store(tag: &str) -> Kit {
    let port = free_port();
    let log = std::fs::File::create(temp_dir(&format!("{tag}-moto")).join("moto.log")).unwrap();
    let child = Command::new(moto_binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("moto_server starts");
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let agent = agent();
    let start = Instant::now();
    // S3's CreateBucket: moto takes it unsigned.
    while agent.put(format!("{endpoint}/helix-kernels")).send(&b""[..]).map(|r| r.status().as_u16()).unwrap_or(0) != 200
    {
        assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not answer on {endpoint}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let options = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    Kit { url: format!("s3://helix-kernels/{tag}"), options, folder: None, moto: Some(moto) }
}

impl Kit {
    /// The store goes away: the S3 server dies, or the shared folder is unmounted (moved).
    fn outage(&mut self) {
        drop(self.moto.take());
        if let Some(dir) = &self.folder {
            std::fs::rename(dir.join("kernels"), dir.join("kernels-away")).unwrap();
        }
    }

    fn store(&self) -> Store {
        Store::open(&self.url, &self.options).unwrap()
    }

    /// The replicas' `helix serve` configuration: poll fast, reach the store.
    fn server_config(&self) -> String {
        let mut c = format!("[store]\npoll_ms = {POLL_MS}\n[store.options]\n");
        for (k, v) in &self.options {
            c.push_str(&format!("{k} = {v:?}\n"));
        }
        c
    }
}

/// The bundled manifests published to the store, then two replicas on it behind nginx.
fn fleet_on(kit: &Kit, tag: &str, rt: &tokio::runtime::Runtime) -> Fleet {
    let refused = rt.block_on(publish_folder(&bundled_copy(tag), &kit.store(), None)).err();
    // Without a Wasm engine the Wasm manifests are refused and nothing is written: publish with one.
    assert!(refused.is_some_and(|e| e.contains("nothing published")), "publishing needs the engine to validate");
    let engine = helix_host::wasm::WasmEngine::new(Default::default()).unwrap();
    let keys = rt.block_on(publish_folder(&bundled_copy(tag), &kit.store(), Some(engine))).unwrap();
    assert!(keys.contains(&"wasm/basket-option.toml".to_string()), "{keys:?}");
    let cfg = FleetConfig {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_helix")),
        replicas: 2,
        listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        manifests: PathBuf::from(&kit.url),
        server_config: kit.server_config(),
        admin_token: Some(TOKEN.into()),
        nginx: nginx(),
        tries: 2,
        run_dir: temp_dir(&format!("{tag}-run")),
    };
    rt.block_on(Fleet::start(&cfg)).unwrap_or_else(|e| panic!("the fleet did not start: {e}"))
}

/// The version replica `base` serves of `kernel`, if it has it.
fn version(base: &str, kernel: &str) -> Option<String> {
    let mut r = agent().get(format!("{base}/v1/kernels/{kernel}")).call().unwrap();
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    (r.status() == 200).then(|| body["builds"][0]["version"].as_str().unwrap().to_string())
}

fn store_requests(base: &str, kind: &str) -> f64 {
    metric(&scrape(&agent(), base), "helix_store_requests_total", &[("kind", kind)])
}

/// Waits until replica `base` has listed the store `n` more times.
fn wait_polls(base: &str, n: f64) {
    let target = store_requests(base, "list") + n;
    let start = Instant::now();
    while store_requests(base, "list") < target {
        assert!(start.elapsed() < Duration::from_secs(30), "{base} stopped polling");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `base` serves `kernel` at `want`; how many polls it took after `polls_before`.
fn polls_until(base: &str, kernel: &str, want: &str, polls_before: f64) -> f64 {
    let start = Instant::now();
    while version(base, kernel).as_deref() != Some(want) {
        assert!(start.elapsed() < Duration::from_secs(30), "{base} never served {kernel} {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
    store_requests(base, "list") - polls_before
}

fn basket_job(seed: u64) -> Value {
    json!({"kernel": "team-basket", "seed": seed, "budget_ms": 20000, "params": {"spots": [100], "weights": [1],
        "vols": [0.2], "correlation": [1], "maturity": 1, "strike": 100, "paths": 2000}})
}

/// Registration through the store: an upload through one replica reaches the other within two
/// of its polls; idle polls download nothing; a version swap under load loses no job and every
/// answer comes from a registered version; corrupt kernels, uploaded or written straight to the
/// store, are refused everywhere while the version before keeps serving; and when the store goes
/// away, every replica keeps serving what it has.
fn registration(mut kit: Kit, tag: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fleet = fleet_on(&kit, tag, &rt);
    let [a, b] = [0, 1].map(|i| fleet.replicas()[i].clone());
    for r in [&a, &b] {
        assert_eq!(version(r, "basket-option").as_deref(), Some("1.0.0"), "{r} serves the published kernels");
    }

    // Unchanged objects are not downloaded again: polls list, and fetch nothing.
    let fetched = store_requests(&b, "fetch");
    wait_polls(&b, 3.0);
    assert_eq!(store_requests(&b, "fetch"), fetched, "idle polls downloaded objects");

    // A new kernel uploaded through A.
    let source = bundled_copy(&format!("{tag}-src"));
    let module = std::fs::read(source.join("wasm/basket-option.wasm")).unwrap();
    let manifest = std::fs::read_to_string(source.join("wasm/basket-option.toml"))
        .unwrap()
        .replace("name = \"basket-option\"", "name = \"team-basket\"")
        .replace("path = \"basket-option.wasm\"", "path = \"team-basket.wasm\"");
    let agent = agent();
    let (status, body) = upload_kernel(&agent, &a, "team-basket", &manifest, Some(&module), Some(TOKEN));
    assert_eq!(status, 201, "{body}");
    assert!(body["path"].as_str().unwrap().starts_with(&kit.url), "{body}");
    let polls = polls_until(&b, "team-basket", "1.0.0", store_requests(&b, "list"));
    eprintln!("{tag}: uploaded through A, served by B after {polls} of its polls");
    assert!(polls <= 2.0, "B took {polls} polls");
    let (status, _, first) = post(&agent, &fleet.balancer, &basket_job(7));
    assert_eq!(status, 200, "{first}");

    // A version swap through B while clients send jobs through the balancer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (balancer, stop) = (fleet.balancer.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = support::agent();
                let mut answers = Vec::new();
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let seed = 7 + (c + i) % 3;
                    let (status, _, body) = post(&agent, &balancer, &basket_job(seed));
                    let version = body["version"].as_str().unwrap_or("").to_string();
                    answers.push((status, version, seed, body["estimates"].clone()));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let v2 = manifest.replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    let (status, body) = upload_kernel(&agent, &b, "team-basket", &v2, Some(&module), Some(TOKEN));
    assert_eq!((status, &body["replaced"]), (200, &json!(true)), "{body}");
    let polls = polls_until(&a, "team-basket", "2.0.0", store_requests(&a, "list"));
    assert!(polls <= 2.0, "A took {polls} polls to see 2.0.0");
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let versions: BTreeMap<&str, usize> = answers.iter().fold(BTreeMap::new(), |mut m, (_, v, _, _)| {
        *m.entry(v.as_str()).or_default() += 1;
        m
    });
    eprintln!("{tag}: version swap under load: {} jobs, by version {versions:?}", answers.len());
    assert!(answers.iter().all(|(s, _, _, _)| *s == 200), "a job was lost in the swap");
    assert!(versions.keys().all(|v| ["1.0.0", "2.0.0"].contains(v)), "{versions:?}");
    assert!(versions.get("2.0.0").is_some_and(|&n| n > 0), "no answer from the new version: {versions:?}");
    assert!(answers.len() >= 30, "the load ran: {} jobs", answers.len());
    // Same module, same seed: the same answer from either version, on either replica.
    for (_, _, seed, estimates) in &answers {
        let same = answers.iter().find(|(_, _, s, _)| s == seed).map(|(_, _, _, e)| e);
        assert_eq!(Some(estimates), same, "seed {seed} answered differently");
    }
    assert_eq!(answers.iter().find(|(_, _, s, _)| *s == 7).map(|a| &a.3), Some(&first["estimates"]));

    // A corrupt upload (the sha256 names other bytes) is refused before anything is written.
    let mut bad_module = module.clone();
    bad_module.extend_from_slice(b"corrupt");
    let v3 = v2.replace("version = \"2.0.0\"", "version = \"3.0.0\"");
    let (status, body) = upload_kernel(&agent, &a, "team-basket", &v3, Some(&bad_module), Some(TOKEN));
    assert_eq!(status, 422, "{body}");
    // Written straight to the store: a module whose bytes do not hash to its name, and a
    // manifest naming a module the store does not have. Every replica refuses both.
    let refused_before =
        [&a, &b].map(|r| metric(&scrape(&agent, r), "helix_kernel_registrations_total", &[("result", "refused")]));
    let store = kit.store();
    let fake_sha = helix_host::wasm::sha256_hex(b"what the manifest claims");
    rt.block_on(store.put(&format!("modules/{fake_sha}.wasm"), bad_module.clone())).unwrap();
    let sha = helix_host::wasm::sha256_hex(&module);
    rt.block_on(store.publish("team-basket.toml", &v3.replace(&sha, &fake_sha), None)).unwrap();
    for r in [&a, &b] {
        wait_polls(r, 2.0);
        assert_eq!(version(r, "team-basket").as_deref(), Some("2.0.0"), "{r} dropped the version it served");
    }
    let missing = helix_host::wasm::sha256_hex(b"never uploaded");
    let v4 = v2.replace("version = \"2.0.0\"", "version = \"4.0.0\"").replace(&sha, &missing);
    rt.block_on(store.publish("team-basket.toml", &v4, None)).unwrap();
    for (r, before) in [&a, &b].into_iter().zip(refused_before) {
        wait_polls(r, 2.0);
        assert_eq!(version(r, "team-basket").as_deref(), Some("2.0.0"), "{r} dropped the version it served");
        let refused = metric(&scrape(&agent, r), "helix_kernel_registrations_total", &[("result", "refused")]);
        assert!(refused >= before + 2.0, "{r} refused {} of the 2 corrupt kernels", refused - before);
    }
    assert_eq!(post(&agent, &fleet.balancer, &basket_job(7)).0, 200);

    // The store goes away: polls fail (or list nothing), and every replica keeps its kernels.
    let failed_before = [&a, &b].map(|r| store_requests(r, "failed"));
    kit.outage();
    for (r, before) in [&a, &b].into_iter().zip(failed_before) {
        wait_polls(r, 2.0);
        assert!(store_requests(r, "failed") >= before + 1.0, "{r} did not count the outage");
        assert_eq!(version(r, "team-basket").as_deref(), Some("2.0.0"), "{r} dropped its kernels in an outage");
        assert_eq!(version(r, "mc-option").as_deref(), Some("1.0.0"));
    }
    let during: Vec<u16> = (0..20).map(|s| post(&agent, &fleet.balancer, &basket_job(s)).0).collect();
    assert!(during.iter().all(|&s| s == 200), "jobs failed while the store was away: {during:?}");
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}

#[test]
fn kernels_registered_through_a_shared_folder_reach_every_replica() {
    registration(folder_store("store-folder"), "store-folder");
}

#[test]
fn kernels_registered_through_an_s3_compatible_server_reach_every_replica() {
    registration(s3_store("store-s3"), "store-s3");
}
