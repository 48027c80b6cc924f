//! `scripts/cluster.sh` end to end: the whole topology as processes (a
//! PostgreSQL primary with its streaming replica, Redis, three instances,
//! nginx with TLS and the readiness watcher), and a rolling deploy of every
//! instance under load (`loadtest/rolling-deploy.sh`), judged by what the
//! load generator's clients saw through the edge.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::edge::{repo, Release};

/// `count` consecutive ports nobody listens on (the script numbers its
/// instances from the first; the rest follow).
pub fn free_port_run(count: u16) -> u16 {
    for attempt in 0..200u32 {
        let first = 20_000 + ((std::process::id() * 7_919 + attempt * 613) % 30_000) as u16;
        if (first..first + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return first;
        }
    }
    panic!("no run of {count} free ports");
}

pub fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// The load generator, built beside the server binary (scripts/test.sh
/// builds it before the tests).
pub fn loadgen() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_taskmaster")).with_file_name("loadgen");
    assert!(
        path.exists(),
        "{} is missing: cargo build -p taskmaster-loadgen (scripts/test.sh does)",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_cluster_script_runs_the_topology_and_a_rolling_deploy_under_load_loses_nothing() {
    // Under target/, not /tmp: PostgreSQL runs as its own user and must reach
    // its data directory.
    let target = repo().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let dir = tempfile::tempdir_in(&target).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let release = Release::make(dir.path(), "a");
    let cluster_dir = dir.path().join("cluster");
    let result = dir.path().join("rolling.json");

    // Three instances, the edge's two ports, Redis, the PostgreSQL pair.
    let instances = free_port_run(8);
    let (https, http, redis, postgres) =
        (instances + 3, instances + 4, instances + 5, instances + 6);
    let settings: Vec<(&str, String)> = vec![
        ("CLUSTER_DIR", cluster_dir.display().to_string()),
        (
            "CLUSTER_BINARY",
            env!("CARGO_BIN_EXE_taskmaster").to_owned(),
        ),
        ("CLUSTER_WEB_DIR", release.web_dir.display().to_string()),
        ("CLUSTER_FIRST_PORT", instances.to_string()),
        ("CLUSTER_HTTPS_PORT", https.to_string()),
        ("CLUSTER_HTTP_PORT", http.to_string()),
        ("CLUSTER_REDIS_PORT", redis.to_string()),
        ("CLUSTER_PG_PORT", postgres.to_string()),
        ("LOADGEN", loadgen().display().to_string()),
        ("DEPLOY_AFTER", "4".into()),
        ("CLUSTER_DEPLOY_PAUSE", "2".into()),
        ("ROLLING_RESULT", result.display().to_string()),
        ("DATABASE_MAX_CONNECTIONS", "8".into()),
        ("CONNECT_RATE", "200".into()),
        (
            "LOADGEN_ARGS",
            "--projects 20 --users 10 --writers 8".into(),
        ),
        ("EDGE_WORKERS", "1".into()),
    ];
    // 150 clients on 20 projects, 40 changes/s for 24 s: small enough for a
    // debug build on two cores, long enough that all three instances are
    // replaced while writes and deliveries go on.
    let mut script = Command::new("bash");
    script
        .arg(repo().join("loadtest/rolling-deploy.sh"))
        .args(["150", "40", "24"])
        .envs(settings.iter().map(|(name, value)| (*name, value.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(200), script.output()).await;
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
            panic!("the rolling deploy did not finish in 200 s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        cleanup();
        let log = |name: &str| {
            std::fs::read_to_string(cluster_dir.join("logs").join(name)).unwrap_or_default()
        };
        panic!(
            "rolling deploy failed ({}):\n{stdout}\n{stderr}\ninstance 1:\n{}\nwatcher:\n{}",
            output.status,
            log("instance-1.log"),
            log("watch.log")
        );
    }

    // The script brought the topology up and said where.
    assert!(
        stdout.contains(&format!("Task Master runs at https://localhost:{https}")),
        "{stdout}"
    );
    assert!(stderr.contains("rolling deploy of"), "{stderr}");
    for n in 1..=3 {
        assert!(
            stderr.contains(&format!("instance {n} replaced")),
            "{stderr}"
        );
    }

    let report: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    let count = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {report}"))
    };
    assert_eq!(count("connected"), 150, "{report}");
    // Every instance was replaced, so clients were dropped — and every one
    // of them came back and caught up.
    assert!(count("connections_dropped") >= 100, "{report}");
    assert_eq!(
        count("reconnected"),
        count("connections_dropped"),
        "{report}"
    );
    assert_eq!(count("reconnect_gave_up"), 0, "{report}");
    assert!(count("writes_ok") >= 500, "{report}");
    assert!(count("expected_deliveries") > 0, "{report}");
    for zero in [
        "lost",
        "duplicated",
        "out_of_order",
        "writes_failed",
        "writes_not_durable",
    ] {
        assert_eq!(count(zero), 0, "{zero}: {report}");
    }
    assert!(count("rolling_deploy_seconds") > 0, "{report}");

    // And `down` (the script's exit) stopped everything it started.
    for port in [https, http, redis, postgres, postgres + 1]
        .into_iter()
        .chain(instances..instances + 3)
    {
        assert!(!listening(port), "port {port} still listens after down");
    }
}
