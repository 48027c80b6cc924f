//! Sign up, sign in, sign out.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use leptos_router::{lazy_route, LazyRoute, NavigateOptions};
use protocol::{AuthResponse, LoginRequest, RegisterRequest};
use serde::Serialize;
use std::sync::Arc;

use crate::api;
use crate::first_paint;
use crate::session::{use_session, Session};

pub fn sign_out() {
    let session = use_session();
    spawn_local(async move {
        // Forget the token locally whatever the server says: signing out
        // must work offline too.
        let _ = api::post_empty("/api/v1/auth/logout").await;
        session.signed_out();
    });
}

/// The router's `navigate`, shareable.
type Navigate = Arc<dyn Fn(&str, NavigateOptions) + Send + Sync>;

/// One sign-in or sign-up form's submission: on success the session is kept
/// and the projects open; on failure the server's reason is shown.
#[derive(Clone)]
struct Attempt {
    session: Session,
    navigate: Navigate,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
}

impl Attempt {
    fn new() -> Self {
        Self {
            session: use_session(),
            navigate: Arc::new(use_navigate()),
            error: RwSignal::new(None),
            busy: RwSignal::new(false),
        }
    }

    fn send(&self, path: &'static str, body: impl Serialize + 'static) {
        let this = self.clone();
        this.busy.set(true);
        spawn_local(async move {
            match api::post::<AuthResponse>(path, &body).await {
                Ok(answer) => {
                    this.session.signed_in(answer);
                    (this.navigate)("/projects", NavigateOptions::default());
                }
                Err(failure) => this.error.set(Some(failure.message)),
            }
            this.busy.set(false);
        });
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let attempt = Attempt::new();
    let (error, busy) = (attempt.error, attempt.busy);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        attempt.send(
            "/api/v1/auth/login",
            LoginRequest {
                email: email.get_untracked(),
                password: password.get_untracked(),
            },
        );
    };
    // Nothing to wait for: the first paint of this form goes as it shows.
    Effect::new(|_| first_paint::hand_over());
    view! {
        <form class="card auth" on:submit=submit>
            <h1>"Sign in"</h1>
            <label>"Email"<input type="email" name="email" required autocomplete="email"
                prop:value=email on:input=move |ev| email.set(event_target_value(&ev))/></label>
            <label>"Password"<input type="password" name="password" required autocomplete="current-password"
                prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/></label>
            {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <button type="submit" disabled=busy>"Sign in"</button>
            <p>"New here? " <A href="/signup">"Create an account"</A></p>
        </form>
    }
}

/// Signing up happens once per user: its page is a module of its own.
pub struct SignUpRoute;

#[lazy_route]
impl LazyRoute for SignUpRoute {
    fn data() -> Self {
        SignUpRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <SignUp/> }.into_any()
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let attempt = Attempt::new();
    let (error, busy) = (attempt.error, attempt.busy);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        attempt.send(
            "/api/v1/auth/register",
            RegisterRequest {
                email: email.get_untracked(),
                name: name.get_untracked(),
                password: password.get_untracked(),
            },
        );
    };
    view! {
        <form class="card auth" on:submit=submit>
            <h1>"Create an account"</h1>
            <label>"Name"<input name="name" required autocomplete="name"
                prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Email"<input type="email" name="email" required autocomplete="email"
                prop:value=email on:input=move |ev| email.set(event_target_value(&ev))/></label>
            <label>"Password (at least 8 characters)"<input type="password" name="password" required minlength="8"
                autocomplete="new-password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/></label>
            {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <button type="submit" disabled=busy>"Create account"</button>
            <p>"Have an account? " <A href="/signin">"Sign in"</A></p>
        </form>
    }
}
