//! `tasks.json`: what a file holds, refused with a reason when it is not a
//! Task Master file, and planned as the tasks of one project per tag.
//!
//! The plan is a pure function of the file: the same file always gives the
//! same task ids and the same resolved dependencies. Export relies on that
//! to tell, for each task, what it looked like right after the import
//! without storing a copy of every task.

use std::collections::{HashMap, HashSet};

use protocol::{Priority, TaskStatus};

use crate::json::{self, Json, Layout, Object};
use crate::FileError;

/// Top-level ids above this are not kept (they would exhaust the project's
/// id counter); such a task gets the next free id, with a warning.
pub const MAX_KEPT_ID: u64 = 1_000_000_000;

/// A dependency list longer than this is refused, as the API refuses it.
pub const MAX_DEPENDENCIES: usize = 1_000;

/// The two shapes of `tasks.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"tasks": [...], "metadata"?: {...}}`: one tag, `master`.
    Legacy,
    /// `{"<tag>": {"tasks": [...], "metadata": {...}}, ...}`.
    Tagged,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Legacy => "legacy",
            Format::Tagged => "tagged",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "legacy" => Some(Format::Legacy),
            "tagged" => Some(Format::Tagged),
            _ => None,
        }
    }
}

/// A `tasks.json` that was accepted: the document as written, its layout,
/// and where its tags are.
#[derive(Debug, Clone)]
pub struct TasksFile {
    pub(crate) root: Object,
    pub(crate) layout: Layout,
    pub(crate) format: Format,
    /// Tag names in document order (`master` for a legacy file).
    pub(crate) tags: Vec<String>,
}

/// Where a task sits in its tag's `tasks` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub task: usize,
    pub subtask: Option<usize>,
}

/// One task or subtask of the file, as it becomes a task of the project.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    pub position: Position,
    /// Its id in the project.
    pub id: i64,
    /// The id in the project of its parent, for a subtask.
    pub parent_id: Option<i64>,
    pub title: String,
    pub description: String,
    pub details: String,
    pub test_strategy: String,
    pub status: TaskStatus,
    pub priority: Priority,
    /// Resolved to ids in the project, in file order, without the entries
    /// that name nothing here (those stay in the file, see `warnings`).
    pub dependencies: Vec<i64>,
}

/// One tag of the file, planned as one project.
#[derive(Debug, Clone, PartialEq)]
pub struct TagPlan {
    pub tag: String,
    /// Parents before their subtasks; top-level tasks in file order.
    pub tasks: Vec<PlannedTask>,
    /// The largest id handed out (the project's id counter starts after it).
    pub last_id: i64,
    /// What was kept in the file but could not be modelled, and why.
    pub warnings: Vec<String>,
}

impl TagPlan {
    /// The tasks a project of `project_id` holds right after importing
    /// this plan (version 1, no timestamps): what an export right after the
    /// import starts from.
    pub fn as_tasks(&self, project_id: &str) -> Vec<protocol::Task> {
        self.tasks
            .iter()
            .map(|planned| protocol::Task {
                id: planned.id,
                project_id: project_id.to_owned(),
                title: planned.title.clone(),
                description: planned.description.clone(),
                details: planned.details.clone(),
                test_strategy: planned.test_strategy.clone(),
                status: planned.status,
                priority: planned.priority,
                dependencies: planned.dependencies.clone(),
                assignee_id: None,
                parent_id: planned.parent_id,
                version: 1,
                created_at: String::new(),
                updated_at: String::new(),
            })
            .collect()
    }
}

impl TasksFile {
    /// Accepts `bytes` if they are a Task Master `tasks.json`; otherwise
    /// says what they are instead.
    pub fn parse(bytes: &[u8]) -> Result<TasksFile, FileError> {
        let text = std::str::from_utf8(bytes).map_err(|error| {
            FileError::malformed(format!("the file is not UTF-8 text: {error}"))
        })?;
        if let Some(line) = conflict_marker(text) {
            return Err(FileError::malformed(format!(
                "the file has a git conflict marker on line {line}: resolve the merge, then import it"
            )));
        }
        let root = json::parse(text.trim_start_matches('\u{feff}')).map_err(|error| {
            let message = if error.to_string().starts_with("trailing characters") {
                format!(
                    "the file holds more than one JSON document (the first ends before line {}, column {})",
                    error.line(),
                    error.column()
                )
            } else {
                format!("the file is not JSON: {error}")
            };
            FileError::malformed(message)
        })?;
        let root = match root {
            Json::Object(object) => object,
            Json::Array(_) => {
                return Err(FileError::invalid(
                    "a tasks.json is an object (`{\"tasks\": [...]}` or `{\"<tag>\": {\"tasks\": [...]}}`), not an array",
                ))
            }
            other => {
                return Err(FileError::invalid(format!(
                    "a tasks.json is an object, not {}",
                    other.kind()
                )))
            }
        };
        let (format, tags) = tags_of(&root)?;
        let file = TasksFile {
            layout: Layout::of(text),
            root,
            format,
            tags,
        };
        for index in 0..file.tags.len() {
            check_tasks(file.tag_name(index), file.tasks_of(index))?;
        }
        Ok(file)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    pub fn tag_name(&self, index: usize) -> &str {
        &self.tags[index]
    }

    /// The tag's object (`{"tasks", "metadata"}`; the root of a legacy file).
    pub(crate) fn tag_object(&self, index: usize) -> &Object {
        match self.format {
            Format::Legacy => &self.root,
            Format::Tagged => self
                .root
                .get(&self.tags[index])
                .and_then(Json::as_object)
                .expect("tags were found in the root"),
        }
    }

    pub(crate) fn tasks_of(&self, index: usize) -> &[Json] {
        self.tag_object(index)
            .get("tasks")
            .and_then(Json::as_array)
            .expect("every tag holds a tasks array")
    }

    /// The tasks of tag `index` as tasks of a project.
    pub fn plan(&self, index: usize) -> TagPlan {
        plan_tag(self.tag_name(index), self.tasks_of(index))
    }

    /// Every tag, in file order.
    pub fn plans(&self) -> Vec<TagPlan> {
        (0..self.tags.len()).map(|index| self.plan(index)).collect()
    }

    /// Tasks and subtasks in the whole file.
    pub fn task_count(&self) -> usize {
        (0..self.tags.len())
            .map(|index| {
                self.tasks_of(index)
                    .iter()
                    .map(|task| 1 + subtasks_of(task).len())
                    .sum::<usize>()
            })
            .sum()
    }
}

/// The first line that is a git conflict marker, if any.
fn conflict_marker(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.starts_with("<<<<<<< ")
                || line == "<<<<<<<"
                || line.starts_with(">>>>>>> ")
                || line == "======="
        })
        .map(|index| index + 1)
}

/// The file's format and its tags, or why it has none.
fn tags_of(root: &Object) -> Result<(Format, Vec<String>), FileError> {
    if let Some(tasks) = root.get("tasks") {
        if tasks.as_array().is_none() {
            return Err(FileError::invalid(format!(
                "`tasks` must be an array of tasks, not {}",
                tasks.kind()
            )));
        }
        return Ok((Format::Legacy, vec!["master".to_owned()]));
    }
    let mut tags = Vec::new();
    for (name, value) in root.iter() {
        let Some(tag) = value.as_object() else {
            continue;
        };
        match tag.get("tasks") {
            Some(Json::Array(_)) => tags.push(name.to_owned()),
            Some(other) => {
                return Err(FileError::invalid(format!(
                    "tag `{name}`: `tasks` must be an array of tasks, not {}",
                    other.kind()
                )))
            }
            None => {}
        }
    }
    if tags.is_empty() {
        return Err(FileError::invalid(
            "not a Task Master tasks.json: no `tasks` array at the top level and no tag holding one",
        ));
    }
    Ok((Format::Tagged, tags))
}

fn subtasks_of(task: &Json) -> &[Json] {
    task.as_object()
        .and_then(|task| task.get("subtasks"))
        .and_then(Json::as_array)
        .unwrap_or(&[])
}

/// Every task and subtask is an object with an id and a title, and the
/// fields the server models have types it can read.
fn check_tasks(tag: &str, tasks: &[Json]) -> Result<(), FileError> {
    if let Some(first) = tasks.first().and_then(Json::as_object) {
        // Visual Studio Code keeps `{"version": "2.0.0", "tasks": [{"label", "command"}]}`
        // in `.vscode/tasks.json`.
        if (first.contains_key("label") || first.contains_key("command"))
            && !first.contains_key("title")
        {
            return Err(FileError::invalid(
                "this looks like a Visual Studio Code tasks.json (tasks with `label` and `command`), not Task Master's",
            ));
        }
    }
    for (index, task) in tasks.iter().enumerate() {
        let place = format!("tag `{tag}`, tasks[{index}]");
        let object = check_task(&place, task, false)?;
        match object.get("subtasks") {
            None | Some(Json::Null) => {}
            Some(Json::Array(subtasks)) => {
                for (sub_index, subtask) in subtasks.iter().enumerate() {
                    check_task(&format!("{place}.subtasks[{sub_index}]"), subtask, true)?;
                }
            }
            Some(other) => {
                return Err(FileError::invalid(format!(
                    "{place}: `subtasks` must be an array, not {}",
                    other.kind()
                )))
            }
        }
    }
    Ok(())
}

fn check_task<'a>(place: &str, task: &'a Json, subtask: bool) -> Result<&'a Object, FileError> {
    let object = task.as_object().ok_or_else(|| {
        FileError::invalid(format!(
            "{place}: a task must be an object, not {}",
            task.kind()
        ))
    })?;
    match object.get("id") {
        None | Some(Json::Null) => {
            return Err(FileError::invalid(format!("{place}: the task has no `id`")))
        }
        Some(id) if source_number(id, subtask).is_none() => {
            return Err(FileError::invalid(format!(
                "{place}: `id` must be a positive integer or a string of one, not {}",
                describe(id)
            )))
        }
        Some(_) => {}
    }
    match object.get("title") {
        Some(Json::String(title)) if !title.trim().is_empty() => {}
        Some(Json::String(_)) => {
            return Err(FileError::invalid(format!(
                "{place}: the task's `title` is empty"
            )))
        }
        Some(other) => {
            return Err(FileError::invalid(format!(
                "{place}: `title` must be a string, not {}",
                other.kind()
            )))
        }
        None => {
            return Err(FileError::invalid(format!(
                "{place}: the task has no `title`"
            )))
        }
    }
    for field in [
        "description",
        "details",
        "testStrategy",
        "status",
        "priority",
    ] {
        match object.get(field) {
            None | Some(Json::Null) | Some(Json::String(_)) => {}
            Some(other) => {
                return Err(FileError::invalid(format!(
                    "{place}: `{field}` must be a string, not {}",
                    other.kind()
                )))
            }
        }
    }
    match object.get("dependencies") {
        None | Some(Json::Null) => {}
        Some(Json::Array(items)) if items.len() <= MAX_DEPENDENCIES => {}
        Some(Json::Array(_)) => {
            return Err(FileError::invalid(format!(
                "{place}: more than {MAX_DEPENDENCIES} dependencies"
            )))
        }
        Some(other) => {
            return Err(FileError::invalid(format!(
                "{place}: `dependencies` must be an array, not {}",
                other.kind()
            )))
        }
    }
    Ok(object)
}

/// A short rendering of a value for messages.
fn describe(value: &Json) -> String {
    match value {
        Json::String(text) => {
            let shown: String = text.chars().take(40).collect();
            format!("\"{shown}\"")
        }
        Json::Number(_) => json::print(
            value,
            &Layout {
                indent: None,
                trailing: String::new(),
                bom: false,
            },
        ),
        other => other.kind().to_owned(),
    }
}

/// The number an id or a dependency entry names: `7` or `"7"`; for a
/// subtask's own id also `"3.7"` (its parent's id, then its own).
pub(crate) fn source_number(value: &Json, subtask: bool) -> Option<u64> {
    match value {
        Json::Number(number) => number.as_u64().filter(|id| *id > 0),
        Json::String(text) => {
            let text = text.trim();
            let text = match (subtask, text.split_once('.')) {
                (true, Some((_, own))) => own,
                _ => text,
            };
            parse_positive(text)
        }
        _ => None,
    }
}

fn parse_positive(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|id| *id > 0)
}

/// What a dependency entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A bare number: a task (of a top-level task) or a sibling subtask
    /// first, then a task (of a subtask).
    Number(u64),
    /// `"P.S"`: subtask S of task P.
    Subtask(u64, u64),
}

pub(crate) fn reference(value: &Json) -> Option<Reference> {
    match value {
        Json::Number(number) => number.as_u64().filter(|id| *id > 0).map(Reference::Number),
        Json::String(text) => {
            let text = text.trim();
            match text.split_once('.') {
                Some((parent, own)) => Some(Reference::Subtask(
                    parse_positive(parent)?,
                    parse_positive(own)?,
                )),
                None => parse_positive(text).map(Reference::Number),
            }
        }
        _ => None,
    }
}

/// A status as the server models it, from whatever the file says.
///
/// Task Master's own words map to themselves; the others real files carry
/// map by meaning (`completed`/`complete`/`finished` are done, `in_progress`
/// and `active` are in progress, `todo`/`open`/`new` and no status are
/// pending, `deprecated`/`canceled`/`wontfix` are cancelled, `on-hold` is
/// deferred); anything else is pending. The file's word is what export
/// writes back for as long as the status is not changed.
pub fn status_of(value: Option<&str>) -> (TaskStatus, bool) {
    let Some(word) = value else {
        return (TaskStatus::Pending, true);
    };
    if let Ok(status) = word.parse::<TaskStatus>() {
        return (status, true);
    }
    let normalised = word.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    let status = match normalised.as_str() {
        "pending" | "todo" | "to-do" | "open" | "new" | "not-started" | "" => TaskStatus::Pending,
        "in-progress" | "inprogress" | "active" | "started" | "doing" | "wip" => {
            TaskStatus::InProgress
        }
        "done" | "completed" | "complete" | "finished" | "closed" | "resolved" => TaskStatus::Done,
        "review" | "in-review" => TaskStatus::Review,
        "deferred" | "on-hold" | "postponed" | "later" => TaskStatus::Deferred,
        "cancelled" | "canceled" | "deprecated" | "wontfix" | "won't-fix" | "obsolete" => {
            TaskStatus::Cancelled
        }
        "blocked" => TaskStatus::Blocked,
        _ => return (TaskStatus::Pending, false),
    };
    (status, true)
}

/// A priority as the server models it; `medium` when absent or unknown.
pub fn priority_of(value: Option<&str>) -> (Priority, bool) {
    let Some(word) = value else {
        return (Priority::Medium, true);
    };
    match word.trim().to_ascii_lowercase().as_str() {
        "critical" | "urgent" | "highest" => (Priority::Critical, true),
        "high" => (Priority::High, true),
        "medium" | "normal" | "" => (Priority::Medium, true),
        "low" | "lowest" => (Priority::Low, true),
        _ => (Priority::Medium, false),
    }
}

/// The text of a string field; absent and null read as empty.
pub(crate) fn text_of<'a>(task: &'a Object, field: &str) -> &'a str {
    task.get(field).and_then(Json::as_str).unwrap_or("")
}

/// The fields of a task that the server models, as they read from the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fields {
    pub title: String,
    pub description: String,
    pub details: String,
    pub test_strategy: String,
    pub status: TaskStatus,
    pub priority: Priority,
}

pub(crate) fn fields_of(task: &Object) -> Fields {
    Fields {
        // Titles are stored trimmed, as the API stores them.
        title: text_of(task, "title").trim().to_owned(),
        description: text_of(task, "description").to_owned(),
        details: text_of(task, "details").to_owned(),
        test_strategy: text_of(task, "testStrategy").to_owned(),
        status: status_of(task.get("status").and_then(Json::as_str)).0,
        priority: priority_of(task.get("priority").and_then(Json::as_str)).0,
    }
}

fn dependencies_of(task: &Object) -> &[Json] {
    task.get("dependencies")
        .and_then(Json::as_array)
        .unwrap_or(&[])
}

/// How a tag's tasks were numbered in the project.
#[derive(Debug, Default)]
pub(crate) struct Numbering {
    /// Project id of each position.
    pub ids: HashMap<Position, i64>,
    /// Position of each project id.
    pub positions: HashMap<i64, Position>,
    /// Top-level tasks by the number their id names (first one wins).
    pub by_number: HashMap<u64, usize>,
    /// For each top-level task, its subtasks by the number their id names.
    pub sub_by_number: Vec<HashMap<u64, usize>>,
    pub last_id: i64,
}

/// Numbers the tasks of a tag: top-level tasks keep the number their id
/// names when it is free (so task 15 of the file is task 15 of the
/// project); repeated or oversized ids, then all subtasks, take the next
/// numbers after the largest, in file order.
pub(crate) fn number(tasks: &[Json], warnings: Option<&mut Vec<String>>) -> Numbering {
    let mut numbering = Numbering::default();
    let mut later = Vec::new();
    let mut notes = Vec::new();
    for (index, task) in tasks.iter().enumerate() {
        let object = task.as_object().expect("checked");
        let number = object
            .get("id")
            .and_then(|id| source_number(id, false))
            .expect("checked");
        let position = Position {
            task: index,
            subtask: None,
        };
        if number <= MAX_KEPT_ID && !numbering.by_number.contains_key(&number) {
            numbering.by_number.insert(number, index);
            numbering.ids.insert(position, number as i64);
            numbering.positions.insert(number as i64, position);
        } else {
            later.push((position, number));
        }
        let mut subs = HashMap::new();
        for (sub_index, subtask) in subtasks_of(task).iter().enumerate() {
            let sub_number = subtask
                .as_object()
                .and_then(|subtask| subtask.get("id"))
                .and_then(|id| source_number(id, true))
                .expect("checked");
            subs.entry(sub_number).or_insert(sub_index);
        }
        numbering.sub_by_number.push(subs);
    }
    let mut next = numbering.positions.keys().copied().max().unwrap_or(0);
    for (position, number) in later {
        next += 1;
        notes.push(format!(
            "tasks[{}]: id {number} is {}, so it is task {next} here (the file keeps {number})",
            position.task,
            if number > MAX_KEPT_ID {
                "too large to keep"
            } else {
                "used by an earlier task"
            }
        ));
        numbering.ids.insert(position, next);
        numbering.positions.insert(next, position);
    }
    for (index, task) in tasks.iter().enumerate() {
        for sub_index in 0..subtasks_of(task).len() {
            next += 1;
            let position = Position {
                task: index,
                subtask: Some(sub_index),
            };
            numbering.ids.insert(position, next);
            numbering.positions.insert(next, position);
        }
    }
    numbering.last_id = next;
    if let Some(warnings) = warnings {
        warnings.extend(notes);
    }
    numbering
}

impl Numbering {
    /// The project id a dependency entry of the task at `from` names.
    pub(crate) fn resolve(&self, from: Position, entry: &Json) -> Option<i64> {
        let top_level = |number: u64| {
            self.by_number.get(&number).map(|index| Position {
                task: *index,
                subtask: None,
            })
        };
        let position = match reference(entry)? {
            Reference::Number(number) => match from.subtask {
                // A subtask's bare number names a sibling first.
                Some(_) => self.sub_by_number[from.task]
                    .get(&number)
                    .map(|sub| Position {
                        task: from.task,
                        subtask: Some(*sub),
                    })
                    .or_else(|| top_level(number)),
                None => top_level(number),
            }?,
            Reference::Subtask(parent, own) => {
                let parent = *self.by_number.get(&parent)?;
                let sub = *self.sub_by_number[parent].get(&own)?;
                Position {
                    task: parent,
                    subtask: Some(sub),
                }
            }
        };
        self.ids.get(&position).copied()
    }
}

/// The dependency edges the plan keeps: resolved, not repeated, not onto
/// the task itself, and none that would close a cycle (added in file
/// order, so the edge that closes a cycle is the one left out).
pub(crate) fn resolve_all(
    tasks: &[Json],
    numbering: &Numbering,
    tag: &str,
    warnings: &mut Vec<String>,
) -> HashMap<i64, Vec<i64>> {
    let mut edges: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut each = |position: Position, task: &Object, place: String| {
        let id = numbering.ids[&position];
        let mut seen = HashSet::new();
        let mut kept = Vec::new();
        for entry in dependencies_of(task) {
            let shown = describe(entry);
            match numbering.resolve(position, entry) {
                None => warnings.push(format!(
                    "{place}: dependency {shown} names no task of tag `{tag}`; it is kept in the file"
                )),
                Some(target) if target == id => warnings.push(format!(
                    "{place}: dependency {shown} is the task itself; it is kept in the file"
                )),
                Some(target) if !seen.insert(target) => {}
                Some(target) => kept.push((target, shown)),
            }
        }
        (id, kept, place)
    };
    let mut all = Vec::new();
    for (index, task) in tasks.iter().enumerate() {
        let object = task.as_object().expect("checked");
        let position = Position {
            task: index,
            subtask: None,
        };
        all.push(each(position, object, format!("tasks[{index}]")));
        for (sub_index, subtask) in subtasks_of(task).iter().enumerate() {
            let position = Position {
                task: index,
                subtask: Some(sub_index),
            };
            let object = subtask.as_object().expect("checked");
            all.push(each(
                position,
                object,
                format!("tasks[{index}].subtasks[{sub_index}]"),
            ));
        }
    }
    for (id, kept, place) in all {
        let mut list = Vec::with_capacity(kept.len());
        for (target, shown) in kept {
            if reaches(&edges, target, id) {
                warnings.push(format!(
                    "{place}: dependency {shown} would close a dependency cycle; it is kept in the file"
                ));
            } else {
                list.push(target);
                edges.entry(id).or_default().push(target);
            }
        }
        edges.entry(id).or_insert(list);
    }
    edges
}

/// Whether `to` can be reached from `from` along `edges`.
fn reaches(edges: &HashMap<i64, Vec<i64>>, from: i64, to: i64) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node) {
            if let Some(next) = edges.get(&node) {
                stack.extend(next.iter().copied());
            }
        }
    }
    false
}

fn plan_tag(tag: &str, tasks: &[Json]) -> TagPlan {
    let mut warnings = Vec::new();
    let numbering = number(tasks, Some(&mut warnings));
    let edges = resolve_all(tasks, &numbering, tag, &mut warnings);
    let mut planned = Vec::new();
    let mut plan = |position: Position,
                    object: &Object,
                    parent_id: Option<i64>,
                    place: String,
                    warnings: &mut Vec<String>| {
        let id = numbering.ids[&position];
        let fields = fields_of(object);
        let status_word = object.get("status").and_then(Json::as_str);
        if !status_of(status_word).1 {
            warnings.push(format!(
                "{place}: status \"{}\" is not one Task Master or this server knows; it shows as pending and the file keeps it",
                status_word.unwrap_or_default()
            ));
        }
        let priority_word = object.get("priority").and_then(Json::as_str);
        if !priority_of(priority_word).1 {
            warnings.push(format!(
                "{place}: priority \"{}\" is unknown; it shows as medium and the file keeps it",
                priority_word.unwrap_or_default()
            ));
        }
        planned.push(PlannedTask {
            position,
            id,
            parent_id,
            title: fields.title,
            description: fields.description,
            details: fields.details,
            test_strategy: fields.test_strategy,
            status: fields.status,
            priority: fields.priority,
            dependencies: edges.get(&id).cloned().unwrap_or_default(),
        });
        id
    };
    for (index, task) in tasks.iter().enumerate() {
        let object = task.as_object().expect("checked");
        let position = Position {
            task: index,
            subtask: None,
        };
        let parent = plan(
            position,
            object,
            None,
            format!("tasks[{index}]"),
            &mut warnings,
        );
        for (sub_index, subtask) in subtasks_of(task).iter().enumerate() {
            let object = subtask.as_object().expect("checked");
            let place = format!("tasks[{index}].subtasks[{sub_index}]");
            if !subtasks_of(subtask).is_empty() {
                warnings.push(format!(
                    "{place}: its own subtasks are kept in the file; the board shows one level"
                ));
            }
            let position = Position {
                task: index,
                subtask: Some(sub_index),
            };
            plan(position, object, Some(parent), place, &mut warnings);
        }
    }
    TagPlan {
        tag: tag.to_owned(),
        tasks: planned,
        last_id: numbering.last_id,
        warnings: warnings
            .into_iter()
            .map(|warning| format!("tag `{tag}`, {warning}"))
            .collect(),
    }
}
