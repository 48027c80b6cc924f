//! Task Master files in and out: `tasks.json` imports (one project per
//! tag) and their exports, a project's own `tasks.json`, and single task
//! files added to a project.

use protocol::{ImportResponse, ImportedProject};
use taskmaster_files::{FileError, FileErrorKind, Position, TagPlan, TasksFile, TasksWithKept};
use uuid::Uuid;

use super::{Actor, App, Need};
use crate::db;
use crate::domain::task as rules;
use crate::error::{Error, Result};

/// Tags of one file, at most (each becomes a project).
pub const MAX_IMPORT_TAGS: usize = 100;
/// Tasks and subtasks of one file, at most.
pub const MAX_IMPORT_TASKS: usize = 20_000;
/// An import job that fails (the database away) is tried this many times:
/// each try is one transaction, all or nothing.
const IMPORT_JOB_ATTEMPTS: i32 = 5;

impl From<FileError> for Error {
    fn from(error: FileError) -> Self {
        match error.kind {
            FileErrorKind::Malformed => Error::Malformed("malformed_file", error.message),
            FileErrorKind::Invalid => Error::Invalid("not_a_task_master_file", error.message),
        }
    }
}

fn place(tag: &str, position: Position) -> String {
    match position.subtask {
        Some(sub) => format!("tag `{tag}`, tasks[{}].subtasks[{sub}]", position.task),
        None => format!("tag `{tag}`, tasks[{}]", position.task),
    }
}

/// Every task of the plan passes the rules the API applies to a new task.
fn check_plan(plan: &TagPlan) -> Result<()> {
    for task in &plan.tasks {
        let at = |error: Error| {
            Error::validation(format!("{}: {error}", place(&plan.tag, task.position)))
        };
        rules::title(&task.title).map_err(at)?;
        rules::long_text("description", &task.description).map_err(at)?;
        rules::long_text("details", &task.details).map_err(at)?;
        rules::long_text("testStrategy", &task.test_strategy).map_err(at)?;
        if task.dependencies.len() > rules::MAX_DEPENDENCIES {
            return Err(at(Error::validation("too many dependencies")));
        }
    }
    Ok(())
}

/// The project a tag becomes: `name` for a legacy file, `name: tag` for
/// each tag of a tagged one; the tag alone when no name is given.
fn project_name(name: Option<&str>, tag: &str, format: taskmaster_files::Format) -> String {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    let tag = tag.trim();
    let full = match (name, format) {
        (Some(name), taskmaster_files::Format::Legacy) => name.to_owned(),
        (Some(name), taskmaster_files::Format::Tagged) => format!("{name}: {tag}"),
        (None, _) if tag.is_empty() => "untitled tag".to_owned(),
        (None, _) => tag.to_owned(),
    };
    full.chars().take(rules::PROJECT_NAME_MAX_CHARS).collect()
}

fn import_not_found() -> Error {
    Error::NotFound("import_not_found", "import not found".into())
}

/// A `tasks.json` that passed every check an import makes before writing.
pub struct CheckedImport {
    file: TasksFile,
    plans: Vec<TagPlan>,
}

impl CheckedImport {
    /// Parses and checks a file as the import will write it: every refusal
    /// happens here, before anything is written or queued.
    pub fn check(bytes: &[u8]) -> Result<CheckedImport> {
        let file = TasksFile::parse(bytes)?;
        if file.tags().len() > MAX_IMPORT_TAGS {
            return Err(Error::validation(format!(
                "the file has {} tags; at most {MAX_IMPORT_TAGS} are imported at once",
                file.tags().len()
            )));
        }
        let count = file.task_count();
        if count > MAX_IMPORT_TASKS {
            return Err(Error::validation(format!(
                "the file has {count} tasks and subtasks; at most {MAX_IMPORT_TASKS} are imported at once"
            )));
        }
        let plans = file.plans();
        for plan in &plans {
            check_plan(plan)?;
        }
        Ok(CheckedImport { file, plans })
    }

    /// Tasks and subtasks the import makes.
    pub fn task_count(&self) -> usize {
        self.plans.iter().map(|plan| plan.tasks.len()).sum()
    }

    fn warnings(&self) -> Vec<String> {
        self.plans
            .iter()
            .flat_map(|plan| plan.warnings.iter().cloned())
            .collect()
    }
}

/// Payload of an import job.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ImportJob {
    /// The file, as it came (it parsed as UTF-8 JSON when it was queued).
    pub source: String,
    pub name: Option<String>,
}

impl App {
    /// Imports a `tasks.json`: one new project per tag, owned by the
    /// caller, every task and subtask a task of it, in one transaction.
    pub async fn import_tasks_json(
        &self,
        actor: &Actor,
        bytes: &[u8],
        name: Option<&str>,
    ) -> Result<ImportResponse> {
        actor.check_may_create_projects()?;
        let checked = CheckedImport::check(bytes)?;
        let source = std::str::from_utf8(bytes).map_err(anyhow::Error::from)?;
        self.commit_import(actor.id, Uuid::now_v7(), &checked, source, name, &|_| {})
            .await
    }

    /// Checks a `tasks.json` as [`App::import_tasks_json`] does, then
    /// queues its import as a background job (which tells the caller its
    /// progress over Socket.IO) and returns the job.
    pub async fn queue_import(
        &self,
        actor: &Actor,
        bytes: &[u8],
        name: Option<&str>,
    ) -> Result<protocol::JobStatus> {
        actor.check_may_create_projects()?;
        let checked = CheckedImport::check(bytes)?;
        let source = std::str::from_utf8(bytes).map_err(anyhow::Error::from)?;
        let payload = serde_json::to_value(ImportJob {
            source: source.to_owned(),
            name: name.map(str::to_owned),
        })
        .map_err(anyhow::Error::from)?;
        let mut connection = self.db().acquire().await?;
        let job = crate::jobs::enqueue(
            &mut connection,
            crate::jobs::IMPORT,
            None,
            None,
            payload,
            IMPORT_JOB_ATTEMPTS,
            Some(actor.id),
        )
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("an import job was not queued")))?;
        drop(connection);
        self.job_queued();
        metrics::counter!("imports_queued_total").increment(1);
        tracing::info!(%job, tasks = checked.task_count(), "import queued");
        self.job(actor, &job.to_string()).await
    }

    /// Runs a queued import as import `import_id` (the job's id). Run again
    /// after its commit (its instance died before recording the outcome),
    /// it answers with what the first run made instead of importing twice.
    pub async fn run_import_job(
        &self,
        owner: Uuid,
        import_id: Uuid,
        checked: &CheckedImport,
        job: &ImportJob,
        inserted: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportResponse> {
        if db::imports::exists(self.db(), import_id).await? {
            let counts: Vec<usize> = checked.plans.iter().map(|plan| plan.tasks.len()).collect();
            let projects = db::imports::projects_of(self.db(), import_id)
                .await?
                .into_iter()
                .map(|(position, tag, project)| ImportedProject {
                    tag,
                    project,
                    tasks: counts.get(position).copied().unwrap_or(0),
                })
                .collect();
            return Ok(ImportResponse {
                id: import_id.to_string(),
                format: checked.file.format().as_str().to_owned(),
                projects,
                warnings: checked.warnings(),
            });
        }
        self.commit_import(
            owner,
            import_id,
            checked,
            &job.source,
            job.name.as_deref(),
            inserted,
        )
        .await
    }

    async fn commit_import(
        &self,
        owner: Uuid,
        import_id: Uuid,
        checked: &CheckedImport,
        source: &str,
        name: Option<&str>,
        inserted: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportResponse> {
        let format = checked.file.format();
        let new_projects = checked
            .plans
            .iter()
            .map(|plan| db::imports::NewProject {
                name: project_name(name, &plan.tag, format),
                plan,
            })
            .collect();
        let made = db::imports::create(
            self.db(),
            import_id,
            owner,
            format,
            source,
            new_projects,
            inserted,
        )
        .await?;
        let mut projects = Vec::with_capacity(made.len());
        for imported in made {
            projects.push(ImportedProject {
                tag: imported.tag,
                project: imported.project,
                tasks: imported.tasks.len(),
            });
            self.after_commit(imported.events).await;
        }
        metrics::counter!("imports_total", "format" => format.as_str()).increment(1);
        metrics::counter!("imported_tasks_total").increment(checked.task_count() as u64);
        Ok(ImportResponse {
            id: import_id.to_string(),
            format: format.as_str().to_owned(),
            projects,
            warnings: checked.warnings(),
        })
    }

    /// The file of an import, rebuilt from the current state of its
    /// projects. The caller must be a member of every one of them.
    pub async fn export_import(&self, actor: &Actor, import_id: &str) -> Result<String> {
        let import_id = Uuid::parse_str(import_id).map_err(|_| import_not_found())?;
        let stored = db::imports::load(self.db(), import_id)
            .await?
            .ok_or_else(import_not_found)?;
        if stored.projects.is_empty() && stored.owner != actor.id {
            return Err(import_not_found());
        }
        let file = TasksFile::parse(stored.source.as_bytes()).map_err(|error| {
            anyhow::anyhow!("stored import {import_id} no longer parses: {error}")
        })?;
        let mut state = vec![None; file.tags().len()];
        for (position, project) in stored.projects {
            self.authorize(actor, &project.to_string(), Need::Read)
                .await
                .map_err(|error| match error {
                    Error::NotFound(..) => import_not_found(),
                    other => other,
                })?;
            if let Some(slot) = state.get_mut(position) {
                *slot = Some(self.export_state(project).await?);
            }
        }
        Ok(taskmaster_files::export(&file, &state))
    }

    /// One project as a legacy `tasks.json`: its tag of the file it came
    /// from, rebuilt, or (for a project made here) as Task Master would
    /// write it.
    pub async fn export_project(&self, actor: &Actor, project_id: &str) -> Result<String> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        let tasks = self.export_state(access.project).await?;
        match db::imports::source_of(self.db(), access.project).await? {
            Some((source, position)) => {
                let file = TasksFile::parse(source.as_bytes()).map_err(|error| {
                    anyhow::anyhow!("stored import of {project_id} no longer parses: {error}")
                })?;
                Ok(taskmaster_files::export_tag(&file, position, &tasks))
            }
            None => Ok(taskmaster_files::export_new(&tasks)),
        }
    }
}

impl App {
    /// A project's tasks as the exports read them: with the dependency
    /// entries task files gave that named nothing.
    async fn export_state(&self, project: Uuid) -> Result<TasksWithKept> {
        Ok(TasksWithKept {
            tasks: db::tasks::all(self.db(), project).await?,
            kept: db::tasks::kept_dependencies(self.db(), project).await?,
        })
    }
}

/// What a dependency entry of a task file names, among the tasks being
/// added (by index in the batch) or those the project has.
enum Named {
    Batch(usize),
    Existing(i64),
    Nothing,
}

/// A dependency entry longer than this is not a Task Master id: reported,
/// not kept.
const MAX_KEPT_ENTRY_CHARS: usize = 40;

impl App {
    /// Adds one task file (and its subtasks) to a project as new tasks.
    ///
    /// A dependency entry names, in this order: a subtask of the same file
    /// (`7.2`, or a sibling's number from a subtask); a task an earlier task
    /// file of the same plan added, by the id that file gave it; a task of
    /// the project by its id. Entries that name nothing, the task itself or
    /// close a cycle are reported in `warnings` and kept, as written, for
    /// the exports; the file's own ids are kept so later files find them.
    pub async fn import_task_file(
        &self,
        actor: &Actor,
        project_id: &str,
        text: &str,
    ) -> Result<protocol::TaskFileImport> {
        let access = self.authorize(actor, project_id, Need::Write).await?;
        let file = taskmaster_files::task_file::parse(text)?;
        let own = file.id.to_string();
        let lists: Vec<&Vec<String>> = std::iter::once(&file.dependencies)
            .chain(file.subtasks.iter().map(|subtask| &subtask.dependencies))
            .collect();
        let entries: Vec<String> = lists.iter().copied().flatten().cloned().collect();
        let numbers: Vec<i64> = entries
            .iter()
            .filter_map(|entry| entry.parse::<i64>().ok())
            .collect();
        let existing = db::tasks::existing_ids(self.db(), access.project, &numbers).await?;
        let from_files = db::tasks::from_task_files(self.db(), access.project, &entries).await?;
        let sibling = |number: u64| {
            file.subtasks
                .iter()
                .position(|subtask| subtask.id == number)
        };
        let name = |entry: &str, from_subtask: bool| -> Named {
            if let Some((parent, sub)) = entry.split_once('.') {
                if parent == own {
                    return match sub.parse::<u64>().ok().and_then(sibling) {
                        Some(index) => Named::Batch(index + 1),
                        None => Named::Nothing,
                    };
                }
                return from_files
                    .get(entry)
                    .map_or(Named::Nothing, |id| Named::Existing(*id));
            }
            let Ok(number) = entry.parse::<u64>() else {
                return Named::Nothing;
            };
            if from_subtask {
                if let Some(index) = sibling(number) {
                    return Named::Batch(index + 1);
                }
            } else if entry == own {
                return Named::Batch(0);
            }
            if let Some(id) = from_files.get(entry) {
                return Named::Existing(*id);
            }
            match i64::try_from(number) {
                Ok(id) if existing.contains(&id) => Named::Existing(id),
                _ => Named::Nothing,
            }
        };
        let mut warnings = Vec::new();
        let count = 1 + file.subtasks.len();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); count];
        let mut existing_of = vec![Vec::new(); count];
        let mut kept_of: Vec<Vec<String>> = vec![Vec::new(); count];
        let subtask_ids = std::iter::once(None).chain(file.subtasks.iter().map(|s| Some(s.id)));
        for ((at, subtask), list) in subtask_ids.enumerate().zip(&lists) {
            let whose = match subtask {
                Some(sub) => format!("subtask {own}.{sub}"),
                None => format!("task {own}"),
            };
            for entry in list.iter() {
                let why = match name(entry, subtask.is_some()) {
                    Named::Existing(id) => {
                        existing_of[at].push(id);
                        continue;
                    }
                    Named::Batch(target) if target == at => "is the task itself",
                    Named::Batch(target) if reaches(&edges, target, at) => {
                        "would close a dependency cycle"
                    }
                    Named::Batch(target) => {
                        edges[at].push(target);
                        continue;
                    }
                    Named::Nothing => "names no task of this project",
                };
                let keep = entry.chars().count() <= MAX_KEPT_ENTRY_CHARS
                    && kept_of[at].len() < rules::MAX_DEPENDENCIES;
                if keep {
                    kept_of[at].push(entry.clone());
                    warnings.push(format!(
                        "{whose}: dependency {entry} {why}; kept for export"
                    ));
                } else {
                    warnings.push(format!("{whose}: dependency {entry} {why}; left out"));
                }
            }
        }
        let new_task = |title: &str,
                        description: &str,
                        details: &str,
                        strategy: &str,
                        status,
                        priority,
                        dependencies: Vec<i64>| protocol::NewTask {
            title: title.to_owned(),
            description: Some(description.to_owned()),
            details: Some(details.to_owned()),
            test_strategy: Some(strategy.to_owned()),
            status: Some(status),
            priority: Some(priority),
            dependencies: Some(dependencies),
            assignee_id: None,
            parent_id: None,
        };
        let mut batch = Vec::with_capacity(count);
        batch.push(db::tasks::BatchTask {
            new: new_task(
                &file.title,
                &file.description,
                &file.details,
                &file.test_strategy,
                file.status,
                file.priority,
                std::mem::take(&mut existing_of[0]),
            ),
            parent: None,
            batch_dependencies: std::mem::take(&mut edges[0]),
            origin: Some(db::tasks::Origin {
                source_id: own.clone(),
                kept_dependencies: std::mem::take(&mut kept_of[0]),
            }),
        });
        for (index, subtask) in file.subtasks.iter().enumerate() {
            batch.push(db::tasks::BatchTask {
                new: new_task(
                    &subtask.title,
                    &subtask.description,
                    &subtask.details,
                    "",
                    subtask.status,
                    file.priority,
                    std::mem::take(&mut existing_of[index + 1]),
                ),
                parent: Some(0),
                batch_dependencies: std::mem::take(&mut edges[index + 1]),
                origin: Some(db::tasks::Origin {
                    source_id: format!("{own}.{}", subtask.id),
                    kept_dependencies: std::mem::take(&mut kept_of[index + 1]),
                }),
            });
        }
        let (tasks, events) =
            db::tasks::create_batch(self.db(), access.project, actor.id, batch).await?;
        self.after_commit(events).await;
        Ok(protocol::TaskFileImport { tasks, warnings })
    }

    /// The project's task files as `task-master generate` writes them.
    pub async fn task_files(
        &self,
        actor: &Actor,
        project_id: &str,
        extension: &str,
    ) -> Result<Vec<(String, String)>> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        let tasks = self.export_state(access.project).await?;
        let source = db::imports::source_of(self.db(), access.project).await?;
        let file = match &source {
            Some((source, _)) => Some(TasksFile::parse(source.as_bytes()).map_err(|error| {
                anyhow::anyhow!("stored import of {project_id} no longer parses: {error}")
            })?),
            None => None,
        };
        let origin = file
            .as_ref()
            .zip(source.as_ref().map(|(_, position)| *position));
        Ok(taskmaster_files::task_files(origin, &tasks, extension))
    }
}

/// Whether `to` is reachable from `from` along `edges` (indexes).
fn reaches(edges: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; edges.len()];
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if !std::mem::replace(&mut seen[node], true) {
            stack.extend(edges[node].iter().copied());
        }
    }
    false
}
