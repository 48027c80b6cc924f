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
use crate::live::{Hooks, LiveLink};
use crate::notices::use_notices;
use crate::store::{use_store, LinkState, LoadState, ProjectStore};
use crate::virtual_list::VirtualList;

/// Tasks per REST page while loading a board.
const PAGE_SIZE: usize = 500;
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

    load_project(store);
    let link = LiveLink::connect(
        store,
        Hooks {
            on_fresh_join: Box::new(move || load_tasks(store)),
        },
    );
    let link = StoredValue::new_local(link);
    on_cleanup(move || link.with_value(LiveLink::close));

    view! {
        <section class="project">
            <header class="project-head">
                <h1>{move || store.project.get().map(|project| project.name).unwrap_or_default()}</h1>
                <Presence/>
                <LinkBadge/>
                <nav>
                    <A href=move || format!("/projects/{}", store.id())>"Board"</A>
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
                    store.upsert(page.items);
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
fn mark_board_ready() {
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
    move || {
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
    }
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
        {move || if filters.get().columns {
            view! { <Columns matching=matching/> }.into_any()
        } else {
            view! {
                <VirtualList
                    ids=Signal::from(matching)
                    row_height=LIST_ROW_HEIGHT
                    class="task-list"
                    render=move |id| view! { <TaskRow id=id/> }.into_any()
                />
            }.into_any()
        }}
    }
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
        <div class="columns">
            {TaskStatus::ALL.iter().copied().enumerate().map(|(column, status)| {
                let ids = Memo::new(move |_| by_status.with(|columns| columns[column].clone()));
                view! {
                    <div class="column" data-status=status.as_str()>
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
    let task = Memo::new(move |_| store.task(id));
    let href = move || format!("/projects/{}/tasks/{id}", store.id());
    move || {
        task.get().map(|task| {
            let assignee = task.assignee_id.as_deref().and_then(|user| store.member_name(user)).unwrap_or_default();
            view! {
                <div class="task-row" data-task-id=task.id>
                    <span class="task-id">{format!("#{}", task.id)}</span>
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
    let task = Memo::new(move |_| store.task(id));
    move || {
        task.get().map(|task| view! {
            <div class="task-card" data-task-id=task.id>
                <A href=format!("/projects/{}/tasks/{}", store.id(), task.id) attr:class="task-title">
                    {format!("#{} {}", task.id, task.title)}
                </A>
                <div class="card-meta">
                    <StatusPicker id=task.id status=task.status/>
                    <span class=format!("priority {}", task.priority.as_str())>{task.priority.as_str()}</span>
                </div>
            </div>
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
