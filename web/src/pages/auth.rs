//! Sign up, sign in, sign out.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use protocol::{AuthResponse, LoginRequest, RegisterRequest};

use crate::api;
use crate::session::use_session;

pub fn sign_out() {
    let session = use_session();
    spawn_local(async move {
        // Forget the token locally whatever the server says: signing out
        // must work offline too.
        let _ = api::post_empty("/api/v1/auth/logout").await;
        session.signed_out();
    });
}

#[component]
pub fn SignIn() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let request = LoginRequest {
                email: email.get_untracked(),
                password: password.get_untracked(),
            };
            match api::post::<AuthResponse>("/api/v1/auth/login", &request).await {
                Ok(answer) => {
                    session.signed_in(answer);
                    navigate("/projects", Default::default());
                }
                Err(failure) => error.set(Some(failure.message)),
            }
            busy.set(false);
        });
    };
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

#[component]
pub fn SignUp() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let request = RegisterRequest {
                email: email.get_untracked(),
                name: name.get_untracked(),
                password: password.get_untracked(),
            };
            match api::post::<AuthResponse>("/api/v1/auth/register", &request).await {
                Ok(answer) => {
                    session.signed_in(answer);
                    navigate("/projects", Default::default());
                }
                Err(failure) => error.set(Some(failure.message)),
            }
            busy.set(false);
        });
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
