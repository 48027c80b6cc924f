//! The application layer: every entry point — REST, Socket.IO, and the
//! importers, command line and agent endpoint built on them — calls these
//! functions and nothing below them. Each use case authorises the caller,
//! validates, runs its one transaction through `db/`, and after the commit
//! runs the post-commit effects in a fixed order: the cache learns the
//! change first (so nobody who hears of it can read an older value), then
//! the commit listeners (real-time delivery) are told.
//!
//! Errors are [`crate::error::Error`]; the edges decide how they look.

pub mod access;
pub mod imports;
pub mod input;
mod projects;
mod sessions;
mod tasks;
mod tokens;
mod webhooks;

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use protocol::{Event, User};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::LoginLimiter;
use crate::cache::Cache;
use crate::config::Config;
use crate::db::replicas::Database;
use crate::error::Result;
use crate::limits::{ApiLimiter, LoginKey, SharedLoginLimits};

pub use access::{Access, Need};
pub use imports::{MAX_IMPORT_TAGS, MAX_IMPORT_TASKS};
pub use projects::{AUDIT_PAGE, MAX_AUDIT_PAGE};
pub use sessions::SignIn;
pub use tasks::{decode_cursor, encode_cursor, Conditional, TaskQuery, DEFAULT_PAGE};

/// The signed-in caller of a use case.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub user: User,
    /// What the session (or API token) is stored under (for sign-out).
    pub token_hash: Vec<u8>,
    /// Set when the caller signed in with an API token: its limits.
    pub grant: Option<crate::auth::Grant>,
}

/// Told about every committed change, after the cache has learnt it.
/// Real-time delivery is one; webhooks will be another.
pub trait CommitListener: Send + Sync {
    /// Events just committed, all of one project, in seq order.
    fn committed(&self, events: Vec<Event>);
    /// `user` is no longer a member of `project`: end what they receive of
    /// it. Awaited before the removal is answered.
    fn member_removed(&self, project: Uuid, user: Uuid) -> BoxFuture<'_, ()>;
    /// These sessions (by token hash) were ended — revoked, or by a password
    /// change: close what they have open. Awaited before the change is answered.
    fn sessions_ended(&self, token_hashes: Vec<Vec<u8>>) -> BoxFuture<'_, ()>;
    /// A background job `user` asked for moved on (progress, done, dead):
    /// tell their open connections.
    fn job_changed(&self, user: Uuid, job: protocol::JobStatus) -> BoxFuture<'_, ()>;
}

/// The application. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    database: Database,
    cache: Cache,
    config: Arc<Config>,
    login_limiter: LoginLimiter,
    /// Sign-in budgets shared by every instance (with Redis).
    shared_login_limits: Option<SharedLoginLimits>,
    api_limiter: ApiLimiter,
    listeners: OnceLock<Vec<Arc<dyn CommitListener>>>,
    /// The latest seq this instance has committed or been told of, per
    /// project: the least a replica must have replayed to answer a read
    /// here (the cache's stamp adds what other instances committed).
    known_seqs: moka::sync::Cache<Uuid, i64>,
    /// Wakes this instance's idle job worker when a job is queued here, so
    /// it starts now rather than at its next poll.
    jobs_queued: tokio::sync::Notify,
}

impl App {
    pub fn new(
        database: Database,
        cache: Cache,
        config: Arc<Config>,
        shared_login_limits: Option<SharedLoginLimits>,
    ) -> Self {
        let login_limiter = LoginLimiter::new(
            config.login_attempts_per_email_per_minute,
            config.login_attempts_per_ip_per_minute,
        );
        let api_limiter = ApiLimiter::new(
            config.api_requests_per_token_per_second,
            config.api_requests_per_user_per_second,
        );
        App(Arc::new(Inner {
            database,
            cache,
            config,
            login_limiter,
            shared_login_limits,
            api_limiter,
            listeners: OnceLock::new(),
            known_seqs: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
            jobs_queued: tokio::sync::Notify::new(),
        }))
    }

    /// Registers the commit listeners, once, before serving.
    pub fn set_listeners(&self, listeners: Vec<Arc<dyn CommitListener>>) {
        if self.0.listeners.set(listeners).is_err() {
            tracing::warn!("commit listeners were already set; keeping the first ones");
        }
    }

    /// The primary database: writes, and reads that must see every commit.
    pub fn db(&self) -> &PgPool {
        self.0.database.primary()
    }

    /// The primary and the read replicas.
    pub fn database(&self) -> &Database {
        &self.0.database
    }

    pub fn cache(&self) -> &Cache {
        &self.0.cache
    }

    /// Records that `project` has reached at least `seq` (a commit here, or
    /// one another instance delivered).
    pub fn saw_seq(&self, project: Uuid, seq: i64) {
        self.0
            .known_seqs
            .entry(project)
            .and_compute_with(|known| match known {
                Some(known) if *known.value() >= seq => moka::ops::compute::Op::Nop,
                _ => moka::ops::compute::Op::Put(seq),
            });
    }

    /// The least seq a read of `project` must include: what this instance
    /// knows of, what the cache's stamp says, and what the caller has seen.
    /// `None` when nothing is known, so only the primary may answer.
    fn known_seq(&self, project: Uuid, stamp: Option<i64>, seen: Option<i64>) -> Option<i64> {
        [self.0.known_seqs.get(&project), stamp, seen]
            .into_iter()
            .flatten()
            .max()
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn login_limiter(&self) -> &LoginLimiter {
        &self.0.login_limiter
    }

    /// Counts a sign-in attempt against the deployment-wide budget, where
    /// there is one (with Redis).
    pub async fn check_shared_login_limit(&self, key: LoginKey<'_>) -> Result<()> {
        match &self.0.shared_login_limits {
            Some(limits) => limits.check(key).await,
            None => Ok(()),
        }
    }

    pub fn shared_login_limits(&self) -> Option<&SharedLoginLimits> {
        self.0.shared_login_limits.as_ref()
    }

    /// Counts one API request of `actor` against its token's and its
    /// user's rates.
    pub fn check_api_rate(&self, actor: &Actor) -> Result<()> {
        self.0.api_limiter.check(actor.id, &actor.token_hash)
    }

    fn listeners(&self) -> &[Arc<dyn CommitListener>] {
        self.0.listeners.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The post-commit effects of a project write, in order: the cache
    /// learns the change before anyone can hear of it.
    async fn after_commit(&self, events: Vec<Event>) {
        let Some(last) = events.last() else {
            return;
        };
        if let Ok(project) = Uuid::parse_str(&last.project_id) {
            self.saw_seq(project, last.seq);
        }
        self.0.cache.committed(&events).await;
        // The last listener takes the events; only the others need a copy.
        if let Some((last, others)) = self.listeners().split_last() {
            for listener in others {
                listener.committed(events.clone());
            }
            last.committed(events);
        }
    }

    async fn after_member_removed(&self, project: Uuid, user: Uuid) {
        for listener in self.listeners() {
            listener.member_removed(project, user).await;
        }
    }

    /// Ended sessions stop working everywhere at once: in the cache of
    /// every instance, then in the connections they hold open.
    async fn after_sessions_ended(&self, token_hashes: Vec<Vec<u8>>) {
        if token_hashes.is_empty() {
            return;
        }
        for hash in &token_hashes {
            self.0.cache.revoke_session(hash).await;
        }
        for listener in self.listeners() {
            listener.sessions_ended(token_hashes.clone()).await;
        }
    }

    /// A job was queued (and committed) here: wake the local worker.
    pub fn job_queued(&self) {
        self.0.jobs_queued.notify_one();
    }

    /// Resolves when a job is queued here (or was since the last call).
    pub async fn next_job_queued(&self) {
        self.0.jobs_queued.notified().await;
    }

    /// Tells `user`'s open connections that their job `job` moved on.
    pub async fn job_changed(&self, user: Uuid, job: protocol::JobStatus) {
        for listener in self.listeners() {
            listener.job_changed(user, job.clone()).await;
        }
    }

    /// Housekeeping: forget idle rate-limit keys, delete expired sessions.
    pub async fn sweep(&self) {
        self.0.login_limiter.sweep();
        self.0.api_limiter.sweep();
        if let Err(error) = crate::db::users::delete_expired_sessions(self.db()).await {
            tracing::warn!(%error, "could not sweep expired sessions");
        }
    }
}
