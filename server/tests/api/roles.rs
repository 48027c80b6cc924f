//! The role matrix: owner, editor, viewer and non-member, and the owner's
//! API tokens (read, write, and write limited to another project), against
//! every project route.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};

/// One row of the matrix: its name, the operation it exercises as the
/// OpenAPI document names it, and the statuses expected for owner, editor,
/// viewer, non-member, and the owner's read token, write token and write
/// token limited to another project. A project route added without a row fails
/// `the_matrix_covers_every_project_operation_of_the_openapi_document`.
struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    expected: [u16; 7],
}

const fn row(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    expected: [u16; 7],
) -> Row {
    Row {
        name,
        method,
        path,
        expected,
    }
}

const MATRIX: &[Row] = &[
    row(
        "list tasks",
        "get",
        "/api/v1/projects/{project_id}/tasks",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "create task",
        "post",
        "/api/v1/projects/{project_id}/tasks",
        [201, 201, 403, 404, 403, 201, 404],
    ),
    row(
        "get task",
        "get",
        "/api/v1/projects/{project_id}/tasks/{id}",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "patch task",
        "patch",
        "/api/v1/projects/{project_id}/tasks/{id}",
        [200, 200, 403, 404, 403, 200, 404],
    ),
    row(
        "delete task",
        "delete",
        "/api/v1/projects/{project_id}/tasks/{id}",
        [204, 204, 403, 404, 403, 204, 404],
    ),
    row(
        "bulk change",
        "post",
        "/api/v1/projects/{project_id}/tasks/bulk",
        [200, 200, 403, 404, 403, 200, 404],
    ),
    row(
        "next task",
        "get",
        "/api/v1/projects/{project_id}/tasks/next",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "list members",
        "get",
        "/api/v1/projects/{project_id}/members",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "add member",
        "post",
        "/api/v1/projects/{project_id}/members",
        [201, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "remove member",
        "delete",
        "/api/v1/projects/{project_id}/members/{user_id}",
        [204, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "audit log",
        "get",
        "/api/v1/projects/{project_id}/audit",
        [200, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "events",
        "get",
        "/api/v1/projects/{project_id}/events",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "export tasks.json",
        "get",
        "/api/v1/projects/{project_id}/tasks.json",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "export task files",
        "get",
        "/api/v1/projects/{project_id}/task-files",
        [200, 200, 200, 404, 200, 200, 404],
    ),
    row(
        "import a task file",
        "post",
        "/api/v1/projects/{project_id}/imports",
        [201, 201, 403, 404, 403, 201, 404],
    ),
    row(
        "list webhooks",
        "get",
        "/api/v1/projects/{project_id}/webhooks",
        [200, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "create webhook",
        "post",
        "/api/v1/projects/{project_id}/webhooks",
        [201, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "delete webhook",
        "delete",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}",
        [204, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "enable webhook",
        "post",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/enable",
        [200, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "webhook dead letters",
        "get",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/dead-letters",
        [200, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "redeliver",
        "post",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/redeliver",
        [202, 403, 403, 404, 403, 403, 404],
    ),
    row(
        "list projects shows it",
        "get",
        "/api/v1/projects",
        [200, 200, 200, 404, 200, 200, 404],
    ),
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
    let elsewhere = app.create_project(&owner, "Elsewhere").await;
    let token = |access: &'static str, limit: Option<&str>| {
        let mut body = json!({"name": format!("{access} token"), "access": access});
        if let Some(limit) = limit {
            body["project_id"] = json!(limit);
        }
        let app = &app;
        let owner = &owner;
        async move {
            let created = app.post("/api/v1/auth/tokens", &owner.token, body).await;
            assert_eq!(created.status, 201, "{}", created.text);
            TestUser {
                id: owner.id.clone(),
                email: owner.email.clone(),
                token: created.body["secret"].as_str().unwrap().to_owned(),
            }
        }
    };
    let read_token = token("read", None).await;
    let write_token = token("write", None).await;
    let limited_token = token("write", Some(&elsewhere)).await;

    let callers: [(&str, &TestUser); 7] = [
        ("owner", &owner),
        ("editor", &editor),
        ("viewer", &viewer),
        ("non-member", &stranger),
        ("read token", &read_token),
        ("write token", &write_token),
        ("token limited to another project", &limited_token),
    ];
    for row in MATRIX {
        let (route, expected) = (row.name, row.expected);
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
                "bulk change" => {
                    app.post(
                        &format!("{base}/tasks/bulk"),
                        &caller.token,
                        json!({"task_ids": [task["id"]], "set": {"status": "done"}}),
                    )
                    .await
                }
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
                "list webhooks" => app.get(&format!("{base}/webhooks"), &caller.token).await,
                "create webhook" => {
                    let created = app
                        .post(
                            &format!("{base}/webhooks"),
                            &caller.token,
                            json!({"url": "http://127.0.0.1:9/hook"}),
                        )
                        .await;
                    if let Some(id) = created.body["webhook"]["id"].as_str() {
                        app.delete(&format!("{base}/webhooks/{id}"), &owner.token)
                            .await;
                    }
                    created
                }
                "delete webhook" | "enable webhook" | "webhook dead letters" | "redeliver" => {
                    let hook = app
                        .post(
                            &format!("{base}/webhooks"),
                            &owner.token,
                            json!({"url": "http://127.0.0.1:9/hook"}),
                        )
                        .await;
                    assert_eq!(hook.status, 201, "{}", hook.text);
                    let hook_path = format!(
                        "{base}/webhooks/{}",
                        hook.body["webhook"]["id"].as_str().unwrap()
                    );
                    let response = match route {
                        "delete webhook" => app.delete(&hook_path, &caller.token).await,
                        "enable webhook" => {
                            app.post(&format!("{hook_path}/enable"), &caller.token, json!({}))
                                .await
                        }
                        "webhook dead letters" => {
                            app.get(&format!("{hook_path}/dead-letters"), &caller.token)
                                .await
                        }
                        _ => {
                            app.post(&format!("{hook_path}/redeliver"), &caller.token, json!({}))
                                .await
                        }
                    };
                    app.delete(&hook_path, &owner.token).await;
                    response
                }
                "export tasks.json" => app.get(&format!("{base}/tasks.json"), &caller.token).await,
                "export task files" => app.get(&format!("{base}/task-files"), &caller.token).await,
                "import a task file" => {
                    let file = "# Task ID: 1\n# Title: From a file\n# Status: pending\n# Dependencies: None\n# Priority: medium\n# Description: \n# Details:\n\n\n# Test Strategy:\n\n";
                    let response = crate::helpers::http()
                        .post(app.url(&format!("{base}/imports")))
                        .bearer_auth(&caller.token)
                        .header("content-type", "text/plain")
                        .body(file)
                        .send()
                        .await
                        .unwrap();
                    crate::helpers::Response::read(response).await
                }
                "audit log" => app.get(&format!("{base}/audit"), &caller.token).await,
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
                403 if role.ends_with("token") => {
                    let code = response.body["error"]["code"].as_str().unwrap_or_default();
                    assert!(
                        ["read_only_token", "session_required"].contains(&code),
                        "{route} as {role}: {}",
                        response.text
                    );
                }
                403 => response.assert_error(403, "forbidden"),
                404 if route != "list projects shows it" => {
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
    let document: Value = crate::helpers::get(app.url("/api/v1/openapi.json"))
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
    let covered: BTreeSet<(String, String)> = MATRIX
        .iter()
        .filter(|row| row.path.starts_with(PROJECT_SCOPED))
        .map(|row| (row.method.to_owned(), row.path.to_owned()))
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
