//! Where cache entries live: Redis, shared by every instance, or — with no
//! `REDIS_URL` — a store in this process (one instance has nobody to share
//! with). Both apply the same compare-and-set rule (see `entry`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::entry::{self, COMPARE_AND_SET};
use crate::breaker::Breaker;

/// Why the store did not answer. Either way the caller goes to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the cache's circuit breaker is open")]
    Open,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How a write treats what is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only over an older version (the compare-and-set rule).
    Versioned,
    /// Only when nothing is stored (a fill that must not undo a revocation).
    IfAbsent,
    /// Always (a revocation).
    Always,
}

#[derive(Debug, Clone)]
pub struct Write {
    pub key: String,
    /// An encoded entry.
    pub value: Vec<u8>,
    pub ttl: Duration,
    pub mode: Mode,
}

pub trait Store: Send + Sync {
    /// The entries under `keys`, in order.
    fn get<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StoreError>>;
    /// Applies `writes`, in order, in one round trip.
    fn write<'a>(&'a self, writes: &'a [Write]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Whether other instances read this store too.
    fn is_shared(&self) -> bool;
    /// Whether calls are being refused for now.
    fn is_degraded(&self) -> bool {
        self.breaker().is_some_and(|breaker| !breaker.is_closed())
    }
    /// The breaker in front of a store across the network.
    fn breaker(&self) -> Option<&Breaker> {
        None
    }
}

/// The in-process store: bounded by bytes, every entry expiring after `ttl`
/// at the latest (entries carry their own expiry where it matters).
pub struct MemoryStore {
    entries: moka::sync::Cache<String, Bytes>,
}

impl MemoryStore {
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        MemoryStore {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, value: &Bytes| {
                    u32::try_from(key.len() + value.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    fn apply(&self, write: &Write) {
        let value = Bytes::copy_from_slice(&write.value);
        match write.mode {
            Mode::Always => self.entries.insert(write.key.clone(), value),
            Mode::IfAbsent => {
                self.entries
                    .entry(write.key.clone())
                    .or_insert_with(|| value);
            }
            Mode::Versioned => {
                let Some(new) = entry::decode(&write.value) else {
                    return;
                };
                self.entries
                    .entry(write.key.clone())
                    .and_compute_with(|old| {
                        if entry::supersedes(&new, old.as_ref().map(|old| old.value().as_ref())) {
                            moka::ops::compute::Op::Put(value)
                        } else {
                            moka::ops::compute::Op::Nop
                        }
                    });
            }
        }
    }
}

impl Store for MemoryStore {
    fn get<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StoreError>> {
        Box::pin(async move { Ok(keys.iter().map(|key| self.entries.get(key)).collect()) })
    }

    fn write<'a>(&'a self, writes: &'a [Write]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            for write in writes {
                self.apply(write);
            }
            Ok(())
        })
    }

    fn is_shared(&self) -> bool {
        false
    }
}

/// Redis, behind a per-call timeout and a circuit breaker.
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    breaker: Breaker,
}

impl RedisStore {
    /// A store on `url`. Connects lazily: Redis may be down at start.
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        breaker: Breaker,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(200))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(RedisStore {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: format!("{prefix}:cache:"),
            timeout,
            breaker,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one round trip through the breaker, timed and bounded.
    async fn call<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        if !self.breaker.allow() {
            metrics::counter!("cache_bypassed_calls_total", "op" => op).increment(1);
            return Err(StoreError::Open);
        }
        let started = Instant::now();
        let mut connection = self.connection.clone();
        let answer =
            tokio::time::timeout(self.timeout, pipeline.query_async::<T>(&mut connection)).await;
        metrics::histogram!("redis_command_duration_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        let result = match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::Redis(error)),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        match &result {
            Ok(_) => self.breaker.succeeded(),
            Err(error) => {
                metrics::counter!("cache_errors_total", "op" => op).increment(1);
                if self.breaker.failed() {
                    tracing::warn!(%error, "cache unavailable; bypassing it until redis answers again");
                } else {
                    tracing::debug!(%error, op, "cache call failed");
                }
            }
        }
        result
    }
}

impl Store for RedisStore {
    fn get<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StoreError>> {
        Box::pin(async move {
            let mut pipeline = redis::pipe();
            let command = pipeline.cmd("MGET");
            for key in keys {
                command.arg(self.key(key));
            }
            let (values,): (Vec<Option<Vec<u8>>>,) = self.call("get", &pipeline).await?;
            Ok(values
                .into_iter()
                .map(|value| value.map(Bytes::from))
                .collect())
        })
    }

    fn write<'a>(&'a self, writes: &'a [Write]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if writes.is_empty() {
                return Ok(());
            }
            let mut pipeline = redis::pipe();
            for write in writes {
                let key = self.key(&write.key);
                let ttl = write.ttl.as_secs().max(1);
                match write.mode {
                    Mode::Versioned => pipeline
                        .cmd("EVAL")
                        .arg(COMPARE_AND_SET)
                        .arg(1)
                        .arg(key)
                        .arg(&write.value[..])
                        .arg(ttl)
                        .ignore(),
                    Mode::IfAbsent => pipeline
                        .cmd("SET")
                        .arg(key)
                        .arg(&write.value[..])
                        .arg("NX")
                        .arg("EX")
                        .arg(ttl)
                        .ignore(),
                    Mode::Always => pipeline
                        .cmd("SET")
                        .arg(key)
                        .arg(&write.value[..])
                        .arg("EX")
                        .arg(ttl)
                        .ignore(),
                };
            }
            self.call::<()>("write", &pipeline).await
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn breaker(&self) -> Option<&Breaker> {
        Some(&self.breaker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::tests::CASES;

    /// The compare-and-set rule is written twice, in Rust and in Lua: run
    /// every case through both stores and compare with the table.
    #[tokio::test]
    async fn redis_and_memory_stores_apply_the_same_rule() {
        let url = std::env::var("TEST_REDIS_URL")
            .expect("TEST_REDIS_URL must point at a Redis (scripts/test.sh sets it)");
        let prefix = format!("test-{}", uuid::Uuid::new_v4());
        let redis = RedisStore::new(
            &url,
            &prefix,
            Duration::from_secs(2),
            Breaker::new("cache", 3, Duration::from_secs(1)),
        )
        .unwrap();
        let memory = MemoryStore::new(1 << 20, Duration::from_secs(60));
        let stores: [&dyn Store; 2] = [&redis, &memory];
        for (n, &(new, old, replaces)) in CASES.iter().enumerate() {
            for store in stores {
                let key = format!("case-{n}");
                if let Some(old) = old {
                    let seed = Write {
                        key: key.clone(),
                        value: old.to_vec(),
                        ttl: Duration::from_secs(60),
                        mode: Mode::Always,
                    };
                    store.write(&[seed]).await.unwrap();
                }
                let write = Write {
                    key: key.clone(),
                    value: new.to_vec(),
                    ttl: Duration::from_secs(60),
                    mode: Mode::Versioned,
                };
                store.write(&[write]).await.unwrap();
                let stored = store.get(&[key]).await.unwrap().pop().flatten().unwrap();
                let expected = if replaces { new } else { old.unwrap() };
                assert_eq!(
                    &stored[..],
                    expected,
                    "case {n} in the {} store",
                    if store.is_shared() { "redis" } else { "memory" }
                );
            }
        }
        let mut pipeline = redis::pipe();
        for n in 0..CASES.len() {
            pipeline
                .cmd("DEL")
                .arg(redis.key(&format!("case-{n}")))
                .ignore();
        }
        redis.call::<()>("cleanup", &pipeline).await.unwrap();
    }

    #[tokio::test]
    async fn fills_never_replace_and_revocations_always_do() {
        let memory = MemoryStore::new(1 << 20, Duration::from_secs(60));
        let write = |value: &[u8], mode| Write {
            key: "s:1".into(),
            value: value.to_vec(),
            ttl: Duration::from_secs(60),
            mode,
        };
        memory.write(&[write(b"0:n", Mode::Always)]).await.unwrap();
        memory
            .write(&[write(b"0:v{}", Mode::IfAbsent)])
            .await
            .unwrap();
        assert_eq!(
            memory.get(&["s:1".into()]).await.unwrap()[0].as_deref(),
            Some(&b"0:n"[..])
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_opens_the_breaker_and_is_then_bypassed() {
        // Nothing listens on port 1: every call fails fast.
        let redis = RedisStore::new(
            "redis://127.0.0.1:1",
            "test",
            Duration::from_millis(200),
            Breaker::new("cache", 2, Duration::from_secs(60)),
        )
        .unwrap();
        let keys = ["k".to_owned()];
        assert!(matches!(
            redis.get(&keys).await,
            Err(StoreError::Redis(_) | StoreError::Timeout(_))
        ));
        assert!(!redis.is_degraded());
        assert!(redis.get(&keys).await.is_err());
        assert!(redis.is_degraded(), "two failures in a row open it");
        let started = Instant::now();
        assert!(matches!(redis.get(&keys).await, Err(StoreError::Open)));
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "an open breaker answers at once"
        );
    }
}
