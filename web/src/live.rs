//! The board's live link: a small Socket.IO v5 client (Engine.IO v4 over
//! WebSocket only) that joins one project, applies its events in seq order,
//! and after any drop reconnects and re-joins with `since`, so the server
//! replays exactly what was missed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use protocol::{event_type, handshake_refusal, Event, Presence};
use serde::{Deserialize, Serialize};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MessageEvent, WebSocket};

use crate::session;
use crate::store::{LinkState, ProjectStore};

/// Reconnect delays grow to this ceiling.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the board needs to hear from the link besides events.
pub struct Hooks {
    /// The first successful join, or a re-join after the server asked for a
    /// resync: the board (re)loads tasks by REST.
    pub on_fresh_join: Box<dyn Fn()>,
    /// Every successful join: the link is live again.
    pub on_live: Box<dyn Fn()>,
}

pub struct LiveLink {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    store: ProjectStore,
    hooks: Hooks,
    socket: Option<WebSocket>,
    next_ack: u64,
    join_ack: Option<(u64, bool)>,
    /// Live events that arrived before the ack of a join without `since`.
    early: Vec<Event>,
    attempts: u32,
    closed: bool,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl LiveLink {
    pub fn connect(store: ProjectStore, hooks: Hooks) -> Self {
        let inner = Rc::new(RefCell::new(Inner {
            store,
            hooks,
            socket: None,
            next_ack: 1,
            join_ack: None,
            early: Vec::new(),
            attempts: 0,
            closed: false,
            handlers: Vec::new(),
        }));
        open(&inner);
        Self { inner }
    }

    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        if let Some(socket) = inner.socket.take() {
            let _ = socket.close();
        }
        inner.handlers.clear();
    }
}

fn socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!(
        "{scheme}://{}/socket.io/?EIO=4&transport=websocket",
        location.host().ok()?
    ))
}

fn open(link: &Rc<RefCell<Inner>>) {
    let Some(url) = socket_url() else { return };
    let Ok(socket) = WebSocket::new(&url) else {
        schedule_reconnect(link);
        return;
    };
    link.borrow().store.link.set(LinkState::Connecting);

    let weak = Rc::downgrade(link);
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(link) = weak.upgrade() else { return };
        let Some(text) = event.unchecked_into::<MessageEvent>().data().as_string() else {
            return;
        };
        on_packet(&link, &text);
    });
    let weak = Rc::downgrade(link);
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
        let Some(link) = weak.upgrade() else { return };
        dropped(&link);
    });
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut inner = link.borrow_mut();
    inner.handlers = vec![on_message, on_close];
    inner.socket = Some(socket);
}

fn dropped(link: &Rc<RefCell<Inner>>) {
    {
        let mut inner = link.borrow_mut();
        inner.socket = None;
        inner.join_ack = None;
        if inner.closed {
            return;
        }
        inner.store.link.set(LinkState::Offline);
        inner.store.presence.set(Vec::new());
    }
    schedule_reconnect(link);
}

/// The server refused the handshake for a reason of its own.
fn unavailable(link: &Rc<RefCell<Inner>>) {
    let socket = {
        let mut inner = link.borrow_mut();
        inner.join_ack = None;
        inner.store.link.set(LinkState::Unavailable);
        inner.store.presence.set(Vec::new());
        inner.socket.take()
    };
    if let Some(socket) = socket {
        socket.set_onclose(None);
        let _ = socket.close();
    }
    if !link.borrow().closed {
        schedule_reconnect(link);
    }
}

fn schedule_reconnect(link: &Rc<RefCell<Inner>>) {
    let attempts = {
        let mut inner = link.borrow_mut();
        inner.attempts += 1;
        inner.attempts
    };
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempts.min(5));
    let jitter = Duration::from_millis((js_sys::Math::random() * 250.0) as u64);
    let weak = Rc::downgrade(link);
    set_timeout(
        move || {
            if let Some(link) = weak.upgrade() {
                if !link.borrow().closed {
                    open(&link);
                }
            }
        },
        base.min(MAX_BACKOFF) + jitter,
    );
}

/// Drops the connection on purpose (a seq gap): the reconnect re-joins with
/// `since` and the server fills the gap.
fn restart(link: &Rc<RefCell<Inner>>) {
    let socket = link.borrow_mut().socket.take();
    if let Some(socket) = socket {
        socket.set_onclose(None);
        let _ = socket.close();
    }
    dropped(link);
}

fn send(link: &Rc<RefCell<Inner>>, packet: &str) {
    if let Some(socket) = &link.borrow().socket {
        let _ = socket.send_with_str(packet);
    }
}

fn on_packet(link: &Rc<RefCell<Inner>>, packet: &str) {
    match packet.as_bytes().first() {
        // Engine.IO open: connect to the default namespace. The handshake
        // request carried the session cookie; there is no token to send.
        Some(b'0') => send(link, "40"),
        // Engine.IO ping: answer at once or the server drops us.
        Some(b'2') => send(link, "3"),
        Some(b'4') => on_socket_io(link, &packet[1..]),
        _ => {}
    }
}

// The packets' bodies, read into types rather than a JSON tree: the app
// needs a handful of fields, and a generic JSON value would cost the first
// screen its parser, printer and indexing code.

/// `44{"message": …}`: the server refused the connection.
#[derive(Deserialize)]
struct ConnectRefusal {
    #[serde(default)]
    message: String,
}

/// The answer to `join`.
#[derive(Deserialize)]
struct JoinAnswer {
    ok: bool,
    #[serde(default)]
    seq: i64,
    error: Option<JoinError>,
}

#[derive(Deserialize)]
struct JoinError {
    #[serde(default)]
    code: String,
    message: Option<String>,
}

#[derive(Serialize)]
struct JoinRequest<'a> {
    project_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
}

fn on_socket_io(link: &Rc<RefCell<Inner>>, packet: &str) {
    match packet.as_bytes().first() {
        Some(b'0') => join(link),
        Some(b'4') => {
            let message = serde_json::from_str::<ConnectRefusal>(&packet[1..])
                .map(|refusal| refusal.message)
                .unwrap_or_default();
            if handshake_refusal::refuses_credentials(&message) {
                // The token is no longer valid: sign in again.
                link.borrow_mut().closed = true;
                session::sign_out_locally();
            } else {
                // The server could not admit us now (its database blipped,
                // it is full): keep the session, say so, retry with backoff.
                unavailable(link);
            }
        }
        Some(b'2') => {
            // `["event", {…}]` or `["presence", {…}]`; other messages are
            // not the board's.
            let body = &packet[1..];
            if body.starts_with(r#"["event","#) {
                if let Ok((_, event)) = serde_json::from_str::<(String, Event)>(body) {
                    on_event(link, event);
                }
            } else if body.starts_with(r#"["presence","#) {
                if let Ok((_, presence)) = serde_json::from_str::<(String, Presence)>(body) {
                    link.borrow().store.presence.set(presence.users);
                }
            }
        }
        Some(b'3') => {
            let digits = packet[1..].bytes().take_while(u8::is_ascii_digit).count();
            let Ok(id) = packet[1..1 + digits].parse::<u64>() else {
                return;
            };
            // Only joins are acknowledged to the board: `[{"ok": …}]`.
            if let Ok((answer,)) = serde_json::from_str::<(JoinAnswer,)>(&packet[1 + digits..]) {
                on_ack(link, id, answer);
            }
        }
        _ => {}
    }
}

fn join(link: &Rc<RefCell<Inner>>) {
    let packet = {
        let mut inner = link.borrow_mut();
        let id = inner.next_ack;
        inner.next_ack += 1;
        let since = inner.store.last_seq.get_value();
        inner.join_ack = Some((id, since.is_none()));
        let project_id = inner.store.id();
        let request = JoinRequest {
            project_id: &project_id,
            since,
        };
        let body = serde_json::to_string(&("join", request)).unwrap_or_default();
        format!("42{id}{body}")
    };
    send(link, &packet);
}

fn on_ack(link: &Rc<RefCell<Inner>>, id: u64, answer: JoinAnswer) {
    let Some((expected, fresh)) = link.borrow().join_ack else {
        return;
    };
    if id != expected {
        return;
    }
    if answer.ok {
        let seq = answer.seq;
        let early = {
            let mut inner = link.borrow_mut();
            inner.attempts = 0;
            inner.join_ack = None;
            if fresh {
                inner.store.last_seq.set_value(Some(seq));
            }
            inner.store.link.set(LinkState::Live);
            std::mem::take(&mut inner.early)
        };
        for event in early {
            on_event(link, event);
        }
        if fresh {
            (link.borrow().hooks.on_fresh_join)();
        }
        (link.borrow().hooks.on_live)();
        return;
    }
    let error = answer.error.unwrap_or(JoinError {
        code: String::new(),
        message: None,
    });
    let code = error.code;
    let store = link.borrow().store;
    if code == "resync_required" || code == "invalid_since" {
        store.reset();
        join(link);
    } else {
        link.borrow_mut().closed = true;
        store.link.set(LinkState::Refused);
        store.load.set(crate::store::LoadState::Failed(
            error
                .message
                .unwrap_or_else(|| "You cannot follow this project.".to_owned()),
        ));
    }
}

fn on_event(link: &Rc<RefCell<Inner>>, event: Event) {
    let (store, last) = {
        let mut inner = link.borrow_mut();
        if matches!(inner.join_ack, Some((_, true))) {
            // A fresh join's live events may overtake its ack.
            inner.early.push(event);
            return;
        }
        (inner.store, inner.store.last_seq.get_value())
    };
    let Some(last) = last else { return };
    if event.seq <= last {
        return;
    }
    if event.seq > last + 1 {
        restart(link);
        return;
    }
    store.last_seq.set_value(Some(event.seq));
    match event.kind.as_str() {
        event_type::TASK_DELETED => store.remove(event.task.id),
        event_type::TASK_CREATED | event_type::TASK_UPDATED => store.upsert(vec![event.task]),
        _ => {}
    }
}
