//! Building the application from its configuration, and serving it.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::util::MapRequestLayer;

use crate::app::{App, CommitListener};
use crate::auth::SWEEP_INTERVAL;
use crate::breaker::Breaker;
use crate::cache::{Cache, CacheProbe, CacheSettings, MemoryStore, RedisStore, Store};
use crate::config::{Config, Secret, Switch};
use crate::db;
use crate::db::replicas::{Database, ReplicaProbe};
use crate::embedded_pg::EmbeddedPostgres;
use crate::error_tracking;
use crate::health::Probe;
use crate::http;
use crate::http::session_cookie::CookiePolicy;
use crate::limits::SharedLoginLimits;
use crate::realtime::{self, Bus, FanoutProbe, Realtime, RealtimeSettings};
use crate::state::AppState;
use crate::telemetry;

/// How long start-up waits for the database to accept connections.
const DATABASE_PATIENCE: Duration = Duration::from_secs(30);

/// A built application: bound to its port, migrated, not yet serving.
pub struct Application {
    listener: TcpListener,
    /// `METRICS_BIND`'s listener, when metrics have a port of their own.
    metrics_listener: Option<TcpListener>,
    router: Router,
    state: AppState,
    realtime: Realtime,
    embedded: Option<EmbeddedPostgres>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Installed before anything records: breakers report their first
        // state as they are made.
        // Without a recorder every metric the code records is a no-op: what
        // the benchmark of monitoring's own cost compares against.
        let metrics = (config.metrics == Switch::On).then(|| {
            let handle = telemetry::metrics_handle();
            telemetry::register_counters();
            handle
        });
        error_tracking::init(&error_tracking::Settings {
            sentry_dsn: config
                .sentry_dsn
                .as_ref()
                .map(|dsn| dsn.expose().to_owned()),
            environment: config.sentry_environment.clone(),
            reports_per_minute: config.sentry_reports_per_minute,
        });
        let (db, embedded) = database(&config).await?;
        db::migrate(&db, DATABASE_PATIENCE).await?;
        let bus = bus(&config)?;
        let replicas = replica_pools(&config)?;
        let database = Database::new(db.clone(), replicas, config.replica_max_lag());
        let cache = cache(&config)?;
        let config = Arc::new(config);
        let shared_login_limits = shared_login_limits(&config)?;
        let app = App::new(
            database.clone(),
            cache.clone(),
            config.clone(),
            shared_login_limits,
        );
        let fanout_enabled = bus.is_enabled();
        let (realtime, socket_layer) =
            Realtime::start(app.clone(), bus, RealtimeSettings::from_config(&config)).await?;
        app.set_listeners(vec![Arc::new(realtime.clone()) as Arc<dyn CommitListener>]);
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let metrics_listener = match config.metrics_bind {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (METRICS_BIND)"))?,
            ),
            None => None,
        };
        let mut probes: Vec<Arc<dyn Probe>> = vec![Arc::new(db::DatabaseProbe {
            name: "database",
            pool: db.clone(),
            required: true,
        })];
        for index in 0..database.replicas().len() {
            probes.push(Arc::new(ReplicaProbe {
                database: database.clone(),
                index,
            }));
        }
        if fanout_enabled {
            probes.push(Arc::new(FanoutProbe(realtime.clone())));
        }
        // The in-process cache cannot fail; only a shared one is a dependency.
        if cache.is_shared() {
            probes.push(Arc::new(CacheProbe(cache.clone())));
        }
        let state = AppState {
            app,
            metrics,
            cookies: Arc::new(CookiePolicy::new(&config)),
            config,
            probes: Arc::new(probes),
        };
        Ok(Application {
            router: http::router(state.clone())
                .layer(socket_layer)
                .layer(MapRequestLayer::new(realtime::detach_request_head)),
            listener,
            metrics_listener,
            state,
            realtime,
            embedded,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn db(&self) -> &PgPool {
        self.state.app.db()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish, closes the pool and stops the private database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            router,
            state,
            realtime,
            mut embedded,
        } = self;
        let app = &state.app;
        let mut background = vec![
            tokio::spawn(sweep_forever(app.clone())),
            tokio::spawn(app.cache().clone().repair_forever()),
            tokio::spawn(app.database().clone().watch_replicas_forever()),
            tokio::spawn(retain_forever(app.clone())),
            tokio::spawn(crate::jobs::sample_forever(app.clone())),
        ];
        if app.config().job_concurrency > 0 {
            background.push(tokio::spawn(crate::jobs::work_forever(
                app.clone(),
                worker_name(),
            )));
        }
        if let Some(metrics_listener) = metrics_listener {
            // Scrapes are short and idempotent: this listener simply stops
            // with the rest, without a drain of its own.
            let metrics = http::metrics_router(state.clone());
            background.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(metrics_listener, metrics).await {
                    tracing::error!(%error, "the metrics listener failed");
                }
            }));
        }
        // Sockets never end by themselves: close them when shutdown begins, so
        // the graceful shutdown only waits for ordinary requests.
        let shutdown = async move {
            shutdown.await;
            realtime.close().await;
        };
        let served = serve(listener, router, shutdown).await;
        for task in background {
            task.abort();
        }
        state.app.db().close().await;
        for replica in state.app.database().replicas() {
            replica.pool.close().await;
        }
        if let Some(embedded) = embedded.as_mut() {
            embedded.stop();
        }
        error_tracking::flush(Duration::from_secs(2));
        served.context("server failed")
    }
}

/// The pool, and the private PostgreSQL behind it when there is no `DATABASE_URL`.
pub async fn database(config: &Config) -> anyhow::Result<(PgPool, Option<EmbeddedPostgres>)> {
    match &config.database_url {
        Some(url) => {
            let options = PgConnectOptions::from_str(url.expose()).with_context(|| {
                format!("DATABASE_URL is not a PostgreSQL URL: {}", url.redacted())
            })?;
            tracing::info!(database = %url.redacted(), "using PostgreSQL");
            Ok((
                db::pool(options, config.database_max_connections, config),
                None,
            ))
        }
        None => {
            let embedded = EmbeddedPostgres::start(&config.data_dir).await?;
            tracing::info!(data_dir = %config.data_dir.display(), "using the private PostgreSQL");
            Ok((
                db::pool(
                    embedded.connect_options(),
                    config.database_max_connections,
                    config,
                ),
                Some(embedded),
            ))
        }
    }
}

/// A pool per read replica, each with its own connection budget.
fn replica_pools(config: &Config) -> anyhow::Result<Vec<PgPool>> {
    config
        .database_replica_urls
        .iter()
        .enumerate()
        .map(|(n, url)| {
            let options = PgConnectOptions::from_str(url.expose()).with_context(|| {
                format!(
                    "DATABASE_REPLICA_URLS entry {n} is not a PostgreSQL URL: {}",
                    url.redacted()
                )
            })?;
            tracing::info!(replica = n, database = %url.redacted(), "using a read replica");
            Ok(db::pool(
                options,
                config.database_replica_max_connections,
                config,
            ))
        })
        .collect()
}

/// The bus between instances: on the Redis Cluster when there is one, else
/// on `REDIS_URL`'s server, else none (a single instance).
fn bus(config: &Config) -> anyhow::Result<Bus> {
    if !config.redis_cluster_urls.is_empty() {
        anyhow::ensure!(
            config.redis_url.is_some() || config.cache == Switch::Off,
            "REDIS_CLUSTER_URLS carries only the real-time bus: the cache and sessions need \
             one Redis every instance shares (REDIS_URL), or CACHE=off"
        );
        let nodes: Vec<&str> = config
            .redis_cluster_urls
            .iter()
            .map(Secret::expose)
            .collect();
        let redacted: Vec<String> = config
            .redis_cluster_urls
            .iter()
            .map(Secret::redacted)
            .collect();
        return Bus::redis_cluster(&nodes).with_context(|| {
            format!(
                "REDIS_CLUSTER_URLS are not usable Redis URLs: {}",
                redacted.join(",")
            )
        });
    }
    match &config.redis_url {
        Some(url) => Bus::redis(url.expose())
            .with_context(|| format!("REDIS_URL is not a usable Redis URL: {}", url.redacted())),
        None => Ok(Bus::Disabled),
    }
}

/// Sign-in budgets counted in Redis across the deployment, when there is
/// a Redis.
fn shared_login_limits(config: &Config) -> anyhow::Result<Option<SharedLoginLimits>> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let limits = SharedLoginLimits::new(
        url.expose(),
        &config.redis_prefix,
        config.cache_timeout(),
        config.login_attempts_per_email_per_minute,
        config.login_attempts_per_ip_per_minute,
    )
    .with_context(|| format!("REDIS_URL is not a usable Redis URL: {}", url.redacted()))?;
    Ok(Some(limits))
}

/// The read cache the configuration asks for: shared through Redis when
/// there is one, in this process otherwise, or none.
fn cache(config: &Config) -> anyhow::Result<Cache> {
    if config.cache == Switch::Off {
        tracing::info!("read cache off");
        return Ok(Cache::disabled());
    }
    let settings = CacheSettings {
        local_max_bytes: config.cache_local_mb * 1024 * 1024,
    };
    let store: Arc<dyn Store> = match &config.redis_url {
        Some(url) => {
            let breaker = Breaker::new("cache", 3, Duration::from_secs(2));
            Arc::new(
                RedisStore::new(
                    url.expose(),
                    &config.redis_prefix,
                    config.cache_timeout(),
                    breaker,
                )
                .with_context(|| {
                    format!("REDIS_URL is not a usable Redis URL: {}", url.redacted())
                })?,
            )
        }
        None => Arc::new(MemoryStore::new(
            settings.local_max_bytes,
            Duration::from_secs(600),
        )),
    };
    Ok(Cache::new(store, &settings))
}

/// Applies the change log's retention policy now and then, on every
/// instance; the policy itself makes sure only one works at a time.
async fn retain_forever(app: App) {
    let Some(retention) = app.config().retention() else {
        return;
    };
    let every = Duration::from_secs(app.config().events_retention_interval_secs.max(1));
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match db::events::apply_retention(app.db(), retention).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, "pruned the change log");
                metrics::counter!("events_pruned_total").increment(deleted);
            }
            Err(error) => tracing::warn!(%error, "could not apply the change log's retention"),
        }
    }
}

/// How long a client may take to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections and serves each with hyper's HTTP/1 connection
/// builder (with upgrades for WebSockets) until `shutdown`, then waits for
/// requests in flight. HTTP/1 only — what browsers, nginx and Socket.IO
/// speak here — which keeps an upgraded WebSocket's per-connection state
/// smaller than the auto-detecting HTTP/1 + HTTP/2 builder.
async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service;

    // Shutdown is announced on `stop`; every connection task holds a clone of
    // `alive`, so `drained` resolves when the last one has finished.
    let (stop, _) = tokio::sync::watch::channel(());
    let (alive, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().call(request)
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stopping = stop.subscribe();
        let alive = alive.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(alive);
        });
    }
    drop(listener);
    let _ = stop.send(());
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

/// Who holds a job's lease: this process, told apart from every other
/// instance (and from its own earlier runs).
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "taskmaster".into());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
    .chars()
    .take(200)
    .collect()
}

/// Housekeeping: forget idle rate-limit keys, delete expired sessions.
async fn sweep_forever(app: App) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        app.sweep().await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
