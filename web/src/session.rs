//! Who is signed in: the bearer token and user, kept in `localStorage` so a
//! reload or a second tab stays signed in.

use leptos::prelude::*;
use protocol::{AuthResponse, User};

const TOKEN_KEY: &str = "taskmaster.token";
const USER_KEY: &str = "taskmaster.user";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten()
}

fn stored_user() -> Option<User> {
    let text = storage()?.get_item(USER_KEY).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

/// The signed-in user, shared through context.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: RwSignal<Option<User>>,
}

impl Session {
    pub fn provide() -> Self {
        let session = Session {
            user: RwSignal::new(token().and(stored_user())),
        };
        provide_context(session);
        session
    }

    pub fn signed_in(&self, answer: AuthResponse) {
        if let Some(storage) = storage() {
            let _ = storage.set_item(TOKEN_KEY, &answer.token);
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

/// Forgets the token (after sign-out, or when the server no longer accepts it).
pub fn sign_out_locally() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(TOKEN_KEY);
        let _ = storage.remove_item(USER_KEY);
    }
    if let Some(session) = use_context::<Session>() {
        session.user.set(None);
    }
}
