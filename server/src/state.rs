//! What every HTTP handler can reach.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::app::App;
use crate::config::Config;
use crate::health::Probe;
use crate::http::session_cookie::CookiePolicy;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<Config>,
    /// `None` with `METRICS=off`.
    pub metrics: Option<PrometheusHandle>,
    /// Readiness checks, one per dependency.
    pub probes: Arc<Vec<Arc<dyn Probe>>>,
    /// How browser sessions are kept in cookies.
    pub cookies: Arc<CookiePolicy>,
}
