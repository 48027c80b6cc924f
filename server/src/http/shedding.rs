//! Load shedding for the API: at most `MAX_REQUESTS_IN_FLIGHT` requests are
//! served at once, at most `MAX_REQUESTS_QUEUED` wait for a turn, and none
//! waits longer than `REQUEST_QUEUE_TIMEOUT_MS`. A request beyond those
//! bounds gets 503 `service_unavailable` with `Retry-After` straight away:
//! past its capacity an instance answers fewer requests quickly instead of
//! every request ever more slowly, and clients back off (the edge, the web
//! app and the load generator all honour `Retry-After`).
//!
//! Only the API is admitted here. Health checks must answer while the
//! instance is busy (or the edge would take a loaded instance for a dead
//! one), and Socket.IO traffic has its own bounds per socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::Error;
use crate::error_tracking::{FailureKind, FailureNote};

/// The admission bounds, shared by every request of the instance.
#[derive(Clone)]
pub struct Admission {
    turns: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    max_wait: Duration,
}

impl Admission {
    pub fn new(config: &Config) -> Admission {
        Admission {
            turns: Arc::new(Semaphore::new(config.max_requests_in_flight.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: config.max_requests_queued,
            max_wait: Duration::from_millis(config.request_queue_timeout_ms),
        }
    }
}

/// Counts a request in the queue for as long as it waits — also when the
/// client goes away while it waits and the future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn overloaded(reason: &'static str) -> Response {
    metrics::counter!("http_requests_shed_total", "reason" => reason).increment(1);
    let mut response =
        Error::Unavailable("the server is at capacity; retry in a moment".into()).into_response();
    response.extensions_mut().insert(FailureNote {
        kind: FailureKind::Shed,
        message: format!("load shed ({reason})"),
    });
    response
}

pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let _turn = match admission.turns.clone().try_acquire_owned() {
        Ok(turn) => turn,
        Err(_) => {
            if admission.waiting.fetch_add(1, Ordering::AcqRel) >= admission.max_waiting {
                admission.waiting.fetch_sub(1, Ordering::AcqRel);
                return overloaded("queue_full");
            }
            let _waiting = Waiting(&admission.waiting);
            match tokio::time::timeout(admission.max_wait, admission.turns.clone().acquire_owned())
                .await
            {
                Ok(Ok(turn)) => turn,
                _ => return overloaded("queue_timeout"),
            }
        }
    };
    next.run(request).await
}
