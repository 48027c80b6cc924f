//! Logs and metrics set-up.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::http::LATENCY_BUCKETS;

/// Redis commands and pool waits take tens of microseconds when healthy:
/// the request latency buckets would put them all in the first one.
const FAST_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Cumulative layout shift: 0.1 and 0.25 are the good / poor thresholds.
const LAYOUT_SHIFT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Structured logs to stderr; `RUST_LOG` adjusts levels (default `info`).
/// The redis client's own warnings are left out by default: while a cluster
/// node is down it logs every reconnection attempt, hundreds a second, and
/// the bus reports the outage itself (the `redis` check in `/readyz`,
/// `realtime_fanout_up`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,redis=error"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second initialisation (tests build several apps) is harmless: keep the first.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use. The `metrics`
/// facade has one global recorder, so every app in a process shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("redis_command_duration_seconds".into()),
                    FAST_BUCKETS,
                )
                .expect("fast buckets are not empty")
                .set_buckets_for_metric(
                    Matcher::Full("db_pool_acquire_seconds".into()),
                    FAST_BUCKETS,
                )
                .expect("fast buckets are not empty")
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .set_buckets_for_metric(
                    Matcher::Full("web_vitals_cls".into()),
                    LAYOUT_SHIFT_BUCKETS,
                )
                .expect("layout shift buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is already installed; ours then
            // still renders (empty) rather than taking the process down.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
