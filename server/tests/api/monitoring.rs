//! The monitoring that ships with the server (deploy/monitoring): alert
//! rules checked and unit-tested with promtool, Alertmanager's routing and
//! inhibition run end to end with a real Alertmanager delivering to a
//! webhook receiver here, and every metric the rules and dashboards query
//! checked against what a running server exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use serde_json::{json, Value};
use taskmaster_server::config::Secret;

use crate::edge::{free_port, repo};
use crate::helpers::TestApp;
use crate::scale::redis_url;
use crate::sockets::{Clients, WAIT};

fn monitoring() -> PathBuf {
    repo().join("deploy/monitoring")
}

fn run(program: &str, args: &[&str], dir: &PathBuf) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("{program} runs (scripts/test.sh installs it): {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?}:\n{text}");
    text
}

fn alert_rules() -> Value {
    let text = std::fs::read_to_string(monitoring().join("prometheus/alerts.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Every rule of alerts.yml: (alert name, recorded name, expression).
fn rules() -> Vec<(Option<String>, Option<String>, String)> {
    alert_rules()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .map(|rule| {
            (
                rule["alert"].as_str().map(str::to_owned),
                rule["record"].as_str().map(str::to_owned),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = monitoring().join("prometheus");
    run("promtool", &["check", "rules", "alerts.yml"], &dir);
    let tested = run("promtool", &["test", "rules", "alerts_test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Every alert is unit-tested, and has a runbook entry in docs/ALERTS.md.
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).unwrap();
    let catalogue = std::fs::read_to_string(repo().join("docs/ALERTS.md")).unwrap();
    let alerts: Vec<String> = rules()
        .into_iter()
        .filter_map(|(alert, _, _)| alert)
        .collect();
    assert!(alerts.len() >= 15, "{alerts:?}");
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no unit test in alerts_test.yml"
        );
        assert!(
            catalogue.contains(&format!("### {alert}\n")),
            "{alert} is not in docs/ALERTS.md"
        );
    }

    // The compose Prometheus configuration loads these rules.
    let config = std::fs::read_to_string(dir.join("prometheus.yml")).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("alerts.yml"), local.path().join("alerts.yml")).unwrap();
    std::fs::write(
        local.path().join("prometheus.yml"),
        config.replace("/etc/prometheus/alerts.yml", "alerts.yml"),
    )
    .unwrap();
    run(
        "promtool",
        &["check", "config", "prometheus.yml"],
        &local.path().to_path_buf(),
    );
    run(
        "amtool",
        &["check-config", "alertmanager/alertmanager.yml"],
        &monitoring(),
    );
}

/// Metric names in a PromQL expression: identifiers that are not functions,
/// keywords, label names or label values.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Label matchers and grouping lists name labels, not metrics; strings
    // and durations are neither.
    let mut text = String::new();
    let mut depth = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth > 0 => {}
            _ => text.push(c),
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut at = 0;
    while at < chars.len() {
        if !is_word(chars[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < chars.len() && (is_word(chars[at]) || chars[at] == '.') {
            at += 1;
        }
        let word: String = chars[start..at].iter().collect();
        let mut next = at;
        while next < chars.len() && chars[next] == ' ' {
            next += 1;
        }
        let called = chars.get(next) == Some(&'(');
        let grouping = [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ];
        if called && grouping.contains(&word.as_str()) {
            // A list of label names: skip to its `)`.
            while at < chars.len() && chars[at] != ')' {
                at += 1;
            }
            continue;
        }
        // Aggregations may take their grouping before the parenthesis
        // (`sum by (le) (...)`), so they are not always "called".
        let keyword = [
            "and",
            "or",
            "unless",
            "bool",
            "offset",
            "sum",
            "min",
            "max",
            "avg",
            "count",
            "group",
            "stddev",
            "stdvar",
            "topk",
            "bottomk",
            "quantile",
            "count_values",
        ]
        .contains(&word.as_str());
        let number = word.starts_with(|c: char| c.is_ascii_digit());
        if !called && !keyword && !number {
            names.insert(word);
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (instance, le) (rate(realtime_fanout_seconds_bucket{instance=~"$i"}[5m]))) > 0.1"#
        ),
        BTreeSet::from(["realtime_fanout_seconds_bucket".to_owned()])
    );
    assert_eq!(
        metric_names("(a_total - b) / c and taskmaster:x:rate5m > (14.4 * 0.001)"),
        BTreeSet::from(["a_total", "b", "c", "taskmaster:x:rate5m"].map(str::to_owned))
    );
}

/// The series a histogram or counter exports under the name a query uses.
fn base_name(name: &str) -> &str {
    ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

#[tokio::test]
async fn every_metric_the_alerts_and_dashboards_query_is_exported_by_the_server() {
    let app = TestApp::spawn_with(|config| {
        config.redis_url = Some(Secret::new(redis_url()));
        config.redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        // The primary stands in for a replica: its lag is measured all the same.
        config.database_replica_urls = vec![config.database_url.clone().unwrap()];
    })
    .await;
    // What a working day does: sign-in, writes, cached reads, a subscriber,
    // a browser's vitals.
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "Watched").await;
    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    clients.join("c", &project, None).await;
    let task = app
        .create_task(&user, &project, json!({"title": "seen"}))
        .await;
    assert_eq!(clients.events("c", 1, WAIT).await.len(), 1);
    let id = task["id"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(app.task(&user, &project, id).await.status, 200);
    }
    let vitals = app
        .post(
            "/api/v1/rum",
            &user.token,
            json!({"metrics": [{"name": "lcp", "value": 900.0}, {"name": "cls", "value": 0.01}]}),
        )
        .await;
    assert_eq!(vitals.status, 204, "{}", vitals.text);
    // The replica watcher samples once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let scrape = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| base_name(line.split(['{', ' ']).next().unwrap()))
        .collect();
    let rules = rules();
    let recorded: BTreeSet<String> = rules
        .iter()
        .filter_map(|(_, record, _)| record.clone())
        .collect();
    // `up` is Prometheus's own, per scrape target.
    let known =
        |name: &str| name == "up" || recorded.contains(name) || exported.contains(base_name(name));

    let mut queries: Vec<(String, String)> = rules
        .into_iter()
        .map(|(alert, record, expr)| (alert.or(record).unwrap(), expr))
        .collect();
    let dashboards = std::fs::read_dir(monitoring().join("grafana/dashboards")).unwrap();
    let mut titles = BTreeSet::new();
    for file in dashboards {
        let path = file.unwrap().path();
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
        titles.insert(dashboard["uid"].as_str().unwrap().to_owned());
        let panels = dashboard["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{} repeats a panel id",
                path.display()
            );
            for target in panel["targets"].as_array().into_iter().flatten() {
                queries.push((
                    format!("{} / {}", path.display(), panel["title"]),
                    target["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    assert_eq!(
        titles,
        [
            "taskmaster-api",
            "taskmaster-cache",
            "taskmaster-database",
            "taskmaster-realtime",
            "taskmaster-web-vitals"
        ]
        .map(str::to_owned)
        .into(),
    );
    let mut unknown = Vec::new();
    for (whose, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{whose}: no metric in {expr}");
        for name in names {
            if !known(&name) {
                unknown.push(format!("{whose}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "queried but not exported:\n{}\n\nexported: {exported:?}",
        unknown.join("\n")
    );
}

type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn receive(
    State((path, received)): State<(String, Received)>,
    axum::Json(body): axum::Json<Value>,
) {
    received.lock().unwrap().push((path, body));
}

/// The alert names and statuses delivered to one receiver.
fn delivered(received: &Received, receiver: &str) -> BTreeSet<(String, String)> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path == receiver)
        .flat_map(|(_, body)| body["alerts"].as_array().unwrap().clone())
        .map(|alert| {
            (
                alert["labels"]["alertname"].as_str().unwrap().to_owned(),
                alert["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn alertmanager_routes_pages_and_tickets_to_their_receivers_and_inhibits_the_redundant() {
    // The webhook receiver the two receivers' URLs are pointed at.
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route(
            "/page",
            post(receive).with_state(("page".to_owned(), received.clone())),
        )
        .route(
            "/ticket",
            post(receive).with_state(("ticket".to_owned(), received.clone())),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(monitoring().join("alertmanager/alertmanager.yml"))
        .unwrap()
        .replace("http://alert-webhook:9095", &format!("http://{hook}"));
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let mut alertmanager = tokio::process::Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus-alertmanager runs (scripts/test.sh installs it)");
    let client = crate::helpers::http_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}/api/v2");
    let started = Instant::now();
    while client.get(format!("{api}/status")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Alertmanager did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // What Prometheus sends when these rules fire, on instance a.
    let alert = |name: &str, severity: &str| {
        json!({
            "labels": {"alertname": name, "severity": severity, "instance": "a:9090", "job": "taskmaster"},
            "annotations": {"summary": name},
            "generatorURL": "http://prometheus:9090/graph",
        })
    };
    let alerts = json!([
        alert("ApiErrorBudgetFastBurn", "page"),
        alert("ApiErrorBudgetSlowBurn", "ticket"),
        alert("InstanceMemoryCritical", "page"),
        alert("InstanceMemoryHigh", "ticket"),
        alert("ReplicaDown", "ticket"),
    ]);
    let posted = client
        .post(format!("{api}/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "{}", posted.text().await.unwrap());

    // Pages go out after the page route's 10 s wait, tickets after 30 s.
    let firing = |names: &[&str]| -> BTreeSet<(String, String)> {
        names
            .iter()
            .map(|name| (name.to_string(), "firing".to_owned()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&received, "ticket").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no ticket delivered: {:?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let any stragglers of the same group round arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        delivered(&received, "page"),
        firing(&["ApiErrorBudgetFastBurn", "InstanceMemoryCritical"])
    );
    // The slow burn and the memory warning are inhibited by their pages.
    assert_eq!(delivered(&received, "ticket"), firing(&["ReplicaDown"]));
    let _ = alertmanager.kill().await;
}
