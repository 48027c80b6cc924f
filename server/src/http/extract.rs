//! Extractors that turn every rejection into the contract's error body:
//! [`Json`] (telling malformed from invalid), [`Path`], [`Query`], the
//! signed-in [`AuthUser`] and the [`ClientIp`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::Rejection;
use crate::app::input::parse_json;
use crate::app::Actor;
use crate::error::Error;
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
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(
            request,
            state,
            is_json,
            "request body must be JSON (Content-Type: application/json)",
        )
        .await?;
        Ok(Json(parse_json(&bytes)?))
    }
}

fn media_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
}

fn is_json(mime: &str) -> bool {
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn is_text(mime: &str) -> bool {
    matches!(mime, "text/plain" | "text/markdown" | "text/x-markdown")
}

/// The body of a request whose media type `accepts`: 415 otherwise, 413
/// past the limit in force for the route.
async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
    accepts: fn(&str) -> bool,
    expected: &str,
) -> Result<axum::body::Bytes, Rejection> {
    if !media_type(&request).is_some_and(|mime| accepts(&mime)) {
        return Err(Rejection::UnsupportedMediaType(expected.into()));
    }
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map(|limit| limit.0)
        .unwrap_or_default();
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection: BytesRejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Rejection::PayloadTooLarge(limit)
            } else {
                Rejection::App(Error::Malformed("unreadable_body", rejection.body_text()))
            }
        })
}

/// A JSON body kept as bytes, for the importers (which read it their way).
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let expected = "the body must be a tasks.json file (Content-Type: application/json)";
        read_body(request, state, is_json, expected)
            .await
            .map(JsonBytes)
    }
}

/// A text body (`text/plain` or `text/markdown`), as UTF-8.
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let expected = "the body must be a task file (Content-Type: text/plain or text/markdown)";
        let bytes = read_body(request, state, is_text, expected).await?;
        String::from_utf8(bytes.to_vec())
            .map(TextBody)
            .map_err(|error| {
                Rejection::App(Error::Malformed(
                    "malformed_file",
                    format!("the file is not UTF-8 text: {error}"),
                ))
            })
    }
}

/// The configured body limit, put in request extensions so the 413 message can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Path parameters; an unreadable one (bad UTF-8, wrong type) is a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::Malformed("invalid_path", rejection.body_text())
    }
}

/// Query parameters; an unreadable query string is a 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::Malformed("invalid_query", rejection.body_text())
    }
}

/// The signed-in caller, from `Authorization: Bearer <token>` or, for the
/// browser app, the session cookie (with its CSRF checks, see
/// [`super::session_cookie`]).
pub struct AuthUser(pub Actor);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = if let Some(token) = bearer_token(parts) {
            state.app.authenticate(token).await?
        } else if let Some(token) = state.cookies.session_token(&parts.headers) {
            // Authenticated first: an expired cookie is a 401 (sign in
            // again), whatever else is wrong with the request.
            let actor = state.app.authenticate(token).await?;
            state
                .cookies
                .check_request(&parts.method, &parts.headers, token)?;
            actor
        } else {
            return Err(Error::Unauthorized(
                "missing credentials: send Authorization: Bearer <token>, or sign in for a session cookie"
                    .into(),
            ));
        };
        if let Some(scope) = parts
            .extensions
            .get::<std::sync::Arc<crate::error_tracking::RequestScope>>()
        {
            scope.set_user(actor.id);
        }
        state.app.check_api_rate(&actor)?;
        Ok(AuthUser(actor))
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
    type Rejection = Error;

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
