//! The performance guard: a short benchmark that fails on a gross
//! regression. One instance (the `taskmaster` binary as a process), the load
//! generator with 1,000 Socket.IO clients on 20 projects, 100 changes/s for
//! 15 s, then 3,000 REST reads; the server's CPU time per delivery and per
//! read and its memory per connected socket are compared with the figures
//! committed in `loadtest/baselines.json` for this build profile.
//!
//! Quantities per unit of work, read from the kernel's accounting of the
//! server process, stay put on a noisy shared machine where latencies do
//! not; the tolerance is wide enough for that noise and narrow enough for a
//! lost index, a per-event lookup of every socket or a leaked buffer.
//!
//! Re-measure (after an intended change) with
//! `PERF_GUARD_RECORD=1 cargo nextest run -E 'test(perf_guard::)'`, which
//! writes this profile's figures into the file instead of checking them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::loadgen;
use crate::edge::{free_port, instance_env, repo, Instance, Release};
use crate::helpers::{create_database, drop_database};

const PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// The measured quantities, as the baseline file names them.
const QUANTITIES: [(&str, &str); 3] = [
    ("cpu_us_per_delivery", "server_cpu_us_per_delivery"),
    ("cpu_us_per_read", "server_cpu_us_per_read"),
    ("kib_per_socket", "server_kib_per_client"),
];

#[tokio::test]
async fn cpu_per_delivery_and_per_request_and_memory_per_socket_hold_their_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let release = Release::make(dir.path(), "perf");
    let (database_name, database_url) = create_database().await;
    // One instance on its own: no Redis, as in loadtest/bench.sh.
    let env: Vec<(String, String)> = instance_env(&database_url, &release)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("REDIS_"))
        .chain([("DATABASE_MAX_CONNECTIONS".to_owned(), "20".to_owned())])
        .collect();
    let mut instance = Instance::start(free_port(), env, dir.path().join("instance.log")).await;
    let report_path = dir.path().join("report.json");

    let run = tokio::process::Command::new(loadgen())
        .args(["--url", &format!("http://{}", instance.address())])
        .args(["--server-pid", &instance.pid().to_string()])
        .args(["--clients", "1000", "--projects", "20", "--users", "20"])
        .args(["--writers", "10", "--rate", "100", "--duration", "15"])
        .args(["--grace", "3", "--reads", "3000"])
        .arg("--json")
        .arg(&report_path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the benchmark finishes in 3 minutes")
        .unwrap();
    instance.stop().await;
    drop_database(&database_name);
    assert!(
        output.status.success(),
        "loadgen failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["connected"], 1000, "{report}");
    assert_eq!(report["lost"], 0, "{report}");

    let measured: Vec<(&str, f64)> = QUANTITIES
        .iter()
        .map(|(name, field)| {
            let value = report[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} missing from {report}"));
            (*name, value)
        })
        .collect();
    eprintln!("perf guard ({PROFILE} build): {measured:?}");

    let baselines_path = repo().join("loadtest/baselines.json");
    let mut baselines: Value =
        serde_json::from_slice(&std::fs::read(&baselines_path).unwrap()).unwrap();
    if std::env::var_os("PERF_GUARD_RECORD").is_some() {
        let figures: serde_json::Map<String, Value> = measured
            .iter()
            .map(|(name, value)| (name.to_string(), json!((value * 100.0).round() / 100.0)))
            .collect();
        baselines[PROFILE] = Value::Object(figures);
        let text = serde_json::to_string_pretty(&baselines).unwrap() + "\n";
        std::fs::write(&baselines_path, text).unwrap();
        eprintln!(
            "recorded the {PROFILE} baseline in {}",
            baselines_path.display()
        );
        return;
    }
    let mut regressions = Vec::new();
    for (name, value) in &measured {
        let baseline = baselines[PROFILE][name]
            .as_f64()
            .unwrap_or_else(|| panic!("no {PROFILE}.{name} in loadtest/baselines.json"));
        let tolerance = baselines["tolerance"][name]
            .as_f64()
            .unwrap_or_else(|| panic!("no tolerance.{name} in loadtest/baselines.json"));
        if *value > baseline * tolerance {
            regressions.push(format!(
                "{name}: {value:.2} against a baseline of {baseline:.2} (limit {:.2})",
                baseline * tolerance
            ));
        }
    }
    assert!(
        regressions.is_empty(),
        "performance regressed ({PROFILE} build):\n{}",
        regressions.join("\n")
    );
}
