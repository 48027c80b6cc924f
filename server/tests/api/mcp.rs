//! The MCP endpoint with the official MCP client (npm
//! `@modelcontextprotocol/sdk`): the tools the contract lists, each called;
//! a refusal comes back as a tool error with the REST status, code and
//! message; agents' changes reach Socket.IO subscribers live; a viewer, or
//! a read-only token, cannot write; no token, no session.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::TestApp;
use crate::sockets::{Clients, WAIT};

const TOOLS: [&str; 11] = [
    "add_dependency",
    "add_subtask",
    "add_task",
    "get_task",
    "get_tasks",
    "list_projects",
    "next_task",
    "remove_dependency",
    "remove_task",
    "set_task_status",
    "update_task",
];

/// Runs the official client: lists the tools, then makes `calls` in order.
async fn mcp(app: &TestApp, token: &str, calls: Value) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    let run = Command::new("node")
        .arg("mcp.mjs")
        .arg(app.url("/mcp"))
        .arg(token)
        .arg(calls.to_string())
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the MCP client finished within a minute")
        .expect("node runs (scripts/test.sh installs the client)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// The structured answer of a successful call.
#[track_caller]
fn ok(result: &Value) -> &Value {
    assert_ne!(result["isError"], true, "{result}");
    &result["structuredContent"]
}

/// The REST error of a refused call.
#[track_caller]
fn refused(result: &Value, status: u16, code: &str) {
    assert_eq!(result["isError"], true, "{result}");
    let error = &result["structuredContent"]["error"];
    assert_eq!(error["status"], status, "{result}");
    assert_eq!(error["code"], code, "{result}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(code), "{text}");
}

#[tokio::test]
async fn an_agent_plans_through_every_tool_and_subscribers_see_it_live() {
    let app = TestApp::spawn().await;
    let owner = app.register("Ada").await;
    let project = app.create_project(&owner, "Agents").await;
    let mut clients = Clients::start().await;
    clients
        .connect("watcher", &app.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    assert_eq!(clients.join("watcher", &project, None).await["ok"], true);

    let p = project.as_str();
    let calls = json!([
        ["list_projects", {}],
        ["add_task", {"project_id": p, "title": "Plan", "priority": "high"}],
        ["add_task", {"project_id": p, "title": "Build", "dependencies": [1]}],
        ["add_subtask", {"project_id": p, "parent_id": 1, "title": "Sketch"}],
        ["get_task", {"project_id": p, "id": 2}],
        ["update_task", {"project_id": p, "id": 2, "details": "Rust, then tests"}],
        ["set_task_status", {"project_id": p, "id": 1, "status": "in-progress"}],
        ["next_task", {"project_id": p}],
        ["add_dependency", {"project_id": p, "id": 1, "depends_on": 2}],
        ["add_dependency", {"project_id": p, "id": 2, "depends_on": 3}],
        ["remove_dependency", {"project_id": p, "id": 2, "depends_on": 3}],
        ["get_tasks", {"project_id": p, "status": "pending"}],
        ["remove_task", {"project_id": p, "id": 3}],
        ["get_task", {"project_id": p, "id": 999}],
        ["add_task", {"project_id": p, "title": ""}],
        ["add_task", {"project_id": p, "title": "x", "colour": "red"}],
        ["set_task_status", {"project_id": p, "id": 2, "status": "finished"}],
        ["get_tasks", {"project_id": "00000000-0000-0000-0000-000000000000"}],
    ]);
    let out = mcp(&app, &owner.token, calls).await;

    let mut names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for tool in out["tools"].as_array().unwrap() {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let add_task = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add_task")
        .unwrap();
    assert_eq!(
        add_task["inputSchema"]["required"],
        json!(["project_id", "title"])
    );

    let r = out["results"].as_array().unwrap();
    assert_eq!(ok(&r[0])["items"][0]["id"], p);
    assert_eq!(ok(&r[1])["id"], 1);
    assert_eq!(ok(&r[1])["priority"], "high");
    assert_eq!(ok(&r[2])["dependencies"], json!([1]));
    assert_eq!(ok(&r[3])["parent_id"], 1);
    assert_eq!(ok(&r[4])["title"], "Build");
    assert_eq!(ok(&r[5])["details"], "Rust, then tests");
    assert_eq!(ok(&r[6])["status"], "in-progress");
    // The in-progress task's open subtask comes first.
    assert_eq!(ok(&r[7])["id"], 3);
    refused(&r[8], 409, "dependency_cycle");
    assert_eq!(ok(&r[9])["dependencies"], json!([1, 3]));
    assert_eq!(ok(&r[10])["dependencies"], json!([1]));
    let pending: Vec<i64> = ok(&r[11])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["id"].as_i64().unwrap())
        .collect();
    assert_eq!(pending, [2, 3]);
    assert_eq!(ok(&r[12])["deleted"], 3);
    refused(&r[13], 404, "task_not_found");
    refused(&r[14], 422, "validation_failed");
    refused(&r[15], 422, "invalid_field");
    refused(&r[16], 422, "invalid_field");
    refused(&r[17], 404, "project_not_found");

    // Every change the agent made reached the subscriber, in order.
    let events = clients.events("watcher", 8, WAIT).await;
    let seen: Vec<(String, i64)> = events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap().to_owned(),
                event["task"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("task.created", 1),
        ("task.created", 2),
        ("task.created", 3),
        ("task.updated", 2),
        ("task.updated", 1),
        ("task.updated", 2),
        ("task.updated", 2),
        ("task.deleted", 3),
    ];
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(kind, id)| (kind.to_string(), *id))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn viewers_and_read_tokens_cannot_write_and_nobody_gets_in_without_a_token() {
    let app = TestApp::spawn().await;
    let owner = app.register("Ada").await;
    let viewer = app.register("Vic").await;
    let project = app.create_project(&owner, "Guarded").await;
    app.add_member(&owner, &project, &viewer, "viewer").await;
    app.create_task(&owner, &project, json!({"title": "Existing"}))
        .await;
    let created = app
        .post(
            "/api/v1/auth/tokens",
            &owner.token,
            json!({"name": "agent", "access": "read"}),
        )
        .await;
    let read_token = created.body["secret"].as_str().unwrap().to_owned();

    let calls = json!([
        ["get_task", {"project_id": project, "id": 1}],
        ["add_task", {"project_id": project, "title": "Not allowed"}],
        ["set_task_status", {"project_id": project, "id": 1, "status": "done"}],
    ]);
    let as_viewer = mcp(&app, &viewer.token, calls.clone()).await;
    let r = as_viewer["results"].as_array().unwrap();
    assert_eq!(ok(&r[0])["title"], "Existing");
    refused(&r[1], 403, "forbidden");
    refused(&r[2], 403, "forbidden");

    let with_read_token = mcp(&app, &read_token, calls).await;
    let r = with_read_token["results"].as_array().unwrap();
    assert_eq!(ok(&r[0])["title"], "Existing");
    refused(&r[1], 403, "read_only_token");
    refused(&r[2], 403, "read_only_token");
    assert_eq!(app.events(&project).await.len(), 1, "nothing was written");

    let nobody = mcp(&app, "", json!([])).await;
    assert!(
        nobody["connect_error"]
            .as_str()
            .unwrap()
            .contains("unauthorized"),
        "{nobody}"
    );
    let response = crate::helpers::http()
        .post(app.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    let response = crate::helpers::Response::read(response).await;
    response.assert_error(401, "unauthorized");
}
