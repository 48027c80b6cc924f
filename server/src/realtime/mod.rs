//! Real time: Socket.IO on the same server, one room per project, events
//! delivered exactly once and in seq order to every joined socket, on every
//! instance.
//!
//! - `handlers` — handshake authentication and the client events (`join`,
//!   `leave`, `task:*`).
//! - `stream` — per-project ordering and gap filling on this instance.
//! - `presence` — who is joined, across instances.
//! - `bus` — Redis pub/sub between instances (also the socketioxide adapter's
//!   driver); disabled without `REDIS_URL`.
//!
//! Only this module knows Socket.IO.

pub mod bus;
mod handlers;
mod presence;
mod stream;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::OriginalUri;
use protocol::{Event, PresenceUser};
use serde::{Deserialize, Serialize};
use socketioxide::adapter::Emitter;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use socketioxide_redis::drivers::ChanItem;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

use crate::app::{App, CommitListener};
use crate::config::Config;
use crate::db;
use crate::health::{Probe, Verdict};
use crate::http::session_cookie::CookiePolicy;
use crate::telemetry;
pub use bus::Bus;
use stream::ProjectStream;

/// Where Socket.IO is served (socketioxide's default path).
const SOCKET_IO_PATH: &str = "/socket.io/";

/// Each WebSocket keeps a read buffer of this size for its whole life.
/// Clients send small frames (pings, joins, single-task writes), so 1 KiB
/// covers nearly every read in one call; a larger frame grows the buffer
/// to fit. socketioxide's default of 4 KiB costs 57 MiB per 19,000 sockets.
const WS_READ_BUFFER_BYTES: usize = 1024;

/// Socket.IO keeps every connection's request head (URI and headers) for
/// as long as the connection lives. hyper parses the head as slices of its
/// 8 KiB read buffer, so keeping any one header keeps the whole buffer: 8 KiB
/// per socket, over a quarter of a socket's memory. Copying the head of a
/// Socket.IO request into small allocations of its own lets the buffer go.
pub fn detach_request_head<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    if !request.uri().path().starts_with(SOCKET_IO_PATH) {
        return request;
    }
    if let Ok(uri) = request.uri().to_string().parse::<axum::http::Uri>() {
        // axum's router keeps a clone of the URI as it arrived.
        if let Some(original) = request.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *request.uri_mut() = uri;
    }
    for value in request.headers_mut().values_mut() {
        if let Ok(mut copy) = axum::http::HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
    request
}

pub type Adapter = CustomRedisAdapter<Emitter, Bus>;
pub type Io = SocketIo<Adapter>;

/// How often each instance compares its streams with the database, catching
/// anything the bus lost. Faster while Redis is down.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
const RECONCILE_EVERY_DEGRADED: Duration = Duration::from_secs(1);
/// How often the bus's health is checked.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How often streams without local sockets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Bus messages waiting for [`Realtime::consume`]; beyond this the bus
/// drops them (counted) and reconciliation fills in.
const INBOX_MESSAGES: usize = 8_192;

/// What instances tell each other.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum BusMessage {
    /// Events committed by `instance`, in seq order, with the trace
    /// context of the change that committed them (W3C `traceparent`, empty
    /// when it was not traced; instances that predate it ignore it).
    Events {
        instance: Uuid,
        events: Vec<Event>,
        #[serde(default, skip_serializing_if = "HashMap::is_empty")]
        trace: HashMap<String, String>,
    },
    /// `instance`'s local users in `project`.
    Presence {
        instance: Uuid,
        project: Uuid,
        users: Vec<PresenceUser>,
    },
    /// `instance` is alive (on the instances channel, every heartbeat).
    Alive { instance: Uuid },
    /// `instance` has just subscribed to `project`: whoever has users there
    /// says so now rather than at the next refresh.
    PresenceWanted { instance: Uuid, project: Uuid },
    /// `user` is no longer a member of `project`: every instance ends that
    /// user's subscriptions to it.
    Revoked {
        instance: Uuid,
        project: Uuid,
        user: Uuid,
    },
    /// These sessions (token hashes, hex) were ended: every instance closes
    /// the connections they opened (on the instances channel).
    SessionsEnded {
        instance: Uuid,
        token_hashes: Vec<String>,
    },
    /// `user`'s background job moved on: every instance tells that user's
    /// connections (on the instances channel).
    JobChanged {
        instance: Uuid,
        user: Uuid,
        job: Box<protocol::JobStatus>,
    },
}

/// Socket.IO settings, from [`Config`].
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: u64,
    pub send_buffer_packets: usize,
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub max_projects_per_connection: usize,
    pub replay_max_events: i64,
    /// Prefix of our Redis channels.
    pub redis_prefix: String,
    /// A browser's handshake may be signed in by its session cookie.
    pub cookies: CookiePolicy,
}

impl RealtimeSettings {
    pub fn from_config(config: &Config) -> Self {
        RealtimeSettings {
            ping_interval: Duration::from_millis(config.socket_ping_interval_ms),
            ping_timeout: Duration::from_millis(config.socket_ping_timeout_ms),
            max_payload: config.socket_max_payload_bytes,
            send_buffer_packets: config.socket_send_buffer_packets,
            max_connections: config.socket_max_connections,
            max_connections_per_user: config.socket_max_connections_per_user,
            max_projects_per_connection: config.socket_max_projects_per_connection,
            replay_max_events: config.replay_max_events,
            redis_prefix: config.redis_prefix.clone(),
            cookies: CookiePolicy::new(config),
        }
    }
}

/// The real-time hub of one instance. Cheap to clone.
#[derive(Clone)]
pub struct Realtime(Arc<Inner>);

struct Inner {
    app: App,
    bus: Bus,
    io: OnceLock<Io>,
    /// Projects with sockets on this instance.
    streams: Mutex<HashMap<Uuid, Arc<ProjectStream>>>,
    presence: presence::PresenceBook,
    /// Identifies this instance on the bus.
    instance: Uuid,
    settings: RealtimeSettings,
    /// Where the project channels' messages go (see [`Realtime::consume`]).
    inbox: mpsc::Sender<ChanItem>,
    /// Projects whose bus channel this instance subscribes to: those with a
    /// stream here. Held across (un)subscribing, which keeps those in order.
    subscribed: tokio::sync::Mutex<HashSet<Uuid>>,
    /// Connections admitted and not yet gone, in all and per user.
    connections: AtomicUsize,
    user_connections: Mutex<HashMap<Uuid, usize>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One admitted connection, kept in its socket's extensions: the slot is
/// given back when the socket is dropped, however the connection ended.
pub struct ConnectionSlot {
    realtime: Realtime,
    user: Uuid,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let inner = &self.realtime.0;
        inner.connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_user = inner
            .user_connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

impl Realtime {
    /// Builds the Socket.IO layer and starts the background work.
    pub async fn start(
        app: App,
        bus: Bus,
        settings: RealtimeSettings,
    ) -> anyhow::Result<(Realtime, SocketIoLayer<Adapter>)> {
        let (inbox, messages) = mpsc::channel(INBOX_MESSAGES);
        let realtime = Realtime(Arc::new(Inner {
            app,
            bus: bus.clone(),
            io: OnceLock::new(),
            streams: Mutex::default(),
            presence: presence::PresenceBook::default(),
            instance: Uuid::new_v4(),
            settings: settings.clone(),
            inbox,
            subscribed: tokio::sync::Mutex::default(),
            connections: AtomicUsize::new(0),
            user_connections: Mutex::default(),
            tasks: Mutex::default(),
        }));
        let adapter = RedisAdapterCtr::new_with_driver(
            bus.clone(),
            RedisAdapterConfig::new()
                .with_prefix(format!("{}:socket.io", settings.redis_prefix))
                .with_request_timeout(Duration::from_secs(2)),
        );
        let (layer, io) = SocketIo::builder()
            .ping_interval(settings.ping_interval)
            .ping_timeout(settings.ping_timeout)
            .max_payload(settings.max_payload)
            .ws_max_message_size(settings.max_payload as usize)
            .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
            .max_buffer_size(settings.send_buffer_packets)
            .with_state(realtime.clone())
            .with_adapter::<Adapter>(adapter)
            .build_layer();
        io.ns("/", handlers::on_connect.with(handlers::authenticate))
            .await
            .map_err(|error| anyhow::anyhow!("socket.io namespace: {error}"))?;
        let _ = realtime.0.io.set(io);

        if bus.is_enabled() {
            let channel = realtime.instances_channel();
            if let Err(error) = bus.listen(channel, realtime.0.inbox.clone()).await {
                tracing::warn!(%error, "instances channel deferred until Redis answers");
            }
        }
        let mut tasks = vec![tokio::spawn(realtime.clone().consume(messages))];
        tasks.push(tokio::spawn(realtime.clone().watch_bus()));
        tasks.push(tokio::spawn(realtime.clone().reconcile_forever()));
        tasks.push(tokio::spawn(realtime.clone().sweep_forever()));
        tasks.push(tokio::spawn(realtime.clone().heartbeat_forever()));
        if let Ok(mut slot) = realtime.0.tasks.lock() {
            slot.extend(tasks);
        }
        Ok((realtime, layer))
    }

    fn io(&self) -> &Io {
        self.0
            .io
            .get()
            .expect("io is set before any socket connects")
    }

    /// How browser sessions are kept in cookies (a handshake may bring one).
    pub fn cookies(&self) -> &CookiePolicy {
        &self.0.settings.cookies
    }

    pub fn app(&self) -> &App {
        &self.0.app
    }

    /// The primary database: the change log is read where it is written.
    pub fn db(&self) -> &PgPool {
        self.0.app.db()
    }

    /// Admits one more connection of `user` within the instance's and the
    /// user's limits; the slot is given back when it is dropped. The error
    /// is the handshake's refusal.
    fn admit(&self, user: Uuid) -> Result<ConnectionSlot, &'static str> {
        use protocol::handshake_refusal::{TOO_MANY_CONNECTIONS, TOO_MANY_USER_CONNECTIONS};
        let settings = &self.0.settings;
        let mut per_user = self
            .0
            .user_connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.0.connections.load(Ordering::Relaxed) >= settings.max_connections {
            metrics::counter!("realtime_connections_refused_total", "limit" => "instance")
                .increment(1);
            return Err(TOO_MANY_CONNECTIONS);
        }
        let count = per_user.entry(user).or_default();
        if *count >= settings.max_connections_per_user {
            metrics::counter!("realtime_connections_refused_total", "limit" => "user").increment(1);
            return Err(TOO_MANY_USER_CONNECTIONS);
        }
        *count += 1;
        // Counted under the same lock as the check, so two handshakes
        // cannot both take the last slot.
        self.0.connections.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionSlot {
            realtime: self.clone(),
            user,
        })
    }

    /// Whether events reach the other instances right now.
    pub fn fanout_up(&self) -> bool {
        self.0.bus.is_up()
    }

    pub fn bus(&self) -> &Bus {
        &self.0.bus
    }

    /// Disconnects every socket and stops the background work (shutdown).
    pub async fn close(&self) {
        if let Ok(mut tasks) = self.0.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Some(io) = self.0.io.get() {
            io.clone().close().await;
        }
    }

    /// Hands committed events to local subscribers and to the other instances.
    /// Called right after the commit; returns at once.
    pub fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let realtime = self.clone();
        // A child of the writer's request span: one trace follows the
        // change through the bus to the other instances' emissions.
        let span = tracing::info_span!(
            "realtime.publish",
            seq = events.last().map(|event| event.seq),
            events = events.len()
        );
        let publishing = async move {
            realtime.offer(events.clone()).await;
            if realtime.0.bus.is_enabled() {
                let Some(project) = project_of(&events) else {
                    return;
                };
                let message = BusMessage::Events {
                    instance: realtime.0.instance,
                    events,
                    trace: telemetry::current_trace_context(),
                };
                realtime.broadcast(project, &message).await;
            }
        };
        tokio::spawn(publishing.instrument(span));
    }

    /// The bus channel of `project`'s events and presence. Only instances
    /// with sockets in the project subscribe to it, so a change costs one
    /// message per instance that has someone to tell, not one per instance.
    fn channel(&self, project: Uuid) -> String {
        format!("{}:project:{project}", self.0.settings.redis_prefix)
    }

    /// The channel every instance subscribes to: heartbeats and ended sessions.
    fn instances_channel(&self) -> String {
        format!("{}:instances", self.0.settings.redis_prefix)
    }

    async fn broadcast(&self, project: Uuid, message: &BusMessage) {
        self.send(self.channel(project), message).await;
    }

    async fn send(&self, channel: String, message: &BusMessage) {
        let Ok(payload) = serde_json::to_vec(message) else {
            return;
        };
        metrics::counter!("bus_messages_published_total", "kind" => message.kind()).increment(1);
        if let Err(error) = self.0.bus.send(channel, payload).await {
            metrics::counter!("bus_publish_failures_total").increment(1);
            tracing::debug!(%error, "bus publish failed; other instances catch up by reconciling");
        }
    }

    /// Offers events (all of one project) to that project's local stream.
    async fn offer(&self, events: Vec<Event>) {
        let Some(project) = project_of(&events) else {
            return;
        };
        if let Some(last) = events.last() {
            // Reads here must now include this seq, even from a replica.
            self.0.app.saw_seq(project, last.seq);
        }
        let Some(stream) = self.existing_stream(project) else {
            return;
        };
        let mut state = stream.state.lock().await;
        let gap = state.offer(events);
        if gap {
            if state.gap_is_urgent() {
                if let Err(error) = state.fill(&stream, self.db(), None).await {
                    tracing::warn!(%error, "gap fill failed");
                }
            } else if state.schedule_fill() {
                let realtime = self.clone();
                let stream = stream.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(stream::GAP_GRACE).await;
                    let mut state = stream.state.lock().await;
                    if let Err(error) = state.fill(&stream, realtime.db(), None).await {
                        tracing::warn!(%error, "gap fill failed");
                    }
                });
            }
        }
    }

    /// Subscribes to `project`'s bus channel unless this instance already
    /// does. A join calls it before reading where the project stands, so
    /// whatever is committed after that read arrives on the bus.
    async fn ensure_subscribed(&self, project: Uuid) {
        if !self.0.bus.is_enabled() {
            return;
        }
        let mut subscribed = self.0.subscribed.lock().await;
        if subscribed.contains(&project) {
            return;
        }
        subscribed.insert(project);
        // Remembered even when it fails: the bus re-issues it when Redis is
        // back, and reconciliation covers the meantime.
        if let Err(error) = self
            .0
            .bus
            .listen(self.channel(project), self.0.inbox.clone())
            .await
        {
            tracing::warn!(%error, %project, "project subscription deferred until Redis answers");
            return;
        }
        drop(subscribed);
        let wanted = BusMessage::PresenceWanted {
            instance: self.0.instance,
            project,
        };
        self.broadcast(project, &wanted).await;
    }

    /// Ends the subscription to `project`'s channel once its stream is gone
    /// (a join that made a new one since keeps it).
    async fn release_subscription(&self, project: Uuid) {
        let mut subscribed = self.0.subscribed.lock().await;
        if self.existing_stream(project).is_some() || !subscribed.remove(&project) {
            return;
        }
        if let Err(error) = self.0.bus.unlisten(&self.channel(project)).await {
            tracing::debug!(%error, %project, "unsubscribe failed; the next reconnection drops it");
        }
    }

    fn existing_stream(&self, project: Uuid) -> Option<Arc<ProjectStream>> {
        self.0.streams.lock().ok()?.get(&project).cloned()
    }

    fn stream(&self, project: Uuid) -> Arc<ProjectStream> {
        let mut streams = self
            .0
            .streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stream = streams
            .entry(project)
            .or_insert_with(|| Arc::new(ProjectStream::new(project)))
            .clone();
        metrics::gauge!("realtime_projects").set(streams.len() as f64);
        stream
    }

    /// Makes every socket of `user` leave `project`, on every instance (a
    /// removed member's subscription ends at once): here, and on the other
    /// instances with sockets in the project through its bus channel.
    pub async fn revoke(&self, project: Uuid, user: Uuid) {
        self.revoke_locally(project, user).await;
        if self.0.bus.is_enabled() {
            let message = BusMessage::Revoked {
                instance: self.0.instance,
                project,
                user,
            };
            self.broadcast(project, &message).await;
        }
    }

    /// Closes the connections of ended sessions: here, and on every other
    /// instance through the instances channel. Should the bus be down, a
    /// connection elsewhere lives on until it drops, and its next handshake
    /// is refused.
    pub async fn end_sessions(&self, token_hashes: Vec<Vec<u8>>) {
        let ended: HashSet<String> = token_hashes.iter().map(|hash| hex(hash)).collect();
        self.close_sessions_locally(&ended);
        if self.0.bus.is_enabled() {
            let message = BusMessage::SessionsEnded {
                instance: self.0.instance,
                token_hashes: ended.into_iter().collect(),
            };
            self.send(self.instances_channel(), &message).await;
        }
    }

    /// Tells every connection of `user`, here and on the other instances,
    /// that one of their jobs moved on (`job`, its status). Best effort:
    /// `GET /api/v1/jobs/{id}` has the truth, should a message be missed.
    pub async fn job_changed(&self, user: Uuid, job: protocol::JobStatus) {
        self.tell_job_locally(user, &job);
        if self.0.bus.is_enabled() {
            let message = BusMessage::JobChanged {
                instance: self.0.instance,
                user,
                job: Box::new(job),
            };
            self.send(self.instances_channel(), &message).await;
        }
    }

    fn tell_job_locally(&self, user: Uuid, job: &protocol::JobStatus) {
        let Some(io) = self.0.io.get() else { return };
        for socket in io.sockets() {
            let theirs = socket
                .extensions
                .get::<handlers::SessionUser>()
                .is_some_and(|session| session.id == user);
            if theirs {
                let _ = socket.emit("job", job);
            }
        }
    }

    fn close_sessions_locally(&self, ended: &HashSet<String>) {
        let Some(io) = self.0.io.get() else { return };
        let mut closed = 0;
        for socket in io.sockets() {
            let belongs = socket
                .extensions
                .get::<handlers::SessionUser>()
                .is_some_and(|user| ended.contains(&hex(&user.actor.token_hash)));
            if belongs && socket.disconnect().is_ok() {
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::info!(sockets = closed, "closed the connections of ended sessions");
        }
    }

    async fn revoke_locally(&self, project: Uuid, user: Uuid) {
        if let Some(stream) = self.existing_stream(project) {
            let revoked = stream.state.lock().await.unsubscribe_user(&stream, user);
            if revoked > 0 {
                tracing::debug!(%project, %user, sockets = revoked, "membership revoked");
            }
        }
        self.presence_changed(project, None).await;
    }

    /// Ends `socket`'s subscription to `project`.
    async fn unsubscribe(&self, project: Uuid, socket: &socketioxide::extract::SocketRef<Adapter>) {
        match self.existing_stream(project) {
            Some(stream) => stream.state.lock().await.unsubscribe(&stream, socket),
            None => socket.leave(stream::room(project)),
        }
    }

    /// Forgets a disconnected socket in every stream it was subscribed to.
    async fn forget(&self, projects: &[Uuid], socket: socketioxide::socket::Sid) {
        for project in projects {
            if let Some(stream) = self.existing_stream(*project) {
                stream.state.lock().await.forget(socket);
            }
        }
    }

    /// Recomputes a project's presence after a local change, shares the local
    /// part with other instances, and tells local sockets if it changed.
    async fn presence_changed(&self, project: Uuid, departing: Option<socketioxide::socket::Sid>) {
        let local = presence::local_users(self.io(), project, departing);
        self.share_presence(project, &local).await;
        self.announce_if_changed(project, &local).await;
    }

    /// Tells the other instances this instance's users in `project`.
    async fn share_presence(
        &self,
        project: Uuid,
        local: &std::collections::BTreeSet<PresenceUser>,
    ) {
        if self.0.bus.is_enabled() {
            let message = BusMessage::Presence {
                instance: self.0.instance,
                project,
                users: local.iter().cloned().collect(),
            };
            self.broadcast(project, &message).await;
        }
    }

    async fn announce_if_changed(
        &self,
        project: Uuid,
        local: &std::collections::BTreeSet<PresenceUser>,
    ) {
        let users = self.0.presence.union(project, local);
        if self.0.presence.changed(project, &users) {
            presence::announce(self.io(), project, &users).await;
        }
    }

    fn current_presence(&self, project: Uuid) -> std::collections::BTreeSet<PresenceUser> {
        let local = presence::local_users(self.io(), project, None);
        self.0.presence.union(project, &local)
    }

    /// Reads what the other instances publish on the project channels.
    async fn consume(self, mut messages: mpsc::Receiver<ChanItem>) {
        while let Some((_, payload)) = messages.recv().await {
            let message = serde_json::from_slice::<BusMessage>(&payload);
            if let Ok(message) = &message {
                metrics::counter!("bus_messages_received_total", "kind" => message.kind())
                    .increment(1);
            }
            match message {
                Ok(BusMessage::Events {
                    instance,
                    events,
                    trace,
                }) if instance != self.0.instance => {
                    // A recorded change carries its trace: only then is
                    // its delivery a span of that trace.
                    let span = if trace.is_empty() {
                        tracing::info_span!(
                            "realtime.deliver",
                            seq = events.last().map(|event| event.seq),
                            events = events.len()
                        )
                    } else {
                        tracing::info_span!(
                            target: telemetry::TRACE_ROOT,
                            "realtime.deliver",
                            otel.kind = "consumer",
                            seq = events.last().map(|event| event.seq),
                            events = events.len()
                        )
                    };
                    telemetry::continue_trace(&span, &trace);
                    self.offer(events).instrument(span).await;
                }
                Ok(BusMessage::Presence {
                    instance,
                    project,
                    users,
                }) if instance != self.0.instance => {
                    self.0.presence.remember_remote(project, instance, users);
                    let local = presence::local_users(self.io(), project, None);
                    self.announce_if_changed(project, &local).await;
                }
                Ok(BusMessage::Alive { instance }) if instance != self.0.instance => {
                    self.0.presence.heard_from(instance);
                }
                Ok(BusMessage::PresenceWanted { instance, project })
                    if instance != self.0.instance =>
                {
                    let local = presence::local_users(self.io(), project, None);
                    if !local.is_empty() {
                        self.share_presence(project, &local).await;
                    }
                }
                Ok(BusMessage::Revoked {
                    instance,
                    project,
                    user,
                }) if instance != self.0.instance => {
                    self.revoke_locally(project, user).await;
                }
                Ok(BusMessage::SessionsEnded {
                    instance,
                    token_hashes,
                }) if instance != self.0.instance => {
                    let ended: HashSet<String> = token_hashes.into_iter().collect();
                    self.close_sessions_locally(&ended);
                }
                Ok(BusMessage::JobChanged {
                    instance,
                    user,
                    job,
                }) if instance != self.0.instance => {
                    self.tell_job_locally(user, &job);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "unreadable bus message"),
            }
        }
    }

    /// Tracks the bus's health; when Redis comes back, catches up at once.
    async fn watch_bus(self) {
        let mut interval = tokio::time::interval(HEALTH_EVERY);
        loop {
            interval.tick().await;
            let (up, came_back) = self.0.bus.check().await;
            metrics::gauge!("realtime_fanout_up").set(f64::from(u8::from(up)));
            if came_back {
                tracing::info!("bus is back; catching up from the database");
                self.reconcile().await;
                self.refresh_presence().await;
            }
        }
    }

    async fn reconcile_forever(self) {
        loop {
            let pause = if self.0.bus.is_up() {
                RECONCILE_EVERY
            } else {
                RECONCILE_EVERY_DEGRADED
            };
            tokio::time::sleep(pause).await;
            self.reconcile().await;
        }
    }

    /// Compares every local stream with the project's latest seq in the
    /// database and delivers whatever is missing. This is what makes delivery
    /// independent of the bus: a lost message costs latency, never an event.
    async fn reconcile(&self) {
        let streams: Vec<Arc<ProjectStream>> = match self.0.streams.lock() {
            Ok(streams) => streams.values().cloned().collect(),
            Err(_) => return,
        };
        if streams.is_empty() {
            return;
        }
        let projects: Vec<Uuid> = streams.iter().map(|stream| stream.project).collect();
        let latest = match db::events::latest_seqs(self.db(), &projects).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "reconcile: database unavailable");
                return;
            }
        };
        for stream in streams {
            let Some(&last_seq) = latest.get(&stream.project) else {
                continue;
            };
            let mut state = stream.state.lock().await;
            if state
                .delivered
                .is_some_and(|delivered| delivered < last_seq)
            {
                metrics::counter!("realtime_reconcile_catch_ups_total").increment(1);
                if let Err(error) = state.fill(&stream, self.db(), Some(last_seq)).await {
                    tracing::warn!(%error, "reconcile fill failed");
                }
            }
        }
    }

    async fn sweep_forever(self) {
        let mut interval = tokio::time::interval(SWEEP_EVERY);
        loop {
            interval.tick().await;
            let streams: Vec<Arc<ProjectStream>> = match self.0.streams.lock() {
                Ok(streams) => streams.values().cloned().collect(),
                Err(_) => continue,
            };
            for stream in streams {
                let mut state = stream.state.lock().await;
                // A join subscribes under this lock, so none can slip in
                // between the check and the retirement.
                if state.has_subscribers() {
                    continue;
                }
                state.retired = true;
                if let Ok(mut streams) = self.0.streams.lock() {
                    streams.remove(&stream.project);
                    metrics::gauge!("realtime_projects").set(streams.len() as f64);
                }
                drop(state);
                self.release_subscription(stream.project).await;
            }
        }
    }

    async fn heartbeat_forever(self) {
        let mut heartbeat = tokio::time::interval(presence::HEARTBEAT);
        let mut refresh = tokio::time::interval(presence::REFRESH);
        refresh.tick().await;
        loop {
            tokio::select! {
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = refresh.tick() => self.refresh_presence().await,
            }
        }
    }

    /// Says this instance is alive, and forgets the users of instances that
    /// stopped saying so.
    async fn heartbeat(&self) {
        if self.0.bus.is_enabled() {
            let alive = BusMessage::Alive {
                instance: self.0.instance,
            };
            self.send(self.instances_channel(), &alive).await;
        }
        for project in self.0.presence.forget_silent() {
            let local = presence::local_users(self.io(), project, None);
            self.announce_if_changed(project, &local).await;
        }
    }

    /// Republishes every local set (healing any update the bus lost).
    async fn refresh_presence(&self) {
        let projects: Vec<Uuid> = match self.0.streams.lock() {
            Ok(streams) => streams.keys().copied().collect(),
            Err(_) => return,
        };
        for project in projects {
            let local = presence::local_users(self.io(), project, None);
            if !local.is_empty() {
                self.share_presence(project, &local).await;
            }
        }
    }
}

impl BusMessage {
    /// The label of its counters in `/metrics`.
    fn kind(&self) -> &'static str {
        match self {
            BusMessage::Events { .. } => "events",
            BusMessage::Presence { .. } => "presence",
            BusMessage::PresenceWanted { .. } => "presence_wanted",
            BusMessage::Revoked { .. } => "revoked",
            BusMessage::SessionsEnded { .. } => "sessions_ended",
            BusMessage::JobChanged { .. } => "job_changed",
            BusMessage::Alive { .. } => "alive",
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An event payload parsed as the handlers parse it (the REST body rules:
/// 400 for what is malformed, 422 for what is invalid); for the fuzz targets.
pub fn parse_payload<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, crate::error::Error> {
    handlers::payload(Ok(value))
}

/// The project a batch of events belongs to (a batch is always one project's).
fn project_of(events: &[Event]) -> Option<Uuid> {
    events
        .first()
        .and_then(|event| Uuid::parse_str(&event.project_id).ok())
}

impl CommitListener for Realtime {
    fn committed(&self, events: Vec<Event>) {
        self.publish(events);
    }

    fn member_removed(&self, project: Uuid, user: Uuid) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.revoke(project, user))
    }

    fn sessions_ended(&self, token_hashes: Vec<Vec<u8>>) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.end_sessions(token_hashes))
    }

    fn job_changed(
        &self,
        user: Uuid,
        job: protocol::JobStatus,
    ) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(Realtime::job_changed(self, user, job))
    }
}

/// Cross-instance fan-out through Redis, as `redis` in `/readyz`. Without it
/// each instance still serves its own sockets and catches up from the
/// database, so it never makes the instance unready.
pub struct FanoutProbe(pub Realtime);

impl Probe for FanoutProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn required(&self) -> bool {
        false
    }

    fn breaker(&self) -> Option<&crate::breaker::Breaker> {
        self.0.bus().breaker()
    }

    fn check(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + '_>> {
        Box::pin(async move {
            let (up, _) = self.0.bus().check().await;
            if up {
                Verdict::Ok
            } else {
                Verdict::Unavailable
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::http::{HeaderValue, Request, Uri};
    use bytes::Bytes;

    use super::*;

    /// Stands for hyper's read buffer: records when the last slice of it is gone.
    struct ReadBuffer {
        bytes: Vec<u8>,
        released: Arc<AtomicBool>,
    }

    impl AsRef<[u8]> for ReadBuffer {
        fn as_ref(&self) -> &[u8] {
            &self.bytes
        }
    }

    impl Drop for ReadBuffer {
        fn drop(&mut self) {
            self.released.store(true, Ordering::SeqCst);
        }
    }

    /// A request whose URI and header values are slices of one shared buffer,
    /// as hyper parses them.
    fn parsed_request(path: &str, released: &Arc<AtomicBool>) -> Request<()> {
        let head = format!("{path}websocketBearer secret");
        let buffer = Bytes::from_owner(ReadBuffer {
            bytes: head.into_bytes(),
            released: released.clone(),
        });
        let uri_end = path.len();
        let upgrade_end = uri_end + "websocket".len();
        let uri = Uri::from_maybe_shared(buffer.slice(..uri_end)).unwrap();
        let mut request = Request::new(());
        request.extensions_mut().insert(OriginalUri(uri.clone()));
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            "upgrade",
            HeaderValue::from_maybe_shared(buffer.slice(uri_end..upgrade_end)).unwrap(),
        );
        let mut authorization =
            HeaderValue::from_maybe_shared(buffer.slice(upgrade_end..)).unwrap();
        authorization.set_sensitive(true);
        headers.insert("authorization", authorization);
        request
    }

    #[test]
    fn a_socket_io_request_head_no_longer_holds_the_read_buffer() {
        let released = Arc::new(AtomicBool::new(false));
        let request = detach_request_head(parsed_request(
            "/socket.io/?EIO=4&transport=websocket",
            &released,
        ));
        assert!(
            released.load(Ordering::SeqCst),
            "the read buffer is still held"
        );
        assert_eq!(request.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(request.headers()["upgrade"], "websocket");
        assert_eq!(request.headers()["authorization"], "Bearer secret");
        assert!(request.headers()["authorization"].is_sensitive());
    }

    #[test]
    fn other_requests_pass_through_untouched() {
        let released = Arc::new(AtomicBool::new(false));
        let request = detach_request_head(parsed_request("/api/v1/projects", &released));
        assert!(!released.load(Ordering::SeqCst));
        assert_eq!(request.uri(), "/api/v1/projects");
    }
}
