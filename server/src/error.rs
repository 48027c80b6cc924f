//! The one error type of the application: what went wrong, in the terms of
//! the contract, with no transport in it. Each edge renders it its own way:
//! `http/` as a status and the contract's error body, `realtime/` as a
//! refused acknowledgement. Internal errors carry their cause for the log and
//! show clients nothing of it.

use std::time::Duration;

use protocol::{ErrorBody, ErrorDetail};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unreadable input: malformed JSON, wrong JSON types, a bad id or query.
    #[error("{1}")]
    Malformed(&'static str, String),
    /// No or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// A member whose role does not allow the action (`forbidden`), or a
    /// request refused for what it is (a wrong password, a missing CSRF token).
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// Unknown resource, or a project the caller is not a member of.
    #[error("{1}")]
    NotFound(&'static str, String),
    /// The request conflicts with the current state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// What the client asks for is no longer kept (e.g. history past retention).
    #[error("{1}")]
    Gone(&'static str, String),
    /// `If-Match` names a version that is no longer current.
    #[error("{0}")]
    VersionMismatch(String),
    /// Well-formed but invalid.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// Rate limited; retry after the given time.
    #[error("too many attempts; retry in {} seconds", retry_after_secs(*.0))]
    RateLimited(Duration),
    /// A dependency is down or too slow.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. Logged once by the edge, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn validation(message: impl Into<String>) -> Self {
        Error::Invalid("validation_failed", message.into())
    }

    pub fn project_not_found() -> Self {
        Error::NotFound("project_not_found", "project not found".into())
    }

    pub fn task_not_found(task_id: i64) -> Self {
        Error::NotFound("task_not_found", format!("task {task_id} not found"))
    }

    /// The contract's status for this error: REST answers with it, and the
    /// Socket.IO acknowledgement carries it as `status`.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Malformed(..) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(..) => 403,
            Error::NotFound(..) => 404,
            Error::Conflict(..) => 409,
            Error::Gone(..) => 410,
            Error::VersionMismatch(_) => 412,
            Error::Invalid(..) => 422,
            Error::RateLimited(_) => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The stable, machine-readable code of the contract's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed(code, _)
            | Error::NotFound(code, _)
            | Error::Conflict(code, _)
            | Error::Gone(code, _)
            | Error::Forbidden(code, _)
            | Error::Invalid(code, _) => code,
            Error::Unauthorized(_) => "unauthorized",
            Error::VersionMismatch(_) => "version_mismatch",
            Error::RateLimited(_) => "rate_limited",
            Error::Unavailable(_) => "service_unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Seconds a client should wait before retrying, where that is known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited(wait) => Some(retry_after_secs(*wait)),
            // Overload and blips pass: a second is the advice, and clients
            // that back off further spread the retries.
            Error::Unavailable(_) => Some(1),
            _ => None,
        }
    }

    /// The contract's error body for this error.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Error::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
            },
        }
    }

    /// An owned copy, for an error one database read gave several waiting
    /// callers (a shared cache fill). An internal cause keeps its text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Malformed(code, message) => Error::Malformed(code, message.clone()),
            Error::Unauthorized(message) => Error::Unauthorized(message.clone()),
            Error::Forbidden(code, message) => Error::Forbidden(code, message.clone()),
            Error::NotFound(code, message) => Error::NotFound(code, message.clone()),
            Error::Conflict(code, message) => Error::Conflict(code, message.clone()),
            Error::Gone(code, message) => Error::Gone(code, message.clone()),
            Error::VersionMismatch(message) => Error::VersionMismatch(message.clone()),
            Error::Invalid(code, message) => Error::Invalid(code, message.clone()),
            Error::RateLimited(wait) => Error::RateLimited(*wait),
            Error::Unavailable(message) => Error::Unavailable(message.clone()),
            Error::Internal(error) => Error::Internal(anyhow::anyhow!("{error:#}")),
        }
    }

    /// Logs an internal error with its whole cause chain; the caller's span
    /// adds the request or socket id. Every edge calls this exactly once per
    /// failed request, so each internal error is logged once.
    pub fn log_if_internal(&self) {
        if let Error::Internal(error) = self {
            tracing::error!(error = format!("{error:#}"), "internal error");
        }
    }
}

/// Whole seconds to wait, rounded up so a client never retries too early.
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_leak_nothing() {
        let error = Error::Internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        let body = error.body();
        assert_eq!(body.error.code, "internal_error");
        assert!(!body.error.message.contains("secret_table"));
        assert_eq!(error.status_code(), 500);
    }

    #[test]
    fn rate_limits_round_the_wait_up() {
        let error = Error::RateLimited(Duration::from_millis(2500));
        assert_eq!(error.status_code(), 429);
        assert_eq!(error.retry_after_secs(), Some(3));
        assert_eq!(
            Error::RateLimited(Duration::from_millis(10)).retry_after_secs(),
            Some(1)
        );
    }
}
