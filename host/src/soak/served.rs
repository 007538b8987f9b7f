//! What a soak attacks: one `helix serve` replica, or a fleet of them behind nginx sharing one
//! manifests folder. Traffic goes to the front (the replica, or the balancer); memory, CPU,
//! queues, logs and exit codes are read from every replica.

use crate::fleet::{Fleet, FleetConfig};
use crate::replica::Replica;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A fleet to soak instead of one replica.
#[derive(Clone, Debug)]
pub struct Balanced {
    /// Replicas behind the balancer, all watching the soak's manifests folder.
    pub replicas: usize,
    /// The nginx binary.
    pub nginx: PathBuf,
}

pub enum Served {
    One(Replica),
    Fleet(Fleet),
}

/// The admin token of every replica a soak starts.
pub const ADMIN_TOKEN: &str = "soak-admin-token";

impl Served {
    /// Starts one replica, or `balanced.replicas` behind nginx, on `manifests` with `config`.
    pub async fn start(
        binary: &Path,
        work: &Path,
        manifests: &Path,
        config: &str,
        balanced: Option<&Balanced>,
    ) -> Result<Served, String> {
        let Some(b) = balanced else {
            return Ok(Served::One(Replica::start(binary, work, manifests, config, Some(ADMIN_TOKEN), None).await?));
        };
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port for the balancer: {e}"))?;
        let cfg = FleetConfig {
            binary: binary.to_path_buf(),
            replicas: b.replicas,
            listen,
            manifests: manifests.to_path_buf(),
            server_config: config.to_string(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            nginx: b.nginx.clone(),
            tries: b.replicas,
            run_dir: work.join("fleet"),
        };
        Ok(Served::Fleet(Fleet::start(&cfg).await?))
    }

    /// `http://HOST:PORT` where traffic goes.
    pub fn front(&self) -> String {
        match self {
            Served::One(r) => r.base.clone(),
            Served::Fleet(f) => f.balancer.clone(),
        }
    }

    pub fn replicas(&self) -> &[Replica] {
        match self {
            Served::One(r) => std::slice::from_ref(r),
            Served::Fleet(f) => f.members(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self {
            Served::One(r) => r.is_running(),
            Served::Fleet(f) => f.is_running(),
        }
    }

    /// Stops everything (the balancer first, then a drain of every replica): each replica's exit
    /// code, and for a fleet the refusals its balancer sent on to another replica in requests
    /// answered since `since` (its access log, complete once nginx has exited).
    pub async fn stop(
        self,
        deadline: Duration,
        since: SystemTime,
    ) -> (Vec<Result<i32, String>>, Option<Result<u64, String>>) {
        match self {
            Served::One(r) => (vec![r.stop(deadline).await], None),
            Served::Fleet(f) => {
                let log = f.access_log();
                let replicas = f.members().len();
                let codes = match f.stop(deadline).await {
                    Ok(codes) => codes.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e); replicas],
                };
                let retried = std::fs::read_to_string(&log)
                    .map(|text| crate::fleet::nginx::retried_refusals(&text, unix_seconds(since)))
                    .map_err(|e| format!("cannot read the balancer's access log {}: {e}", log.display()));
                (codes, Some(retried))
            }
        }
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
