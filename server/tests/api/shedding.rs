//! Load shedding: past its bounds on requests in flight and waiting, the API
//! refuses at once with 503, the contract's error body and `Retry-After`,
//! while health checks still answer and the API recovers when load drops.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

#[tokio::test]
async fn beyond_its_bounds_the_api_refuses_at_once_with_503_and_retry_after() {
    let app = TestApp::spawn_with(|config| {
        config.max_requests_in_flight = 1;
        config.max_requests_queued = 1;
        config.request_queue_timeout_ms = 400;
    })
    .await;
    let ann = app.register("ann").await;
    let project = app.create_project(&ann, "Shedding").await;
    let tasks = format!("/api/v1/projects/{project}/tasks");

    // The one turn is taken by a request whose body arrives slowly.
    let body = json!({"title": "slow"}).to_string();
    let (head, tail) = body.split_at(5);
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(
        format!(
            "POST {tasks} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
            ann.token,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The queue's one place: this request waits, then gives up at the queue timeout.
    let queued = {
        let (url, token) = (app.url(&tasks), ann.token.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let response = crate::helpers::http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The queue is full: refused at once, with the error body and Retry-After.
    let started = Instant::now();
    let refused = app.get(&tasks, &ann.token).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "refused slowly"
    );
    refused.assert_error(503, "service_unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));

    let (status, waited) = queued.await.unwrap();
    assert_eq!(status, 503);
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );

    // Health checks are not behind the API's bounds.
    let health = crate::helpers::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    // The slow request completes normally, and the API serves again.
    slow.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let listed = app.get(&tasks, &ann.token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["title"], "slow");
}
