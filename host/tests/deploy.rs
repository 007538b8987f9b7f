//! The deployment files in `deploy/` that cannot run here (Envoy, systemd, Kubernetes) still
//! name only what the server has: every `helix_*` metric they mention is one a running
//! `helix serve` exports, and every probe path they use answers (through nginx).

use helix_host::fleet::{Fleet, FleetConfig};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

mod support;
use support::{agent, bundled_copy, free_port, nginx, repo, temp_dir};

/// The `helix_…` words in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("helix_") {
        let word: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        names.insert(word);
    }
    names
}

#[test]
fn deploy_files_name_only_metrics_and_probes_the_server_has() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // One replica behind nginx: the probes are asked through the balancer, as a platform asks.
    let cfg = FleetConfig {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_helix")),
        replicas: 1,
        listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        manifests: bundled_copy("deploy"),
        server_config: String::new(),
        admin_token: None,
        nginx: nginx(),
        tries: 1,
        run_dir: temp_dir("deploy-run"),
    };
    let fleet = rt.block_on(Fleet::start(&cfg)).unwrap();
    let agent = agent();
    let exported =
        agent.get(format!("{}/metrics", fleet.balancer)).call().unwrap().body_mut().read_to_string().unwrap();
    let exported = metric_names(&exported);
    let files =
        ["deploy/envoy/envoy.yaml", "deploy/systemd/helix.service", "deploy/kubernetes/helix.yaml", "deploy/README.md"];
    let mut named = 0;
    for file in files {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for name in metric_names(&text) {
            assert!(exported.contains(&name), "{file} names {name}, which helix serve does not export");
            named += 1;
        }
        for probe in ["/readyz", "/healthz"] {
            if text.contains(probe) {
                let status = agent.get(format!("{}{probe}", fleet.balancer)).call().unwrap().status();
                assert_eq!(status, 200, "{file} probes {probe}");
            }
        }
    }
    assert!(named >= 2, "the Kubernetes autoscaler names its metric");
    rt.block_on(fleet.stop(Duration::from_secs(30))).unwrap();
}
