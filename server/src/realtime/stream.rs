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
//! stream's lock, so a join (which replays and then subscribes under the
//! same lock) sees a clean boundary.
//!
//! The stream keeps the list of this instance's sockets subscribed to the
//! project, and each event is encoded once and the same bytes queued on
//! every one of them: looking sockets up in the room and encoding per socket
//! cost as much as the rest of delivery. Every change of a subscription
//! (join, leave, disconnect, revocation, a slow consumer cut off) goes
//! through the stream, under its lock, and also updates the Socket.IO room,
//! which presence reads.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::Event;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::{EncodedEvent, Sid};
use socketioxide::{SendError, SocketError};
use uuid::Uuid;

use super::Adapter;
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
    /// This instance's sockets subscribed to the project, with their users.
    subscribers: Vec<Subscriber>,
    /// Set when the stream is dropped from the registry; a join that finds
    /// it retired starts over with a fresh stream.
    pub retired: bool,
    fill_scheduled: bool,
}

struct Subscriber {
    user: Uuid,
    socket: SocketRef<Adapter>,
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
                subscribers: Vec::new(),
                retired: false,
                fill_scheduled: false,
            }),
        }
    }
}

impl StreamState {
    /// Takes `events` (any order, duplicates allowed) and delivers every one
    /// that is next in line. Returns whether a gap remains (early events wait).
    pub fn offer(&mut self, events: impl IntoIterator<Item = Event>) -> bool {
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
            self.deliver(&event);
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
            self.offer(events);
        }
    }

    pub fn start(&mut self, latest: i64) {
        if self.delivered.is_none() {
            self.delivered = Some(latest);
        }
    }
}

impl StreamState {
    /// Adds `socket` to the sockets every event is sent to, and to the room.
    /// Joining twice subscribes once.
    pub fn subscribe(&mut self, stream: &ProjectStream, user: Uuid, socket: &SocketRef<Adapter>) {
        if !self.subscribers.iter().any(|s| s.socket.id == socket.id) {
            self.subscribers.push(Subscriber {
                user,
                socket: socket.clone(),
            });
        }
        socket.join(stream.room.clone());
    }

    /// Removes one socket: no event is queued on it once this returns.
    pub fn unsubscribe(&mut self, stream: &ProjectStream, socket: &SocketRef<Adapter>) {
        self.subscribers.retain(|s| s.socket.id != socket.id);
        socket.leave(stream.room.clone());
    }

    /// Removes every socket of `user` (a revoked membership); returns how
    /// many there were.
    pub fn unsubscribe_user(&mut self, stream: &ProjectStream, user: Uuid) -> usize {
        let before = self.subscribers.len();
        self.subscribers.retain(|s| {
            let revoked = s.user == user;
            if revoked {
                s.socket.leave(stream.room.clone());
            }
            !revoked
        });
        before - self.subscribers.len()
    }

    /// Forgets a socket that is gone (its rooms go with it).
    pub fn forget(&mut self, socket: Sid) {
        self.subscribers.retain(|s| s.socket.id != socket);
    }

    /// Whether any subscriber is still connected (the others are forgotten:
    /// a socket cut off for being slow has left its rooms before it goes).
    pub fn has_subscribers(&mut self) -> bool {
        self.subscribers.retain(|s| s.socket.connected());
        !self.subscribers.is_empty()
    }

    /// Sends one event to every subscriber: encoded once, the same bytes
    /// queued on each. A socket whose send buffer is full is too slow to
    /// keep up: it is dropped from the list and disconnected (bounding the
    /// memory it can hold) and recovers by re-joining with `since`; a socket
    /// that is gone is dropped from the list.
    fn deliver(&mut self, event: &Event) {
        record_fanout_latency(event);
        let Some(first) = self.subscribers.first() else {
            return;
        };
        let encoded = match first.socket.encode_event("event", event) {
            Ok(encoded) => encoded,
            Err(error) => {
                tracing::error!(seq = event.seq, %error, "event did not serialise");
                return;
            }
        };
        let mut delivered = 0u64;
        self.subscribers.retain(
            |subscriber| match send_encoded(&subscriber.socket, &encoded) {
                Sent::Queued => {
                    delivered += 1;
                    true
                }
                Sent::Full => {
                    cut_off(&subscriber.socket);
                    false
                }
                Sent::Closed => false,
            },
        );
        metrics::counter!("realtime_deliveries_total").increment(delivered);
    }
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
        Err(SendError::Socket(error)) => sent(socket, error),
        Err(error) => {
            metrics::counter!("realtime_send_failures_total").increment(1);
            tracing::debug!(socket = %socket.id, %error, "could not send an event");
            Sent::Closed
        }
    }
}

fn send_encoded(socket: &SocketRef<Adapter>, event: &EncodedEvent) -> Sent {
    match socket.emit_encoded(event) {
        Ok(()) => Sent::Queued,
        Err(error) => sent(socket, error),
    }
}

fn sent(socket: &SocketRef<Adapter>, error: SocketError) -> Sent {
    match error {
        SocketError::InternalChannelFull => Sent::Full,
        error => {
            metrics::counter!("realtime_send_failures_total").increment(1);
            tracing::debug!(socket = %socket.id, %error, "could not send an event");
            Sent::Closed
        }
    }
}

/// Marks a socket being disconnected for being too slow, so that the other
/// projects it is subscribed to do not each start a disconnect of their own.
#[derive(Clone)]
struct CutOff;

/// Cuts off a socket whose buffer is full: too slow to keep up. It leaves
/// its rooms at once (presence no longer counts it) and is disconnected as
/// soon as the disconnect packet fits in its buffer; a client that never
/// reads again is dropped by the heartbeat. The other streams it is
/// subscribed to drop it when it is gone, or at once if still full.
fn cut_off(socket: &SocketRef<Adapter>) {
    if socket.extensions.get::<CutOff>().is_some() {
        return;
    }
    socket.extensions.insert(CutOff);
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
