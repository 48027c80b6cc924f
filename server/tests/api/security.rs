//! Browser sessions in cookies with CSRF protection, the session list and
//! revocation, password changes, security headers and CORS.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Response, TestApp, TestUser, PASSWORD};
use crate::sockets::{Clients, WAIT};

/// A browser's cookie jar for one server, filled from `Set-Cookie`.
#[derive(Debug, Default)]
struct Jar {
    session: Option<String>,
    csrf: Option<String>,
}

impl Jar {
    /// The cookies one sign-in (or sign-out) answer set; every attribute
    /// that makes them safe is checked on the way.
    fn from(response: &Response) -> Jar {
        let mut jar = Jar::default();
        for value in response.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            for attribute in ["Secure", "SameSite=Strict", "Path=/"] {
                assert!(attributes.contains(attribute), "{text} lacks {attribute}");
            }
            assert!(!attributes.contains("Domain"), "{text}");
            match name {
                "__Host-tm_session" => {
                    assert!(attributes.contains("HttpOnly"), "{text}");
                    jar.session = Some(value.to_owned());
                }
                "__Host-tm_csrf" => {
                    assert!(!attributes.contains("HttpOnly"), "the app reads it: {text}");
                    jar.csrf = Some(value.to_owned());
                }
                other => panic!("unexpected cookie {other}"),
            }
        }
        jar
    }

    fn header(&self) -> String {
        format!(
            "__Host-tm_session={}; __Host-tm_csrf={}",
            self.session.as_deref().unwrap_or_default(),
            self.csrf.as_deref().unwrap_or_default()
        )
    }
}

async fn sign_in(app: &TestApp, user: &TestUser, user_agent: &str) -> (Response, Jar) {
    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": user.email, "password": PASSWORD})),
            &[("user-agent", user_agent)],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let jar = Jar::from(&response);
    (response, jar)
}

/// A request signed in by cookie alone, with extra headers.
async fn by_cookie(
    app: &TestApp,
    jar: &Jar,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Response {
    let cookie = jar.header();
    let mut all = vec![("cookie", cookie.as_str())];
    all.extend_from_slice(headers);
    app.request(method, path, None, body.as_ref(), &all).await
}

#[tokio::test]
async fn signing_in_sets_cookies_that_authenticate_reads_and_csrf_checked_writes() {
    let app = TestApp::spawn().await;
    let user = app.register("Cora").await;
    let (answer, jar) = sign_in(&app, &user, "test").await;
    // The token stays in the body for clients without cookies; the cookie
    // holds the same session, and the answer is never cached on the way.
    assert_eq!(
        jar.session.as_deref(),
        answer.body["token"].as_str(),
        "{answer:?}"
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let csrf = jar.csrf.clone().unwrap();
    assert_ne!(Some(&csrf), jar.session.as_ref());

    let me = by_cookie(&app, &jar, Method::GET, "/api/v1/auth/me", None, &[]).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user.id.as_str());

    let body = json!({"name": "By cookie"});
    let without = by_cookie(
        &app,
        &jar,
        Method::POST,
        "/api/v1/projects",
        Some(body.clone()),
        &[],
    )
    .await;
    without.assert_error(403, "csrf_failed");
    let wrong = by_cookie(
        &app,
        &jar,
        Method::POST,
        "/api/v1/projects",
        Some(body.clone()),
        &[("x-csrf-token", "made-up")],
    )
    .await;
    wrong.assert_error(403, "csrf_failed");
    // Another session's value does not fit this one.
    let (_, other) = sign_in(&app, &user, "test").await;
    let crossed = by_cookie(
        &app,
        &jar,
        Method::POST,
        "/api/v1/projects",
        Some(body.clone()),
        &[("x-csrf-token", other.csrf.as_deref().unwrap())],
    )
    .await;
    crossed.assert_error(403, "csrf_failed");
    let projects = app.get("/api/v1/projects", &user.token).await;
    assert_eq!(
        projects.body["items"],
        json!([]),
        "refused writes created nothing"
    );

    let with = by_cookie(
        &app,
        &jar,
        Method::POST,
        "/api/v1/projects",
        Some(body),
        &[("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(with.status, 201, "{}", with.text);

    // A bearer token needs no CSRF value: no browser sends one by itself.
    let bearer = app
        .post("/api/v1/projects", &user.token, json!({"name": "By token"}))
        .await;
    assert_eq!(bearer.status, 201);
    // An expired or unknown cookie is a 401, whatever else is missing.
    let stale = Jar {
        session: Some("no-such-session".into()),
        csrf: Some(csrf),
    };
    let response = by_cookie(
        &app,
        &stale,
        Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "x"})),
        &[],
    )
    .await;
    response.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn cookie_requests_from_pages_of_other_origins_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.register("Odo").await;
    let (_, jar) = sign_in(&app, &user, "test").await;
    let csrf = jar.csrf.clone().unwrap();
    let ours = app.address.clone();
    for (origin, expected) in [
        (ours.as_str(), 201),
        ("https://evil.example", 403),
        ("null", 403),
    ] {
        let response = by_cookie(
            &app,
            &jar,
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "P"})),
            &[("x-csrf-token", &csrf), ("origin", origin)],
        )
        .await;
        assert_eq!(response.status, expected, "{origin}: {}", response.text);
        if expected == 403 {
            response.assert_error(403, "origin_not_allowed");
        }
    }
    // A bearer call from another origin is not a browser's ambient
    // credential: the origin check is the CORS policy's business.
    let bearer = app
        .request(
            Method::GET,
            "/api/v1/projects",
            Some(&user.token),
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(bearer.status, 200);
    assert!(bearer.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn signing_out_clears_the_cookies_and_ends_the_session() {
    let app = TestApp::spawn().await;
    let user = app.register("Sid").await;
    let (_, jar) = sign_in(&app, &user, "test").await;
    let csrf = jar.csrf.clone().unwrap();
    let out = by_cookie(&app, &jar, Method::POST, "/api/v1/auth/logout", None, &[]).await;
    out.assert_error(403, "csrf_failed");
    let out = by_cookie(
        &app,
        &jar,
        Method::POST,
        "/api/v1/auth/logout",
        None,
        &[("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text);
    let cleared: Vec<&str> = out
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    for cookie in cleared {
        assert!(cookie.contains("Max-Age=0"), "{cookie}");
    }
    let me = by_cookie(&app, &jar, Method::GET, "/api/v1/auth/me", None, &[]).await;
    me.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn sockets_connect_with_the_session_cookie_from_our_own_pages_only() {
    let app = TestApp::spawn().await;
    let user = app.register("Sol").await;
    let project = app.create_project(&user, "P").await;
    let (_, jar) = sign_in(&app, &user, "test").await;
    let mut clients = Clients::start().await;
    for transport in ["websocket", "polling"] {
        let ours = clients
            .connect_with_headers(
                &format!("ours-{transport}"),
                &app.address,
                None,
                transport,
                json!({"cookie": jar.header(), "origin": app.address}),
            )
            .await;
        assert_eq!(ours.as_deref(), Ok(transport));
        let ack = clients
            .join(&format!("ours-{transport}"), &project, None)
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    let foreign = clients
        .connect_with_headers(
            "foreign",
            &app.address,
            None,
            "websocket",
            json!({"cookie": jar.header(), "origin": "https://evil.example"}),
        )
        .await;
    assert_eq!(
        foreign,
        Err(protocol::handshake_refusal::ORIGIN_NOT_ALLOWED.to_owned())
    );
    let stale = clients
        .connect_with_headers(
            "stale",
            &app.address,
            None,
            "websocket",
            json!({"cookie": "__Host-tm_session=gone"}),
        )
        .await;
    assert_eq!(
        stale,
        Err(protocol::handshake_refusal::INVALID_TOKEN.to_owned())
    );
}

#[tokio::test]
async fn users_list_their_sessions_and_revoke_one_which_closes_its_connections() {
    let app = TestApp::spawn().await;
    let user = app.register("Vera").await;
    let stranger = app.register("Stan").await;
    let project = app.create_project(&user, "P").await;
    let (laptop, _) = sign_in(&app, &user, "Laptop Browser/1.0").await;
    let laptop_token = laptop.body["token"].as_str().unwrap().to_owned();
    let (phone, _) = sign_in(&app, &user, "Phone\tBrowser/2.0").await;
    let phone_token = phone.body["token"].as_str().unwrap().to_owned();

    let listed = app.get("/api/v1/auth/sessions", &laptop_token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "registration, laptop and phone: {items:?}");
    // Newest first; the caller's own marked; the user agent kept without
    // control characters; the address; never a token.
    assert_eq!(items[0]["user_agent"], "PhoneBrowser/2.0");
    assert_eq!(items[1]["user_agent"], "Laptop Browser/1.0");
    assert_eq!(items[1]["current"], true);
    assert_eq!(items[0]["current"], false);
    assert_eq!(items[1]["ip"], "127.0.0.1");
    assert!(!listed.text.contains(&laptop_token) && !listed.text.contains(&phone_token));
    let phone_id = items[0]["id"].as_str().unwrap().to_owned();

    let mut clients = Clients::start().await;
    clients
        .connect("phone", &app.address, Some(&phone_token), "websocket")
        .await
        .unwrap();
    assert_eq!(clients.join("phone", &project, None).await["ok"], true);

    // Nobody else can end it, or learn that it exists.
    let foreign = app
        .delete(
            &format!("/api/v1/auth/sessions/{phone_id}"),
            &stranger.token,
        )
        .await;
    foreign.assert_error(404, "session_not_found");
    let malformed = app
        .delete("/api/v1/auth/sessions/not-an-id", &laptop_token)
        .await;
    malformed.assert_error(404, "session_not_found");

    let revoked = app
        .delete(&format!("/api/v1/auth/sessions/{phone_id}"), &laptop_token)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let closed = clients.next_of("phone", &["disconnect"], WAIT).await;
    assert!(closed.is_some(), "the revoked session's socket stays open");
    app.get("/api/v1/auth/me", &phone_token)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.get("/api/v1/auth/me", &laptop_token).await.status, 200);
    let again = app
        .delete(&format!("/api/v1/auth/sessions/{phone_id}"), &laptop_token)
        .await;
    again.assert_error(404, "session_not_found");
    let listed = app.get("/api/v1/auth/sessions", &laptop_token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let user = app.register("Pam").await;
    let (other, _) = sign_in(&app, &user, "other").await;
    let other_token = other.body["token"].as_str().unwrap().to_owned();

    let wrong = app
        .post(
            "/api/v1/auth/password",
            &user.token,
            json!({"current_password": "not it", "new_password": "a new password"}),
        )
        .await;
    wrong.assert_error(403, "wrong_password");
    let short = app
        .post(
            "/api/v1/auth/password",
            &user.token,
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.text);
    assert_eq!(app.get("/api/v1/auth/me", &other_token).await.status, 200);

    let changed = app
        .post(
            "/api/v1/auth/password",
            &user.token,
            json!({"current_password": PASSWORD, "new_password": "a new password"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    app.get("/api/v1/auth/me", &other_token)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.get("/api/v1/auth/me", &user.token).await.status, 200);

    for (password, expected) in [(PASSWORD, 401), ("a new password", 200)] {
        let body = json!({"email": user.email, "password": password});
        let login = app
            .request(Method::POST, "/api/v1/auth/login", None, Some(&body), &[])
            .await;
        assert_eq!(login.status, expected, "{password}: {}", login.text);
    }
}

#[tokio::test]
async fn owners_read_who_changed_the_membership_and_when() {
    let app = TestApp::spawn().await;
    let owner = app.register("Olga").await;
    let ed = app.register("Ed").await;
    let vic = app.register("Vic").await;
    let project = app.create_project(&owner, "Audited").await;
    app.add_member(&owner, &project, &ed, "viewer").await;
    app.add_member(&owner, &project, &ed, "editor").await;
    // Putting a member at the role they have changes nothing and logs nothing.
    app.add_member(&owner, &project, &ed, "editor").await;
    app.add_member(&owner, &project, &vic, "viewer").await;
    // Vic leaves on their own.
    let left = app
        .delete(
            &format!("/api/v1/projects/{project}/members/{}", vic.id),
            &vic.token,
        )
        .await;
    assert_eq!(left.status, 204);

    let audit = format!("/api/v1/projects/{project}/audit");
    let page = app.get(&audit, &owner.token).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let summary: Vec<(String, String, String, Value, Value)> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert!(entry["at"].as_str().unwrap().ends_with('Z'), "{entry}");
            (
                entry["action"].as_str().unwrap().to_owned(),
                entry["actor"]["name"].as_str().unwrap().to_owned(),
                entry["subject"]["name"].as_str().unwrap().to_owned(),
                entry["role"].clone(),
                entry["previous_role"].clone(),
            )
        })
        .collect();
    let row = |action: &str, actor: &str, subject: &str, role: Value, previous: Value| {
        (
            action.to_owned(),
            actor.to_owned(),
            subject.to_owned(),
            role,
            previous,
        )
    };
    assert_eq!(
        summary,
        vec![
            row("member_removed", "Vic", "Vic", Value::Null, json!("viewer")),
            row("member_added", "Olga", "Vic", json!("viewer"), Value::Null),
            row(
                "role_changed",
                "Olga",
                "Ed",
                json!("editor"),
                json!("viewer")
            ),
            row("member_added", "Olga", "Ed", json!("viewer"), Value::Null),
            row(
                "project_created",
                "Olga",
                "Olga",
                json!("owner"),
                Value::Null
            ),
        ]
    );
    assert_eq!(page.body["next_cursor"], Value::Null);

    // Page by page, newest first, nothing skipped or repeated.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{audit}?limit=2&cursor={cursor}"),
            None => format!("{audit}?limit=2"),
        };
        let page = app.get(&path, &owner.token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let all: Vec<i64> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all);

    app.get(&audit, &ed.token)
        .await
        .assert_error(403, "forbidden");
    app.get(&audit, &vic.token)
        .await
        .assert_error(404, "project_not_found");
    let bad_limit = app.get(&format!("{audit}?limit=0"), &owner.token).await;
    assert_eq!(bad_limit.status, 422, "{}", bad_limit.text);
    let bad_cursor = app.get(&format!("{audit}?cursor=%%%"), &owner.token).await;
    assert!(
        matches!(bad_cursor.status, 400 | 422),
        "{}",
        bad_cursor.text
    );
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_is_closed_by_default() {
    let app = TestApp::spawn().await;
    let user = app.register("Hal").await;
    let api = app.get("/api/v1/projects", &user.token).await;
    assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(api.header("referrer-policy"), Some("same-origin"));
    assert_eq!(api.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        api.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
    let error = app.get("/api/v1/projects", "bad-token").await;
    assert_eq!(error.header("x-content-type-options"), Some("nosniff"));

    // No origin is allowed: a preflight gets no CORS headers, so the
    // browser refuses to send the call.
    let preflight = app
        .request(
            Method::OPTIONS,
            "/api/v1/projects",
            None,
            None,
            &[
                ("origin", "https://elsewhere.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
        )
        .await;
    assert!(
        preflight.header("access-control-allow-origin").is_none(),
        "{preflight:?}"
    );
}

#[tokio::test]
async fn allowed_origins_may_call_the_api_with_a_bearer_token() {
    let app = TestApp::spawn_with(|config| {
        config.cors_allowed_origins = vec!["https://agents.example.com".into()];
    })
    .await;
    let user = app.register("Cy").await;
    let app = &app;
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ];
        app.request(Method::OPTIONS, "/api/v1/projects", None, None, &headers)
            .await
    };
    let allowed = preflight("https://agents.example.com").await;
    assert!(allowed.status < 300, "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://agents.example.com")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    // Cookies never cross origins: no credentials are allowed.
    assert!(allowed.header("access-control-allow-credentials").is_none());
    let other = preflight("https://elsewhere.example").await;
    assert!(other.header("access-control-allow-origin").is_none());

    let call = app
        .request(
            Method::GET,
            "/api/v1/projects",
            Some(&user.token),
            None,
            &[("origin", "https://agents.example.com")],
        )
        .await;
    assert_eq!(call.status, 200);
    assert_eq!(
        call.header("access-control-allow-origin"),
        Some("https://agents.example.com")
    );
    let exposed = call
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );
}
