//! A project: the shell that owns its tasks and live link (kept while the
//! user moves between board, task and members), and the board itself, as a
//! list or as status columns, filtered through the URL.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;
use protocol::{Items, Member, NewTask, Priority, Project, Task, TaskPage, TaskStatus};

use super::Failure;
use crate::api;
use crate::first_paint;
use crate::live::{Hooks, LiveLink};
use crate::notices::use_notices;
use crate::offline;
use crate::store::{use_store, LinkState, LoadState, ProjectStore};
use crate::virtual_list::VirtualList;

/// Tasks per REST page while loading a board.
const PAGE_SIZE: usize = 250;
/// Tasks merged into the board at a time, the page handling input and
/// painting in between: each slice stays well under the 50 ms that makes a
/// task "long" even on a slow phone's CPU.
const MERGE_SLICE: usize = 125;
const LIST_ROW_HEIGHT: f64 = 40.0;
const CARD_HEIGHT: f64 = 64.0;
/// Seven columns side by side: a small margin each keeps the whole board
/// under 150 cards in the DOM.
const COLUMN_OVERSCAN: usize = 3;

#[component]
pub fn ProjectShell() -> impl IntoView {
    let params = use_params_map();
    let project_id = params.with_untracked(|params| params.get("pid").unwrap_or_default());
    let store = ProjectStore::new(project_id);
    provide_context(store);
    let notices = use_notices();

    load_project(store);
    // The copy on the device first (the board shows at once, and the link
    // asks only for what came after it), then the live link.
    let link = StoredValue::new_local(None::<LiveLink>);
    spawn_local(async move {
        offline::restore_from_device(store).await;
        let hooks = Hooks {
            on_fresh_join: Box::new(move || load_tasks(store)),
            on_live: Box::new(move || offline::send_queued(store, notices)),
        };
        // Nothing to connect for a project the user has already left.
        link.try_update_value(|link| *link = Some(LiveLink::connect(store, hooks)));
    });
    offline::keep_saved(store);
    on_cleanup(move || {
        link.try_update_value(|link| {
            if let Some(link) = link.take() {
                link.close();
            }
        });
    });

    view! {
        <section class="project">
            <header class="project-head">
                <h1>{move || store.project.get().map(|project| project.name).unwrap_or_default()}</h1>
                <Presence/>
                <LinkBadge/>
                <nav>
                    <A href=move || format!("/projects/{}", store.id())>"Board"</A>
                    <A href=move || format!("/projects/{}/graph", store.id())>"Graph"</A>
                    <A href=move || format!("/projects/{}/members", store.id())>"Members"</A>
                </nav>
            </header>
            <Outlet/>
        </section>
    }
}

fn load_project(store: ProjectStore) {
    let id = store.id();
    spawn_local(async move {
        if let Ok(projects) = api::get::<Items<Project>>("/api/v1/projects").await {
            store
                .project
                .set(projects.items.into_iter().find(|project| project.id == id));
        }
        if let Ok(members) =
            api::get::<Items<Member>>(&format!("/api/v1/projects/{id}/members")).await
        {
            store.members.set(members.items);
        }
    });
}

/// Reads every task, page by page; the board is usable from the first page.
pub fn load_tasks(store: ProjectStore) {
    let id = store.id();
    store.load.set(LoadState::Loading { loaded: 0 });
    spawn_local(async move {
        let mut cursor: Option<String> = None;
        let mut loaded = 0;
        loop {
            let mut path = format!("/api/v1/projects/{id}/tasks?limit={PAGE_SIZE}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            match api::get::<TaskPage>(&path).await {
                Ok(page) => {
                    loaded += page.items.len();
                    let mut items = page.items;
                    // Reading the page was one task; merging it is others.
                    offline::yield_to_page().await;
                    while items.len() > MERGE_SLICE {
                        let rest = items.split_off(MERGE_SLICE);
                        store.upsert(items);
                        items = rest;
                        offline::yield_to_page().await;
                    }
                    store.upsert(items);
                    if loaded <= PAGE_SIZE {
                        mark_board_ready();
                    }
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        store.load.set(LoadState::Ready);
                        return;
                    }
                    store.load.set(LoadState::Loading { loaded });
                }
                Err(failure) => {
                    store.load.set(LoadState::Failed(failure.message));
                    return;
                }
            }
        }
    });
}

/// Marks the moment the first tasks are on screen, for real-user monitoring.
pub fn mark_board_ready() {
    if let Some(performance) = web_sys::window().and_then(|window| window.performance()) {
        if performance.get_entries_by_name("board-ready").length() == 0 {
            let _ = performance.mark("board-ready");
        }
    }
}

#[component]
fn Presence() -> impl IntoView {
    let store = use_store();
    view! {
        <ul class="presence" aria-label="People here now">
            <For each=move || store.presence.get() key=|user| user.id.clone() let:user>
                <li class="avatar" title=user.name.clone()>{initials(&user.name)}</li>
            </For>
        </ul>
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

#[component]
fn LinkBadge() -> impl IntoView {
    let store = use_store();
    let queued = move || store.queued.with(Vec::len);
    let waiting = move || {
        (queued() > 0).then(|| {
            let count = queued();
            let text = if count == 1 {
                "1 change waiting to be sent".to_owned()
            } else {
                format!("{count} changes waiting to be sent")
            };
            view! { <span class="badge offline" data-queued=count>{text}</span> }
        })
    };
    let link = move || {
        match store.link.get() {
        LinkState::Live => view! { <span class="badge live" data-link="live">"Live"</span> }.into_any(),
        LinkState::Connecting => view! { <span class="badge" data-link="connecting">"Connecting…"</span> }.into_any(),
        LinkState::Refused => view! { <span class="badge offline" data-link="refused">"Not live"</span> }.into_any(),
        LinkState::Unavailable => view! {
            <span class="badge offline" data-link="unavailable">"Server unavailable — retrying; you are still signed in"</span>
        }
        .into_any(),
        LinkState::Offline => view! {
            <span class="badge offline" data-link="offline">"Offline — reconnecting; changes will catch up"</span>
        }
        .into_any(),
    }
    };
    view! { {link} {waiting} }
}

/// The filters, as read from and written to the URL's query.
#[derive(Clone, Debug, Default, PartialEq)]
struct Filters {
    status: Option<TaskStatus>,
    priority: Option<Priority>,
    assignee: Option<String>,
    /// As typed, for the input.
    text: String,
    /// `text` lowercased once, not once per task.
    needle: String,
    columns: bool,
}

impl Filters {
    fn matches(&self, task: &Task) -> bool {
        self.status.is_none_or(|status| task.status == status)
            && self
                .priority
                .is_none_or(|priority| task.priority == priority)
            && self
                .assignee
                .as_deref()
                .is_none_or(|assignee| task.assignee_id.as_deref() == Some(assignee))
            && (self.needle.is_empty() || task.title.to_lowercase().contains(&self.needle))
    }
}

#[component]
pub fn Board() -> impl IntoView {
    let store = use_store();
    let notices = use_notices();
    let query = use_query_map();
    let navigate = use_navigate();
    let filters = Memo::new(move |_| {
        query.with(|query| Filters {
            status: query.get("status").and_then(|value| value.parse().ok()),
            priority: query.get("priority").and_then(|value| value.parse().ok()),
            assignee: query.get("assignee").filter(|value| !value.is_empty()),
            needle: query.get("q").unwrap_or_default().to_lowercase(),
            text: query.get("q").unwrap_or_default(),
            columns: query.get("view").as_deref() == Some("columns"),
        })
    });
    let set_filter = {
        let navigate = navigate.clone();
        Callback::new(move |(key, value): (&'static str, String)| {
            let mut pairs: Vec<(String, String)> = query.with_untracked(|query| {
                query
                    .clone()
                    .into_iter()
                    .filter(|(name, _)| name != key)
                    .map(|(name, value)| (name.to_string(), value))
                    .collect()
            });
            if !value.is_empty() {
                pairs.push((key.to_owned(), value));
            }
            let search = pairs
                .iter()
                .map(|(name, value)| format!("{name}={}", js_sys::encode_uri_component(value)))
                .collect::<Vec<_>>()
                .join("&");
            let path = format!(
                "/projects/{}{}",
                store.id(),
                if search.is_empty() {
                    String::new()
                } else {
                    format!("?{search}")
                }
            );
            navigate(
                &path,
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        })
    };
    let matching = Memo::new(move |_| {
        let filters = filters.get();
        store.tasks.with(|tasks| {
            let mut ids: Vec<i64> = tasks
                .values()
                .filter(|task| filters.matches(task))
                .map(|task| task.id)
                .collect();
            ids.sort_unstable();
            ids
        })
    });
    // The server's first paint of this board goes once the board shows what
    // it showed: the project's name and rows (or why there are none).
    Effect::new(move |_| {
        let rows = matching.with(|ids| !ids.is_empty());
        let load = store.load.get();
        let named = store.project.with(Option::is_some);
        let settled = !matches!(load, LoadState::Loading { .. });
        if (rows && named) || settled {
            first_paint::hand_over();
        }
    });

    let selection = Selection::new();
    provide_context(selection);
    // Chosen tasks that no longer match (filtered out, deleted) leave the
    // selection; the cursor too.
    Effect::new(move |_| {
        matching.with(|ids| {
            let visible: std::collections::HashSet<i64> = ids.iter().copied().collect();
            if selection
                .chosen
                .with_untracked(|chosen| chosen.iter().any(|id| !visible.contains(id)))
            {
                selection
                    .chosen
                    .update(|chosen| chosen.retain(|id| visible.contains(id)));
            }
            if selection
                .cursor
                .get_untracked()
                .is_some_and(|id| !visible.contains(&id))
            {
                selection.cursor.set(None);
            }
        });
    });
    let keys = {
        let navigate = navigate.clone();
        window_event_listener(leptos::ev::keydown, move |ev| {
            on_board_key(
                &ev,
                selection,
                matching,
                &navigate,
                store.id(),
                filters.get_untracked().columns,
            );
        })
    };
    on_cleanup(move || keys.remove());
    let cursor_index = Signal::derive(move || {
        let cursor = selection.cursor.get()?;
        matching.with(|ids| ids.iter().position(|id| *id == cursor))
    });

    let new_title = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let title = new_title.get_untracked();
        if title.trim().is_empty() {
            return;
        }
        spawn_local(async move {
            let task = NewTask {
                title,
                ..Default::default()
            };
            match api::post::<Task>(&format!("/api/v1/projects/{}/tasks", store.id()), &task).await
            {
                Ok(task) => {
                    new_title.set(String::new());
                    store.upsert(vec![task]);
                }
                Err(failure) => notices.error(format!("Task not created: {}", failure.message)),
            }
        });
    };
    let next = {
        let navigate = navigate.clone();
        move |_| {
            let navigate = navigate.clone();
            spawn_local(async move {
                match api::next_task(&store.id()).await {
                    Ok(Some(task)) => navigate(
                        &format!("/projects/{}/tasks/{}", store.id(), task.id),
                        Default::default(),
                    ),
                    Ok(None) => {
                        notices.error("No task is ready: every pending task waits on another.")
                    }
                    Err(failure) => notices.error(failure.message),
                }
            });
        }
    };

    view! {
        <div class="toolbar">
            <form class="inline" on:submit=create>
                <input name="new-task" placeholder="New task title" prop:value=new_title
                    on:input=move |ev| new_title.set(event_target_value(&ev))/>
                <button type="submit">"Add task"</button>
            </form>
            <button on:click=next>"Next task"</button>
            <button class="link" aria-keyshortcuts="?" on:click=move |_| selection.help.set(true)>"Shortcuts"</button>
            <div class="filters">
                <select name="status" aria-label="Status"
                    prop:value=move || filters.get().status.map(|s| s.as_str().to_owned()).unwrap_or_default()
                    on:change=move |ev| set_filter.run(("status", event_target_value(&ev)))>
                    <option value="">"Any status"</option>
                    {TaskStatus::ALL.iter().map(|status| view! { <option value=status.as_str()>{status.as_str()}</option> }).collect_view()}
                </select>
                <select name="priority" aria-label="Priority"
                    prop:value=move || filters.get().priority.map(|p| p.as_str().to_owned()).unwrap_or_default()
                    on:change=move |ev| set_filter.run(("priority", event_target_value(&ev)))>
                    <option value="">"Any priority"</option>
                    {Priority::ALL.iter().map(|priority| view! { <option value=priority.as_str()>{priority.as_str()}</option> }).collect_view()}
                </select>
                <select name="assignee" aria-label="Assignee"
                    prop:value=move || filters.get().assignee.unwrap_or_default()
                    on:change=move |ev| set_filter.run(("assignee", event_target_value(&ev)))>
                    <option value="">"Anyone"</option>
                    <For each=move || store.members.get() key=|member| member.user.id.clone() let:member>
                        <option value=member.user.id.clone()>{member.user.name.clone()}</option>
                    </For>
                </select>
                <input name="q" type="search" placeholder="Filter by text" aria-label="Text"
                    prop:value=move || filters.get().text
                    on:input=move |ev| set_filter.run(("q", event_target_value(&ev)))/>
                <button class="link" on:click=move |_| set_filter.run(("view", if filters.get_untracked().columns { String::new() } else { "columns".into() }))>
                    {move || if filters.get().columns { "List view" } else { "Column view" }}
                </button>
            </div>
        </div>
        <LoadProgress count=Signal::derive(move || matching.with(Vec::len))/>
        {move || selection.chosen.with(|chosen| !chosen.is_empty()).then(|| Suspend::new(bulk_bar(matching)))}
        {move || selection.help.get().then(|| Suspend::new(shortcut_help()))}
        {move || if filters.get().columns {
            Suspend::new(columns_view(matching)).into_any()
        } else {
            view! {
                <VirtualList
                    ids=Signal::from(matching)
                    row_height=LIST_ROW_HEIGHT
                    class="task-list"
                    keep_visible=cursor_index
                    render=move |id| view! { <TaskRow id=id/> }.into_any()
                />
            }.into_any()
        }}
    }
}

// What not every visit needs is a module of its own (`#[lazy]`), fetched
// when first shown (and prefetched once the page is idle), so the first
// screen's wasm stays small: the column view with its dragging, the bulk
// bar, the shortcuts dialog.

#[lazy]
async fn columns_view(matching: Memo<Vec<i64>>) -> AnyView {
    view! { <Columns matching=matching/> }.into_any()
}

#[lazy]
async fn bulk_bar(matching: Memo<Vec<i64>>) -> AnyView {
    view! { <BulkBar matching=matching/> }.into_any()
}

#[lazy]
async fn shortcut_help() -> AnyView {
    view! { <ShortcutHelp/> }.into_any()
}

#[component]
fn LoadProgress(count: Signal<usize>) -> impl IntoView {
    let store = use_store();
    move || match store.load.get() {
        LoadState::Loading { loaded } => view! {
            <p class="muted" data-load="loading">{format!("Loading tasks… {loaded} so far")}</p>
        }
        .into_any(),
        LoadState::Ready => view! {
            <p class="muted" data-load="ready">{move || format!("{} tasks", count.get())}</p>
        }
        .into_any(),
        LoadState::Failed(message) => view! {
            <Failure message=message retry=Callback::new(move |_| load_tasks(store))/>
        }
        .into_any(),
    }
}

#[component]
fn Columns(matching: Memo<Vec<i64>>) -> impl IntoView {
    let store = use_store();
    let drag = Drag {
        moving: RwSignal::new(None),
        store,
        notices: use_notices(),
        said: RwSignal::new(String::new()),
    };
    provide_context(drag);
    // The column under a dragged card, found once per pointer move for all
    // seven columns to read.
    let over = Memo::new(move |_| {
        drag.moving.with(|moving| {
            let moving = moving.as_ref().filter(|moving| moving.started)?;
            web_sys::window()
                .and_then(|window| window.document())
                .and_then(|document| {
                    document.element_from_point(moving.at.0 as f32, moving.at.1 as f32)
                })
                .and_then(|element| element.closest("[data-status]").ok().flatten())
                .and_then(|column| column.get_attribute("data-status"))
        })
    });
    // One pass over the matching tasks sorts them into every column; each
    // column then keeps its own list and changes only when that list does.
    let by_status = Memo::new(move |_| {
        let mut columns = vec![Vec::new(); TaskStatus::ALL.len()];
        store.tasks.with(|tasks| {
            matching.with(|ids| {
                for id in ids {
                    if let Some(task) = tasks.get(id) {
                        let column = TaskStatus::ALL
                            .iter()
                            .position(|status| *status == task.status);
                        if let Some(column) = column {
                            columns[column].push(*id);
                        }
                    }
                }
            })
        });
        columns
    });
    view! {
        <p class="visually-hidden" aria-live="polite">{move || drag.said.get()}</p>
        <DragGhost/>
        <div class="columns">
            {TaskStatus::ALL.iter().copied().enumerate().map(|(column, status)| {
                let ids = Memo::new(move |_| by_status.with(|columns| columns[column].clone()));
                view! {
                    <div class="column" data-status=status.as_str()
                        class:drop-target=move || over.with(|over| over.as_deref() == Some(status.as_str()))>
                        <h2>{status.as_str()} " " <span class="muted">{move || ids.with(Vec::len)}</span></h2>
                        <VirtualList ids=Signal::from(ids) row_height=CARD_HEIGHT class="cards" overscan=COLUMN_OVERSCAN
                            render=move |id| view! { <TaskCard id=id/> }.into_any()/>
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn TaskRow(id: i64) -> impl IntoView {
    let store = use_store();
    let selection = expect_context::<Selection>();
    let task = Memo::new(move |_| store.task(id));
    let href = move || format!("/projects/{}/tasks/{id}", store.id());
    let at_cursor = move || selection.cursor.get() == Some(id);
    let chosen = move || selection.chosen.with(|chosen| chosen.contains(&id));
    move || {
        task.get().map(|task| {
            let assignee = task.assignee_id.as_deref().and_then(|user| store.member_name(user)).unwrap_or_default();
            view! {
                <div class="task-row" data-task-id=task.id class:cursor=at_cursor class:chosen=chosen
                    aria-current=move || at_cursor().then_some("true")>
                    <span class="task-id">
                        <input type="checkbox" class="choose" aria-label=format!("Select task #{}", task.id)
                            prop:checked=chosen on:change=move |_| selection.toggle(id)/>
                        {format!("#{}", task.id)}
                    </span>
                    <A href=href attr:class="task-title">{task.title.clone()}</A>
                    <StatusPicker id=task.id status=task.status/>
                    <span class=format!("priority {}", task.priority.as_str())>{task.priority.as_str()}</span>
                    <span class="assignee">{assignee}</span>
                    <span class="deps muted">{if task.dependencies.is_empty() { String::new() } else { format!("needs {}", task.dependencies.len()) }}</span>
                </div>
            }
        })
    }
}

#[component]
fn TaskCard(id: i64) -> impl IntoView {
    let store = use_store();
    let drag = expect_context::<Drag>();
    let task = Memo::new(move |_| store.task(id));
    let lifted = move || {
        drag.moving
            .with(|moving| moving.as_ref().is_some_and(|m| m.id == id && m.started))
    };
    move || {
        task.get().map(|task| {
            let status = task.status;
            view! {
                <div class="task-card" data-task-id=task.id class:lifted=lifted>
                    <div class="card-top">
                        // The handle moves the card: drag it (mouse, pen or
                        // finger) to another column, or press ← / → on it.
                        <button type="button" class="drag-handle" aria-label=format!("Move task #{} to another status (← →)", task.id)
                            aria-keyshortcuts="ArrowLeft ArrowRight"
                            on:pointerdown=move |ev| drag.press(&ev, id)
                            on:pointermove=move |ev| drag.follow(&ev)
                            on:pointerup=move |ev| drag.drop(&ev)
                            on:pointercancel=move |_| drag.moving.set(None)
                            on:keydown=move |ev| drag.by_key(&ev, id, status)>"⠿"</button>
                        <A href=format!("/projects/{}/tasks/{}", store.id(), task.id) attr:class="task-title">
                            {format!("#{} {}", task.id, task.title)}
                        </A>
                    </div>
                    <div class="card-meta">
                        <StatusPicker id=task.id status=task.status/>
                        <span class=format!("priority {}", task.priority.as_str())>{task.priority.as_str()}</span>
                    </div>
                </div>
            }
        })
    }
}

/// A card being moved between columns with a pointer.
#[derive(Clone, Debug, PartialEq)]
struct Moving {
    id: i64,
    /// Where the press began; a drag starts past a few pixels, so a press
    /// that does not move stays a press.
    from: (f64, f64),
    at: (f64, f64),
    started: bool,
}

/// Dragging cards between the status columns: pointer events (mouse, pen
/// and touch alike, the handle capturing the pointer) and the keyboard.
#[derive(Clone, Copy)]
struct Drag {
    moving: RwSignal<Option<Moving>>,
    store: ProjectStore,
    notices: crate::notices::Notices,
    /// What the last keyboard move did, for screen readers.
    said: RwSignal<String>,
}

/// Pixels a press must move before it is a drag.
const DRAG_THRESHOLD: f64 = 5.0;

impl Drag {
    fn press(&self, ev: &web_sys::PointerEvent, id: i64) {
        if ev.button() != 0 {
            return;
        }
        if let Some(handle) = ev
            .current_target()
            .and_then(|target| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(target).ok())
        {
            let _ = handle.set_pointer_capture(ev.pointer_id());
        }
        let at = (f64::from(ev.client_x()), f64::from(ev.client_y()));
        self.moving.set(Some(Moving {
            id,
            from: at,
            at,
            started: false,
        }));
    }

    fn follow(&self, ev: &web_sys::PointerEvent) {
        let at = (f64::from(ev.client_x()), f64::from(ev.client_y()));
        self.moving.update(|moving| {
            if let Some(moving) = moving {
                moving.at = at;
                let (dx, dy) = (at.0 - moving.from.0, at.1 - moving.from.1);
                moving.started |= dx.hypot(dy) > DRAG_THRESHOLD;
            }
        });
    }

    fn drop(&self, ev: &web_sys::PointerEvent) {
        let Some(moving) = self.moving.get_untracked() else {
            return;
        };
        self.moving.set(None);
        if !moving.started {
            return;
        }
        let target = web_sys::window()
            .and_then(|window| window.document())
            .and_then(|document| {
                document.element_from_point(ev.client_x() as f32, ev.client_y() as f32)
            })
            .and_then(|element| element.closest("[data-status]").ok().flatten())
            .and_then(|column| column.get_attribute("data-status"))
            .and_then(|status| status.parse::<TaskStatus>().ok());
        if let Some(status) = target {
            self.move_to(moving.id, status);
        }
    }

    fn by_key(&self, ev: &web_sys::KeyboardEvent, id: i64, current: TaskStatus) {
        let step: isize = match ev.key().as_str() {
            "ArrowLeft" => -1,
            "ArrowRight" => 1,
            _ => return,
        };
        ev.prevent_default();
        let at = TaskStatus::ALL
            .iter()
            .position(|status| *status == current)
            .unwrap_or(0);
        let to = (at as isize + step).clamp(0, TaskStatus::ALL.len() as isize - 1) as usize;
        let status = TaskStatus::ALL[to];
        if status != current {
            self.move_to(id, status);
            self.said
                .set(format!("Task #{id} moved to {}", status.as_str()));
            // The card is now in another column: keep the focus on it.
            let selector = format!(
                "[data-status=\"{}\"] [data-task-id=\"{id}\"] .drag-handle",
                status.as_str()
            );
            request_animation_frame(move || {
                focus(&selector);
            });
        }
    }

    fn move_to(&self, id: i64, status: TaskStatus) {
        if self
            .store
            .task(id)
            .is_some_and(|task| task.status == status)
        {
            return;
        }
        let patch = protocol::TaskPatch {
            status: Some(status),
            ..Default::default()
        };
        super::task::save(self.store, self.notices, id, patch, move |task| {
            task.status = status
        });
    }
}

/// The card under the pointer while it is dragged.
#[component]
fn DragGhost() -> impl IntoView {
    let store = use_store();
    let drag = expect_context::<Drag>();
    move || {
        drag.moving.get().filter(|moving| moving.started).map(|moving| {
            let title = store.task(moving.id).map(|task| task.title).unwrap_or_default();
            view! {
                <div class="drag-ghost" aria-hidden="true"
                    style:transform=format!("translate({}px, {}px)", moving.at.0 + 8.0, moving.at.1 + 8.0)>
                    {format!("#{} {title}", moving.id)}
                </div>
            }
        })
    }
}

/// Changes a task's status in place, optimistically.
#[component]
fn StatusPicker(id: i64, status: TaskStatus) -> impl IntoView {
    let store = use_store();
    let notices = use_notices();
    let change = move |ev: leptos::ev::Event| {
        let Ok(status) = event_target_value(&ev).parse::<TaskStatus>() else {
            return;
        };
        let patch = protocol::TaskPatch {
            status: Some(status),
            ..Default::default()
        };
        super::task::save(store, notices, id, patch, move |task| task.status = status);
    };
    view! {
        <select class="status" name="task-status" aria-label="Status" prop:value=status.as_str() on:change=change>
            {TaskStatus::ALL.iter().map(|option| view! { <option value=option.as_str()>{option.as_str()}</option> }).collect_view()}
        </select>
    }
}

/// The board's keyboard cursor, the tasks chosen for a bulk change, and
/// whether the shortcuts are shown.
#[derive(Clone, Copy)]
struct Selection {
    cursor: RwSignal<Option<i64>>,
    chosen: RwSignal<std::collections::BTreeSet<i64>>,
    help: RwSignal<bool>,
}

impl Selection {
    fn new() -> Self {
        Selection {
            cursor: RwSignal::new(None),
            chosen: RwSignal::new(std::collections::BTreeSet::new()),
            help: RwSignal::new(false),
        }
    }

    fn toggle(&self, id: i64) {
        self.chosen.update(|chosen| {
            if !chosen.remove(&id) {
                chosen.insert(id);
            }
        });
    }
}

/// The shortcuts, for the help overlay: (keys, what they do).
const SHORTCUTS: &[(&str, &str)] = &[
    ("j / ↓", "Next task"),
    ("k / ↑", "Previous task"),
    ("Enter", "Open the task"),
    ("s", "Set the task's status"),
    ("x", "Select or unselect the task"),
    ("a", "Select every task shown"),
    ("/", "Filter by text"),
    ("Esc", "Clear the selection, close this"),
    ("?", "Show these shortcuts"),
];

/// One key pressed on the board. Keys typed into a field are the field's,
/// and keys with Ctrl, Alt or ⌘ are the browser's.
fn on_board_key(
    ev: &web_sys::KeyboardEvent,
    selection: Selection,
    matching: Memo<Vec<i64>>,
    navigate: &impl Fn(&str, NavigateOptions),
    project: String,
    columns: bool,
) {
    if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
        return;
    }
    let key = ev.key();
    let typing = ev
        .target()
        .and_then(|target| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(target).ok())
        .is_some_and(|element| match element.tag_name().as_str() {
            // A box or a button takes no letters: the board keeps its keys.
            "INPUT" => !matches!(
                element.get_attribute("type").as_deref(),
                Some("checkbox" | "radio" | "button" | "submit")
            ),
            "TEXTAREA" | "SELECT" => true,
            _ => element.has_attribute("contenteditable"),
        });
    if key == "Escape" {
        if selection.help.get_untracked() {
            selection.help.set(false);
        } else if !typing {
            selection.chosen.set(Default::default());
        }
        return;
    }
    if typing {
        return;
    }
    let step = |by: isize| {
        matching.with_untracked(|ids| {
            if ids.is_empty() {
                return;
            }
            let next = match selection
                .cursor
                .get_untracked()
                .and_then(|id| ids.iter().position(|x| *x == id))
            {
                Some(at) => (at as isize + by).clamp(0, ids.len() as isize - 1) as usize,
                None => 0,
            };
            selection.cursor.set(Some(ids[next]));
        });
    };
    let handled = match key.as_str() {
        "j" | "ArrowDown" if !columns => {
            step(1);
            true
        }
        "k" | "ArrowUp" if !columns => {
            step(-1);
            true
        }
        "Enter" => match selection.cursor.get_untracked() {
            Some(id) => {
                navigate(
                    &format!("/projects/{project}/tasks/{id}"),
                    Default::default(),
                );
                true
            }
            None => false,
        },
        "s" => focus_in_row(selection.cursor.get_untracked(), "select.status"),
        "x" => match selection.cursor.get_untracked() {
            Some(id) => {
                selection.toggle(id);
                true
            }
            None => false,
        },
        "a" => {
            selection
                .chosen
                .set(matching.get_untracked().into_iter().collect());
            true
        }
        "/" => focus("input[name=\"q\"]"),
        "?" => {
            selection.help.set(true);
            true
        }
        _ => false,
    };
    if handled {
        ev.prevent_default();
    }
}

/// Focuses the element `selector` finds; whether there was one.
fn focus(selector: &str) -> bool {
    let element = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.query_selector(selector).ok().flatten())
        .and_then(|element| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element).ok());
    match element {
        Some(element) => element.focus().is_ok(),
        None => false,
    }
}

fn focus_in_row(id: Option<i64>, selector: &str) -> bool {
    id.is_some_and(|id| focus(&format!("[data-task-id=\"{id}\"] {selector}")))
}

/// What to do with the chosen tasks, all at once: one change set on the
/// server (`POST …/tasks/bulk`), shown at once and rolled back if refused.
#[component]
fn BulkBar(matching: Memo<Vec<i64>>) -> impl IntoView {
    let store = use_store();
    let notices = use_notices();
    let selection = expect_context::<Selection>();
    let count = move || selection.chosen.with(|chosen| chosen.len());
    let apply = move |set: Option<protocol::BulkSet>| {
        let ids: Vec<i64> = selection.chosen.get_untracked().into_iter().collect();
        if ids.is_empty() {
            return;
        }
        let delete = set.is_none();
        let change = protocol::BulkChange {
            task_ids: ids.clone(),
            delete: delete.then_some(true),
            set: set.clone(),
            ..Default::default()
        };
        // Shown at once; put back as it was if the server refuses.
        let before: Vec<Task> = ids
            .iter()
            .filter_map(|id| {
                store.apply_optimistic(*id, |task| {
                    if let Some(set) = &set {
                        if let Some(status) = set.status {
                            task.status = status;
                        }
                        if let Some(priority) = set.priority {
                            task.priority = priority;
                        }
                        if let Some(assignee) = &set.assignee_id {
                            task.assignee_id.clone_from(assignee);
                        }
                    }
                })
            })
            .collect();
        spawn_local(async move {
            let path = format!("/api/v1/projects/{}/tasks/bulk", store.id());
            match api::post::<protocol::BulkResult>(&path, &change).await {
                Ok(result) => {
                    store.upsert(result.tasks);
                    for id in result.deleted {
                        store.remove(id);
                    }
                    if delete {
                        selection.chosen.set(Default::default());
                    }
                }
                Err(failure) => {
                    for task in before {
                        store.roll_back(task);
                    }
                    notices.error(format!("Not changed: {}", failure.message));
                }
            }
        });
    };
    let set_from = move |ev: leptos::ev::Event, field: &'static str| {
        let value = event_target_value(&ev);
        let mut set = protocol::BulkSet::default();
        match field {
            "status" => set.status = value.parse().ok(),
            "priority" => set.priority = value.parse().ok(),
            _ => set.assignee_id = Some((!value.is_empty()).then_some(value)),
        }
        if set != protocol::BulkSet::default() {
            apply(Some(set));
        }
        // Back to its prompt, so that the same choice can be made again.
        if let Some(select) = ev.target().and_then(|target| {
            wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlSelectElement>(target).ok()
        }) {
            select.set_selected_index(0);
        }
    };
    view! {
        <Show when=move || { count() > 0 }>
            <div class="bulk-bar" role="region" aria-label="Change the selected tasks">
                <strong data-chosen=count>{move || format!("{} selected", count())}</strong>
                <select name="bulk-status" aria-label="Set status of the selected" prop:value="" on:change=move |ev| set_from(ev, "status")>
                    <option value="">"Set status…"</option>
                    {TaskStatus::ALL.iter().map(|status| view! { <option value=status.as_str()>{status.as_str()}</option> }).collect_view()}
                </select>
                <select name="bulk-priority" aria-label="Set priority of the selected" prop:value="" on:change=move |ev| set_from(ev, "priority")>
                    <option value="">"Set priority…"</option>
                    {Priority::ALL.iter().map(|priority| view! { <option value=priority.as_str()>{priority.as_str()}</option> }).collect_view()}
                </select>
                <select name="bulk-assignee" aria-label="Assign the selected" prop:value="-" on:change=move |ev| set_from(ev, "assignee")>
                    <option value="-" disabled>"Assign to…"</option>
                    <option value="">"Nobody"</option>
                    <For each=move || store.members.get() key=|member| member.user.id.clone() let:member>
                        <option value=member.user.id.clone()>{member.user.name.clone()}</option>
                    </For>
                </select>
                <button type="button" class="danger" on:click=move |_| apply(None)>"Delete"</button>
                <button type="button" class="link" on:click=move |_| selection.chosen.set(matching.get_untracked().into_iter().collect())>
                    {move || format!("Select all {}", matching.with(Vec::len))}
                </button>
                <button type="button" class="link" on:click=move |_| selection.chosen.set(Default::default())>"Clear"</button>
            </div>
        </Show>
    }
}

/// The keyboard shortcuts, on `?`.
#[component]
fn ShortcutHelp() -> impl IntoView {
    let selection = expect_context::<Selection>();
    let close = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if selection.help.get() {
            if let Some(button) = close.get() {
                let _ = button.focus();
            }
        }
    });
    view! {
        <Show when=move || selection.help.get()>
            <div class="overlay" on:click=move |_| selection.help.set(false)>
                <div class="help card" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title"
                    on:click=|ev| ev.stop_propagation()>
                    <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
                    <table>
                        <tbody>
                            {SHORTCUTS.iter().map(|(keys, action)| view! {
                                <tr><th scope="row"><kbd>{*keys}</kbd></th><td>{*action}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <button type="button" node_ref=close on:click=move |_| selection.help.set(false)>"Close"</button>
                </div>
            </div>
        </Show>
    }
}
