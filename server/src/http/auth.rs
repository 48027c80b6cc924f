//! `/api/v1/auth`: register, sign in, sign out.

use axum::extract::State;
use axum::http::StatusCode;
use protocol::{AuthResponse, ErrorBody, LoginRequest, RegisterRequest, User};

use super::extract::{AuthUser, ClientIp, Json};
use crate::error::Result;
use crate::state::AppState;

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(request): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<AuthResponse>)> {
    let session = state.app.register(ip, request).await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// Sign in. A wrong password and an unknown email get the same answer.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(request): Json<LoginRequest>,
) -> Result<axum::Json<AuthResponse>> {
    let session = state.app.login(ip, request).await?;
    Ok(axum::Json(session))
}

/// End this session: the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode> {
    state.app.logout(&user.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(user: AuthUser) -> axum::Json<User> {
    axum::Json(user.0.user)
}
