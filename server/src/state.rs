//! What every handler can reach.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::realtime::Realtime;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub realtime: Realtime,
    pub config: Arc<Config>,
    pub login_limiter: LoginLimiter,
    pub metrics: PrometheusHandle,
}
