//! API tokens: shown once, stored hashed, read or write, limited to a
//! project, expiring, revocable at once (open sockets included), and never
//! able to act as a signed-in person (tokens, sessions, password, members).
//! The role matrix (`roles.rs`) has the token columns for every route.

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};
use crate::sockets::{Clients, WAIT};

async fn create_token(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let created = app.post("/api/v1/auth/tokens", &user.token, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    created.body
}

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_listed_without_its_secret() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let created = create_token(
        &app,
        &ada,
        json!({"name": "ci", "access": "read", "expires_in_days": 30}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("tmpat_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created["token"]["access"], "read");
    assert!(created["token"]["expires_at"].is_string());

    let listed = app.get("/api/v1/auth/tokens", &ada.token).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(
        !listed.text.contains(secret),
        "the list never shows a secret"
    );
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_hash from api_tokens")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], secret.as_bytes(), "only a hash is kept");

    // It signs requests in, and its use is noted.
    let me = app.get("/api/v1/auth/me", secret).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], ada.id.as_str());
    let listed = app.get("/api/v1/auth/tokens", &ada.token).await;
    assert!(
        listed.body["items"][0]["last_used_at"].is_string(),
        "{}",
        listed.text
    );
}

#[tokio::test]
async fn bad_requests_for_tokens_are_refused_with_reasons() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let cases = [
        (json!({"name": "", "access": "read"}), 422),
        (json!({"name": "x", "access": "admin"}), 422),
        (
            json!({"name": "x", "access": "read", "expires_in_days": 0}),
            422,
        ),
        (
            json!({"name": "x", "access": "read", "expires_in_days": 100000}),
            422,
        ),
        (
            json!({"name": "x", "access": "read", "project_id": uuid::Uuid::now_v7().to_string()}),
            404,
        ),
        (json!({"name": "x", "access": "read", "scope": "all"}), 422),
        (json!({"name": 7, "access": "read"}), 400),
    ];
    for (body, status) in cases {
        let response = app
            .post("/api/v1/auth/tokens", &ada.token, body.clone())
            .await;
        assert_eq!(response.status, status, "{body}: {}", response.text);
        assert!(response.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let revoke = app
        .delete("/api/v1/auth/tokens/not-an-id", &ada.token)
        .await;
    revoke.assert_error(404, "token_not_found");
}

#[tokio::test]
async fn a_token_cannot_act_as_a_signed_in_person() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let created = create_token(&app, &ada, json!({"name": "agent", "access": "write"})).await;
    let secret = created["secret"].as_str().unwrap();
    let attempts = [
        app.post("/api/v1/auth/tokens", secret, json!({"name": "more", "access": "write"})).await,
        app.get("/api/v1/auth/tokens", secret).await,
        app.get("/api/v1/auth/sessions", secret).await,
        app.post("/api/v1/auth/password", secret, json!({"current_password": crate::helpers::PASSWORD, "new_password": "another password"})).await,
    ];
    for response in attempts {
        response.assert_error(403, "session_required");
    }
    // A write token creates projects (an agent setting one up) ...
    let project = app
        .post("/api/v1/projects", secret, json!({"name": "By an agent"}))
        .await;
    assert_eq!(project.status, 201);
    // ... a limited one does not.
    let project_id = project.body["id"].as_str().unwrap();
    let limited = create_token(
        &app,
        &ada,
        json!({"name": "one", "access": "write", "project_id": project_id}),
    )
    .await;
    let limited = limited["secret"].as_str().unwrap();
    app.post("/api/v1/projects", limited, json!({"name": "x"}))
        .await
        .assert_error(403, "token_limited_to_project");
    let listed = app.get("/api/v1/projects", limited).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn revoked_and_expired_tokens_stop_working_at_once_sockets_included() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let project = app.create_project(&ada, "Live").await;
    let created = create_token(&app, &ada, json!({"name": "watcher", "access": "read"})).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap();

    let mut clients = Clients::start().await;
    clients
        .connect("agent", &app.address, Some(&secret), "websocket")
        .await
        .expect("connects with a token");
    let ack = clients
        .emit("agent", "join", json!({"project_id": project}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");

    let revoked = app
        .delete(&format!("/api/v1/auth/tokens/{id}"), &ada.token)
        .await;
    assert_eq!(revoked.status, 204);
    app.get("/api/v1/projects", &secret)
        .await
        .assert_error(401, "unauthorized");
    let closed = clients.next_of("agent", &["disconnect"], WAIT).await;
    assert!(closed.is_some(), "the token's socket is closed");

    // Expired: past its date, it is as unknown as a made-up one.
    let expiring = create_token(
        &app,
        &ada,
        json!({"name": "short", "access": "read", "expires_in_days": 1}),
    )
    .await;
    sqlx::query(
        "update api_tokens set expires_at = now() - interval '1 second' where name = 'short'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.get("/api/v1/projects", expiring["secret"].as_str().unwrap())
        .await
        .assert_error(401, "unauthorized");
}
