//! Messages between server instances, over Redis pub/sub.
//!
//! One [`Bus`] carries both the socketioxide adapter's traffic (it implements
//! the adapter's [`Driver`] trait) and our own channels (committed events,
//! presence). It is built on redis' `ConnectionManager`, which reconnects and
//! re-subscribes by itself — the adapter's stock driver does neither. Every
//! operation has a short timeout: while Redis is down, callers get an error at
//! once instead of waiting on reconnection attempts, and the instance keeps
//! serving its own clients.
//!
//! Without `REDIS_URL` the bus is [`Bus::Disabled`]: publishing does nothing
//! and this instance is the only server.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

/// Longest any single Redis operation may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum Bus {
    /// Single instance: no Redis.
    Disabled,
    Redis(RedisBus),
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

#[derive(Clone)]
pub struct RedisBus {
    connection: ConnectionManager,
    /// Where messages of each subscribed channel go.
    handlers: Handlers,
    /// Whether the last health check reached Redis.
    up: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {OPERATION_TIMEOUT:?}")]
    Timeout,
}

impl Bus {
    /// A bus on `url`. Connects lazily: Redis may be down at start.
    pub fn redis(url: &str) -> anyhow::Result<Bus> {
        // Pub/sub over a multiplexed connection needs RESP3 (Redis 6 or newer).
        let url = if url.contains("protocol=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&protocol=resp3")
        } else {
            format!("{url}?protocol=resp3")
        };
        let client = redis::Client::open(url.as_str())?;
        let handlers: Handlers = Arc::default();
        let routes = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                route(&routes, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Bus::Redis(RedisBus {
            connection,
            handlers,
            up: Arc::new(AtomicBool::new(false)),
        }))
    }

    pub fn is_enabled(&self) -> bool {
        matches!(self, Bus::Redis(_))
    }

    /// Whether cross-instance messages flow (always true without Redis: there
    /// is no other instance to reach).
    pub fn is_up(&self) -> bool {
        match self {
            Bus::Disabled => true,
            Bus::Redis(bus) => bus.up.load(Ordering::Relaxed),
        }
    }

    /// Pings Redis and records the answer; returns whether it was up and
    /// whether it just came back.
    pub async fn check(&self) -> (bool, bool) {
        let Bus::Redis(bus) = self else {
            return (true, false);
        };
        let mut connection = bus.connection.clone();
        let ping = timed(redis::cmd("PING").query_async::<String>(&mut connection)).await;
        let up = ping.is_ok();
        let was_up = bus.up.swap(up, Ordering::Relaxed);
        if up && !was_up {
            // Subscriptions made while Redis was unreachable never happened;
            // SUBSCRIBE is idempotent, so simply (re)issue them all.
            let channels: Vec<String> = bus
                .handlers
                .read()
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default();
            for channel in channels {
                if let Err(error) = timed(connection.subscribe(channel.as_str())).await {
                    tracing::warn!(%error, channel, "could not re-subscribe");
                }
            }
        }
        (up, up && !was_up)
    }
}

/// Hands a pub/sub message to the channel's subscriber. Never blocks: a
/// subscriber that cannot keep up loses messages (counted), and the periodic
/// reconciliation with the database fills what was lost.
fn route(handlers: &Handlers, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) || push.data.len() < 2 {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        String::from_redis_value(channel),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        return;
    };
    let sender = handlers.read().ok().and_then(|h| h.get(&channel).cloned());
    if let Some(sender) = sender {
        if sender.try_send((channel, payload)).is_err() {
            metrics::counter!("bus_messages_dropped_total").increment(1);
        }
    }
}

async fn timed<T>(operation: impl Future<Output = redis::RedisResult<T>>) -> Result<T, BusError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(BusError::Timeout),
    }
}

impl Driver for Bus {
    type Error = BusError;

    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), BusError> {
        match self {
            Bus::Disabled => Ok(()),
            Bus::Redis(bus) => {
                let mut connection = bus.connection.clone();
                timed(
                    redis::cmd("PUBLISH")
                        .arg(channel)
                        .arg(payload)
                        .query_async::<()>(&mut connection),
                )
                .await
            }
        }
    }

    async fn subscribe(
        &self,
        channel: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, BusError> {
        match self {
            Bus::Disabled => Ok(MessageStream::new_empty()),
            Bus::Redis(bus) => {
                let (sender, receiver) = mpsc::channel(size.max(1));
                if let Ok(mut handlers) = bus.handlers.write() {
                    handlers.insert(channel.clone(), sender);
                }
                // If Redis is down now, the next successful health check subscribes.
                let mut connection = bus.connection.clone();
                if let Err(error) = timed(connection.subscribe(channel.as_str())).await {
                    tracing::warn!(%error, channel, "subscription deferred until Redis answers");
                }
                Ok(MessageStream::new(receiver))
            }
        }
    }

    async fn unsubscribe(&self, channel: String) -> Result<(), BusError> {
        match self {
            Bus::Disabled => Ok(()),
            Bus::Redis(bus) => {
                if let Ok(mut handlers) = bus.handlers.write() {
                    handlers.remove(&channel);
                }
                let mut connection = bus.connection.clone();
                timed(connection.unsubscribe(channel.as_str())).await
            }
        }
    }

    async fn num_serv(&self, channel: &str) -> Result<u16, BusError> {
        match self {
            Bus::Disabled => Ok(1),
            Bus::Redis(bus) => {
                let mut connection = bus.connection.clone();
                let (_, count): (String, u16) = timed(
                    redis::cmd("PUBSUB")
                        .arg("NUMSUB")
                        .arg(channel)
                        .query_async(&mut connection),
                )
                .await?;
                Ok(count)
            }
        }
    }
}
