//! The bus on a Redis Cluster: three masters of the test's own on loopback,
//! two instances whose fan-out, presence and Socket.IO adapter traffic use
//! sharded pub/sub on it (the cache stays on the single Redis).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, TestUser};
use crate::scale::{redis_url, wait_for_redis};
use crate::sockets::{assert_seqs, seqs, Clients, WAIT};

/// A Redis Cluster of three masters (no replicas), torn down on drop.
pub struct RedisCluster {
    ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut cluster = RedisCluster {
            nodes: ports.iter().map(|_| None).collect(),
            ports,
            dir: tempfile::tempdir().unwrap(),
        };
        for node in 0..cluster.ports.len() {
            cluster.start_node(node).await;
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .output()
            .await
            .expect("redis-cli is installed (scripts/test.sh installs it)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_until_ok().await;
        cluster
    }

    /// Seed URLs, as REDIS_CLUSTER_URLS takes them.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    async fn start_node(&mut self, node: usize) {
        let port = self.ports[node];
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.nodes[node] = Some(child);
        wait_for_redis(port).await;
    }

    pub async fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            child.kill().await.unwrap();
        }
    }

    /// Restarts a killed master; it rejoins with the slots its nodes file
    /// records.
    pub async fn restart(&mut self, node: usize) {
        self.start_node(node).await;
        self.wait_until_ok().await;
    }

    pub async fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut ok = true;
            for port in &self.ports {
                ok &= self
                    .cli(*port, &["cluster", "info"])
                    .await
                    .contains("cluster_state:ok");
            }
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Which master holds each of `channels` (sharded channels live on the
    /// master that owns their slot).
    pub async fn owners(&self, channels: &[String]) -> Vec<u16> {
        let mut owners = Vec::new();
        for channel in channels {
            for port in &self.ports {
                let held = self.cli(*port, &["pubsub", "shardchannels", channel]).await;
                if held.lines().any(|line| line.trim() == channel) {
                    owners.push(*port);
                }
            }
        }
        owners
    }

    pub fn port(&self, node: usize) -> u16 {
        self.ports[node]
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two instances on one database, the cache on the single Redis and the bus
/// on `cluster`, isolated from other tests by a prefix of their own.
async fn two_instances(cluster: &RedisCluster) -> (TestApp, TestApp, String) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let settings = |prefix: String, nodes: Vec<String>| {
        move |config: &mut taskmaster_server::config::Config| {
            config.redis_url = Some(taskmaster_server::config::Secret::new(redis_url()));
            config.redis_cluster_urls = nodes
                .into_iter()
                .map(taskmaster_server::config::Secret::new)
                .collect();
            config.redis_prefix = prefix;
        }
    };
    let a = TestApp::spawn_with(settings(prefix.clone(), cluster.urls())).await;
    let b = TestApp::spawn_on(&a.database_url, settings(prefix.clone(), cluster.urls())).await;
    // The first health check (every second) finds the cluster up.
    for app in [&a, &b] {
        wait_for_ready_redis(app).await;
    }
    (a, b, prefix)
}

async fn wait_for_ready_redis(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = app
            .request(reqwest::Method::GET, "/readyz", None, None, &[])
            .await;
        if ready.body["checks"]["redis"] == "ok" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis never ready: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn edit(app: &TestApp, user: &TestUser, project: &str, title: String) {
    let response = app
        .patch_task(user, project, 1, json!({ "title": title }))
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

/// The names in a presence message, sorted.
fn names(message: &Value) -> Vec<String> {
    let mut names: Vec<String> = message["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn fan_out_presence_and_revocation_run_on_sharded_pub_sub() {
    let cluster = RedisCluster::start().await;
    let (a, b, prefix) = two_instances(&cluster).await;
    let owner = a.register("Owner").await;
    let mut projects = Vec::new();
    for n in 0..10 {
        let project = a.create_project(&owner, &format!("P{n}")).await;
        a.create_task(&owner, &project, json!({"title": "shared"}))
            .await;
        projects.push(project);
    }
    let mut clients = Clients::start().await;
    for (index, project) in projects.iter().enumerate() {
        for (instance, app) in [("a", &a), ("b", &b)] {
            let id = format!("{instance}{index}");
            clients
                .connect(&id, &app.address, Some(&owner.token), "websocket")
                .await
                .unwrap();
            assert_eq!(clients.join(&id, project, Some(0)).await["seq"], 1);
            // The replay of the one event before the join.
            assert_eq!(seqs(&clients.events(&id, 1, WAIT).await), [1]);
        }
    }

    // Each project's channel is a sharded channel on the master owning its
    // slot, and the projects are spread over the masters.
    let channels: Vec<String> = projects
        .iter()
        .map(|project| format!("{prefix}:project:{project}"))
        .collect();
    let owners = cluster.owners(&channels).await;
    assert_eq!(owners.len(), channels.len(), "one master per channel");
    let mut masters = owners.clone();
    masters.sort_unstable();
    masters.dedup();
    assert!(masters.len() >= 2, "all channels on one master: {owners:?}");

    // Writes through either instance reach the other's subscribers over the
    // bus: well within a second, where reconciliation alone takes up to five.
    for (n, (from, to)) in [(&a, "b0"), (&b, "a0"), (&a, "b0"), (&b, "a0"), (&a, "b0")]
        .into_iter()
        .enumerate()
    {
        let started = Instant::now();
        edit(from, &owner, &projects[0], format!("hop {n}")).await;
        let events = clients.events(to, 1, WAIT).await;
        assert_eq!(seqs(&events), [n as i64 + 2], "{to}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{to} waited {took:?}");
        let local = if to == "a0" { "b0" } else { "a0" };
        assert_eq!(seqs(&clients.events(local, 1, WAIT).await), [n as i64 + 2]);
    }

    // Concurrent writers on every project, alternating instances: every
    // subscriber gets every event once, in order.
    const WRITES: usize = 20;
    let (a_ref, b_ref, owner_ref) = (&a, &b, &owner);
    let writers = projects.iter().enumerate().map(|(index, project)| {
        let (a, b, owner) = (a_ref, b_ref, owner_ref);
        async move {
            for n in 0..WRITES {
                let app = if (index + n) % 2 == 0 { &a } else { &b };
                edit(app, owner, project, format!("writer {index}, edit {n}")).await;
            }
        }
    });
    join_all(writers).await;
    for (index, _) in projects.iter().enumerate() {
        let (first, last) = if index == 0 { (7, 26) } else { (2, 21) };
        for instance in ["a", "b"] {
            let id = format!("{instance}{index}");
            let events = clients.events(&id, WRITES, Duration::from_secs(30)).await;
            assert_seqs(&events, first, last, &id);
        }
    }

    // Presence across instances, in a project only a has sockets in: b
    // subscribes when the member joins there, asks, and hears of the owner
    // at once rather than at a's next heartbeat; a hears of the member.
    let lone = a.create_project(&owner, "Lone").await;
    let member = a.register("Member").await;
    a.add_member(&owner, &lone, &member, "editor").await;
    clients
        .connect("owner-lone", &a.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    clients.join("owner-lone", &lone, None).await;
    clients
        .connect("m", &b.address, Some(&member.token), "websocket")
        .await
        .unwrap();
    let joined = Instant::now();
    clients.join("m", &lone, None).await;
    let both = ["Member", "Owner"];
    for (id, who) in [("m", "the member on b"), ("owner-lone", "the owner on a")] {
        loop {
            let message = clients.next_of(id, &["presence"], WAIT).await;
            let message = message.unwrap_or_else(|| panic!("{who} never heard of both"));
            if names(&message) == both {
                break;
            }
        }
    }
    let took = joined.elapsed();
    assert!(took < Duration::from_secs(3), "presence took {took:?}");

    // Removing the member on a ends its subscription on b at once (a
    // `revoked` message on the project's channel, over the cluster).
    let removed = a
        .delete(
            &format!("/api/v1/projects/{lone}/members/{}", member.id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, 204);
    clients.drain("m", "event");
    a.create_task(&owner, &lone, json!({"title": "after removal"}))
        .await;
    assert!(clients
        .events("m", 1, Duration::from_millis(700))
        .await
        .is_empty());
}

#[tokio::test]
async fn nothing_is_lost_while_a_master_is_down_and_fan_out_resumes_after() {
    let mut cluster = RedisCluster::start().await;
    let (a, b, prefix) = two_instances(&cluster).await;
    let owner = a.register("Owner").await;
    let project = a.create_project(&owner, "P").await;
    a.create_task(&owner, &project, json!({"title": "shared"}))
        .await;
    let mut clients = Clients::start().await;
    for (id, app) in [("a", &a), ("b", &b)] {
        clients
            .connect(id, &app.address, Some(&owner.token), "websocket")
            .await
            .unwrap();
        clients.join(id, &project, Some(0)).await;
    }
    let channel = format!("{prefix}:project:{project}");
    let owner_port = cluster.owners(std::slice::from_ref(&channel)).await[0];
    let node = (0..3).find(|&n| cluster.port(n) == owner_port).unwrap();

    // Writers on both instances while the master holding the project's
    // channel dies and comes back.
    const WRITES: usize = 50;
    let (a_ref, b_ref, owner_ref, project_ref) = (&a, &b, &owner, &project);
    let writers = join_all((0..2).map(|writer| {
        let app = if writer == 0 { a_ref } else { b_ref };
        let (owner, project) = (owner_ref, project_ref);
        async move {
            for n in 0..WRITES {
                edit(app, owner, project, format!("writer {writer}, edit {n}")).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    }));
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.kill(node).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cluster.restart(node).await;
        cluster
    };
    let (_, cluster) = tokio::join!(writers, chaos);
    let last = 1 + 2 * WRITES as i64;
    for id in ["a", "b"] {
        let events = clients
            .events(id, last as usize, Duration::from_secs(30))
            .await;
        assert_seqs(&events, 1, last, id);
    }

    // The subscriptions were re-made on the restarted master: the bus
    // carries the next write at once again.
    for app in [&a, &b] {
        wait_for_ready_redis(app).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.owners(std::slice::from_ref(&channel)).await.len() != 1 {
        assert!(Instant::now() < deadline, "never re-subscribed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    edit(&a, &owner, &project, "after the restart".into()).await;
    assert_eq!(seqs(&clients.events("b", 1, WAIT).await), [last + 1]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "b waited {took:?}");
}

#[tokio::test]
async fn a_cluster_for_the_bus_without_a_shared_cache_is_refused_at_start() {
    let (name, database_url) = crate::helpers::create_database().await;
    let mut config = crate::helpers::test_config(&database_url);
    config.redis_cluster_urls = vec![taskmaster_server::config::Secret::new(
        "redis://127.0.0.1:1",
    )];
    let refused = taskmaster_server::startup::Application::build(config).await;
    crate::helpers::drop_database(&name);
    let error = format!("{:#}", refused.err().expect("refused"));
    assert!(error.contains("REDIS_URL"), "{error}");
    assert!(error.contains("CACHE=off"), "{error}");
}
