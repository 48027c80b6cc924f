//! Next-task on hand-built graphs, rule by rule.

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};

async fn next(app: &TestApp, user: &TestUser, project: &str) -> Option<i64> {
    let response = app
        .get(
            &format!("/api/v1/projects/{project}/tasks/next"),
            &user.token,
        )
        .await;
    match response.status {
        200 => Some(response.body["id"].as_i64().unwrap()),
        204 => None,
        other => panic!("next: {other} {}", response.text),
    }
}

async fn task(app: &TestApp, user: &TestUser, project: &str, body: Value) -> i64 {
    app.create_task(user, project, body).await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn no_open_task_means_204() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    assert_eq!(next(&app, &user, &project).await, None);
    task(
        &app,
        &user,
        &project,
        json!({"title": "done", "status": "done"}),
    )
    .await;
    task(
        &app,
        &user,
        &project,
        json!({"title": "deferred", "status": "deferred"}),
    )
    .await;
    task(
        &app,
        &user,
        &project,
        json!({"title": "review", "status": "review"}),
    )
    .await;
    task(
        &app,
        &user,
        &project,
        json!({"title": "blocked", "status": "blocked"}),
    )
    .await;
    task(
        &app,
        &user,
        &project,
        json!({"title": "cancelled", "status": "cancelled"}),
    )
    .await;
    assert_eq!(next(&app, &user, &project).await, None);
}

#[tokio::test]
async fn ranks_by_priority_then_fewest_dependencies_then_lowest_id() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let done_a = task(
        &app,
        &user,
        &project,
        json!({"title": "a", "status": "done"}),
    )
    .await; // 1
    let done_b = task(
        &app,
        &user,
        &project,
        json!({"title": "b", "status": "done"}),
    )
    .await; // 2
    let low = task(
        &app,
        &user,
        &project,
        json!({"title": "low", "priority": "low"}),
    )
    .await; // 3
    assert_eq!(next(&app, &user, &project).await, Some(low));

    let medium = task(&app, &user, &project, json!({"title": "medium"})).await; // 4
    assert_eq!(next(&app, &user, &project).await, Some(medium));

    let high_two = task(
        &app,
        &user,
        &project,
        json!({"title": "high, two deps", "priority": "high", "dependencies": [done_a, done_b]}),
    )
    .await; // 5
    assert_eq!(next(&app, &user, &project).await, Some(high_two));
    let high_one = task(
        &app,
        &user,
        &project,
        json!({"title": "high, one dep", "priority": "high", "dependencies": [done_a]}),
    )
    .await; // 6
    assert_eq!(
        next(&app, &user, &project).await,
        Some(high_one),
        "fewer dependencies first"
    );
    let high_one_later = task(&app, &user, &project,
        json!({"title": "high, one dep, later", "priority": "high", "dependencies": [done_b], "status": "in-progress"})).await; // 7
    assert_eq!(
        next(&app, &user, &project).await,
        Some(high_one),
        "then the lowest id"
    );

    // A critical task whose dependency is not done is not eligible.
    let critical = task(
        &app,
        &user,
        &project,
        json!({"title": "critical", "priority": "critical", "dependencies": [low]}),
    )
    .await; // 8
    assert_eq!(next(&app, &user, &project).await, Some(high_one));
    app.patch_task(&user, &project, low, json!({"status": "done"}))
        .await;
    assert_eq!(next(&app, &user, &project).await, Some(critical));

    // Any non-done dependency blocks, "review" and "cancelled" included.
    app.patch_task(&user, &project, done_a, json!({"status": "review"}))
        .await;
    app.patch_task(&user, &project, critical, json!({"dependencies": [done_a]}))
        .await;
    assert_eq!(next(&app, &user, &project).await, Some(high_one_later));
}

#[tokio::test]
async fn subtasks_of_in_progress_parents_come_first() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let critical = task(
        &app,
        &user,
        &project,
        json!({"title": "critical top", "priority": "critical"}),
    )
    .await; // 1
    let parent = task(
        &app,
        &user,
        &project,
        json!({"title": "parent", "priority": "low"}),
    )
    .await; // 2
    let sub_low = task(
        &app,
        &user,
        &project,
        json!({"title": "sub low", "priority": "low", "parent_id": parent}),
    )
    .await; // 3
    let sub_high = task(&app, &user, &project,
        json!({"title": "sub high", "priority": "high", "parent_id": parent, "dependencies": [sub_low]})).await; // 4

    // Parent pending: subtasks do not count; the critical top-level task wins.
    assert_eq!(next(&app, &user, &project).await, Some(critical));

    // Parent in progress: its eligible subtask wins over any top-level task.
    app.patch_task(&user, &project, parent, json!({"status": "in-progress"}))
        .await;
    assert_eq!(
        next(&app, &user, &project).await,
        Some(sub_low),
        "sub high waits for sub low"
    );

    app.patch_task(&user, &project, sub_low, json!({"status": "done"}))
        .await;
    assert_eq!(next(&app, &user, &project).await, Some(sub_high));

    app.patch_task(&user, &project, sub_high, json!({"status": "done"}))
        .await;
    // No open subtask left: back to top-level tasks (the in-progress parent
    // is one of them, but the critical task ranks first).
    assert_eq!(next(&app, &user, &project).await, Some(critical));
    app.patch_task(&user, &project, critical, json!({"status": "done"}))
        .await;
    assert_eq!(next(&app, &user, &project).await, Some(parent));
}
