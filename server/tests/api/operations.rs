//! Health, readiness, metrics, request ids, the OpenAPI document, shutdown.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::{admin_url, TestApp};

#[tokio::test]
async fn healthz_and_readyz() {
    let app = TestApp::spawn().await;
    let health = app.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        json!({"status": "ok", "checks": {"database": "ok"}, "breakers": {}})
    );
}

#[tokio::test]
async fn readyz_reports_redis_when_configured() {
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let app = TestApp::spawn_with(|config| {
        config.redis_url = Some(taskmaster_server::config::Secret::new(redis))
    })
    .await;
    let ready = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.body["checks"]["redis"], "ok", "{}", ready.text);

    let unreachable = TestApp::spawn_with(|config| {
        // Nothing listens on port 1.
        config.redis_url = Some(taskmaster_server::config::Secret::new(
            "redis://127.0.0.1:1",
        ))
    })
    .await;
    let ready = unreachable
        .request(Method::GET, "/readyz", None, None, &[])
        .await;
    // Redis only carries fan-out between instances: reported, but this
    // instance still serves its own clients, so it stays ready.
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["checks"]["redis"], "unavailable");
    assert_eq!(ready.body["checks"]["database"], "ok");
}

/// A TCP forwarder between the app and PostgreSQL that can be cut and
/// restored, to make the database unreachable for real.
struct Outage {
    port: u16,
    upstream: String,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outage {
    async fn new() -> Outage {
        let admin = PgConnectOptions::from_str(&admin_url()).unwrap();
        let upstream = format!("{}:{}", admin.get_host(), admin.get_port());
        let mut outage = Outage {
            port: 0,
            upstream,
            accept: None,
            connections: Arc::default(),
        };
        outage.restore().await;
        outage
    }

    async fn restore(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(format!("127.0.0.1:{}", self.port).parse().unwrap())
            .unwrap();
        let listener = socket.listen(64).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        for connection in self.connections.lock().await.drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test]
async fn readyz_fails_while_the_database_is_unreachable_and_recovers_by_itself() {
    let mut outage = Outage::new().await;
    let port = outage.port;
    let app = TestApp::spawn_with(|config| {
        let url = config.database_url.as_ref().unwrap().expose().to_owned();
        let options = PgConnectOptions::from_str(&url).unwrap();
        let proxied = format!(
            "postgres://{}@127.0.0.1:{port}/{}",
            options.get_username(),
            options.get_database().unwrap()
        );
        config.database_url = Some(taskmaster_server::config::Secret::new(proxied));
        config.database_acquire_timeout_ms = 1_000;
    })
    .await;
    let user = app.register("Ann").await;
    assert_eq!(
        app.request(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        200
    );

    outage.cut().await;
    let ready = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        ready.body,
        json!({"status": "unavailable", "checks": {"database": "unavailable"}, "breakers": {}})
    );
    // API calls say the dependency is down rather than failing obscurely.
    app.get("/api/v1/projects", &user.token)
        .await
        .assert_error(503, "service_unavailable");
    assert_eq!(
        app.request(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        200,
        "still alive"
    );

    outage.restore().await;
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .request(Method::GET, "/readyz", None, None, &[])
            .await
            .status
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "readyz did not recover after the database returned"
    );
    assert_eq!(app.get("/api/v1/projects", &user.token).await.status, 200);
}

/// With METRICS_BIND, /metrics lives on a port of its own and the main port
/// (the one an Ingress or the edge forwards) answers 404 for it.
#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let user = app.register("Ann").await;
    app.create_project(&user, "P").await;

    let main = app.request(Method::GET, "/metrics", None, None, &[]).await;
    main.assert_error(404, "not_found");

    let metrics_url = format!("{}/metrics", app.metrics_address.as_deref().unwrap());
    let scraped = crate::helpers::get(&metrics_url).await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/api/v1/projects""#), "{text}");
    // Only metrics there: the API is not served on the metrics port.
    let api = crate::helpers::get(metrics_url.replace("/metrics", "/api/v1/projects"))
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
}

#[tokio::test]
async fn metrics_are_labelled_by_route_not_url() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.get(&format!("/api/v1/projects/{project}/tasks"), &user.token)
        .await;
    app.task(&user, &project, 404).await;

    let metrics = app.request(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text;
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(
        text.contains(r#"route="/api/v1/projects/{project_id}/tasks""#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/projects/{project_id}/tasks/{id}""#),
        "{text}"
    );
    assert!(text.contains(r#"status="404""#), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("db_pool_connections"), "{text}");
    assert!(text.contains("db_pool_idle_connections"), "{text}");
    assert!(!text.contains(&project), "raw ids must not become labels");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let generated = app.request(Method::GET, "/healthz", None, None, &[]).await;
    let id = generated.header("x-request-id").expect("request id");
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let propagated = app
        .request(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", "trace-me-42")],
        )
        .await;
    assert_eq!(propagated.header("x-request-id"), Some("trace-me-42"));
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(response.status, 200);
    let paths = response.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/projects",
        "/api/v1/projects/{project_id}/members",
        "/api/v1/projects/{project_id}/members/{user_id}",
        "/api/v1/projects/{project_id}/tasks",
        "/api/v1/projects/{project_id}/tasks/next",
        "/api/v1/projects/{project_id}/tasks/{id}",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    let task = &response.body["components"]["schemas"]["Task"]["properties"];
    assert!(task["dependencies"].is_object() && task["test_strategy"].is_object());
    assert!(
        response.body["paths"]["/api/v1/projects/{project_id}/tasks/{id}"]["patch"].is_object()
    );
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let mut app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let body = json!({"name": "started before shutdown"}).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);

    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        user.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer accepted…
    assert!(
        crate::helpers::get(app.url("/healthz")).await.is_err(),
        "still accepting"
    );
    // …but the request in flight completes.
    stream.write_all(second_half.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("response in time")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    tokio::time::timeout(Duration::from_secs(10), app.shut_down())
        .await
        .expect("server stops")
        .unwrap();
}

/// A request cut off by the request timeout never reaches the metrics
/// middleware's end: it is still counted, with the 503 the client got, so
/// the error-rate SLO sees it.
#[tokio::test]
async fn requests_cut_off_by_the_timeout_are_counted_as_503() {
    let app = TestApp::spawn_with(|config| config.request_timeout_ms = 300).await;
    let ann = app.register("ann").await;
    let project = app.create_project(&ann, "Timeouts").await;
    let tasks = format!("/api/v1/projects/{project}/tasks");
    // A body that never finishes arriving.
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(
        format!(
            "POST {tasks} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ti",
            ann.token
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("answered at the timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    let counted = metrics.lines().any(|line| {
        line.starts_with("http_requests_total{")
            && line.contains("method=\"POST\"")
            && line.contains("route=\"/api/v1/projects/{project_id}/tasks\"")
            && line.contains("status=\"503\"")
    });
    assert!(counted, "the timed-out request is not counted:\n{metrics}");
}
