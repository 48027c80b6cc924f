//! Background jobs: a durable queue in PostgreSQL and a worker on every
//! instance.
//!
//! A job is a row. It is enqueued in the transaction of the change that
//! causes it (so it exists exactly when the change does), claimed with
//! `FOR UPDATE SKIP LOCKED` under a lease, and finished, retried after an
//! exponential backoff with jitter, or dead after its attempts. A job whose
//! instance dies is taken over by another when its lease runs out; handlers
//! are written to be run again (at least once). Jobs with the same
//! `queue_key` run one at a time (a partial unique index): a webhook's
//! deliveries stay in seq order.

pub mod imports;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::app::App;
use crate::db::rfc3339;
use crate::error::{Error, Result};

/// Kinds of job.
pub const WEBHOOK: &str = "webhook";
pub const WEBHOOK_REDELIVERY: &str = "webhook_redelivery";
pub const IMPORT: &str = "import";

/// How the queue runs (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// A claimed job is this instance's for this long (renewed while it runs).
    pub lease: Duration,
    /// First retry after about this long; doubled each attempt.
    pub retry_base: Duration,
    /// Retries wait at most this long.
    pub retry_cap: Duration,
    /// Jobs one instance runs at once.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs.
    pub poll: Duration,
}

/// A job as a worker holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub job_id: Uuid,
    pub kind: String,
    pub queue_key: Option<String>,
    pub project_id: Option<Uuid>,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Who asked for it, told over Socket.IO as it moves on.
    pub created_by: Option<Uuid>,
}

/// What a handler says about its run.
#[derive(Debug)]
pub enum Outcome {
    /// Finished, with this result.
    Done(Value),
    /// More to do: run again at once (the lease is not held meanwhile).
    Again,
    /// Failed this time; retry after a backoff, or dead after the attempts.
    Failed(String),
}

/// The wait before retry number `attempt` (1-based): `base · 2^(attempt-1)`,
/// at most `cap`, scaled by a random factor in [0.5, 1] so that jobs that
/// failed together do not all come back together.
pub fn backoff(attempt: i32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = attempt.clamp(1, 30) - 1;
    let raw = base.saturating_mul(1u32 << exponent).min(cap);
    raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Enqueues a job in the caller's transaction. With a `queue_key` that
/// already has a queued or running job, that job is told to run once more
/// when it ends (`rerun`), which it then does, seeing whatever this one
/// would have: taking the row's lock, this cannot slip between its last
/// look and its end. Returns the job's id (the new one, or the one told).
pub async fn enqueue(
    connection: &mut PgConnection,
    kind: &str,
    queue_key: Option<&str>,
    project: Option<Uuid>,
    payload: Value,
    max_attempts: i32,
    created_by: Option<Uuid>,
) -> Result<Option<Uuid>> {
    let job_id = Uuid::now_v7();
    let job: Option<Uuid> = sqlx::query_scalar(
        "insert into jobs (job_id, kind, queue_key, project_id, payload, max_attempts, created_by)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (queue_key) where state in ('queued', 'running') and queue_key is not null
         do update set rerun = true
         returning job_id",
    )
    .bind(job_id)
    .bind(kind)
    .bind(queue_key)
    .bind(project)
    .bind(payload)
    .bind(max_attempts.max(1))
    .bind(created_by)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(job)
}

/// Claims up to `limit` due jobs (and running ones whose lease ran out)
/// for `worker`.
async fn claim(pool: &PgPool, worker: &str, limit: i64, lease: Duration) -> Result<Vec<Job>> {
    Ok(sqlx::query_as(
        "with due as (
             select job_id from jobs
              where (state = 'queued' and run_at <= now())
                 or (state = 'running' and lease_until < now())
              order by run_at
              limit $1
              for update skip locked)
         update jobs j
            set state = 'running', attempts = j.attempts + 1, leased_by = $2, rerun = false,
                lease_until = now() + make_interval(secs => $3), updated_at = now()
           from due
          where j.job_id = due.job_id
         returning j.job_id, j.kind, j.queue_key, j.project_id, j.payload, j.attempts, j.max_attempts,
                   j.created_by",
    )
    .bind(limit)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?)
}

/// Keeps a running job's lease (a long handler calls this between steps).
pub async fn renew(pool: &PgPool, job: Uuid, worker: &str, lease: Duration) -> Result<bool> {
    let renewed = sqlx::query(
        "update jobs set lease_until = now() + make_interval(secs => $3), updated_at = now()
          where job_id = $1 and leased_by = $2 and state = 'running'",
    )
    .bind(job)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Records a handler's progress (shown by `GET /api/v1/jobs/{id}`).
pub async fn report_progress(pool: &PgPool, job: Uuid, progress: Value) -> Result<()> {
    sqlx::query("update jobs set progress = $2, updated_at = now() where job_id = $1")
        .bind(job)
        .bind(progress)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a run as the handler said, if this worker still holds the job (an
/// instance that lost its lease leaves the job to the one that took it).
async fn finish(
    pool: &PgPool,
    job: &Job,
    worker: &str,
    outcome: &Outcome,
    settings: &QueueSettings,
) -> Result<()> {
    match outcome {
        Outcome::Done(result) => {
            // Told to run again meanwhile: back to the queue, as new work.
            sqlx::query(
                "update jobs
                    set state = case when rerun then 'queued' else 'done' end,
                        attempts = case when rerun then 0 else attempts end,
                        rerun = false, run_at = now(), result = $3, lease_until = null,
                        updated_at = now()
                  where job_id = $1 and leased_by = $2 and state = 'running'",
            )
            .bind(job.job_id)
            .bind(worker)
            .bind(result)
            .execute(pool)
            .await?;
        }
        Outcome::Again => {
            // Not an attempt that failed: give it back.
            sqlx::query(
                "update jobs set state = 'queued', attempts = greatest(attempts - 1, 0),
                        run_at = now(), lease_until = null, updated_at = now()
                  where job_id = $1 and leased_by = $2 and state = 'running'",
            )
            .bind(job.job_id)
            .bind(worker)
            .execute(pool)
            .await?;
        }
        Outcome::Failed(error) => {
            let wait = backoff(
                job.attempts,
                settings.retry_base,
                settings.retry_cap,
                rand::thread_rng().gen(),
            );
            let dead: Option<bool> = sqlx::query_scalar(
                "update jobs
                    set state = case when attempts >= max_attempts then 'dead' else 'queued' end,
                        run_at = now() + make_interval(secs => $4), last_error = $3,
                        lease_until = null, updated_at = now()
                  where job_id = $1 and leased_by = $2 and state = 'running'
                 returning state = 'dead'",
            )
            .bind(job.job_id)
            .bind(worker)
            .bind(truncate(error, 2000))
            .bind(wait.as_secs_f64())
            .fetch_optional(pool)
            .await?;
            metrics::counter!("jobs_failed_total", "kind" => job.kind.clone()).increment(1);
            if dead == Some(true) {
                metrics::counter!("jobs_dead_total", "kind" => job.kind.clone()).increment(1);
                tracing::warn!(job = %job.job_id, kind = %job.kind, %error, "job dead after its attempts");
            }
        }
    }
    Ok(())
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// A job as `GET /api/v1/jobs/{id}` shows it.
pub async fn status(
    pool: &PgPool,
    job: Uuid,
) -> Result<Option<(protocol::JobStatus, Option<Uuid>, Option<Uuid>)>> {
    type Row = (
        Uuid,
        String,
        String,
        i32,
        i32,
        OffsetDateTime,
        Option<Value>,
        Option<Value>,
        Option<String>,
        OffsetDateTime,
        OffsetDateTime,
        Option<Uuid>,
        Option<Uuid>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select job_id, kind, state, attempts, max_attempts, run_at, progress, result, last_error,
                created_at, updated_at, project_id, created_by
           from jobs where job_id = $1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(
            id,
            kind,
            state,
            attempts,
            max_attempts,
            run_at,
            progress,
            result,
            last_error,
            created_at,
            updated_at,
            project,
            created_by,
        )| {
            (
                protocol::JobStatus {
                    id: id.to_string(),
                    kind,
                    state,
                    attempts,
                    max_attempts,
                    run_at: rfc3339(run_at),
                    progress,
                    result,
                    last_error,
                    created_at: rfc3339(created_at),
                    updated_at: rfc3339(updated_at),
                },
                project,
                created_by,
            )
        },
    ))
}

/// Runs due jobs, forever: claims what it has room for, runs each on a
/// task of its own, and polls again when idle.
pub async fn work_forever(app: App, worker: String) {
    let settings = app.config().queue_settings();
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    // Owned here, so that stopping the worker (shutdown) stops its jobs too:
    // their leases run out and another instance takes them over.
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        if free == 0 {
            tokio::time::sleep(settings.poll).await;
            continue;
        }
        let claimed = match claim(app.db(), &worker, free as i64, settings.lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "could not claim jobs");
                tokio::time::sleep(settings.poll.max(Duration::from_secs(1))).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(settings.poll) => {}
                () = app.next_job_queued() => {}
            }
            continue;
        }
        for job in claimed {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let app = app.clone();
            let worker = worker.clone();
            running.spawn(async move {
                let _slot = slot;
                let outcome = run(&app, &job, &worker, &settings).await;
                if let Err(error) = finish(app.db(), &job, &worker, &outcome, &settings).await {
                    tracing::warn!(job = %job.job_id, %error, "could not record a job's outcome");
                }
                if !matches!(outcome, Outcome::Again) {
                    tell_owner(&app, &job).await;
                }
            });
        }
    }
}

/// The queue's gauges (`jobs{state}`, the age of the oldest due job), every
/// few seconds.
pub async fn sample_forever(app: App) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = sample_metrics(app.db()).await {
            tracing::debug!(%error, "could not sample the job queue");
        }
    }
}

async fn run(app: &App, job: &Job, worker: &str, settings: &QueueSettings) -> Outcome {
    let context = Context {
        app,
        job,
        worker,
        settings,
    };
    let result = match job.kind.as_str() {
        WEBHOOK => webhooks::deliver(&context).await,
        WEBHOOK_REDELIVERY => webhooks::redeliver(&context).await,
        IMPORT => imports::run(&context).await,
        other => Err(Error::Internal(anyhow::anyhow!(
            "no handler for jobs of kind {other}"
        ))),
    };
    result.unwrap_or_else(|error| Outcome::Failed(error.to_string()))
}

/// What a handler gets.
pub struct Context<'a> {
    pub app: &'a App,
    pub job: &'a Job,
    pub worker: &'a str,
    pub settings: &'a QueueSettings,
}

/// Tells whoever asked for `job` where it is now (over Socket.IO).
async fn tell_owner(app: &App, job: &Job) {
    let Some(user) = job.created_by else { return };
    match status(app.db(), job.job_id).await {
        Ok(Some((status, _, _))) => app.job_changed(user, status).await,
        Ok(None) => {}
        Err(error) => {
            tracing::debug!(job = %job.job_id, %error, "could not read a job to tell its owner")
        }
    }
}

impl Context<'_> {
    /// Records the handler's progress and tells whoever asked for the job.
    pub async fn progress(&self, progress: Value) -> Result<()> {
        report_progress(self.app.db(), self.job.job_id, progress).await?;
        tell_owner(self.app, self.job).await;
        Ok(())
    }

    /// Renews the lease; `false` when another instance has taken the job.
    pub async fn keep(&self) -> Result<bool> {
        renew(
            self.app.db(),
            self.job.job_id,
            self.worker,
            self.settings.lease,
        )
        .await
    }
}

async fn sample_metrics(pool: &PgPool) -> Result<()> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select state, count(*) from jobs where state in ('queued', 'running', 'dead') group by state",
    )
    .fetch_all(pool)
    .await?;
    for state in ["queued", "running", "dead"] {
        let count = rows
            .iter()
            .find(|(name, _)| name == state)
            .map_or(0, |(_, count)| *count);
        metrics::gauge!("jobs", "state" => state).set(count as f64);
    }
    let oldest: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from now() - min(run_at))::float8 from jobs
          where state = 'queued' and run_at <= now()",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("jobs_oldest_due_age_seconds").set(oldest.unwrap_or(0.0).max(0.0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_below_it() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, base, cap, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(4, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(100, base, cap, 1.0), cap, "no overflow");
        assert_eq!(
            backoff(3, base, cap, 0.0),
            Duration::from_secs(2),
            "half at least"
        );
        let jittered = backoff(3, base, cap, 0.3);
        assert!(jittered > Duration::from_secs(2) && jittered < Duration::from_secs(4));
    }
}
