//! Task Master in the browser: client-side rendered Leptos, talking to the
//! server's REST API and following each open project live over Socket.IO.

mod api;
mod live;
mod markdown;
mod notices;
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
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show_crash_notice();
    }));
    leptos::mount::mount_to_body(App);
}

/// A panic stops the app for good (release builds abort): rather than leave
/// a page that no longer reacts, say so and offer a reload. Everything saved
/// is on the server; the reload rejoins with what was missed.
fn show_crash_notice() {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    let (Ok(notice), Some(body)) = (document.create_element("div"), document.body()) else {
        return;
    };
    notice.set_class_name("crash");
    notice.set_attribute("role", "alert").ok();
    notice.set_inner_html(
        "<p>Something went wrong and this page stopped working. \
         Your saved work is safe on the server.</p>\
         <button onclick=\"location.reload()\">Reload</button>",
    );
    let _ = body.append_child(&notice);
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
                <Routes fallback=|| view! { <p class="empty">"There is nothing at this address."</p> }>
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/signin") view=pages::auth::SignIn/>
                    <Route path=path!("/signup") view=pages::auth::SignUp/>
                    <Route path=path!("/projects") view=|| view! { <SignedIn><pages::projects::ProjectList/></SignedIn> }/>
                    <ParentRoute path=path!("/projects/:pid") view=|| view! { <SignedIn><pages::board::ProjectShell/></SignedIn> }>
                        <Route path=path!("") view=pages::board::Board/>
                        <Route path=path!("tasks/:id") view={Lazy::<pages::task::TaskRoute>::new()}/>
                        <Route path=path!("members") view={Lazy::<pages::members::MembersRoute>::new()}/>
                        <Route path=path!("graph") view={Lazy::<pages::graph::GraphRoute>::new()}/>
                    </ParentRoute>
                </Routes>
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
