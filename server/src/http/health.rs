//! Liveness, readiness and the Prometheus scrape endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::state::AppState;

/// How long a readiness probe waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// One entry per dependency: `ok` or `unavailable`.
    checks: BTreeMap<&'static str, &'static str>,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Ready: every dependency answers. 503 while the database is unreachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut checks = BTreeMap::new();
    let database = tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.db),
    )
    .await;
    let database_ok = matches!(database, Ok(Ok(1)));
    checks.insert("database", verdict(database_ok));
    metrics::gauge!("dependency_up", "dependency" => "database")
        .set(f64::from(u8::from(database_ok)));

    // Redis carries cross-instance fan-out only: without it this instance
    // still serves its own clients (and catches up from the database when it
    // returns), so it is reported but does not make the instance unready —
    // taking every instance out of the load balancer would turn a degraded
    // fan-out into an outage.
    let ready = database_ok;
    if state.realtime.bus().is_enabled() {
        let (redis_ok, _) = state.realtime.bus().check().await;
        checks.insert("redis", verdict(redis_ok));
        metrics::gauge!("dependency_up", "dependency" => "redis")
            .set(f64::from(u8::from(redis_ok)));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        checks,
    };
    (status, axum::Json(body))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "unavailable"
    }
}

/// Prometheus text exposition. Pool gauges are sampled at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pool = &state.db;
    metrics::gauge!("db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
