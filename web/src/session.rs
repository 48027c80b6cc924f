//! Who is signed in. The session itself lives in an `HttpOnly` cookie that
//! the server sets on sign-in: script on the page (ours or an injected one)
//! never sees the token, and the browser sends it with every request and
//! WebSocket handshake to our origin. What the app keeps is the user's name
//! (in `localStorage`, so a reload draws the header at once) and the CSRF
//! value the server put in a readable cookie beside the session, which every
//! write sends back in `X-CSRF-Token`.

use leptos::prelude::*;
use protocol::{AuthResponse, User};
use wasm_bindgen::JsCast;

const USER_KEY: &str = "taskmaster.user";
/// The CSRF cookie's names: with the `__Host-` prefix where the server marks
/// its cookies `Secure` (every deployment over HTTPS), without where it
/// serves plain HTTP on another address than loopback.
const CSRF_COOKIES: [&str; 2] = ["__Host-tm_csrf", "tm_csrf"];
/// Left behind by versions of the app that kept the bearer token here.
const LEGACY_TOKEN_KEY: &str = "taskmaster.token";

/// The origin's `localStorage`, `None` where the browser refuses it (a
/// private window's policy, say): what is kept there is a convenience.
pub fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The CSRF value of the current session, `None` when signed out (or the
/// session cookies expired).
pub fn csrf_token() -> Option<String> {
    let document: web_sys::HtmlDocument = web_sys::window()?.document()?.dyn_into().ok()?;
    let cookies = document.cookie().ok()?;
    cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| CSRF_COOKIES.contains(name) && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

fn stored_user() -> Option<User> {
    let text = local_storage()?.get_item(USER_KEY).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

/// The signed-in user, shared through context.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: RwSignal<Option<User>>,
}

impl Session {
    pub fn provide() -> Self {
        if let Some(storage) = local_storage() {
            let _ = storage.remove_item(LEGACY_TOKEN_KEY);
        }
        let session = Session {
            user: RwSignal::new(csrf_token().and(stored_user())),
        };
        provide_context(session);
        session
    }

    /// The server set the session cookies with its answer; the token in the
    /// body is for clients without cookies and is dropped here.
    pub fn signed_in(&self, answer: AuthResponse) {
        if let Some(storage) = local_storage() {
            let _ = storage.set_item(
                USER_KEY,
                &serde_json::to_string(&answer.user).unwrap_or_default(),
            );
        }
        self.user.set(Some(answer.user));
    }

    pub fn signed_out(&self) {
        sign_out_locally();
        self.user.set(None);
    }
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// Forgets the user (after sign-out, or when the server no longer accepts
/// the session); the server clears the cookies on sign-out, and an expired
/// session's cookies are worthless.
pub fn sign_out_locally() {
    if let Some(storage) = local_storage() {
        let _ = storage.remove_item(USER_KEY);
    }
    crate::offline::forget_everything();
    if let Some(session) = use_context::<Session>() {
        session.user.set(None);
    }
}
