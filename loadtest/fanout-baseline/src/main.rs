//! `fanout-baseline`: the floor that Task Master's real-time delivery is
//! measured against.
//!
//! It serves exactly the part of the contract that `loadgen` uses — sign-up,
//! projects, members, `PATCH` of a task, the change log, the Socket.IO
//! handshake and `join` — from memory, and fans every change out with
//! socketioxide's own room broadcast (`io.to(room).emit`), which encodes the
//! packet once and queues it on every socket of the room. No database, no
//! bus, no ordering machinery: what is left is the cost of the HTTP request,
//! the JSON and the library's delivery. `loadtest/fanout-bench.sh` runs the
//! same load against this and against the server, one after the other, and
//! compares server CPU per delivery and memory per socket.
//!
//! The Socket.IO and HTTP settings are the server's defaults, and it runs on
//! the same allocator, so the comparison is of the work done, not of tuning.
//! Only for benchmarks: there are no passwords, roles or limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{patch, post};
use axum::{Json, Router};
use clap::Parser;
use protocol::{Event, EventPage, JoinRequest, Priority, Task, TaskStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, Data, SocketRef, State as IoState, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The server's Socket.IO defaults (see `server/src/config.rs` and
/// `server/src/realtime/mod.rs`).
const PING_INTERVAL: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_BUFFER_PACKETS: usize = 2_048;
const WS_READ_BUFFER_BYTES: usize = 1024;
const MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "fanout-baseline",
    about = "In-memory Socket.IO fan-out for benchmarks"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:0")]
    bind: String,
}

/// One project: its single task and its change log (seq N is `log[N - 1]`).
struct Project {
    task: Task,
    log: Vec<Event>,
}

#[derive(Clone, Default)]
struct World {
    /// Token → user id.
    tokens: Arc<Mutex<HashMap<String, String>>>,
    /// Each project behind its own async lock: a change is numbered and
    /// broadcast under it, so every socket sees the project's seqs in order.
    projects: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Project>>>>>,
    io: Arc<std::sync::OnceLock<SocketIo>>,
}

type Refusal = (StatusCode, Json<Value>);

fn refusal(status: StatusCode, code: &str, message: &str) -> Refusal {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl World {
    fn user_of(&self, headers: &HeaderMap) -> Result<String, Refusal> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        self.user_of_token(token)
            .ok_or_else(|| refusal(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"))
    }

    fn user_of_token(&self, token: &str) -> Option<String> {
        self.tokens.lock().ok()?.get(token).cloned()
    }

    fn project(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Project>>, Refusal> {
        self.projects
            .lock()
            .ok()
            .and_then(|projects| projects.get(id).cloned())
            .ok_or_else(|| refusal(StatusCode::NOT_FOUND, "not_found", "no such project"))
    }

    fn io(&self) -> &SocketIo {
        self.io.get().expect("io is set before serving")
    }
}

#[derive(Deserialize)]
struct Register {
    email: String,
    name: String,
}

async fn register(
    State(world): State<World>,
    Json(body): Json<Register>,
) -> (StatusCode, Json<Value>) {
    let (id, token) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    if let Ok(mut tokens) = world.tokens.lock() {
        tokens.insert(token.clone(), id.clone());
    }
    (
        StatusCode::CREATED,
        Json(json!({"token": token, "user": {"id": id, "email": body.email, "name": body.name}})),
    )
}

async fn create_project(
    State(world): State<World>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    world.user_of(&headers)?;
    let id = Uuid::new_v4().to_string();
    let at = now();
    let task = Task {
        id: 1,
        project_id: id.clone(),
        title: String::new(),
        description: String::new(),
        details: String::new(),
        test_strategy: String::new(),
        status: TaskStatus::Pending,
        priority: Priority::Medium,
        dependencies: Vec::new(),
        assignee_id: None,
        parent_id: None,
        version: 0,
        created_at: at.clone(),
        updated_at: at,
    };
    let project = Project {
        task,
        log: Vec::new(),
    };
    if let Ok(mut projects) = world.projects.lock() {
        projects.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(project)));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": body["name"]})),
    ))
}

#[derive(Deserialize)]
struct TitleChange {
    title: String,
}

/// Creating and updating the one task are the same change here: a new title,
/// a new version, the next seq, broadcast to the room.
async fn change_task(
    world: &World,
    headers: &HeaderMap,
    project_id: &str,
    title: String,
) -> Result<Json<Task>, Refusal> {
    let actor = world.user_of(headers)?;
    let project = world.project(project_id)?;
    let mut project = project.lock().await;
    let at = now();
    project.task.title = title;
    project.task.version += 1;
    project.task.updated_at = at.clone();
    let event = Event {
        project_id: project_id.to_owned(),
        seq: project.log.len() as i64 + 1,
        kind: if project.task.version == 1 {
            protocol::event_type::TASK_CREATED
        } else {
            protocol::event_type::TASK_UPDATED
        }
        .to_owned(),
        actor_id: actor,
        at,
        task: project.task.clone(),
    };
    // Queued on every socket of the room before the lock is released.
    if let Err(error) = world
        .io()
        .to(project_id.to_owned())
        .emit("event", &event)
        .await
    {
        eprintln!("broadcast: {error}");
    }
    project.log.push(event);
    Ok(Json(project.task.clone()))
}

async fn create_task(
    State(world): State<World>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<TitleChange>,
) -> Result<(StatusCode, Json<Task>), Refusal> {
    let task = change_task(&world, &headers, &project, body.title).await?;
    Ok((StatusCode::CREATED, task))
}

async fn update_task(
    State(world): State<World>,
    Path((project, _task)): Path<(String, i64)>,
    headers: HeaderMap,
    Json(body): Json<TitleChange>,
) -> Result<Json<Task>, Refusal> {
    change_task(&world, &headers, &project, body.title).await
}

async fn add_member(
    State(world): State<World>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    world.user_of(&headers)?;
    world.project(&project)?;
    Ok((StatusCode::CREATED, Json(json!({"role": "editor"}))))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    since: i64,
    limit: Option<usize>,
}

async fn list_events(
    State(world): State<World>,
    Path(project): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Json<EventPage>, Refusal> {
    world.user_of(&headers)?;
    let project = world.project(&project)?;
    let project = project.lock().await;
    let from = (query.since.max(0) as usize).min(project.log.len());
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(EventPage {
        items: project.log[from..].iter().take(limit).cloned().collect(),
        latest_seq: project.log.len() as i64,
    }))
}

#[derive(Deserialize)]
struct Handshake {
    token: String,
}

async fn authenticate(
    TryData(handshake): TryData<Handshake>,
    IoState(world): IoState<World>,
) -> Result<(), &'static str> {
    let token = handshake.map_err(|_| "missing credentials")?.token;
    world
        .user_of_token(&token)
        .map(|_| ())
        .ok_or("invalid or expired token")
}

async fn on_connect(socket: SocketRef) {
    socket.on("join", on_join);
}

/// Replays `since < seq ≤ S`, enters the room and acknowledges `{ok, seq: S}`
/// under the project's lock, as the server does.
async fn on_join(
    socket: SocketRef,
    Data(request): Data<JoinRequest>,
    ack: AckSender,
    IoState(world): IoState<World>,
) {
    let Ok(project) = world.project(&request.project_id) else {
        let _ = ack.send(
            &json!({"ok": false, "error": {"code": "not_found", "message": "no such project"}}),
        );
        return;
    };
    let project = project.lock().await;
    if let Some(since) = request.since {
        let from = (since.max(0) as usize).min(project.log.len());
        for event in &project.log[from..] {
            let _ = socket.emit("event", event);
        }
    }
    socket.join(request.project_id);
    let _ = ack.send(&json!({"ok": true, "seq": project.log.len()}));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let world = World::default();
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD_BYTES)
        .ws_max_message_size(MAX_PAYLOAD_BYTES as usize)
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_buffer_size(SEND_BUFFER_PACKETS)
        .with_state(world.clone())
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    let _ = world.io.set(io);

    let app = Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/projects", post(create_project))
        .route("/api/v1/projects/{project}/tasks", post(create_task))
        .route(
            "/api/v1/projects/{project}/tasks/{task}",
            patch(update_task),
        )
        .route("/api/v1/projects/{project}/members", post(add_member))
        .route(
            "/api/v1/projects/{project}/events",
            axum::routing::get(list_events),
        )
        .route("/readyz", axum::routing::get(|| async { "ready" }))
        .layer(layer)
        .with_state(world);

    let listener = TcpListener::bind(&args.bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
