//! The first paint: a page's content, drawn by the server into the frame of
//! `index.html`, so a first visit shows the board (or the task, or the
//! sign-in form) as soon as the page and its style sheet have arrived,
//! without waiting for the app's wasm to download and start.
//!
//! It is a picture, not the app: the frame is `inert` (nothing in it can be
//! focused or clicked) and the app draws the same page underneath it,
//! unseen, then takes the frame away once its own copy has the same content
//! (`web/src/first_paint.rs`). The markup here therefore mirrors the app's
//! views for these three screens, class for class; the browser tests check
//! that the hand-over moves nothing.
//!
//! A first paint is an improvement, never a requirement: whatever stands in
//! its way (no session, not a member, a slow database, an unknown address)
//! gives the plain page, and the app does what it always did.

use std::time::Duration;

use maud::{html, Markup};
use protocol::{Member, Priority, Task, TaskPage, TaskStatus};
use taskmaster_board::markdown::{self, Block, Inline};

use crate::app::{Actor, Conditional, TaskQuery};
use crate::state::AppState;

/// Past this the page goes out without its first paint: the page itself must
/// never wait on the database for long.
const DEADLINE: Duration = Duration::from_millis(250);
/// Rows drawn: more than the tallest screen shows (the list's rows are 40 px).
const ROWS: usize = 40;
/// The app's first page of tasks (`web/src/pages/board.rs`): the same query,
/// so the app's own request finds the answer cached.
const APP_PAGE_SIZE: i64 = 250;

/// A page address with a first paint of its own.
#[derive(Debug, PartialEq, Eq)]
enum Screen<'a> {
    SignIn,
    Board { project: &'a str },
    Task { project: &'a str, task: i64 },
}

impl<'a> Screen<'a> {
    /// The screen at `path` with `query`; `None` for every other page (and
    /// for a board with filters or the column view, which the app draws).
    fn of(path: &'a str, query: Option<&str>) -> Option<Self> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match parts.as_slice() {
            ["signin"] => Some(Screen::SignIn),
            ["projects", project] if query.is_none_or(str::is_empty) => {
                Some(Screen::Board { project })
            }
            ["projects", project, "tasks", task] => Some(Screen::Task {
                project,
                task: task.parse().ok().filter(|id| *id > 0)?,
            }),
            _ => None,
        }
    }
}

/// The frame's content for the page at `path`, `None` when the plain page
/// is what this request gets.
pub async fn render(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> Option<Markup> {
    let screen = Screen::of(path, query)?;
    if screen == Screen::SignIn {
        return Some(page(None, sign_in()));
    }
    let token = state.cookies.session_token(headers)?;
    let drawn = tokio::time::timeout(DEADLINE, async {
        let actor = state.app.authenticate(token).await.ok()?;
        state.app.check_api_rate(&actor).ok()?;
        let content = match screen {
            Screen::Board { project } => board(state, &actor, project).await?,
            Screen::Task { project, task } => task_page(state, &actor, project, task).await?,
            Screen::SignIn => unreachable!("drawn above"),
        };
        Some(page(Some(&actor), content))
    })
    .await;
    drawn.ok().flatten()
}

/// The app's frame: the top bar and `main`.
fn page(actor: Option<&Actor>, content: Markup) -> Markup {
    html! {
        header.topbar {
            a.brand href="/projects" { "Task Master" }
            @if let Some(actor) = actor {
                span.who { (actor.user.name) }
                button.link type="button" { "Sign out" }
            }
        }
        div.notices role="alert" aria-live="assertive" {}
        main { (content) }
    }
}

fn sign_in() -> Markup {
    html! {
        form.card.auth {
            h1 { "Sign in" }
            label { "Email" input type="email" name="email" required autocomplete="email"; }
            label { "Password" input type="password" name="password" required autocomplete="current-password"; }
            button type="submit" { "Sign in" }
            p { "New here? " a href="/signup" { "Create an account" } }
        }
    }
}

/// The project's name and its members, `None` when the caller may not see it.
async fn project(state: &AppState, actor: &Actor, project: &str) -> Option<(String, Vec<Member>)> {
    let members = state.app.members(actor, project).await.ok()?;
    let name = state
        .app
        .projects(actor)
        .await
        .ok()?
        .into_iter()
        .find(|found| found.id == project)?
        .name;
    Some((name, members))
}

/// The project's head: name, who is here (nobody yet), the link's state and
/// the project's pages, `current` marked.
fn project_head(id: &str, name: &str, current: Option<&str>) -> Markup {
    let link = |page: &str, label: &str| {
        let href = if page.is_empty() {
            format!("/projects/{id}")
        } else {
            format!("/projects/{id}/{page}")
        };
        html! { a href=(href) aria-current=[(current == Some(page)).then_some("page")] { (label) } }
    };
    html! {
        header.project-head {
            h1 { (name) }
            ul.presence aria-label="People here now" {}
            span.badge data-first-paint="connecting" { "Connecting…" }
            nav { (link("", "Board")) (link("graph", "Graph")) (link("members", "Members")) }
        }
    }
}

async fn board(state: &AppState, actor: &Actor, project_id: &str) -> Option<Markup> {
    let (name, members) = project(state, actor, project_id).await?;
    let query = TaskQuery {
        statuses: Vec::new(),
        after: 0,
        limit: APP_PAGE_SIZE,
    };
    let Conditional::Body(snapshot) = state
        .app
        .tasks(actor, project_id, &query, None, None)
        .await
        .ok()?
    else {
        return None;
    };
    let page: TaskPage = serde_json::from_slice(&snapshot.json).ok()?;
    let member_name = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| members.iter().find(|member| &member.user.id == id))
            .map(|member| member.user.name.as_str())
            .unwrap_or_default()
    };
    Some(html! {
        section.project {
            (project_head(project_id, &name, Some("")))
            div.toolbar {
                form.inline {
                    input name="new-task" placeholder="New task title";
                    button type="submit" { "Add task" }
                }
                button type="button" { "Next task" }
                button.link type="button" aria-keyshortcuts="?" { "Shortcuts" }
                div.filters {
                    select name="status" aria-label="Status" {
                        option value="" { "Any status" }
                        @for status in TaskStatus::ALL { option value=(status.as_str()) { (status.as_str()) } }
                    }
                    select name="priority" aria-label="Priority" {
                        option value="" { "Any priority" }
                        @for priority in Priority::ALL { option value=(priority.as_str()) { (priority.as_str()) } }
                    }
                    select name="assignee" aria-label="Assignee" {
                        option value="" { "Anyone" }
                        @for member in &members { option value=(member.user.id) { (member.user.name) } }
                    }
                    input name="q" type="search" placeholder="Filter by text" aria-label="Text";
                    button.link type="button" { "Column view" }
                }
            }
            p.muted { "Loading tasks…" }
            div."virtual-list"."task-list" {
                @for task in page.items.iter().take(ROWS) {
                    div.task-row {
                        span.task-id {
                            input.choose type="checkbox" aria-label={ "Select task #" (task.id) };
                            "#" (task.id)
                        }
                        a.task-title href={ "/projects/" (project_id) "/tasks/" (task.id) } { (task.title) }
                        select.status name="task-status" aria-label="Status" {
                            @for status in TaskStatus::ALL {
                                option value=(status.as_str()) selected[*status == task.status] { (status.as_str()) }
                            }
                        }
                        span class={ "priority " (task.priority.as_str()) } { (task.priority.as_str()) }
                        span.assignee { (member_name(&task.assignee_id)) }
                        span."deps".muted {
                            @if !task.dependencies.is_empty() { "needs " (task.dependencies.len()) }
                        }
                    }
                }
            }
        }
    })
}

async fn task_page(state: &AppState, actor: &Actor, project_id: &str, id: i64) -> Option<Markup> {
    let (name, members) = project(state, actor, project_id).await?;
    let task = state.app.task(actor, project_id, id, None).await.ok()?;
    Some(html! {
        section.project {
            (project_head(project_id, &name, None))
            a.back href={ "/projects/" (project_id) } { "← Board" }
            (task_form(&task, &members))
            section.card.subtasks {
                h2 { "Subtasks" }
                ul {}
                form.inline {
                    input name="subtask-title" placeholder="New subtask" required;
                    button type="submit" { "Add subtask" }
                }
            }
        }
    })
}

fn task_form(task: &Task, members: &[Member]) -> Markup {
    let text = |label: &str, name: &str, value: &str, rows: Option<u32>, shown: &str| {
        html! {
            label { (label) textarea name=(name) rows=[rows] { (value) } }
            @if !value.trim().is_empty() {
                section.markdown aria-label=(shown) { (blocks(markdown::render(value))) }
            }
        }
    };
    let assignee = task.assignee_id.as_deref().unwrap_or_default();
    html! {
        form.card.task-detail {
            h1 { "Task #" (task.id) }
            label { "Title" input name="title" required value=(task.title); }
            div.row {
                label { "Status" select name="status" {
                    @for status in TaskStatus::ALL {
                        option value=(status.as_str()) selected[*status == task.status] { (status.as_str()) }
                    }
                } }
                label { "Priority" select name="priority" {
                    @for priority in Priority::ALL {
                        option value=(priority.as_str()) selected[*priority == task.priority] { (priority.as_str()) }
                    }
                } }
                label { "Assignee" select name="assignee" {
                    option value="" selected[assignee.is_empty()] { "Nobody" }
                    @for member in members {
                        option value=(member.user.id) selected[member.user.id == assignee] { (member.user.name) }
                    }
                } }
                label { "Parent task" input name="parent" inputmode="numeric" placeholder="none"
                    value=[task.parent_id]; }
            }
            (text("Description", "description", &task.description, None, "Description as shown"))
            (text("Details", "details", &task.details, Some(5), "Details as shown"))
            (text("Test strategy", "test_strategy", &task.test_strategy, None, "Test strategy as shown"))
            fieldset.dependencies {
                legend { "Depends on" }
                ul.chips {
                    @for dependency in &task.dependencies {
                        li.chip { "#" (dependency) " "
                            button.link type="button" aria-label={ "Remove dependency " (dependency) } { "×" } }
                    }
                }
                input name="dependency-search" type="search" placeholder="Add: task number or title";
                ul.suggestions {}
            }
            div.row {
                button type="submit" { "Save" }
                button.danger type="button" { "Delete task" }
            }
        }
    }
}

// Markdown as `web/src/markdown.rs` draws it, element for element; every
// text is escaped by `maud`, and the tree holds no raw HTML to begin with.

fn blocks(blocks: Vec<Block>) -> Markup {
    html! { @for one in blocks { (block(one)) } }
}

fn block(block: Block) -> Markup {
    match block {
        Block::Paragraph(content) => html! { p { (inlines(content)) } },
        Block::Heading { level, content } => {
            let content = inlines(content);
            match level {
                1 => html! { h2 { (content) } },
                2 => html! { h3 { (content) } },
                3 => html! { h4 { (content) } },
                4 => html! { h5 { (content) } },
                _ => html! { h6 { (content) } },
            }
        }
        Block::List {
            start: Some(start),
            items,
        } => html! { ol start=(start) { (list_items(items)) } },
        Block::List { start: None, items } => html! { ul { (list_items(items)) } },
        Block::Code { language, text } => {
            html! { pre { code data-language=(language) { (text) } } }
        }
        Block::Quote(content) => html! { blockquote { (blocks(content)) } },
        Block::Rule => html! { hr; },
        Block::Note {
            added,
            blocks: content,
        } => html! {
            details.note {
                summary { "Note added " (markdown::readable_time(&added)) }
                (blocks(content))
            }
        },
    }
}

fn list_items(items: Vec<Vec<Block>>) -> Markup {
    html! { @for item in items { li { (blocks(item)) } } }
}

fn inlines(content: Vec<Inline>) -> Markup {
    html! { @for one in content { (inline(one)) } }
}

fn inline(inline: Inline) -> Markup {
    match inline {
        Inline::Text(text) => html! { (text) },
        Inline::Code(text) => html! { code { (text) } },
        Inline::Emphasis(content) => html! { em { (inlines(content)) } },
        Inline::Strong(content) => html! { strong { (inlines(content)) } },
        Inline::Strikethrough(content) => html! { s { (inlines(content)) } },
        Inline::Link { href, content } => html! {
            a href=(href) target="_blank" rel="noopener noreferrer nofollow" { (inlines(content)) }
        },
        Inline::Break => html! { br; },
        Inline::Check(done) => html! {
            input type="checkbox" disabled checked[done] aria-label=(if done { "done" } else { "not done" });
        },
    }
}

/// `index.html` with `content` in its frame (the line that starts with
/// `<div id="shell">`), marked as a first paint; `None` if the page has no
/// frame to fill.
///
/// The page's preload links for the app's code go: with something to show,
/// the page starts fetching the app once that is on screen (`index.html`),
/// rather than have the wasm share the network with the page's style sheet.
pub fn into_page(index: &str, content: Markup) -> Option<String> {
    const FRAME: &str = "<div id=\"shell\">";
    const PRELOADS: [&str; 2] = ["<link rel=\"modulepreload\"", "<link rel=\"preload\""];
    let start = index.find(FRAME)?;
    let end = start + index[start..].find('\n')?;
    let content = content.into_string();
    let mut page = String::with_capacity(index.len() + content.len() + 64);
    for line in index[..start].split_inclusive('\n') {
        if !PRELOADS.iter().any(|preload| line.starts_with(preload)) {
            page.push_str(line);
        }
    }
    page.push_str("<div id=\"shell\" class=\"first-paint\" inert>");
    page.push_str(&content);
    page.push_str("</div>");
    page.push_str(&index[end..]);
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_screens_have_a_first_paint() {
        assert_eq!(Screen::of("/signin", None), Some(Screen::SignIn));
        assert_eq!(
            Screen::of("/projects/p1", None),
            Some(Screen::Board { project: "p1" })
        );
        assert_eq!(Screen::of("/projects/p1", Some("view=columns")), None);
        assert_eq!(
            Screen::of("/projects/p1/tasks/7", None),
            Some(Screen::Task {
                project: "p1",
                task: 7
            })
        );
        assert_eq!(Screen::of("/projects/p1/tasks/x", None), None);
        assert_eq!(Screen::of("/projects/p1/tasks/0", None), None);
        assert_eq!(Screen::of("/projects/p1/graph", None), None);
        assert_eq!(Screen::of("/projects", None), None);
        assert_eq!(Screen::of("/", None), None);
    }

    #[test]
    fn task_texts_are_escaped_and_their_markdown_drawn() {
        let task = Task {
            id: 3,
            project_id: "p".into(),
            title: "\"><script>alert(1)</script>".into(),
            description: "**bold** <img src=x onerror=alert(1)>".into(),
            details: String::new(),
            test_strategy: String::new(),
            status: TaskStatus::Done,
            priority: Priority::High,
            dependencies: vec![1],
            assignee_id: None,
            parent_id: None,
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let html = task_form(&task, &[]).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains("<option value=\"done\" selected>done</option>"),
            "{html}"
        );
        assert!(
            !html.contains("Details as shown"),
            "empty texts draw no section: {html}"
        );
    }

    #[test]
    fn the_frame_is_filled_and_marked() {
        let index = "<link rel=\"stylesheet\" href=\"/assets/a/style.css\">\n\
            <link rel=\"modulepreload\" href=\"/assets/a/app.js\">\n\
            <link rel=\"preload\" href=\"/assets/a/app_bg.wasm\" as=\"fetch\">\n\
            <body>\n<div id=\"shell\"><header class=\"topbar\">x</header></div>\n<noscript></noscript>";
        let page = into_page(index, html! { p { "board" } }).unwrap();
        assert_eq!(
            page,
            "<link rel=\"stylesheet\" href=\"/assets/a/style.css\">\n\
            <body>\n<div id=\"shell\" class=\"first-paint\" inert><p>board</p></div>\n<noscript></noscript>"
        );
        assert_eq!(into_page("<body></body>", html! {}), None);
    }
}
