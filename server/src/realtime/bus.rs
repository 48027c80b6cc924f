//! Messages between server instances, over Redis pub/sub.
//!
//! One [`Bus`] carries both the socketioxide adapter's traffic (it implements
//! the adapter's [`Driver`] trait) and our own channels (one per project:
//! committed events and presence). It runs on one Redis server
//! (`REDIS_URL`, classic pub/sub over redis' `ConnectionManager`) or on a
//! Redis Cluster (`REDIS_CLUSTER_URLS`, sharded pub/sub: each channel lives
//! on the master that owns its slot, so the channels, and the messages, are
//! spread over the masters instead of all passing through every one).
//! Both connections reconnect and re-subscribe by themselves — the adapter's
//! stock driver does neither. Every operation has a short timeout: while
//! Redis is down, callers get an error at once instead of waiting on
//! reconnection attempts, and the instance keeps serving its own clients.
//! Publishing goes through a circuit breaker (`bus`): after a few failures
//! in a row, or a health check that cannot reach Redis, publishes fail at
//! once — no event is lost by it, the other instances reconcile from the
//! database — until a trial publish or a health check gets through.
//!
//! Without either the bus is [`Bus::Disabled`]: publishing does nothing and
//! this instance is the only server.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, ProtocolVersion, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

use crate::breaker::Breaker;

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
    link: Link,
    /// Where messages of each subscribed channel go.
    handlers: Handlers,
    /// Whether the last health check reached Redis.
    up: Arc<AtomicBool>,
    breaker: Arc<Breaker>,
}

/// Publishes failing in a row that open the bus's breaker.
const BREAKER_THRESHOLD: u32 = 3;
/// How long the breaker refuses publishes before a trial.
const BREAKER_COOL_DOWN: Duration = Duration::from_secs(2);

fn bus_breaker() -> Arc<Breaker> {
    Arc::new(Breaker::new("bus", BREAKER_THRESHOLD, BREAKER_COOL_DOWN))
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {OPERATION_TIMEOUT:?}")]
    Timeout,
    #[error("the bus's circuit breaker is open")]
    Open,
}

/// The connection under the bus.
#[derive(Clone)]
enum Link {
    /// One Redis server: PUBLISH / SUBSCRIBE.
    Server(ConnectionManager),
    /// A Redis Cluster: SPUBLISH / SSUBSCRIBE, routed by the channel's slot.
    Cluster(ClusterConnection),
}

impl Link {
    async fn ping(&self) -> Result<(), BusError> {
        match self.clone() {
            Link::Server(mut connection) => {
                timed(redis::cmd("PING").query_async::<()>(&mut connection)).await
            }
            // Sent to every master: the bus is only up when all of them are,
            // since any one of them may hold a project's channel.
            Link::Cluster(mut connection) => {
                timed(redis::cmd("PING").query_async::<()>(&mut connection)).await
            }
        }
    }

    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), BusError> {
        match self.clone() {
            Link::Server(mut connection) => {
                let mut publish = redis::cmd("PUBLISH");
                publish.arg(channel).arg(payload);
                timed(publish.query_async::<()>(&mut connection)).await
            }
            Link::Cluster(mut connection) => {
                let mut publish = redis::cmd("SPUBLISH");
                publish.arg(channel).arg(payload);
                timed(publish.query_async::<()>(&mut connection)).await
            }
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<(), BusError> {
        match self.clone() {
            Link::Server(mut connection) => timed(connection.subscribe(channel)).await,
            Link::Cluster(mut connection) => timed(connection.ssubscribe(channel)).await,
        }
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), BusError> {
        match self.clone() {
            Link::Server(mut connection) => timed(connection.unsubscribe(channel)).await,
            Link::Cluster(mut connection) => timed(connection.sunsubscribe(channel)).await,
        }
    }

    /// How many connections are subscribed to `channel`.
    async fn subscribers(&self, channel: &str) -> Result<u16, BusError> {
        match self.clone() {
            Link::Server(mut connection) => {
                let mut numsub = redis::cmd("PUBSUB");
                numsub.arg("NUMSUB").arg(channel);
                let (_, count): (String, u16) = timed(numsub.query_async(&mut connection)).await?;
                Ok(count)
            }
            // Asked of every node and merged into one map by the client.
            Link::Cluster(mut connection) => {
                let mut numsub = redis::cmd("PUBSUB");
                numsub.arg("SHARDNUMSUB").arg(channel);
                let counts: HashMap<String, u16> =
                    timed(numsub.query_async(&mut connection)).await?;
                Ok(counts.get(channel).copied().unwrap_or(0))
            }
        }
    }
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
        let up = Arc::new(AtomicBool::new(false));
        let link_up = up.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                route(&routes, &link_up, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Bus::Redis(RedisBus {
            link: Link::Server(connection),
            handlers,
            up,
            breaker: bus_breaker(),
        }))
    }

    /// A bus on the Redis Cluster that `nodes` (seed URLs, any of its
    /// nodes) belong to. Connects in the background: the cluster may be
    /// down at start.
    pub fn redis_cluster(nodes: &[&str]) -> anyhow::Result<Bus> {
        anyhow::ensure!(!nodes.is_empty(), "a Redis Cluster needs at least one node");
        let handlers: Handlers = Arc::default();
        let routes = handlers.clone();
        let up = Arc::new(AtomicBool::new(false));
        let link_up = up.clone();
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(OPERATION_TIMEOUT)
            .response_timeout(OPERATION_TIMEOUT)
            .retries(1)
            .max_retry_wait(500)
            .build()?;
        let config = ClusterConfig::new()
            .set_connection_timeout(OPERATION_TIMEOUT)
            .set_response_timeout(OPERATION_TIMEOUT)
            .set_push_sender(move |push: PushInfo| {
                route(&routes, &link_up, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let connection = client.get_pending_async_connection_with_config(config);
        Ok(Bus::Redis(RedisBus {
            link: Link::Cluster(connection),
            handlers,
            up,
            breaker: bus_breaker(),
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

    /// The breaker in front of publishing (none without Redis).
    pub fn breaker(&self) -> Option<&Breaker> {
        match self {
            Bus::Disabled => None,
            Bus::Redis(bus) => Some(&bus.breaker),
        }
    }

    /// Pings Redis and records the answer (in the breaker too); returns
    /// whether it was up and whether it just came back.
    pub async fn check(&self) -> (bool, bool) {
        let Bus::Redis(bus) = self else {
            return (true, false);
        };
        let (up, came_back) = bus.reach().await;
        if up {
            bus.breaker.succeeded();
        } else {
            bus.breaker.trip("redis does not answer");
        }
        (up, came_back)
    }
}

impl RedisBus {
    /// Pings Redis; on the way back up, re-issues every subscription.
    async fn reach(&self) -> (bool, bool) {
        let up = self.link.ping().await.is_ok();
        let was_up = self.up.swap(up, Ordering::Relaxed);
        if up && !was_up {
            // Subscriptions made while Redis was unreachable never happened;
            // SUBSCRIBE is idempotent, so simply (re)issue them all.
            let channels: Vec<String> = self
                .handlers
                .read()
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default();
            for channel in channels {
                if let Err(error) = self.link.subscribe(&channel).await {
                    tracing::warn!(%error, channel, "could not re-subscribe; trying again");
                    // Counts as down still: the next check tries them all again.
                    self.up.store(false, Ordering::Relaxed);
                    return (false, false);
                }
            }
        }
        (up, up && !was_up)
    }
}

/// Hands a pub/sub message to the channel's subscriber. Never blocks: a
/// subscriber that cannot keep up loses messages (counted), and the periodic
/// reconciliation with the database fills what was lost.
///
/// A lost connection (to the server, or to any one cluster node) marks the
/// bus down: the client reconnects by itself, but a node that comes back
/// still loading, or mid-failover, refuses the re-subscriptions it is sent
/// then, and nothing would retry them. The next health check that reaches
/// Redis counts as a recovery, re-issues every subscription and catches up
/// from the database.
fn route(handlers: &Handlers, up: &AtomicBool, push: PushInfo) {
    if push.kind == PushKind::Disconnection {
        up.store(false, Ordering::Relaxed);
        return;
    }
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

impl Bus {
    /// Publishes `payload` on `channel` (nothing without Redis).
    pub async fn send(&self, channel: String, payload: Vec<u8>) -> Result<(), BusError> {
        match self {
            Bus::Disabled => Ok(()),
            Bus::Redis(bus) => {
                if !bus.breaker.allow() {
                    return Err(BusError::Open);
                }
                let result = bus.link.publish(channel, payload).await;
                if result.is_ok() {
                    bus.breaker.succeeded();
                } else {
                    bus.breaker.failed();
                }
                result
            }
        }
    }

    /// Subscribes to `channel`, handing its messages to `sender` (several
    /// channels may share one). While Redis is unreachable the subscription
    /// is remembered and made by the next health check that reaches it.
    pub async fn listen(
        &self,
        channel: String,
        sender: mpsc::Sender<ChanItem>,
    ) -> Result<(), BusError> {
        let Bus::Redis(bus) = self else {
            return Ok(());
        };
        if let Ok(mut handlers) = bus.handlers.write() {
            handlers.insert(channel.clone(), sender);
        }
        if !bus.up.load(Ordering::Relaxed) {
            return Ok(());
        }
        let result = bus.link.subscribe(&channel).await;
        if result.is_err() {
            // The next check that reaches Redis counts as a recovery and
            // re-issues every subscription, this one included.
            bus.up.store(false, Ordering::Relaxed);
        }
        result
    }

    /// Ends a subscription made with [`Bus::listen`].
    pub async fn unlisten(&self, channel: &str) -> Result<(), BusError> {
        let Bus::Redis(bus) = self else {
            return Ok(());
        };
        if let Ok(mut handlers) = bus.handlers.write() {
            handlers.remove(channel);
        }
        bus.link.unsubscribe(channel).await
    }
}

impl Driver for Bus {
    type Error = BusError;

    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), BusError> {
        if self.is_enabled() {
            metrics::counter!("bus_messages_published_total", "kind" => "adapter").increment(1);
        }
        self.send(channel, payload).await
    }

    async fn subscribe(
        &self,
        channel: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, BusError> {
        match self {
            Bus::Disabled => Ok(MessageStream::new_empty()),
            Bus::Redis(_) => {
                let (sender, receiver) = mpsc::channel(size.max(1));
                if let Err(error) = self.listen(channel.clone(), sender).await {
                    tracing::warn!(%error, channel, "subscription deferred until Redis answers");
                }
                Ok(MessageStream::new(receiver))
            }
        }
    }

    async fn unsubscribe(&self, channel: String) -> Result<(), BusError> {
        self.unlisten(&channel).await
    }

    async fn num_serv(&self, channel: &str) -> Result<u16, BusError> {
        match self {
            Bus::Disabled => Ok(1),
            Bus::Redis(bus) => bus.link.subscribers(channel).await,
        }
    }
}
