//! `/api/v1/auth`: register, sign in, sign out, the caller's sessions, and
//! changing the password.
//!
//! Register and sign-in answer with the token in the body (the contract) and
//! also set the browser session cookies; sign-out clears them.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use protocol::{
    AuthResponse, ChangePasswordRequest, ErrorBody, Items, LoginRequest, RegisterRequest,
    SessionInfo, User,
};

use super::extract::{AuthUser, ClientIp, Json, Path};
use crate::app::SignIn;
use crate::error::Result;
use crate::state::AppState;

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse,
               description = "Also sets the browser session cookies"),
              (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(request): Json<RegisterRequest>,
) -> Result<Response> {
    let client = sign_in(ip, &headers);
    let session = state.app.register(client, request).await?;
    Ok(signed_in(&state, StatusCode::CREATED, session))
}

/// Sign in. A wrong password and an unknown email get the same answer.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse,
               description = "Also sets the browser session cookies"),
              (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> Result<Response> {
    let client = sign_in(ip, &headers);
    let session = state.app.login(client, request).await?;
    Ok(signed_in(&state, StatusCode::OK, session))
}

fn sign_in(ip: std::net::IpAddr, headers: &HeaderMap) -> SignIn<'_> {
    SignIn {
        ip,
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default(),
    }
}

/// The answer to a sign-in: the token in the body and in the cookies, never
/// stored by a cache on the way.
fn signed_in(state: &AppState, status: StatusCode, session: AuthResponse) -> Response {
    let [session_cookie, csrf_cookie] = state.cookies.sign_in(&session.token);
    (
        status,
        AppendHeaders([
            (SET_COOKIE, session_cookie),
            (SET_COOKIE, csrf_cookie),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ]),
        axum::Json(session),
    )
        .into_response()
}

/// End this session: the token stops working at once, its connections
/// close, and the browser's session cookies are cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<Response> {
    state.app.logout(&user.0).await?;
    let [session_cookie, csrf_cookie] = state.cookies.sign_out();
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, session_cookie), (SET_COOKIE, csrf_cookie)]),
    )
        .into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(user: AuthUser) -> axum::Json<User> {
    axum::Json(user.0.user)
}

/// The caller's signed-in sessions, newest first; `current` marks the one
/// making this request.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    responses((status = 200, body = Items<SessionInfo>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Items<SessionInfo>>> {
    let items = state.app.sessions(&user.0).await?;
    Ok(axum::Json(Items { items }))
}

/// End one of the caller's sessions: its token stops working and its open
/// connections close, on every instance.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(session_id): Path<String>,
) -> Result<StatusCode> {
    state.app.revoke_session(&user.0, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. Every other session of the caller ends; this one
/// stays signed in.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth",
    request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "`wrong_password`: the current password is not right"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<StatusCode> {
    state.app.change_password(&user.0, request).await?;
    Ok(StatusCode::NO_CONTENT)
}
