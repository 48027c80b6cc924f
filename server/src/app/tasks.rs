//! Tasks and the project's change log.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::{HashMap, HashSet};

use protocol::{
    BulkChange, BulkResult, BulkSet, EventPage, NewTask, Task, TaskPage, TaskPatch, TaskStatus,
};
use uuid::Uuid;

use super::{access, Actor, App, Need};
use crate::cache::{Kind, Snapshot};
use crate::db;
use crate::error::{Error, Result};

/// A page size when the caller names none.
pub const DEFAULT_PAGE: i64 = 100;

/// The seq a stamped read reports for a project it could not find.
const BEFORE_PROJECT: i64 = -1;

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

impl TaskQuery {
    /// What distinguishes this page from the project's other pages.
    fn cache_key(&self) -> String {
        let mut statuses: Vec<&str> = self.statuses.iter().map(|status| status.as_str()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        format!("list:{}:{}:{}", self.after, self.limit, statuses.join(","))
    }
}

/// The answer to a read the caller may already have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional {
    /// Still as at this seq: the caller's copy is current.
    NotModified(i64),
    Body(Snapshot),
}

impl Conditional {
    fn fresh(snapshot: Snapshot, if_seq: Option<i64>) -> Self {
        if if_seq == Some(snapshot.seq) {
            Conditional::NotModified(snapshot.seq)
        } else {
            Conditional::Body(snapshot)
        }
    }
}

/// Cursors are opaque to clients: a version tag and the last id of the page.
pub fn encode_cursor(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{last_id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<i64> {
    let invalid = || {
        Error::Malformed(
            "invalid_cursor",
            "cursor is not one this server issued".into(),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    text.strip_prefix("v1:")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .ok_or_else(invalid)
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

    /// Applies one change to many tasks as one change set: checked whole,
    /// written in one transaction, one event per task changed.
    pub async fn bulk_change(
        &self,
        actor: &Actor,
        project_id: &str,
        change: BulkChange,
    ) -> Result<BulkResult> {
        let access = self.authorize(actor, project_id, Need::Write).await?;
        let checked = CheckedBulk::new(change)?;
        let (tasks, deleted, events) = db::tasks::bulk(
            self.db(),
            access.project,
            actor.id,
            &checked.ids,
            &checked.change,
            &checked.if_versions,
        )
        .await?;
        let seq = events.last().map(|event| event.seq);
        metrics::counter!("bulk_changes_total").increment(1);
        self.after_commit(events).await;
        Ok(BulkResult {
            tasks,
            deleted,
            seq,
        })
    }

    /// One task. `seen` is a seq the caller says it has seen: the answer
    /// includes it (and everything the caller was told of) wherever it is
    /// read from.
    pub async fn task(
        &self,
        actor: &Actor,
        project_id: &str,
        task_id: i64,
        seen: Option<i64>,
    ) -> Result<Task> {
        let project = access::project_id(project_id)?;
        actor.check_grant(project, Need::Read)?;
        // The caller's role and the task in one cache round trip.
        self.cache()
            .task_for(
                project,
                actor.id,
                task_id,
                self.role_in_database(project, actor.id),
                |role| access::admit(role, Need::Read).map(drop),
                async |stamp| {
                    let need = self.known_seq(project, stamp, seen);
                    let (task, seq) = self
                        .database()
                        .read(need, move |connection| {
                            Box::pin(async move {
                                let found =
                                    db::tasks::get_stamped(connection, project, task_id).await?;
                                Ok(found.unwrap_or((None, BEFORE_PROJECT)))
                            })
                        })
                        .await?;
                    if seq == BEFORE_PROJECT {
                        return Err(Error::project_not_found());
                    }
                    Ok((task, seq))
                },
            )
            .await?
            .ok_or_else(|| Error::task_not_found(task_id))
    }

    /// A page of the task list as the contract's `TaskPage` JSON, or
    /// `NotModified` when the project is still at `if_seq` (the seq of the
    /// page the caller has).
    pub async fn tasks(
        &self,
        actor: &Actor,
        project_id: &str,
        query: &TaskQuery,
        if_seq: Option<i64>,
        seen: Option<i64>,
    ) -> Result<Conditional> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        if let Some(unchanged) = self.unchanged(access.project, if_seq).await {
            return Ok(unchanged);
        }
        let snapshot = self.task_page(access.project, query, seen).await?;
        Ok(Conditional::fresh(snapshot, if_seq))
    }

    async fn task_page(
        &self,
        project: Uuid,
        query: &TaskQuery,
        seen: Option<i64>,
    ) -> Result<Snapshot> {
        self.cache()
            .derived(Kind::List, project, &query.cache_key(), async |stamp| {
                let need = self.known_seq(project, stamp, seen);
                let (mut items, seq) = self
                    .database()
                    .read(need, |connection| {
                        let query = query.clone();
                        Box::pin(async move {
                            let found = db::tasks::list_stamped(
                                connection,
                                project,
                                &query.statuses,
                                query.after,
                                query.limit + 1,
                            )
                            .await?;
                            Ok(found.unwrap_or((Vec::new(), BEFORE_PROJECT)))
                        })
                    })
                    .await?;
                if seq == BEFORE_PROJECT {
                    return Err(Error::project_not_found());
                }
                // One more than asked tells whether another page follows.
                let next_cursor = if items.len() as i64 > query.limit {
                    items.truncate(query.limit as usize);
                    items.last().map(|task| encode_cursor(task.id))
                } else {
                    None
                };
                let page = TaskPage { items, next_cursor };
                Ok(Snapshot {
                    json: serde_json::to_vec(&page)
                        .map_err(anyhow::Error::from)?
                        .into(),
                    seq,
                })
            })
            .await
    }

    /// The task to work on next (Task Master's rule) as task JSON, empty
    /// when there is none; or `NotModified` as for [`App::tasks`].
    pub async fn next_task(
        &self,
        actor: &Actor,
        project_id: &str,
        if_seq: Option<i64>,
        seen: Option<i64>,
    ) -> Result<Conditional> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        if let Some(unchanged) = self.unchanged(access.project, if_seq).await {
            return Ok(unchanged);
        }
        let snapshot = self.next_snapshot(access.project, seen).await?;
        Ok(Conditional::fresh(snapshot, if_seq))
    }

    async fn next_snapshot(&self, project: Uuid, seen: Option<i64>) -> Result<Snapshot> {
        self.cache()
            .derived(Kind::Next, project, "next", async |stamp| {
                let need = self.known_seq(project, stamp, seen);
                let (task, seq) = self
                    .database()
                    .read(need, move |connection| {
                        Box::pin(async move {
                            let found = db::tasks::next_stamped(connection, project).await?;
                            Ok(found.unwrap_or((None, BEFORE_PROJECT)))
                        })
                    })
                    .await?;
                if seq == BEFORE_PROJECT {
                    return Err(Error::project_not_found());
                }
                let json = match task {
                    Some(task) => serde_json::to_vec(&task).map_err(anyhow::Error::from)?,
                    None => Vec::new(),
                };
                Ok(Snapshot {
                    json: json.into(),
                    seq,
                })
            })
            .await
    }

    /// `NotModified` when the cache's stamp says the project is still at
    /// `if_seq`: answered without touching PostgreSQL.
    async fn unchanged(&self, project: Uuid, if_seq: Option<i64>) -> Option<Conditional> {
        let if_seq = if_seq?;
        (self.cache().stamp(project).await? == if_seq).then_some(Conditional::NotModified(if_seq))
    }

    /// Fills the cache with what clients of a project read first (the first
    /// page of tasks, next-task), in the background. Called when a client
    /// joins the project here; a project warmed at its current seq is not
    /// read again.
    pub fn warm(&self, project: Uuid) {
        if !self.cache().is_enabled() {
            return;
        }
        let app = self.clone();
        tokio::spawn(async move {
            let first_page = TaskQuery {
                statuses: Vec::new(),
                after: 0,
                limit: DEFAULT_PAGE,
            };
            let page = app.task_page(project, &first_page, None).await;
            let next = app.next_snapshot(project, None).await;
            if let Err(error) = page.and(next) {
                tracing::debug!(%error, %project, "could not warm the cache");
            }
        });
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
        let (latest_seq, pruned_through) = db::events::bounds(self.db(), access.project)
            .await?
            .ok_or_else(Error::project_not_found)?;
        if since < pruned_through {
            return Err(Error::Gone(
                "resync_required",
                format!("events up to seq {pruned_through} are no longer kept; reload the tasks instead"),
            ));
        }
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

/// A bulk change checked as a whole before anything is read.
struct CheckedBulk {
    ids: Vec<i64>,
    change: db::tasks::Bulk,
    if_versions: HashMap<i64, i64>,
}

impl CheckedBulk {
    fn new(change: BulkChange) -> Result<CheckedBulk> {
        let ids = change.task_ids;
        if ids.is_empty() || ids.len() > db::tasks::MAX_BULK_TASKS {
            return Err(Error::validation(format!(
                "task_ids must name 1 to {} tasks, not {}",
                db::tasks::MAX_BULK_TASKS,
                ids.len()
            )));
        }
        let mut named = HashSet::with_capacity(ids.len());
        if let Some(twice) = ids.iter().find(|id| !named.insert(**id)) {
            return Err(Error::validation(format!(
                "task {twice} is named twice in task_ids"
            )));
        }
        let bulk =
            match (change.set, change.delete) {
                (Some(_), Some(true)) => {
                    return Err(Error::validation(
                        "give either `set` or `delete: true`, not both",
                    ))
                }
                (Some(set), _) => {
                    if set == BulkSet::default() {
                        return Err(Error::validation(
                            "`set` names no field: give status, priority or assignee_id",
                        ));
                    }
                    db::tasks::Bulk::Set(TaskPatch {
                        status: set.status,
                        priority: set.priority,
                        assignee_id: set.assignee_id,
                        ..TaskPatch::default()
                    })
                }
                (None, Some(true)) => db::tasks::Bulk::Delete,
                (None, _) => return Err(Error::validation(
                    "nothing to do: give `set` (status, priority, assignee_id) or `delete: true`",
                )),
            };
        let mut if_versions = HashMap::new();
        for (key, version) in change.if_versions.unwrap_or_default() {
            let id = key
                .parse::<i64>()
                .ok()
                .filter(|id| named.contains(id))
                .ok_or_else(|| {
                    Error::validation(format!(
                        "if_versions names {key:?}, which is not one of task_ids"
                    ))
                })?;
            if_versions.insert(id, version);
        }
        Ok(CheckedBulk {
            ids,
            change: bulk,
            if_versions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("v1:-5")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:5")).is_err());
    }

    #[test]
    fn pages_that_ask_the_same_share_a_cache_key() {
        let page = |statuses: Vec<TaskStatus>, after| TaskQuery {
            statuses,
            after,
            limit: 100,
        };
        let (pending, done) = (TaskStatus::Pending, TaskStatus::Done);
        assert_eq!(
            page(vec![pending, done], 0).cache_key(),
            page(vec![done, pending, done], 0).cache_key()
        );
        assert_ne!(
            page(vec![pending], 0).cache_key(),
            page(vec![done], 0).cache_key()
        );
        assert_ne!(page(vec![], 0).cache_key(), page(vec![], 7).cache_key());
    }
}
