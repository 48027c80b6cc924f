//! Two instances behind one Redis: every subscriber, on either instance,
//! receives every event of its project exactly once and in seq order,
//! whichever instance committed it — also across a Redis restart and a
//! dropped client connection.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::cache::counter;
use crate::helpers::{TestApp, TestUser};
use crate::sockets::{assert_seqs, Clients};

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two instances on one database and one Redis, isolated from other tests by
/// a channel prefix of their own.
pub async fn two_instances(redis: &str) -> (TestApp, TestApp) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let (redis_a, prefix_a) = (redis.to_owned(), prefix.clone());
    let a = TestApp::spawn_with(move |config| {
        config.redis_url = Some(taskmaster_server::config::Secret::new(redis_a));
        config.redis_prefix = prefix_a;
    })
    .await;
    let b = TestApp::spawn_on(&a.database_url, |config| {
        config.redis_url = Some(taskmaster_server::config::Secret::new(redis));
        config.redis_prefix = prefix;
    })
    .await;
    (a, b)
}

/// `writes` PATCHes of task 1 in `project`, through `app`. Titles name the
/// writer, so no two writers' PATCHes are the same (an unchanged task
/// produces no event).
async fn write(
    app: &TestApp,
    user: &TestUser,
    project: &str,
    writer: usize,
    writes: usize,
    pause: Duration,
) {
    for n in 0..writes {
        let title = format!("writer {writer}, edit {n}");
        let response = app
            .patch_task(user, project, 1, json!({ "title": title }))
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

#[tokio::test]
async fn every_subscriber_on_either_instance_gets_every_event_once_in_order() {
    let (a, b) = two_instances(&redis_url()).await;
    let owner = a.register("Owner").await;
    let projects: Vec<String> = {
        let mut projects = Vec::new();
        for n in 0..4 {
            let project = a.create_project(&owner, &format!("P{n}")).await;
            a.create_task(&owner, &project, json!({"title": "shared"}))
                .await;
            projects.push(project);
        }
        projects
    };
    let mut clients = Clients::start().await;
    let mut subscribers = Vec::new();
    for (index, project) in projects.iter().enumerate() {
        // The busy project gets three subscribers per instance, the others one.
        let per_instance = if index == 0 { 3 } else { 1 };
        for (instance, app) in [("a", &a), ("b", &b)] {
            for n in 0..per_instance {
                let id = format!("{instance}{index}-{n}");
                clients
                    .connect(&id, &app.address, Some(&owner.token), "websocket")
                    .await
                    .unwrap();
                assert_eq!(clients.join(&id, project, Some(0)).await["seq"], 1);
                subscribers.push((id, index));
            }
        }
    }

    // Ten writers on the busy project, alternating instances, and one writer
    // on each other project, all at once.
    const WRITES: usize = 100;
    let mut writers = Vec::new();
    for writer in 0..10 {
        let app = if writer % 2 == 0 { &a } else { &b };
        writers.push(write(
            app,
            &owner,
            &projects[0],
            writer,
            WRITES,
            Duration::ZERO,
        ));
    }
    for (index, project) in projects.iter().enumerate().skip(1) {
        let app = if index % 2 == 0 { &a } else { &b };
        writers.push(write(
            app,
            &owner,
            project,
            10 + index,
            WRITES,
            Duration::ZERO,
        ));
    }
    join_all(writers).await;

    for (id, index) in subscribers {
        let last = 1 + if index == 0 { 10 * WRITES } else { WRITES } as i64;
        let events = clients
            .events(&id, last as usize, Duration::from_secs(30))
            .await;
        assert_seqs(&events, 1, last, &format!("subscriber {id}"));
        assert!(
            clients
                .events(&id, 1, Duration::from_millis(100))
                .await
                .is_empty(),
            "{id}: extra events"
        );
    }
}

/// A Redis server of the test's own, so it can be killed and restarted.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = PrivateRedis { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_redis(self.port).await;
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// Waits until a freshly started redis-server on `port` accepts connections.
pub async fn wait_for_redis(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on port {port} did not start");
}

#[tokio::test]
async fn nothing_is_lost_across_a_redis_restart_and_a_dropped_connection() {
    let mut redis = PrivateRedis::start().await;
    let (a, b) = two_instances(&redis.url()).await;
    let owner = a.register("Owner").await;
    let project = a.create_project(&owner, "P").await;
    a.create_task(&owner, &project, json!({"title": "shared"}))
        .await;

    let mut clients = Clients::start().await;
    let mut steady = Vec::new();
    for (instance, app) in [("a", &a), ("b", &b)] {
        for n in 0..2 {
            let id = format!("{instance}{n}");
            clients
                .connect(&id, &app.address, Some(&owner.token), "websocket")
                .await
                .unwrap();
            clients.join(&id, &project, Some(0)).await;
            steady.push(id);
        }
    }
    // This one loses its connection halfway and comes back with `since`.
    clients
        .connect("dropper", &b.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    clients.join("dropper", &project, Some(0)).await;

    const WRITES: usize = 60;
    let pause = Duration::from_millis(40);
    let writers = join_all([
        write(&a, &owner, &project, 0, WRITES, pause),
        write(&b, &owner, &project, 1, WRITES, pause),
        write(&a, &owner, &project, 2, WRITES, pause),
    ]);
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        redis.kill().await;
        clients.drop_transport("dropper").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Publishing stopped at once instead of waiting on a dead Redis.
        let ready = a
            .request(reqwest::Method::GET, "/readyz", None, None, &[])
            .await;
        assert_eq!(ready.body["breakers"]["bus"], "open", "{}", ready.text);
        // Everything the dropped client saw before the drop…
        let before = clients
            .events("dropper", usize::MAX, Duration::from_millis(300))
            .await;
        let last_seen = before
            .last()
            .map_or(0, |event| event["seq"].as_i64().unwrap());
        clients
            .connect("dropper-again", &a.address, Some(&owner.token), "websocket")
            .await
            .unwrap();
        let ack = clients
            .join("dropper-again", &project, Some(last_seen))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        tokio::time::sleep(Duration::from_millis(800)).await;
        redis.restart().await;
        (before, clients)
    };
    let (_, (before, clients)) = tokio::join!(writers, chaos);

    let last = 1 + 3 * WRITES as i64;
    let expected: Vec<i64> = (1..=last).collect();
    for id in &steady {
        let events = clients
            .events(id, expected.len(), Duration::from_secs(30))
            .await;
        assert_seqs(&events, 1, last, &format!("subscriber {id}"));
    }
    let after = clients
        .events(
            "dropper-again",
            expected.len() - before.len(),
            Duration::from_secs(30),
        )
        .await;
    let mut all = before.clone();
    all.extend(after);
    assert_seqs(
        &all,
        1,
        last,
        "the dropped client, before and after re-joining",
    );

    // Fan-out between instances works again without a restart.
    let ready = a
        .request(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(ready.body["checks"]["redis"], "ok", "{}", ready.text);
    assert_eq!(ready.body["breakers"]["bus"], "closed", "{}", ready.text);
    assert!(
        counter(&a, "circuit_breaker_opened_total", &["dependency=\"bus\""]).await >= 1.0,
        "the breaker opened while Redis was gone"
    );
}

#[tokio::test]
async fn removing_a_member_on_one_instance_ends_its_subscriptions_on_the_other() {
    let (a, b) = two_instances(&redis_url()).await;
    let owner = a.register("Owner").await;
    let member = a.register("Member").await;
    let project = a.create_project(&owner, "P").await;
    a.add_member(&owner, &project, &member, "editor").await;
    let mut clients = Clients::start().await;
    // Two sockets of the member on b, and one of the owner on b, who stays.
    for id in ["m1", "m2"] {
        clients
            .connect(id, &b.address, Some(&member.token), "websocket")
            .await
            .unwrap();
        assert_eq!(clients.join(id, &project, None).await["ok"], true);
    }
    clients
        .connect("owner", &b.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    assert_eq!(clients.join("owner", &project, None).await["ok"], true);
    a.create_task(&owner, &project, json!({"title": "before"}))
        .await;
    for id in ["m1", "m2", "owner"] {
        assert_seqs(&clients.events(id, 1, crate::sockets::WAIT).await, 1, 1, id);
    }

    let removed = a
        .delete(
            &format!("/api/v1/projects/{project}/members/{}", member.id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, 204);
    // The revocation is published on the project's channel before the
    // removal is answered, so it reaches b before the next event does.
    a.create_task(&owner, &project, json!({"title": "after"}))
        .await;
    assert_seqs(
        &clients.events("owner", 1, crate::sockets::WAIT).await,
        2,
        2,
        "owner",
    );
    for id in ["m1", "m2"] {
        assert!(
            clients
                .events(id, 1, Duration::from_millis(500))
                .await
                .is_empty(),
            "{id} still receives after its membership was removed"
        );
    }
}
