//! One module per screen.

pub mod auth;
pub mod board;
pub mod graph;
pub mod members;
pub mod projects;
pub mod task;

use leptos::prelude::*;

/// A failure the user can act on: what went wrong and a retry.
#[component]
pub fn Failure(message: String, retry: Callback<()>) -> impl IntoView {
    view! {
        <div class="failure" role="alert">
            <p>{message}</p>
            <button on:click=move |_| retry.run(())>"Retry"</button>
        </div>
    }
}
