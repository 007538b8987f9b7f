//! The Prometheus and Grafana assets in `deploy/`: promtool checks the scrape config and the
//! rules and runs the rules' unit tests; every metric the rules and the dashboard name is one a
//! live `helix serve` exports; and a real Prometheus scraping a real `helix serve` counts
//! exactly the jobs sent and evaluates every rule without an error.
//!
//! promtool and Prometheus come from `HELIX_PROMTOOL` and `HELIX_PROMETHEUS`, which
//! `cargo xtask test` sets (installing Debian's `prometheus` package when they are missing).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{agent, bundled_copy, free_port, post, repo, temp_dir};

const RULES: &str = "deploy/prometheus/rules/helix.rules.yml";
const RULES_TEST: &str = "deploy/prometheus/tests/helix.rules.test.yml";
const CONFIG: &str = "deploy/prometheus/prometheus.yml";
const DASHBOARD: &str = "deploy/grafana/helix-dashboard.json";

/// How long a server gets to come up, and Prometheus to see what the test waits for.
const PATIENCE: Duration = Duration::from_secs(90);

/// A tool the tests were given through `var`; they fail without it rather than skip.
fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run `cargo xtask test`, which installs Debian's prometheus package and sets it")
    });
    let runs = Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(runs, "{var}={} does not run: run `cargo xtask test`, which installs it", path.display());
    path
}

/// A child process killed (and reaped) when dropped, so a failing test leaves no server behind.
struct Killed {
    child: Child,
    log: PathBuf,
}

impl Killed {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it gives an answer, for at most `PATIENCE`; `what` and the
/// last state `check` reported explain a timeout.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(answer) => return answer,
            Err(state) if start.elapsed() > PATIENCE => panic!("{what} within {PATIENCE:?}; last: {state}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `helix serve` on a free loopback port.
struct Helix {
    process: Killed,
    base: String,
}

impl Helix {
    /// Starts a replica serving `manifests` (a folder or a store URL) with `config` (TOML) and
    /// waits until it is ready.
    fn start(tag: &str, manifests: &str, config: &str) -> Helix {
        let port = free_port();
        let dir = temp_dir(&format!("{tag}-helix"));
        std::fs::write(dir.join("helix.toml"), config).unwrap();
        let log = dir.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_helix"))
            .args(["serve", "--config", dir.join("helix.toml").to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--manifests", manifests])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("helix starts");
        let helix = Helix { process: Killed { child, log }, base: format!("http://127.0.0.1:{port}") };
        let agent = agent();
        wait_for("helix serve ready", || match agent.get(format!("{}/readyz", helix.base)).call() {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{:?}\n{}", other.map(|r| r.status()), helix.process.log_text())),
        });
        helix
    }

    fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn metrics_text(&self) -> String {
        agent().get(format!("{}/metrics", self.base)).call().unwrap().body_mut().read_to_string().unwrap()
    }
}

/// An instant vector from Prometheus: each sample's labels and value.
type Samples = Vec<(BTreeMap<String, String>, f64)>;

/// A real Prometheus on a free loopback port, with its own storage folder.
struct Prometheus {
    process: Killed,
    base: String,
    agent: ureq::Agent,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and evaluating the repository's rules
    /// every second, and waits until it is ready.
    fn start(tag: &str, target: &str) -> Prometheus {
        let dir = temp_dir(&format!("{tag}-prometheus"));
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: helix\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = repo().join(RULES).display(),
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(tool("HELIX_PROMETHEUS"))
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        let agent = agent();
        let prometheus = Prometheus { process: Killed { child, log }, base: format!("http://127.0.0.1:{port}"), agent };
        wait_for("prometheus ready", || match prometheus.agent.get(format!("{}/-/ready", prometheus.base)).call() {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{:?}\n{}", other.map(|r| r.status()), prometheus.process.log_text())),
        });
        prometheus
    }

    /// GETs an API path (`/api/v1/...`) with query parameters; the JSON answer.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let text = req.call().expect("prometheus answers").body_mut().read_to_string().unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} answered {text:?}: {e}"))
    }

    /// The instant vector `expr` evaluates to now: each sample's labels and value.
    fn query(&self, expr: &str) -> Result<Samples, String> {
        let answer = self.api("/api/v1/query", &[("query", expr)]);
        if answer["status"] != "success" {
            return Err(format!("{expr}: {answer}"));
        }
        let samples = answer["data"]["result"].as_array().ok_or(format!("{expr}: not a vector: {answer}"))?;
        Ok(samples
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                (labels, s["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect())
    }

    /// Every loaded rule, as Prometheus parsed it.
    fn rules(&self) -> Vec<Value> {
        let answer = self.api("/api/v1/rules", &[]);
        let groups = answer["data"]["groups"].as_array().unwrap_or_else(|| panic!("no rule groups: {answer}"));
        groups.iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect()
    }
}

/// The metric names a PromQL expression selects: its identifiers that are not functions,
/// aggregations, keywords, label names (inside `{}` and the lists after `by`, `without`, `on`,
/// `ignoring`, `group_left`, `group_right`) or Grafana variables (`$job`, `$__rate_interval`).
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const LABEL_LISTS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
    const KEYWORDS: [&str; 7] = ["bool", "and", "or", "unless", "offset", "inf", "nan"];
    // Aggregations may take their `by (...)` before the parenthesis: `sum by (le) (x)`.
    const AGGREGATIONS: &str = "sum min max avg group stddev stdvar count count_values bottomk topk quantile";
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let next_non_space = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    // The index just past the bracket that closes the one at `open`, skipping quoted strings.
    let close = |open: usize, closing: char| {
        let mut i = open + 1;
        let mut quote = None;
        while i < chars.len() {
            match (quote, chars[i]) {
                (Some(_), '\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, c) if c == closing => return i + 1,
                (None, c @ ('"' | '\'' | '`')) => quote = Some(c),
                _ => {}
            }
            i += 1;
        }
        chars.len()
    };
    let mut names = BTreeSet::new();
    let mut label_list_next = false;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => i = close(i, '}'),
            '[' => i = close(i, ']'),
            '(' if label_list_next => {
                label_list_next = false;
                i = close(i, ')');
            }
            q @ ('"' | '\'' | '`') => {
                // A string argument (label_replace's), as if bracketed by its own quote.
                i = close(i, q);
            }
            '$' => {
                i += 1;
                while i < chars.len() && (ident(chars[i]) || chars[i] == '{' || chars[i] == '}') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number or a duration (0.99, 1e-3, 5m).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if ident(c) => {
                let start = i;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let call = next_non_space(i) == Some('(');
                if LABEL_LISTS.contains(&lower.as_str()) {
                    label_list_next = call;
                } else if !(call || KEYWORDS.contains(&lower.as_str()) || AGGREGATIONS.split(' ').any(|a| a == lower)) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_promql_reader_finds_metric_names_and_nothing_else() {
    let expr = r#"sum by (strategy, le) (rate(helix_jobs_total{status!="rejected", job=~"$job"}[$__rate_interval]))
        / on (instance) group_left (version) max without (kernel) (helix:jobs:rate5m offset 5m) > bool 0.1
        or label_replace(up, "a", "b{c}", "d", "e") * 1e-3 unless count(helix_ready == 1)"#;
    let names: Vec<_> = promql_metric_names(expr).into_iter().collect();
    assert_eq!(names, ["helix:jobs:rate5m", "helix_jobs_total", "helix_ready", "up"]);
}

/// The series names `/metrics` text can hold: every family's name, a histogram's as its
/// `_bucket`, `_sum` and `_count` (a family is declared even while it has no samples).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap();
            if kind == "histogram" {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
            } else {
                names.insert(name.to_string());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            names.insert(line.split(['{', ' ']).next().unwrap().to_string());
        }
    }
    names
}

/// The metric families `/metrics` text declares (a histogram's by its own name).
fn family_names(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).map(str::to_string).collect()
}

/// The `helix_…` words in `text` (metric names in comments, descriptions and annotations).
fn helix_words(text: &str) -> BTreeSet<String> {
    text.match_indices("helix_")
        .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == ':'))
        .map(|(i, _)| text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

/// The names after `- record:` or `- alert:` in the rules file.
fn rule_names(rules: &str, kind: &str) -> Vec<String> {
    let prefix = format!("- {kind}: ");
    rules.lines().filter_map(|l| l.trim().strip_prefix(prefix.as_str())).map(str::to_string).collect()
}

/// Runs promtool with `args` from the repository's root; its output, after checking it passed.
fn promtool(args: &[&str]) -> String {
    let out = Command::new(tool("HELIX_PROMTOOL")).args(args).current_dir(repo()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

#[test]
fn promtool_accepts_the_config_and_rules_and_the_rules_pass_their_unit_tests() {
    // The config's rule_files are relative to it, so this loads and checks the rules too.
    let config = promtool(&["check", "config", CONFIG]);
    assert!(config.contains(RULES.trim_start_matches("deploy/prometheus/")), "{config}");
    let rules_text = std::fs::read_to_string(repo().join(RULES)).unwrap();
    let (records, alerts) = (rule_names(&rules_text, "record"), rule_names(&rules_text, "alert"));
    let checked = promtool(&["check", "rules", RULES]);
    let found = format!("SUCCESS: {} rules found", records.len() + alerts.len());
    assert!(checked.contains(&found), "promtool found other rules than the file's lines say:\n{checked}");
    let tested = promtool(&["test", "rules", RULES_TEST]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Every alert is tested both quiet and firing, and every recorded series is evaluated.
    let unit_tests = std::fs::read_to_string(repo().join(RULES_TEST)).unwrap();
    let lines: Vec<&str> = unit_tests.lines().map(str::trim).collect();
    for alert in &alerts {
        let checks: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == format!("- alertname: {alert}"))
            .map(|(i, _)| lines[i + 2])
            .collect();
        assert!(checks.contains(&"exp_alerts: []"), "{alert} is never tested quiet: {checks:?}");
        assert!(checks.contains(&"exp_alerts:"), "{alert} is never tested firing: {checks:?}");
    }
    for record in &records {
        assert!(lines.contains(&format!("- expr: {record}").as_str()), "{record} has no promql_expr_test");
    }
}

/// A replica on a shared folder store (so it exports the store's metrics too) that has run a
/// job of each outcome.
fn replica_with_history(tag: &str) -> Helix {
    let store_dir = temp_dir(&format!("{tag}-store"));
    let url = format!("file://{}", store_dir.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = helix_host::catalog::Store::open(&url, &BTreeMap::new()).unwrap();
    let engine = helix_host::wasm::WasmEngine::new(Default::default()).unwrap();
    rt.block_on(helix_host::catalog::publish_folder(&bundled_copy(tag), &store, Some(engine))).unwrap();
    let helix = Helix::start(tag, &url, "[store]\npoll_ms = 500\n");
    let agent = agent();
    let jobs = [
        json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": 64}}),
        json!({"kernel": "mc-option", "runtime": "wasm", "budget_ms": 1000, "seed": 1,
               "params": {"spot": 100, "strike": 100, "vol": 0.2, "maturity": 1, "paths": 2000}}),
        json!({"kernel": "mc-option", "budget_ms": 1000, "seed": 2, "target": {"relative_error": 0.05},
               "params": {"spot": 100, "strike": 100, "vol": 0.2, "maturity": 1}}),
        json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": -1}}),
        json!({"kernel": "no-such-kernel", "budget_ms": 1000, "params": {}}),
    ];
    let statuses: Vec<u16> = jobs.iter().map(|job| post(&agent, &helix.base, job).0).collect();
    assert_eq!(statuses, [200, 200, 200, 400, 404], "{}", helix.process.log_text());
    helix
}

#[test]
fn the_rules_and_the_dashboard_name_only_metrics_a_live_server_exports() {
    let helix = replica_with_history("prom-names");
    let metrics_text = helix.metrics_text();
    let exported = exported_names(&metrics_text);
    let families = family_names(&metrics_text);
    let prometheus = Prometheus::start("prom-names", helix.address());

    // Prometheus parsed the rules file: its answer is the rules exactly as they are evaluated.
    let rules = prometheus.rules();
    let rules_text = std::fs::read_to_string(repo().join(RULES)).unwrap();
    let recorded: BTreeSet<String> = rule_names(&rules_text, "record").into_iter().collect();
    assert_eq!(rules.len(), recorded.len() + rule_names(&rules_text, "alert").len(), "{rules:?}");
    // `up` is Prometheus's own series for every target it scrapes.
    let known = |name: &str| exported.contains(name) || recorded.contains(name) || name == "up";
    for rule in &rules {
        let (name, query) = (rule["name"].as_str().unwrap(), rule["query"].as_str().unwrap());
        let names = promql_metric_names(query);
        assert!(!names.is_empty(), "rule {name} selects no metric: {query}");
        for metric in names {
            assert!(known(&metric), "rule {name} selects {metric}, which helix serve does not export: {query}");
        }
    }

    // Every panel's and variable's query, with the variables Grafana would fill in.
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(repo().join(DASHBOARD)).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap().to_string();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title} has a fixed datasource");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no queries"));
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title} has a fixed datasource");
            queries.push((title.clone(), t["expr"].as_str().unwrap().to_string()));
        }
    }
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables.iter().find(|v| v["type"] == "datasource").expect("a datasource variable");
    assert_eq!((&datasource["name"], &datasource["query"]), (&json!("datasource"), &json!("prometheus")));
    for v in variables.iter().filter(|v| v["type"] == "query") {
        let q = v["query"]["query"].as_str().unwrap();
        // label_values(SELECTOR, LABEL): the selector is PromQL, the label is not a metric.
        let selector = q.strip_prefix("label_values(").and_then(|s| s.rsplit_once(',')).map(|(s, _)| s);
        let selector = selector.unwrap_or_else(|| panic!("variable {} is not label_values(...): {q}", v["name"]));
        queries.push((format!("variable {}", v["name"]), selector.to_string()));
    }
    let mut shown = BTreeSet::new();
    for (title, expr) in &queries {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{title} selects no metric: {expr}");
        for metric in &names {
            assert!(known(metric), "{title} selects {metric}, which helix serve does not export: {expr}");
        }
        shown.extend(names);
        // Prometheus parses and evaluates it: a typo in PromQL is an error here, not in Grafana.
        let filled = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "helix")
            .replace("$instance", ".*")
            .replace("$kernel", ".*");
        prometheus.query(&filled).unwrap_or_else(|e| panic!("{title}: Prometheus refuses its query: {e}"));
    }
    for wanted in [
        "helix_jobs_total",
        "helix_decisions_total",
        "helix_job_duration_seconds_bucket",
        "helix_cpu_permits_in_use",
        "helix_cpu_queue_depth",
        "helix_capacity_shed_ratio",
        "helix_kernel_quarantined",
        "helix_kernel_cost_correction",
    ] {
        assert!(shown.contains(wanted), "the dashboard shows no {wanted}");
    }

    // Metric names in prose (descriptions, annotations, comments) are real ones too: a series,
    // or a family (a histogram's own name).
    for file in [RULES, RULES_TEST, CONFIG, DASHBOARD] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for word in helix_words(&text) {
            let real = exported.contains(&word) || families.contains(&word);
            assert!(real, "{file} names {word}, which helix serve does not export");
        }
    }
}

/// The samples of `answer` summed by the value of `label`.
fn by_label(answer: &Samples, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for (labels, v) in answer {
        *sums.entry(labels.get(label).cloned().unwrap_or_default()).or_insert(0.0) += v;
    }
    sums
}

/// Posts `completed` jobs that run, `rejected` ones with a bad parameter and `dropped` ones
/// whose budget no server could meet.
fn send_jobs(helix: &Helix, completed: usize, rejected: usize, dropped: usize) {
    let agent = agent();
    let run = json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": 64}});
    let bad = json!({"kernel": "hashmix", "budget_ms": 1000, "params": {"compute_cost": -1}});
    // About a minute of work (cost is per 64 units), and no degrade knob: refused at once.
    let hopeless = json!({"kernel": "hashmix", "budget_ms": 1, "params": {"compute_cost": 68_719_476_736u64}});
    for (job, n, status) in [(&run, completed, 200), (&bad, rejected, 400), (&hopeless, dropped, 422)] {
        for _ in 0..n {
            let (got, _, body) = post(&agent, &helix.base, job);
            assert_eq!(got, status, "{job} answered {body}");
        }
    }
}

#[test]
fn a_real_prometheus_counts_the_jobs_sent_and_evaluates_every_rule() {
    let helix = Helix::start("prom-live", bundled_copy("prom-live").to_str().unwrap(), "");
    let prometheus = Prometheus::start("prom-live", helix.address());
    let prometheus = &prometheus;
    let counted = |want: &[(&str, f64)]| {
        let want: BTreeMap<String, f64> = want.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        move || {
            let got = by_label(&prometheus.query("sum by (status) (helix_jobs_total{job=\"helix\"})")?, "status");
            if got == want { Ok(()) } else { Err(format!("{got:?}, want {want:?}")) }
        }
    };

    // One job of each outcome first, so each series exists (at 1) before the rest arrive: a
    // rate counts only the growth Prometheus saw, not a series' first value.
    send_jobs(&helix, 1, 1, 1);
    wait_for("the first jobs counted", counted(&[("completed", 1.0), ("rejected", 1.0), ("dropped", 1.0)]));
    send_jobs(&helix, 19, 4, 4);
    wait_for("every job counted", counted(&[("completed", 20.0), ("rejected", 5.0), ("dropped", 5.0)]));
    let submitted = prometheus.query("helix_jobs_submitted_total{job=\"helix\"}").unwrap();
    assert_eq!(submitted.iter().map(|(_, v)| v).sum::<f64>(), 30.0, "{submitted:?}");
    let reasons =
        by_label(&prometheus.query("helix_decisions_total{job=\"helix\",strategy=\"drop\"}").unwrap(), "reason");
    assert_eq!(reasons, BTreeMap::from([("budget_too_small".to_string(), 5.0)]));

    // The recording rules: one ready replica, a rate for each outcome seen growing, and a drop
    // ratio strictly between none and all (5 of 25 decided jobs dropped; the 5 rejected are
    // not decided).
    wait_for("the recording rules evaluated", || {
        let ready = prometheus.query("helix:ready_replicas:sum")?;
        let rates = by_label(&prometheus.query("helix:jobs:rate5m")?, "status");
        let drop_ratio = prometheus.query("helix:job_drop_ratio:rate5m")?;
        let growing = ["completed", "rejected", "dropped"].iter().all(|s| rates.get(*s).is_some_and(|r| *r > 0.0));
        let ratio_ok = drop_ratio.len() == 1 && drop_ratio[0].1 > 0.0 && drop_ratio[0].1 < 1.0;
        let ready_ok = ready.len() == 1 && ready[0].1 == 1.0 && ready[0].0.get("job").is_some_and(|j| j == "helix");
        if ready_ok && growing && rates.len() == 3 && ratio_ok {
            Ok(())
        } else {
            Err(format!("ready {ready:?}, rates {rates:?}, drop ratio {drop_ratio:?}"))
        }
    });

    // So many drops make HelixDropRatioHigh pending (it fires after 10 minutes), and every rule
    // evaluated against the real series without an error (a many-to-many match, say).
    wait_for("HelixDropRatioHigh pending", || {
        let alerts = prometheus.api("/api/v1/alerts", &[]);
        let pending = alerts["data"]["alerts"].as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "HelixDropRatioHigh"
                && a["labels"]["instance"] == helix.address()
                && a["state"] == "pending"
        });
        if pending { Ok(()) } else { Err(alerts.to_string()) }
    });
    wait_for("every rule evaluated", || {
        let rules = prometheus.rules();
        let unevaluated: Vec<&Value> = rules.iter().filter(|r| r["lastEvaluation"] == "0001-01-01T00:00:00Z").collect();
        if unevaluated.is_empty() { Ok(rules) } else { Err(format!("{unevaluated:?}")) }
    })
    .iter()
    .for_each(|rule| assert_eq!(rule["health"], "ok", "{rule}"));
    let quiet: Vec<Value> = prometheus.api("/api/v1/alerts", &[])["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] != "HelixDropRatioHigh")
        .cloned()
        .collect();
    assert!(quiet.is_empty(), "a healthy replica raised alerts: {quiet:?}");
}
