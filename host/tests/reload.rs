//! Hot registration: a kernel dropped into the watched folder is served without a restart;
//! replacing a version while jobs run loses none of them; a bad replacement is refused and the
//! previous version keeps serving; a removed manifest unregisters its kernel.

use helix_host::ErrorKind;
use helix_host::{Job, Router, RouterConfig, Runtime, Status};
use helix_math::{Params, Value};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{staged, temp_dir};

/// Writes a file whole and atomically, as a deploy tool would.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

fn basket_job(id: u64) -> Job {
    let p = Params::new()
        .with("spots", Value::Array(vec![100.0, 50.0]))
        .with("weights", Value::Array(vec![1.0, 2.0]))
        .with("vols", Value::Array(vec![0.2, 0.3]))
        .with("correlation", Value::Array(vec![1.0, 0.5, 0.5, 1.0]))
        .with("maturity", Value::Number(0.5))
        .with("strike", Value::Number(200.0))
        .with("paths", Value::Number(4096.0));
    let mut j = Job::new(id, "basket-option", p, Duration::from_secs(10));
    j.seed = Some(1);
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_dropped_into_the_folder_is_served_without_restart() {
    let dir = temp_dir("drop");
    let router = Arc::new(Router::from_dir(RouterConfig::default(), &dir).unwrap());
    router.watch(Duration::from_millis(100));
    let before = router.submit(basket_job(1)).await;
    assert_eq!(before.error.map(|e| e.kind), Some(ErrorKind::UnknownKernel));

    // The module first, then the manifest that names it.
    put(&dir, "basket-option.wasm", &std::fs::read(staged("basket-option.wasm")).unwrap());
    let dropped = Instant::now();
    put(&dir, "basket-option.toml", &std::fs::read(staged("basket-option.toml")).unwrap());
    let served = loop {
        let o = router.submit(basket_job(2)).await;
        if o.status == Status::Completed {
            break dropped.elapsed();
        }
        assert!(dropped.elapsed() < Duration::from_secs(10), "never served: {o:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!("new kernel served {} ms after its manifest landed", served.as_millis());

    std::fs::remove_file(dir.join("basket-option.toml")).unwrap();
    let report = router.reload().await.unwrap();
    assert_eq!(report.removed, vec!["basket-option (wasm)".to_string()]);
    let after = router.submit(basket_job(3)).await;
    assert_eq!(after.error.map(|e| e.kind), Some(ErrorKind::UnknownKernel));
}

/// 100 version bumps under load: every job completes, on the kernel it named and on a version
/// that was serving at some moment between its submission and its answer (never a stale or a
/// future one), and the answers stay the same (same module, same job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_version_while_jobs_run_loses_none() {
    const SWAPS: u64 = 100;
    let dir = temp_dir("swap");
    put(&dir, "basket-option.wasm", &std::fs::read(staged("basket-option.wasm")).unwrap());
    let manifest = std::fs::read_to_string(staged("basket-option.toml")).unwrap();
    put(&dir, "basket-option.toml", manifest.as_bytes());
    let router =
        Arc::new(Router::from_dir(RouterConfig { queue_capacity: 4096, ..RouterConfig::default() }, &dir).unwrap());
    let reference = router.submit(basket_job(0)).await;
    assert_eq!(reference.status, Status::Completed);

    // `serving`: the newest version whose registration finished; `registering`: the newest whose
    // registration started. A job submitted when version a served, answered before version b
    // started registering, must report a version in a..=b.
    let serving = Arc::new(AtomicU64::new(0));
    let registering = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (router, stop) = (router.clone(), stop.clone());
            let (serving, registering) = (serving.clone(), registering.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut id = c * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    id += 1;
                    let before = serving.load(Ordering::SeqCst);
                    let o = router.submit(basket_job(id)).await;
                    seen.push((before, o, registering.load(Ordering::SeqCst)));
                }
                seen
            })
        })
        .collect();
    for v in 1..=SWAPS {
        let next = manifest.replace("version = \"1.0.0\"", &format!("version = \"1.0.{v}\""));
        put(&dir, "basket-option.toml", next.as_bytes());
        registering.store(v, Ordering::SeqCst);
        let report = router.reload().await.unwrap();
        assert_eq!(report.loaded, vec![format!("basket-option@1.0.{v} (wasm)")]);
        serving.store(v, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A corrupt replacement is refused; the last version keeps serving.
    put(&dir, "basket-option.wasm", b"\0asm garbage");
    let report = router.reload().await.unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.store(true, Ordering::SeqCst);

    let mut versions = std::collections::BTreeSet::new();
    let mut total = 0;
    for c in clients {
        for (before, o, after) in c.await.unwrap() {
            total += 1;
            assert_eq!(o.status, Status::Completed, "{o:?}");
            assert_eq!((&*o.kernel, o.runtime), ("basket-option", Some(Runtime::Wasm)));
            assert_eq!(o.estimates, reference.estimates, "same module, same job, same bits");
            let version = o.version.unwrap().to_string();
            let v: u64 = version.strip_prefix("1.0.").unwrap().parse().unwrap();
            assert!(before <= v && v <= after, "ran on 1.0.{v}, but only 1.0.{before}..=1.0.{after} could serve it");
            versions.insert(v);
        }
    }
    assert!(versions.len() >= 10, "jobs ran across the swaps: {versions:?}");
    let last = router.submit(basket_job(9)).await;
    assert_eq!(last.version.as_deref(), Some(format!("1.0.{SWAPS}").as_str()));
    let snap = router.snapshot();
    assert_eq!(snap.submitted, snap.outcomes());
    println!("{total} jobs across {SWAPS} version swaps and a refused replacement: none lost, none misrouted");
}
