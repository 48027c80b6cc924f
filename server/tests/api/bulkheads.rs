//! Bulkheads: a slow dependency an instance can do without — a replica, or
//! Redis (cache and bus) — must not take the connections or the time that
//! writes need. Each test puts the dependency behind the fault proxy
//! (`loadtest/faultproxy`), makes its path slow, and writes under read load.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use taskmaster_server::config::{Secret, Switch};
use tokio::process::{Child, Command};

use crate::cache::{breaker_gauge, counter};
use crate::helpers::{TestApp, TestUser};
use crate::pg_cluster::PgCluster;
use crate::scale::redis_url;

/// The fault proxy, built beside the server binary (scripts/test.sh builds it).
pub fn faultproxy_binary() -> PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_taskmaster")).with_file_name("faultproxy");
    assert!(
        path.exists(),
        "{} is missing: cargo build -p taskmaster-faultproxy (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fault proxy in front of `upstream`, on a port of its own.
pub struct FaultProxy {
    pub port: u16,
    faults: tempfile::NamedTempFile,
    _child: Child,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let faults = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(faultproxy_binary())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--upstream", upstream])
            .arg("--faults")
            .arg(faults.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the fault proxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the fault proxy did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        FaultProxy {
            port,
            faults,
            _child: child,
        }
    }

    /// Sets the path's fault (`latency_ms=… loss=…`, `down`, or "" for none).
    pub async fn set(&self, fault: &str) {
        std::fs::write(self.faults.path(), fault).unwrap();
        // The proxy reads its file every 200 ms.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `writes` PATCHes of distinct tasks at once; each one's latency.
async fn concurrent_writes(
    app: &TestApp,
    user: &TestUser,
    project: &str,
    writes: usize,
) -> Vec<Duration> {
    join_all((1..=writes).map(|id| async move {
        let started = Instant::now();
        let response = app
            .patch_task(user, project, id as i64, json!({"status": "in-progress"}))
            .await;
        assert_eq!(response.status, 200, "write {id}: {}", response.text);
        started.elapsed()
    }))
    .await
}

/// Reads that keep the slow dependency busy while the writes run.
async fn concurrent_reads(app: &TestApp, user: &TestUser, project: &str, reads: usize) -> usize {
    join_all((0..reads).map(|n| async move {
        let path = format!("/api/v1/projects/{project}/tasks/{}", n % 20 + 1);
        app.get(&path, &user.token).await.status
    }))
    .await
    .into_iter()
    .filter(|status| *status == 200)
    .count()
}

#[tokio::test]
async fn a_slow_replica_takes_none_of_the_connections_or_time_writes_need() {
    let cluster = PgCluster::start().await;
    let name = format!("bulkheads_{}", uuid::Uuid::new_v4().simple());
    cluster.create_database(&name).await;
    let replica = cluster.replica_url(&name);
    let replica_port = replica
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = FaultProxy::start(&format!("127.0.0.1:{replica_port}")).await;
    let through_proxy = replica.replace(&format!(":{replica_port}/"), &format!(":{}/", proxy.port));
    let app = TestApp::spawn_on(&cluster.primary_url(&name), move |config| {
        config.database_replica_urls = vec![Secret::new(through_proxy)];
        config.database_replica_max_connections = 4;
        config.database_max_connections = 8;
        // Every read reaches a database, and the replica takes them.
        config.cache = Switch::Off;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(&app, "db_replica_in_rotation", &[]).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the replica never joined the rotation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Bulkhead").await;
    for n in 1..=20 {
        app.create_task(&owner, &project, json!({"title": format!("task {n}")}))
            .await;
    }
    cluster.wait_for_replica_catch_up().await;
    let healthy = concurrent_writes(&app, &owner, &project, 20).await;
    let healthy_max = healthy.iter().max().unwrap();

    // The replica's path turns slow: 800 ms each way.
    let replica_reads_before = counter(&app, "db_reads_total", &["pool=\"replica\""]).await;
    proxy.set("latency_ms=800").await;
    let (writes, served) = tokio::join!(
        async {
            // Give the reads a head start, so they hold every replica connection.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            let latencies = concurrent_writes(&app, &owner, &project, 20).await;
            (latencies, started.elapsed())
        },
        concurrent_reads(&app, &owner, &project, 60),
    );
    let (latencies, all_writes) = writes;
    let slowest = latencies.iter().max().unwrap();
    // Every read was still answered (by the replica, late, or the primary).
    assert_eq!(served, 60);
    // The writes never waited for the replica: its pool is its own, and a
    // replica round trip alone is 1.6 s.
    assert!(
        *slowest < Duration::from_millis(1_000),
        "a write took {slowest:?} with the replica slow (healthy: {healthy_max:?}, all {all_writes:?})"
    );
    // And the slow replica did take reads meanwhile: the writes had it beside them.
    let replica_reads = counter(&app, "db_reads_total", &["pool=\"replica\""]).await;
    assert!(
        replica_reads > replica_reads_before,
        "no read went to the replica ({replica_reads_before} → {replica_reads})"
    );
}

#[tokio::test]
async fn a_slow_redis_takes_none_of_the_time_writes_need() {
    let redis = redis_url();
    let redis_address = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = FaultProxy::start(&redis_address).await;
    let through_proxy = format!("redis://127.0.0.1:{}", proxy.port);
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(move |config| {
        config.redis_url = Some(Secret::new(through_proxy));
        config.redis_prefix = prefix;
    })
    .await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Bulkhead").await;
    for n in 1..=20 {
        app.create_task(&owner, &project, json!({"title": format!("task {n}")}))
            .await;
    }
    assert_eq!(breaker_gauge(&app, "cache").await, 0.0);

    // Every Redis call now takes over a second: the cache and the bus must
    // give up on it (their timeouts and breakers), not hold the writes.
    proxy.set("latency_ms=600 loss=0.05").await;
    let (writes, served) = tokio::join!(
        async {
            let started = Instant::now();
            let latencies = concurrent_writes(&app, &owner, &project, 20).await;
            (latencies, started.elapsed())
        },
        concurrent_reads(&app, &owner, &project, 60),
    );
    let (latencies, all_writes) = writes;
    assert_eq!(served, 60, "reads fell back to PostgreSQL");
    let slowest = latencies.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_millis(1_000),
        "a write took {slowest:?} with Redis slow (all {all_writes:?})"
    );
    // The cache's breaker opened: calls skip Redis at once meanwhile.
    assert_eq!(
        breaker_gauge(&app, "cache").await,
        2.0,
        "the cache breaker is open"
    );
    assert!(counter(&app, "cache_bypassed_calls_total", &[]).await > 0.0);
    let ready = app.get("/readyz", "").await;
    assert_eq!(
        ready.status, 200,
        "a slow cache does not make the instance unready"
    );
    assert_eq!(ready.body["checks"]["cache"], "degraded", "{}", ready.text);

    // And when the path is well again, the cache comes back by itself.
    proxy.set("").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        app.task(&owner, &project, 1).await;
        if breaker_gauge(&app, "cache").await == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cache breaker never closed again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
