//! Tasks and the project's change log.

use protocol::{EventPage, NewTask, Task, TaskPatch, TaskStatus};

use super::{Actor, App, Need};
use crate::db;
use crate::error::{Error, Result};

/// A page of a project's task list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only tasks with one of these statuses (all when empty).
    pub statuses: Vec<TaskStatus>,
    /// Tasks with a greater id than this.
    pub after: i64,
    /// At most this many.
    pub limit: i64,
}

impl App {
    pub async fn create_task(&self, actor: &Actor, project_id: &str, new: NewTask) -> Result<Task> {
        let access = self.authorize(actor, project_id, Need::Write).await?;
        let (task, events) = db::tasks::create(self.db(), access.project, actor.id, new).await?;
        self.after_commit(events).await;
        Ok(task)
    }

    /// Applies `patch`; `if_match` is the version the caller last saw.
    pub async fn update_task(
        &self,
        actor: &Actor,
        project_id: &str,
        task_id: i64,
        patch: TaskPatch,
        if_match: Option<i64>,
    ) -> Result<Task> {
        let access = self.authorize(actor, project_id, Need::Write).await?;
        let (task, events) = db::tasks::update(
            self.db(),
            access.project,
            actor.id,
            task_id,
            patch,
            if_match,
        )
        .await?;
        self.after_commit(events).await;
        Ok(task)
    }

    /// Deletes a task with its subtasks; tasks that depended on it lose that dependency.
    pub async fn delete_task(
        &self,
        actor: &Actor,
        project_id: &str,
        task_id: i64,
        if_match: Option<i64>,
    ) -> Result<()> {
        let access = self.authorize(actor, project_id, Need::Write).await?;
        let events =
            db::tasks::delete(self.db(), access.project, actor.id, task_id, if_match).await?;
        self.after_commit(events).await;
        Ok(())
    }

    pub async fn task(&self, actor: &Actor, project_id: &str, task_id: i64) -> Result<Task> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        db::tasks::get(self.db(), access.project, task_id)
            .await?
            .ok_or_else(|| Error::task_not_found(task_id))
    }

    /// Up to `query.limit` tasks in id order, plus one more if there is one
    /// (so the caller can tell whether another page follows).
    pub async fn tasks(
        &self,
        actor: &Actor,
        project_id: &str,
        query: &TaskQuery,
    ) -> Result<Vec<Task>> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        db::tasks::list(
            self.db(),
            access.project,
            &query.statuses,
            query.after,
            query.limit + 1,
        )
        .await
    }

    /// The task to work on next (Task Master's rule), if any.
    pub async fn next_task(&self, actor: &Actor, project_id: &str) -> Result<Option<Task>> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        db::tasks::next(self.db(), access.project).await
    }

    /// The project's change log after `since`, oldest first.
    pub async fn events(
        &self,
        actor: &Actor,
        project_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<EventPage> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        let latest_seq = db::events::latest_seq(self.db(), access.project).await?;
        if since > latest_seq {
            return Err(Error::Invalid(
                "invalid_since",
                format!("since {since} is after the latest seq {latest_seq}"),
            ));
        }
        let items = db::events::since(self.db(), access.project, since, limit).await?;
        Ok(EventPage { items, latest_seq })
    }
}
