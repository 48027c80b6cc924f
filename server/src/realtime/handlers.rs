//! The handshake and the client → server events.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use protocol::{
    handshake_refusal, JoinRequest, LeaveRequest, SocketBulkChange, SocketCreateTask,
    SocketDeleteTask, SocketUpdateTask,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;
use uuid::Uuid;

use super::{presence, stream, Adapter, Realtime};
use crate::app::input::parse_json;
use crate::app::{Actor, Need};
use crate::db;
use crate::error::Error;
use crate::error_tracking::{self, Failure, FailureKind};

/// The signed-in user of a socket, stored in its extensions at handshake.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: Uuid,
    pub name: String,
    /// The caller of the use cases this socket runs.
    pub actor: Actor,
}

/// The `auth` payload of the handshake. A browser app signed in by its
/// session cookie sends none (or no token): the cookie comes with the
/// handshake request.
#[derive(serde::Deserialize)]
pub struct Handshake {
    #[serde(default)]
    pub token: Option<String>,
}

/// Why a handshake was refused; its text is the `connect_error` message.
#[derive(Debug)]
pub struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Handshake middleware: checks the `auth` token (or the session cookie)
/// before the connection is accepted, and registers the event handlers here — before the client can
/// send anything — so a `join` sent right on `connect` is never missed.
pub async fn authenticate(
    socket: SocketRef<Adapter>,
    TryData(handshake): TryData<Handshake>,
    State(realtime): State<Realtime>,
) -> Result<(), Refused> {
    let token = match handshake.ok().and_then(|handshake| handshake.token) {
        Some(token) => token,
        None => {
            let cookies = realtime.cookies();
            let headers = &socket.req_parts().headers;
            let token = cookies
                .session_token(headers)
                .ok_or_else(|| Refused(handshake_refusal::MISSING_CREDENTIALS.into()))?;
            // A WebSocket carries no CSRF header: the page's origin is
            // what tells a foreign page's connection attempt from ours.
            cookies
                .check_origin(headers)
                .map_err(|_| Refused(handshake_refusal::ORIGIN_NOT_ALLOWED.into()))?;
            token.to_owned()
        }
    };
    let actor = match realtime.app().authenticate(&token).await {
        Ok(actor) => actor,
        Err(Error::Unauthorized(_)) => {
            return Err(Refused(handshake_refusal::INVALID_TOKEN.into()))
        }
        Err(error) => {
            // Logged here, once: the client only learns that the server is
            // unavailable, and keeps its session to retry with.
            let (kind, message) = if let Error::Internal(cause) = &error {
                tracing::error!(socket = %socket.id, error = format!("{cause:#}"), "handshake: internal error");
                (FailureKind::Internal, format!("{cause:#}"))
            } else {
                tracing::warn!(socket = %socket.id, %error, "handshake: dependency unavailable");
                (FailureKind::Unavailable, error.to_string())
            };
            metrics::counter!("realtime_event_failures_total", "event" => "handshake").increment(1);
            error_tracking::report(Failure {
                kind: Some(kind),
                message,
                route: Some("socket.io handshake".into()),
                socket_id: Some(socket.id.to_string()),
                ..Failure::default()
            });
            return Err(Refused(handshake_refusal::UNAVAILABLE.into()));
        }
    };
    if realtime.app().check_api_rate(&actor).is_err() {
        return Err(Refused(handshake_refusal::TOO_MANY_REQUESTS.into()));
    }
    let id = actor.id;
    let slot = realtime
        .admit(id)
        .map_err(|refusal| Refused(refusal.into()))?;
    socket.extensions.insert(Arc::new(slot));
    socket.extensions.insert(SessionUser {
        id,
        name: actor.user.name.clone(),
        actor,
    });

    socket.on("join", on_join);
    socket.on("leave", on_leave);
    socket.on("task:create", on_create);
    socket.on("task:update", on_update);
    socket.on("task:delete", on_delete);
    socket.on("task:bulk", on_bulk);
    socket.on_disconnect(on_disconnect);
    metrics::gauge!("realtime_connections").increment(1.0);
    metrics::counter!("realtime_connections_total").increment(1);
    Ok(())
}

pub async fn on_connect(_socket: SocketRef<Adapter>) {}

async fn on_disconnect(
    socket: SocketRef<Adapter>,
    reason: DisconnectReason,
    State(realtime): State<Realtime>,
) {
    metrics::gauge!("realtime_connections").decrement(1.0);
    tracing::debug!(socket = %socket.id, ?reason, "socket disconnected");
    let projects = project_rooms(&socket);
    realtime.forget(&projects, socket.id).await;
    for project in projects {
        realtime.presence_changed(project, Some(socket.id)).await;
    }
}

/// The projects `socket` follows, from its rooms.
fn project_rooms(socket: &SocketRef<Adapter>) -> Vec<Uuid> {
    socket
        .rooms()
        .iter()
        .filter_map(|room| room.strip_prefix("project:"))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

/// A refusal in the acknowledgement: `{"ok": false, "error": {code, message}}`.
fn refusal(code: &str, message: impl Into<String>) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message.into()}})
}

/// An application error as a refused acknowledgement, with the status a
/// REST call would have answered. A failure on our side (internal, or a
/// dependency unavailable) is logged here, once, with the socket, the event
/// and a request id that the acknowledgement carries too, so a client's
/// report can be matched with the log line.
fn api_refusal(socket: &SocketRef<Adapter>, event: &'static str, error: &Error) -> Value {
    let body = error.body();
    let mut detail = json!({"code": body.error.code, "message": body.error.message, "status": error.status_code()});
    let ours = match error {
        Error::Internal(cause) => {
            let request_id = Uuid::new_v4();
            tracing::error!(socket = %socket.id, event, %request_id, error = format!("{cause:#}"), "internal error");
            Some((request_id, FailureKind::Internal, format!("{cause:#}")))
        }
        Error::Unavailable(reason) => {
            let request_id = Uuid::new_v4();
            tracing::warn!(socket = %socket.id, event, %request_id, %reason, "dependency unavailable");
            Some((request_id, FailureKind::Unavailable, reason.clone()))
        }
        _ => None,
    };
    if let Some((request_id, kind, message)) = ours {
        detail["request_id"] = json!(request_id.to_string());
        metrics::counter!("realtime_event_failures_total", "event" => event).increment(1);
        error_tracking::report(Failure {
            kind: Some(kind),
            message,
            request_id: Some(request_id.to_string()),
            route: Some(format!("socket.io {event}")),
            user: socket.extensions.get::<SessionUser>().map(|user| user.id),
            socket_id: Some(socket.id.to_string()),
            ..Failure::default()
        });
    }
    json!({"ok": false, "error": detail})
}

/// Parses an event payload as the REST layer parses a body, so both give the
/// same errors.
pub(super) fn payload<T: DeserializeOwned>(
    value: Result<Value, socketioxide::ParserError>,
) -> Result<T, Error> {
    let value = value.map_err(|_| {
        Error::Malformed("malformed_payload", "payload must be a JSON object".into())
    })?;
    let bytes = serde_json::to_vec(&value).map_err(anyhow::Error::from)?;
    parse_json(&bytes)
}

fn user_of(socket: &SocketRef<Adapter>) -> Option<SessionUser> {
    socket.extensions.get::<SessionUser>()
}

async fn on_join(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let Some(user) = user_of(&socket) else {
        let _ = ack.send(&refusal("unauthorized", "not signed in"));
        return;
    };
    let request: JoinRequest = match payload(request) {
        Ok(request) => request,
        Err(error) => {
            let _ = ack.send(&api_refusal(&socket, "join", &error));
            return;
        }
    };
    let project = match realtime
        .app()
        .authorize(&user.actor, &request.project_id, Need::Read)
        .await
    {
        Ok(access) => access.project,
        Err(error) => {
            let _ = ack.send(&api_refusal(&socket, "join", &error));
            return;
        }
    };
    if request.since.is_some_and(|since| since < 0) {
        let _ = ack.send(&refusal("invalid_since", "since must not be negative"));
        return;
    }
    let limit = realtime.0.settings.max_projects_per_connection;
    let followed = project_rooms(&socket);
    if followed.len() >= limit && !followed.contains(&project) {
        let _ = ack.send(&refusal(
            "too_many_projects",
            format!("a connection follows at most {limit} projects at once; leave one first"),
        ));
        return;
    }
    if realtime
        .join(&socket, user.id, project, request.since, ack)
        .await
    {
        let users = realtime.current_presence(project);
        presence::tell(&socket, project, &users);
        realtime.presence_changed(project, None).await;
    }
}

impl Realtime {
    /// Subscribes `socket` to `project`: under the project stream's lock,
    /// catches the stream up with the database, replays `since < seq ≤ S` to
    /// this socket, enters the room and acknowledges `{ok, seq: S}` — so the
    /// first live event this socket sees is exactly S + 1. Returns whether the
    /// join succeeded (the ack is sent either way).
    async fn join(
        &self,
        socket: &SocketRef<Adapter>,
        user: Uuid,
        project: Uuid,
        since: Option<i64>,
        ack: AckSender<Adapter>,
    ) -> bool {
        loop {
            let stream = self.stream(project);
            self.ensure_subscribed(project).await;
            let mut state = stream.state.lock().await;
            if state.retired {
                continue;
            }
            let (latest, pruned_through) = match db::events::bounds(self.db(), project).await {
                Ok(bounds) => bounds.unwrap_or((0, 0)),
                Err(error) => {
                    let _ = ack.send(&api_refusal(socket, "join", &error));
                    return false;
                }
            };
            state.start(latest);
            if let Err(error) = state.fill(&stream, self.db(), Some(latest)).await {
                let _ = ack.send(&api_refusal(socket, "join", &error));
                return false;
            }
            let subscribed_at = state.delivered.unwrap_or(latest);
            if let Some(since) = since {
                if since > subscribed_at {
                    let _ = ack.send(&refusal(
                        "invalid_since",
                        format!("since {since} is after the latest seq {subscribed_at}"),
                    ));
                    return false;
                }
                if since < pruned_through {
                    let _ = ack.send(&refusal(
                        "resync_required",
                        format!(
                            "events up to seq {pruned_through} are no longer kept; reload the project and join without since"
                        ),
                    ));
                    return false;
                }
                if subscribed_at - since > self.0.settings.replay_max_events {
                    let _ = ack.send(&refusal(
                        "resync_required",
                        format!(
                            "more than {} events were missed; reload the project and join without since",
                            self.0.settings.replay_max_events
                        ),
                    ));
                    return false;
                }
                if let Err(error) = self.replay(socket, project, since, subscribed_at).await {
                    let _ = ack.send(&api_refusal(socket, "join", &error));
                    return false;
                }
            }
            state.subscribe(&stream, user, socket);
            let _ = ack.send(&json!({"ok": true, "seq": subscribed_at}));
            // Its client reads the task list next: have it ready.
            self.app().warm(project);
            return true;
        }
    }

    async fn replay(
        &self,
        socket: &SocketRef<Adapter>,
        project: Uuid,
        since: i64,
        until: i64,
    ) -> crate::error::Result<()> {
        let mut after = since;
        while after < until {
            let events = db::events::since(
                self.db(),
                project,
                after,
                (until - after).min(db::events::MAX_PAGE),
            )
            .await?;
            let Some(last) = events.last() else {
                break;
            };
            after = last.seq;
            for event in &events {
                let payload =
                    serde_json::value::to_raw_value(event).map_err(anyhow::Error::from)?;
                replay_one(socket, &payload).await?;
            }
            metrics::counter!("realtime_replayed_events_total").increment(events.len() as u64);
        }
        Ok(())
    }
}

/// How long a joiner may take to read its replay before the join fails.
const REPLAY_PATIENCE: Duration = Duration::from_secs(5);

/// Queues one replayed event, waiting for room in the socket's buffer: a
/// replay may be longer than the buffer, and a joiner that is reading
/// drains it quickly.
async fn replay_one(
    socket: &SocketRef<Adapter>,
    payload: &serde_json::value::RawValue,
) -> crate::error::Result<()> {
    let deadline = tokio::time::Instant::now() + REPLAY_PATIENCE;
    loop {
        match stream::try_send(socket, payload) {
            stream::Sent::Queued => return Ok(()),
            stream::Sent::Full if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ => {
                let _ = socket.clone().disconnect();
                return Err(Error::Unavailable(
                    "could not replay: the connection is not reading".into(),
                ));
            }
        }
    }
}

async fn on_leave(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let request: LeaveRequest = match payload(request) {
        Ok(request) => request,
        Err(error) => {
            let _ = ack.send(&api_refusal(&socket, "leave", &error));
            return;
        }
    };
    let Ok(project) = Uuid::parse_str(&request.project_id) else {
        let _ = ack.send(&json!({"ok": true}));
        return;
    };
    realtime.unsubscribe(project, &socket).await;
    let _ = ack.send(&json!({"ok": true}));
    realtime.presence_changed(project, None).await;
}

/// Runs a write event through the same use case as its REST call: the
/// payload parsed with the same rules, the outcome (or the error body) in the
/// acknowledgement.
async fn write<R: DeserializeOwned>(
    socket: &SocketRef<Adapter>,
    realtime: &Realtime,
    event: &'static str,
    request: Result<Value, socketioxide::ParserError>,
    apply: impl AsyncFnOnce(Actor, R) -> Result<Value, Error>,
) -> Value {
    let result = async {
        let user = user_of(socket).ok_or_else(|| Error::Unauthorized("not signed in".into()))?;
        realtime.app().check_api_rate(&user.actor)?;
        let request: R = payload(request)?;
        apply(user.actor, request).await
    }
    .await;
    result.unwrap_or_else(|error| api_refusal(socket, event, &error))
}

async fn on_create(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let reply = write(
        &socket,
        &realtime,
        "task:create",
        request,
        async |actor, request: SocketCreateTask| {
            let task = realtime
                .app()
                .create_task(&actor, &request.project_id, request.task)
                .await?;
            Ok(json!({"ok": true, "task": task}))
        },
    )
    .await;
    let _ = ack.send(&reply);
}

async fn on_update(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let reply = write(
        &socket,
        &realtime,
        "task:update",
        request,
        async |actor, request: SocketUpdateTask| {
            let task = realtime
                .app()
                .update_task(
                    &actor,
                    &request.project_id,
                    request.id,
                    request.changes,
                    request.if_match,
                )
                .await?;
            Ok(json!({"ok": true, "task": task}))
        },
    )
    .await;
    let _ = ack.send(&reply);
}

async fn on_delete(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let reply = write(
        &socket,
        &realtime,
        "task:delete",
        request,
        async |actor, request: SocketDeleteTask| {
            realtime
                .app()
                .delete_task(&actor, &request.project_id, request.id, request.if_match)
                .await?;
            Ok(json!({"ok": true}))
        },
    )
    .await;
    let _ = ack.send(&reply);
}

async fn on_bulk(
    socket: SocketRef<Adapter>,
    TryData(request): TryData<Value>,
    ack: AckSender<Adapter>,
    State(realtime): State<Realtime>,
) {
    let reply = write(
        &socket,
        &realtime,
        "task:bulk",
        request,
        async |actor, request: SocketBulkChange| {
            let result = realtime
                .app()
                .bulk_change(&actor, &request.project_id, request.change)
                .await?;
            let mut reply = serde_json::to_value(result).map_err(anyhow::Error::from)?;
            reply["ok"] = json!(true);
            Ok(reply)
        },
    )
    .await;
    let _ = ack.send(&reply);
}
