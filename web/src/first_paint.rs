//! The server's first paint (`server/src/http/first_paint.rs`): the page's
//! content, drawn into `index.html`'s frame before the app has loaded, so a
//! first visit shows the board without waiting for the wasm.
//!
//! The app draws the same page underneath it, unseen (`style.css` hides the
//! app while the frame is there, and the frame is `inert`), and takes the
//! frame away once its own page shows the same thing. The two are laid out
//! alike, so the hand-over moves nothing on the screen. A page that never
//! gets there (a slow or failed read) is handed over after a few seconds
//! anyway: the picture never outlives the app's own word.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// The longest the picture stays once the app runs.
const LONGEST_MS: i32 = 5_000;

fn frame() -> Option<web_sys::Element> {
    document()
        .query_selector("#shell.first-paint")
        .ok()
        .flatten()
}

/// Called at start: a plain frame (no first paint) goes at once, the app
/// draws it again in the same place; a first paint stays until
/// [`hand_over`], or [`LONGEST_MS`].
pub fn start() {
    let document = document();
    let Some(shell) = document.get_element_by_id("shell") else {
        return;
    };
    if !shell.class_list().contains("first-paint") {
        shell.remove();
        return;
    }
    let expire = Closure::once_into_js(hand_over);
    if let Some(window) = web_sys::window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            expire.unchecked_ref(),
            LONGEST_MS,
        );
    }
}

/// The app's page shows what the first paint showed: the picture goes just
/// before the next frame is painted, when the app's updates of this turn
/// (a form filled, rows drawn) are all in the page.
pub fn hand_over() {
    if frame().is_none() {
        return;
    }
    let remove = Closure::once_into_js(|| {
        if let Some(frame) = frame() {
            frame.remove();
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window.request_animation_frame(remove.unchecked_ref());
    }
}

/// Whether the page opened with the server's first paint on screen.
fn present() -> bool {
    frame().is_some()
}

/// `children`, drawn a task after the rest of the app when the first paint
/// is on screen: the app's frame and its page are then two shorter tasks
/// rather than one long one (a slow phone's page would not answer input in
/// the meantime), and nobody sees the difference, since the app is drawn
/// unseen under the picture. Without a first paint, drawn at once.
#[component]
pub fn Deferred(children: ChildrenFn) -> impl IntoView {
    let ready = RwSignal::new(!present());
    if !ready.get_untracked() {
        set_timeout(move || ready.set(true), std::time::Duration::ZERO);
    }
    move || ready.get().then(|| children())
}
