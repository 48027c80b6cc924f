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

/// Records the process's resident memory, CPU time, threads and file
/// descriptors under the names every Prometheus client uses
/// (`process_resident_memory_bytes`, `process_cpu_seconds_total`, ...), so
/// alerts and dashboards written for them work unchanged. Read from `/proc`
/// at each scrape: a few syscalls, nothing in the background.
pub fn sample_process_metrics() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let collector = metrics_process::Collector::default();
            collector.describe();
            collector
        })
        .collect();
}

/// Counters that count failures and rare events, with every label value
/// they can take, registered at zero when an instance starts. A counter that
/// first appears at 1 hides that increment from `rate()`, and an absent
/// series makes an alert on it silently never fire; the alert rules and
/// dashboards in deploy/monitoring rely on these existing from the start.
const COUNTERS_FROM_ZERO: &[(&str, &[(&str, &str)])] = &[
    ("http_requests_shed_total", &[("reason", "queue_full")]),
    ("http_requests_shed_total", &[("reason", "queue_timeout")]),
    ("rate_limited_total", &[("limit", "token")]),
    ("rate_limited_total", &[("limit", "user")]),
    ("realtime_connections_total", &[]),
    (
        "realtime_connections_refused_total",
        &[("limit", "instance")],
    ),
    ("realtime_connections_refused_total", &[("limit", "user")]),
    ("realtime_event_failures_total", &[("event", "handshake")]),
    ("realtime_deliveries_total", &[]),
    ("realtime_replayed_events_total", &[]),
    ("realtime_gap_fill_events_total", &[]),
    ("realtime_duplicates_dropped_total", &[]),
    ("realtime_reconcile_catch_ups_total", &[]),
    ("realtime_send_failures_total", &[]),
    ("realtime_slow_consumers_disconnected_total", &[]),
    ("bus_publish_failures_total", &[]),
    ("bus_messages_dropped_total", &[]),
    ("cache_errors_total", &[("op", "get")]),
    ("cache_errors_total", &[("op", "write")]),
    ("cache_bypassed_calls_total", &[("op", "get")]),
    ("cache_bypassed_calls_total", &[("op", "write")]),
    ("cache_repairs_total", &[]),
    ("cache_repairs_dropped_total", &[]),
    ("db_replica_fallbacks_total", &[("reason", "behind")]),
    ("db_replica_fallbacks_total", &[("reason", "error")]),
    ("events_pruned_total", &[]),
];

/// Registers [`COUNTERS_FROM_ZERO`] (an increment by 0 creates the series),
/// and the gauges that start at zero.
pub fn register_counters() {
    for (name, labels) in COUNTERS_FROM_ZERO {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(key, value)| metrics::Label::new(*key, *value))
            .collect();
        metrics::counter!(*name, labels).increment(0);
    }
    metrics::gauge!("cache_pending_repairs").set(0.0);
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
