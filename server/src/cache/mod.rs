//! The read cache: cache-aside in front of PostgreSQL for the hot reads,
//! kept coherent by the change log. PostgreSQL stays the source of truth;
//! everything here may vanish at any time and is refilled from it.
//!
//! Two tiers: the shared store (Redis, or this process's memory without
//! `REDIS_URL`) and, for the large derived values (list pages, next-task),
//! a local tier in front of it. What is cached, under which key, for how
//! long and what invalidates it is tabled in ARCHITECTURE.md; in short:
//!
//! - Tasks are written through from every commit (`committed`), before
//!   anyone hears of the change, and versioned by the event's seq, so a
//!   slow fill can never replace a newer value (see `entry`).
//! - Every commit also raises the project's *stamp*, its latest seq.
//!   Derived values are keyed by the stamp they were read at, so a commit
//!   makes every older one unreachable without deleting anything, and a
//!   reader that knows of seq S never gets a value older than S. The local
//!   tier holds them under the same keys: nothing to invalidate there.
//! - Roles and member lists are versioned by the project's members
//!   version; a membership change writes the new role (or "not a member")
//!   before it is answered.
//! - Sessions are filled only where nothing is stored, and sign-out
//!   writes a revocation, so a slow fill cannot bring a session back.
//!
//! Authorisation is decided on every request from the cached role: no
//! response body is cached per user, so nothing cached can reach someone
//! who may not see it.
//!
//! When the store fails, its circuit breaker opens and every read goes to
//! PostgreSQL; writes the store missed are kept (bounded) and replayed when
//! it answers again.

pub mod entry;
mod store;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use protocol::{Event, Member, Role, Task, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::breaker::Breaker;
use entry::Tag;
pub use store::{MemoryStore, Mode, RedisStore, Store, StoreError, Write};

use crate::error::{Error, Result};
use crate::health::{Probe, Verdict};

/// How long entries live. Coherence never depends on these: they bound
/// memory, and how long a value written while the store was unreachable
/// from one instance (a network partition) can outlive its change.
const TASK_TTL: Duration = Duration::from_secs(600);
const ROLE_TTL: Duration = Duration::from_secs(600);
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// A stamp outlives the derived values keyed by it.
const STAMP_TTL: Duration = Duration::from_secs(24 * 3600);
/// Derived values are superseded by the next commit anyway; a short life
/// keeps a busy project's old pages from filling the store.
const DERIVED_TTL: Duration = Duration::from_secs(60);
/// Writes kept for replay while the store is unreachable, at most. Beyond
/// this the oldest unreplayed changes can be served stale until their TTL.
const MAX_PENDING_REPAIRS: usize = 100_000;
/// How often pending repairs are retried.
const REPAIR_INTERVAL: Duration = Duration::from_millis(500);

/// What a cached value is, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Role,
    Members,
    Task,
    List,
    Next,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Role => "role",
            Kind::Members => "members",
            Kind::Task => "task",
            Kind::List => "list",
            Kind::Next => "next",
        }
    }
}

/// How a read was answered, for metrics.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// From the local tier.
    LocalHit,
    /// From the shared store.
    Hit,
    /// Filled from PostgreSQL.
    Miss,
    /// The cache was unavailable: straight to PostgreSQL.
    Bypass,
}

fn count(kind: Kind, outcome: Outcome) {
    let outcome = match outcome {
        Outcome::LocalHit => "local_hit",
        Outcome::Hit => "hit",
        Outcome::Miss => "miss",
        Outcome::Bypass => "bypass",
    };
    metrics::counter!("cache_requests_total", "kind" => kind.as_str(), "outcome" => outcome)
        .increment(1);
}

fn count_fill(kind: Kind) {
    metrics::counter!("cache_fills_total", "kind" => kind.as_str()).increment(1);
}

fn count_invalidation(kind: Kind, n: usize) {
    metrics::counter!("cache_invalidations_total", "kind" => kind.as_str()).increment(n as u64);
}

/// A serialised read result and the project seq it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The response body, ready to send.
    pub json: Bytes,
    pub seq: i64,
}

/// A signed-in user, as the session cache keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    pub user: User,
    /// Unix seconds; checked on every hit, so a cached session never
    /// outlives the one in the database.
    pub expires_at: i64,
    /// Set for an API token: what it is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::auth::Grant>,
}

/// The cache. Cheap to clone; [`Cache::disabled`] passes every read through.
#[derive(Clone)]
pub struct Cache(Option<Arc<Inner>>);

struct Inner {
    store: Arc<dyn Store>,
    /// Derived values by stamped key; immutable, so never invalidated.
    local: moka::future::Cache<String, Arc<Snapshot>>,
    /// Fills in flight that are not keyed by a stamp, so concurrent misses
    /// of one key share one database read. Entries leave when done.
    task_fills: moka::future::Cache<String, Arc<(Option<Task>, i64)>>,
    unstamped_fills: moka::future::Cache<String, Arc<Snapshot>>,
    repairs: Mutex<Repairs>,
    /// Whether the last replay left changes unrepaired (for `/readyz`).
    behind: AtomicBool,
}

#[derive(Default)]
struct Repairs {
    pending: HashMap<String, Write>,
    dropped: u64,
}

/// Settings of an enabled cache.
pub struct CacheSettings {
    pub local_max_bytes: u64,
}

impl Cache {
    pub fn disabled() -> Self {
        Cache(None)
    }

    pub fn new(store: Arc<dyn Store>, settings: &CacheSettings) -> Self {
        Cache(Some(Arc::new(Inner {
            store,
            local: moka::future::Cache::builder()
                .max_capacity(settings.local_max_bytes)
                .weigher(|key: &String, value: &Arc<Snapshot>| {
                    u32::try_from(key.len() + value.json.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(DERIVED_TTL)
                .build(),
            task_fills: fills_in_flight(),
            unstamped_fills: fills_in_flight(),
            repairs: Mutex::default(),
            behind: AtomicBool::new(false),
        })))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the cache lives in a store other instances share (Redis).
    pub fn is_shared(&self) -> bool {
        self.0.as_ref().is_some_and(|inner| inner.store.is_shared())
    }

    /// The shared store's circuit breaker, if it has one (Redis).
    pub fn breaker(&self) -> Option<&Breaker> {
        self.0.as_ref().and_then(|inner| inner.store.breaker())
    }

    /// Whether the cache is being bypassed or has changes it could not apply.
    pub fn is_degraded(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|inner| inner.store.is_degraded() || inner.behind.load(Ordering::Relaxed))
    }

    // ---- sessions -------------------------------------------------------

    /// The user of a session token, from the cache or `load`.
    pub async fn session(
        &self,
        token_hash: &[u8],
        load: impl Future<Output = Result<Option<SessionUser>>>,
    ) -> Result<Option<SessionUser>> {
        let Some(inner) = &self.0 else {
            return load.await;
        };
        let key = session_key(token_hash);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match inner.get_one(&key).await {
            Err(_) => {
                count(Kind::Session, Outcome::Bypass);
                return load.await;
            }
            Ok(Some(bytes)) => match entry::decode(&bytes) {
                Some(found) if found.tag == Tag::Absent => {
                    count(Kind::Session, Outcome::Hit);
                    return Ok(None);
                }
                Some(found) if found.tag == Tag::Value => {
                    if let Ok(session) = serde_json::from_slice::<SessionUser>(found.payload) {
                        count(Kind::Session, Outcome::Hit);
                        return Ok((session.expires_at > now).then_some(session));
                    }
                }
                _ => {}
            },
            Ok(None) => {}
        }
        count(Kind::Session, Outcome::Miss);
        let session = load.await?;
        // Unknown tokens are not remembered: guessing would fill the cache.
        if let Some(session) = &session {
            let ttl = Duration::from_secs(u64::try_from(session.expires_at - now).unwrap_or(0))
                .min(SESSION_TTL);
            if !ttl.is_zero() {
                count_fill(Kind::Session);
                let value = entry::encode(0, Tag::Value, &to_json(session)?);
                inner
                    .write(vec![Write {
                        key,
                        value,
                        ttl,
                        mode: Mode::IfAbsent,
                    }])
                    .await;
            }
        }
        Ok(session)
    }

    /// The session is over: no cached copy may answer for it again.
    pub async fn revoke_session(&self, token_hash: &[u8]) {
        let Some(inner) = &self.0 else { return };
        count_invalidation(Kind::Session, 1);
        let write = Write {
            key: session_key(token_hash),
            value: entry::encode(0, Tag::Absent, b""),
            ttl: SESSION_TTL,
            mode: Mode::Always,
        };
        inner.write(vec![write]).await;
    }

    // ---- membership -----------------------------------------------------

    /// `user`'s role in `project`; `load` answers with the role and the
    /// members version it was read at (`None`: no such project, which is
    /// not remembered, so invented project ids cannot fill the cache).
    pub async fn role(
        &self,
        project: Uuid,
        user: Uuid,
        load: impl Future<Output = Result<(Option<Role>, Option<i64>)>>,
    ) -> Result<Option<Role>> {
        let Some(inner) = &self.0 else {
            return Ok(load.await?.0);
        };
        let cached = inner.get_one(&role_key(project, user)).await;
        if let Some(role) = cached
            .as_ref()
            .ok()
            .and_then(|bytes| decode_role(bytes.as_deref()?))
        {
            count(Kind::Role, Outcome::Hit);
            return Ok(role);
        }
        inner.fill_role(project, user, cached.is_err(), load).await
    }

    /// The members of `project`; `load` answers with them and the members
    /// version they were read at (`None`: not known, not remembered).
    pub async fn members(
        &self,
        project: Uuid,
        load: impl Future<Output = Result<(Vec<Member>, Option<i64>)>>,
    ) -> Result<Vec<Member>> {
        let Some(inner) = &self.0 else {
            return Ok(load.await?.0);
        };
        let key = members_key(project);
        let cached = inner.get_one(&key).await;
        if let Ok(Some(bytes)) = &cached {
            if let Some(found) = entry::decode(bytes).filter(|found| found.tag == Tag::Value) {
                if let Ok(members) = serde_json::from_slice(found.payload) {
                    count(Kind::Members, Outcome::Hit);
                    return Ok(members);
                }
            }
        }
        let bypass = cached.is_err();
        count(
            Kind::Members,
            if bypass {
                Outcome::Bypass
            } else {
                Outcome::Miss
            },
        );
        let (members, version) = load.await?;
        if let (false, Some(version)) = (bypass, version) {
            count_fill(Kind::Members);
            let value = entry::encode(version, Tag::Value, &to_json(&members)?);
            inner
                .write(vec![Write {
                    key,
                    value,
                    ttl: ROLE_TTL,
                    mode: Mode::Versioned,
                }])
                .await;
        }
        Ok(members)
    }

    /// A membership change committed at `version`: `user` now has `role`
    /// (`None`: removed). Applied before the change is answered.
    pub async fn members_changed(
        &self,
        project: Uuid,
        user: Uuid,
        version: i64,
        role: Option<Role>,
    ) {
        let Some(inner) = &self.0 else { return };
        count_invalidation(Kind::Role, 1);
        count_invalidation(Kind::Members, 1);
        let members = Write {
            key: members_key(project),
            value: entry::encode(version, Tag::Invalid, b""),
            ttl: ROLE_TTL,
            mode: Mode::Versioned,
        };
        inner
            .write(vec![role_write(project, user, version, role), members])
            .await;
    }

    // ---- tasks and the change log ---------------------------------------

    /// The project's stamp: the latest seq the cache has learnt of. A
    /// reader that was told of seq S finds a stamp of at least S.
    pub async fn stamp(&self, project: Uuid) -> Option<i64> {
        let inner = self.0.as_ref()?;
        decode_stamp(&inner.get_one(&stamp_key(project)).await.ok()??)
    }

    /// A task for `user`, who must have a role `allowed` accepts: the role,
    /// the task and the stamp in one round trip, since every task read
    /// starts with the caller's role. `load_role` answers as for
    /// [`Cache::role`]; `load` gets the seq the answer must have been read
    /// at (the stamp, when known) and answers with the task and the seq it
    /// read, and runs only once the role is allowed.
    pub async fn task_for<F, Fut>(
        &self,
        project: Uuid,
        user: Uuid,
        task_id: i64,
        load_role: impl Future<Output = Result<(Option<Role>, Option<i64>)>>,
        allowed: impl FnOnce(Option<Role>) -> Result<()>,
        load: F,
    ) -> Result<Option<Task>>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<(Option<Task>, i64)>>,
    {
        let Some(inner) = &self.0 else {
            allowed(load_role.await?.0)?;
            return Ok(load(None).await?.0);
        };
        let keys = [
            role_key(project, user),
            task_key(project, task_id),
            stamp_key(project),
        ];
        let Ok(values) = inner.store.get(&keys).await else {
            count(Kind::Role, Outcome::Bypass);
            count(Kind::Task, Outcome::Bypass);
            allowed(load_role.await?.0)?;
            return Ok(load(None).await?.0);
        };
        let role = match values[0].as_deref().and_then(decode_role) {
            Some(role) => {
                count(Kind::Role, Outcome::Hit);
                role
            }
            None => inner.fill_role(project, user, false, load_role).await?,
        };
        allowed(role)?;
        if let Some(task) = values[1].as_deref().and_then(decode_task) {
            count(Kind::Task, Outcome::Hit);
            return Ok(task);
        }
        count(Kind::Task, Outcome::Miss);
        inner
            .fill_task(
                project,
                task_id,
                values[2].as_deref().and_then(decode_stamp),
                load,
            )
            .await
    }

    /// A derived read of `project` (a list page, next-task) under `query`.
    /// `load` gets the seq the answer must have been read at and answers
    /// with the body and the seq it read.
    pub async fn derived<F, Fut>(
        &self,
        kind: Kind,
        project: Uuid,
        query: &str,
        load: F,
    ) -> Result<Snapshot>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Snapshot>>,
    {
        let Some(inner) = &self.0 else {
            return load(None).await;
        };
        let stamp = match inner.get_one(&stamp_key(project)).await {
            Err(_) => {
                count(kind, Outcome::Bypass);
                return load(None).await;
            }
            Ok(bytes) => bytes.as_deref().and_then(decode_stamp),
        };
        let Some(stamp) = stamp else {
            // Nothing to key by yet: fill, and record the stamp it was read at.
            count(kind, Outcome::Miss);
            let key = format!("{}:{query}", project);
            let snapshot = inner
                .unstamped_fills
                .try_get_with(key.clone(), async {
                    let snapshot = load(None).await?;
                    count_fill(kind);
                    inner.remember(project, query, &snapshot, true).await;
                    Ok::<_, Error>(Arc::new(snapshot))
                })
                .await
                .map_err(|error| error.duplicate())?;
            inner.unstamped_fills.invalidate(&key).await;
            return Ok((*snapshot).clone());
        };
        let key = derived_key(project, stamp, query);
        // The local tier runs one fill per key at a time: concurrent misses
        // wait for it and share its answer.
        let outcome = Mutex::new(Outcome::LocalHit);
        let snapshot = inner
            .local
            .try_get_with(key.clone(), async {
                if inner.store.is_shared() {
                    if let Ok(Some(bytes)) = inner.get_one(&key).await {
                        if let Some(found) =
                            entry::decode(&bytes).filter(|found| found.tag == Tag::Value)
                        {
                            *outcome
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = Outcome::Hit;
                            return Ok(Arc::new(Snapshot {
                                json: Bytes::copy_from_slice(found.payload),
                                seq: found.version,
                            }));
                        }
                    }
                }
                *outcome
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Outcome::Miss;
                let snapshot = load(Some(stamp)).await?;
                count_fill(kind);
                // The local tier keeps it under this key when `try_get_with` returns.
                inner.remember(project, query, &snapshot, false).await;
                Ok::<_, Error>(Arc::new(snapshot))
            })
            .await
            .map_err(|error| error.duplicate())?;
        count(
            kind,
            outcome
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Ok((*snapshot).clone())
    }

    /// Events just committed, all of one project, in seq order: each task
    /// as it now is, and the project's new stamp. Awaited before anyone is
    /// told of the change (the writer's response, real-time delivery).
    #[tracing::instrument(name = "cache.write_through", skip_all)]
    pub async fn committed(&self, events: &[Event]) {
        let (Some(inner), Some(last)) = (&self.0, events.last()) else {
            return;
        };
        let Ok(project) = Uuid::parse_str(&last.project_id) else {
            return;
        };
        let mut writes = Vec::with_capacity(events.len() + 1);
        for event in events {
            let value = if event.kind == protocol::event_type::TASK_DELETED {
                entry::encode(event.seq, Tag::Absent, b"")
            } else {
                match serde_json::to_vec(&event.task) {
                    Ok(json) => entry::encode(event.seq, Tag::Value, &json),
                    // Cannot happen for a task; the refill then reads it.
                    Err(_) => entry::encode(event.seq, Tag::Invalid, b""),
                }
            };
            writes.push(Write {
                key: task_key(project, event.task.id),
                value,
                ttl: TASK_TTL,
                mode: Mode::Versioned,
            });
        }
        writes.push(stamp_write(project, last.seq));
        count_invalidation(Kind::Task, events.len());
        inner.write(writes).await;
    }

    /// Replays writes the store missed, while it answers. Runs until the
    /// process ends.
    pub async fn repair_forever(self) {
        let Some(inner) = self.0 else { return };
        let mut interval = tokio::time::interval(REPAIR_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            inner.replay_repairs().await;
        }
    }
}

impl Inner {
    /// Reads a role from the database and remembers it (unless the cache
    /// is being bypassed, or the project is unknown).
    async fn fill_role(
        &self,
        project: Uuid,
        user: Uuid,
        bypass: bool,
        load: impl Future<Output = Result<(Option<Role>, Option<i64>)>>,
    ) -> Result<Option<Role>> {
        count(
            Kind::Role,
            if bypass {
                Outcome::Bypass
            } else {
                Outcome::Miss
            },
        );
        let (role, version) = load.await?;
        if let (false, Some(version)) = (bypass, version) {
            count_fill(Kind::Role);
            self.write(vec![role_write(project, user, version, role)])
                .await;
        }
        Ok(role)
    }

    /// Reads a task from the database, one read per key at a time, and
    /// remembers it at the seq it was read at.
    async fn fill_task<F, Fut>(
        &self,
        project: Uuid,
        task_id: i64,
        need: Option<i64>,
        load: F,
    ) -> Result<Option<Task>>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<(Option<Task>, i64)>>,
    {
        let key = task_key(project, task_id);
        let filled = self
            .task_fills
            .try_get_with(key.clone(), async {
                let (task, seq) = load(need).await?;
                count_fill(Kind::Task);
                // An unknown id is not remembered: ids are cheap to invent.
                if let Some(task) = &task {
                    let value = entry::encode(seq, Tag::Value, &to_json(task)?);
                    let write = Write {
                        key: key.clone(),
                        value,
                        ttl: TASK_TTL,
                        mode: Mode::Versioned,
                    };
                    self.write(vec![write, stamp_write(project, seq)]).await;
                }
                Ok::<_, Error>(Arc::new((task, seq)))
            })
            .await
            .map_err(|error| error.duplicate())?;
        self.task_fills.invalidate(&key).await;
        Ok(filled.0.clone())
    }

    async fn get_one(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let keys = [key.to_owned()];
        Ok(self.store.get(&keys).await?.pop().flatten())
    }

    /// Writes to the store; what it misses is kept for [`Self::replay_repairs`].
    async fn write(&self, writes: Vec<Write>) {
        if self.store.write(&writes).await.is_ok() {
            return;
        }
        let mut repairs = self
            .repairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for write in writes {
            let repair = match write.mode {
                // A fill that did not happen needs no repair.
                Mode::IfAbsent => continue,
                // Replay an invalidation, not the value: smaller to keep, and
                // the refill reads whatever is current by then.
                Mode::Versioned => match entry::decode(&write.value) {
                    Some(found) if found.tag == Tag::Value && !write.key.starts_with("p:") => {
                        Write {
                            value: entry::encode(found.version, Tag::Invalid, b""),
                            ..write
                        }
                    }
                    _ => write,
                },
                Mode::Always => write,
            };
            if repairs.pending.len() >= MAX_PENDING_REPAIRS
                && !repairs.pending.contains_key(&repair.key)
            {
                repairs.dropped += 1;
                continue;
            }
            repairs.pending.insert(repair.key.clone(), repair);
        }
        metrics::gauge!("cache_pending_repairs").set(repairs.pending.len() as f64);
        self.behind.store(true, Ordering::Relaxed);
    }

    async fn replay_repairs(&self) {
        let batch: Vec<Write> = {
            let mut repairs = self
                .repairs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if repairs.dropped > 0 {
                tracing::error!(
                    dropped = repairs.dropped,
                    "the cache missed more changes than it can keep; they may be served stale until their entries expire"
                );
                metrics::counter!("cache_repairs_dropped_total").increment(repairs.dropped);
                repairs.dropped = 0;
            }
            let keys: Vec<String> = repairs.pending.keys().take(1_000).cloned().collect();
            keys.iter()
                .filter_map(|key| repairs.pending.remove(key))
                .collect()
        };
        if batch.is_empty() {
            self.behind.store(false, Ordering::Relaxed);
            return;
        }
        if self.store.write(&batch).await.is_err() {
            let mut repairs = self
                .repairs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for write in batch {
                // A newer miss of the same key supersedes this one.
                repairs.pending.entry(write.key.clone()).or_insert(write);
            }
            return;
        }
        let left = self
            .repairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .len();
        metrics::gauge!("cache_pending_repairs").set(left as f64);
        metrics::counter!("cache_repairs_total").increment(batch.len() as u64);
        if left == 0 {
            tracing::info!("cache caught up with the changes it missed");
        }
    }

    /// Stores a derived value under the stamp it was read at, and raises
    /// the stamp to it. Stamped keys are immutable: whoever writes one
    /// writes the same value, so a plain write is safe.
    async fn remember(&self, project: Uuid, query: &str, snapshot: &Snapshot, local: bool) {
        let key = derived_key(project, snapshot.seq, query);
        let mut writes = vec![stamp_write(project, snapshot.seq)];
        if self.store.is_shared() {
            writes.push(Write {
                key: key.clone(),
                value: entry::encode(snapshot.seq, Tag::Value, &snapshot.json),
                ttl: DERIVED_TTL,
                mode: Mode::Always,
            });
        }
        if local {
            self.local.insert(key, Arc::new(snapshot.clone())).await;
        }
        self.write(writes).await;
    }
}

/// A register of fills in flight; the time to live only bounds an entry
/// whose caller gave up before removing it.
fn fills_in_flight<V: Clone + Send + Sync + 'static>() -> moka::future::Cache<String, V> {
    moka::future::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(30))
        .build()
}

/// A cached role: `Some(None)` for "not a member", `None` for no usable entry.
fn decode_role(bytes: &[u8]) -> Option<Option<Role>> {
    let found = entry::decode(bytes)?;
    match found.tag {
        Tag::Absent => Some(None),
        Tag::Value => std::str::from_utf8(found.payload)
            .ok()?
            .parse()
            .ok()
            .map(Some),
        Tag::Invalid => None,
    }
}

/// A cached task: `Some(None)` for "deleted", `None` for no usable entry.
fn decode_task(bytes: &[u8]) -> Option<Option<Task>> {
    let found = entry::decode(bytes)?;
    match found.tag {
        Tag::Absent => Some(None),
        Tag::Value => serde_json::from_slice(found.payload).ok().map(Some),
        Tag::Invalid => None,
    }
}

fn decode_stamp(bytes: &[u8]) -> Option<i64> {
    entry::decode(bytes)
        .filter(|found| found.tag == Tag::Value)
        .map(|found| found.version)
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|error| Error::Internal(error.into()))
}

fn session_key(token_hash: &[u8]) -> String {
    let mut key = String::with_capacity(2 + token_hash.len() * 2);
    key.push_str("s:");
    for byte in token_hash {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

fn role_key(project: Uuid, user: Uuid) -> String {
    format!("r:{project}:{user}")
}

fn members_key(project: Uuid) -> String {
    format!("m:{project}")
}

fn task_key(project: Uuid, task_id: i64) -> String {
    format!("t:{project}:{task_id}")
}

fn stamp_key(project: Uuid) -> String {
    format!("p:{project}")
}

fn derived_key(project: Uuid, seq: i64, query: &str) -> String {
    format!("d:{project}:{seq}:{query}")
}

fn role_write(project: Uuid, user: Uuid, version: i64, role: Option<Role>) -> Write {
    let value = match role {
        Some(role) => entry::encode(version, Tag::Value, role.as_str().as_bytes()),
        None => entry::encode(version, Tag::Absent, b""),
    };
    Write {
        key: role_key(project, user),
        value,
        ttl: ROLE_TTL,
        mode: Mode::Versioned,
    }
}

fn stamp_write(project: Uuid, seq: i64) -> Write {
    Write {
        key: stamp_key(project),
        value: entry::encode(seq, Tag::Value, b""),
        ttl: STAMP_TTL,
        mode: Mode::Versioned,
    }
}

/// `/readyz`'s "cache" check: degraded while bypassed or behind, never a
/// reason to stop serving.
pub struct CacheProbe(pub Cache);

impl Probe for CacheProbe {
    fn name(&self) -> &'static str {
        "cache"
    }

    fn required(&self) -> bool {
        false
    }

    fn breaker(&self) -> Option<&Breaker> {
        self.0.breaker()
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + '_>> {
        Box::pin(async move {
            if self.0.is_degraded() {
                Verdict::Degraded
            } else {
                Verdict::Ok
            }
        })
    }
}
