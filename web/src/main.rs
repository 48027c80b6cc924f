//! Task Master in the browser: client-side rendered Leptos, talking to the
//! server's REST API and following each open project live over Socket.IO.

mod api;
mod first_paint;
mod live;
mod markdown;
mod notices;
mod offline;
mod pages;
mod session;
mod store;
mod virtual_list;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes, A};
use leptos_router::{path, Lazy};

use notices::{NoticeList, Notices};
use session::{use_session, Session};

fn main() {
    // `index.html` drew the app's frame (or the server the whole first
    // screen) so the page is not blank while the wasm loads.
    first_paint::start();
    // A panic aborts at once (the build's `immediate-abort` strategy keeps
    // the panic machinery out of the wasm); `index.html` turns the trap into
    // a notice with a reload.
    //
    // The app is drawn in a task of its own, not in the one that started
    // the module: together they would hold a slow phone's page for one long
    // task (the browser compiles each function on its first call).
    set_timeout(
        || leptos::mount::mount_to_body(App),
        std::time::Duration::ZERO,
    );
}

#[component]
fn App() -> impl IntoView {
    let session = Session::provide();
    Notices::provide();
    view! {
        <Router>
            <header class="topbar">
                <A href="/projects" attr:class="brand">"Task Master"</A>
                <Show when=move || session.user.with(Option::is_some)>
                    <span class="who">{move || session.user.get().map(|user| user.name)}</span>
                    <button class="link" on:click=move |_| pages::auth::sign_out()>"Sign out"</button>
                </Show>
            </header>
            <NoticeList/>
            <main>
                <first_paint::Deferred>
                <Routes fallback=|| view! { <p class="empty">"There is nothing at this address."</p> }>
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/signin") view=pages::auth::SignIn/>
                    <Route path=path!("/signup") view={Lazy::<pages::auth::SignUpRoute>::new()}/>
                    <Route path=path!("/projects") view={Lazy::<pages::projects::ProjectsRoute>::new()}/>
                    <ParentRoute path=path!("/projects/:pid") view=|| view! { <SignedIn><pages::board::ProjectShell/></SignedIn> }>
                        <Route path=path!("") view=pages::board::Board/>
                        <Route path=path!("tasks/:id") view={Lazy::<pages::task::TaskRoute>::new()}/>
                        <Route path=path!("members") view={Lazy::<pages::members::MembersRoute>::new()}/>
                        <Route path=path!("graph") view={Lazy::<pages::graph::GraphRoute>::new()}/>
                    </ParentRoute>
                </Routes>
                </first_paint::Deferred>
            </main>
        </Router>
    }
}

#[component]
fn Home() -> impl IntoView {
    let session = use_session();
    move || {
        if session.user.with(Option::is_some) {
            view! { <Redirect path="/projects"/> }.into_any()
        } else {
            view! { <Redirect path="/signin"/> }.into_any()
        }
    }
}

/// Shows its children to a signed-in user and the sign-in page to anyone else.
#[component]
fn SignedIn(children: ChildrenFn) -> impl IntoView {
    let session = use_session();
    move || {
        if session.user.with(Option::is_some) {
            children().into_any()
        } else {
            view! { <pages::auth::SignIn/> }.into_any()
        }
    }
}
