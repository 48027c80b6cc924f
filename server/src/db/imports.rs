//! Imported Task Master files: the file as it came, and the project each
//! of its tags became.

use protocol::{event_type, Event, Project, Task};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{projects, rfc3339, tasks};
use crate::error::{Error, Result};

/// A tag of a file about to become a project.
pub struct NewProject<'a> {
    pub name: String,
    pub plan: &'a taskmaster_files::TagPlan,
}

/// A project an import made, with what it holds and the events that
/// record it (one `task.created` per task, seq 1 onwards).
pub struct ImportedProject {
    pub tag: String,
    pub project: Project,
    pub tasks: Vec<Task>,
    pub events: Vec<Event>,
}

/// Tasks inserted per statement: progress is told between statements, and
/// a statement's parameters stay a few hundred kilobytes.
const TASKS_PER_STATEMENT: usize = 500;

/// Makes the projects of an import, their tasks and events, and keeps the
/// file as import `import_id`, all in one transaction: a file imports whole
/// or not at all. `inserted` hears the count of tasks inserted so far.
#[tracing::instrument(name = "db.transaction", skip_all, fields(op = "import"))]
pub async fn create(
    pool: &PgPool,
    import_id: Uuid,
    owner: Uuid,
    format: taskmaster_files::Format,
    source: &str,
    new_projects: Vec<NewProject<'_>>,
    inserted: &(dyn Fn(usize) + Sync),
) -> Result<Vec<ImportedProject>> {
    let mut done = 0;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into imports (import_id, owner_id, format, source) values ($1, $2, $3, $4)",
    )
    .bind(import_id)
    .bind(owner)
    .bind(format.as_str())
    .bind(source)
    .execute(&mut *tx)
    .await?;
    let mut made = Vec::with_capacity(new_projects.len());
    for (position, new) in new_projects.into_iter().enumerate() {
        let project = projects::create_in(&mut tx, owner, &new.name).await?;
        let project_id = Uuid::parse_str(&project.id).map_err(anyhow::Error::from)?;
        // Parents before their subtasks, so that each statement's parents
        // exist; the tasks go back to the plan's order for the events.
        let (parents, subtasks): (Vec<_>, Vec<_>) = new
            .plan
            .tasks
            .iter()
            .partition(|task| task.parent_id.is_none());
        let mut by_id = std::collections::HashMap::with_capacity(new.plan.tasks.len());
        for chunk in parents
            .chunks(TASKS_PER_STATEMENT)
            .chain(subtasks.chunks(TASKS_PER_STATEMENT))
        {
            for task in tasks::insert_planned(&mut tx, project_id, chunk).await? {
                by_id.insert(task.id, task);
            }
            done += chunk.len();
            inserted(done);
        }
        let tasks = new
            .plan
            .tasks
            .iter()
            .map(|planned| {
                by_id.remove(&planned.id).ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("imported task {} not returned", planned.id))
                })
            })
            .collect::<Result<Vec<Task>>>()?;
        let payloads = serde_json::to_value(&tasks).map_err(anyhow::Error::from)?;
        let at: OffsetDateTime = sqlx::query_scalar("select now()")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "insert into events (project_id, seq, type, actor_id, payload)
             select $1, t.ord, $2, $3, t.value
               from jsonb_array_elements($4::jsonb) with ordinality as t(value, ord)",
        )
        .bind(project_id)
        .bind(event_type::TASK_CREATED)
        .bind(owner)
        .bind(payloads)
        .execute(&mut *tx)
        .await?;
        let last_id = tasks
            .iter()
            .map(|task| task.id)
            .max()
            .unwrap_or(0)
            .max(new.plan.last_id);
        sqlx::query("update projects set last_task_id = $2, last_seq = $3 where project_id = $1")
            .bind(project_id)
            .bind(last_id)
            .bind(tasks.len() as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into import_projects (import_id, position, tag, project_id) values ($1, $2, $3, $4)",
        )
        .bind(import_id)
        .bind(position as i32)
        .bind(&new.plan.tag)
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
        let events = tasks
            .iter()
            .enumerate()
            .map(|(index, task)| Event {
                project_id: project.id.clone(),
                seq: index as i64 + 1,
                kind: event_type::TASK_CREATED.to_owned(),
                actor_id: owner.to_string(),
                at: rfc3339(at),
                task: task.clone(),
            })
            .collect();
        made.push(ImportedProject {
            tag: new.plan.tag.clone(),
            project,
            tasks,
            events,
        });
    }
    tx.commit().await?;
    Ok(made)
}

/// The projects import `import_id` made that still exist, with their tags,
/// in the file's order (an import job run again after its commit answers
/// with these rather than importing twice).
pub async fn projects_of(pool: &PgPool, import_id: Uuid) -> Result<Vec<(usize, String, Project)>> {
    let rows: Vec<(i32, String, Uuid, String, OffsetDateTime)> = sqlx::query_as(
        "select i.position, i.tag, p.project_id, p.name, p.created_at
           from import_projects i join projects p using (project_id)
          where i.import_id = $1
          order by i.position",
    )
    .bind(import_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(position, tag, id, name, created_at)| {
            (
                position as usize,
                tag,
                projects::project(id, name, created_at),
            )
        })
        .collect())
}

/// Whether import `import_id` has been committed.
pub async fn exists(pool: &PgPool, import_id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from imports where import_id = $1)")
            .bind(import_id)
            .fetch_one(pool)
            .await?,
    )
}

/// An import as stored: the file, and the project of each tag that still
/// exists (by the tag's position in the file).
pub struct StoredImport {
    pub owner: Uuid,
    pub format: String,
    pub source: String,
    pub projects: Vec<(usize, Uuid)>,
}

pub async fn load(pool: &PgPool, import_id: Uuid) -> Result<Option<StoredImport>> {
    let Some((owner, format, source)): Option<(Uuid, String, String)> =
        sqlx::query_as("select owner_id, format, source from imports where import_id = $1")
            .bind(import_id)
            .fetch_optional(pool)
            .await?
    else {
        return Ok(None);
    };
    let rows: Vec<(i32, Uuid)> = sqlx::query_as(
        "select position, project_id from import_projects where import_id = $1 order by position",
    )
    .bind(import_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(StoredImport {
        owner,
        format,
        source,
        projects: rows
            .into_iter()
            .map(|(position, project)| (position as usize, project))
            .collect(),
    }))
}

/// The file `project` came from (its latest import) and its tag's position.
pub async fn source_of(pool: &PgPool, project: Uuid) -> Result<Option<(String, usize)>> {
    let row: Option<(String, i32)> = sqlx::query_as(
        "select i.source, p.position
           from import_projects p join imports i using (import_id)
          where p.project_id = $1
          order by i.created_at desc
          limit 1",
    )
    .bind(project)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(source, position)| (source, position as usize)))
}
