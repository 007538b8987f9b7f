//! Layer 10: one `helix serve` replica as a child process, for the harnesses that run the real
//! binary (`fleet`, `soak`): on a free loopback port or a given one, with its log in a file, its
//! resident memory and CPU time read from `/proc`, stopped by SIGTERM (a drain) or SIGKILL (a
//! crash); and `Http`, the client that talks to it.

mod http;

pub use http::{Answer, Http};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `helix serve` child.
pub struct Replica {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    port: u16,
    /// Its stderr: the server's log.
    pub log: PathBuf,
}

impl Replica {
    /// Starts `binary serve` on `manifests` with `config` (TOML, written into `work`, which also
    /// holds the log) and `token` as the admin token (`None`: the admin API is off), on `port` (a
    /// replica restarted where its balancer expects it) or a free one, and waits until it is ready.
    pub async fn start(
        binary: &Path,
        work: &Path,
        manifests: &Path,
        config: &str,
        token: Option<&str>,
        port: Option<u16>,
    ) -> Result<Replica, String> {
        let port = match port {
            Some(p) => p,
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port: {e}"))?
                .port(),
        };
        let config_path = work.join("helix.toml");
        std::fs::write(&config_path, config).map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let log = work.join("serve.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut command = Command::new(binary);
        match token {
            Some(t) => command.env("HELIX_ADMIN_TOKEN", t),
            None => command.env_remove("HELIX_ADMIN_TOKEN"),
        };
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--manifests")
            .arg(manifests)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Replica { child, base: format!("http://127.0.0.1:{port}"), port, log };
        let http = Http::new(&server.base);
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = http.get("/readyz", Duration::from_secs(2)).await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("helix serve exited with {status} before it was ready:\n{}", server.log_tail()));
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = server.child.kill();
                return Err(format!("helix serve was not ready within 120 s:\n{}", server.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in bytes (`None` if it cannot be read, e.g. the process is gone).
    pub fn resident_bytes(&self) -> Option<u64> {
        crate::machine::resident_bytes_of(&self.pid().to_string())
    }

    /// CPU seconds it has used so far (`None` if they cannot be read).
    pub fn cpu_seconds(&self) -> Option<f64> {
        crate::machine::cpu_seconds_of(&self.pid().to_string())
    }

    /// SIGKILL: the process dies at once, its jobs in flight with it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log lines that report a panic.
    pub fn panics_in_log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter(|l| l.contains("panicked")).map(str::to_string).collect()
    }

    /// The last 30 lines of its log (for an error message).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then waits for the exit: its code, or an error past `deadline`.
    pub async fn stop(mut self, deadline: Duration) -> Result<i32, String> {
        self.terminate(deadline).await
    }

    /// `stop`, keeping the (exited) server: a replica a fleet restarts in its place.
    pub async fn terminate(&mut self, deadline: Duration) -> Result<i32, String> {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        if !sent.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
            return Err("could not send SIGTERM".into());
        }
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status.code().unwrap_or(-1)),
                Ok(None) if start.elapsed() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                _ => {
                    let _ = self.child.kill();
                    return Err(format!("no exit within {} s of SIGTERM", deadline.as_secs()));
                }
            }
        }
    }
}

impl Drop for Replica {
    /// A harness that ends early (an error) must not leave the server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies the manifests folder (its files, and the files of its subfolders) into `to`.
pub fn copy_manifests(from: &Path, to: &Path) -> Result<(), String> {
    let copy_dir = |src: &Path, dst: &Path| -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dst)?;
        let mut subdirs = Vec::new();
        for e in std::fs::read_dir(src)? {
            let p = e?.path();
            if p.is_file() {
                std::fs::copy(&p, dst.join(p.file_name().expect("a file has a name")))?;
            } else if p.is_dir() {
                subdirs.push(p);
            }
        }
        Ok(subdirs)
    };
    let err = |e: std::io::Error| format!("cannot copy {} to {}: {e}", from.display(), to.display());
    for sub in copy_dir(from, to).map_err(err)? {
        copy_dir(&sub, &to.join(sub.file_name().expect("a folder has a name"))).map_err(err)?;
    }
    Ok(())
}
