//! Imports run in the background (`POST /api/v1/imports` with
//! `Prefer: respond-async`): the file was checked when it was queued; the
//! job writes it in one transaction, telling its progress as it goes.

use std::time::Duration;

use serde::Deserialize as _;
use serde_json::json;
use tokio::sync::watch;

use super::{Context, Outcome};
use crate::app::imports::ImportJob;
use crate::error::{Error, Result};

/// Progress is told at most this often (each telling is a write and a
/// Socket.IO message to the importer's connections).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub async fn run(context: &Context<'_>) -> Result<Outcome> {
    let job = ImportJob::deserialize(&context.job.payload)
        .map_err(|error| Error::Internal(anyhow::anyhow!("an import job's payload: {error}")))?;
    let Some(owner) = context.job.created_by else {
        return Err(Error::Internal(anyhow::anyhow!(
            "an import job without the user who asked for it"
        )));
    };
    let checked = crate::app::imports::CheckedImport::check(job.source.as_bytes())?;
    let total = checked.task_count();
    context
        .progress(json!({"tasks_done": 0, "tasks_total": total}))
        .await?;

    // The import sends its count into a watch (one value, never more);
    // the reporter below tells it at most every PROGRESS_EVERY and keeps
    // the lease, until the import ends and drops the sender.
    let (counted, mut count) = watch::channel(0usize);
    let import = async move {
        let inserted = move |done: usize| {
            counted.send_replace(done);
        };
        context
            .app
            .run_import_job(owner, context.job.job_id, &checked, &job, &inserted)
            .await
    };
    let report = async {
        // The first count is told at once; later ones at most every
        // PROGRESS_EVERY.
        let mut told_at: Option<tokio::time::Instant> = None;
        while count.changed().await.is_ok() {
            // Counts that come sooner are skipped, not waited for: the
            // import's end is never held back by a pause here.
            if told_at.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
                continue;
            }
            told_at = Some(tokio::time::Instant::now());
            let done = *count.borrow_and_update();
            let told = context
                .progress(json!({"tasks_done": done, "tasks_total": total}))
                .await;
            if let Err(error) = told.and(context.keep().await.map(|_| ())) {
                tracing::debug!(%error, "could not record an import's progress");
            }
        }
    };
    let (imported, ()) = tokio::join!(import, report);
    Ok(Outcome::Done(
        serde_json::to_value(imported?).map_err(anyhow::Error::from)?,
    ))
}
