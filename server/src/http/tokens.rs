//! `/api/v1/auth/tokens`: personal access tokens for agents, scripts and CI.

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ApiToken, CreateTokenRequest, CreatedToken, ErrorBody, Items};

use super::extract::{AuthUser, Json, Path};
use crate::error::Result;
use crate::state::AppState;

/// Create an API token: named, `read` or `write`, optionally limited to one
/// project and given an expiry. Its secret is in this answer only. From a
/// signed-in session (not from another token).
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateTokenRequest>,
) -> Result<Response> {
    let created = state.app.create_token(&user.0, request).await?;
    // A secret: no cache may keep the answer.
    let mut response = (StatusCode::CREATED, axum::Json(created)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The caller's API tokens, newest first (never their secrets).
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "tokens",
    responses((status = 200, body = Items<ApiToken>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Items<ApiToken>>> {
    let items = state.app.tokens(&user.0).await?;
    Ok(axum::Json(Items { items }))
}

/// Revoke an API token: it stops working at once, everywhere, and what it
/// holds open closes.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{token_id}", tag = "tokens",
    params(("token_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(token_id): Path<String>,
) -> Result<StatusCode> {
    state.app.revoke_token(&user.0, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
