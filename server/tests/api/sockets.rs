//! Socket.IO clients for tests: the official JavaScript `socket.io-client`,
//! driven through `tests/node/client.mjs` (one Node process, many clients).

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Notify;

type Inbox = Arc<Mutex<HashMap<String, VecDeque<Value>>>>;

pub struct Clients {
    _node: Child,
    stdin: ChildStdin,
    inbox: Inbox,
    arrived: Arc<Notify>,
    tags: AtomicU64,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Clients {
    pub async fn start() -> Clients {
        Self::start_with_env(&[]).await
    }

    /// Clients whose Node process sees `vars` too (e.g. NODE_EXTRA_CA_CERTS
    /// to trust a test certificate).
    pub async fn start_with_env(vars: &[(&str, &str)]) -> Clients {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
        assert!(
            std::path::Path::new(dir).join("node_modules/socket.io-client").exists(),
            "socket.io-client is not installed: run `npm ci` in server/tests/node (scripts/test.sh does)"
        );
        let mut node = Command::new("node")
            .arg("client.mjs")
            .current_dir(dir)
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = node.stdin.take().unwrap();
        let stdout = node.stdout.take().unwrap();
        let inbox: Inbox = Arc::default();
        let arrived = Arc::new(Notify::new());
        let (sink, notify) = (inbox.clone(), arrived.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let id = message["id"].as_str().unwrap_or_default().to_owned();
                sink.lock()
                    .unwrap()
                    .entry(id)
                    .or_default()
                    .push_back(message);
                notify.notify_waiters();
            }
        });
        Clients {
            _node: node,
            stdin,
            inbox,
            arrived,
            tags: AtomicU64::new(1),
        }
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Connects client `id`; Ok(transport name) or Err(connect_error message).
    pub async fn connect(
        &mut self,
        id: &str,
        base_url: &str,
        token: Option<&str>,
        transport: &str,
    ) -> Result<String, String> {
        self.connect_with_headers(id, base_url, token, transport, json!({}))
            .await
    }

    /// Connects client `id` sending `headers` (a JSON object) with every
    /// request of the session.
    pub async fn connect_with_headers(
        &mut self,
        id: &str,
        base_url: &str,
        token: Option<&str>,
        transport: &str,
        headers: Value,
    ) -> Result<String, String> {
        let transports = if transport == "polling" {
            json!(["polling"])
        } else {
            json!(["websocket"])
        };
        self.send(json!({"op": "connect", "id": id, "url": base_url, "token": token, "transports": transports, "headers": headers}))
            .await;
        let message = self
            .next_of(id, &["connect", "connect_error"], WAIT)
            .await
            .unwrap_or_else(|| panic!("{id}: neither connect nor connect_error"));
        if message["type"] == "connect" {
            Ok(message["transport"].as_str().unwrap_or_default().to_owned())
        } else {
            Err(message["message"].as_str().unwrap_or_default().to_owned())
        }
    }

    /// Emits `event` and waits for its acknowledgement.
    pub async fn emit(&mut self, id: &str, event: &str, data: Value) -> Value {
        let tag = self.tags.fetch_add(1, Ordering::Relaxed).to_string();
        self.send(json!({"op": "emit", "id": id, "event": event, "data": data, "tag": tag}))
            .await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let waiting = self.arrived.notified();
            if let Some(message) = self.take(id, |m| {
                (m["type"] == "ack" || m["type"] == "ack_timeout") && m["tag"] == tag.as_str()
            }) {
                assert_eq!(message["type"], "ack", "{id} {event}: no acknowledgement");
                return message["data"].clone();
            }
            if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                panic!("{id} {event}: no acknowledgement in time");
            }
        }
    }

    /// Joins a project; returns the acknowledgement.
    pub async fn join(&mut self, id: &str, project: &str, since: Option<i64>) -> Value {
        let mut data = json!({"project_id": project});
        if let Some(since) = since {
            data["since"] = json!(since);
        }
        self.emit(id, "join", data).await
    }

    /// Simulates a network drop under client `id`.
    pub async fn drop_transport(&mut self, id: &str) {
        self.send(json!({"op": "drop", "id": id})).await;
    }

    pub async fn close(&mut self, id: &str) {
        self.send(json!({"op": "close", "id": id})).await;
    }

    /// The next message of one of `types` for client `id`, removed from its inbox.
    pub async fn next_of(&self, id: &str, types: &[&str], wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let waiting = self.arrived.notified();
            if let Some(message) = self.take(id, |m| types.iter().any(|t| m["type"] == *t)) {
                return Some(message);
            }
            if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until client `id` has received `count` task events (or `wait`
    /// passes) and returns them all, in arrival order.
    pub async fn events(&self, id: &str, count: usize, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut events = Vec::new();
        while events.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_of(id, &["event"], left).await {
                Some(message) => events.push(message["data"].clone()),
                None => break,
            }
        }
        events
    }

    /// Every message of `kind` client `id` has received so far.
    pub fn drain(&self, id: &str, kind: &str) -> Vec<Value> {
        let mut inbox = self.inbox.lock().unwrap();
        let Some(queue) = inbox.get_mut(id) else {
            return Vec::new();
        };
        let (taken, kept): (Vec<Value>, Vec<Value>) =
            queue.drain(..).partition(|m| m["type"] == kind);
        queue.extend(kept);
        taken.into_iter().map(|m| m["data"].clone()).collect()
    }

    fn take(&self, id: &str, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        let mut inbox = self.inbox.lock().unwrap();
        let queue = inbox.get_mut(id)?;
        let position = queue.iter().position(matches)?;
        queue.remove(position)
    }
}

/// The seq numbers of a list of events.
pub fn seqs(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect()
}

/// Asserts that `events` are exactly seq `first..=last`, once each, in order,
/// with a short message when not.
#[track_caller]
pub fn assert_seqs(events: &[Value], first: i64, last: i64, who: &str) {
    let got = seqs(events);
    let expected: Vec<i64> = (first..=last).collect();
    if got != expected {
        let mismatch = got.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{who}: expected seq {first}..={last} ({} events), got {} events{}; first difference at index {:?}, around {:?}",
            expected.len(),
            got.len(),
            got.last().map(|last| format!(" ending at {last}")).unwrap_or_default(),
            mismatch,
            mismatch.map(|at| &got[at.saturating_sub(2)..(at + 3).min(got.len())]),
        );
    }
}

/// vendor/engineioxide.patch keeps a slot of every socket's send queue small
/// (see vendor/README.md); without it a slot is 184 bytes.
#[test]
fn a_slot_of_the_send_queue_takes_at_most_48_bytes() {
    let slot = std::mem::size_of::<engineioxide_core::PacketBuf>();
    assert!(slot <= 48, "a queued PacketBuf takes {slot} bytes");
}
