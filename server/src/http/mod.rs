//! The HTTP surface: routes, middleware, and one module per resource.

mod auth;
pub mod error;
pub mod extract;
mod first_paint;
mod health;
mod imports;
mod openapi;
pub mod params;
mod projects;
mod rum;
mod security_headers;
pub mod session_cookie;
mod shedding;
pub(crate) mod tasks;
mod tokens;
mod web;
mod webhooks;

use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{Extensions, HeaderMap, HeaderName, StatusCode, Version};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use openapi::ApiDoc;

use crate::error::Error;
use crate::error_tracking::{self, FailureKind, FailureNote, RequestScope};
use crate::state::AppState;
use crate::telemetry;
use extract::BodyLimit;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application as a router, ready to serve.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let request_timeout = state.config.request_timeout();
    let index = web::IndexPage::new(
        state.config.web_dir.clone(),
        state.config.asset_base_url.clone(),
    );

    // One budget of requests in flight for the API and the agents' endpoint.
    let admission = shedding::Admission::new(&state.config);
    let import_limit = ServiceBuilder::new()
        .layer(Extension(BodyLimit(state.config.import_max_bytes)))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.import_max_bytes,
        ));

    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/sessions", get(auth::sessions))
        .route(
            "/auth/sessions/{session_id}",
            axum::routing::delete(auth::revoke_session),
        )
        .route("/auth/password", post(auth::change_password))
        .route("/auth/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/auth/tokens/{token_id}",
            axum::routing::delete(tokens::revoke),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{project_id}/members",
            get(projects::list_members).post(projects::add_member),
        )
        .route(
            "/projects/{project_id}/members/{user_id}",
            axum::routing::delete(projects::remove_member),
        )
        .route("/projects/{project_id}/audit", get(projects::audit_log))
        .route(
            "/projects/{project_id}/tasks",
            get(tasks::list).post(tasks::create),
        )
        .route("/projects/{project_id}/tasks/next", get(tasks::next))
        .route("/projects/{project_id}/tasks/bulk", post(tasks::bulk))
        .route(
            "/projects/{project_id}/tasks/{id}",
            get(tasks::get).patch(tasks::update).delete(tasks::delete),
        )
        .route("/projects/{project_id}/events", get(tasks::events))
        .route(
            "/projects/{project_id}/tasks.json",
            get(imports::export_project),
        )
        .route(
            "/projects/{project_id}/task-files",
            get(imports::task_files),
        )
        .route("/imports/{import_id}/tasks.json", get(imports::export))
        .route(
            "/projects/{project_id}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/projects/{project_id}/webhooks/{webhook_id}",
            axum::routing::delete(webhooks::delete),
        )
        .route(
            "/projects/{project_id}/webhooks/{webhook_id}/enable",
            post(webhooks::enable),
        )
        .route(
            "/projects/{project_id}/webhooks/{webhook_id}/dead-letters",
            get(webhooks::dead_letters),
        )
        .route(
            "/projects/{project_id}/webhooks/{webhook_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/jobs/{job_id}", get(webhooks::job))
        // Task Master files run larger than other bodies: their own limit.
        .route(
            "/imports",
            post(imports::create).layer(import_limit.clone()),
        )
        .route(
            "/projects/{project_id}/imports",
            post(imports::import_task_file).layer(import_limit),
        )
        .route("/rum", post(rum::record))
        .route("/openapi.json", get(openapi::document))
        .route_layer(middleware::from_fn_with_state(
            admission.clone(),
            shedding::admit,
        ))
        .layer(security_headers::api_policy());
    // A 10,000-task board is 3 MB of JSON, 0.3 MB compressed. Level 4: a
    // fraction of brotli's best ratio at a small share of its cost, which
    // the request pays.
    let api = if state.config.compress_responses {
        api.layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Precise(4))
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))),
        )
    } else {
        api
    };

    // With a metrics listener of its own, the main one has no /metrics.
    let metrics = if state.config.metrics_bind.is_some() {
        get(|| async { Error::NotFound("not_found", "no such endpoint".into()) })
    } else {
        get(health::metrics)
    };
    let cors = security_headers::cors(&state.config.cors_allowed_origins);
    // Agents: the Model Context Protocol, for signed-in callers only.
    let mcp = Router::new()
        .nest_service(
            "/mcp",
            crate::mcp::service(state.app.clone(), state.config.max_body_bytes),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::mcp::authenticate,
        ))
        .layer(middleware::from_fn_with_state(admission, shedding::admit))
        .layer(security_headers::api_policy());
    // Every other address is a page: `index.html`, precompressed, or with a
    // first paint drawn for the caller, compressed as it goes out.
    let pages = {
        let handler = move |State(state): State<AppState>, request: Request| {
            web::fallback(index.clone(), state, request)
        };
        let enabled = state.config.compress_responses;
        let compression = CompressionLayer::new()
            .quality(CompressionLevel::Precise(4))
            .compress_when(
                DefaultPredicate::new()
                    .and(SizeAbove::new(1024))
                    .and(move |_: StatusCode, _: Version, _: &HeaderMap, _: &Extensions| enabled),
            );
        ServiceBuilder::new()
            .layer(compression)
            .service(axum::handler::Handler::with_state(handler, state.clone()))
    };
    let router = Router::new()
        .merge(mcp)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", metrics)
        .nest("/api/v1", api)
        .route_layer(middleware::from_fn_with_state(
            request_timeout,
            record_metrics,
        ))
        .merge(web::assets(state.config.web_dir.clone()))
        .fallback_service(pages)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    let router = with_request_layers(router, body_limit, request_timeout);
    // Outermost, so a preflight is answered before routing (which knows no
    // OPTIONS) and before load shedding.
    let router = security_headers::on_every_response(router);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The layers every request passes, listed outermost first: request ids,
/// the request's span (continuing a caller's trace), error tracking, the
/// panic catcher, the timeout and the body limit. Public so that tests can
/// put a router of their own (one whose handler panics, say) behind them.
pub fn with_request_layers(router: Router, body_limit: usize, request_timeout: Duration) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveHeadersLayer::new([
                AUTHORIZATION,
                COOKIE,
                SET_COOKIE,
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request| {
                        let request_id = request
                            .headers()
                            .get(&REQUEST_ID)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or("-");
                        if !telemetry::sample_request(request.headers()) {
                            return tracing::info_span!(
                                "request",
                                id = %request_id,
                                method = %request.method(),
                                path = %request.uri().path(),
                            );
                        }
                        let span = tracing::info_span!(
                            target: telemetry::TRACE_ROOT,
                            "request",
                            id = %request_id,
                            method = %request.method(),
                            path = %request.uri().path(),
                            // For the trace collector: named by route
                            // once routing has matched one.
                            otel.name = tracing::field::Empty,
                            otel.kind = "server",
                            http.route = tracing::field::Empty,
                            http.response.status_code = tracing::field::Empty,
                        );
                        // A caller's `traceparent` makes this request
                        // part of its trace.
                        telemetry::continue_trace_from_headers(&span, request.headers());
                        span
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // Outside the panic catcher and the timeout, so it sees the
            // answer the client gets.
            .layer(middleware::from_fn(error_tracking::track_http))
            .layer(CatchPanicLayer::custom(|_| {
                // The panic hook told error tracking what panicked.
                Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
            }))
            .layer(HandleErrorLayer::new(|error: BoxError| async move {
                if error.is::<tower::timeout::error::Elapsed>() {
                    let mut response =
                        Error::Unavailable("request took too long; retry shortly".into())
                            .into_response();
                    response.extensions_mut().insert(FailureNote {
                        kind: FailureKind::Timeout,
                        message: "the request outlived REQUEST_TIMEOUT_MS".into(),
                    });
                    response
                } else {
                    Error::Internal(anyhow::anyhow!("middleware error: {error}")).into_response()
                }
            }))
            .timeout(request_timeout)
            .layer(Extension(BodyLimit(body_limit)))
            .layer(axum::extract::DefaultBodyLimit::max(body_limit)),
    )
}

/// The router of the metrics listener (`METRICS_BIND`): `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// Counts requests and their latency by method, matched route and status —
/// never the raw URL, whose ids would make label sets grow without bound.
/// A request whose handler panics or that outlives the request timeout
/// never returns here (the layers outside answer it with 500 / 503); it is
/// still counted, with that status, when its future is dropped, so the
/// error-rate SLO sees every failure.
async fn record_metrics(
    State(request_timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(scope) = request.extensions().get::<std::sync::Arc<RequestScope>>() {
        scope.set_route(&route);
    }
    let mut recording = Recording {
        started: Instant::now(),
        request_timeout,
        method: request.method().to_string(),
        route,
        status: None,
    };
    if telemetry::exporting_traces() {
        let span = tracing::Span::current();
        span.record(
            "otel.name",
            format!("{} {}", recording.method, recording.route),
        );
        span.record("http.route", recording.route.as_str());
    }
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if telemetry::exporting_traces() {
        tracing::Span::current().record("http.response.status_code", status);
    }
    recording.status = Some(status);
    response
}

struct Recording {
    started: Instant,
    request_timeout: Duration,
    method: String,
    route: String,
    /// The response's status; `None` while the handler runs.
    status: Option<u16>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        let status = match self.status {
            Some(status) => status,
            // Unwinding from a handler's panic: CatchPanicLayer answers 500.
            None if std::thread::panicking() => 500,
            // Dropped by the request timeout (answered 503), or because the
            // client went away; nginx's 499 names the latter.
            None => {
                if self.started.elapsed() >= self.request_timeout {
                    503
                } else {
                    499
                }
            }
        };
        let labels = [
            ("method", std::mem::take(&mut self.method)),
            ("route", std::mem::take(&mut self.route)),
            ("status", status.to_string()),
        ];
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels)
            .record(self.started.elapsed().as_secs_f64());
    }
}

async fn method_not_allowed() -> Response {
    error::error_response(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
    )
}

/// Buckets for request-latency histograms, in seconds: fine below our 50 ms
/// target, coarse above it.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
];
