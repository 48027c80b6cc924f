//! Read replicas against a real streaming replica: reads go there when it
//! has what they need, a writer always reads its own write, and a replica
//! that dies costs no request.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use taskmaster_server::config::{Secret, Switch};

use crate::cache::{breaker_gauge, counter};
use crate::helpers::TestApp;
use crate::pg_cluster::PgCluster;

/// One instance on the cluster's primary with its replica, the cache off so
/// that every read reaches a database.
async fn instance(cluster: &PgCluster) -> TestApp {
    let name = format!("replicas_{}", uuid::Uuid::new_v4().simple());
    cluster.create_database(&name).await;
    let replica = cluster.replica_url(&name);
    let app = TestApp::spawn_on(&cluster.primary_url(&name), move |config| {
        config.database_replica_urls = vec![Secret::new(replica)];
        config.cache = Switch::Off;
    })
    .await;
    wait_for_rotation(&app).await;
    app
}

async fn wait_for_rotation(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(app, "db_replica_in_rotation", &[]).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the replica never joined the rotation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reads_go_to_the_replica_yet_a_writer_always_reads_its_own_write() {
    let cluster = PgCluster::start().await;
    let app = instance(&cluster).await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Replicated").await;
    app.create_task(&owner, &project, json!({"title": "first"}))
        .await;
    cluster.wait_for_replica_catch_up().await;

    // Caught up: the replica takes the reads.
    let before = counter(&app, "db_reads_total", &["pool=\"replica\""]).await;
    for _ in 0..20 {
        assert_eq!(app.task(&owner, &project, 1).await.status, 200);
        assert_eq!(
            app.get(&format!("/api/v1/projects/{project}/tasks"), &owner.token)
                .await
                .status,
            200
        );
    }
    let served = counter(&app, "db_reads_total", &["pool=\"replica\""]).await - before;
    assert!(served >= 30.0, "the replica served {served} of 40 reads");

    // Replay paused: every read right after a write still sees it.
    cluster.pause_replay().await;
    for round in 0..10 {
        let title = format!("while the replica is paused {round}");
        let patched = app
            .patch_task(&owner, &project, 1, json!({"title": title}))
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let task = app.task(&owner, &project, 1).await;
        assert_eq!(task.body["title"], title);
        let page = app
            .get(&format!("/api/v1/projects/{project}/tasks"), &owner.token)
            .await;
        assert_eq!(page.body["items"][0]["title"], title);
        let next = app
            .get(
                &format!("/api/v1/projects/{project}/tasks/next"),
                &owner.token,
            )
            .await;
        assert_eq!(next.body["title"], title);
    }
    assert!(counter(&app, "db_replica_fallbacks_total", &["reason=\"behind\""]).await >= 30.0);
    // The lag shows in the metrics (measured once a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&app, "db_replica_lag_bytes", &[]).await == 0.0 {
        assert!(Instant::now() < deadline, "replica lag never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.resume_replay().await;
}

#[tokio::test]
async fn a_replica_killed_under_load_fails_no_request() {
    let cluster = PgCluster::start().await;
    let app = instance(&cluster).await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Replicated").await;
    for n in 0..5 {
        app.create_task(&owner, &project, json!({"title": format!("task {n}")}))
            .await;
    }
    cluster.wait_for_replica_catch_up().await;

    let load = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let round = join_all((1..=5).map(|id| app.task(&owner, &project, id))).await;
            statuses.extend(round.into_iter().map(|response| response.status));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        statuses
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.kill_replica();
    };
    let (statuses, ()) = tokio::join!(load, kill);
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    let ready = app
        .request(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body["checks"]["replica-0"], "degraded",
        "{}",
        ready.text
    );
    assert_eq!(
        ready.body["breakers"]["replica-0"], "open",
        "{}",
        ready.text
    );
    assert_eq!(breaker_gauge(&app, "replica-0").await, 2.0);

    // Back by itself once it is up and caught up again.
    cluster.restart_replica().await;
    wait_for_rotation(&app).await;
    let ready = app
        .request(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(
        ready.body["breakers"]["replica-0"], "closed",
        "{}",
        ready.text
    );
}
