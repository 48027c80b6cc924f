//! The change log: every committed change of a project, numbered gaplessly.
//!
//! [`ProjectWrite`] is the only way to change a project's tasks. It opens a
//! transaction, locks the project row, hands out task ids and seq numbers from
//! the counters on that row, writes one event row per change, and stores the
//! counters back on commit. Because the counters live on the locked row and
//! move only inside the transaction, a rollback returns its numbers unused:
//! seq is gapless and never reused, whichever instance commits.

use std::collections::HashMap;

use protocol::{Event, Task};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{projects, rfc3339};
use crate::error::{Error, Result};

/// Events returned by one read, at most.
pub const MAX_PAGE: i64 = 1_000;

pub struct ProjectWrite {
    pub tx: Transaction<'static, Postgres>,
    pub project: Uuid,
    actor: Uuid,
    last_task_id: i64,
    last_seq: i64,
    counters_changed: bool,
    events: Vec<Event>,
}

impl ProjectWrite {
    /// Begins a write to `project`, waiting for earlier writers of it.
    pub async fn begin(pool: &PgPool, project: Uuid, actor: Uuid) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let (last_task_id, last_seq) = projects::lock(&mut tx, project)
            .await?
            .ok_or_else(Error::project_not_found)?;
        Ok(ProjectWrite {
            tx,
            project,
            actor,
            last_task_id,
            last_seq,
            counters_changed: false,
            events: Vec::new(),
        })
    }

    /// The id for a task created in this write.
    pub fn next_task_id(&mut self) -> i64 {
        self.last_task_id += 1;
        self.counters_changed = true;
        self.last_task_id
    }

    /// Records one change under the next seq number.
    pub async fn record(&mut self, kind: &str, task: &Task) -> Result<()> {
        let seq = self.last_seq + 1;
        let payload = serde_json::to_value(task).map_err(anyhow::Error::from)?;
        let at: OffsetDateTime = sqlx::query_scalar(
            "insert into events (project_id, seq, type, actor_id, payload)
             values ($1, $2, $3, $4, $5)
             returning created_at",
        )
        .bind(self.project)
        .bind(seq)
        .bind(kind)
        .bind(self.actor)
        .bind(payload)
        .fetch_one(&mut *self.tx)
        .await?;
        self.last_seq = seq;
        self.counters_changed = true;
        self.events.push(Event {
            project_id: self.project.to_string(),
            seq,
            kind: kind.to_owned(),
            actor_id: self.actor.to_string(),
            at: rfc3339(at),
            task: task.clone(),
        });
        Ok(())
    }

    /// Commits, returning the events written, in seq order.
    pub async fn commit(mut self) -> Result<Vec<Event>> {
        if self.counters_changed {
            sqlx::query(
                "update projects set last_task_id = $2, last_seq = $3 where project_id = $1",
            )
            .bind(self.project)
            .bind(self.last_task_id)
            .bind(self.last_seq)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(self.events)
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    #[sqlx(rename = "type")]
    kind: String,
    actor_id: Uuid,
    payload: serde_json::Value,
    created_at: OffsetDateTime,
}

/// `$1` project, `$2` after this seq, `$3` limit. Public for the index test.
pub const SINCE_SQL: &str = "select seq, type, actor_id, payload, created_at
       from events
      where project_id = $1 and seq > $2
      order by seq
      limit $3";

/// Events of `project` with seq greater than `since`, oldest first, at most `limit`.
pub async fn since(pool: &PgPool, project: Uuid, since: i64, limit: i64) -> Result<Vec<Event>> {
    let rows = sqlx::query_as::<_, EventRow>(SINCE_SQL)
        .bind(project)
        .bind(since)
        .bind(limit.clamp(1, MAX_PAGE))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Event {
                project_id: project.to_string(),
                seq: row.seq,
                kind: row.kind,
                actor_id: row.actor_id.to_string(),
                at: rfc3339(row.created_at),
                task: serde_json::from_value(row.payload).map_err(anyhow::Error::from)?,
            })
        })
        .collect()
}

/// The project's latest seq (0 before the first change).
pub async fn latest_seq(pool: &PgPool, project: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select last_seq from projects where project_id = $1")
            .bind(project)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// The latest seq of each of `projects` that exists.
pub async fn latest_seqs(pool: &PgPool, projects: &[Uuid]) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("select project_id, last_seq from projects where project_id = any($1)")
            .bind(projects)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}
