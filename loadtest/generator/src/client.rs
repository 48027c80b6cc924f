//! A minimal Socket.IO v5 client over WebSocket (Engine.IO v4), lean enough to
//! run tens of thousands in one process: one task and a few kilobytes each.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

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

async fn run(
    n: usize,
    world: &World,
    counters: &Counters,
    latencies: &Latencies,
    mut stop: watch::Receiver<bool>,
    ready: &tokio::sync::mpsc::Sender<()>,
) -> Option<ClientOutcome> {
    let base = &world.urls[n % world.urls.len()];
    let token = &world.user_tokens[n % world.user_tokens.len()];
    let project = world.projects[n % world.projects.len()].clone();
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    );
    // Small buffers: the defaults (128 KiB read) would cost gigabytes at 20,000 clients.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);

    let handshake = async {
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
                .await
                .map_err(|error| format!("websocket: {error}"))?;
        // Engine.IO open packet, then connect to namespace "/" with our token.
        next_text(&mut socket)
            .await
            .filter(|open| open.starts_with('0'))
            .ok_or("no Engine.IO open packet")?;
        let auth = serde_json::json!({"token": token}).to_string();
        socket
            .send(Message::text(format!("40{auth}")))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let reply = next_text(&mut socket)
                .await
                .ok_or("closed before namespace connect")?;
            if reply == "2" {
                // The server may ping before it answers the connect.
                socket
                    .send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if reply.starts_with("40") {
                break;
            } else {
                return Err(format!("namespace connect refused: {reply}"));
            }
        }
        let join = serde_json::json!(["join", {"project_id": project}]).to_string();
        socket
            .send(Message::text(format!("421{join}")))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let reply = next_text(&mut socket)
                .await
                .ok_or("closed before join ack")?;
            if reply == "2" {
                socket
                    .send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if let Some(ack) = reply.strip_prefix("431") {
                let ack: serde_json::Value =
                    serde_json::from_str(ack).map_err(|e| e.to_string())?;
                let seq = ack[0]["seq"]
                    .as_i64()
                    .ok_or_else(|| format!("join refused: {ack}"))?;
                return Ok::<_, String>((socket, seq));
            }
        }
    };
    let (mut socket, joined_at) = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(connected)) => connected,
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
    counters.connect_ok();
    let _ = ready.send(()).await;

    let mut outcome = ClientOutcome {
        project,
        joined_at,
        in_order: 0,
        duplicates: 0,
        out_of_order: 0,
    };
    let mut last = joined_at;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Text(text))) = message else {
            match message {
                Some(Ok(_)) => continue,
                _ => {
                    counters.dropped();
                    break;
                }
            }
        };
        let text = text.as_str();
        if text == "2" {
            if socket.send(Message::text("3")).await.is_err() {
                counters.dropped();
                break;
            }
            continue;
        }
        let Some(payload) = text.strip_prefix("42") else {
            continue;
        };
        let Ok((name, data)) = serde_json::from_str::<(String, Box<RawValue>)>(payload) else {
            continue;
        };
        if name != "event" {
            continue;
        }
        let Ok(event) = serde_json::from_str::<LiteEvent>(data.get()) else {
            continue;
        };
        counters.received_one();
        if event.seq == last + 1 {
            outcome.in_order += 1;
            last = event.seq;
        } else if event.seq <= last {
            outcome.duplicates += 1;
        } else {
            outcome.out_of_order += 1;
            last = event.seq;
        }
        if let Some(sent) = event
            .task
            .title
            .strip_prefix("lg ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|micros| micros.parse::<u64>().ok())
        {
            latencies.record(n, now_micros().saturating_sub(sent));
        }
    }
    let _ = socket.close(None).await;
    Some(outcome)
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
