//! The chaos suite's fast cases (`loadtest/chaos.sh`), on the whole
//! topology as processes: two instances behind nginx, the PostgreSQL pair,
//! Redis, and the fault proxies on the paths to Redis and the primary.
//! Under writers and sockets through the edge, an instance is killed with
//! SIGKILL and Redis is killed and restarted; nothing acknowledged may be
//! lost, and every subscriber must see every event once, in order. The
//! other faults (SIGSTOP for 30 s, primary and replica crashes, replay
//! paused, a slow path to Redis or PostgreSQL) take minutes and run in the
//! documented full suite (docs/BENCHMARKS.md, "Chaos").

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::bulkheads::faultproxy_binary;
use crate::cluster::{free_port_run, listening, loadgen};
use crate::edge::{repo, Release};

#[tokio::test]
async fn killing_an_instance_or_redis_under_load_loses_nothing() {
    let target = repo().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let dir = tempfile::tempdir_in(&target).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let release = Release::make(dir.path(), "a");
    let cluster_dir = dir.path().join("cluster");
    let results = dir.path().join("results");

    // Two instances, the edge's two ports, Redis, the PostgreSQL pair and
    // the two fault proxies (primary port + 2 and + 3).
    let instances = free_port_run(9);
    let (https, http, redis, postgres) =
        (instances + 2, instances + 3, instances + 4, instances + 5);
    let settings: Vec<(&str, String)> = vec![
        ("CLUSTER_DIR", cluster_dir.display().to_string()),
        (
            "CLUSTER_BINARY",
            env!("CARGO_BIN_EXE_taskmaster").to_owned(),
        ),
        ("CLUSTER_WEB_DIR", release.web_dir.display().to_string()),
        (
            "CLUSTER_FAULTPROXY",
            faultproxy_binary().display().to_string(),
        ),
        ("CLUSTER_FIRST_PORT", instances.to_string()),
        ("CLUSTER_HTTPS_PORT", https.to_string()),
        ("CLUSTER_HTTP_PORT", http.to_string()),
        ("CLUSTER_REDIS_PORT", redis.to_string()),
        ("CLUSTER_PG_PORT", postgres.to_string()),
        ("CHAOS_INSTANCES", "2".into()),
        ("CHAOS_RESULTS", results.display().to_string()),
        ("LOADGEN", loadgen().display().to_string()),
        // 200 sockets on 20 projects, 40 changes/s for 20 s, the fault 6 s
        // in: small enough for debug builds on two cores.
        ("CHAOS_CLIENTS", "200".into()),
        ("CHAOS_RATE", "40".into()),
        ("CHAOS_SECONDS", "20".into()),
        ("FAULT_AFTER", "6".into()),
        ("CHAOS_GRACE", "12".into()),
        ("CONNECT_RATE", "200".into()),
        (
            "LOADGEN_ARGS",
            "--projects 20 --users 10 --writers 8".into(),
        ),
        ("DATABASE_MAX_CONNECTIONS", "8".into()),
        ("EDGE_WORKERS", "1".into()),
        ("NO_PLOT", "1".into()),
    ];
    let mut script = Command::new("bash");
    script
        .arg(repo().join("loadtest/chaos.sh"))
        .args(["kill-instance", "restart-redis"])
        .envs(settings.iter().map(|(name, value)| (*name, value.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(240), script.output()).await;
    let cleanup = || {
        let _ = std::process::Command::new("bash")
            .arg(repo().join("scripts/cluster.sh"))
            .arg("down")
            .envs(settings.iter().map(|(name, value)| (*name, value.as_str())))
            .output();
    };
    let output = match run {
        Ok(output) => output.unwrap(),
        Err(_) => {
            cleanup();
            panic!("the chaos run did not finish in 240 s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        cleanup();
        panic!("chaos run failed ({}):\n{stdout}\n{stderr}", output.status);
    }

    let report = |fault: &str| -> Value {
        serde_json::from_slice(&std::fs::read(results.join(format!("{fault}.json"))).unwrap())
            .unwrap()
    };
    for fault in ["kill-instance", "restart-redis"] {
        let report = report(fault);
        let count = |key: &str| {
            report[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{fault}: {key} in {report}"))
        };
        assert_eq!(count("connected"), 200, "{fault}: {report}");
        assert!(count("writes_ok") >= 300, "{fault}: {report}");
        assert!(count("expected_deliveries") > 0, "{fault}: {report}");
        for zero in [
            "lost",
            "duplicated",
            "out_of_order",
            "writes_failed",
            "writes_not_durable",
            "reconnect_gave_up",
        ] {
            assert_eq!(count(zero), 0, "{fault}: {zero} in {report}");
        }
        assert_eq!(report["fault"]["name"], fault);
    }
    // Killing an instance dropped its clients, and every one came back.
    let killed = report("kill-instance");
    assert!(
        killed["connections_dropped"].as_u64().unwrap() >= 50,
        "{killed}"
    );
    assert_eq!(
        killed["reconnected"], killed["connections_dropped"],
        "{killed}"
    );

    // The table names both faults.
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    assert!(
        summary.contains("| kill-instance |") && summary.contains("| restart-redis |"),
        "{summary}"
    );

    // And the script's exit stopped everything it started.
    for port in instances..instances + 9 {
        assert!(!listening(port), "port {port} still listens after the run");
    }
}
