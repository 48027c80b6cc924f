//! A minimal Socket.IO v5 client over WebSocket (Engine.IO v4), lean enough to
//! run tens of thousands in one process: one task and a few kilobytes each.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::COOKIE;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::report::{Counters, Latencies};
use crate::setup::{now_micros, World};
use crate::Args;

/// What one client saw.
pub struct ClientOutcome {
    pub project: String,
    /// The seq its join was acknowledged at.
    pub joined_at: i64,
    /// Events received in order (seq = previous + 1).
    pub in_order: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn spawn_all(
    args: &Args,
    world: &Arc<World>,
    counters: &Arc<Counters>,
    latencies: &Arc<Latencies>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<Option<ClientOutcome>>> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.clients.max(1));
    let pause = Duration::from_secs_f64(1.0 / args.connect_rate.max(1) as f64);
    let mut handles = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let world = world.clone();
        let (counters, latencies, stop, ready) = (
            counters.clone(),
            latencies.clone(),
            stop.clone(),
            ready_tx.clone(),
        );
        handles.push(tokio::spawn(async move {
            let outcome = run(n, &world, &counters, &latencies, stop, &ready).await;
            if outcome.is_none() {
                let _ = ready.send(()).await;
            }
            outcome
        }));
        tokio::time::sleep(pause).await;
    }
    drop(ready_tx);
    // Wait until every client has joined or failed.
    for _ in 0..args.clients {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    handles
}

#[derive(Deserialize)]
struct LiteEvent {
    seq: i64,
    task: LiteTask,
}

#[derive(Deserialize)]
struct LiteTask {
    title: String,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One client's view of its project's event stream, across reconnections.
struct Tracker {
    n: usize,
    outcome: ClientOutcome,
    last: i64,
}

impl Tracker {
    /// Counts a Socket.IO `event` packet (text after the `42` prefix).
    fn on_event(&mut self, payload: &str, counters: &Counters, latencies: &Latencies) {
        let Ok((name, data)) = serde_json::from_str::<(String, Box<RawValue>)>(payload) else {
            return;
        };
        if name != "event" {
            return;
        }
        let Ok(event) = serde_json::from_str::<LiteEvent>(data.get()) else {
            return;
        };
        counters.received_one();
        if event.seq == self.last + 1 {
            self.outcome.in_order += 1;
            self.last = event.seq;
        } else if event.seq <= self.last {
            self.outcome.duplicates += 1;
        } else {
            self.outcome.out_of_order += 1;
            self.last = event.seq;
        }
        if let Some(sent) = event
            .task
            .title
            .strip_prefix("lg ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|micros| micros.parse::<u64>().ok())
        {
            latencies.record(self.n, now_micros().saturating_sub(sent));
        }
    }
}

/// A connection, the seq its join was acknowledged at, and how long it may
/// stay silent before it counts as dead.
struct Joined {
    socket: Socket,
    seq: i64,
    heartbeat: Duration,
}

/// Opens the WebSocket, connects to the namespace with the user's token and
/// joins the project — with `since` when catching up after a drop, counting
/// the replayed events that arrive before the acknowledgement.
async fn connect_and_join(
    world: &World,
    since: Option<i64>,
    tracker: &mut Tracker,
    counters: &Counters,
    latencies: &Latencies,
) -> Result<Joined, String> {
    let n = tracker.n;
    let base = &world.urls[n % world.urls.len()];
    let token = &world.user_tokens[n % world.user_tokens.len()];
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    // Each client is its own browser to a sticky edge: a route cookie of its own
    // (instances ignore it).
    request.headers_mut().insert(
        COOKIE,
        HeaderValue::from_str(&format!("tm_route=lg{n}")).map_err(|e| e.to_string())?,
    );
    // Small buffers: the defaults (128 KiB read) would cost gigabytes at 20,000 clients.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        world.trust.websocket_connector(),
    )
    .await
    .map_err(|error| format!("websocket: {error}"))?;
    // Engine.IO open packet, then connect to namespace "/" with our token.
    let open = next_text(&mut socket)
        .await
        .filter(|open| open.starts_with('0'))
        .ok_or("no Engine.IO open packet")?;
    let heartbeat = heartbeat_of(&open[1..]);
    let auth = serde_json::json!({"token": token}).to_string();
    send(&mut socket, format!("40{auth}")).await?;
    loop {
        let reply = next_text(&mut socket)
            .await
            .ok_or("closed before namespace connect")?;
        if reply == "2" {
            // The server may ping before it answers the connect.
            send(&mut socket, "3".into()).await?;
        } else if reply.starts_with("40") {
            break;
        } else {
            return Err(format!("namespace connect refused: {reply}"));
        }
    }
    let join = match since {
        None => serde_json::json!(["join", {"project_id": tracker.outcome.project}]),
        Some(since) => {
            serde_json::json!(["join", {"project_id": tracker.outcome.project, "since": since}])
        }
    };
    send(&mut socket, format!("421{join}")).await?;
    loop {
        let reply = next_text(&mut socket)
            .await
            .ok_or("closed before join ack")?;
        if reply == "2" {
            send(&mut socket, "3".into()).await?;
        } else if let Some(event) = reply.strip_prefix("42") {
            tracker.on_event(event, counters, latencies);
        } else if let Some(ack) = reply.strip_prefix("431") {
            let ack: serde_json::Value = serde_json::from_str(ack).map_err(|e| e.to_string())?;
            let seq = ack[0]["seq"]
                .as_i64()
                .ok_or_else(|| format!("join refused: {ack}"))?;
            return Ok(Joined {
                socket,
                seq,
                heartbeat,
            });
        }
    }
}

/// How long a connection may go without a ping from the server before the
/// client takes it for dead: ping interval plus ping timeout, from the open
/// packet, as socket.io-client does. A server that stops (SIGSTOP, a hung
/// host) sends nothing and closes nothing; without this the client would
/// wait for it forever instead of reconnecting elsewhere.
fn heartbeat_of(open: &str) -> Duration {
    let open: serde_json::Value = serde_json::from_str(open).unwrap_or_default();
    let interval = open["pingInterval"].as_u64().unwrap_or(25_000);
    let timeout = open["pingTimeout"].as_u64().unwrap_or(20_000);
    Duration::from_millis(interval + timeout)
}

async fn send(socket: &mut Socket, text: String) -> Result<(), String> {
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| e.to_string())
}

/// Pause before reconnection attempt `attempt` (1, 2, …): exponential from
/// 50 ms to 2 s, with jitter so thousands of dropped clients do not return
/// in one wave.
fn backoff(n: usize, attempt: u32) -> Duration {
    let ceiling = (50u64 << attempt.min(6)).min(2_000);
    let jitter = (n as u64)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(attempt as u64 * 40_503)
        % 1000;
    Duration::from_millis(ceiling / 2 + ceiling * jitter / 2000)
}

/// How long a dropped client keeps trying before it counts as gone.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(60);

async fn run(
    n: usize,
    world: &World,
    counters: &Counters,
    latencies: &Latencies,
    mut stop: watch::Receiver<bool>,
    ready: &tokio::sync::mpsc::Sender<()>,
) -> Option<ClientOutcome> {
    let project = world.projects[n % world.projects.len()].clone();
    let mut tracker = Tracker {
        n,
        outcome: ClientOutcome {
            project,
            joined_at: 0,
            in_order: 0,
            duplicates: 0,
            out_of_order: 0,
        },
        last: 0,
    };
    let first = tokio::time::timeout(
        CONNECT_TIMEOUT,
        connect_and_join(world, None, &mut tracker, counters, latencies),
    )
    .await;
    let (mut socket, joined_at, mut heartbeat) = match first {
        Ok(Ok(joined)) => (joined.socket, joined.seq, joined.heartbeat),
        failure => {
            if counters.connect_failed() <= 5 {
                let reason = match failure {
                    Ok(Err(reason)) => reason,
                    _ => "timed out".to_owned(),
                };
                eprintln!("client {n}: {reason}");
            }
            return None;
        }
    };
    tracker.outcome.joined_at = joined_at;
    tracker.last = joined_at;
    counters.connect_ok();
    let _ = ready.send(()).await;

    'connected: loop {
        let message = tokio::select! {
            message = tokio::time::timeout(heartbeat, socket.next()) => {
                // Silent past the heartbeat: dead, as if it had closed.
                message.unwrap_or(None)
            }
            _ = stop.changed() => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                counters.dropped();
                if !world.reconnect || *stop.borrow() {
                    return Some(tracker.outcome);
                }
                let dropped_at = std::time::Instant::now();
                let mut attempt = 0;
                while dropped_at.elapsed() < RECONNECT_PATIENCE {
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(n, attempt)) => {}
                        _ = stop.changed() => return Some(tracker.outcome),
                    }
                    let since = tracker.last;
                    let again = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        connect_and_join(world, Some(since), &mut tracker, counters, latencies),
                    )
                    .await;
                    if let Ok(Ok(joined)) = again {
                        socket = joined.socket;
                        heartbeat = joined.heartbeat;
                        counters.reconnected();
                        latencies.record_catch_up(dropped_at.elapsed());
                        continue 'connected;
                    }
                }
                counters.gave_up();
                return Some(tracker.outcome);
            }
            Some(Ok(_)) => continue,
        };
        let text = text.as_str();
        if text == "2" {
            // A failed send shows as a broken connection on the next read.
            let _ = socket.send(Message::text("3")).await;
            continue;
        }
        if let Some(payload) = text.strip_prefix("42") {
            tracker.on_event(payload, counters, latencies);
        }
    }
    let _ = socket.close(None).await;
    Some(tracker.outcome)
}

async fn next_text<S>(socket: &mut S) -> Option<String>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return Some(text.as_str().to_owned()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_is_the_servers_ping_interval_plus_timeout() {
        let open = r#"{"sid":"x","upgrades":[],"pingInterval":10000,"pingTimeout":5000,"maxPayload":1000}"#;
        assert_eq!(heartbeat_of(open), Duration::from_millis(15_000));
        assert_eq!(heartbeat_of("not json"), Duration::from_millis(45_000));
    }
}
