//! A task on its own page (a shareable URL): every field editable,
//! dependencies, subtasks, deletion.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::{lazy_route, LazyRoute};
use protocol::{NewTask, Priority, Task, TaskPatch, TaskStatus};

use super::board::load_tasks;
use super::Failure;
use crate::api;
use crate::first_paint;
use crate::markdown::Markdown;
use crate::notices::use_notices;
use crate::notices::Notices;
use crate::offline;
use crate::store::{use_store, LoadState, ProjectStore};

/// Saves a change to the task as the user sees it now, optimistically.
pub fn save(
    store: ProjectStore,
    notices: Notices,
    id: i64,
    patch: TaskPatch,
    edit: impl FnOnce(&mut Task) + 'static,
) {
    let Some(version) = store.task(id).map(|task| task.version) else {
        return;
    };
    save_then(store, notices, id, version, patch, edit, |_| {});
}

/// Saves a change made to version `base` of a task: the store shows `edit`
/// at once; the server refuses it if the task has moved on since `base` (412)
/// or the change is invalid (409, 422…), and then the task goes back to what
/// it was and the user is told why. When the server cannot be reached the
/// edit stays, queued on the device until the link is back (`offline`).
/// `done` hears the outcome.
pub fn save_then(
    store: ProjectStore,
    notices: Notices,
    id: i64,
    base: i64,
    patch: TaskPatch,
    edit: impl FnOnce(&mut Task) + 'static,
    done: impl FnOnce(Result<(), String>) + 'static,
) {
    let Some(before) = store.apply_optimistic(id, edit) else {
        done(Err("This task is no longer here.".into()));
        return;
    };
    store.unconfirmed.update_value(|count| *count += 1);
    spawn_local(async move {
        match api::patch_task(&store.id(), id, base, &patch).await {
            Ok(task) => {
                store.unconfirmed.update_value(|count| *count -= 1);
                store.upsert(vec![task]);
                done(Ok(()));
            }
            Err(failure) if failure.status == 0 => {
                offline::queue(
                    store,
                    offline::QueuedEdit {
                        task_id: id,
                        base,
                        patch,
                        before,
                    },
                );
                notices.error(
                    "Offline: the change is kept on this device and sent when the connection is back.",
                );
                done(Ok(()));
            }
            Err(failure) => {
                store.unconfirmed.update_value(|count| *count -= 1);
                store.roll_back(before);
                notices.error(refusal_notice(&failure));
                done(Err(failure.message));
            }
        }
    });
}

/// What the user is told when the server refuses an edit.
pub fn refusal_notice(failure: &api::ApiError) -> String {
    let why = match failure.status {
        412 => "someone else changed this task first; their version is shown",
        _ => &failure.message,
    };
    format!("Not saved: {why}")
}

/// The editable copy of a task's fields. It is separate from the store, so a
/// refused save never loses what the user typed.
#[derive(Clone, Copy)]
struct Draft {
    title: RwSignal<String>,
    description: RwSignal<String>,
    details: RwSignal<String>,
    test_strategy: RwSignal<String>,
    status: RwSignal<TaskStatus>,
    priority: RwSignal<Priority>,
    assignee: RwSignal<String>,
    parent: RwSignal<String>,
    dependencies: RwSignal<Vec<i64>>,
}

impl Draft {
    fn new() -> Self {
        Self {
            title: RwSignal::new(String::new()),
            description: RwSignal::new(String::new()),
            details: RwSignal::new(String::new()),
            test_strategy: RwSignal::new(String::new()),
            status: RwSignal::new(TaskStatus::Pending),
            priority: RwSignal::new(Priority::Medium),
            assignee: RwSignal::new(String::new()),
            parent: RwSignal::new(String::new()),
            dependencies: RwSignal::new(Vec::new()),
        }
    }

    fn fill(&self, task: &Task) {
        self.title.set(task.title.clone());
        self.description.set(task.description.clone());
        self.details.set(task.details.clone());
        self.test_strategy.set(task.test_strategy.clone());
        self.status.set(task.status);
        self.priority.set(task.priority);
        self.assignee
            .set(task.assignee_id.clone().unwrap_or_default());
        self.parent
            .set(task.parent_id.map(|id| id.to_string()).unwrap_or_default());
        self.dependencies.set(task.dependencies.clone());
    }

    /// Only the fields that differ from `task`.
    fn patch_against(&self, task: &Task) -> TaskPatch {
        fn changed<T: PartialEq + Clone>(new: T, old: &T) -> Option<T> {
            (new != *old).then_some(new)
        }
        let assignee = Some(self.assignee.get_untracked()).filter(|value| !value.is_empty());
        let parent = self.parent.get_untracked().parse::<i64>().ok();
        TaskPatch {
            title: changed(self.title.get_untracked(), &task.title),
            description: changed(self.description.get_untracked(), &task.description),
            details: changed(self.details.get_untracked(), &task.details),
            test_strategy: changed(self.test_strategy.get_untracked(), &task.test_strategy),
            status: changed(self.status.get_untracked(), &task.status),
            priority: changed(self.priority.get_untracked(), &task.priority),
            dependencies: changed(self.dependencies.get_untracked(), &task.dependencies),
            assignee_id: (assignee != task.assignee_id).then_some(assignee),
            parent_id: (parent != task.parent_id).then_some(parent),
        }
    }

    fn apply_to(&self, task: &mut Task) {
        task.title = self.title.get_untracked();
        task.description = self.description.get_untracked();
        task.details = self.details.get_untracked();
        task.test_strategy = self.test_strategy.get_untracked();
        task.status = self.status.get_untracked();
        task.priority = self.priority.get_untracked();
        task.dependencies = self.dependencies.get_untracked();
        task.assignee_id = Some(self.assignee.get_untracked()).filter(|value| !value.is_empty());
        task.parent_id = self.parent.get_untracked().parse().ok();
    }
}

/// The task page is not part of the first screen: its code is split out of
/// the main wasm module and fetched the first time a task is opened.
pub struct TaskRoute;

#[lazy_route]
impl LazyRoute for TaskRoute {
    fn data() -> Self {
        TaskRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <TaskDetail/> }.into_any()
    }
}

#[component]
pub fn TaskDetail() -> impl IntoView {
    let store = use_store();
    let notices = use_notices();
    let params = use_params_map();
    let navigate = use_navigate();
    let id = Memo::new(move |_| {
        params.with(|params| params.get("id").and_then(|id| id.parse::<i64>().ok()))
    });
    // A page opened at a task's address reads the task on its own, so it
    // does not wait for the live link's join and the board's first page of
    // tasks. The early copy stays out of the store (the board's copy is the
    // server's at the seq it joined at) and stands in only while the board
    // is loading.
    let early = RwSignal::new(None::<Task>);
    if let Some(id) = id.get_untracked().filter(|id| store.task(*id).is_none()) {
        spawn_local(async move {
            let path = format!("/api/v1/projects/{}/tasks/{id}", store.id());
            if let Ok(task) = api::get::<Task>(&path).await {
                early.try_set(Some(task));
            }
        });
    }
    let task = Memo::new(move |_| {
        let id = id.get()?;
        store.task(id).or_else(|| {
            let loading = matches!(store.load.get(), LoadState::Loading { .. });
            early.get().filter(|task| loading && task.id == id)
        })
    });
    let exists = Memo::new(move |_| task.with(Option::is_some));
    // The server's first paint of this task goes once the page shows it (or
    // why it cannot), with the project's name.
    Effect::new(move |_| {
        let settled = !matches!(store.load.get(), LoadState::Loading { .. });
        if (exists.get() && store.project.with(Option::is_some)) || settled {
            first_paint::hand_over();
        }
    });
    let draft = Draft::new();
    // The version the form was filled from: what the user's edit applies to.
    let editing = RwSignal::new(None::<Task>);
    let saving = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    // Fill the form when the task first shows up (or another task is opened);
    // later versions from others do not overwrite what the user is typing.
    Effect::new(move |_| {
        if let Some(task) = task.get() {
            if editing.with_untracked(|editing| editing.as_ref().map(|t| t.id)) != Some(task.id) {
                draft.fill(&task);
                editing.set(Some(task));
            }
        }
    });
    let stale = move || {
        task.get()
            .zip(editing.get())
            .is_some_and(|(task, editing)| task.version != editing.version)
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(base) = editing.get_untracked() else {
            return;
        };
        let patch = draft.patch_against(&base);
        if patch == TaskPatch::default() {
            return;
        }
        saving.set(true);
        error.set(None);
        save_then(
            store,
            notices,
            base.id,
            base.version,
            patch,
            move |task| draft.apply_to(task),
            move |result| {
                saving.set(false);
                match result {
                    Ok(()) => editing.set(task.get_untracked()),
                    Err(message) => error.set(Some(message)),
                }
            },
        );
    };
    let reload = move |_| {
        if let Some(task) = task.get_untracked() {
            draft.fill(&task);
            editing.set(Some(task));
            error.set(None);
        }
    };
    let delete = {
        let navigate = navigate.clone();
        move |_| {
            let Some(current) = task.get_untracked() else {
                return;
            };
            let navigate = navigate.clone();
            spawn_local(async move {
                match api::delete(&format!(
                    "/api/v1/projects/{}/tasks/{}",
                    store.id(),
                    current.id
                ))
                .await
                {
                    Ok(()) => {
                        store.remove(current.id);
                        navigate(&format!("/projects/{}", store.id()), Default::default());
                    }
                    Err(failure) => notices.error(format!("Not deleted: {}", failure.message)),
                }
            });
        }
    };

    view! {
        <A href=move || format!("/projects/{}", store.id()) attr:class="back">"← Board"</A>
        // Only whether the task exists decides what is shown: re-rendering the
        // form on every change of the task would drop what the user is typing.
        {move || match (id.get(), exists.get()) {
            (None, _) => view! { <p class="error">"This is not a task address."</p> }.into_any(),
            (Some(_), false) => match store.load.get() {
                LoadState::Ready => view! {
                    <p class="error">"There is no such task in this project (it may have been deleted)."</p>
                }.into_any(),
                LoadState::Failed(message) => view! {
                    <Failure message=message retry=Callback::new(move |_| load_tasks(store))/>
                }.into_any(),
                LoadState::Loading { .. } => view! { <p class="muted">"Loading task…"</p> }.into_any(),
            },
            (Some(id), true) => view! {
                <form class="card task-detail" on:submit=submit>
                    <h1>{format!("Task #{id}")}</h1>
                    <Show when=stale>
                        <p class="warning">"Someone changed this task since you opened it. "
                            <button type="button" class="link" on:click=reload>"Load their version"</button></p>
                    </Show>
                    <label>"Title"<input name="title" required prop:value=draft.title on:input=move |ev| draft.title.set(event_target_value(&ev))/></label>
                    <div class="row">
                        <label>"Status"<select name="status" prop:value=move || draft.status.get().as_str().to_owned()
                            on:change=move |ev| if let Ok(value) = event_target_value(&ev).parse() { draft.status.set(value) }>
                            {TaskStatus::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                        </select></label>
                        <label>"Priority"<select name="priority" prop:value=move || draft.priority.get().as_str().to_owned()
                            on:change=move |ev| if let Ok(value) = event_target_value(&ev).parse() { draft.priority.set(value) }>
                            {Priority::ALL.iter().map(|p| view! { <option value=p.as_str()>{p.as_str()}</option> }).collect_view()}
                        </select></label>
                        <label>"Assignee"<select name="assignee" prop:value=draft.assignee on:change=move |ev| draft.assignee.set(event_target_value(&ev))>
                            <option value="">"Nobody"</option>
                            <For each=move || store.members.get() key=|m| m.user.id.clone() let:member>
                                <option value=member.user.id.clone()>{member.user.name.clone()}</option>
                            </For>
                        </select></label>
                        <label>"Parent task"<input name="parent" inputmode="numeric" placeholder="none"
                            prop:value=draft.parent on:input=move |ev| draft.parent.set(event_target_value(&ev))/></label>
                    </div>
                    <label>"Description"<textarea name="description" prop:value=draft.description on:input=move |ev| draft.description.set(event_target_value(&ev))></textarea></label>
                    <Markdown text=draft.description label="Description as shown"/>
                    <label>"Details"<textarea name="details" rows="5" prop:value=draft.details on:input=move |ev| draft.details.set(event_target_value(&ev))></textarea></label>
                    <Markdown text=draft.details label="Details as shown"/>
                    <label>"Test strategy"<textarea name="test_strategy" prop:value=draft.test_strategy on:input=move |ev| draft.test_strategy.set(event_target_value(&ev))></textarea></label>
                    <Markdown text=draft.test_strategy label="Test strategy as shown"/>
                    <Dependencies draft=draft own_id=id/>
                    {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
                    <div class="row">
                        <button type="submit" disabled=saving>"Save"</button>
                        <button type="button" class="danger" on:click=delete.clone()>"Delete task"</button>
                    </div>
                </form>
                <Subtasks parent=id/>
            }.into_any(),
        }}
    }
}

/// The dependency picker: chips for current ones, a search to add more.
#[component]
fn Dependencies(draft: Draft, own_id: i64) -> impl IntoView {
    let store = use_store();
    let search = RwSignal::new(String::new());
    let candidates = Memo::new(move |_| {
        let text = search.get().to_lowercase();
        if text.is_empty() {
            return Vec::new();
        }
        let chosen = draft.dependencies.get();
        store.tasks.with(|tasks| {
            let mut found: Vec<(i64, String)> = tasks
                .values()
                .filter(|task| task.id != own_id && !chosen.contains(&task.id))
                .filter(|task| {
                    task.id.to_string() == text || task.title.to_lowercase().contains(&text)
                })
                .map(|task| (task.id, task.title.clone()))
                .collect();
            found.sort_unstable_by_key(|(id, _)| *id);
            found.truncate(8);
            found
        })
    });
    view! {
        <fieldset class="dependencies">
            <legend>"Depends on"</legend>
            <ul class="chips">
                <For each=move || draft.dependencies.get() key=|id| *id let:dep>
                    <li class="chip">{move || format!("#{dep} {}", store.task(dep).map(|t| t.title).unwrap_or_default())}
                        <button type="button" class="link" aria-label=format!("Remove dependency {dep}")
                            on:click=move |_| draft.dependencies.update(|deps| deps.retain(|id| *id != dep))>"×"</button>
                    </li>
                </For>
            </ul>
            <input name="dependency-search" type="search" placeholder="Add: task number or title"
                prop:value=search on:input=move |ev| search.set(event_target_value(&ev))/>
            <ul class="suggestions">
                <For each=move || candidates.get() key=|(id, _)| *id let:candidate>
                    <li><button type="button" class="link" data-dependency=candidate.0 on:click=move |_| {
                        draft.dependencies.update(|deps| deps.push(candidate.0));
                        search.set(String::new());
                    }>{format!("#{} {}", candidate.0, candidate.1)}</button></li>
                </For>
            </ul>
        </fieldset>
    }
}

#[component]
fn Subtasks(parent: i64) -> impl IntoView {
    let store = use_store();
    let notices = use_notices();
    let title = RwSignal::new(String::new());
    let subtasks = Memo::new(move |_| {
        store.tasks.with(|tasks| {
            let mut found: Vec<(i64, String, TaskStatus)> = tasks
                .values()
                .filter(|task| task.parent_id == Some(parent))
                .map(|task| (task.id, task.title.clone(), task.status))
                .collect();
            found.sort_unstable_by_key(|(id, _, _)| *id);
            found
        })
    });
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let new = NewTask {
            title: title.get_untracked(),
            parent_id: Some(parent),
            ..Default::default()
        };
        spawn_local(async move {
            match api::post::<Task>(&format!("/api/v1/projects/{}/tasks", store.id()), &new).await {
                Ok(task) => {
                    title.set(String::new());
                    store.upsert(vec![task]);
                }
                Err(failure) => notices.error(format!("Subtask not created: {}", failure.message)),
            }
        });
    };
    view! {
        <section class="card subtasks">
            <h2>"Subtasks"</h2>
            <ul>
                <For each=move || subtasks.get() key=|(id, title, status)| (*id, title.clone(), *status) let:subtask>
                    <li><A href=format!("/projects/{}/tasks/{}", store.id(), subtask.0)>{format!("#{} {}", subtask.0, subtask.1)}</A>
                        " " <span class="muted">{subtask.2.as_str()}</span></li>
                </For>
            </ul>
            <form class="inline" on:submit=add>
                <input name="subtask-title" placeholder="New subtask" required prop:value=title on:input=move |ev| title.set(event_target_value(&ev))/>
                <button type="submit">"Add subtask"</button>
            </form>
        </section>
    }
}
