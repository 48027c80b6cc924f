//! Logs, traces and metrics set-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;

use crate::config::{Config, LogFormat};
use crate::http::LATENCY_BUCKETS;

/// Redis commands and pool waits take tens of microseconds when healthy:
/// the request latency buckets would put them all in the first one.
const FAST_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Cumulative layout shift: 0.1 and 0.25 are the good / poor thresholds.
const LAYOUT_SHIFT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Where traces go, when they are exported (`OTEL_*` settings).
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The collector's base URL; spans are posted to `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// The share of new traces recorded.
    pub sample_ratio: f64,
    pub service_name: String,
}

impl TraceExport {
    pub fn from_config(config: &Config) -> Option<TraceExport> {
        config
            .otel_exporter_otlp_endpoint
            .as_ref()
            .map(|endpoint| TraceExport {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                sample_ratio: config.otel_traces_sampler_arg,
                service_name: config.otel_service_name.clone(),
            })
    }
}

/// Keeps the trace exporter running; dropping it sends what is buffered.
#[must_use = "dropping the guard stops the trace exporter"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("trace exporter shutdown: {error}");
            }
        }
    }
}

/// Whether spans are exported: the HTTP layer only reads incoming trace
/// context, and names spans for the collector, when they are.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub fn exporting_traces() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The share of new traces recorded (an `f64`'s bits).
static SAMPLE_RATIO: AtomicU64 = AtomicU64::new(0);

/// The target of a span that starts a recorded trace: a request chosen by
/// [`sample_request`], or the delivery of a recorded change on another
/// instance. Only these roots, and what runs under them, reach the
/// OpenTelemetry layer.
pub const TRACE_ROOT: &str = "taskmaster_server::trace_root";

/// Whether to record the trace of a request: as its caller's `traceparent`
/// says, else by the configured ratio. Decided here, at the root, so that
/// the spans of the other requests are never built for the exporter.
pub fn sample_request(headers: &axum::http::HeaderMap) -> bool {
    if !exporting_traces() {
        return false;
    }
    let flags = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split('-').nth(3))
        .and_then(|flags| u8::from_str_radix(flags, 16).ok());
    match flags {
        Some(flags) => flags & 1 == 1,
        None => rand::random::<f64>() < f64::from_bits(SAMPLE_RATIO.load(Ordering::Relaxed)),
    }
}

/// Head sampling in front of the OpenTelemetry layer. A span reaches it
/// when it is a [`TRACE_ROOT`] or its parent reached it; everything else
/// (the unsampled requests, housekeeping) costs the layer nothing. Without
/// this, the layer builds span data for every request and the sampler drops
/// it at the end: at a 5 % ratio, a tenth of the server's CPU per REST read
/// went on traces nobody kept (docs/BENCHMARKS.md, "The cost of monitoring").
fn head_sampled<S>(metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    if !metadata.target().starts_with("taskmaster_server") || *metadata.level() > Level::INFO {
        return false;
    }
    match cx.current_span().id() {
        None => metadata.target() == TRACE_ROOT,
        // The context is this layer's: it finds the parent only if the
        // parent was let through.
        Some(parent) => cx.span(parent).is_some(),
    }
}

/// Structured logs to stderr (`RUST_LOG` adjusts levels, default `info`)
/// and, with `traces`, our spans exported over OTLP (at `info`, whatever
/// the log level). The redis
/// client's own warnings are left out by default: while a cluster node is
/// down it logs every reconnection attempt, hundreds a second, and the bus
/// reports the outage itself (the `redis` check in `/readyz`,
/// `realtime_fanout_up`).
pub fn init(format: LogFormat, traces: Option<&TraceExport>) -> anyhow::Result<TelemetryGuard> {
    // `RUST_LOG` chooses what is logged; it does not thin out the traces.
    let log_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,redis=error"));
    let (otel, tracer_provider) = match traces {
        Some(export) => {
            let provider = tracer_provider(export)?;
            // Spans stay unstarted until their first child or their end, so
            // the request span can still be named by its route once routing
            // matched one (nothing here uses OpenTelemetry's own current
            // context, which activation would maintain); busy/idle timings
            // and thread names are not worth their cost per span.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("taskmaster"))
                .with_context_activation(false)
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(DynFilterFn::new(head_sampled));
            SAMPLE_RATIO.store(export.sample_ratio.to_bits(), Ordering::Relaxed);
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            EXPORTING.store(true, Ordering::Relaxed);
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
    };
    // A second initialisation (tests build several apps) is harmless: keep the first.
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(logs)
        .try_init();
    Ok(TelemetryGuard { tracer_provider })
}

/// Logs only, as the tests want them.
pub fn init_logging(format: LogFormat) {
    // Without an exporter nothing can fail, and there is nothing to keep.
    let _ = init(format, None);
}

fn tracer_provider(export: &TraceExport) -> anyhow::Result<SdkTracerProvider> {
    crate::tls::install_default_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", export.endpoint))
        .with_timeout(Duration::from_secs(5))
        .build()
        .context("the OTLP trace exporter")?;
    // The decision is taken before a trace starts (`sample_request`), so
    // whatever reaches the exporter is recorded; a remote parent's own
    // decision still stands.
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(export.service_name.clone())
                .build(),
        )
        .build())
}

/// The trace context of the current span in W3C form (`traceparent`,
/// `tracestate`), to carry across the bus; empty when nothing is traced.
pub fn current_trace_context() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    if exporting_traces() {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut carrier)
        });
    }
    carrier
}

/// Makes `span` a child of the trace context in `carrier` (from the bus).
pub fn continue_trace(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if exporting_traces() && !carrier.is_empty() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(carrier)
        });
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of the trace context an HTTP request brings.
pub fn continue_trace_from_headers(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if exporting_traces() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(headers))
        });
        let _ = span.set_parent(parent);
    }
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
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
