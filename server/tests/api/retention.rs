//! The change log's retention: the background task prunes what the policy
//! says, and a client asking for history no longer kept is told to reload.

use std::time::{Duration, Instant};

use serde_json::json;
use taskmaster_server::db::events::{apply_retention, Retention};

use crate::helpers::TestApp;
use crate::sockets::Clients;

#[tokio::test]
async fn pruned_history_gets_resync_required_and_the_rest_still_replays() {
    let app = TestApp::spawn_with(|config| {
        config.events_retention_per_project = 4;
        config.events_retention_interval_secs = 1;
    })
    .await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Long history").await;
    app.create_task(&owner, &project, json!({"title": "edited a lot"}))
        .await;
    for n in 2..=10 {
        app.patch_task(&owner, &project, 1, json!({"title": format!("edit {n}")}))
            .await;
    }
    // The background task keeps the latest 4 of the 10 events.
    let events = async |since: i64| {
        let path = format!("/api/v1/projects/{project}/events?since={since}");
        app.get(&path, &owner.token).await
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while events(0).await.status != 410 {
        assert!(Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    events(5).await.assert_error(410, "resync_required");
    let kept = events(6).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let seqs: Vec<i64> = kept.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    let stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 4);

    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    let refused = clients.join("c", &project, Some(3)).await;
    assert_eq!(
        (refused["ok"].clone(), refused["error"]["code"].clone()),
        (json!(false), json!("resync_required")),
        "{refused}"
    );
    let joined = clients.join("c", &project, Some(6)).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let replayed = clients.events("c", 4, Duration::from_secs(10)).await;
    assert_eq!(crate::sockets::seqs(&replayed), vec![7, 8, 9, 10]);
}

#[tokio::test]
async fn retention_by_age_prunes_old_events_and_runs_on_one_instance_at_a_time() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "Old").await;
    for n in 1..=6 {
        app.create_task(&owner, &project, json!({"title": format!("t{n}")}))
            .await;
    }
    // The first four events happened long ago.
    sqlx::query("update events set created_at = now() - interval '40 days' where seq <= 4")
        .execute(&app.db)
        .await
        .unwrap();
    let policy = Retention {
        max_age: Some(Duration::from_secs(30 * 24 * 3600)),
        per_project: None,
    };

    // Several instances at once: the work is done once, nobody fails.
    let passes = futures::future::join_all((0..4).map(|_| apply_retention(&app.db, policy))).await;
    let deleted: u64 = passes.into_iter().map(Result::unwrap).sum();
    assert_eq!(deleted, 4);
    let pruned: i64 = sqlx::query_scalar("select events_pruned_through from projects")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(pruned, 4);
    app.get(
        &format!("/api/v1/projects/{project}/events?since=3"),
        &owner.token,
    )
    .await
    .assert_error(410, "resync_required");
    assert_eq!(
        app.get(
            &format!("/api/v1/projects/{project}/events?since=4"),
            &owner.token
        )
        .await
        .body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        apply_retention(&app.db, policy).await.unwrap(),
        0,
        "nothing left to prune"
    );
}
