//! `tasks.json` rebuilt from the live state of a project.
//!
//! Each task that came from the file starts from its object in the file, as
//! it was; only what changed since the import is written over it, as Task
//! Master writes it. So right after an import the export is the file again,
//! and later edits show up as a clean `git diff`. Tasks added since come
//! last, shaped as `task-master add-task` shapes them.

use std::collections::{HashMap, HashSet};

use protocol::Task;

use crate::json::{self, Json, Layout, Object};
use crate::tasks_json::{
    fields_of, number, resolve_all, source_number, Fields, Format, Numbering, Position, TasksFile,
};

/// A project's tasks as an export reads them.
pub trait ProjectState {
    fn tasks(&self) -> &[Task];
    /// Dependency entries of task `id` that named no task when it was
    /// added from a task file, as the file wrote them (`12`, `12.3`): the
    /// export keeps them, as it keeps a `tasks.json`'s.
    fn kept_dependencies(&self, _id: i64) -> &[String] {
        &[]
    }
}

impl ProjectState for [Task] {
    fn tasks(&self) -> &[Task] {
        self
    }
}

impl ProjectState for Vec<Task> {
    fn tasks(&self) -> &[Task] {
        self
    }
}

/// Tasks with the dependency entries kept from the task files they came
/// from (task id → entries).
#[derive(Debug, Clone, Default)]
pub struct TasksWithKept {
    pub tasks: Vec<Task>,
    pub kept: HashMap<i64, Vec<String>>,
}

impl ProjectState for TasksWithKept {
    fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    fn kept_dependencies(&self, id: i64) -> &[String] {
        self.kept.get(&id).map_or(&[], Vec::as_slice)
    }
}

/// What a task's dependency entries point at, for rendering them.
#[derive(Debug, Clone, Copy)]
enum Label {
    /// A top-level task with this number.
    Task(u64),
    /// Subtask `sub` of the task numbered `parent`.
    Subtask { parent: u64, sub: u64 },
}

/// The file, rebuilt from `projects`: the current tasks of each tag's
/// project, in tag order (`None` for a project that no longer exists,
/// whose tag is left out).
pub fn export<P: ProjectState>(file: &TasksFile, projects: &[Option<P>]) -> String {
    let mut root = file.root.clone();
    for (index, tasks) in projects.iter().enumerate().take(file.tags.len()) {
        match (file.format, tasks) {
            (Format::Legacy, Some(tasks)) => {
                root.insert("tasks", Json::Array(rebuild(file.tasks_of(index), tasks)));
            }
            (Format::Legacy, None) => root.insert("tasks", Json::Array(Vec::new())),
            (Format::Tagged, Some(tasks)) => {
                let mut tag = file.tag_object(index).clone();
                tag.insert("tasks", Json::Array(rebuild(file.tasks_of(index), tasks)));
                root.insert(&file.tags[index], Json::Object(tag));
            }
            (Format::Tagged, None) => {
                root.remove(&file.tags[index]);
            }
        }
    }
    json::print(&Json::Object(root), &file.layout)
}

/// One tag of the file as a legacy document (`{"tasks", "metadata"?}`).
pub fn export_tag<P: ProjectState + ?Sized>(file: &TasksFile, index: usize, tasks: &P) -> String {
    let mut document = Object::new();
    document.insert("tasks", Json::Array(rebuild(file.tasks_of(index), tasks)));
    if let Some(metadata) = file.tag_object(index).get("metadata") {
        document.insert("metadata", metadata.clone());
    }
    json::print(&Json::Object(document), &file.layout)
}

/// A project that did not come from a file, as Task Master would write it.
pub fn export_new<P: ProjectState + ?Sized>(tasks: &P) -> String {
    let mut document = Object::new();
    document.insert("tasks", Json::Array(rebuild(&[], tasks)));
    json::print(&Json::Object(document), &Layout::default())
}

/// The `tasks` array for the current `tasks`, starting from `source`.
fn rebuild<P: ProjectState + ?Sized>(source: &[Json], state: &P) -> Vec<Json> {
    let tasks = state.tasks();
    let kept: HashMap<i64, &[String]> = tasks
        .iter()
        .map(|task| (task.id, state.kept_dependencies(task.id)))
        .filter(|(_, entries)| !entries.is_empty())
        .collect();
    let numbering = number(source, None);
    let imported_edges = resolve_all(source, &numbering, "", &mut Vec::new());
    let by_id: HashMap<i64, &Task> = tasks.iter().map(|task| (task.id, task)).collect();

    // Top-level tasks: those still where the file had them, in file order,
    // then the others in id order.
    let in_place = |task: &Task| -> Option<Position> {
        let position = *numbering.positions.get(&task.id)?;
        match (position.subtask, task.parent_id) {
            (None, None) => Some(position),
            (Some(_), Some(parent)) => {
                let parent_position = numbering.positions.get(&parent)?;
                (parent_position.subtask.is_none() && parent_position.task == position.task)
                    .then_some(position)
            }
            _ => None,
        }
    };
    let mut top: Vec<&Task> = tasks
        .iter()
        .filter(|task| task.parent_id.is_none())
        .collect();
    top.sort_by_key(|task| match in_place(task) {
        Some(position) => (0, position.task as i64),
        None => (1, task.id),
    });
    let mut children: HashMap<i64, Vec<&Task>> = HashMap::new();
    for task in tasks {
        if let Some(parent) = task.parent_id {
            children.entry(parent).or_default().push(task);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|task| match in_place(task) {
            Some(position) => (0, position.subtask.unwrap_or(0) as i64),
            None => (1, task.id),
        });
    }

    // The label each task has in the file: its own id where it has one,
    // else its id here (top level) or the next free subtask number.
    let mut labels: HashMap<i64, Label> = HashMap::new();
    let mut id_json: HashMap<i64, Json> = HashMap::new();
    for task in &top {
        let number = match in_place(task) {
            Some(position) => {
                let id = source_object(source, position).get("id").expect("checked");
                id_json.insert(task.id, id.clone());
                source_number(id, false).expect("checked")
            }
            None => {
                id_json.insert(task.id, Json::unsigned(task.id as u64));
                task.id as u64
            }
        };
        labels.insert(task.id, Label::Task(number));
        let Some(subtasks) = children.get(&task.id) else {
            continue;
        };
        let mut used: HashSet<u64> = HashSet::new();
        for subtask in subtasks {
            if let Some(position) = in_place(subtask) {
                let id = source_object(source, position).get("id").expect("checked");
                used.insert(source_number(id, true).expect("checked"));
            }
        }
        let mut next = used.iter().copied().max().unwrap_or(0);
        for subtask in subtasks {
            let sub = match in_place(subtask) {
                Some(position) => {
                    let id = source_object(source, position).get("id").expect("checked");
                    id_json.insert(subtask.id, id.clone());
                    source_number(id, true).expect("checked")
                }
                None => {
                    next += 1;
                    id_json.insert(subtask.id, Json::unsigned(next));
                    next
                }
            };
            labels.insert(
                subtask.id,
                Label::Subtask {
                    parent: number,
                    sub,
                },
            );
        }
    }

    let context = Context {
        source,
        numbering: &numbering,
        imported_edges: &imported_edges,
        labels: &labels,
        id_json: &id_json,
        by_id: &by_id,
        kept: &kept,
    };
    top.iter()
        .map(|task| {
            let subtasks: Vec<Json> = children
                .get(&task.id)
                .map(|subtasks| {
                    subtasks
                        .iter()
                        .map(|subtask| context.object(subtask, in_place(subtask), Vec::new()))
                        .collect()
                })
                .unwrap_or_default();
            context.object(task, in_place(task), subtasks)
        })
        .collect()
}

fn source_object(source: &[Json], position: Position) -> &Object {
    let task = source[position.task].as_object().expect("checked");
    match position.subtask {
        None => task,
        Some(sub) => task
            .get("subtasks")
            .and_then(Json::as_array)
            .and_then(|subtasks| subtasks[sub].as_object())
            .expect("checked"),
    }
}

struct Context<'a> {
    source: &'a [Json],
    numbering: &'a Numbering,
    imported_edges: &'a HashMap<i64, Vec<i64>>,
    labels: &'a HashMap<i64, Label>,
    id_json: &'a HashMap<i64, Json>,
    by_id: &'a HashMap<i64, &'a Task>,
    kept: &'a HashMap<i64, &'a [String]>,
}

impl Context<'_> {
    /// The file's object for `task`: its source object with what changed
    /// written over it, or a new one.
    fn object(&self, task: &Task, position: Option<Position>, subtasks: Vec<Json>) -> Json {
        let subtask = task.parent_id.is_some();
        let mut object = match position {
            Some(position) => {
                let source = source_object(self.source, position);
                let mut object = source.clone();
                self.overlay(&mut object, &fields_of(source), task);
                self.overlay_dependencies(&mut object, position, task);
                object
            }
            None => self.fresh(task),
        };
        // A `"subtasks": null` (or none at all) stays as it was while there
        // are none.
        let had_list = matches!(object.get("subtasks"), Some(Json::Array(_)));
        if !subtask && (!subtasks.is_empty() || had_list) {
            object.insert("subtasks", Json::Array(subtasks));
        }
        Json::Object(object)
    }

    /// Writes the fields that differ from what the file said.
    fn overlay(&self, object: &mut Object, imported: &Fields, task: &Task) {
        if task.title != imported.title {
            object.insert("title", Json::string(&task.title));
        }
        for (key, now, then) in [
            ("description", &task.description, &imported.description),
            ("details", &task.details, &imported.details),
            ("testStrategy", &task.test_strategy, &imported.test_strategy),
        ] {
            if now != then {
                object.insert(key, Json::string(now.as_str()));
            }
        }
        if task.status != imported.status {
            object.insert("status", Json::string(task.status.as_str()));
        }
        if task.priority != imported.priority {
            object.insert("priority", Json::string(task.priority.as_str()));
        }
    }

    /// Keeps the file's list while the task depends on the same tasks;
    /// otherwise keeps the entries still meant (and those naming nothing
    /// here) as written, and adds the new ones in Task Master's notation.
    fn overlay_dependencies(&self, object: &mut Object, position: Position, task: &Task) {
        let id = self.numbering.ids[&position];
        let imported: HashSet<i64> = self
            .imported_edges
            .get(&id)
            .map(|edges| edges.iter().copied().collect())
            .unwrap_or_default();
        let now: HashSet<i64> = task.dependencies.iter().copied().collect();
        if imported == now {
            return;
        }
        let entries = object
            .get("dependencies")
            .and_then(Json::as_array)
            .unwrap_or(&[]);
        let mut written = HashSet::new();
        let mut list = Vec::new();
        for entry in entries {
            match self.numbering.resolve(position, entry) {
                // Modelled when it was: keep it while it still holds.
                Some(target) if imported.contains(&target) && !written.contains(&target) => {
                    if now.contains(&target) {
                        written.insert(target);
                        list.push(entry.clone());
                    }
                }
                // Never modelled (names nothing here, or was left out):
                // the file keeps it.
                _ => list.push(entry.clone()),
            }
        }
        for target in &task.dependencies {
            if written.insert(*target) {
                list.push(self.reference(task, *target));
            }
        }
        object.insert("dependencies", Json::Array(list));
    }

    /// `target` as a dependency entry of `task`, in Task Master's notation:
    /// a number for a task (and for a sibling, from a subtask), `"P.S"` for
    /// a subtask.
    fn reference(&self, task: &Task, target: i64) -> Json {
        let own_parent = task
            .parent_id
            .and_then(|parent| self.labels.get(&parent))
            .and_then(|label| match label {
                Label::Task(number) => Some(*number),
                Label::Subtask { .. } => None,
            });
        match self.labels.get(&target) {
            Some(Label::Task(number)) => Json::unsigned(*number),
            Some(Label::Subtask { parent, sub }) if Some(*parent) == own_parent => {
                Json::unsigned(*sub)
            }
            Some(Label::Subtask { parent, sub }) => Json::string(format!("{parent}.{sub}")),
            // Not in the export (cannot happen: dependencies name tasks of
            // the project); its id is the best there is.
            None => Json::unsigned(self.by_id.get(&target).map_or(target, |task| task.id) as u64),
        }
    }

    /// A task the file did not have, shaped as `task-master add-task`
    /// (or `add-subtask`) writes one.
    fn fresh(&self, task: &Task) -> Object {
        let mut object = Object::new();
        object.insert(
            "id",
            self.id_json
                .get(&task.id)
                .cloned()
                .unwrap_or_else(|| Json::unsigned(task.id as u64)),
        );
        object.insert("title", Json::string(&task.title));
        object.insert("description", Json::string(&task.description));
        object.insert("details", Json::string(&task.details));
        if task.parent_id.is_none() || !task.test_strategy.is_empty() {
            object.insert("testStrategy", Json::string(&task.test_strategy));
        }
        object.insert("status", Json::string(task.status.as_str()));
        let kept = self.kept.get(&task.id).copied().unwrap_or_default();
        let dependencies = task
            .dependencies
            .iter()
            .map(|target| self.reference(task, *target))
            .chain(kept.iter().map(|entry| match entry.parse::<u64>() {
                Ok(number) => Json::unsigned(number),
                Err(_) => Json::string(entry.as_str()),
            }))
            .collect();
        object.insert("dependencies", Json::Array(dependencies));
        if task.parent_id.is_none() {
            object.insert("priority", Json::string(task.priority.as_str()));
            object.insert("subtasks", Json::Array(Vec::new()));
        } else if task.priority != protocol::Priority::Medium {
            object.insert("priority", Json::string(task.priority.as_str()));
        }
        object
    }
}

/// The task files `task-master generate` would write for the project:
/// `(file name, text)`, one per top-level task, from the same rebuilt
/// tasks the export holds (`source`: the tag it came from, if any).
pub fn task_files<P: ProjectState + ?Sized>(
    source: Option<(&TasksFile, usize)>,
    tasks: &P,
    extension: &str,
) -> Vec<(String, String)> {
    let source_tasks = source
        .map(|(file, index)| file.tasks_of(index))
        .unwrap_or(&[]);
    let mut names = HashSet::new();
    rebuild(source_tasks, tasks)
        .iter()
        .map(|task| {
            let (name, text) = crate::task_file::generate(task, extension);
            // Two tasks with one number (a file with a repeated id) get
            // two files.
            let mut unique = name.clone();
            let mut copy = 1;
            while !names.insert(unique.clone()) {
                copy += 1;
                unique = name.replacen('.', &format!("-{copy}."), 1);
            }
            (unique, text)
        })
        .collect()
}
