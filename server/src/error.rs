//! One error type for every handler. Client mistakes become the contract's
//! error body with a precise 4xx; anything else is logged once, here, and the
//! client sees a bare 500 that leaks nothing.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorBody, ErrorDetail};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, wrong JSON types, unreadable path or query.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 401: no or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a member whose role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown resource, or a project the caller is not a member of.
    #[error("{1}")]
    NotFound(&'static str, String),
    /// 409: the request conflicts with the current state.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 412: `If-Match` names a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body is larger than the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: the body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid.
    #[error("{1}")]
    Unprocessable(&'static str, String),
    /// 429: rate limited; retry after the given time.
    #[error("too many attempts; retry in {} seconds", retry_after_secs(*.0))]
    TooManyRequests(Duration),
    /// 503: a dependency is down or too slow.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure. Logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Unprocessable("validation_failed", message.into())
    }

    pub fn project_not_found() -> Self {
        ApiError::NotFound("project_not_found", "project not found".into())
    }

    pub fn task_not_found(task_id: i64) -> Self {
        ApiError::NotFound("task_not_found", format!("task {task_id} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(..) => StatusCode::NOT_FOUND,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _)
            | ApiError::NotFound(code, _)
            | ApiError::Conflict(code, _)
            | ApiError::Unprocessable(code, _) => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PreconditionFailed(_) => "version_mismatch",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The contract's error body for this error.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
            },
        }
    }
}

/// Whole seconds to wait, rounded up so a client never retries too early.
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            // The pool could not hand out a connection in time: the database is
            // down or saturated. Say so instead of pretending it is a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable("database unavailable; retry shortly".into())
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
                tracing::warn!(%error, "statement timed out");
                ApiError::Unavailable("database too slow to answer; retry shortly".into())
            }
            _ => ApiError::Internal(error.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(error) = &self {
            // The only place internal errors are logged; the request span adds
            // the request id and route.
            tracing::error!(error = format!("{error:#}"), "internal error");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let ApiError::TooManyRequests(wait) = &self {
            let seconds = retry_after_secs(*wait).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_leak_nothing() {
        let error = ApiError::Internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        let body = error.body();
        assert_eq!(body.error.code, "internal_error");
        assert!(!body.error.message.contains("secret_table"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let response = ApiError::TooManyRequests(Duration::from_millis(2500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
