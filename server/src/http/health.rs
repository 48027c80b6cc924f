//! Liveness, readiness and the Prometheus scrape endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;
use crate::health::{Probe, Verdict};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// One entry per dependency: `ok`, `degraded` or `unavailable`.
    checks: BTreeMap<&'static str, &'static str>,
    /// One entry per circuit breaker (`cache`, `bus`, `replica-<n>`):
    /// `closed` (calls go through), `open` (calls are refused and the
    /// instance works around the dependency) or `half_open` (one trial call
    /// is deciding).
    breakers: BTreeMap<&'static str, &'static str>,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Ready: every required dependency answers (503 while the database is
/// unreachable); optional ones are reported as `ok`, `degraded` or
/// `unavailable` without making the instance unready.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let verdicts = check_dependencies(&state).await;
    let mut checks = BTreeMap::new();
    let mut breakers = BTreeMap::new();
    let mut ready = true;
    for (probe, verdict) in verdicts {
        if let Some(breaker) = probe.breaker() {
            breakers.insert(breaker.dependency(), breaker.state().as_str());
        }
        checks.insert(probe.name(), verdict.as_str());
        if probe.required() && verdict == Verdict::Unavailable {
            ready = false;
        }
    }
    if let Some(limits) = state.app.shared_login_limits() {
        let breaker = limits.breaker();
        breakers.insert(breaker.dependency(), breaker.state().as_str());
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        checks,
        breakers,
    };
    (status, axum::Json(body))
}

/// Asks every dependency at once, and records the answers as `dependency_up`.
async fn check_dependencies(state: &AppState) -> Vec<(&Arc<dyn Probe>, Verdict)> {
    let verdicts = futures::future::join_all(
        state
            .probes
            .iter()
            .map(|probe| async move { (probe, probe.check().await) }),
    )
    .await;
    for (probe, verdict) in &verdicts {
        metrics::gauge!("dependency_up", "dependency" => probe.name())
            .set(f64::from(u8::from(*verdict != Verdict::Unavailable)));
    }
    verdicts
}

/// Prometheus text exposition. Pool gauges and the process's own figures
/// (memory, CPU, file descriptors) are sampled at scrape time, and so are
/// the dependencies, so that `dependency_up` is fresh whether or not an
/// orchestrator polls `/readyz`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return Error::NotFound("not_found", "metrics are off here (METRICS=off)".into())
            .into_response();
    };
    check_dependencies(&state).await;
    crate::telemetry::sample_process_metrics();
    let pool = state.app.db();
    metrics::gauge!("db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
