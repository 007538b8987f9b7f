//! Layer 11: `helix fleet`: several `helix serve` replicas on loopback ports behind a real nginx,
//! sharing one kernel store (a manifests folder they watch, or an object store they poll), started and stopped
//! together. The balancer's configuration is `deploy/nginx/helix.conf.template`, filled in
//! (`nginx`).

pub mod nginx;

use crate::replica::{Http, Replica};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a fleet.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// The `helix` binary the replicas run.
    pub binary: PathBuf,
    /// Replicas behind the balancer.
    pub replicas: usize,
    /// Where the balancer listens.
    pub listen: SocketAddr,
    /// Where every replica's kernels come from: a manifests folder they all watch, or a shared
    /// store's URL they all poll (`helix serve --manifests`).
    pub manifests: PathBuf,
    /// `helix serve` configuration (TOML) for every replica.
    pub server_config: String,
    /// The admin token every replica takes (`None`: admin API off).
    pub admin_token: Option<String>,
    /// The nginx binary.
    pub nginx: PathBuf,
    /// Replicas one attempt may try after connection failures (nginx's
    /// `proxy_next_upstream_tries`); a refused job is retried once on another replica anyway.
    pub tries: usize,
    /// Where the replicas' logs and nginx's configuration, pid and logs go.
    pub run_dir: PathBuf,
}

/// A running fleet: the replicas and the balancer in front of them.
pub struct Fleet {
    replicas: Vec<Replica>,
    cfg: FleetConfig,
    nginx: Child,
    /// `http://HOST:PORT` of the balancer.
    pub balancer: String,
}

impl Fleet {
    /// Starts every replica, waits until each is ready, then starts nginx in front of them and
    /// waits until a request through it is answered.
    pub async fn start(cfg: &FleetConfig) -> Result<Fleet, String> {
        if cfg.replicas == 0 {
            return Err("a fleet needs at least one replica (--replicas)".into());
        }
        std::fs::create_dir_all(&cfg.run_dir).map_err(|e| format!("cannot create {}: {e}", cfg.run_dir.display()))?;
        let mut replicas = Vec::with_capacity(cfg.replicas);
        for i in 0..cfg.replicas {
            let work = cfg.run_dir.join(format!("replica-{i}"));
            std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
            let token = cfg.admin_token.as_deref();
            replicas.push(Replica::start(&cfg.binary, &work, &cfg.manifests, &cfg.server_config, token, None).await?);
        }
        let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr()).collect();
        let conf = cfg.run_dir.join("nginx.conf");
        let text = nginx::render(cfg.listen, &addrs, cfg.tries, &cfg.run_dir);
        std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let stderr = std::fs::File::create(cfg.run_dir.join("nginx.stderr")).map_err(|e| e.to_string())?;
        // Its own process group: nginx's workers outlive a killed master, so a fleet that ends
        // early stops the whole group (see `Drop`).
        let nginx = Command::new(&cfg.nginx)
            .process_group(0)
            .arg("-p")
            .arg(&cfg.run_dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "nginx not found at {:?}: install it (Debian: apt-get install nginx-light; `cargo xtask helix fleet` does) or pass --nginx PATH",
                    cfg.nginx
                ),
                _ => format!("cannot start {}: {e}", cfg.nginx.display()),
            })?;
        let mut fleet = Fleet { replicas, cfg: cfg.clone(), nginx, balancer: format!("http://{}", cfg.listen) };
        fleet.wait_for_balancer().await?;
        Ok(fleet)
    }

    async fn wait_for_balancer(&mut self) -> Result<(), String> {
        let http = Http::new(&self.balancer);
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = http.get("/readyz", Duration::from_secs(2)).await {
                return Ok(());
            }
            if let Ok(Some(status)) = self.nginx.try_wait() {
                let log = std::fs::read_to_string(self.cfg.run_dir.join("nginx.stderr")).unwrap_or_default();
                return Err(format!("nginx exited with {status} before it answered:\n{log}"));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("nginx did not answer on {} within 30 s", self.balancer));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://HOST:PORT` of each replica, in the order started.
    pub fn replicas(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.base.clone()).collect()
    }

    /// The replicas themselves, in the order started (their memory, CPU time and logs).
    pub fn members(&self) -> &[Replica] {
        &self.replicas
    }

    /// The balancer's access log: one line per request, with the status of every replica it
    /// tried (`nginx::retried_refusals` reads it).
    pub fn access_log(&self) -> PathBuf {
        self.cfg.run_dir.join(nginx::ACCESS_LOG)
    }

    /// Whether every replica and the balancer are still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.nginx.try_wait(), Ok(None)) && self.replicas.iter_mut().all(Replica::is_running)
    }

    /// SIGKILLs replica `i`: it dies with its jobs in flight (what a crash or an OOM kill does).
    pub fn kill(&mut self, i: usize) {
        self.replicas[i].kill();
    }

    /// Drains replica `i` (SIGTERM: it refuses new jobs with 503 and finishes those it holds)
    /// and waits for its exit code.
    pub async fn drain(&mut self, i: usize, deadline: Duration) -> Result<i32, String> {
        self.replicas[i].terminate(deadline).await
    }

    /// Starts replica `i` again on its port and waits until it is ready.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        let port = self.replicas[i].addr().port();
        let work = self.cfg.run_dir.join(format!("replica-{i}"));
        let c = &self.cfg;
        let token = c.admin_token.as_deref();
        self.replicas[i] = Replica::start(&c.binary, &work, &c.manifests, &c.server_config, token, Some(port)).await?;
        Ok(())
    }

    /// The folder holding the configuration and the logs.
    pub fn run_dir(&self) -> &Path {
        &self.cfg.run_dir
    }

    /// Stops the balancer gracefully (SIGQUIT: it finishes the requests it holds), then drains
    /// every replica (SIGTERM); the replicas' exit codes.
    pub async fn stop(mut self, deadline: Duration) -> Result<Vec<i32>, String> {
        let _ = Command::new("kill").args(["-QUIT", &self.nginx.id().to_string()]).status();
        let start = Instant::now();
        while matches!(self.nginx.try_wait(), Ok(None)) {
            if start.elapsed() > deadline {
                // `Drop` stops the whole group.
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut codes = Vec::new();
        for r in std::mem::take(&mut self.replicas) {
            codes.push(r.stop(deadline).await?);
        }
        Ok(codes)
    }
}

impl Drop for Fleet {
    /// A fleet that ends early (an error) must not leave nginx running; the replicas stop
    /// themselves as they drop.
    fn drop(&mut self) {
        // The group: its workers too, which a SIGKILL of the master alone left running.
        let group = format!("-{}", self.nginx.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.nginx.wait();
    }
}
