//! A list that renders only the rows in view (plus a margin), so a project
//! of 10,000 tasks keeps a few dozen rows in the DOM and scrolls smoothly.

use leptos::html::Div;
use leptos::prelude::*;

/// Rows rendered above and below the visible ones, unless a list asks for
/// fewer (several lists side by side share one DOM budget).
const OVERSCAN: usize = 8;

#[component]
pub fn VirtualList<R>(
    /// The ids to show, in order.
    #[prop(into)]
    ids: Signal<Vec<i64>>,
    /// Every row has this height in pixels (the CSS must agree).
    row_height: f64,
    /// Renders the row of one id.
    render: R,
    #[prop(optional, into)] class: String,
    /// Rows kept beyond each edge of the view.
    #[prop(default = OVERSCAN)]
    overscan: usize,
    /// The position of a row to keep in view (the keyboard's cursor): the
    /// list scrolls just enough when it changes.
    #[prop(optional, into)]
    keep_visible: Option<Signal<Option<usize>>>,
) -> impl IntoView
where
    R: Fn(i64) -> AnyView + Clone + Send + Sync + 'static,
{
    let viewport = NodeRef::<Div>::new();
    let scroll_top = RwSignal::new(0.0_f64);
    let viewport_height = RwSignal::new(800.0_f64);

    Effect::new(move |_| {
        if let Some(element) = viewport.get() {
            let height = f64::from(element.client_height());
            if height > 0.0 {
                viewport_height.set(height);
            }
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| {
        if let Some(element) = viewport.get_untracked() {
            viewport_height.set(f64::from(element.client_height()));
        }
    });
    on_cleanup(move || resize.remove());

    if let Some(keep_visible) = keep_visible {
        Effect::new(move |_| {
            let Some(index) = keep_visible.get() else {
                return;
            };
            let Some(element) = viewport.get_untracked() else {
                return;
            };
            let top = index as f64 * row_height;
            let height = f64::from(element.client_height());
            let scrolled = f64::from(element.scroll_top());
            if top < scrolled {
                element.set_scroll_top(top as i32);
            } else if top + row_height > scrolled + height {
                element.set_scroll_top((top + row_height - height).ceil() as i32);
            }
        });
    }

    let window = Memo::new(move |_| {
        let count = ids.with(Vec::len);
        let first = (scroll_top.get() / row_height).floor() as usize;
        let visible = (viewport_height.get() / row_height).ceil() as usize + 1;
        let start = first.saturating_sub(overscan).min(count);
        let end = (first + visible + overscan).min(count);
        (start, end)
    });
    let rows = move || {
        let (start, end) = window.get();
        ids.with(|ids| {
            ids[start..end]
                .iter()
                .enumerate()
                .map(|(offset, id)| (start + offset, *id))
                .collect::<Vec<_>>()
        })
    };

    view! {
        <div
            class=format!("virtual-list {class}")
            node_ref=viewport
            on:scroll=move |_| {
                if let Some(element) = viewport.get_untracked() {
                    scroll_top.set(f64::from(element.scroll_top()));
                }
            }
        >
            <div
                class="virtual-spacer"
                style:height=move || format!("{}px", ids.with(Vec::len) as f64 * row_height)
            >
                <For
                    each=rows
                    key=|(index, id)| (*index, *id)
                    children=move |(index, id)| {
                        let render = render.clone();
                        view! {
                            <div
                                class="virtual-row"
                                style:transform=format!("translateY({}px)", index as f64 * row_height)
                                style:height=format!("{row_height}px")
                            >
                                {render(id)}
                            </div>
                        }
                    }
                />
            </div>
        </div>
    }
}
