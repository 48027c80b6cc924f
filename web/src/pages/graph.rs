//! The project as a dependency graph: tasks in columns by dependency depth,
//! coloured by status, the critical path and what blocks what highlighted,
//! the next task marked; live like the board. Laid out by
//! `taskmaster_board::graph` on every change (under a millisecond at 1,000
//! tasks natively), drawn as SVG with only what the viewport shows in the
//! DOM.

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::{lazy_route, LazyRoute};
use taskmaster_board::graph::{Geometry, Graph, Item, Rect};

use crate::api;
use crate::store::{use_store, LoadState};

/// Space kept beyond each edge of the viewport, so a short scroll finds
/// nodes already drawn.
const MARGIN: f32 = 300.0;

pub struct GraphRoute;

#[lazy_route]
impl LazyRoute for GraphRoute {
    fn data() -> Self {
        GraphRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <DependencyGraph/> }.into_any()
    }
}

#[component]
fn DependencyGraph() -> impl IntoView {
    let store = use_store();
    let navigate = use_navigate();
    let open_task = Callback::new(move |href: String| navigate(&href, Default::default()));
    let viewport = NodeRef::<Div>::new();
    let view_rect = RwSignal::new(Rect {
        x: 0.0,
        y: 0.0,
        width: 1200.0,
        height: 800.0,
    });
    let layout_ms = RwSignal::new(0.0_f64);

    // The layout follows the tasks; the previous one seeds the next, so a
    // change moves as little as it can.
    let graph = Memo::new(move |previous: Option<&Graph>| {
        let started = now();
        let graph = store.tasks.with(|tasks| {
            let mut ids: Vec<&i64> = tasks.keys().collect();
            ids.sort_unstable();
            let items: Vec<Item<'_>> = ids
                .into_iter()
                .map(|id| {
                    let task = &tasks[id];
                    Item {
                        id: task.id,
                        status: task.status,
                        dependencies: &task.dependencies,
                    }
                })
                .collect();
            Graph::layout(&items, Geometry::default(), previous)
        });
        layout_ms.set(now() - started);
        graph
    });

    // The task to work on next, asked again whenever the plan changes.
    let next = RwSignal::new(None::<i64>);
    Effect::new(move |_| {
        graph.track();
        let project = store.id();
        spawn_local(async move {
            if let Ok(task) = api::next_task(&project).await {
                next.set(task.map(|task| task.id));
            }
        });
    });

    let measure = move || {
        if let Some(element) = viewport.get_untracked() {
            view_rect.set(Rect {
                x: element.scroll_left() as f32 - MARGIN,
                y: element.scroll_top() as f32 - MARGIN,
                width: element.client_width() as f32 + 2.0 * MARGIN,
                height: element.client_height() as f32 + 2.0 * MARGIN,
            });
        }
    };
    Effect::new(move |_| {
        if viewport.get().is_some() {
            measure();
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    let shown_nodes = Memo::new(move |_| graph.with(|graph| graph.visible_nodes(view_rect.get())));
    let shown_edges = Memo::new(move |_| graph.with(|graph| graph.visible_edges(view_rect.get())));
    let size = move || graph.with(|graph| (graph.width.max(1.0), graph.height.max(1.0)));
    let geometry = Geometry::default();

    view! {
        <div class="graph-head">
            <p class="muted" data-graph=move || if matches!(store.load.get(), LoadState::Ready) { "ready" } else { "loading" }>
                {move || graph.with(|graph| format!(
                    "{} tasks in {} columns · critical path {} tasks · {} blocked",
                    graph.nodes.len(),
                    graph.layer_count(),
                    graph.critical_path.len(),
                    graph.nodes.iter().filter(|node| node.blocked).count(),
                ))}
            </p>
            <ul class="legend" aria-label="Legend">
                <li class="legend-critical">"Critical path"</li>
                <li class="legend-blocked">"Blocked"</li>
                <li class="legend-next">"Next task"</li>
            </ul>
        </div>
        <div class="graph" node_ref=viewport on:scroll=move |_| measure()
            data-layout-ms=move || format!("{:.2}", layout_ms.get())
            data-drawn=move || shown_nodes.with(Vec::len)>
            <svg width=move || size().0 height=move || size().1 role="group" aria-label="Dependency graph">
                <g class="edges">
                    <For each=move || shown_edges.get() key=|at| *at let:at>
                        {move || graph.with(|graph| graph.edges.get(at).map(|edge| {
                            let (x1, y1) = graph.out_port(edge.from);
                            let (x2, y2) = graph.in_port(edge.to);
                            let bend = (x2 - x1) / 2.0;
                            let class = if edge.critical { "edge critical" } else if edge.blocking { "edge blocking" } else { "edge" };
                            view! {
                                <path class=class d=format!("M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}", x1 + bend, x2 - bend)/>
                            }
                        }))}
                    </For>
                </g>
                <g class="nodes">
                    <For each=move || shown_nodes.get() key=|at| *at let:at>
                        {move || graph.with(|graph| graph.nodes.get(at).cloned()).map(|node| {
                            let title = store.task(node.id).map(|task| task.title).unwrap_or_default();
                            let is_next = move || next.get() == Some(node.id);
                            let class = format!(
                                "node status-{}{}{}",
                                node.status.as_str(),
                                if node.blocked { " blocked" } else { "" },
                                if node.on_critical_path { " critical" } else { "" },
                            );
                            let text: String = title.chars().take(26).collect();
                            // The name starts with what the node shows (so
                            // speech input finds it by what is seen), then
                            // says what colour and outline tell the eye.
                            let label = format!(
                                "#{} {text}{} — {}{}{}",
                                node.id,
                                &title[text.len()..],
                                node.status.as_str(),
                                if node.blocked { ", blocked" } else { "" },
                                if node.on_critical_path { ", on the critical path" } else { "" },
                            );
                            let label = move || {
                                if is_next() {
                                    format!("{label}, the task to work on next")
                                } else {
                                    label.clone()
                                }
                            };
                            let href = format!("/projects/{}/tasks/{}", store.id(), node.id);
                            let (on_click, on_key) = (href.clone(), href.clone());
                            view! {
                                // SVG has no links of the HTML kind: a node
                                // is a focusable link by role, opened by a
                                // click or Enter.
                                <g class=class class:next=is_next role="link" tabindex="0" aria-label=label
                                    data-task-id=node.id data-href=href
                                    transform=format!("translate({},{})", node.x, node.y)
                                    on:click=move |_| open_task.run(on_click.clone())
                                    on:keydown=move |ev| if ev.key() == "Enter" { open_task.run(on_key.clone()) }>
                                    <rect width=geometry.node_width height=geometry.node_height rx="8"/>
                                    <text x="10" y="18" class="node-id">{format!("#{} ", node.id)}</text>
                                    <text x="10" y="35">{text}</text>
                                </g>
                            }
                        })}
                    </For>
                </g>
            </svg>
        </div>
    }
}

/// Milliseconds since the page started (the browser's monotonic clock).
fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}
