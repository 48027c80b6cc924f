use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn unknown_dependencies_are_422_and_write_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "one"}))
        .await;
    let path = format!("/api/v1/projects/{project}/tasks");

    let response = app
        .post(
            &path,
            &user.token,
            json!({"title": "x", "dependencies": [1, 7, 8]}),
        )
        .await;
    response.assert_error(422, "unknown_dependency");
    assert!(response.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("7, 8"));
    app.post(
        &path,
        &user.token,
        json!({"title": "x", "dependencies": [0]}),
    )
    .await
    .assert_error(422, "unknown_dependency");
    app.patch_task(&user, &project, 1, json!({"dependencies": [42]}))
        .await
        .assert_error(422, "unknown_dependency");

    // Another project's task ids are unknown here.
    let other = app.create_project(&user, "Q").await;
    app.create_task(&user, &other, json!({"title": "a"})).await;
    app.create_task(&user, &other, json!({"title": "b"})).await;
    app.post(
        &path,
        &user.token,
        json!({"title": "x", "dependencies": [2]}),
    )
    .await
    .assert_error(422, "unknown_dependency");

    assert_eq!(app.events(&project).await.len(), 1);
    let next_id = app
        .create_task(&user, &project, json!({"title": "two"}))
        .await["id"]
        .clone();
    assert_eq!(next_id, 2, "failed creates used no id");
}

#[tokio::test]
async fn self_dependency_is_a_conflict() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "one"}))
        .await;
    app.patch_task(&user, &project, 1, json!({"dependencies": [1]}))
        .await
        .assert_error(409, "dependency_cycle");
}

#[tokio::test]
async fn direct_and_multi_step_cycles_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    // A chain: 5 → 4 → 3 → 2 → 1 (each depends on the previous one).
    app.create_task(&user, &project, json!({"title": "t1"}))
        .await;
    for id in 2..=5 {
        app.create_task(
            &user,
            &project,
            json!({"title": format!("t{id}"), "dependencies": [id - 1]}),
        )
        .await;
    }
    // A side task so a patch can also change other fields.
    app.create_task(&user, &project, json!({"title": "t6"}))
        .await;
    let events_before = app.events(&project).await.len();

    // Direct: 1 → 2 closes 1 → 2 → 1.
    let direct = app
        .patch_task(&user, &project, 1, json!({"dependencies": [2]}))
        .await;
    direct.assert_error(409, "dependency_cycle");
    assert!(
        direct.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 → 2 → 1"),
        "{}",
        direct.text
    );

    // Through several tasks: 1 → 5 → 4 → 3 → 2 → 1, hidden behind a harmless one.
    let long = app
        .patch_task(
            &user,
            &project,
            1,
            json!({"dependencies": [6, 5], "title": "renamed"}),
        )
        .await;
    long.assert_error(409, "dependency_cycle");
    assert!(
        long.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 → 5 → 4 → 3 → 2 → 1"),
        "{}",
        long.text
    );

    // Closing the cycle in the middle of the chain: 3 → 5 → 4 → 3.
    app.patch_task(&user, &project, 3, json!({"dependencies": [2, 5]}))
        .await
        .assert_error(409, "dependency_cycle");

    let one = app.task(&user, &project, 1).await.body;
    assert_eq!(one["title"], "t1", "a refused patch changes no field");
    assert_eq!(one["dependencies"], json!([]));
    assert_eq!(one["version"], 1);
    assert_eq!(app.events(&project).await.len(), events_before);

    // Re-pointing without a cycle is fine: 1 may depend on the side task 6…
    assert_eq!(
        app.patch_task(&user, &project, 1, json!({"dependencies": [6]}))
            .await
            .status,
        200
    );
    // …after which 6 → 5 closes a cycle through that earlier edit and the whole chain.
    let through_both = app
        .patch_task(&user, &project, 6, json!({"dependencies": [5]}))
        .await;
    through_both.assert_error(409, "dependency_cycle");
    assert!(
        through_both.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("6 → 5 → 4 → 3 → 2 → 1 → 6"),
        "{}",
        through_both.text
    );
}

#[tokio::test]
async fn concurrent_edits_cannot_close_a_cycle_between_them() {
    // 1 → 2 and 2 → 1 sent at the same time: each alone is fine, together
    // they are a cycle. The project lock makes the second see the first.
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    for round in 0..10 {
        let project = app.create_project(&user, &format!("P{round}")).await;
        app.create_task(&user, &project, json!({"title": "a"}))
            .await;
        app.create_task(&user, &project, json!({"title": "b"}))
            .await;
        let (first, second) = tokio::join!(
            app.patch_task(&user, &project, 1, json!({"dependencies": [2]})),
            app.patch_task(&user, &project, 2, json!({"dependencies": [1]})),
        );
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}");
    }
}
