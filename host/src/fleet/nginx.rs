//! The balancer's configuration: `deploy/nginx/helix.conf.template`, the file a team deploys
//! by hand, with its fields filled in for a fleet on this machine.

use std::net::SocketAddr;
use std::path::Path;

/// The template, as `deploy/` holds it.
pub const TEMPLATE: &str = include_str!("../../../deploy/nginx/helix.conf.template");

/// The template filled in: nginx on `listen` in front of `replicas`, each request trying at
/// most `tries` of them, writing its pid, log and temporary files under `run_dir`.
pub fn render(listen: SocketAddr, replicas: &[SocketAddr], tries: usize, run_dir: &Path) -> String {
    let servers: Vec<String> = replicas.iter().map(|r| format!("        server {r} max_fails=0;")).collect();
    TEMPLATE
        .replace("{{LISTEN}}", &listen.to_string())
        .replace("{{SERVERS}}", &servers.join("\n"))
        .replace("{{TRIES}}", &tries.max(1).to_string())
        .replace("{{RUN_DIR}}", &run_dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_filled_and_every_replica_listed() {
        let replicas: Vec<SocketAddr> =
            ["127.0.0.1:9001", "127.0.0.1:9002"].iter().map(|a| a.parse().unwrap()).collect();
        let conf = render("127.0.0.1:9000".parse().unwrap(), &replicas, 2, Path::new("/tmp/fleet"));
        assert!(!conf.contains("{{"), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:9000;"));
        assert!(
            conf.contains("server 127.0.0.1:9001 max_fails=0;") && conf.contains("server 127.0.0.1:9002 max_fails=0;")
        );
        assert!(conf.contains("proxy_next_upstream error timeout http_429 http_503 non_idempotent;"));
        assert!(conf.contains("proxy_next_upstream_tries 2;") && conf.contains("pid /tmp/fleet/nginx.pid;"));
        assert!(conf.contains(r#"proxy_set_header X-Request-Start "t=${msec}";"#));
    }
}
