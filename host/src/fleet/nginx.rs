//! The balancer's configuration: `deploy/nginx/helix.conf.template`, the file a team deploys
//! by hand, with its fields filled in for a fleet on this machine.

use std::net::SocketAddr;
use std::path::Path;

/// The template, as `deploy/` holds it.
pub const TEMPLATE: &str = include_str!("../../../deploy/nginx/helix.conf.template");

/// How long nginx leaves a replica out after a refused connection or a timeout: the longest a
/// restarted replica waits for its first job, and the period at which a dead one costs a probe.
pub const FAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The access log's file name in the run folder.
pub const ACCESS_LOG: &str = "access.log";

/// Jobs a replica refused (429 or 503) that the balancer sent on to another replica, counted
/// in an access log of the template's `helix_upstreams` format over the requests answered at
/// `since` (Unix seconds) or later: every refusal but a request's last answer. The replicas
/// counted each of them as a drop, the client saw none of them.
pub fn retried_refusals(access_log: &str, since: f64) -> u64 {
    access_log
        .lines()
        .filter(|line| line.split(' ').next().and_then(|t| t.parse::<f64>().ok()).is_some_and(|t| t >= since))
        .filter_map(|line| line.split('"').nth(3))
        .map(|statuses| {
            let tried: Vec<&str> = statuses.split([',', ':']).map(str::trim).collect();
            tried[..tried.len().saturating_sub(1)].iter().filter(|s| matches!(**s, "429" | "503")).count() as u64
        })
        .sum()
}

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
                "    upstream helix_except_{i} {{\n        least_conn;\n{}\n        keepalive 256;\n    }}",
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
        assert!(conf.contains(&format!("access_log /tmp/fleet/{ACCESS_LOG} helix_upstreams")));
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
        assert!(conf.contains("client_body_buffer_size 1m;"), "job bodies are never spooled to disk");
        assert_eq!(conf.matches("proxy_set_header X-Request-Start $helix_arrival;").count(), 2);
    }

    #[test]
    fn refusals_sent_on_are_counted_and_final_answers_are_not() {
        let log = "0.5 200 \"127.0.0.1:1 : 127.0.0.1:2\" \"429 : 200\" 0.01\n\
                   1.0 200 \"127.0.0.1:1\" \"200\" 0.01\n\
                   1.1 200 \"127.0.0.1:1 : 127.0.0.1:2\" \"429 : 200\" 0.02\n\
                   1.2 429 \"127.0.0.1:2 : 127.0.0.1:1\" \"429 : 429\" 0.01\n\
                   1.3 500 \"127.0.0.1:1, 127.0.0.1:2 : 127.0.0.1:3\" \"502, 503 : 500\" 0.3\n\
                   1.4 400 \"-\" \"-\" 0.0\n";
        assert_eq!(retried_refusals(log, 1.0), 3);
        assert_eq!(retried_refusals(log, 0.0), 4);
    }
}
