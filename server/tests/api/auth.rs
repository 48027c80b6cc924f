use reqwest::Method;
use serde_json::json;

use taskmaster_server::config::Secret;

use crate::helpers::TestApp;
use crate::scale::redis_url;

#[tokio::test]
async fn register_returns_the_user_and_a_working_token() {
    let app = TestApp::spawn().await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(&json!({"email": " Ada@Example.com ", "name": "Ada", "password": "12345678"})),
            &[],
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(response.body["user"]["email"], "ada@example.com");
    assert_eq!(response.body["user"]["name"], "Ada");
    let token = response.body["token"].as_str().unwrap();
    let me = app.get("/api/v1/auth/me", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], response.body["user"]["id"]);

    // Only a hash of the token is stored, and the password is argon2id.
    let stored: Vec<u8> = sqlx::query_scalar("select token_hash from sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes());
    let hash: String = sqlx::query_scalar("select password_hash from users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    let user = app.register("Bo").await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(
                &json!({"email": user.email.to_uppercase(), "name": "Bo", "password": "12345678"}),
            ),
            &[],
        )
        .await;
    response.assert_error(409, "email_taken");
}

#[tokio::test]
async fn registration_validates_its_fields() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({"email": "a@b.io", "name": "A", "password": "short"}),
        json!({"email": "not-an-email", "name": "A", "password": "12345678"}),
        json!({"email": "a@b.io", "name": "  ", "password": "12345678"}),
        json!({"email": "a@b.io", "name": "x".repeat(101), "password": "12345678"}),
    ];
    for body in cases {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(&body),
                &[],
            )
            .await;
        response.assert_error(422, "validation_failed");
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn login_gives_the_same_answer_for_unknown_email_and_wrong_password() {
    let app = TestApp::spawn().await;
    let user = app.register("Cy").await;
    let login = |email: String, password: &'static str| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
                &[],
            )
            .await
        }
    };
    let ok = login(user.email.clone(), "correct horse battery").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["user"]["id"], user.id.as_str());
    assert_ne!(
        ok.body["token"],
        user.token.as_str(),
        "each sign-in is a new session"
    );

    let wrong_password = login(user.email.clone(), "wrong horse battery").await;
    let unknown_email = login("nobody@example.com".into(), "correct horse battery").await;
    wrong_password.assert_error(401, "unauthorized");
    unknown_email.assert_error(401, "unauthorized");
    assert_eq!(wrong_password.body, unknown_email.body);
}

#[tokio::test]
async fn logout_revokes_the_token_and_only_that_token() {
    let app = TestApp::spawn().await;
    let user = app.register("Di").await;
    let second = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": user.email, "password": "correct horse battery"})),
            &[],
        )
        .await;
    let second_token = second.body["token"].as_str().unwrap().to_owned();

    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(response.status, 204);
    app.get("/api/v1/projects", &user.token)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(app.get("/api/v1/projects", &second_token).await.status, 200);
}

#[tokio::test]
async fn missing_malformed_and_expired_tokens_are_401() {
    let app = TestApp::spawn().await;
    let user = app.register("Ed").await;
    app.request(Method::GET, "/api/v1/projects", None, None, &[])
        .await
        .assert_error(401, "unauthorized");
    app.get("/api/v1/projects", "made-up-token")
        .await
        .assert_error(401, "unauthorized");
    app.request(
        Method::GET,
        "/api/v1/projects",
        None,
        None,
        &[("authorization", &format!("Basic {}", user.token))],
    )
    .await
    .assert_error(401, "unauthorized");

    sqlx::query("update sessions set expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    app.get("/api/v1/projects", &user.token)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_email() {
    let app = TestApp::spawn_with(|config| config.login_attempts_per_email_per_minute = 3).await;
    let user = app.register("Fay").await;
    let body = json!({"email": user.email, "password": "wrong password"});
    let attempt = || app.request(Method::POST, "/api/v1/auth/login", None, Some(&body), &[]);
    for _ in 0..3 {
        attempt().await.assert_error(401, "unauthorized");
    }
    let limited = attempt().await;
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // Another address is not affected.
    let other = app.register("Gus").await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": other.email, "password": "correct horse battery"})),
            &[],
        )
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_ip() {
    let app = TestApp::spawn_with(|config| config.login_attempts_per_ip_per_minute = 4).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": format!("user{n}@example.com"), "password": "whatever1"})),
                &[],
            )
            .await;
        statuses.push(response.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn sign_in_budgets_are_shared_by_every_instance_through_redis() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = |prefix: String| {
        move |config: &mut taskmaster_server::config::Config| {
            config.redis_url = Some(Secret::new(redis_url()));
            config.redis_prefix = prefix;
            config.login_attempts_per_email_per_minute = 4;
        }
    };
    let a = TestApp::spawn_with(shared(prefix.clone())).await;
    let b = TestApp::spawn_on(&a.database_url, shared(prefix)).await;
    let user = a.register("Hal").await;
    let body = json!({"email": user.email, "password": "wrong password"});
    let mut answers = Vec::new();
    for n in 0..6 {
        let instance = if n % 2 == 0 { &a } else { &b };
        answers.push(
            instance
                .request(Method::POST, "/api/v1/auth/login", None, Some(&body), &[])
                .await,
        );
    }
    // Each instance saw three attempts, within its own budget of four: only
    // the count they share refuses the fifth.
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    answers[4].assert_error(429, "rate_limited");
    let retry_after: u64 = answers[4].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let ready = b.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(
        ready.body["breakers"]["ratelimit"], "closed",
        "{}",
        ready.text
    );
}

#[tokio::test]
async fn api_requests_are_limited_per_token_and_per_user() {
    let app = TestApp::spawn_with(|config| {
        config.api_requests_per_token_per_second = 2;
        config.api_requests_per_user_per_second = 3;
    })
    .await;
    let user = app.register("Ida").await;
    // Answered until the first refusal; then how the refusal looks.
    let until_refused = async |token: &str| {
        for served in 0..100 {
            let response = app.get("/api/v1/projects", token).await;
            if response.status != 200 {
                response.assert_error(429, "rate_limited");
                let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=5).contains(&retry_after), "{retry_after}");
                return served;
            }
        }
        panic!("never limited");
    };
    // A token's burst is five seconds of its rate: 10 (one more if the
    // bucket refilled meanwhile).
    let first = until_refused(&user.token).await;
    assert!((10..=11).contains(&first), "{first}");
    // Another token of the same user has its own budget, but shares the
    // user's: 15 in all, of which the first token spent its share.
    let again = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": user.email, "password": "correct horse battery"})),
            &[],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let second = until_refused(again.body["token"].as_str().unwrap()).await;
    assert!(
        (15 - first..=16 - first).contains(&second),
        "{first} then {second}"
    );
    // Other users are not affected.
    let other = app.register("Jo").await;
    assert_eq!(app.get("/api/v1/projects", &other.token).await.status, 200);
}
