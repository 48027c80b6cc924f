//! The primary and its read replicas: which pool a read goes to, and which
//! replicas are fit to take reads.
//!
//! A read that may be served by a replica names the seq its answer must
//! include (`need`: the project's stamp, the caller's own last write, a seq
//! the caller says it has seen). Every such read returns the project's
//! `last_seq` from the same statement, so the answer carries the seq it was
//! read at: older than `need` and it is thrown away and read again on the
//! primary. A replica that fails is taken out of rotation at once and the
//! read retried on the primary; the health loop puts it back when it
//! answers and has caught up. The rotation is the replica's circuit
//! breaker: a failed read or check opens it, and the health loop's check
//! each second — bounded by `WATCH_TIMEOUT`, on the replica's own pool, so
//! a slow replica holds none of the primary's connections — is its trial. Writes, the change-log lock and every read
//! that must see the latest commit (sessions, roles, `join`'s catch-up) use
//! the primary directly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::breaker::Breaker;
use crate::error::Result;
use crate::health::{Probe, Verdict};

/// How often replica lag is measured.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one lag measurement may take.
const WATCH_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection taken from `pool`, with the wait recorded as
/// `db_pool_acquire_seconds{pool}`: the measure of whether a pool is big
/// enough (see BENCHMARKS.md).
pub async fn acquire(pool: &PgPool, name: &'static str) -> Result<PoolConnection<Postgres>> {
    let started = Instant::now();
    let connection = pool.acquire().await;
    metrics::histogram!("db_pool_acquire_seconds", "pool" => name)
        .record(started.elapsed().as_secs_f64());
    Ok(connection?)
}

pub struct Replica {
    /// `replica-<n>`, in `DATABASE_REPLICA_URLS` order: for labels and logs,
    /// never the URL (it may hold a password).
    pub name: &'static str,
    pub pool: PgPool,
    /// Closed while the replica is in rotation.
    pub breaker: Breaker,
}

impl Replica {
    pub fn is_in_rotation(&self) -> bool {
        self.breaker.is_closed()
    }

    fn set_in_rotation(&self, in_rotation: bool, why: &str) {
        if in_rotation {
            self.breaker.succeeded();
        } else {
            self.breaker.trip(why);
        }
        metrics::gauge!("db_replica_in_rotation", "replica" => self.name)
            .set(f64::from(u8::from(in_rotation)));
    }
}

/// The database: one primary, zero or more replicas. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    primary: PgPool,
    replicas: Arc<[Replica]>,
    next: Arc<AtomicUsize>,
    max_lag: Duration,
}

impl Database {
    pub fn new(primary: PgPool, replicas: Vec<PgPool>, max_lag: Duration) -> Self {
        let replicas: Vec<Replica> = replicas
            .into_iter()
            .enumerate()
            .map(|(n, pool)| {
                let name: &'static str = Box::leak(format!("replica-{n}").into_boxed_str());
                Replica {
                    name,
                    pool,
                    // Out until the first health check has seen it caught up.
                    breaker: Breaker::new_open(name, WATCH_INTERVAL),
                }
            })
            .collect();
        Database {
            primary,
            replicas: replicas.into(),
            next: Arc::default(),
            max_lag,
        }
    }

    pub fn primary(&self) -> &PgPool {
        &self.primary
    }

    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The next replica in rotation, round robin.
    fn pick_replica(&self) -> Option<&Replica> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.replicas[(start + offset) % count])
            .find(|replica| replica.is_in_rotation())
    }

    /// Runs `read` where it may run: on a replica in rotation whose answer
    /// (`read` returns it with the seq it was read at) includes `need`, and
    /// otherwise on the primary. `need` of `None` means "nothing known":
    /// only the primary can answer that.
    pub async fn read<T>(
        &self,
        need: Option<i64>,
        mut read: impl for<'c> FnMut(&'c mut PgConnection) -> BoxFuture<'c, Result<(T, i64)>>,
    ) -> Result<(T, i64)> {
        if let (Some(need), Some(replica)) = (need, self.pick_replica()) {
            let answer = match acquire(&replica.pool, "replica").await {
                Ok(mut connection) => read(&mut connection).await,
                Err(error) => Err(error),
            };
            match answer {
                Ok((value, seq)) if seq >= need => {
                    metrics::counter!("db_reads_total", "pool" => "replica").increment(1);
                    return Ok((value, seq));
                }
                Ok(_) => {
                    metrics::counter!("db_replica_fallbacks_total", "reason" => "behind")
                        .increment(1);
                }
                Err(error) => {
                    tracing::warn!(replica = replica.name, %error, "replica read failed; using the primary");
                    metrics::counter!("db_replica_fallbacks_total", "reason" => "error")
                        .increment(1);
                    replica.set_in_rotation(false, "a read failed");
                }
            }
        }
        metrics::counter!("db_reads_total", "pool" => "primary").increment(1);
        let mut connection = acquire(&self.primary, "primary").await?;
        read(&mut connection).await
    }

    /// Measures every replica's lag once a second and keeps the rotation
    /// to those that answer and are at most `max_lag` behind. Runs until
    /// the process ends.
    pub async fn watch_replicas_forever(self) {
        if self.replicas.is_empty() {
            return;
        }
        let mut interval = tokio::time::interval(WATCH_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let primary_lsn = tokio::time::timeout(WATCH_TIMEOUT, current_wal_lsn(&self.primary))
                .await
                .ok()
                .and_then(Result::ok);
            for replica in self.replicas.iter() {
                let lag =
                    tokio::time::timeout(WATCH_TIMEOUT, replica_lag(&replica.pool, primary_lsn))
                        .await
                        .unwrap_or_else(|_| {
                            Err(anyhow::anyhow!("no answer within {WATCH_TIMEOUT:?}").into())
                        });
                match lag {
                    Ok(Lag {
                        bytes,
                        seconds,
                        in_recovery,
                    }) => {
                        metrics::gauge!("db_replica_lag_bytes", "replica" => replica.name)
                            .set(bytes as f64);
                        metrics::gauge!("db_replica_lag_seconds", "replica" => replica.name)
                            .set(seconds);
                        if !in_recovery {
                            replica.set_in_rotation(false, "not a replica (promoted?)");
                        } else if seconds > self.max_lag.as_secs_f64() {
                            replica.set_in_rotation(false, "too far behind");
                        } else {
                            replica.set_in_rotation(true, "");
                        }
                    }
                    Err(error) => {
                        tracing::debug!(replica = replica.name, %error, "replica check failed");
                        replica.set_in_rotation(false, "not answering");
                    }
                }
            }
        }
    }
}

struct Lag {
    bytes: u64,
    seconds: f64,
    in_recovery: bool,
}

async fn current_wal_lsn(primary: &PgPool) -> Result<u64> {
    let lsn: String = sqlx::query_scalar("select pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await?;
    parse_lsn(&lsn).ok_or_else(|| anyhow::anyhow!("unreadable LSN {lsn}").into())
}

/// How far `replica` is behind a primary at `primary_lsn`. Time lag is the
/// age of the last replayed transaction, but only while WAL is waiting to
/// be replayed: an idle primary sends nothing, and a replica that has
/// replayed everything is not behind however old its last transaction.
async fn replica_lag(replica: &PgPool, primary_lsn: Option<u64>) -> Result<Lag> {
    let (in_recovery, replayed, age): (bool, Option<String>, Option<f64>) = sqlx::query_as(
        "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
                extract(epoch from now() - pg_last_xact_replay_timestamp())::float8",
    )
    .fetch_one(replica)
    .await?;
    let replayed = replayed.as_deref().and_then(parse_lsn).unwrap_or(0);
    let bytes = primary_lsn.map_or(0, |primary| primary.saturating_sub(replayed));
    let seconds = if bytes == 0 {
        0.0
    } else {
        age.unwrap_or(f64::MAX).max(0.0)
    };
    Ok(Lag {
        bytes,
        seconds,
        in_recovery,
    })
}

/// PostgreSQL writes an LSN as two hex halves, `16/B374D848`.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some((high << 32) | low)
}

/// `/readyz`'s check of one replica: degraded while out of rotation (the
/// primary takes its reads), never a reason to stop serving.
pub struct ReplicaProbe {
    pub database: Database,
    pub index: usize,
}

impl Probe for ReplicaProbe {
    fn name(&self) -> &'static str {
        self.database.replicas[self.index].name
    }

    fn required(&self) -> bool {
        false
    }

    fn breaker(&self) -> Option<&Breaker> {
        Some(&self.database.replicas[self.index].breaker)
    }

    fn check(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + '_>> {
        Box::pin(async move {
            if self.database.replicas[self.index].is_in_rotation() {
                Verdict::Ok
            } else {
                Verdict::Degraded
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_as_postgres_writes_them() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/zz"), None);
    }
}
