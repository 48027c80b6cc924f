//! Ordered, exactly-once delivery of one project's events to this instance's
//! sockets.
//!
//! Events reach an instance from several sources — this instance's own
//! commits, other instances over the bus, the database when a gap is filled —
//! in any order and possibly twice. A [`ProjectStream`] holds the last seq it
//! delivered and releases events strictly in seq order: a duplicate (seq ≤
//! delivered) is dropped, an early one waits in `pending` until the gap before
//! it is filled, from the bus or, after a short grace period, from the
//! `events` table (which has every committed event: seq N commits only after
//! N-1 did, because both hold the project lock). Delivery happens under the
//! stream's lock, so a join (which replays and then enters the room under the
//! same lock) sees a clean boundary.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::Event;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use uuid::Uuid;

use super::{Adapter, Io};
use crate::db;

/// How long an early event waits for the ones before it to arrive over the
/// bus before they are read from the database.
pub const GAP_GRACE: Duration = Duration::from_millis(100);
/// Events read from the database per round when catching up.
const CATCH_UP_PAGE: i64 = 1_000;
/// Early events held at most; past this the gap is filled at once.
const MAX_PENDING: usize = 10_000;

pub struct ProjectStream {
    pub project: Uuid,
    pub room: String,
    pub state: tokio::sync::Mutex<StreamState>,
}

pub struct StreamState {
    /// Last seq delivered to the room; `None` until the first join sets it.
    pub delivered: Option<i64>,
    pending: BTreeMap<i64, Event>,
    /// Set when the stream is dropped from the registry; a join that finds
    /// it retired starts over with a fresh stream.
    pub retired: bool,
    fill_scheduled: bool,
}

pub fn room(project: Uuid) -> String {
    format!("project:{project}")
}

impl ProjectStream {
    pub fn new(project: Uuid) -> Self {
        ProjectStream {
            project,
            room: room(project),
            state: tokio::sync::Mutex::new(StreamState {
                delivered: None,
                pending: BTreeMap::new(),
                retired: false,
                fill_scheduled: false,
            }),
        }
    }
}

impl StreamState {
    /// Takes `events` (any order, duplicates allowed) and delivers every one
    /// that is next in line. Returns whether a gap remains (early events wait).
    pub fn offer(
        &mut self,
        io: &Io,
        stream: &ProjectStream,
        events: impl IntoIterator<Item = Event>,
    ) -> bool {
        let Some(mut delivered) = self.delivered else {
            return false;
        };
        for event in events {
            if event.seq <= delivered {
                metrics::counter!("realtime_duplicates_dropped_total").increment(1);
                continue;
            }
            self.pending.insert(event.seq, event);
        }
        while let Some(event) = self.pending.remove(&(delivered + 1)) {
            deliver(io, &stream.room, &event);
            delivered = event.seq;
        }
        self.delivered = Some(delivered);
        !self.pending.is_empty()
    }

    /// Whether a gap should be filled from the database now rather than later.
    pub fn gap_is_urgent(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Marks a fill as scheduled; false if one already is.
    pub fn schedule_fill(&mut self) -> bool {
        !std::mem::replace(&mut self.fill_scheduled, true)
    }

    /// Reads from the database whatever is missing up to `until` (or up to the
    /// earliest pending event) and delivers it.
    pub async fn fill(
        &mut self,
        io: &Io,
        stream: &ProjectStream,
        db: &sqlx::PgPool,
        until: Option<i64>,
    ) -> crate::error::Result<()> {
        self.fill_scheduled = false;
        loop {
            let Some(delivered) = self.delivered else {
                return Ok(());
            };
            let target = until
                .unwrap_or(0)
                .max(self.pending.keys().next().map_or(0, |first| first - 1));
            if delivered >= target {
                return Ok(());
            }
            let limit = (target - delivered).min(CATCH_UP_PAGE);
            let events = db::events::since(db, stream.project, delivered, limit).await?;
            if events.is_empty() {
                return Ok(());
            }
            metrics::counter!("realtime_gap_fill_events_total").increment(events.len() as u64);
            self.offer(io, stream, events);
        }
    }

    pub fn start(&mut self, latest: i64) {
        if self.delivered.is_none() {
            self.delivered = Some(latest);
        }
    }
}

/// Sends one event to every local socket in `room`. A socket whose send
/// buffer is full is too slow to keep up: it is disconnected (bounding the
/// memory it can hold) and recovers by re-joining with `since`.
fn deliver(io: &Io, room: &str, event: &Event) {
    let Ok(payload) = serde_json::value::to_raw_value(event) else {
        tracing::error!(seq = event.seq, "event did not serialise");
        return;
    };
    record_fanout_latency(event);
    let mut delivered = 0u64;
    for socket in io.local().to(room.to_owned()).sockets() {
        if send(&socket, &payload) {
            delivered += 1;
        }
    }
    metrics::counter!("realtime_deliveries_total").increment(delivered);
}

/// What happened to one event sent to one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// The socket's send buffer is full.
    Full,
    /// The socket is gone.
    Closed,
}

/// Queues one pre-serialised event on one socket.
pub fn try_send(socket: &SocketRef<Adapter>, payload: &RawValue) -> Sent {
    match socket.emit("event", payload) {
        Ok(()) => Sent::Queued,
        Err(SendError::Socket(SocketError::InternalChannelFull)) => Sent::Full,
        Err(error) => {
            metrics::counter!("realtime_send_failures_total").increment(1);
            tracing::debug!(socket = %socket.id, %error, "could not send an event");
            Sent::Closed
        }
    }
}

/// Live delivery: a socket whose buffer is full is too slow to keep up. It
/// leaves its rooms at once (nothing more is queued for it, so its memory
/// stays bounded) and is disconnected as soon as the disconnect packet fits
/// in its buffer; a client that never reads again is dropped by the
/// heartbeat. True if the event was queued.
pub fn send(socket: &SocketRef<Adapter>, payload: &RawValue) -> bool {
    match try_send(socket, payload) {
        Sent::Queued => true,
        Sent::Full => {
            metrics::counter!("realtime_slow_consumers_disconnected_total").increment(1);
            tracing::info!(socket = %socket.id, "disconnecting a socket that cannot keep up");
            socket.leave_all();
            let socket = socket.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + SLOW_CONSUMER_PATIENCE;
                while tokio::time::Instant::now() < deadline {
                    match socket.clone().disconnect() {
                        Err(SocketError::InternalChannelFull) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ => return,
                    }
                }
            });
            false
        }
        Sent::Closed => false,
    }
}

/// How long a cut-off socket's disconnect is retried; past this the
/// heartbeat has dropped it anyway.
const SLOW_CONSUMER_PATIENCE: Duration = Duration::from_secs(60);

fn record_fanout_latency(event: &Event) {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(&event.at, &Rfc3339) {
        let seconds = (time::OffsetDateTime::now_utc() - at).as_seconds_f64();
        metrics::histogram!("realtime_fanout_seconds").record(seconds.max(0.0));
    }
}
