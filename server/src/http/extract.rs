//! Extractors that turn every rejection into the contract's error body:
//! [`Json`] (telling malformed from invalid), [`Path`], [`Query`], the
//! signed-in [`AuthUser`] and the [`ClientIp`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use protocol::User;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::token_hash;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body.
///
/// Errors follow the contract: a syntax error or a value of the wrong JSON
/// type is a 400; a well-formed body with a missing or unknown field or an
/// unknown enum value is a 422; a body over the limit is a 413.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "request body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map(|limit| limit.0)
            .unwrap_or_default();
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection: BytesRejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(limit)
                } else {
                    ApiError::BadRequest("unreadable_body", rejection.body_text())
                }
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// The configured body limit, put in request extensions so the 413 message can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Parses a JSON object body, classifying errors as the contract wants.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(ApiError::BadRequest(
            "malformed_json",
            format!(
                "malformed JSON: not valid UTF-8 at byte {}",
                error.valid_up_to()
            ),
        ));
    }
    // serde's derived structs also accept arrays (fields by position); every
    // body of ours is an object, so refuse anything else up front.
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        return Err(if is_json {
            ApiError::BadRequest(
                "invalid_json_type",
                "request body must be a JSON object".into(),
            )
        } else {
            ApiError::BadRequest(
                "malformed_json",
                "malformed JSON: expected an object".into(),
            )
        });
    }
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        let message = error.to_string();
        match error.classify() {
            Category::Data
                if ["unknown field", "missing field", "unknown variant"]
                    .iter()
                    .any(|prefix| message.starts_with(prefix)) =>
            {
                ApiError::Unprocessable("invalid_field", message)
            }
            Category::Data => ApiError::BadRequest("invalid_json_type", message),
            // serde_json reports some type mismatches (a number where an enum
            // string belongs) as syntax errors; valid JSON means it was one.
            Category::Syntax if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                ApiError::BadRequest(
                    "invalid_json_type",
                    format!("a value has the wrong JSON type ({message})"),
                )
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::BadRequest("malformed_json", format!("malformed JSON: {message}"))
            }
        }
    })
}

/// Path parameters; an unreadable one (bad UTF-8, wrong type) is a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest("invalid_path", rejection.body_text())
    }
}

/// Query parameters; an unreadable query string is a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest("invalid_query", rejection.body_text())
    }
}

/// The signed-in user, from `Authorization: Bearer <token>`.
pub struct AuthUser {
    pub id: Uuid,
    pub user: User,
    /// What the session is stored under (for sign-out).
    pub token_hash: Vec<u8>,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::Unauthorized("missing credentials: send Authorization: Bearer <token>".into())
        })?;
        let token_hash = token_hash(token);
        let user = db::users::session_user(&state.db, &token_hash)
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized("invalid or expired token; sign in again".into())
            })?;
        let id = Uuid::parse_str(&user.id).map_err(anyhow::Error::from)?;
        Ok(AuthUser {
            id,
            user,
            token_hash,
        })
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's IP: the peer address, or the last `X-Forwarded-For` hop when
/// the server is configured to sit behind a trusted proxy.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientIp(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{NewTask, TaskPatch};

    fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> (u16, &'static str) {
        let error = result.unwrap_err();
        (error.status().as_u16(), error.code())
    }

    #[test]
    fn malformed_json_is_400() {
        assert_eq!(
            code(parse_json::<NewTask>(b"{\"title\": ")),
            (400, "malformed_json")
        );
        assert_eq!(
            code(parse_json::<NewTask>(b"not json")),
            (400, "malformed_json")
        );
    }

    #[test]
    fn wrong_types_are_400() {
        assert_eq!(
            code(parse_json::<NewTask>(br#"{"title": 5}"#)),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(
                br#"{"title": "a", "dependencies": "1"}"#
            )),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<TaskPatch>(b"[]")),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(br#"["a"]"#)),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(b"null")),
            (400, "invalid_json_type")
        );
        assert_eq!(code(parse_json::<NewTask>(b"")), (400, "malformed_json"));
    }

    #[test]
    fn invalid_but_well_formed_is_422() {
        assert_eq!(code(parse_json::<NewTask>(b"{}")), (422, "invalid_field"));
        assert_eq!(
            code(parse_json::<NewTask>(br#"{"title": "a", "colour": "red"}"#)),
            (422, "invalid_field")
        );
        assert_eq!(
            code(parse_json::<NewTask>(
                br#"{"title": "a", "status": "finished"}"#
            )),
            (422, "invalid_field")
        );
    }
}
