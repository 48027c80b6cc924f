//! Tasks: reads, and writes through [`ProjectWrite`] so every change is logged.

use std::collections::{HashMap, HashSet};

use protocol::{event_type, NewTask, Task, TaskPatch, TaskStatus};
use sqlx::postgres::PgArguments;
use sqlx::postgres::PgRow;
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::ProjectWrite;
use super::{projects, rfc3339};
use crate::domain::{dependencies, task as rules};
use crate::error::{Error, Result};

/// Columns of a task, in [`TaskRow`] order (a macro so queries can be `concat!`ed constants).
macro_rules! columns {
    () => {
        "project_id, task_id, title, description, details, test_strategy, \
         status::text as status, priority::text as priority, dependencies, assignee_id, \
         parent_id, version, created_at, updated_at"
    };
}

macro_rules! task_by_id {
    () => {
        concat!(
            "select ",
            columns!(),
            " from tasks where project_id = $1 and task_id = $2"
        )
    };
}

macro_rules! task_page {
    () => {
        concat!(
            "select ",
            columns!(),
            " from tasks
              where project_id = $1 and task_id > $2
              order by task_id limit $3"
        )
    };
}

macro_rules! task_page_by_status {
    () => {
        concat!(
            "select ",
            columns!(),
            " from tasks
              where project_id = $1 and task_id > $2 and status = any($3::task_status[])
              order by task_id limit $4"
        )
    };
}

macro_rules! next_subtask {
    () => {
        concat!(
            "select ",
            columns!(),
            " from tasks t
              where t.project_id = $1
                and t.parent_id in (
                    select p.task_id from tasks p
                     where p.project_id = $1 and p.status = 'in-progress' and p.parent_id is null)
                and t.status in ('pending', 'in-progress')
                and not exists (
                    select 1 from tasks d
                     where d.project_id = t.project_id
                       and d.task_id = any(t.dependencies)
                       and d.status <> 'done')
              order by t.priority, cardinality(t.dependencies), t.task_id
              limit 1"
        )
    };
}

macro_rules! next_top_level {
    () => {
        concat!(
            "select ",
            columns!(),
            " from tasks t
              where t.project_id = $1
                and t.parent_id is null
                and t.status in ('pending', 'in-progress')
                and not exists (
                    select 1 from tasks d
                     where d.project_id = t.project_id
                       and d.task_id = any(t.dependencies)
                       and d.status <> 'done')
              order by t.priority, cardinality(t.dependencies), t.task_id
              limit 1"
        )
    };
}

/// A read of task rows with the project's `last_seq` (`project_seq`) from
/// the same snapshot, so the answer says what it includes; one row with null
/// task columns when nothing matches, so even "nothing" carries its seq.
/// `$1` is the project.
macro_rules! stamped {
    ($rows:expr) => {
        concat!(
            "select stamp.last_seq as project_seq, found.*
               from projects stamp
               left join lateral (",
            $rows,
            ") found on true
              where stamp.project_id = $1"
        )
    };
}

/// The read queries, public so the index test can `EXPLAIN` exactly what
/// runs: the `*_STAMPED` statements, and the row queries inside them.
pub mod sql {
    /// `$1` project, `$2` task id.
    pub const GET: &str = task_by_id!();

    /// `$1` project, `$2` after this id, `$3` limit.
    pub const LIST: &str = task_page!();

    /// `$1` project, `$2` after this id, `$3` statuses, `$4` limit.
    pub const LIST_BY_STATUS: &str = task_page_by_status!();

    /// First tier of next-task: subtasks of in-progress top-level tasks.
    /// Driven from the (few) in-progress parents. `$1` project.
    pub const NEXT_SUBTASK: &str = next_subtask!();

    /// Second tier of next-task: top-level tasks, walked in rank order along
    /// `tasks_next_idx`. `$1` project.
    pub const NEXT_TOP_LEVEL: &str = next_top_level!();

    // What runs: each row query above inside `stamped!`, so every read
    // (on a replica or the primary) reports the seq it was read at.

    /// [`GET`] with the project's seq.
    pub const GET_STAMPED: &str = stamped!(task_by_id!());

    /// [`LIST`] with the project's seq.
    pub const LIST_STAMPED: &str = stamped!(task_page!());

    /// [`LIST_BY_STATUS`] with the project's seq.
    pub const LIST_BY_STATUS_STAMPED: &str = stamped!(task_page_by_status!());

    /// Both tiers of next-task in one statement (so one snapshot), with the
    /// project's seq. The second tier runs only when the first finds nothing.
    pub const NEXT_STAMPED: &str = stamped!(concat!(
        "(",
        next_subtask!(),
        ") union all (",
        next_top_level!(),
        ") limit 1"
    ));
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    project_id: Uuid,
    task_id: i64,
    title: String,
    description: String,
    details: String,
    test_strategy: String,
    status: String,
    priority: String,
    dependencies: Vec<i64>,
    assignee_id: Option<Uuid>,
    parent_id: Option<i64>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<TaskRow> for Task {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<Self> {
        let corrupt = |error: protocol::ParseEnumError| {
            Error::Internal(anyhow::anyhow!("bad task row in database: {error}"))
        };
        Ok(Task {
            id: row.task_id,
            project_id: row.project_id.to_string(),
            title: row.title,
            description: row.description,
            details: row.details,
            test_strategy: row.test_strategy,
            status: row.status.parse().map_err(corrupt)?,
            priority: row.priority.parse().map_err(corrupt)?,
            dependencies: row.dependencies,
            assignee_id: row.assignee_id.map(|id| id.to_string()),
            parent_id: row.parent_id,
            version: row.version,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        })
    }
}

fn tasks(rows: Vec<TaskRow>) -> Result<Vec<Task>> {
    rows.into_iter().map(Task::try_from).collect()
}

/// Rows of a stamped read: the project's seq and the tasks found, or
/// `None` when the project does not exist (here: a replica that has not
/// replayed its creation yet, or a project just deleted).
fn stamped(rows: Vec<PgRow>) -> Result<Option<(Vec<Task>, i64)>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let seq: i64 = first.try_get("project_seq")?;
    let mut tasks = Vec::with_capacity(rows.len());
    for row in &rows {
        // The lateral join's "nothing matched" row has null task columns.
        if row.try_get::<Option<i64>, _>("task_id")?.is_some() {
            tasks.push(Task::try_from(TaskRow::from_row(row)?)?);
        }
    }
    Ok(Some((tasks, seq)))
}

/// One task, with the seq it was read at.
pub async fn get_stamped(
    connection: &mut PgConnection,
    project: Uuid,
    task_id: i64,
) -> Result<Option<(Option<Task>, i64)>> {
    let rows = sqlx::query(sql::GET_STAMPED)
        .bind(project)
        .bind(task_id)
        .fetch_all(connection)
        .await?;
    Ok(stamped(rows)?.map(|(tasks, seq)| (tasks.into_iter().next(), seq)))
}

/// Up to `limit` tasks with id greater than `after`, in id order, optionally
/// only those with one of `statuses`, with the seq they were read at.
/// Keyset pagination: a page never shifts when tasks are inserted, since new
/// tasks always get higher ids.
pub async fn list_stamped(
    connection: &mut PgConnection,
    project: Uuid,
    statuses: &[TaskStatus],
    after: i64,
    limit: i64,
) -> Result<Option<(Vec<Task>, i64)>> {
    let rows = if statuses.is_empty() {
        sqlx::query(sql::LIST_STAMPED)
            .bind(project)
            .bind(after)
            .bind(limit)
            .fetch_all(connection)
            .await?
    } else {
        let statuses: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
        sqlx::query(sql::LIST_BY_STATUS_STAMPED)
            .bind(project)
            .bind(after)
            .bind(statuses)
            .bind(limit)
            .fetch_all(connection)
            .await?
    };
    stamped(rows)
}

/// The task to work on next, by Task Master's rule (see the contract):
/// first a pending or in-progress subtask of an in-progress parent whose
/// dependencies are all done, otherwise such a top-level task; ranked by
/// priority, then fewest dependencies, then lowest id. One statement, with
/// the seq it was read at.
pub async fn next_stamped(
    connection: &mut PgConnection,
    project: Uuid,
) -> Result<Option<(Option<Task>, i64)>> {
    let rows = sqlx::query(sql::NEXT_STAMPED)
        .bind(project)
        .fetch_all(connection)
        .await?;
    Ok(stamped(rows)?.map(|(tasks, seq)| (tasks.into_iter().next(), seq)))
}

/// A task's writable fields after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    title: String,
    description: String,
    details: String,
    test_strategy: String,
    status: TaskStatus,
    priority: protocol::Priority,
    dependencies: Vec<i64>,
    assignee_id: Option<Uuid>,
    parent_id: Option<i64>,
}

impl Fields {
    /// A new task's fields, checked against the rules and given their
    /// defaults; needs no database.
    fn new(new: &NewTask) -> Result<Self> {
        Ok(Fields {
            title: rules::title(&new.title)?,
            description: rules::long_text("description", new.description.as_deref().unwrap_or(""))?,
            details: rules::long_text("details", new.details.as_deref().unwrap_or(""))?,
            test_strategy: rules::long_text(
                "test_strategy",
                new.test_strategy.as_deref().unwrap_or(""),
            )?,
            status: new.status.unwrap_or_default(),
            priority: new.priority.unwrap_or_default(),
            dependencies: rules::dependency_list(new.dependencies.as_deref().unwrap_or(&[]), None)?,
            assignee_id: assignee(new.assignee_id.as_deref())?,
            parent_id: new.parent_id,
        })
    }

    fn of(task: &Task) -> Result<Self> {
        Ok(Fields {
            title: task.title.clone(),
            description: task.description.clone(),
            details: task.details.clone(),
            test_strategy: task.test_strategy.clone(),
            status: task.status,
            priority: task.priority,
            dependencies: task.dependencies.clone(),
            assignee_id: task
                .assignee_id
                .as_deref()
                .map(Uuid::parse_str)
                .transpose()
                .map_err(anyhow::Error::from)?,
            parent_id: task.parent_id,
        })
    }
}

fn assignee(value: Option<&str>) -> Result<Option<Uuid>> {
    value
        .map(|id| {
            Uuid::parse_str(id).map_err(|_| {
                Error::Invalid(
                    "unknown_assignee",
                    "assignee_id is not a member of this project".into(),
                )
            })
        })
        .transpose()
}

#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "create"))]
pub async fn create(
    pool: &PgPool,
    project: Uuid,
    actor: Uuid,
    new: NewTask,
) -> Result<(Task, Vec<protocol::Event>)> {
    // Checks that need no database come first, so bad input never waits for the lock.
    let fields = Fields::new(&new)?;
    let mut write = ProjectWrite::begin(pool, project, actor).await?;
    // A new task has no dependents yet, so it cannot close a cycle.
    check_references(&mut write, None, &fields, None).await?;
    let task_id = write.next_task_id();
    let row = write_fields(sqlx::query_as(INSERT), project, task_id, &fields)
        .fetch_one(&mut *write.tx)
        .await?;
    let task = Task::try_from(row)?;
    write.record(event_type::TASK_CREATED, &task).await?;
    let events = write.commit().await?;
    Ok((task, events))
}

/// A new task: `$1` project, `$2` id, `$3`…`$11` its fields ([`write_fields`]).
const INSERT: &str = concat!(
    "insert into tasks (project_id, task_id, title, description, details, test_strategy,
                        status, priority, dependencies, assignee_id, parent_id)
     values ($1, $2, $3, $4, $5, $6, $7::task_status, $8::task_priority, $9, $10, $11)
     returning ",
    columns!()
);

/// Binds `$1` project, `$2` task id and `$3`…`$11` the writable fields, in
/// the order both the insert and the update statements use.
fn write_fields<'q>(
    query: QueryAs<'q, Postgres, TaskRow, PgArguments>,
    project: Uuid,
    task_id: i64,
    fields: &'q Fields,
) -> QueryAs<'q, Postgres, TaskRow, PgArguments> {
    query
        .bind(project)
        .bind(task_id)
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(&fields.details)
        .bind(&fields.test_strategy)
        .bind(fields.status.as_str())
        .bind(fields.priority.as_str())
        .bind(&fields.dependencies)
        .bind(fields.assignee_id)
        .bind(fields.parent_id)
}

/// A patch with what needs no database checked: done before the project's
/// lock is taken.
struct CheckedPatch {
    title: Option<String>,
    description: Option<String>,
    details: Option<String>,
    test_strategy: Option<String>,
    status: Option<protocol::TaskStatus>,
    priority: Option<protocol::Priority>,
    dependencies: Option<Vec<i64>>,
    assignee: Option<Option<Uuid>>,
    parent: Option<Option<i64>>,
}

impl CheckedPatch {
    fn new(patch: &TaskPatch, task_id: i64) -> Result<CheckedPatch> {
        let text = |field: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| rules::long_text(field, text))
                .transpose()
        };
        Ok(CheckedPatch {
            title: patch.title.as_deref().map(rules::title).transpose()?,
            description: text("description", &patch.description)?,
            details: text("details", &patch.details)?,
            test_strategy: text("test_strategy", &patch.test_strategy)?,
            status: patch.status,
            priority: patch.priority,
            dependencies: patch
                .dependencies
                .as_deref()
                .map(|ids| rules::dependency_list(ids, Some(task_id)))
                .transpose()?,
            assignee: patch
                .assignee_id
                .as_ref()
                .map(|id| assignee(id.as_deref()))
                .transpose()?,
            parent: patch.parent_id,
        })
    }

    /// `old` with this patch written over it.
    fn apply(&self, old: &Fields) -> Fields {
        let mut fields = old.clone();
        let replace = |slot: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                slot.clone_from(value);
            }
        };
        replace(&mut fields.title, &self.title);
        replace(&mut fields.description, &self.description);
        replace(&mut fields.details, &self.details);
        replace(&mut fields.test_strategy, &self.test_strategy);
        if let Some(status) = self.status {
            fields.status = status;
        }
        if let Some(priority) = self.priority {
            fields.priority = priority;
        }
        if let Some(dependencies) = &self.dependencies {
            fields.dependencies.clone_from(dependencies);
        }
        if let Some(assignee) = self.assignee {
            fields.assignee_id = assignee;
        }
        if let Some(parent) = self.parent {
            fields.parent_id = parent;
        }
        fields
    }
}

/// Applies `patch` to a task. `if_match` is the version the client last saw;
/// a different current version is a 412 and nothing changes. A patch that
/// changes nothing returns the task as it is, with no new version or event.
#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "update"))]
pub async fn update(
    pool: &PgPool,
    project: Uuid,
    actor: Uuid,
    task_id: i64,
    patch: TaskPatch,
    if_match: Option<i64>,
) -> Result<(Task, Vec<protocol::Event>)> {
    let checked = CheckedPatch::new(&patch, task_id)?;
    let mut write = ProjectWrite::begin(pool, project, actor).await?;
    let (task, changed) = patch_in(&mut write, task_id, &checked, if_match).await?;
    if !changed {
        return Ok((task, Vec::new()));
    }
    let events = write.commit().await?;
    Ok((task, events))
}

/// Patches one task within `write`, recording its event; the task as it is
/// now, and whether it changed.
async fn patch_in(
    write: &mut ProjectWrite,
    task_id: i64,
    patch: &CheckedPatch,
    if_match: Option<i64>,
) -> Result<(Task, bool)> {
    let current = fetch_for_update(write, task_id).await?;
    check_version(&current, if_match)?;
    let old = Fields::of(&current)?;
    let fields = patch.apply(&old);
    if fields == old {
        return Ok((current, false));
    }
    check_references(write, Some(task_id), &fields, Some(&old)).await?;

    let row = write_fields(
        sqlx::query_as(concat!(
            "update tasks set title = $3, description = $4, details = $5, test_strategy = $6,
                status = $7::task_status, priority = $8::task_priority, dependencies = $9,
                assignee_id = $10, parent_id = $11, version = version + 1, updated_at = now()
          where project_id = $1 and task_id = $2
          returning ",
            columns!(),
            ""
        )),
        write.project,
        task_id,
        &fields,
    )
    .fetch_one(&mut *write.tx)
    .await?;
    let task = Task::try_from(row)?;
    write.record(event_type::TASK_UPDATED, &task).await?;
    Ok((task, true))
}

/// Deletes a task and its subtasks, and strips them from every other task's
/// dependencies (each such task gets a new version), all in one transaction.
#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "delete"))]
pub async fn delete(
    pool: &PgPool,
    project: Uuid,
    actor: Uuid,
    task_id: i64,
    if_match: Option<i64>,
) -> Result<Vec<protocol::Event>> {
    let mut write = ProjectWrite::begin(pool, project, actor).await?;
    delete_in(&mut write, task_id, if_match).await?;
    write.commit().await
}

/// Deletes one task within `write` as [`delete`] does, recording the
/// events; the ids deleted (its subtasks, then itself).
async fn delete_in(
    write: &mut ProjectWrite,
    task_id: i64,
    if_match: Option<i64>,
) -> Result<Vec<i64>> {
    let project = write.project;
    let current = fetch_for_update(write, task_id).await?;
    check_version(&current, if_match)?;

    // Subtasks first: the parent foreign key needs them gone before the parent.
    let subtasks = tasks(
        sqlx::query_as::<_, TaskRow>(concat!(
            "delete from tasks where project_id = $1 and parent_id = $2 returning ",
            columns!(),
            ""
        ))
        .bind(project)
        .bind(task_id)
        .fetch_all(&mut *write.tx)
        .await?,
    )?;
    sqlx::query("delete from tasks where project_id = $1 and task_id = $2")
        .bind(project)
        .bind(task_id)
        .execute(&mut *write.tx)
        .await?;
    let mut deleted = subtasks;
    deleted.sort_by_key(|task| task.id);
    deleted.push(current);
    let deleted_ids: Vec<i64> = deleted.iter().map(|task| task.id).collect();
    for task in &deleted {
        write.record(event_type::TASK_DELETED, task).await?;
    }

    let mut dependents = tasks(
        sqlx::query_as::<_, TaskRow>(concat!(
            "update tasks set
                    dependencies = array(
                        select d from unnest(dependencies) with ordinality as u(d, position)
                         where d <> all($2) order by position),
                    version = version + 1,
                    updated_at = now()
              where project_id = $1 and dependencies && $2
              returning ",
            columns!(),
            ""
        ))
        .bind(project)
        .bind(&deleted_ids)
        .fetch_all(&mut *write.tx)
        .await?,
    )?;
    dependents.sort_by_key(|task| task.id);
    for task in &dependents {
        write.record(event_type::TASK_UPDATED, task).await?;
    }
    Ok(deleted_ids)
}

/// Tasks one bulk change may name, at most.
pub const MAX_BULK_TASKS: usize = 500;

/// One change to many tasks.
pub enum Bulk {
    /// Apply this patch to each.
    Set(TaskPatch),
    /// Delete each (with its subtasks).
    Delete,
}

/// Applies `change` to the tasks `ids`, in that order, in one transaction:
/// all of it or, if any task refuses it (not found, at another version than
/// `if_versions` says, a check), none of it. For `Set`, every task as it is
/// now; for `Delete`, the ids deleted; and the events.
#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "bulk", tasks = ids.len()))]
pub async fn bulk(
    pool: &PgPool,
    project: Uuid,
    actor: Uuid,
    ids: &[i64],
    change: &Bulk,
    if_versions: &HashMap<i64, i64>,
) -> Result<(Vec<Task>, Vec<i64>, Vec<protocol::Event>)> {
    // Every patch checked before the lock is taken; `None` for a deletion.
    let patches = match change {
        Bulk::Set(patch) => Some(
            ids.iter()
                .map(|id| CheckedPatch::new(patch, *id))
                .collect::<Result<Vec<_>>>()?,
        ),
        Bulk::Delete => None,
    };
    let mut write = ProjectWrite::begin(pool, project, actor).await?;
    let mut changed = false;
    let mut now = Vec::new();
    let mut deleted = Vec::new();
    let mut gone = HashSet::new();
    for (index, id) in ids.iter().enumerate() {
        let if_match = if_versions.get(id).copied();
        match &patches {
            Some(patches) => {
                let (task, did) = patch_in(&mut write, *id, &patches[index], if_match).await?;
                changed |= did;
                now.push(task);
            }
            None => {
                // A subtask of a task deleted earlier in the list is gone
                // already, as asked.
                if gone.contains(id) {
                    continue;
                }
                for removed in delete_in(&mut write, *id, if_match).await? {
                    gone.insert(removed);
                    deleted.push(removed);
                }
                changed = true;
            }
        }
    }
    if !changed {
        return Ok((now, deleted, Vec::new()));
    }
    let events = write.commit().await?;
    Ok((now, deleted, events))
}

async fn fetch_for_update(write: &mut ProjectWrite, task_id: i64) -> Result<Task> {
    // The project lock already serialises writers; no row lock is needed.
    sqlx::query_as::<_, TaskRow>(concat!(
        "select ",
        columns!(),
        " from tasks where project_id = $1 and task_id = $2"
    ))
    .bind(write.project)
    .bind(task_id)
    .fetch_optional(&mut *write.tx)
    .await?
    .map(Task::try_from)
    .transpose()?
    .ok_or_else(|| Error::task_not_found(task_id))
}

fn check_version(current: &Task, if_match: Option<i64>) -> Result<()> {
    match if_match {
        Some(expected) if expected != current.version => Err(Error::VersionMismatch(format!(
            "task {} is at version {}, not {expected}; reload it and retry",
            current.id, current.version
        ))),
        _ => Ok(()),
    }
}

/// Checks what refers to other rows: dependencies exist and close no cycle,
/// the parent is a top-level task, the assignee is a member. Runs under the
/// project lock, so no concurrent write can invalidate the answer.
async fn check_references(
    write: &mut ProjectWrite,
    task_id: Option<i64>,
    fields: &Fields,
    old: Option<&Fields>,
) -> Result<()> {
    let dependencies_changed = old.is_none_or(|old| old.dependencies != fields.dependencies);
    if dependencies_changed && !fields.dependencies.is_empty() {
        let known: Vec<i64> = sqlx::query_scalar(
            "select task_id from tasks where project_id = $1 and task_id = any($2)",
        )
        .bind(write.project)
        .bind(&fields.dependencies)
        .fetch_all(&mut *write.tx)
        .await?;
        let known: HashSet<i64> = known.into_iter().collect();
        let unknown: Vec<String> = fields
            .dependencies
            .iter()
            .filter(|id| !known.contains(id))
            .map(i64::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Invalid(
                "unknown_dependency",
                format!("no task with id {} in this project", unknown.join(", ")),
            ));
        }
        if let Some(task_id) = task_id {
            check_cycle(write, task_id, &fields.dependencies).await?;
        }
    }

    let parent_changed = old.is_none_or(|old| old.parent_id != fields.parent_id);
    if let (true, Some(parent)) = (parent_changed, fields.parent_id) {
        if Some(parent) == task_id {
            return Err(Error::validation("a task cannot be its own parent"));
        }
        let parent_of_parent: Option<Option<i64>> = sqlx::query_scalar(
            "select parent_id from tasks where project_id = $1 and task_id = $2",
        )
        .bind(write.project)
        .bind(parent)
        .fetch_optional(&mut *write.tx)
        .await?;
        match parent_of_parent {
            None => {
                return Err(Error::Invalid(
                    "unknown_parent",
                    format!("no task with id {parent} in this project"),
                ))
            }
            Some(Some(_)) => {
                return Err(Error::validation(format!(
                    "task {parent} is itself a subtask; subtasks are one level deep"
                )))
            }
            Some(None) => {}
        }
        if let Some(task_id) = task_id {
            let has_subtasks: bool = sqlx::query_scalar(
                "select exists (select 1 from tasks where project_id = $1 and parent_id = $2)",
            )
            .bind(write.project)
            .bind(task_id)
            .fetch_one(&mut *write.tx)
            .await?;
            if has_subtasks {
                return Err(Error::validation(format!(
                    "task {task_id} has subtasks, so it cannot become a subtask itself"
                )));
            }
        }
    }

    let assignee_changed = old.is_none_or(|old| old.assignee_id != fields.assignee_id);
    if let (true, Some(assignee)) = (assignee_changed, fields.assignee_id) {
        if !projects::is_member(&mut write.tx, write.project, assignee).await? {
            return Err(Error::Invalid(
                "unknown_assignee",
                "assignee_id is not a member of this project".into(),
            ));
        }
    }
    Ok(())
}

/// Loads the part of the dependency graph reachable from `new_dependencies`,
/// one breadth level per query, and refuses the change if it closes a cycle.
async fn check_cycle(
    write: &mut ProjectWrite,
    task_id: i64,
    new_dependencies: &[i64],
) -> Result<()> {
    let mut graph = dependencies::DependencyGraph::new();
    // The task's own list is the proposed one, whatever the table holds.
    graph.insert(task_id, new_dependencies.to_vec());
    loop {
        let missing = dependencies::unexplored(new_dependencies, &graph);
        if missing.is_empty() {
            break;
        }
        let rows: Vec<(i64, Vec<i64>)> = sqlx::query_as(
            "select task_id, dependencies from tasks where project_id = $1 and task_id = any($2)",
        )
        .bind(write.project)
        .bind(&missing)
        .fetch_all(&mut *write.tx)
        .await?;
        let found: HashSet<i64> = rows.iter().map(|(id, _)| *id).collect();
        graph.extend(rows);
        // Ids that no longer exist have no dependencies; record that so the
        // search does not ask for them again.
        for id in missing {
            if !found.contains(&id) {
                graph.insert(id, Vec::new());
            }
        }
    }
    match dependencies::find_cycle(task_id, new_dependencies, &graph) {
        Some(cycle) => Err(Error::Conflict(
            "dependency_cycle",
            format!(
                "these dependencies would create a cycle: {}",
                dependencies::describe(&cycle)
            ),
        )),
        None => Ok(()),
    }
}

/// Every task of `project`, in id order (exports; a project holds what one
/// request can carry, so this is bounded by what was written to it).
pub async fn all(pool: &PgPool, project: Uuid) -> Result<Vec<Task>> {
    let rows = sqlx::query_as::<_, TaskRow>(concat!(
        "select ",
        columns!(),
        " from tasks where project_id = $1 order by task_id"
    ))
    .bind(project)
    .fetch_all(pool)
    .await?;
    tasks(rows)
}

/// Inserts tasks of an import in one statement and returns them in the
/// order given. The caller has checked every field, the plan's
/// dependencies name tasks of the same plan without a cycle, and every
/// parent is inserted by this statement or an earlier one.
pub async fn insert_planned(
    tx: &mut PgConnection,
    project: Uuid,
    planned: &[&taskmaster_files::PlannedTask],
) -> Result<Vec<Task>> {
    let ids: Vec<i64> = planned.iter().map(|task| task.id).collect();
    let parents: Vec<Option<i64>> = planned.iter().map(|task| task.parent_id).collect();
    let texts = |field: fn(&taskmaster_files::PlannedTask) -> &str| -> Vec<&str> {
        planned.iter().map(|task| field(task)).collect()
    };
    let titles = texts(|task| &task.title);
    let descriptions = texts(|task| &task.description);
    let details = texts(|task| &task.details);
    let strategies = texts(|task| &task.test_strategy);
    let statuses = texts(|task| task.status.as_str());
    let priorities = texts(|task| task.priority.as_str());
    // Array literals: the lists differ in length, which a two-dimensional
    // array parameter cannot hold.
    let dependencies: Vec<String> = planned
        .iter()
        .map(|task| {
            let list: Vec<String> = task.dependencies.iter().map(i64::to_string).collect();
            format!("{{{}}}", list.join(","))
        })
        .collect();
    let rows = sqlx::query_as::<_, TaskRow>(concat!(
        "insert into tasks (project_id, task_id, parent_id, title, description, details,
                            test_strategy, status, priority, dependencies)
         select $1, t.task_id, t.parent_id, t.title, t.description, t.details,
                t.test_strategy, t.status::task_status, t.priority::task_priority,
                t.dependencies::bigint[]
           from unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::text[])
                with ordinality
                as t(task_id, parent_id, title, description, details, test_strategy,
                     status, priority, dependencies, ord)
          order by t.ord
         returning ",
        columns!()
    ))
    .bind(project)
    .bind(&ids)
    .bind(&parents)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&details)
    .bind(&strategies)
    .bind(&statuses)
    .bind(&priorities)
    .bind(&dependencies)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_id: std::collections::HashMap<i64, Task> = tasks(rows)?
        .into_iter()
        .map(|task| (task.id, task))
        .collect();
    ids.iter()
        .map(|id| {
            by_id
                .remove(id)
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("imported task {id} not returned")))
        })
        .collect()
}

/// Which of `ids` are tasks of `project`.
pub async fn existing_ids(pool: &PgPool, project: Uuid, ids: &[i64]) -> Result<HashSet<i64>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<i64> =
        sqlx::query_scalar("select task_id from tasks where project_id = $1 and task_id = any($2)")
            .bind(project)
            .bind(ids)
            .fetch_all(pool)
            .await?;
    Ok(found.into_iter().collect())
}

/// One task of a batch created together (a task file: a task and its
/// subtasks). `parent` and `batch_dependencies` are indexes into the batch.
pub struct BatchTask {
    pub new: NewTask,
    pub parent: Option<usize>,
    pub batch_dependencies: Vec<usize>,
    /// Where it came from, for a task added from a task file.
    pub origin: Option<Origin>,
}

/// A task file's word on one of its tasks (table `task_origins`).
pub struct Origin {
    /// The id the file gave it: `7`, `7.2` for a subtask.
    pub source_id: String,
    /// Dependency entries that named no task, as written; the exports keep them.
    pub kept_dependencies: Vec<String>,
}

/// Creates `batch` in one transaction, in order, each with the next id and
/// a `task.created` event. Dependencies inside the batch must not form a
/// cycle (the caller leaves out the edge that would close one); the others
/// must name tasks of the project.
#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "create_batch"))]
pub async fn create_batch(
    pool: &PgPool,
    project: Uuid,
    actor: Uuid,
    batch: Vec<BatchTask>,
) -> Result<(Vec<Task>, Vec<protocol::Event>)> {
    let checked = batch
        .iter()
        .map(|item| Fields::new(&item.new))
        .collect::<Result<Vec<_>>>()?;
    let mut write = ProjectWrite::begin(pool, project, actor).await?;
    let ids: Vec<i64> = batch.iter().map(|_| write.next_task_id()).collect();
    let mut created = Vec::with_capacity(batch.len());
    for (index, (item, mut fields)) in batch.iter().zip(checked).enumerate() {
        if let Some(parent) = item.parent {
            fields.parent_id = Some(ids[parent]);
        }
        // Tasks of the batch do not exist yet: check the others, then add them.
        let outside = Fields {
            parent_id: if item.parent.is_some() {
                None
            } else {
                fields.parent_id
            },
            ..fields.clone()
        };
        check_references(&mut write, None, &outside, None).await?;
        fields
            .dependencies
            .extend(item.batch_dependencies.iter().map(|at| ids[*at]));
        let row = write_fields(sqlx::query_as(INSERT), project, ids[index], &fields)
            .fetch_one(&mut *write.tx)
            .await?;
        let task = Task::try_from(row)?;
        if let Some(origin) = &item.origin {
            sqlx::query(
                "insert into task_origins (project_id, task_id, source_id, kept_dependencies)
                 values ($1, $2, $3, $4)",
            )
            .bind(project)
            .bind(task.id)
            .bind(&origin.source_id)
            .bind(&origin.kept_dependencies)
            .execute(&mut *write.tx)
            .await?;
        }
        write.record(event_type::TASK_CREATED, &task).await?;
        created.push(task);
    }
    let events = write.commit().await?;
    Ok((created, events))
}

/// The tasks of `project` that task files gave one of `source_ids`
/// (source id → task id; the latest added wins should a file come twice).
pub async fn from_task_files(
    pool: &PgPool,
    project: Uuid,
    source_ids: &[String],
) -> Result<HashMap<String, i64>> {
    if source_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select source_id, task_id from task_origins
          where project_id = $1 and source_id = any($2)
          order by task_id",
    )
    .bind(project)
    .bind(source_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The dependency entries kept from task files, per task of `project`.
pub async fn kept_dependencies(pool: &PgPool, project: Uuid) -> Result<HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, Vec<String>)> = sqlx::query_as(
        "select task_id, kept_dependencies from task_origins
          where project_id = $1 and cardinality(kept_dependencies) > 0",
    )
    .bind(project)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
