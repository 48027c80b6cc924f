//! Every kind of bad input gets the contract's error body and a 4xx, and
//! leaves nothing behind.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Response, TestApp, TestUser};

async fn raw(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&user.token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Response::read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn bodies_that_are_not_valid_task_json() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let path = format!("/api/v1/projects/{project}/tasks");
    let json_type = Some("application/json");

    // (what, content type, body, status, code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "truncated JSON",
            json_type,
            br#"{"title": "a""#.to_vec(),
            400,
            "malformed_json",
        ),
        (
            "not JSON at all",
            json_type,
            b"title=a".to_vec(),
            400,
            "malformed_json",
        ),
        ("empty body", json_type, Vec::new(), 400, "malformed_json"),
        (
            "invalid UTF-8",
            json_type,
            b"{\"title\": \"\xff\xfe\"}".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "array body",
            json_type,
            br#"[{"title": "a"}]"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "title is a number",
            json_type,
            br#"{"title": 5}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "dependencies is a string",
            json_type,
            br#"{"title": "a", "dependencies": "1"}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "dependency is a float",
            json_type,
            br#"{"title": "a", "dependencies": [1.5]}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "status is a number",
            json_type,
            br#"{"title": "a", "status": 3}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "title is null",
            json_type,
            br#"{"title": null}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "description is null",
            json_type,
            br#"{"title": "a", "description": null}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "parent id overflows",
            json_type,
            br#"{"title": "a", "parent_id": 99999999999999999999}"#.to_vec(),
            400,
            "invalid_json_type",
        ),
        (
            "unknown status",
            json_type,
            br#"{"title": "a", "status": "finished"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "unknown priority",
            json_type,
            br#"{"title": "a", "priority": "urgent"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "unknown field",
            json_type,
            br#"{"title": "a", "colour": "red"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "server-owned field",
            json_type,
            br#"{"title": "a", "version": 9}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "missing title",
            json_type,
            br#"{"description": "a"}"#.to_vec(),
            422,
            "invalid_field",
        ),
        (
            "empty title",
            json_type,
            br#"{"title": "   "}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            "NUL in title",
            json_type,
            br#"{"title": "a\u0000b"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            "no content type",
            None,
            br#"{"title": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "wrong content type",
            Some("text/plain"),
            br#"{"title": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (what, content_type, body, status, code) in cases {
        let response = raw(&app, &user, Method::POST, &path, content_type, body).await;
        assert_eq!(response.status, status, "{what}: {}", response.text);
        response.assert_error(status, code);
    }

    let huge_title = app
        .post(&path, &user.token, json!({"title": "x".repeat(10_000)}))
        .await;
    huge_title.assert_error(422, "validation_failed");
    assert!(huge_title.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("title"));

    // Nothing was written by any of them.
    let tasks: i64 = sqlx::query_scalar("select count(*) from tasks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((tasks, events), (0, 0));
}

#[tokio::test]
async fn patch_bodies_are_checked_the_same_way() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "a"}))
        .await;

    app.patch_task(&user, &project, 1, json!({"title": null}))
        .await
        .assert_error(400, "invalid_json_type");
    app.patch_task(&user, &project, 1, json!({"id": 4}))
        .await
        .assert_error(422, "invalid_field");
    app.patch_task(&user, &project, 1, json!({"status": "Done"}))
        .await
        .assert_error(422, "invalid_field");
    app.patch_task(&user, &project, 1, json!({"assignee_id": 7}))
        .await
        .assert_error(400, "invalid_json_type");
    // Valid fields beside an invalid one are not applied either.
    app.patch_task(
        &user,
        &project,
        1,
        json!({"title": "b", "dependencies": [99]}),
    )
    .await
    .assert_error(422, "unknown_dependency");
    let task = app.task(&user, &project, 1).await.body;
    assert_eq!(
        (task["title"].as_str(), task["version"].as_i64()),
        (Some("a"), Some(1))
    );
}

#[tokio::test]
async fn body_size_limit_is_configurable_and_answers_413() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 64 * 1024).await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let path = format!("/api/v1/projects/{project}/tasks");

    let big = app
        .post(
            &path,
            &user.token,
            json!({"title": "a", "details": "x".repeat(100_000)}),
        )
        .await;
    big.assert_error(413, "payload_too_large");
    assert!(big.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("65536"));
    let fits = app
        .post(
            &path,
            &user.token,
            json!({"title": "a", "details": "x".repeat(60_000)}),
        )
        .await;
    assert_eq!(fits.status, 201);
}

#[tokio::test]
async fn one_mebibyte_is_always_accepted_by_default() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let path = format!("/api/v1/projects/{project}/tasks");
    let details = "x".repeat(1024 * 1024 - 100);
    let response = app
        .post(
            &path,
            &user.token,
            json!({"title": "a", "details": details}),
        )
        .await;
    // Over the per-field bound, so 422 — but not refused for its size.
    assert_ne!(response.status, 413);
    let fits = app
        .post(
            &path,
            &user.token,
            json!({"title": "a", "details": "y".repeat(1_000_000)}),
        )
        .await;
    assert_eq!(
        fits.status,
        201,
        "{}",
        &fits.text[..fits.text.len().min(200)]
    );
    let over = app
        .post(
            &path,
            &user.token,
            json!({"title": "a", "details": "z".repeat(3 * 1024 * 1024)}),
        )
        .await;
    over.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn paths_and_queries_that_make_no_sense() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let tasks = format!("/api/v1/projects/{project}/tasks");

    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{tasks}/abc"), 400, "invalid_path"),
        (format!("{tasks}/-1"), 400, "invalid_path"),
        (format!("{tasks}/0"), 400, "invalid_path"),
        (
            format!("{tasks}/99999999999999999999999"),
            400,
            "invalid_path",
        ),
        (
            "/api/v1/projects/%FF%FE/tasks".to_owned(),
            400,
            "invalid_path",
        ),
        (format!("{tasks}?limit=-5"), 422, "validation_failed"),
        (format!("{tasks}?limit=0"), 422, "validation_failed"),
        (format!("{tasks}?limit=501"), 422, "validation_failed"),
        (
            format!("{tasks}?limit=1000000000000"),
            422,
            "validation_failed",
        ),
        (format!("{tasks}?limit=ten"), 400, "invalid_query"),
        (format!("{tasks}?limit=1e3"), 400, "invalid_query"),
        (format!("{tasks}?cursor=forged"), 400, "invalid_cursor"),
        (format!("{tasks}?status=finished"), 422, "validation_failed"),
        (format!("{tasks}?status=%FF"), 422, "validation_failed"),
        ("/api/v1/nothing-here".to_owned(), 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let response = app.get(&path, &user.token).await;
        assert_eq!(response.status, status, "{path}: {}", response.text);
        response.assert_error(status, code);
    }

    let wrong_method = app
        .request(
            Method::PUT,
            &tasks,
            Some(&user.token),
            Some(&json!({})),
            &[],
        )
        .await;
    wrong_method.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn text_fields_hold_whatever_fits_in_an_accepted_body() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    // A body of exactly 1 MiB, which the contract always accepts.
    let overhead = json!({"title": "a", "description": ""}).to_string().len();
    let description = "x".repeat(1024 * 1024 - overhead);
    app.create_task(
        &user,
        &project,
        json!({"title": "a", "description": description}),
    )
    .await;
    let task = app.task(&user, &project, 1).await.body;
    assert_eq!(
        task["description"].as_str().map(str::len),
        Some(description.len())
    );

    let details = "é".repeat(500_000);
    let patched = app
        .patch_task(&user, &project, 1, json!({"details": details}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
}

#[tokio::test]
async fn text_postgres_cannot_store_is_a_4xx_everywhere() {
    let app = TestApp::spawn().await;
    let login = json!({"email": "a\u{0}@x.io", "password": "whatever password"});
    let signed_in = app
        .request(Method::POST, "/api/v1/auth/login", None, Some(&login), &[])
        .await;
    signed_in.assert_error(401, "unauthorized");
    let register = json!({"email": "a\u{0}b@x.io", "name": "A", "password": "long enough"});
    app.request(
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(&register),
        &[],
    )
    .await
    .assert_error(422, "validation_failed");
    let user = app.register("Ann").await;
    app.post("/api/v1/projects", &user.token, json!({"name": "a\u{0}b"}))
        .await
        .assert_error(422, "validation_failed");
    let project = app.create_project(&user, "P").await;
    app.post(
        &format!("/api/v1/projects/{project}/tasks"),
        &user.token,
        json!({"title": "t", "test_strategy": "x\u{0}"}),
    )
    .await
    .assert_error(422, "validation_failed");
}
