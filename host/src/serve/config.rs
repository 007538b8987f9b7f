//! `helix serve` settings: a TOML file, then command-line flags over it. Every field has a
//! default, so the bundled kernels serve on loopback with no file at all.

use crate::catalog::StoreConfig;
use crate::config::RouterConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `helix serve` is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The address and port to listen on (loopback, port 8080, by default).
    pub listen: SocketAddr,
    /// Where the kernels come from: a manifests folder (read at start, then watched), or a
    /// shared store's URL (`s3://BUCKET/PREFIX`, `file:///FOLDER`; see `store`).
    pub manifests: PathBuf,
    /// How often the folder is checked for new, changed and removed manifests; 0 turns the
    /// watch off (`POST /v1/admin/reload` still works).
    pub watch_interval_ms: u64,
    /// Largest job request body.
    pub max_body_bytes: usize,
    /// Largest kernel upload (manifest and module together).
    pub max_upload_bytes: usize,
    /// The admin bearer token. Prefer `admin_token_env`, which keeps it out of the file.
    pub admin_token: Option<String>,
    /// The environment variable holding the admin token, read when `admin_token` is unset.
    /// Without a token the admin endpoints are disabled.
    pub admin_token_env: String,
    /// On SIGTERM or Ctrl-C, how long jobs in flight get to finish.
    pub drain_timeout_ms: u64,
    /// Connections open at once; past it the server accepts no more until one closes (the
    /// rest wait in the kernel's backlog), so idle or stalled clients cannot exhaust it.
    pub max_connections: usize,
    /// A connection must deliver a request's headers within this (idle keep-alive connections
    /// count: they are closed after it).
    pub header_timeout_ms: u64,
    /// A request's body must arrive within this of the handler asking for it (408 otherwise).
    pub body_timeout_ms: u64,
    /// Seconds between one-line summaries in the log; 0 turns them off.
    pub summary_interval_s: u64,
    /// The window of `helix_capacity_shed_ratio`, seconds (at least 1).
    pub capacity_window_s: u64,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How a shared store is polled and reached (when `manifests` is a URL).
    pub store: StoreConfig,
    /// Lanes, queue caps, policy thresholds and the Wasm sandbox (including its cache folder).
    pub router: RouterConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            manifests: PathBuf::from("manifests"),
            watch_interval_ms: 500,
            max_body_bytes: 1 << 20,
            max_upload_bytes: 32 << 20,
            admin_token: None,
            admin_token_env: "HELIX_ADMIN_TOKEN".into(),
            drain_timeout_ms: 30_000,
            max_connections: 4096,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            summary_interval_s: 10,
            capacity_window_s: 10,
            log_format: LogFormat::Text,
            store: StoreConfig::default(),
            router: RouterConfig::default(),
        }
    }
}

/// Command-line values that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Replaces `listen` when set.
    pub listen: Option<SocketAddr>,
    /// Replaces `manifests` when set.
    pub manifests: Option<PathBuf>,
    /// Replaces `log_format` when set.
    pub log_format: Option<LogFormat>,
}

impl ServeConfig {
    /// The file at `path` (or the defaults), with `overrides` applied.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<ServeConfig, String> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => ServeConfig::default(),
        };
        config.listen = overrides.listen.unwrap_or(config.listen);
        config.manifests = overrides.manifests.unwrap_or(config.manifests);
        config.log_format = overrides.log_format.unwrap_or(config.log_format);
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let r = &self.router;
        if r.cpu_permits == 0 {
            return Err("router.cpu_permits must be at least 1".into());
        }
        if r.queue_capacity == 0 || r.batch_queue_capacity == 0 {
            return Err("router.queue_capacity and router.batch_queue_capacity must be at least 1".into());
        }
        let keep = r.policy.ration_keep;
        if !(keep > 0.0 && keep <= 1.0) {
            return Err(format!(
                "router.policy.ration_keep must be in (0, 1] (the share of its units a rationed job keeps), got {keep}"
            ));
        }
        if self.max_body_bytes == 0 || self.max_upload_bytes == 0 {
            return Err("max_body_bytes and max_upload_bytes must be at least 1".into());
        }
        if self.max_connections == 0 || self.header_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return Err("max_connections, header_timeout_ms and body_timeout_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The admin token, from the file or from the environment variable it names.
    pub fn resolve_admin_token(&self) -> Option<String> {
        self.admin_token.clone().or_else(|| std::env::var(&self.admin_token_env).ok()).filter(|t| !t.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_the_defaults() {
        let c = ServeConfig::load(None, Overrides::default()).unwrap();
        assert_eq!(c, ServeConfig::default());
        assert!(c.listen.ip().is_loopback());
    }

    #[test]
    fn the_example_file_spells_out_the_defaults() {
        let example: ServeConfig = toml::from_str(include_str!("../../../helix.example.toml")).unwrap();
        let mut expected = ServeConfig::default();
        // The one default that depends on the machine is commented out in the example.
        expected.router.cpu_permits = example.router.cpu_permits;
        assert_eq!(example, expected);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("helix-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("helix.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nmanifests = \"/srv/kernels\"\nmax_body_bytes = 4096\n\
             [router]\ncpu_permits = 3\nqueue_capacity = 17\n[router.policy]\ninline_max_us = 5.0\n",
        )
        .unwrap();
        let from_file = ServeConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(from_file.manifests, PathBuf::from("/srv/kernels"));
        assert_eq!((from_file.max_body_bytes, from_file.router.cpu_permits), (4096, 3));
        assert_eq!((from_file.router.queue_capacity, from_file.router.policy.inline_max_us), (17, 5.0));
        let overridden = ServeConfig::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                manifests: Some("here".into()),
                log_format: None,
            },
        )
        .unwrap();
        assert_eq!((overridden.listen.port(), overridden.manifests), (9100, PathBuf::from("here")));
        assert_eq!(overridden.max_body_bytes, 4096);
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlisten_port = 3\n").unwrap();
        let err = ServeConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.contains("unknown field `listen_port`"), "{err}");
        std::fs::write(&path, "[router]\ncpu_permits = 0\n").unwrap();
        let err = ServeConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.contains("cpu_permits"), "{err}");
        std::fs::write(&path, "[router.policy]\nration_keep = 0\n").unwrap();
        let err = ServeConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.contains("ration_keep must be in (0, 1]"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
