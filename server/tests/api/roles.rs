//! The role matrix: owner, editor, viewer and non-member against every
//! project route.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};

/// The operation each row of the matrix exercises, as the OpenAPI document
/// names it. A project route added without a row fails
/// `the_matrix_covers_every_project_operation_of_the_openapi_document`.
const MATRIX_OPERATIONS: &[(&str, &str, &str)] = &[
    ("list tasks", "get", "/api/v1/projects/{project_id}/tasks"),
    ("create task", "post", "/api/v1/projects/{project_id}/tasks"),
    (
        "get task",
        "get",
        "/api/v1/projects/{project_id}/tasks/{id}",
    ),
    (
        "patch task",
        "patch",
        "/api/v1/projects/{project_id}/tasks/{id}",
    ),
    (
        "delete task",
        "delete",
        "/api/v1/projects/{project_id}/tasks/{id}",
    ),
    (
        "next task",
        "get",
        "/api/v1/projects/{project_id}/tasks/next",
    ),
    (
        "list members",
        "get",
        "/api/v1/projects/{project_id}/members",
    ),
    (
        "add member",
        "post",
        "/api/v1/projects/{project_id}/members",
    ),
    (
        "remove member",
        "delete",
        "/api/v1/projects/{project_id}/members/{user_id}",
    ),
    ("events", "get", "/api/v1/projects/{project_id}/events"),
    ("list projects shows it", "get", "/api/v1/projects"),
];

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

    let rows: BTreeSet<&str> = routes.iter().map(|(route, _)| *route).collect();
    let mapped: BTreeSet<&str> = MATRIX_OPERATIONS.iter().map(|(row, _, _)| *row).collect();
    assert_eq!(
        rows, mapped,
        "every row names its operation in MATRIX_OPERATIONS"
    );

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

/// Every operation the API documents on a project is in the matrix: roles
/// are checked on routes added after it was written. (Creating and listing
/// projects are not on a project: any signed-in user may.)
const PROJECT_SCOPED: &str = "/api/v1/projects/{project_id}";

#[tokio::test]
async fn the_matrix_covers_every_project_operation_of_the_openapi_document() {
    let app = TestApp::spawn().await;
    let document: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with(PROJECT_SCOPED))
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|method| {
                    ["get", "post", "patch", "put", "delete"].contains(&method.as_str())
                })
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> = MATRIX_OPERATIONS
        .iter()
        .filter(|(_, _, path)| path.starts_with(PROJECT_SCOPED))
        .map(|(_, method, path)| (method.to_string(), path.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "project operations without a row in the role matrix: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "matrix rows for operations the API no longer has: {stale:?}"
    );
}
