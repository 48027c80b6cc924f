//! Webhooks against a real receiver in the test (an HTTP server that fails
//! the first N times, answers 500, times out, or accepts): every committed
//! event arrives at least once and in seq order, signed; dead letters after
//! the limit, then the webhook is disabled and says why; redelivery and
//! re-enabling work; an instance killed mid-delivery loses nothing; private
//! addresses are refused unless allowed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{TestApp, TestUser};

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Accept,
    Fail,
    /// Fails after this long (longer than the webhook timeout: a timeout).
    Slow(Duration),
    /// Accepts, after this long.
    AcceptSlowly(Duration),
}

#[derive(Default)]
struct Seen {
    /// Seqs of the deliveries it accepted, in arrival order.
    accepted: Vec<i64>,
    /// Requests that arrived (counted before any wait, so a request the
    /// sender gave up on counts too).
    arrived: usize,
    /// Requests it refused (after any wait).
    refused: usize,
    bad_signatures: usize,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    /// The first this many requests fail with 500, whatever the behaviour.
    fail_first: Arc<Mutex<usize>>,
    behaviour: Arc<Mutex<Behaviour>>,
    secret: Arc<Mutex<String>>,
    address: SocketAddr,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            seen: Arc::default(),
            fail_first: Arc::default(),
            behaviour: Arc::new(Mutex::new(Behaviour::Accept)),
            secret: Arc::default(),
            address: listener.local_addr().unwrap(),
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn accepted(&self) -> Vec<i64> {
        self.seen.lock().unwrap().accepted.clone()
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.seen.lock().unwrap().arrived += 1;
    let fail = {
        let mut left = receiver.fail_first.lock().unwrap();
        let fail = *left > 0;
        *left = left.saturating_sub(1);
        fail
    };
    let behaviour = *receiver.behaviour.lock().unwrap();
    if let Behaviour::Slow(wait) | Behaviour::AcceptSlowly(wait) = behaviour {
        tokio::time::sleep(wait).await;
    }
    if fail || !matches!(behaviour, Behaviour::Accept | Behaviour::AcceptSlowly(_)) {
        receiver.seen.lock().unwrap().refused += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    // Verify the signature as a receiver would: HMAC-SHA256 of "<t>.<body>".
    let signature = headers
        .get("x-taskmaster-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (t, v1) = signature
        .split_once(',')
        .map(|(t, v1)| {
            (
                t.trim_start_matches("t=").to_owned(),
                v1.trim_start_matches("v1=").to_owned(),
            )
        })
        .unwrap_or_default();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(receiver.secret.lock().unwrap().as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut seen = receiver.seen.lock().unwrap();
    if expected != v1 || headers.get("x-taskmaster-event").is_none() {
        seen.bad_signatures += 1;
    }
    seen.accepted.push(event["seq"].as_i64().unwrap_or(-1));
    StatusCode::NO_CONTENT
}

async fn register_webhook(
    app: &TestApp,
    owner: &TestUser,
    project: &str,
    receiver: &Receiver,
) -> Value {
    let created = app
        .post(
            &format!("/api/v1/projects/{project}/webhooks"),
            &owner.token,
            json!({"url": receiver.url()}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    *receiver.secret.lock().unwrap() = created.body["secret"].as_str().unwrap().to_owned();
    created.body["webhook"].clone()
}

/// Waits until `done` holds (a deadline keeps a broken run from hanging).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` changes: tasks created, and every other one updated.
async fn changes(app: &TestApp, owner: &TestUser, project: &str, n: usize) -> i64 {
    let mut count = 0;
    for i in 0..n {
        let task = app
            .create_task(owner, project, json!({"title": format!("task {i}")}))
            .await;
        count += 1;
        if i % 2 == 0 {
            let updated = app
                .patch_task(
                    owner,
                    project,
                    task["id"].as_i64().unwrap(),
                    json!({"status": "done"}),
                )
                .await;
            assert_eq!(updated.status, 200);
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn every_event_arrives_in_order_and_signed_through_failures() {
    let app = TestApp::spawn().await;
    let owner = app.register("Ada").await;
    let project = app.create_project(&owner, "Hooked").await;
    let receiver = Receiver::start().await;
    *receiver.fail_first.lock().unwrap() = 3;
    register_webhook(&app, &owner, &project, &receiver).await;

    let total = changes(&app, &owner, &project, 10).await;
    eventually("every event", || receiver.accepted().len() as i64 >= total).await;
    let accepted = receiver.accepted();
    assert_eq!(
        accepted,
        (1..=total).collect::<Vec<_>>(),
        "once each, in seq order"
    );
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.bad_signatures, 0);
    assert_eq!(seen.refused, 3, "the first three were refused and retried");
}

#[tokio::test]
async fn a_receiver_that_times_out_is_retried() {
    let app = TestApp::spawn_with(|config| config.webhook_timeout_ms = 300).await;
    let owner = app.register("Ada").await;
    let project = app.create_project(&owner, "Slow").await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Slow(Duration::from_millis(800)));
    register_webhook(&app, &owner, &project, &receiver).await;
    let total = changes(&app, &owner, &project, 2).await;
    // The first attempt times out (the sender gives up), then a retry comes.
    eventually("a retry after a timed-out attempt", || {
        receiver.seen.lock().unwrap().arrived >= 2
    })
    .await;
    assert!(receiver.accepted().is_empty());
    receiver.set(Behaviour::Accept);
    eventually("every event", || receiver.accepted().len() as i64 >= total).await;
    assert_eq!(receiver.accepted(), (1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn dead_letters_then_disabled_then_redelivered_and_re_enabled() {
    let app = TestApp::spawn_with(|config| {
        config.webhook_max_attempts = 2;
        config.webhook_disable_after_dead_letters = 3;
    })
    .await;
    let owner = app.register("Ada").await;
    let project = app.create_project(&owner, "Failing").await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Fail);
    let webhook = register_webhook(&app, &owner, &project, &receiver).await;
    let id = webhook["id"].as_str().unwrap();
    let base = format!("/api/v1/projects/{project}/webhooks");
    for i in 0..4 {
        app.create_task(&owner, &project, json!({"title": format!("t{i}")}))
            .await;
    }

    // Three events dead-lettered after two attempts each, then disabled.
    let mut listed = Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        listed = app.get(&base, &owner.token).await.body;
        if listed["items"][0]["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["items"][0]["enabled"], false, "{listed}");
    let reason = listed["items"][0]["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("3 events in a row"), "{reason}");
    // The owner is told in the project's audit log, newest first.
    let audit = app
        .get(&format!("/api/v1/projects/{project}/audit"), &owner.token)
        .await;
    let told = &audit.body["items"][0];
    assert_eq!(told["action"], "webhook_disabled", "{}", audit.text);
    assert_eq!(told["actor"], Value::Null);
    let detail = told["detail"].as_str().unwrap();
    assert!(
        detail.contains(id) && detail.contains(&receiver.url()) && detail.contains("3 events"),
        "{detail}"
    );
    let dead = app
        .get(&format!("{base}/{id}/dead-letters"), &owner.token)
        .await;
    let seqs: Vec<i64> = dead.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(dead.body["items"][0]["attempts"], 2);
    assert_eq!(
        receiver.seen.lock().unwrap().refused,
        6,
        "two attempts each, none after disabling"
    );

    // The receiver is fixed: redeliver the dead letters as a job.
    receiver.set(Behaviour::Accept);
    let redelivery = app
        .post(&format!("{base}/{id}/redeliver"), &owner.token, json!({}))
        .await;
    assert_eq!(redelivery.status, 202, "{}", redelivery.text);
    let job = redelivery.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        redelivery.header("location"),
        Some(format!("/api/v1/jobs/{job}").as_str())
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut status = Value::Null;
    while tokio::time::Instant::now() < deadline {
        status = app
            .get(&format!("/api/v1/jobs/{job}"), &owner.token)
            .await
            .body;
        if status["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["result"]["redelivered"], 3);
    assert_eq!(receiver.accepted(), [1, 2, 3]);

    // Enabled again, it goes on from where it stopped.
    let enabled = app
        .post(&format!("{base}/{id}/enable"), &owner.token, json!({}))
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    eventually("the event after the dead letters", || {
        receiver.accepted().contains(&4)
    })
    .await;
    assert_eq!(receiver.accepted(), [1, 2, 3, 4]);

    // Someone else cannot see the job.
    let stranger = app.register("Sam").await;
    app.get(&format!("/api/v1/jobs/{job}"), &stranger.token)
        .await
        .assert_error(404, "job_not_found");
}

#[tokio::test]
async fn an_instance_killed_mid_delivery_loses_nothing() {
    let tweak = |config: &mut taskmaster_server::config::Config| config.job_lease_ms = 1_000;
    let mut first = TestApp::spawn_with(tweak).await;
    let owner = first.register("Ada").await;
    let project = first.create_project(&owner, "Handover").await;
    let receiver = Receiver::start().await;
    // Slow enough that the first instance is mid-way when it goes.
    receiver.set(Behaviour::AcceptSlowly(Duration::from_millis(150)));
    register_webhook(&first, &owner, &project, &receiver).await;
    let total = changes(&first, &owner, &project, 20).await;
    eventually("deliveries under way", || receiver.accepted().len() >= 3).await;

    let second = TestApp::spawn_on(&first.database_url, tweak).await;
    assert!(
        receiver.accepted().len() < total as usize,
        "the first instance must still have had work when it went"
    );
    first.shut_down().await.unwrap();
    eventually("every event, from the second instance", || {
        let accepted = receiver.accepted();
        (1..=total).all(|seq| accepted.contains(&seq))
    })
    .await;
    let accepted = receiver.accepted();
    assert!(
        accepted.windows(2).all(|pair| pair[0] <= pair[1]),
        "in seq order: {accepted:?}"
    );
    drop(second);
}

#[tokio::test]
async fn webhooks_post_to_public_addresses_only_unless_allowed_and_owners_manage_them() {
    let app = TestApp::spawn_with(|config| config.webhook_allow_private_addresses = false).await;
    let owner = app.register("Ada").await;
    let editor = app.register("Eve").await;
    let project = app.create_project(&owner, "Guarded").await;
    app.add_member(&owner, &project, &editor, "editor").await;
    let path = format!("/api/v1/projects/{project}/webhooks");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/hook",
        "http://user:secret@example.com/hook",
        "not a url",
    ] {
        let refused = app.post(&path, &owner.token, json!({"url": url})).await;
        refused.assert_error(422, "invalid_webhook_url");
    }
    app.post(
        &path,
        &owner.token,
        json!({"url": "http://93.184.216.34/hook", "event_types": ["task.moved"]}),
    )
    .await
    .assert_error(422, "validation_failed");
    app.post(
        &path,
        &editor.token,
        json!({"url": "http://93.184.216.34/hook"}),
    )
    .await
    .assert_error(403, "forbidden");
    let created = app
        .post(
            &path,
            &owner.token,
            json!({"url": "http://93.184.216.34/hook", "event_types": ["task.created"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.body["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let listed = app.get(&path, &owner.token).await;
    assert!(!listed.text.contains("whsec_"), "the secret is shown once");
}
