//! Settings, read from environment variables (or the matching command-line
//! flags). Secrets are wrapped in [`Secret`] so they never reach a log line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "taskmaster",
    version,
    about = "Task Master: real-time collaborative task server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the key user flow against a deployment and report its latency
    /// (synthetic monitoring); exits non-zero when a step fails.
    Probe(crate::probe::ProbeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Without it the server runs a private PostgreSQL under DATA_DIR.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<Secret>,

    /// Read replicas of the database, comma-separated PostgreSQL URLs.
    /// Task reads go to one that has replayed what they need.
    #[arg(long, env = "DATABASE_REPLICA_URLS", value_delimiter = ',')]
    pub database_replica_urls: Vec<Secret>,

    /// Maximum connections in each replica's pool (separate from the
    /// primary's, so a slow replica cannot starve writes).
    #[arg(long, env = "DATABASE_REPLICA_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_replica_max_connections: u32,

    /// A replica further behind than this, in milliseconds, takes no reads
    /// until it catches up.
    #[arg(long, env = "DATABASE_REPLICA_MAX_LAG_MS", default_value_t = 5_000)]
    pub database_replica_max_lag_ms: u64,

    /// The read cache: `on` or `off`. With `REDIS_URL` it is shared by
    /// every instance; without, it lives in this process.
    #[arg(long, env = "CACHE", default_value = "on")]
    pub cache: Switch,

    /// Longest a cache call may take before the cache counts as failing, in
    /// milliseconds; a few failures in a row bypass it for a while.
    #[arg(long, env = "CACHE_TIMEOUT_MS", default_value_t = 100)]
    pub cache_timeout_ms: u64,

    /// Memory for the in-process cache tier, in MiB.
    #[arg(long, env = "CACHE_LOCAL_MB", default_value_t = 64)]
    pub cache_local_mb: u64,

    /// Keep events of the change log for this many days (0: forever).
    #[arg(long, env = "EVENTS_RETENTION_DAYS", default_value_t = 0)]
    pub events_retention_days: u64,

    /// Keep at most this many of each project's latest events (0: all).
    #[arg(long, env = "EVENTS_RETENTION_PER_PROJECT", default_value_t = 0)]
    pub events_retention_per_project: i64,

    /// How often the retention policy runs, in seconds.
    #[arg(long, env = "EVENTS_RETENTION_INTERVAL_SECS", default_value_t = 300)]
    pub events_retention_interval_secs: u64,

    /// Redis URL. Optional for a single instance.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<Secret>,

    /// A Redis Cluster for the real-time bus, comma-separated URLs of any
    /// of its nodes. Fan-out and presence then use sharded pub/sub, spread
    /// over the cluster's masters; `REDIS_URL` still holds the cache and
    /// sessions, which every instance must share.
    #[arg(long, env = "REDIS_CLUSTER_URLS", value_delimiter = ',')]
    pub redis_cluster_urls: Vec<Secret>,

    /// Prefix of every Redis channel this deployment uses, so several
    /// deployments can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "taskmaster")]
    pub redis_prefix: String,

    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Serve `/metrics` on this address of its own (e.g. 0.0.0.0:9090), and
    /// not on BIND, so nothing that forwards the main port (an Ingress, the
    /// edge) can expose it. Unset: `/metrics` is on BIND.
    #[arg(long, env = "METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Where the embedded PostgreSQL keeps its files (used without DATABASE_URL).
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The built web app (`scripts/build-web.sh` writes it), served at `/`.
    #[arg(long, env = "WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,

    /// Where browsers fetch the web app's assets from, e.g. a CDN host
    /// (`https://cdn.example.com`); `index.html` points its asset links there.
    /// Unset: this server's own `/assets/`.
    #[arg(long, env = "ASSET_BASE_URL", value_parser = parse_asset_base_url)]
    pub asset_base_url: Option<String>,

    /// Compress API responses over 1 KiB (brotli or gzip, as the client
    /// accepts). A single instance has no edge in front to do it; behind
    /// the edge, the edge passes compressed answers through as they are.
    #[arg(long, env = "COMPRESS_RESPONSES", default_value_t = true, action = clap::ArgAction::Set)]
    pub compress_responses: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest Task Master file accepted by the importers, in bytes (a
    /// `tasks.json` of a few thousand tasks with long details runs to a
    /// few MB).
    #[arg(long, env = "IMPORT_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub import_max_bytes: usize,

    /// Background jobs one instance runs at once; 0 for an instance that
    /// runs none (web only, with workers elsewhere).
    #[arg(long, env = "JOB_CONCURRENCY", default_value_t = 4)]
    pub job_concurrency: usize,

    /// A claimed job is its instance's for this long (renewed while it
    /// runs); past it, another instance takes the job over.
    #[arg(long, env = "JOB_LEASE_MS", default_value_t = 30_000)]
    pub job_lease_ms: u64,

    /// The first retry of a failed job waits about this long, doubling with
    /// each attempt (with jitter), up to `JOB_RETRY_CAP_MS`.
    #[arg(long, env = "JOB_RETRY_BASE_MS", default_value_t = 1_000)]
    pub job_retry_base_ms: u64,

    #[arg(long, env = "JOB_RETRY_CAP_MS", default_value_t = 300_000)]
    pub job_retry_cap_ms: u64,

    /// How often an idle worker looks for due jobs.
    #[arg(long, env = "JOB_POLL_MS", default_value_t = 250)]
    pub job_poll_ms: u64,

    /// Attempts at one event before a webhook dead-letters it.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: i32,

    /// A webhook is disabled after this many events in a row are dead-lettered.
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER_DEAD_LETTERS", default_value_t = 3)]
    pub webhook_disable_after_dead_letters: u32,

    /// Each webhook post must be answered within this.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Let webhooks post to loopback and private addresses (refused by
    /// default: a webhook must not reach into the deployment's own network).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private_addresses: bool,

    /// Maximum connections in the database pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,

    /// Longest a single SQL statement may run, in milliseconds.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub database_statement_timeout_ms: u64,

    /// Longest a request may wait for a database connection, in milliseconds.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 3_000)]
    pub database_acquire_timeout_ms: u64,

    /// Longest a whole HTTP request may take, in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// API requests this instance serves at once; more wait their turn.
    #[arg(long, env = "MAX_REQUESTS_IN_FLIGHT", default_value_t = 256)]
    pub max_requests_in_flight: usize,

    /// API requests that may wait for a turn. Beyond that, or after
    /// REQUEST_QUEUE_TIMEOUT_MS of waiting, a request is refused at once with
    /// 503 and `Retry-After` rather than served ever later.
    #[arg(long, env = "MAX_REQUESTS_QUEUED", default_value_t = 512)]
    pub max_requests_queued: usize,

    /// Longest an API request waits for a turn, in milliseconds.
    #[arg(long, env = "REQUEST_QUEUE_TIMEOUT_MS", default_value_t = 500)]
    pub request_queue_timeout_ms: u64,

    /// How long a sign-in token stays valid, in hours.
    #[arg(long, env = "SESSION_TTL_HOURS", default_value_t = 24 * 30)]
    pub session_ttl_hours: u64,

    /// Sign-in attempts allowed per email address per minute.
    #[arg(
        long,
        env = "LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE",
        default_value_t = 10
    )]
    pub login_attempts_per_email_per_minute: u32,

    /// Sign-in and sign-up attempts allowed per client IP per minute.
    #[arg(long, env = "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", default_value_t = 60)]
    pub login_attempts_per_ip_per_minute: u32,

    /// API requests (REST calls, socket handshakes and writes) one sign-in
    /// token may make per second, on each instance, with bursts of five
    /// seconds' worth; beyond it 429 with `Retry-After`. 0: no limit.
    #[arg(
        long,
        env = "API_REQUESTS_PER_TOKEN_PER_SECOND",
        default_value_t = 1000
    )]
    pub api_requests_per_token_per_second: u32,

    /// The same, for all of one user's tokens together (a user running
    /// several agents). 0: no limit.
    #[arg(long, env = "API_REQUESTS_PER_USER_PER_SECOND", default_value_t = 2000)]
    pub api_requests_per_user_per_second: u32,

    /// Take the client IP from the last `X-Forwarded-For` hop (only behind a proxy you run).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Mark the browser session cookies `Secure` (sent over HTTPS only) and
    /// give them the `__Host-` prefix. Browsers treat `http://localhost` and
    /// loopback addresses as secure, so only a deployment serving plain HTTP
    /// on another address needs `false`.
    #[arg(long, env = "SESSION_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub session_cookie_secure: bool,

    /// Origins (`https://app.example.com`, comma-separated) whose pages may
    /// call the API from the browser with a bearer token. Empty: none, and
    /// no CORS headers are sent at all.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<String>,

    /// Socket.IO heartbeat: how often the server pings each client, in milliseconds.
    #[arg(long, env = "SOCKET_PING_INTERVAL_MS", default_value_t = 10_000)]
    pub socket_ping_interval_ms: u64,

    /// How long a client may take to answer a ping before it is dropped (and
    /// leaves presence), in milliseconds.
    #[arg(long, env = "SOCKET_PING_TIMEOUT_MS", default_value_t = 10_000)]
    pub socket_ping_timeout_ms: u64,

    /// Largest Socket.IO message a client may send, in bytes.
    #[arg(long, env = "SOCKET_MAX_PAYLOAD_BYTES", default_value_t = 1024 * 1024)]
    pub socket_max_payload_bytes: u64,

    /// Packets queued per socket before it counts as too slow and is
    /// disconnected (it recovers by re-joining with `since`).
    #[arg(long, env = "SOCKET_SEND_BUFFER_PACKETS", default_value_t = 2_048)]
    pub socket_send_buffer_packets: usize,

    /// Socket.IO connections this instance holds at most; past it a
    /// handshake is refused with a `connect_error` and the client retries
    /// (through the edge, likely on another instance).
    #[arg(long, env = "SOCKET_MAX_CONNECTIONS", default_value_t = 25_000)]
    pub socket_max_connections: usize,

    /// Socket.IO connections one user holds at most on this instance: a
    /// client that opens connections in a loop is stopped long before the
    /// instance's limit.
    #[arg(long, env = "SOCKET_MAX_CONNECTIONS_PER_USER", default_value_t = 500)]
    pub socket_max_connections_per_user: usize,

    /// Projects one Socket.IO connection follows at most at once; a further
    /// `join` is refused with `too_many_projects`.
    #[arg(
        long,
        env = "SOCKET_MAX_PROJECTS_PER_CONNECTION",
        default_value_t = 200
    )]
    pub socket_max_projects_per_connection: usize,

    /// Most events replayed to a `join` with `since`; further behind gets
    /// `resync_required` (the client reloads by REST instead).
    #[arg(long, env = "REPLAY_MAX_EVENTS", default_value_t = 1_000)]
    pub replay_max_events: i64,

    /// Prometheus metrics: `on`, or `off` to record nothing (only to
    /// measure what metrics cost; alerts and dashboards need them).
    #[arg(long, env = "METRICS", default_value = "on")]
    pub metrics: Switch,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Report failures clients see (5xx answers, panics, Socket.IO events
    /// that failed on our side) to this Sentry DSN, or any endpoint that
    /// speaks Sentry's protocol. Unset: they are only counted and logged.
    #[arg(long, env = "SENTRY_DSN")]
    pub sentry_dsn: Option<Secret>,

    /// The environment reports are filed under (`production`, `staging`).
    #[arg(long, env = "SENTRY_ENVIRONMENT")]
    pub sentry_environment: Option<String>,

    /// Most reports sent per minute for each kind of failure (internal,
    /// panic, unavailable, timeout, shed); the rest are only counted.
    #[arg(long, env = "SENTRY_REPORTS_PER_MINUTE", default_value_t = 60)]
    pub sentry_reports_per_minute: u32,

    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://otel-collector:4318` (traces go to `/v1/traces`). Unset: no
    /// tracing beyond the logs, and no cost for it.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The share of traces recorded, 0 to 1, for requests that arrive
    /// without a sampling decision; a `traceparent` from the caller decides
    /// for its own trace.
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", default_value_t = 0.05, value_parser = parse_ratio)]
    pub otel_traces_sampler_arg: f64,

    /// The service name traces carry.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "taskmaster")]
    pub otel_service_name: String,
}

impl Cli {
    /// Parses the command line and the environment, where a variable set to
    /// the empty string counts as unset: compose files and shells produce
    /// `REDIS_URL=` for "no Redis", and that must not be an unparseable URL.
    pub fn from_env_and_args() -> Cli {
        Self::parse_with(std::env::args_os(), |name| std::env::var_os(name))
    }

    fn parse_with(
        args: impl IntoIterator<Item = std::ffi::OsString>,
        var: impl Fn(&std::ffi::OsStr) -> Option<std::ffi::OsString>,
    ) -> Cli {
        Self::try_parse_with(args, var).unwrap_or_else(|error| error.exit())
    }

    fn try_parse_with(
        args: impl IntoIterator<Item = std::ffi::OsString>,
        var: impl Fn(&std::ffi::OsStr) -> Option<std::ffi::OsString>,
    ) -> Result<Cli, clap::Error> {
        let mut command = Cli::command();
        let empty: Vec<clap::Id> = command
            .get_arguments()
            .filter(|arg| {
                arg.get_env()
                    .is_some_and(|name| var(name).is_some_and(|value| value.is_empty()))
            })
            .map(|arg| arg.get_id().clone())
            .collect();
        for id in empty {
            command = command.mut_arg(id, |arg| arg.env(None::<&str>));
        }
        let matches = command.try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }
}

impl Config {
    /// Settings with every default, as if no variable were set.
    pub fn defaults() -> Self {
        Cli::parse_from(["taskmaster"]).config
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.database_statement_timeout_ms)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms.max(1))
    }

    pub fn queue_settings(&self) -> crate::jobs::QueueSettings {
        crate::jobs::QueueSettings {
            lease: Duration::from_millis(self.job_lease_ms.max(100)),
            retry_base: Duration::from_millis(self.job_retry_base_ms.max(1)),
            retry_cap: Duration::from_millis(self.job_retry_cap_ms.max(self.job_retry_base_ms)),
            concurrency: self.job_concurrency.max(1),
            poll: Duration::from_millis(self.job_poll_ms.max(10)),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_hours * 3600)
    }

    pub fn replica_max_lag(&self) -> Duration {
        Duration::from_millis(self.database_replica_max_lag_ms)
    }

    pub fn cache_timeout(&self) -> Duration {
        Duration::from_millis(self.cache_timeout_ms)
    }

    /// The change log's retention policy; `None` keeps everything.
    pub fn retention(&self) -> Option<crate::db::events::Retention> {
        let retention = crate::db::events::Retention {
            max_age: (self.events_retention_days > 0)
                .then(|| Duration::from_secs(self.events_retention_days * 24 * 3600)),
            per_project: (self.events_retention_per_project > 0)
                .then_some(self.events_retention_per_project),
        };
        (retention.max_age.is_some() || retention.per_project.is_some()).then_some(retention)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must not be logged: a URL with a password, a key.
///
/// `Debug` shows a URL with its password replaced by `***`, or `***` for
/// anything else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value with any URL password masked: safe to log.
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &self.0[scheme_end + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                if userinfo.contains(':') {
                    format!("{}{user}:***{}", &self.0[..scheme_end + 3], &self.0[at..])
                } else {
                    self.0.clone()
                }
            }
            (Some(_), _) => self.0.clone(),
            _ => "***".to_owned(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

/// A share between 0 and 1.
fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("{value:?} is not a ratio between 0 and 1")),
    }
}

/// A browser origin, `scheme://host[:port]`, as the `Origin` header spells
/// it (lower case, no path, no trailing slash).
fn parse_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or_default();
    let well_formed = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if well_formed {
        Ok(origin)
    } else {
        Err(format!(
            "CORS_ALLOWED_ORIGINS entry {value:?} is not an origin of the form https://host[:port]"
        ))
    }
}

/// An absolute http(s) origin, optionally with a path, kept without its
/// trailing slash so that `{base}/assets/…` is well formed.
fn parse_asset_base_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or("ASSET_BASE_URL must start with https:// or http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || trimmed.contains(['"', '\'', '<', '>', ' ', '?', '#']) {
        return Err(format!(
            "ASSET_BASE_URL {value:?} is not a URL of the form https://host[/path]"
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        let secret = Secret::new("postgres://app:hunter2@db:5432/tm");
        assert_eq!(secret.redacted(), "postgres://app:***@db:5432/tm");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!(
            "{:?}",
            Config {
                database_url: Some(secret),
                ..Config::defaults()
            }
        )
        .contains("hunter2"));
    }

    #[test]
    fn urls_without_password_stay_readable() {
        assert_eq!(
            Secret::new("redis://127.0.0.1:6379").redacted(),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            Secret::new("postgres://app@db/tm").redacted(),
            "postgres://app@db/tm"
        );
        assert_eq!(Secret::new("plain-key").redacted(), "***");
    }

    #[test]
    fn empty_variables_mean_unset() {
        let vars = |name: &std::ffi::OsStr| -> Option<std::ffi::OsString> {
            match name.to_str()? {
                "REDIS_URL"
                | "MAX_BODY_BYTES"
                | "DATABASE_URL"
                | "REDIS_PREFIX"
                | "DATABASE_REPLICA_URLS" => Some("".into()),
                _ => None,
            }
        };
        let args = ["taskmaster", "--redis-prefix", "tm-a"].map(Into::into);
        let config = Cli::parse_with(args, vars).config;
        assert!(config.database_replica_urls.is_empty());
        assert!(config.redis_url.is_none());
        assert!(config.database_url.is_none());
        assert_eq!(config.max_body_bytes, Config::defaults().max_body_bytes);
        assert_eq!(config.redis_prefix, "tm-a", "flags still count");
    }

    #[test]
    fn redis_cluster_urls_are_a_comma_separated_list() {
        let args = [
            "taskmaster",
            "--redis-cluster-urls",
            "redis://127.0.0.1:7001,redis://127.0.0.1:7002",
        ];
        let config = Cli::parse_with(args.map(Into::into), |_| None).config;
        assert_eq!(
            config.redis_cluster_urls,
            vec![
                Secret::new("redis://127.0.0.1:7001"),
                Secret::new("redis://127.0.0.1:7002")
            ]
        );
        assert!(Config::defaults().redis_cluster_urls.is_empty());
    }

    #[test]
    fn replica_urls_are_a_comma_separated_list() {
        let args = [
            "taskmaster",
            "--database-replica-urls",
            "postgres://a@r1/tm,postgres://a:pw@r2/tm",
        ];
        let config = Cli::parse_with(args.map(Into::into), |_| None).config;
        assert_eq!(
            config.database_replica_urls,
            vec![
                Secret::new("postgres://a@r1/tm"),
                Secret::new("postgres://a:pw@r2/tm")
            ]
        );
    }

    #[test]
    fn asset_base_urls_are_checked() {
        let parse = |value: &str| {
            Cli::try_parse_with(
                ["taskmaster", "--asset-base-url", value].map(Into::into),
                |_| None,
            )
            .map(|cli| cli.config.asset_base_url)
        };
        assert_eq!(
            parse("https://cdn.example.com/").unwrap(),
            Some("https://cdn.example.com".into())
        );
        assert_eq!(
            parse("https://cdn.example.com/tm").unwrap(),
            Some("https://cdn.example.com/tm".into())
        );
        for bad in [
            "cdn.example.com",
            "https://",
            "https://x\"><script>",
            "ftp://x",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn defaults_are_sane() {
        let config = Config::defaults();
        assert_eq!(config.bind.port(), 8080);
        assert!(
            config.max_body_bytes >= 1024 * 1024,
            "contract: at least 1 MiB is accepted"
        );
    }
}
