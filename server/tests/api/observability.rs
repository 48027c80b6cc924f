//! Error tracking and distributed tracing, against receivers that speak the
//! real protocols: Sentry's envelope endpoint, and OTLP/HTTP decoded with the
//! OpenTelemetry protocol's own generated types.
//!
//! Error tracking and the trace exporter are per process, as they are in
//! production; nextest runs every test in a process of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use prost::Message;
use serde_json::{json, Value};
use taskmaster_server::config::Secret;
use taskmaster_server::error_tracking;
use taskmaster_server::telemetry;

use crate::helpers::TestApp;
use crate::scale::redis_url;
use crate::sockets::{Clients, WAIT};

/// An HTTP server on a free loopback port, collecting every body posted to it.
struct Receiver {
    address: String,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Receiver {
    async fn start(path: &str) -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                path,
                post(
                    |State(bodies): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes| async move {
                        bodies.lock().unwrap().push(body);
                        "{}"
                    },
                ),
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { address, bodies }
    }

    fn bodies(&self) -> Vec<Bytes> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The events in the Sentry envelopes received so far: each envelope is a
/// header line, then item headers each followed by their payload.
fn sentry_events(receiver: &Receiver) -> Vec<Value> {
    receiver
        .bodies()
        .iter()
        .flat_map(|body| {
            String::from_utf8_lossy(body)
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                // The event itself, not the envelope's or the item's header.
                .filter(|item| item.get("event_id").is_some() && item.get("platform").is_some())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn failures_clients_see_are_reported_to_sentry_with_their_context() {
    let sentry = Receiver::start("/api/{project}/envelope/").await;
    let dsn = format!("http://public@{}/42", sentry.address);
    let app = TestApp::spawn_with(|config| {
        config.sentry_dsn = Some(Secret::new(dsn));
        config.sentry_environment = Some("test".into());
    })
    .await;
    let user = app.register("Erin").await;
    let project = app.create_project(&user, "P").await;
    // Client mistakes are not failures of ours: nothing is reported.
    let refused = app
        .post(
            &format!("/api/v1/projects/{project}/tasks"),
            &user.token,
            json!({"title": ""}),
        )
        .await;
    assert_eq!(refused.status, 422);

    // A table gone from under the server: the write fails inside.
    sqlx::query("alter table tasks rename to tasks_away")
        .execute(&app.db)
        .await
        .unwrap();
    let failed = app
        .post(
            &format!("/api/v1/projects/{project}/tasks"),
            &user.token,
            json!({"title": "x"}),
        )
        .await;
    failed.assert_error(500, "internal_error");
    assert!(
        !failed.text.contains("tasks"),
        "no internals leak: {}",
        failed.text
    );
    let request_id = failed.header("x-request-id").unwrap().to_owned();

    let event = wait_for("Sentry event", || sentry_events(&sentry).into_iter().next()).await;
    // `error` is the default level, which the protocol leaves out.
    assert!(
        matches!(
            event.get("level").and_then(Value::as_str),
            None | Some("error")
        ),
        "{event}"
    );
    assert_eq!(event["environment"], "test", "{event}");
    let tags = &event["tags"];
    assert_eq!(tags["kind"], "internal", "{event}");
    assert_eq!(tags["request_id"], request_id.as_str(), "{event}");
    assert_eq!(
        tags["route"], "/api/v1/projects/{project_id}/tasks",
        "{event}"
    );
    assert_eq!(tags["method"], "POST", "{event}");
    assert_eq!(tags["status"], "500", "{event}");
    // The cause is in the report (never in the answer); the user only as a hash.
    let message = event["message"]
        .as_str()
        .or_else(|| event["logentry"]["message"].as_str())
        .unwrap_or_default();
    assert!(message.contains("tasks"), "{event}");
    let user_id = uuid::Uuid::parse_str(&user.id).unwrap();
    assert_eq!(
        event["user"]["id"],
        error_tracking::hashed_user(user_id).as_str(),
        "{event}"
    );
    assert!(!event.to_string().contains(&user.id), "{event}");
    assert_eq!(sentry_events(&sentry).len(), 1, "the 422 was not reported");

    // Counted whether or not Sentry is set up.
    let scrape = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&scrape, "server_errors_total{kind=\"internal\"}"),
        1.0
    );
    assert_eq!(metric(&scrape, "server_errors_total{kind=\"panic\"}"), 0.0);
}

#[tokio::test]
async fn a_panic_under_a_request_is_reported_with_its_request_id_and_answered_500() {
    let sentry = Receiver::start("/api/{project}/envelope/").await;
    error_tracking::init(&error_tracking::Settings {
        sentry_dsn: Some(format!("http://public@{}/7", sentry.address)),
        environment: None,
        reports_per_minute: 60,
    });
    let router = Router::new().route(
        "/boom",
        get(|| async {
            let ids: Vec<u32> = Vec::new();
            // An out-of-bounds index: the kind of bug a panic is.
            format!("{}", ids[3])
        }),
    );
    let router = taskmaster_server::http::with_request_layers(router, 1024, Duration::from_secs(5));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let response = crate::helpers::get(format!("http://{address}/boom"))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_error");

    let event = wait_for("Sentry event", || sentry_events(&sentry).into_iter().next()).await;
    assert_eq!(event["tags"]["kind"], "panic", "{event}");
    assert_eq!(event["tags"]["request_id"], request_id.as_str(), "{event}");
    let message = event["message"]
        .as_str()
        .or_else(|| event["logentry"]["message"].as_str())
        .unwrap_or_default();
    assert!(message.contains("index out of bounds"), "{event}");
    assert!(
        message.contains("observability.rs"),
        "the panic's location: {event}"
    );
}

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn received_spans(collector: &Receiver) -> Vec<ReceivedSpan> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let mut spans = Vec::new();
    for body in collector.bodies() {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(
                    |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                        Any::StringValue(name) => Some(name.clone()),
                        _ => None,
                    },
                )
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                    });
                }
            }
        }
    }
    spans
}

#[tokio::test]
async fn one_trace_follows_a_change_from_the_request_through_the_bus_to_the_other_instance() {
    let collector = Receiver::start("/v1/traces").await;
    let export = telemetry::TraceExport {
        endpoint: format!("http://{}", collector.address),
        // No trace is started here unless a caller asks for it: then all
        // that is exported is what the callers below decide.
        sample_ratio: 0.0,
        service_name: "taskmaster-test".into(),
    };
    // The exporter's HTTP client blocks: made off the runtime's threads.
    let guard = tokio::task::spawn_blocking(move || {
        telemetry::init(taskmaster_server::config::LogFormat::Text, Some(&export))
    })
    .await
    .unwrap()
    .unwrap();

    let (a, b) = crate::scale::two_instances(&redis_url()).await;
    let owner = a.register("Tess").await;
    let project = a.create_project(&owner, "Traced").await;
    let mut clients = Clients::start().await;
    clients
        .connect("on-b", &b.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    assert_eq!(clients.join("on-b", &project, None).await["ok"], true);

    // The caller starts the trace and asks for it to be recorded.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let created = a
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&owner.token),
            Some(&json!({"title": "traced"})),
            &[("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let events = clients.events("on-b", 1, WAIT).await;
    assert_eq!(events.len(), 1, "instance B emitted the change");
    // A caller that does not record its trace: nothing of it is exported
    // (head sampling keeps its spans from the exporter altogether).
    let unrecorded = "0af7651916cd43dd8448eb211c80319c";
    let declined = a
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&owner.token),
            Some(&json!({"title": "not traced"})),
            &[(
                "traceparent",
                &format!("00-{unrecorded}-b7ad6b7169203331-00"),
            )],
        )
        .await;
    assert_eq!(declined.status, 201, "{}", declined.text);
    assert_eq!(clients.events("on-b", 1, WAIT).await.len(), 1);
    drop(clients);

    // Shutting the provider down sends every buffered span.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let all_spans = received_spans(&collector);
    assert!(
        all_spans.iter().all(|span| span.trace_id != unrecorded),
        "spans of an unsampled request were exported: {all_spans:#?}"
    );
    // Only the trace a caller asked for is exported (the ratio is 0).
    assert!(
        all_spans.iter().all(|span| span.trace_id == trace_id),
        "{all_spans:#?}"
    );
    let spans: Vec<ReceivedSpan> = all_spans
        .into_iter()
        .filter(|span| span.trace_id == trace_id)
        .collect();
    let find = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no {name} span in the trace: {spans:#?}"))
            .clone()
    };
    let request = find("POST /api/v1/projects/{project_id}/tasks");
    let transaction = find("db.transaction");
    let publish = find("realtime.publish");
    let deliver = find("realtime.deliver");
    assert!(spans.iter().all(|span| span.service == "taskmaster-test"));
    // Whether `ancestor` is above `span` in the trace.
    let descends = |span: &ReceivedSpan, ancestor: &ReceivedSpan| {
        let mut parent = span.parent_span_id.clone();
        while let Some(next) = spans.iter().find(|candidate| candidate.span_id == parent) {
            if next.span_id == ancestor.span_id {
                return true;
            }
            parent = next.parent_span_id.clone();
        }
        false
    };
    // The caller's span is the request's parent; the rest hang below it.
    assert_eq!(request.parent_span_id, "00f067aa0ba902b7");
    assert!(descends(&transaction, &request), "{spans:#?}");
    assert!(descends(&publish, &request), "{spans:#?}");
    // Across the bus: the other instance's delivery continues the publish.
    assert_eq!(deliver.parent_span_id, publish.span_id, "{spans:#?}");
}
