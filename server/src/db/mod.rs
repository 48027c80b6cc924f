//! PostgreSQL access: the pool, migrations, and one module of plain query
//! functions per table group. SQL lives next to the code that needs it.

pub mod events;
pub mod imports;
pub mod projects;
pub mod replicas;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::Error;
use crate::health::{Probe, Verdict};

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds a pool of at most `max_connections`. Connections are opened lazily, so the server starts (and
/// reports not-ready) while the database is down, and recovers by itself when
/// it returns.
pub fn pool(options: PgConnectOptions, max_connections: u32, config: &Config) -> PgPool {
    let options = options
        .application_name("taskmaster")
        // Bound every statement, so a stuck query cannot hold a connection forever.
        .options([(
            "statement_timeout",
            config.statement_timeout().as_millis().to_string(),
        )]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout())
        .idle_timeout(Some(Duration::from_secs(300)))
        .connect_lazy_with(options)
}

/// Applies pending migrations, waiting up to `patience` for the database to
/// accept connections (it may still be starting, as in docker compose).
pub async fn migrate(pool: &PgPool, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(error))
                if is_connection_error(&error) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(%error, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error).context("applying database migrations failed"),
        }
    }
}

fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

/// Times on the wire are RFC 3339 in UTC.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            // The pool could not hand out a connection in time: the database is
            // down or saturated. Say so instead of pretending it is a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "database unavailable");
                Error::Unavailable("database unavailable; retry shortly".into())
            }
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("57014") => {
                    tracing::warn!(%error, "statement timed out");
                    Error::Unavailable("database too slow to answer; retry shortly".into())
                }
                // Text PostgreSQL cannot store (a NUL character, say) is the
                // client's mistake. Validation refuses it first; this is the
                // net under any input that reaches SQL some other way.
                Some("22021" | "22P05") => Error::validation(
                    "text must not contain NUL characters or bytes that are not UTF-8",
                ),
                _ => Error::Internal(error.into()),
            },
            _ => Error::Internal(error.into()),
        }
    }
}

/// How long the readiness probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness of a database pool: `select 1` within [`PROBE_TIMEOUT`].
pub struct DatabaseProbe {
    pub name: &'static str,
    pub pool: PgPool,
    pub required: bool,
}

impl Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn required(&self) -> bool {
        self.required
    }

    fn check(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + '_>> {
        Box::pin(async move {
            let answer = tokio::time::timeout(
                PROBE_TIMEOUT,
                sqlx::query_scalar::<_, i32>("select 1").fetch_one(&self.pool),
            )
            .await;
            if matches!(answer, Ok(Ok(1))) {
                Verdict::Ok
            } else {
                Verdict::Unavailable
            }
        })
    }
}
