//! `/api/v1/auth`: register, sign in, sign out.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::StatusCode;
use protocol::{AuthResponse, ErrorBody, LoginRequest, RegisterRequest, User};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::extract::{AuthUser, ClientIp, Json};
use crate::auth;
use crate::db;
use crate::domain::task as rules;
use crate::error::{ApiError, Result};
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
    state.login_limiter.check_ip(ip)?;
    let email = rules::email(&request.email)?;
    let name = rules::user_name(&request.name)?;
    rules::password(&request.password)?;
    let hash = blocking(move || auth::hash_password(&request.password)).await??;
    let user = db::users::create(&state.db, &email, &name, &hash).await?;
    let token = start_session(&state, &user).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AuthResponse { user, token }),
    ))
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
    state.login_limiter.check_ip(ip)?;
    let email = request.email.trim().to_lowercase();
    state.login_limiter.check_email(&email)?;
    let found = db::users::find_by_email(&state.db, &email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let password = request.password;
    let verified = blocking(move || auth::verify_password(&password, hash.as_deref())).await?;
    let user = match (verified, user) {
        (true, Some(user)) => user,
        _ => return Err(ApiError::Unauthorized("wrong email or password".into())),
    };
    let token = start_session(&state, &user).await?;
    Ok(axum::Json(AuthResponse { user, token }))
}

/// End this session: the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode> {
    db::users::delete_session(&state.db, &user.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(user: AuthUser) -> axum::Json<User> {
    axum::Json(user.user)
}

async fn start_session(state: &AppState, user: &User) -> Result<String> {
    let (token, hash) = auth::new_token();
    let user_id = Uuid::parse_str(&user.id).map_err(anyhow::Error::from)?;
    let expires_at = OffsetDateTime::now_utc() + state.config.session_ttl();
    db::users::create_session(&state.db, &hash, user_id, expires_at).await?;
    Ok(token)
}

/// Password hashing takes 19 MiB and tens of milliseconds of one core per
/// call (argon2id, OWASP parameters). Running more hashes at once than there
/// are cores makes none of them finish sooner but multiplies memory: a burst
/// of 50 sign-ups would hold almost 1 GiB. Calls beyond the core count wait
/// their turn, within the request timeout.
static HASHING_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    Arc::new(Semaphore::new(cores))
});

/// Runs password hashing off the async worker threads, a bounded number at a time.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let slot = Arc::clone(&HASHING_SLOTS)
        .acquire_owned()
        .await
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("hashing slots closed: {error}")))?;
    // The slot moves into the work: a request that times out stops waiting,
    // but its hash still holds the slot until it is done.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|error| ApiError::Internal(anyhow::anyhow!("blocking task failed: {error}")))
}
