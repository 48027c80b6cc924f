//! Webhooks of a project (owners only), their dead letters and redelivery,
//! and the status of background jobs.

use protocol::{
    event_type, CreateWebhookRequest, CreatedWebhook, DeadLetter, JobStatus, RedeliverRequest,
    Webhook,
};
use uuid::Uuid;

use super::{Actor, App, Need};
use crate::db;
use crate::error::{Error, Result};

/// Webhooks per project, at most.
pub const MAX_WEBHOOKS_PER_PROJECT: i64 = 20;

fn webhook_not_found() -> Error {
    Error::NotFound(
        "webhook_not_found",
        "no such webhook in this project".into(),
    )
}

fn job_not_found() -> Error {
    Error::NotFound("job_not_found", "job not found".into())
}

impl App {
    /// Registers a webhook: every committed event of the project (of the
    /// types asked for) from now on is posted to `url`, signed.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        request: CreateWebhookRequest,
    ) -> Result<CreatedWebhook> {
        let access = self.authorize(actor, project_id, Need::Manage).await?;
        let url = request.url.trim();
        if url.len() > 2048 {
            return Err(Error::Invalid(
                "invalid_webhook_url",
                "a webhook URL is at most 2048 characters".into(),
            ));
        }
        crate::jobs::webhooks::resolve(url, self.config().webhook_allow_private_addresses).await?;
        let known = [
            event_type::TASK_CREATED,
            event_type::TASK_UPDATED,
            event_type::TASK_DELETED,
        ];
        let mut event_types = request.event_types.unwrap_or_default();
        event_types.sort();
        event_types.dedup();
        if let Some(unknown) = event_types
            .iter()
            .find(|kind| !known.contains(&kind.as_str()))
        {
            return Err(Error::validation(format!(
                "unknown event type {unknown:?}; the types are {}",
                known.join(", ")
            )));
        }
        if db::webhooks::count(self.db(), access.project).await? >= MAX_WEBHOOKS_PER_PROJECT {
            return Err(Error::Conflict(
                "too_many_webhooks",
                format!("a project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks"),
            ));
        }
        let (random, _) = crate::auth::new_token();
        let secret = format!("whsec_{random}");
        let webhook = db::webhooks::create(
            self.db(),
            db::webhooks::NewWebhook {
                project: access.project,
                url,
                secret: &secret,
                event_types: &event_types,
                max_attempts: self.config().webhook_max_attempts.max(1),
                created_by: actor.id,
            },
        )
        .await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    pub async fn webhooks(&self, actor: &Actor, project_id: &str) -> Result<Vec<Webhook>> {
        let access = self.authorize(actor, project_id, Need::Manage).await?;
        db::webhooks::list(self.db(), access.project).await
    }

    async fn webhook_of(
        &self,
        actor: &Actor,
        project_id: &str,
        webhook_id: &str,
    ) -> Result<(Uuid, Uuid)> {
        let access = self.authorize(actor, project_id, Need::Manage).await?;
        let webhook = Uuid::parse_str(webhook_id).map_err(|_| webhook_not_found())?;
        db::webhooks::get(self.db(), access.project, webhook)
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok((access.project, webhook))
    }

    pub async fn delete_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        webhook_id: &str,
    ) -> Result<()> {
        let (project, webhook) = self.webhook_of(actor, project_id, webhook_id).await?;
        db::webhooks::delete(self.db(), project, webhook).await?;
        Ok(())
    }

    /// Turns a disabled webhook back on; it goes on from where it stopped.
    pub async fn enable_webhook(
        &self,
        actor: &Actor,
        project_id: &str,
        webhook_id: &str,
    ) -> Result<Webhook> {
        let (project, webhook) = self.webhook_of(actor, project_id, webhook_id).await?;
        db::webhooks::enable(self.db(), project, webhook)
            .await?
            .ok_or_else(webhook_not_found)
    }

    pub async fn dead_letters(
        &self,
        actor: &Actor,
        project_id: &str,
        webhook_id: &str,
    ) -> Result<Vec<DeadLetter>> {
        let (_, webhook) = self.webhook_of(actor, project_id, webhook_id).await?;
        db::webhooks::dead_letters(self.db(), webhook).await
    }

    /// Sends dead letters again, as a job; its status.
    pub async fn redeliver(
        &self,
        actor: &Actor,
        project_id: &str,
        webhook_id: &str,
        request: RedeliverRequest,
    ) -> Result<JobStatus> {
        let (project, webhook) = self.webhook_of(actor, project_id, webhook_id).await?;
        let job = db::webhooks::queue_redelivery(
            self.db(),
            project,
            webhook,
            request.seqs.as_deref(),
            actor.id,
            self.config().webhook_max_attempts.max(1),
        )
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a redelivery job was not queued")))?;
        self.job_queued();
        self.job(actor, &job.to_string()).await
    }

    /// A background job: visible to whoever asked for it, and to the owners
    /// of its project.
    pub async fn job(&self, actor: &Actor, job_id: &str) -> Result<JobStatus> {
        let job = Uuid::parse_str(job_id).map_err(|_| job_not_found())?;
        let (status, project, created_by) = crate::jobs::status(self.db(), job)
            .await?
            .ok_or_else(job_not_found)?;
        if created_by == Some(actor.id) {
            return Ok(status);
        }
        match project {
            Some(project) => {
                self.authorize(actor, &project.to_string(), Need::Manage)
                    .await
                    .map_err(|_| job_not_found())?;
                Ok(status)
            }
            None => Err(job_not_found()),
        }
    }
}
