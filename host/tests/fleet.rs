//! A fleet on loopback: the real `helix` binary as replicas behind a real nginx (Debian's
//! `nginx-light`; `cargo xtask test` installs it when missing), started and stopped by each
//! test, every request to 127.0.0.1, bounded in requests and time.

use helix_host::fleet::nginx::FAIL_TIMEOUT;
use helix_host::fleet::{Fleet, FleetConfig};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

mod support;
use support::{agent, bundled_copy, free_port, metric, nginx, post, scrape, temp_dir};

/// A fleet of `replicas` on a copy of the bundled manifests, each replica with `config`.
fn start(tag: &str, replicas: usize, config: &str, rt: &tokio::runtime::Runtime) -> Fleet {
    let cfg = FleetConfig {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_helix")),
        replicas,
        listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        manifests: bundled_copy(tag),
        server_config: config.into(),
        admin_token: None,
        nginx: nginx(),
        tries: 2,
        run_dir: temp_dir(&format!("{tag}-run")),
    };
    rt.block_on(Fleet::start(&cfg)).unwrap_or_else(|e| panic!("the fleet did not start: {e}"))
}

fn option_job(paths: u64, budget_ms: u64) -> Value {
    json!({"kernel": "mc-option", "budget_ms": budget_ms,
        "params": {"spot": 100, "strike": 105, "vol": 0.2, "maturity": 1, "paths": paths}})
}

/// Two replicas each serve 35-65% of 2 000 jobs sent through the balancer by 8 clients, and no
/// answer is a 5xx.
#[test]
fn the_balancer_spreads_jobs_over_both_replicas() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fleet = start("fleet-spread", 2, "", &rt);
    let balancer = fleet.balancer.clone();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let base = balancer.clone();
            std::thread::spawn(move || {
                let agent = agent();
                (0..250).map(|_| post(&agent, &base, &option_job(2000, 1000)).0).collect::<Vec<u16>>()
            })
        })
        .collect();
    let codes: Vec<u16> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    assert_eq!(codes.len(), 2000);
    assert!(codes.iter().all(|&c| c < 500), "5xx answers: {:?}", codes.iter().filter(|&&c| c >= 500).count());
    let agent = agent();
    let served: Vec<f64> =
        fleet.replicas().iter().map(|r| metric(&scrape(&agent, r), "helix_jobs_submitted_total", &[])).collect();
    assert_eq!(served.iter().sum::<f64>(), 2000.0, "{served:?}");
    eprintln!("2000 jobs through the balancer: {served:?} per replica");
    for s in &served {
        assert!((700.0..=1300.0).contains(s), "a replica served {s} of 2000: {served:?}");
    }
    let codes = rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
    assert_eq!(codes, vec![0, 0], "every replica drains and exits 0");
}

/// One replica's only permit is held by a long job: short jobs it sheds (429) are retried by
/// the balancer on the other replica, so the client sees fewer 429s than the busy replica
/// sent; with both busy, the client gets the 429 and its Retry-After.
#[test]
fn a_job_one_replica_sheds_is_retried_on_the_other() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fleet = start("fleet-failover", 2, "[router]\ncpu_permits = 1\n", &rt);
    let replicas = fleet.replicas();
    let occupy = |base: &str| {
        let base = base.to_string();
        std::thread::spawn(move || post(&agent(), &base, &option_job(90_000_000, 60_000)).0)
    };
    let wait_busy = |base: &str| {
        let start = std::time::Instant::now();
        while metric(&scrape(&agent(), base), "helix_cpu_permits_in_use", &[]) < 1.0 {
            assert!(start.elapsed() < Duration::from_secs(20), "{base} never got busy");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let busy = occupy(&replicas[0]);
    wait_busy(&replicas[0]);
    let agent = agent();
    // A few milliseconds of work in 30 ms: it cannot wait out the busy replica's long job.
    let short = option_job(200_000, 30);
    let client_429 = (0..30).filter(|_| post(&agent, &fleet.balancer, &short).0 == 429).count();
    let sent_429 = metric(&scrape(&agent, &replicas[0]), "helix_http_responses_total", &[("code", "429")]);
    assert!(sent_429 >= 1.0, "the balancer never tried the busy replica");
    eprintln!("one replica busy: the busy replica sent {sent_429} 429s, the client saw {client_429} of 30");
    assert!((client_429 as f64) < sent_429, "the client saw {client_429} 429s, the busy replica sent {sent_429}");
    // Both busy: the balancer has nowhere to retry, and passes the 429 on.
    let other = occupy(&replicas[1]);
    wait_busy(&replicas[1]);
    let (status, retry, body) = post(&agent, &fleet.balancer, &short);
    assert_eq!(status, 429, "{body}");
    assert!(retry.expect("Retry-After").parse::<u64>().unwrap() >= 1);
    assert_eq!((busy.join().unwrap(), other.join().unwrap()), (200, 200));
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}

/// Clients sending jobs through the balancer until `stop`: each answer's status, or 0 for a
/// request that got no HTTP answer at all.
fn load(
    balancer: &str,
    clients: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<u16>>> {
    (0..clients)
        .map(|_| {
            let (base, stop) = (balancer.to_string(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut codes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent =
                        agent.post(format!("{base}/v1/jobs")).send(option_job(200_000, 5_000).to_string().as_bytes());
                    codes.push(sent.map_or(0, |r| r.status().as_u16()));
                }
                codes
            })
        })
        .collect()
}

fn finish(stop: &std::sync::atomic::AtomicBool, clients: Vec<std::thread::JoinHandle<Vec<u16>>>) -> Vec<u16> {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
}

/// Waits until replica `i` has served a job sent through the balancer since `before` jobs: nginx
/// leaves a replica out for `FAIL_TIMEOUT` after a refused connection, so "ready" is not yet
/// "in rotation".
fn wait_in_rotation(fleet: &Fleet, i: usize, before: f64) {
    let (agent, base) = (agent(), fleet.replicas()[i].clone());
    let start = std::time::Instant::now();
    while metric(&scrape(&agent, &base), "helix_jobs_submitted_total", &[]) <= before {
        assert!(start.elapsed() < FAIL_TIMEOUT * 5, "replica {i} got no job through the balancer");
        assert_eq!(post(&agent, &fleet.balancer, &option_job(2000, 1000)).0, 200);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Refused connects nginx logged: one per request it sent to a dead replica.
fn refused_connects(fleet: &Fleet) -> usize {
    let log = std::fs::read_to_string(fleet.run_dir().join("nginx-error.log")).unwrap_or_default();
    log.matches("connect() failed (111").count()
}

/// A replica killed with SIGKILL under load: every request gets an answer, only jobs that were
/// in flight on it may fail (the balancer retries even those: they never answered), and the
/// balancer stops sending to it (a probe per `FAIL_TIMEOUT`, not a share of every request);
/// once restarted on its port, it serves again.
#[test]
fn a_killed_replica_costs_at_most_its_jobs_in_flight_and_serves_again_after_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut fleet = start("fleet-kill", 2, "", &rt);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = load(&fleet.balancer, 4, &stop);
    std::thread::sleep(Duration::from_millis(500));
    fleet.kill(0);
    // Three fail_timeouts with the replica dead.
    std::thread::sleep(FAIL_TIMEOUT * 3);
    let codes = finish(&stop, clients);
    let unanswered = codes.iter().filter(|&&c| c == 0).count();
    let failed: Vec<u16> = codes.iter().copied().filter(|&c| c != 200 && c != 0).collect();
    let refused = refused_connects(&fleet);
    eprintln!(
        "killed under load: {} requests, {unanswered} without an answer, failures {failed:?}, {refused} sent to the dead replica",
        codes.len()
    );
    assert_eq!(unanswered, 0, "every request gets an answer");
    // At most the 4 clients' requests were in flight on the killed replica.
    assert!(failed.len() <= 4, "{} failures: {failed:?}", failed.len());
    assert!(codes.len() >= 200, "the load ran: {} requests", codes.len());
    // Ejected: each client may meet it once when it dies and once per fail_timeout after;
    // kept in rotation (max_fails=0), it would cost about half of the requests.
    assert!(refused <= 4 * 4, "nginx kept sending to the dead replica: {refused} refused connects");
    rt.block_on(fleet.restart(0)).unwrap();
    wait_in_rotation(&fleet, 0, 0.0);
    let agent = agent();
    let after: Vec<u16> = (0..100).map(|_| post(&agent, &fleet.balancer, &option_job(2000, 1000)).0).collect();
    assert!(after.iter().all(|&c| c == 200), "{after:?}");
    let served = metric(&scrape(&agent, &fleet.replicas()[0]), "helix_jobs_submitted_total", &[]);
    assert!(served >= 20.0, "the restarted replica served {served} of 100");
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}

/// A rolling restart under continuous load (SIGTERM one replica, wait for its drain and exit,
/// start it again, wait until the balancer sends it jobs, then the next) loses no request: a
/// draining replica refuses new jobs with 503, which the balancer retries on the other.
#[test]
fn a_rolling_restart_under_load_loses_no_request() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut fleet = start("fleet-rolling", 2, "", &rt);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = load(&fleet.balancer, 4, &stop);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..2 {
        assert_eq!(rt.block_on(fleet.drain(i, Duration::from_secs(30))).unwrap(), 0, "replica {i} drains and exits 0");
        rt.block_on(fleet.restart(i)).unwrap();
        wait_in_rotation(&fleet, i, 0.0);
    }
    let codes = finish(&stop, clients);
    let lost: Vec<u16> = codes.iter().copied().filter(|&c| c != 200).collect();
    eprintln!("rolling restart under load: {} requests, not answered 200: {lost:?}", codes.len());
    assert!(lost.is_empty(), "{} of {} requests lost: {lost:?}", lost.len(), codes.len());
    assert!(codes.len() >= 100, "the load ran: {} requests", codes.len());
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}

/// A process still running (a zombie, dead but not yet reaped, is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// A fleet dropped without `stop` (a test that fails, a supervisor that errors) leaves no
/// nginx behind: neither its master nor the workers, which outlive a killed master.
#[test]
fn a_dropped_fleet_leaves_no_nginx_running() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fleet = start("fleet-drop", 1, "", &rt);
    let master: u32 = std::fs::read_to_string(fleet.run_dir().join("nginx.pid")).unwrap().trim().parse().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    let workers: Vec<u32> = children.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(running(master) && !workers.is_empty() && workers.iter().all(|&w| running(w)), "{master} {workers:?}");
    drop(fleet);
    std::thread::sleep(Duration::from_millis(200));
    for pid in std::iter::once(master).chain(workers) {
        assert!(!running(pid), "nginx process {pid} still runs");
    }
}

/// Sends `job` to `base` with its body held back `delay` after the headers (a slow client, or
/// a wait in front of the balancer); the status and the JSON answer.
fn post_slowly(base: &str, job: &Value, delay: Duration) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = job.to_string();
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(delay);
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // A chunked answer: the JSON object sits between the first '{' and the last '}'.
    let json = json.find('{').and_then(|a| json.rfind('}').map(|b| &json[a..=b])).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// The balancer stamps a request when it arrives (X-Request-Start), and the replica charges
/// the job for the time since: a job whose body took 300 ms to reach nginx is told it spent
/// them, and a job whose budget went by before it reached a replica is not run.
#[test]
fn time_spent_before_a_replica_is_charged_to_the_job() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fleet = start("fleet-arrival", 2, "", &rt);
    let wait = Duration::from_millis(300);
    let (status, body) = post_slowly(&fleet.balancer, &option_job(2000, 5_000), wait);
    assert_eq!(status, 200, "{body}");
    let before = body["timings_us"]["before_server"].as_u64().expect("the replica saw the balancer's stamp");
    eprintln!("a 300 ms wait in front of the balancer was charged {before} us");
    assert!(before >= 290_000, "charged {before} us for a 300 ms wait");
    let (status, body) = post_slowly(&fleet.balancer, &option_job(2000, 200), wait);
    assert_ne!(status, 200, "a job whose 200 ms budget went by in front of the balancer ran: {body}");
    assert_eq!(
        (&body["status"], &body["decision"]["reason"]),
        (&json!("dropped"), &json!("deadline_passed")),
        "{body}"
    );
    eprintln!("its budget gone before it arrived: {status} {body}");
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}
