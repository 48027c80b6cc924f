//! How errors look over HTTP: the contract's error body with the error's
//! status, `Retry-After` where it applies, and the rejections only HTTP has
//! (a body over the limit, a body that is not JSON, a wrong method).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::error_tracking::{FailureKind, FailureNote};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The only place a REST request's internal error is logged; the
        // request span adds the request id and route.
        self.log_if_internal();
        let status =
            StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        // What error tracking reports for a 5xx (http::error_tracking::track_http).
        let note = match &self {
            Error::Internal(cause) => Some((FailureKind::Internal, format!("{cause:#}"))),
            Error::Unavailable(reason) => Some((FailureKind::Unavailable, reason.clone())),
            _ => None,
        };
        if let Some((kind, message)) = note {
            response
                .extensions_mut()
                .insert(FailureNote { kind, message });
        }
        if let Some(seconds) = self.retry_after_secs() {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A request refused before it reaches the application.
#[derive(Debug)]
pub enum Rejection {
    /// Anything the application layer would also say (400, 401, 422, ...).
    App(Error),
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge(usize),
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType(String),
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Rejection::App(error)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Rejection::App(error) => return error.into_response(),
            Rejection::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the limit of {limit} bytes"),
            ),
            Rejection::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
        };
        error_response(status, code, message)
    }
}

/// The contract's error body with any status.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = protocol::ErrorBody {
        error: protocol::ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
        },
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limit_sets_retry_after() {
        let response = Error::RateLimited(Duration::from_millis(2500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn http_only_rejections_have_their_status() {
        assert_eq!(
            Rejection::PayloadTooLarge(10).into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            Rejection::UnsupportedMediaType("json please".into())
                .into_response()
                .status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
