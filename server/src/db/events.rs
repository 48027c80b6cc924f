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
        // Timed with the reads' pool waits: for a write the wait includes
        // the BEGIN round trip, a few tens of microseconds on a healthy pool.
        let started = std::time::Instant::now();
        let tx = pool.begin().await;
        metrics::histogram!("db_pool_acquire_seconds", "pool" => "primary")
            .record(started.elapsed().as_secs_f64());
        let mut tx = tx?;
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

    /// Commits, returning the events written, in seq order. The project's
    /// webhooks get their delivery job in the same transaction (the
    /// outbox): it exists exactly when the events do.
    pub async fn commit(mut self) -> Result<Vec<Event>> {
        if !self.events.is_empty() {
            sqlx::query(
                "insert into jobs (job_id, kind, queue_key, project_id, payload, max_attempts)
                 select gen_random_uuid(), $2, 'webhook:' || w.webhook_id, w.project_id,
                        jsonb_build_object('webhook_id', w.webhook_id), w.max_attempts
                   from webhooks w
                  where w.project_id = $1 and w.enabled
                 on conflict (queue_key) where state in ('queued', 'running') and queue_key is not null
                 do update set rerun = true",
            )
            .bind(self.project)
            .bind(crate::jobs::WEBHOOK)
            .execute(&mut *self.tx)
            .await?;
        }
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

/// The project's latest seq and the seq through which its log may have been
/// pruned (a `since` below it cannot be served), or `None` for no project.
pub async fn bounds(pool: &PgPool, project: Uuid) -> Result<Option<(i64, i64)>> {
    Ok(
        sqlx::query_as(
            "select last_seq, events_pruned_through from projects where project_id = $1",
        )
        .bind(project)
        .fetch_optional(pool)
        .await?,
    )
}

/// How much of the change log to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Drop events older than this.
    pub max_age: Option<std::time::Duration>,
    /// Keep at most this many of each project's latest events.
    pub per_project: Option<i64>,
}

/// Events deleted by one retention statement, at most: keeps each
/// transaction (and the row locks it takes) short.
const RETENTION_BATCH: i64 = 10_000;

/// Serialises retention passes across instances (an arbitrary constant:
/// "tm.events.retention").
const RETENTION_LOCK: i64 = 0x0074_6d65_7672_6574;

/// Applies `retention` until nothing is left to delete, one short
/// transaction per batch. Each batch first takes a transaction-scoped
/// advisory lock without waiting: when another instance holds it, this
/// pass stops, since that instance is doing the same work. Every batch moves
/// `events_pruned_through` forward with its deletions, in the same
/// transaction, so a reader never finds events missing that the projects
/// row says are kept. Returns how many events were deleted.
pub async fn apply_retention(pool: &PgPool, retention: Retention) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let mut tx = pool.begin().await?;
        let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(deleted);
        }
        let mut progress = false;
        if let Some(keep) = retention.per_project {
            // Projects with more than `keep` events since their last pruning,
            // each pruned by at most a batch per pass.
            let (gone, moved): (i64, i64) = sqlx::query_as(
                "with over as (
                     select project_id,
                            least(last_seq - $1, events_pruned_through + $2) as through
                       from projects
                      where last_seq - $1 > events_pruned_through
                      limit 100
                      for update),
                 gone as (
                     delete from events e using over
                      where e.project_id = over.project_id and e.seq <= over.through
                      returning 1),
                 moved as (
                     update projects p set events_pruned_through = over.through
                       from over where p.project_id = over.project_id
                     returning 1)
                 select (select count(*) from gone), (select count(*) from moved)",
            )
            .bind(keep)
            .bind(RETENTION_BATCH)
            .fetch_one(&mut *tx)
            .await?;
            deleted += gone as u64;
            // Projects whose events were already gone still move forward.
            progress |= gone > 0 || moved > 0;
        }
        if let Some(max_age) = retention.max_age {
            let age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            let gone: i64 = sqlx::query_scalar(
                "with gone as (
                     delete from events
                      where (project_id, seq) in (
                          select project_id, seq from events
                           where created_at < now() - make_interval(secs => $1)
                           limit $2)
                      returning project_id, seq),
                 through as (
                     select project_id, max(seq) as seq from gone group by project_id),
                 moved as (
                     update projects p
                        set events_pruned_through = greatest(p.events_pruned_through, through.seq)
                       from through where p.project_id = through.project_id)
                 select count(*) from gone",
            )
            .bind(age as f64)
            .bind(RETENTION_BATCH)
            .fetch_one(&mut *tx)
            .await?;
            deleted += gone as u64;
            progress |= gone > 0;
        }
        tx.commit().await?;
        if !progress {
            return Ok(deleted);
        }
    }
}
