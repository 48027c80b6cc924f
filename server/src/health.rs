//! Readiness: each dependency answers for itself through a [`Probe`], so
//! the readiness endpoint knows no database, Redis or Socket.IO details.

use std::future::Future;
use std::pin::Pin;

use crate::breaker::Breaker;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Working around a failed dependency: still serving, more slowly or
    /// with less (e.g. no cache, no cross-instance fan-out).
    Degraded,
    Unavailable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// One dependency's health check.
pub trait Probe: Send + Sync {
    /// The name under `checks` in `/readyz` and the `dependency` label of
    /// `dependency_up`.
    fn name(&self) -> &'static str;
    /// Whether the instance is unready while this dependency is unavailable.
    /// Only the database is: without Redis or a replica an instance still
    /// serves, and taking every instance out of the load balancer would turn
    /// a degraded dependency into an outage.
    fn required(&self) -> bool;
    /// Checks the dependency, within the probe's own time bound.
    fn check(&self) -> Pin<Box<dyn Future<Output = Verdict> + Send + '_>>;
    /// The circuit breaker in front of the dependency, if calls to it go
    /// through one (listed under `breakers` in `/readyz`).
    fn breaker(&self) -> Option<&Breaker> {
        None
    }
}
