use reqwest::Method;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_new_task_gets_the_next_id_and_the_contract_defaults() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;

    let first = app
        .create_task(&user, &project, json!({"title": "  Set up CI "}))
        .await;
    assert_eq!(first["id"], 1);
    assert_eq!(first["project_id"], project.as_str());
    assert_eq!(first["title"], "Set up CI");
    for field in ["description", "details", "test_strategy"] {
        assert_eq!(first[field], "", "{field}");
    }
    assert_eq!(first["status"], "pending");
    assert_eq!(first["priority"], "medium");
    assert_eq!(first["dependencies"], json!([]));
    assert_eq!(first["assignee_id"], json!(null));
    assert_eq!(first["parent_id"], json!(null));
    assert_eq!(first["version"], 1);
    assert_eq!(first["created_at"], first["updated_at"]);

    let second = app
        .create_task(
            &user,
            &project,
            json!({
                "title": "Write the parser", "description": "d", "details": "det",
                "test_strategy": "ts", "status": "in-progress", "priority": "high",
                "dependencies": [1, 1], "assignee_id": user.id, "parent_id": null
            }),
        )
        .await;
    assert_eq!(second["id"], 2);
    assert_eq!(second["status"], "in-progress");
    assert_eq!(second["priority"], "high");
    assert_eq!(second["dependencies"], json!([1]), "duplicates collapse");
    assert_eq!(second["assignee_id"], user.id.as_str());
    assert_eq!(second["test_strategy"], "ts");

    // Ids are per project.
    let other = app.create_project(&user, "Q").await;
    assert_eq!(
        app.create_task(&user, &other, json!({"title": "x"})).await["id"],
        1
    );

    assert_eq!(
        app.events(&project).await,
        [(1, "task.created".into(), 1), (2, "task.created".into(), 2)]
    );
}

#[tokio::test]
async fn get_carries_an_etag_and_honours_if_none_match() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "t"}))
        .await;

    let response = app.task(&user, &project, 1).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(response.body["title"], "t");

    let path = format!("/api/v1/projects/{project}/tasks/1");
    let cached = app
        .request(
            Method::GET,
            &path,
            Some(&user.token),
            None,
            &[("if-none-match", "\"1\"")],
        )
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.text.is_empty());
    assert_eq!(cached.header("etag"), Some("\"1\""));

    let stale = app
        .request(
            Method::GET,
            &path,
            Some(&user.token),
            None,
            &[("if-none-match", "\"0\"")],
        )
        .await;
    assert_eq!(stale.status, 200);

    app.task(&user, &project, 99)
        .await
        .assert_error(404, "task_not_found");
}

#[tokio::test]
async fn patch_changes_fields_bumps_the_version_and_logs_an_event() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(
        &user,
        &project,
        json!({"title": "t", "description": "keep"}),
    )
    .await;

    let response = app
        .patch_task(
            &user,
            &project,
            1,
            json!({"status": "done", "priority": "low", "assignee_id": user.id}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.body["status"], "done");
    assert_eq!(response.body["priority"], "low");
    assert_eq!(response.body["description"], "keep", "fields not sent stay");
    assert_eq!(response.body["version"], 2);
    assert_eq!(response.header("etag"), Some("\"2\""));

    let unassigned = app
        .patch_task(&user, &project, 1, json!({"assignee_id": null}))
        .await;
    assert_eq!(unassigned.body["assignee_id"], json!(null));
    assert_eq!(unassigned.body["version"], 3);
    assert_eq!(app.events(&project).await.len(), 3);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version_and_logs_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "t", "priority": "high"}))
        .await;

    for body in [
        json!({}),
        json!({"title": "t", "priority": "high", "dependencies": []}),
    ] {
        let response = app.patch_task(&user, &project, 1, body).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body["version"], 1);
    }
    assert_eq!(app.events(&project).await.len(), 1);
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "t"}))
        .await;
    let path = format!("/api/v1/projects/{project}/tasks/1");

    let first = app
        .request(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(&json!({"title": "a"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(first.status, 200);

    let stale = app
        .request(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(&json!({"title": "b"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    stale.assert_error(412, "version_mismatch");
    let current = app.task(&user, &project, 1).await;
    assert_eq!(current.body["title"], "a", "nothing changed");
    assert_eq!(current.body["version"], 2);

    let bare = app
        .request(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(&json!({"title": "c"})),
            &[("if-match", "2")],
        )
        .await;
    assert_eq!(bare.status, 200, "a bare version is accepted");
    assert_eq!(bare.body["version"], 3);

    let garbage = app
        .request(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(&json!({"title": "d"})),
            &[("if-match", "W/\"x\"")],
        )
        .await;
    garbage.assert_error(412, "version_mismatch");

    let stale_delete = app
        .request(
            Method::DELETE,
            &path,
            Some(&user.token),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    stale_delete.assert_error(412, "version_mismatch");
    assert_eq!(app.task(&user, &project, 1).await.status, 200);
    assert_eq!(app.events(&project).await.len(), 3);
}

#[tokio::test]
async fn delete_takes_subtasks_along_and_strips_dependencies_in_one_change() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "parent"}))
        .await; // 1
    app.create_task(&user, &project, json!({"title": "sub a", "parent_id": 1}))
        .await; // 2
    app.create_task(
        &user,
        &project,
        json!({"title": "sub b", "parent_id": 1, "dependencies": [2]}),
    )
    .await; // 3
    app.create_task(&user, &project, json!({"title": "other"}))
        .await; // 4
    app.create_task(
        &user,
        &project,
        json!({"title": "needs parent", "dependencies": [1, 4]}),
    )
    .await; // 5
    app.create_task(
        &user,
        &project,
        json!({"title": "needs sub", "dependencies": [4, 3]}),
    )
    .await; // 6

    let response = app
        .delete(&format!("/api/v1/projects/{project}/tasks/1"), &user.token)
        .await;
    assert_eq!(response.status, 204, "{}", response.text);

    for gone in [1, 2, 3] {
        app.task(&user, &project, gone)
            .await
            .assert_error(404, "task_not_found");
    }
    let five = app.task(&user, &project, 5).await.body;
    assert_eq!(five["dependencies"], json!([4]));
    assert_eq!(five["version"], 2);
    let six = app.task(&user, &project, 6).await.body;
    assert_eq!(six["dependencies"], json!([4]));
    assert_eq!(six["version"], 2);
    assert_eq!(
        app.task(&user, &project, 4).await.body["version"],
        1,
        "untouched"
    );

    let events = app.events(&project).await;
    assert_eq!(
        events[6..],
        [
            (7, "task.deleted".into(), 2),
            (8, "task.deleted".into(), 3),
            (9, "task.deleted".into(), 1),
            (10, "task.updated".into(), 5),
            (11, "task.updated".into(), 6),
        ]
    );
    app.delete(&format!("/api/v1/projects/{project}/tasks/1"), &user.token)
        .await
        .assert_error(404, "task_not_found");

    // Ids are never reused.
    assert_eq!(
        app.create_task(&user, &project, json!({"title": "new"}))
            .await["id"],
        7
    );
}

#[tokio::test]
async fn parents_must_be_top_level_tasks_of_the_project() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "top"}))
        .await; // 1
    app.create_task(&user, &project, json!({"title": "sub", "parent_id": 1}))
        .await; // 2
    app.create_task(&user, &project, json!({"title": "loose"}))
        .await; // 3
    let path = format!("/api/v1/projects/{project}/tasks");

    app.post(&path, &user.token, json!({"title": "x", "parent_id": 99}))
        .await
        .assert_error(422, "unknown_parent");
    app.post(&path, &user.token, json!({"title": "x", "parent_id": 2}))
        .await
        .assert_error(422, "validation_failed");
    app.patch_task(&user, &project, 3, json!({"parent_id": 3}))
        .await
        .assert_error(422, "validation_failed");
    app.patch_task(&user, &project, 1, json!({"parent_id": 3}))
        .await
        .assert_error(422, "validation_failed");

    let moved = app
        .patch_task(&user, &project, 3, json!({"parent_id": 1}))
        .await;
    assert_eq!(moved.status, 200);
    assert_eq!(moved.body["parent_id"], 1);
    let freed = app
        .patch_task(&user, &project, 3, json!({"parent_id": null}))
        .await;
    assert_eq!(freed.body["parent_id"], json!(null));
}

#[tokio::test]
async fn assignees_must_be_members() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let outsider = app.register("Out").await;
    let project = app.create_project(&user, "P").await;
    let path = format!("/api/v1/projects/{project}/tasks");

    app.post(
        &path,
        &user.token,
        json!({"title": "x", "assignee_id": outsider.id}),
    )
    .await
    .assert_error(422, "unknown_assignee");
    app.post(
        &path,
        &user.token,
        json!({"title": "x", "assignee_id": "nobody"}),
    )
    .await
    .assert_error(422, "unknown_assignee");
    app.add_member(&user, &project, &outsider, "viewer").await;
    let task = app
        .create_task(
            &user,
            &project,
            json!({"title": "x", "assignee_id": outsider.id}),
        )
        .await;
    assert_eq!(task["assignee_id"], outsider.id.as_str());
}

#[tokio::test]
async fn events_endpoint_pages_through_the_change_log() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    for n in 0..5 {
        app.create_task(&user, &project, json!({"title": format!("t{n}")}))
            .await;
    }
    app.patch_task(&user, &project, 2, json!({"status": "done"}))
        .await;

    let base = format!("/api/v1/projects/{project}/events");
    let all = app.get(&base, &user.token).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["latest_seq"], 6);
    let seqs: Vec<i64> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let last = &all.body["items"][5];
    assert_eq!(last["type"], "task.updated");
    assert_eq!(last["actor_id"], user.id.as_str());
    assert_eq!(last["project_id"], project.as_str());
    assert_eq!(last["task"]["status"], "done");
    assert_eq!(last["task"]["version"], 2);

    let page = app
        .get(&format!("{base}?since=4&limit=1"), &user.token)
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["items"][0]["seq"], 5);

    app.get(&format!("{base}?since=7"), &user.token)
        .await
        .assert_error(422, "invalid_since");
    app.get(&format!("{base}?since=-1"), &user.token)
        .await
        .assert_error(422, "validation_failed");
    app.get(&format!("{base}?since=x"), &user.token)
        .await
        .assert_error(400, "invalid_query");
}
