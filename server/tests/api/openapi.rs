//! The OpenAPI document tells the truth: its enums are the wire spellings,
//! and every status the server answers with is documented for the operation
//! that answered it. A client generated from it accepts our responses.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn document(app: &TestApp) -> Value {
    let response = app
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(response.status, 200);
    response.body
}

fn documented_statuses(doc: &Value, method: &str, path: &str) -> Vec<String> {
    let responses = &doc["paths"][path][method]["responses"];
    let statuses: Vec<String> = responses
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .keys()
        .cloned()
        .collect();
    statuses
}

fn enum_of(doc: &Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum schema {schema}"))
        .iter()
        .map(|value| value.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn enums_are_the_wire_spellings() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let wire = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        enum_of(&doc, "TaskStatus"),
        wire(
            protocol::TaskStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect()
        )
    );
    assert_eq!(
        enum_of(&doc, "Priority"),
        wire(protocol::Priority::ALL.iter().map(|p| p.as_str()).collect())
    );
    assert_eq!(
        enum_of(&doc, "Role"),
        wire(protocol::Role::ALL.iter().map(|r| r.as_str()).collect())
    );

    // And what the server really sends is in them.
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "P").await;
    let task = app
        .create_task(
            &owner,
            &project,
            json!({"title": "t", "priority": "critical"}),
        )
        .await;
    assert!(enum_of(&doc, "TaskStatus").contains(&task["status"].as_str().unwrap().to_owned()));
    assert!(enum_of(&doc, "Priority").contains(&task["priority"].as_str().unwrap().to_owned()));
    let members = app
        .get(&format!("/api/v1/projects/{project}/members"), &owner.token)
        .await;
    assert!(enum_of(&doc, "Role").contains(
        &members.body["items"][0]["role"]
            .as_str()
            .unwrap()
            .to_owned()
    ));
}

#[tokio::test]
async fn every_kind_of_operation_documents_its_error_statuses() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let statuses = documented_statuses(&doc, method, path);
            let has = |status: &str| statuses.iter().any(|s| s == status);
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                assert!(has("401"), "{method} {path} lacks 401: {statuses:?}");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{method} {path} lacks {status}: {statuses:?}");
                }
            }
            if path.starts_with("/api/v1/") {
                assert!(has("503"), "{method} {path} lacks 503");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations in the document");
}

#[tokio::test]
async fn statuses_the_server_answers_with_are_documented() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 1024 * 1024).await;
    let doc = document(&app).await;
    let owner = app.register("Owner").await;
    let project = app.create_project(&owner, "P").await;
    app.create_task(&owner, &project, json!({"title": "t"}))
        .await;
    let tasks = format!("/api/v1/projects/{project}/tasks");
    let tasks_doc = "/api/v1/projects/{project_id}/tasks";
    let one_doc = "/api/v1/projects/{project_id}/tasks/{id}";
    let big = "x".repeat(2 * 1024 * 1024);
    let url = app.url(&tasks);
    let raw = |body: String, content_type: &'static str| {
        let client = app.client.clone();
        let url = url.clone();
        let token = owner.token.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let observed: Vec<(&str, &str, u16)> = vec![
        (
            "get",
            tasks_doc,
            app.request(Method::GET, &tasks, None, None, &[])
                .await
                .status,
        ),
        (
            "get",
            tasks_doc,
            app.get(&format!("{tasks}?limit=ten"), &owner.token)
                .await
                .status,
        ),
        (
            "get",
            tasks_doc,
            app.get(&format!("{tasks}?limit=9999"), &owner.token)
                .await
                .status,
        ),
        (
            "get",
            one_doc,
            app.get(&format!("{tasks}/abc"), &owner.token).await.status,
        ),
        (
            "get",
            one_doc,
            app.get(&format!("{tasks}/99"), &owner.token).await.status,
        ),
        (
            "post",
            tasks_doc,
            raw(r#"{"title": 5}"#.into(), "application/json").await,
        ),
        (
            "post",
            tasks_doc,
            raw(format!(r#"{{"title": "{big}"}}"#), "application/json").await,
        ),
        (
            "post",
            tasks_doc,
            raw(r#"{"title": "t"}"#.into(), "text/plain").await,
        ),
        (
            "post",
            tasks_doc,
            raw(r#"{"title": ""}"#.into(), "application/json").await,
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (method, path, status) in observed {
        seen.insert(status);
        assert!(
            documented_statuses(&doc, method, path).contains(&status.to_string()),
            "{method} {path} answered {status}, which its document does not list"
        );
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![400, 401, 404, 413, 415, 422],
        "the requests above produce each of these statuses"
    );
}
