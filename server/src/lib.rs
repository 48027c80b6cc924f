//! Task Master server: a REST API and real-time hub for shared Task Master plans.

/// The application layer: every use case, called by every entry point.
pub mod app;
/// Passwords, tokens and sign-in rate limits.
pub mod auth;

pub mod breaker;
/// The read cache: Redis and in-process tiers kept coherent by the change log.
pub mod cache;
/// Settings from the environment; secrets redacted.
pub mod config;
/// PostgreSQL pool, migrations and queries.
pub mod db;
/// Validated domain types and rules (no HTTP, no SQL).
pub mod domain;
/// A private PostgreSQL for running without `DATABASE_URL`.
pub mod embedded_pg;
/// The one error type, free of any transport.
pub mod error;
/// Failures clients see: counted, and reported to Sentry when configured.
pub mod error_tracking;
/// Readiness probes, one per dependency.
pub mod health;
/// Routes, middleware and handlers.
pub mod http;
/// Background jobs (a durable queue in PostgreSQL) and webhook deliveries.
pub mod jobs;

pub mod limits;
/// The Model Context Protocol endpoint for coding agents.
pub mod mcp;
/// Synthetic monitoring: the key user flow against a deployment.
pub mod probe;
/// Socket.IO: rooms per project, ordered exactly-once delivery, presence.
pub mod realtime;
/// Building and serving the application.
pub mod startup;
/// What handlers share.
pub mod state;
/// Logs and metrics.
pub mod telemetry;
/// The TLS provider of outgoing connections.
pub mod tls;
