//! Webhooks and their dead letters.

use protocol::{DeadLetter, Webhook};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rfc3339;
use crate::error::Result;

#[derive(sqlx::FromRow)]
struct WebhookRow {
    webhook_id: Uuid,
    project_id: Uuid,
    url: String,
    event_types: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    delivered_seq: i64,
    created_at: OffsetDateTime,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.webhook_id.to_string(),
            project_id: row.project_id.to_string(),
            url: row.url,
            event_types: row.event_types,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            delivered_seq: row.delivered_seq,
            created_at: rfc3339(row.created_at),
        }
    }
}

const COLUMNS: &str =
    "webhook_id, project_id, url, event_types, enabled, disabled_reason, delivered_seq, created_at";

/// A new webhook of `project`, starting after the project's latest seq.
pub struct NewWebhook<'a> {
    pub project: Uuid,
    pub url: &'a str,
    pub secret: &'a str,
    pub event_types: &'a [String],
    pub max_attempts: i32,
    pub created_by: Uuid,
}

pub async fn create(pool: &PgPool, new: NewWebhook<'_>) -> Result<Webhook> {
    let row = sqlx::query_as::<_, WebhookRow>(&format!(
        "insert into webhooks (webhook_id, project_id, url, secret, event_types, max_attempts,
                               delivered_seq, created_by)
         select $1, $2, $3, $4, $5, $6, p.last_seq, $7 from projects p where p.project_id = $2
         returning {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.project)
    .bind(new.url)
    .bind(new.secret)
    .bind(new.event_types)
    .bind(new.max_attempts)
    .bind(new.created_by)
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

pub async fn count(pool: &PgPool, project: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from webhooks where project_id = $1")
            .bind(project)
            .fetch_one(pool)
            .await?,
    )
}

pub async fn list(pool: &PgPool, project: Uuid) -> Result<Vec<Webhook>> {
    let rows = sqlx::query_as::<_, WebhookRow>(&format!(
        "select {COLUMNS} from webhooks where project_id = $1 order by created_at, webhook_id"
    ))
    .bind(project)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Webhook::from).collect())
}

pub async fn get(pool: &PgPool, project: Uuid, webhook: Uuid) -> Result<Option<Webhook>> {
    let row = sqlx::query_as::<_, WebhookRow>(&format!(
        "select {COLUMNS} from webhooks where project_id = $1 and webhook_id = $2"
    ))
    .bind(project)
    .bind(webhook)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Webhook::from))
}

pub async fn delete(pool: &PgPool, project: Uuid, webhook: Uuid) -> Result<bool> {
    let deleted = sqlx::query("delete from webhooks where project_id = $1 and webhook_id = $2")
        .bind(project)
        .bind(webhook)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Enables a webhook again (from where it stopped) and wakes its delivery.
pub async fn enable(pool: &PgPool, project: Uuid, webhook: Uuid) -> Result<Option<Webhook>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, WebhookRow>(&format!(
        "update webhooks set enabled = true, disabled_reason = null, dead_in_a_row = 0
          where project_id = $1 and webhook_id = $2
         returning {COLUMNS}"
    ))
    .bind(project)
    .bind(webhook)
    .fetch_optional(&mut *tx)
    .await?;
    if row.is_some() {
        let max_attempts: i32 =
            sqlx::query_scalar("select max_attempts from webhooks where webhook_id = $1")
                .bind(webhook)
                .fetch_one(&mut *tx)
                .await?;
        crate::jobs::enqueue(
            &mut tx,
            crate::jobs::WEBHOOK,
            Some(&format!("webhook:{webhook}")),
            Some(project),
            serde_json::json!({ "webhook_id": webhook.to_string() }),
            max_attempts,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(row.map(Webhook::from))
}

pub async fn dead_letters(pool: &PgPool, webhook: Uuid) -> Result<Vec<DeadLetter>> {
    let rows: Vec<(i64, i32, String, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
        "select seq, attempts, last_error, failed_at, redelivered_at
           from webhook_dead_letters where webhook_id = $1 order by seq",
    )
    .bind(webhook)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(seq, attempts, last_error, failed_at, redelivered_at)| DeadLetter {
                seq,
                attempts,
                last_error,
                failed_at: rfc3339(failed_at),
                redelivered_at: redelivered_at.map(rfc3339),
            },
        )
        .collect())
}

/// Queues the redelivery of `seqs` (all pending dead letters when `None`);
/// the job's id.
pub async fn queue_redelivery(
    pool: &PgPool,
    project: Uuid,
    webhook: Uuid,
    seqs: Option<&[i64]>,
    requested_by: Uuid,
    max_attempts: i32,
) -> Result<Option<Uuid>> {
    let mut tx = pool.begin().await?;
    let job = crate::jobs::enqueue(
        &mut tx,
        crate::jobs::WEBHOOK_REDELIVERY,
        None,
        Some(project),
        serde_json::json!({ "webhook_id": webhook.to_string(), "seqs": seqs }),
        max_attempts,
        Some(requested_by),
    )
    .await?;
    tx.commit().await?;
    Ok(job)
}
