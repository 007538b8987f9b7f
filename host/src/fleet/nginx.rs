//! The balancer's configuration: `deploy/nginx/helix.conf.template`, the file a team deploys
//! by hand, with its fields filled in for a fleet on this machine.

use std::net::SocketAddr;
use std::path::Path;

/// The template, as `deploy/` holds it.
pub const TEMPLATE: &str = include_str!("../../../deploy/nginx/helix.conf.template");

/// How long nginx leaves a replica out after a refused connection or a timeout: the longest a
/// restarted replica waits for its first job, and the period at which a dead one costs a probe.
pub const FAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The template filled in: nginx on `listen` in front of `replicas`, each request trying at
/// most `tries` of them, writing its pid, log and temporary files under `run_dir`.
pub fn render(listen: SocketAddr, replicas: &[SocketAddr], tries: usize, run_dir: &Path) -> String {
    let server = |r: &SocketAddr| format!("        server {r} max_fails=1 fail_timeout={}s;", FAIL_TIMEOUT.as_secs());
    let servers: Vec<String> = replicas.iter().map(server).collect();
    let mut groups = Vec::new();
    let mut map = Vec::new();
    if replicas.len() > 1 {
        for (i, r) in replicas.iter().enumerate() {
            let others: Vec<String> = replicas.iter().filter(|o| *o != r).map(server).collect();
            groups.push(format!(
                "    upstream helix_except_{i} {{\n        least_conn;\n{}\n        keepalive 16;\n    }}",
                others.join("\n")
            ));
            let pattern = r.to_string().replace('.', "\\.");
            map.push(format!("        ~(^|\\s){pattern}$ helix_except_{i};"));
        }
    }
    TEMPLATE
        .replace("{{LISTEN}}", &listen.to_string())
        .replace("{{SERVERS}}", &servers.join("\n"))
        .replace("{{RETRY_GROUPS}}", &groups.join("\n"))
        .replace("{{RETRY_MAP}}", &map.join("\n"))
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
            conf.contains("server 127.0.0.1:9001 max_fails=1 fail_timeout=2s;")
                && conf.contains("server 127.0.0.1:9002 max_fails=1 fail_timeout=2s;")
        );
        // Refusals are caught and retried, never counted as failures.
        assert!(conf.contains("proxy_next_upstream error timeout non_idempotent;") && !conf.contains("http_429"));
        assert!(
            conf.contains("error_page 429 503 = @another;") && conf.contains("proxy_pass http://$helix_retry_group;")
        );
        // A job 9001 refused goes to the group without it, and the other way round.
        assert!(conf.contains(r"~(^|\s)127\.0\.0\.1:9001$ helix_except_0;"), "{conf}");
        let group =
            |i: usize| conf.split(&format!("upstream helix_except_{i} {{")).nth(1).unwrap().split('}').next().unwrap();
        assert!(group(0).contains("127.0.0.1:9002") && !group(0).contains("127.0.0.1:9001"));
        assert!(group(1).contains("127.0.0.1:9001") && !group(1).contains("127.0.0.1:9002"));
        assert!(conf.contains("proxy_next_upstream_tries 2;") && conf.contains("pid /tmp/fleet/nginx.pid;"));
        assert!(conf.contains(r#"set $helix_arrival "t=${msec}";"#));
        assert_eq!(conf.matches("proxy_set_header X-Request-Start $helix_arrival;").count(), 2);
    }
}
