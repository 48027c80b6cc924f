//! What every handler can reach.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::auth::LoginLimiter;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Present when `REDIS_URL` is set.
    pub redis: Option<deadpool_redis::Pool>,
    pub config: Arc<Config>,
    pub login_limiter: LoginLimiter,
    pub metrics: PrometheusHandle,
}
