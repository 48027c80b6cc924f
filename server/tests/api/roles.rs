//! The role matrix: owner, editor, viewer and non-member against every
//! project route.

use serde_json::json;

use crate::helpers::{TestApp, TestUser};

#[tokio::test]
async fn every_project_route_enforces_roles() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let editor = app.register("Editor").await;
    let viewer = app.register("Viewer").await;
    let stranger = app.register("Stranger").await;
    let project = app.create_project(&owner, "Matrix").await;
    app.add_member(&owner, &project, &editor, "editor").await;
    app.add_member(&owner, &project, &viewer, "viewer").await;
    let base = format!("/api/v1/projects/{project}");

    let callers: [(&str, &TestUser); 4] = [
        ("owner", &owner),
        ("editor", &editor),
        ("viewer", &viewer),
        ("non-member", &stranger),
    ];
    // Expected statuses for owner, editor, viewer, non-member.
    let routes: [(&str, [u16; 4]); 11] = [
        ("list tasks", [200, 200, 200, 404]),
        ("create task", [201, 201, 403, 404]),
        ("get task", [200, 200, 200, 404]),
        ("patch task", [200, 200, 403, 404]),
        ("delete task", [204, 204, 403, 404]),
        ("next task", [200, 200, 200, 404]),
        ("list members", [200, 200, 200, 404]),
        ("add member", [201, 403, 403, 404]),
        ("remove member", [204, 403, 403, 404]),
        ("events", [200, 200, 200, 404]),
        ("list projects shows it", [200, 200, 200, 404]),
    ];

    for (route, expected) in routes {
        for ((role, caller), expected) in callers.iter().zip(expected) {
            // Fresh targets per call, so one caller's success does not change
            // what the next one sees.
            let task = app
                .create_task(&owner, &project, json!({"title": "target"}))
                .await;
            let task_path = format!("{base}/tasks/{}", task["id"]);
            let spare = app.register("Spare").await;
            app.add_member(&owner, &project, &spare, "viewer").await;

            let response = match route {
                "list tasks" => app.get(&format!("{base}/tasks"), &caller.token).await,
                "create task" => {
                    app.post(
                        &format!("{base}/tasks"),
                        &caller.token,
                        json!({"title": "x"}),
                    )
                    .await
                }
                "get task" => app.get(&task_path, &caller.token).await,
                "patch task" => {
                    app.patch(&task_path, &caller.token, json!({"status": "done"}))
                        .await
                }
                "delete task" => app.delete(&task_path, &caller.token).await,
                "next task" => app.get(&format!("{base}/tasks/next"), &caller.token).await,
                "list members" => app.get(&format!("{base}/members"), &caller.token).await,
                "add member" => {
                    let newcomer = app.register("Newcomer").await;
                    app.post(
                        &format!("{base}/members"),
                        &caller.token,
                        json!({"email": newcomer.email, "role": "viewer"}),
                    )
                    .await
                }
                "remove member" => {
                    app.delete(&format!("{base}/members/{}", spare.id), &caller.token)
                        .await
                }
                "events" => app.get(&format!("{base}/events"), &caller.token).await,
                "list projects shows it" => {
                    let mut response = app.get("/api/v1/projects", &caller.token).await;
                    let listed = response.body["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|item| item["id"] == project.as_str());
                    response.status = if listed { 200 } else { 404 };
                    response
                }
                other => unreachable!("{other}"),
            };
            assert_eq!(
                response.status, expected,
                "{route} as {role}: {}",
                response.text
            );
            match response.status {
                403 => response.assert_error(403, "forbidden"),
                404 if *role == "non-member" && route != "list projects shows it" => {
                    response.assert_error(404, "project_not_found")
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn unknown_and_malformed_project_ids_look_like_non_membership() {
    let app = TestApp::spawn().await;
    let user = app.register("Ivy").await;
    let owner = app.register("Owner").await;
    let foreign = app.create_project(&owner, "Foreign").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let a = app
        .get(&format!("/api/v1/projects/{foreign}/tasks"), &user.token)
        .await;
    let b = app
        .get(&format!("/api/v1/projects/{unknown}/tasks"), &user.token)
        .await;
    let c = app
        .get("/api/v1/projects/not-a-uuid/tasks", &user.token)
        .await;
    for response in [&a, &b, &c] {
        response.assert_error(404, "project_not_found");
    }
    assert_eq!(a.body, b.body);
    assert_eq!(b.body, c.body);
}
