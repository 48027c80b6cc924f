//! Error tracking: every failure of ours that a client sees — a 5xx answer
//! (an internal error, a dependency unavailable, a request cut off by the
//! timeout or shed under load), a panic, a Socket.IO event or handshake
//! that failed on our side — is counted in `server_errors_total{kind}` and,
//! when `SENTRY_DSN` is set, reported to Sentry (or anything that speaks
//! its protocol) with its context: the request id that our log line and the
//! client's answer carry, the route or Socket.IO event, the method and
//! status, and the user as a hash, so the tracker never learns who.
//!
//! Reports are bounded: during an outage every request fails, and a report
//! per request would cost more than the requests. At most
//! `SENTRY_REPORTS_PER_MINUTE` go out per kind of failure; the rest are
//! counted (`error_reports_dropped_total`) and still logged.
//!
//! HTTP requests carry a [`RequestScope`]: the router's middleware fills in
//! the route, the auth extractor the user, and a panic anywhere under the
//! request leaves its message there (our panic hook finds the scope in a
//! task-local). [`track_http`], outside the panic catcher, reports what the
//! client got. Panics outside any request (a background task) are reported
//! by the hook itself.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What kind of failure a report is about (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// A bug or unexpected failure (500).
    Internal,
    /// A handler or task panicked.
    Panic,
    /// A dependency was unavailable (503).
    Unavailable,
    /// The request outlived `REQUEST_TIMEOUT_MS` (503).
    Timeout,
    /// Refused at once under load (503 from load shedding).
    Shed,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Internal,
        FailureKind::Panic,
        FailureKind::Unavailable,
        FailureKind::Timeout,
        FailureKind::Shed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Internal => "internal",
            FailureKind::Panic => "panic",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Timeout => "timeout",
            FailureKind::Shed => "shed",
        }
    }
}

/// One failure, with what is known of its context.
#[derive(Debug, Default, Clone)]
pub struct Failure {
    pub kind: Option<FailureKind>,
    pub message: String,
    pub request_id: Option<String>,
    /// The matched route (`/api/v1/projects/{project_id}/tasks`) or the
    /// Socket.IO event (`socket.io task:create`).
    pub route: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub user: Option<Uuid>,
    pub socket_id: Option<String>,
}

/// Settings, from `Config`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sentry_dsn: Option<String>,
    pub environment: Option<String>,
    pub reports_per_minute: u32,
}

struct Tracker {
    /// Keeps the Sentry client alive for the life of the process.
    sentry: Option<sentry::ClientInitGuard>,
    limiter: DefaultKeyedRateLimiter<FailureKind>,
}

static TRACKER: OnceLock<Tracker> = OnceLock::new();

/// Starts error tracking for this process (the first call wins: tests build
/// several applications in one process) and installs the panic hook.
pub fn init(settings: &Settings) {
    crate::tls::install_default_provider();
    TRACKER.get_or_init(|| {
        let sentry = settings.sentry_dsn.as_deref().map(|dsn| {
            // Reports leave on the transport's own thread; a slow or dead
            // endpoint never holds a request. Panics are reported by our
            // hook, with the request's context; no personal data beyond the
            // hashed user.
            let mut options = sentry::ClientOptions::new()
                .transport(BoundedTransport)
                .release(env!("CARGO_PKG_VERSION"))
                .shutdown_timeout(Duration::from_secs(2))
                .default_integrations(false)
                .send_default_pii(false);
            if let Some(environment) = &settings.environment {
                options = options.environment(environment.clone());
            }
            sentry::init((dsn, options))
        });
        let per_minute = NonZeroU32::new(settings.reports_per_minute.max(1)).expect("at least 1");
        Tracker {
            sentry,
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    });
    install_panic_hook();
    for kind in FailureKind::ALL {
        metrics::counter!("server_errors_total", "kind" => kind.as_str()).increment(0);
    }
    metrics::counter!("error_reports_dropped_total").increment(0);
}

/// Sentry's own transport (a thread with a bounded queue, which drops what
/// does not fit), given an HTTP client whose every request has a deadline:
/// a Sentry that hangs holds one report, not the thread, for ever.
struct BoundedTransport;

impl sentry::TransportFactory for BoundedTransport {
    fn create_transport_with_options(
        &self,
        options: sentry::TransportOptions,
    ) -> std::sync::Arc<dyn sentry::Transport> {
        let transport = sentry::transports::ReqwestHttpTransportOptions::from(options);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build();
        let transport = match client {
            Ok(client) => transport.with_client(client),
            Err(_) => transport,
        };
        std::sync::Arc::new(transport.build())
    }
}

/// Sends what is queued for Sentry (at shutdown), waiting at most `timeout`.
pub fn flush(timeout: Duration) {
    if let Some(client) = sentry::Hub::main().client() {
        client.flush(Some(timeout));
    }
}

/// Counts `failure` and reports it to Sentry when that is set up and the
/// kind's budget allows.
pub fn report(failure: Failure) {
    let kind = failure.kind.unwrap_or(FailureKind::Internal);
    metrics::counter!("server_errors_total", "kind" => kind.as_str()).increment(1);
    let Some(tracker) = TRACKER.get() else { return };
    if tracker.sentry.is_none() {
        return;
    }
    if tracker.limiter.check_key(&kind).is_err() {
        metrics::counter!("error_reports_dropped_total").increment(1);
        return;
    }
    send_to_sentry(kind, &failure);
}

/// Builds the event by hand and gives it to the client, rather than
/// pushing a scope on a hub: reports come from any thread, and a hub's scope
/// stack is not meant to be shared.
fn send_to_sentry(kind: FailureKind, failure: &Failure) {
    let Some(client) = sentry::Hub::main().client() else {
        return;
    };
    let mut event = sentry::protocol::Event {
        message: Some(failure.message.clone()),
        level: sentry::Level::Error,
        ..Default::default()
    };
    event.tags.insert("kind".into(), kind.as_str().into());
    let tags = [
        ("request_id", failure.request_id.clone()),
        ("route", failure.route.clone()),
        ("method", failure.method.clone()),
        ("status", failure.status.map(|status| status.to_string())),
        ("socket_id", failure.socket_id.clone()),
    ];
    for (name, value) in tags {
        if let Some(value) = value {
            event.tags.insert(name.into(), value);
        }
    }
    event.user = failure.user.map(|user| sentry::User {
        id: Some(hashed_user(user)),
        ..Default::default()
    });
    // One issue per kind and route, not one per message text.
    let route = failure.route.clone().unwrap_or_else(|| "-".into());
    event.fingerprint = vec![kind.as_str().into(), route.into()].into();
    client.capture_event(event, None);
}

/// The user as the tracker sees them: a stable pseudonym, so reports of one
/// user group together, that does not reveal their id.
pub fn hashed_user(user: Uuid) -> String {
    let digest = Sha256::digest([b"taskmaster user\0".as_slice(), user.as_bytes()].concat());
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What an HTTP request's layers learn about it, for its report.
#[derive(Debug, Default)]
pub struct RequestScope {
    route: OnceLock<String>,
    user: OnceLock<Uuid>,
    panic: Mutex<Option<String>>,
}

impl RequestScope {
    pub fn set_route(&self, route: &str) {
        let _ = self.route.set(route.to_owned());
    }

    pub fn set_user(&self, user: Uuid) {
        let _ = self.user.set(user);
    }
}

tokio::task_local! {
    /// The request being served, for the panic hook.
    static CURRENT_REQUEST: Arc<RequestScope>;
}

/// A 5xx answer's cause, left in the response by whoever produced it.
#[derive(Debug, Clone)]
pub struct FailureNote {
    pub kind: FailureKind,
    pub message: String,
}

/// Middleware, outside the panic catcher and the timeout: gives the request
/// its [`RequestScope`] and reports the answer if it is a 5xx.
pub async fn track_http(mut request: Request, next: Next) -> Response {
    let scope = Arc::new(RequestScope::default());
    request.extensions_mut().insert(scope.clone());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let method = request.method().to_string();
    let response = CURRENT_REQUEST
        .scope(scope.clone(), next.run(request))
        .await;
    let status = response.status().as_u16();
    if status < 500 {
        return response;
    }
    let panicked = scope.panic.lock().ok().and_then(|mut panic| panic.take());
    let note = response.extensions().get::<FailureNote>().cloned();
    let (kind, message) = match (panicked, note) {
        (Some(message), _) => (FailureKind::Panic, format!("panic: {message}")),
        (None, Some(note)) => (note.kind, note.message),
        (None, None) => (
            FailureKind::Internal,
            format!("answered {status} without a recorded cause"),
        ),
    };
    report(Failure {
        kind: Some(kind),
        message,
        request_id,
        route: scope.route.get().cloned(),
        method: Some(method),
        status: Some(status),
        user: scope.user.get().copied(),
        socket_id: None,
    });
    response
}

/// Chains a hook in front of the process's panic hook: a panic inside a
/// request leaves its message in the request's scope (reported with the
/// answer); any other panic is reported here.
fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            let location = info
                .location()
                .map(|location| format!(" at {}:{}", location.file(), location.line()))
                .unwrap_or_default();
            let message = format!("{message}{location}");
            let in_request = CURRENT_REQUEST
                .try_with(|scope| {
                    if let Ok(mut panic) = scope.panic.lock() {
                        *panic = Some(message.clone());
                    }
                })
                .is_ok();
            if !in_request {
                report(Failure {
                    kind: Some(FailureKind::Panic),
                    message: format!("panic: {message}"),
                    ..Failure::default()
                });
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_pseudonymous_and_stable() {
        let user = Uuid::now_v7();
        let hashed = hashed_user(user);
        assert_eq!(hashed.len(), 16);
        assert_eq!(hashed, hashed_user(user));
        assert_ne!(hashed, hashed_user(Uuid::now_v7()));
        assert!(!user.to_string().contains(&hashed));
    }
}
