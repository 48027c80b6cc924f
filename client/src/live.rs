//! A project's live events over Socket.IO v5 (Engine.IO v4, WebSocket
//! transport): connect with a token, `join` with `since`, and receive
//! `event`s in order. One task per connection owns the socket: it answers
//! the server's pings, hands events to a bounded queue and acknowledgements
//! to whoever waits for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::{Event, JoinRequest};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::trust::Trust;

/// Events waiting to be read; a reader this far behind loses the connection
/// (and re-joins with `since`), as a slow consumer does on the server.
const EVENT_QUEUE: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the handshake (`connect_error`), with its reason.
    #[error("connection refused: {0}")]
    Refused(String),
    /// A `join` refused, with the contract's code and message.
    #[error("{message} ({code})")]
    JoinRefused { code: String, message: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed")]
    Closed,
}

/// A successful `join`: the project's seq when the subscription started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinAck {
    pub seq: i64,
}

/// One live connection.
pub struct Live {
    outgoing: mpsc::Sender<String>,
    events: mpsc::Receiver<Value>,
    acks: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    next_ack: AtomicU64,
    timeout: Duration,
    task: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Live {
    /// Connects to the server at `base` (`http(s)://host`) with `token`;
    /// every wait is bounded by `timeout`.
    pub async fn connect(
        base: &str,
        token: &str,
        trust: &Trust,
        timeout: Duration,
    ) -> Result<Live, LiveError> {
        let url = websocket_url(base)?;
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            None,
            false,
            Some(trust.websocket_connector()),
        );
        let (mut socket, _) = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| LiveError::Timeout(timeout))?
            .map_err(|error| LiveError::Connect(error.to_string()))?;
        // Engine.IO's open packet, then the namespace connect with the token.
        let handshake = async {
            let mut opened = false;
            while let Some(frame) = socket.next().await {
                let text = match frame.map_err(|error| LiveError::Connect(error.to_string()))? {
                    Message::Text(text) => text.to_string(),
                    Message::Close(_) => return Err(LiveError::Closed),
                    _ => continue,
                };
                match text.as_bytes() {
                    [b'0', ..] if !opened => {
                        opened = true;
                        let connect = format!("40{}", json!({ "token": token }));
                        socket
                            .send(Message::text(connect))
                            .await
                            .map_err(|error| LiveError::Connect(error.to_string()))?;
                    }
                    [b'2', ..] => {
                        let _ = socket.send(Message::text("3")).await;
                    }
                    [b'4', b'0', ..] => return Ok(()),
                    [b'4', b'4', ..] => {
                        let reason = serde_json::from_str::<Value>(&text[2..])
                            .ok()
                            .and_then(|body| body["message"].as_str().map(str::to_owned))
                            .unwrap_or(text);
                        return Err(LiveError::Refused(reason));
                    }
                    _ => {}
                }
            }
            Err(LiveError::Closed)
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| LiveError::Timeout(timeout))??;

        let (outgoing, mut to_send) = mpsc::channel::<String>(64);
        let (deliver, events) = mpsc::channel(EVENT_QUEUE);
        let acks: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let pending = acks.clone();
        let pong = outgoing.clone();
        let task = tokio::spawn(async move {
            let (mut sink, mut stream) = socket.split();
            let writer = async {
                while let Some(text) = to_send.recv().await {
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
            };
            let reader = async {
                while let Some(Ok(frame)) = stream.next().await {
                    let Message::Text(text) = frame else { continue };
                    match text.as_bytes() {
                        [b'2', ..] => {
                            let _ = pong.send("3".to_owned()).await;
                        }
                        [b'4', b'2', ..] => {
                            if let Ok(Value::Array(parts)) = serde_json::from_str(&text[2..]) {
                                if parts.first().and_then(Value::as_str) == Some("event") {
                                    let payload = parts.into_iter().nth(1).unwrap_or_default();
                                    if deliver.try_send(payload).is_err() {
                                        // Too far behind: end, so the caller re-joins.
                                        return;
                                    }
                                }
                            }
                        }
                        [b'4', b'3', ..] => {
                            let rest = &text[2..];
                            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                            let id = rest[..digits].parse::<u64>().ok();
                            let waiter = id.and_then(|id| pending.lock().ok()?.remove(&id));
                            if let (Some(waiter), Ok(Value::Array(mut parts))) =
                                (waiter, serde_json::from_str::<Value>(&rest[digits..]))
                            {
                                let _ = waiter.send(parts.drain(..).next().unwrap_or_default());
                            }
                        }
                        [b'4', b'1', ..] | [b'1', ..] => return,
                        _ => {}
                    }
                }
            };
            tokio::select! {
                _ = writer => {}
                _ = reader => {}
            }
        });
        Ok(Live {
            outgoing,
            events,
            acks,
            next_ack: AtomicU64::new(1),
            timeout,
            task,
        })
    }

    /// Subscribes to `project`, replaying what came after `since` first.
    pub async fn join(&self, project: &str, since: Option<i64>) -> Result<JoinAck, LiveError> {
        let request = JoinRequest {
            project_id: project.to_owned(),
            since,
        };
        let ack = self.emit("join", json!(request)).await?;
        if ack["ok"] == true {
            return Ok(JoinAck {
                seq: ack["seq"].as_i64().unwrap_or_default(),
            });
        }
        Err(LiveError::JoinRefused {
            code: ack["error"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            message: ack["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Emits `event` and waits for its acknowledgement.
    pub async fn emit(&self, event: &str, data: Value) -> Result<Value, LiveError> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut acks) = self.acks.lock() {
            acks.insert(id, answer);
        }
        let packet = format!("42{id}{}", json!([event, data]));
        self.outgoing
            .send(packet)
            .await
            .map_err(|_| LiveError::Closed)?;
        let result = tokio::time::timeout(self.timeout, answered).await;
        if let Ok(mut acks) = self.acks.lock() {
            acks.remove(&id);
        }
        result
            .map_err(|_| LiveError::Timeout(self.timeout))?
            .map_err(|_| LiveError::Closed)
    }

    /// The next event as it arrived (of any type, known or not), or an
    /// error when none comes within `wait` or the connection ended.
    pub async fn next_raw(&mut self, wait: Duration) -> Result<Value, LiveError> {
        tokio::time::timeout(wait, self.events.recv())
            .await
            .map_err(|_| LiveError::Timeout(wait))?
            .ok_or(LiveError::Closed)
    }

    /// The next task event; events of types this client does not know are
    /// skipped, as the contract asks.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Event, LiveError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let raw = self.next_raw(left).await?;
            if let Ok(event) = serde_json::from_value::<Event>(raw) {
                return Ok(event);
            }
        }
    }
}

/// `http(s)://host[/prefix]` → `ws(s)://host[/prefix]/socket.io/?EIO=4&transport=websocket`.
fn websocket_url(base: &str) -> Result<String, LiveError> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(LiveError::Connect(format!(
            "{base} is not an http:// or https:// URL"
        )));
    };
    Ok(format!("{rest}/socket.io/?EIO=4&transport=websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(
            websocket_url("https://tasks.example.com/").unwrap(),
            "wss://tasks.example.com/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert!(websocket_url("ftp://x").is_err());
    }
}
