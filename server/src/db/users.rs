//! Users and their bearer-token sessions.

use protocol::User;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: Uuid,
    email: String,
    name: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.user_id.to_string(),
            email: row.email,
            name: row.name,
        }
    }
}

/// Creates a user; an email already in use is a 409.
pub async fn create(pool: &PgPool, email: &str, name: &str, password_hash: &str) -> Result<User> {
    let row = sqlx::query_as::<_, UserRow>(
        "insert into users (user_id, email, name, password_hash)
         values ($1, $2, $3, $4)
         returning user_id, email, name",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .fetch_one(pool)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(
            "email_taken",
            "an account with this email already exists".into(),
        ),
        _ => error.into(),
    })?;
    Ok(row.into())
}

/// The user with this (normalised) email and their password hash.
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<(User, String)>> {
    let row: Option<(Uuid, String, String, String)> =
        sqlx::query_as("select user_id, email, name, password_hash from users where email = $1")
            .bind(email)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(user_id, email, name, hash)| {
        (
            UserRow {
                user_id,
                email,
                name,
            }
            .into(),
            hash,
        )
    }))
}

pub async fn create_session(
    pool: &PgPool,
    token_hash: &[u8],
    user_id: Uuid,
    expires_at: OffsetDateTime,
) -> Result<()> {
    sqlx::query("insert into sessions (token_hash, user_id, expires_at) values ($1, $2, $3)")
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The user a live (unexpired) session belongs to, and when it expires.
pub async fn session_user(
    pool: &PgPool,
    token_hash: &[u8],
) -> Result<Option<(User, OffsetDateTime)>> {
    let row: Option<(Uuid, String, String, OffsetDateTime)> = sqlx::query_as(
        "select u.user_id, u.email, u.name, s.expires_at
           from sessions s join users u using (user_id)
          where s.token_hash = $1 and s.expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user_id, email, name, expires_at)| {
        (
            UserRow {
                user_id,
                email,
                name,
            }
            .into(),
            expires_at,
        )
    }))
}

pub async fn delete_session(pool: &PgPool, token_hash: &[u8]) -> Result<()> {
    sqlx::query("delete from sessions where token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired_sessions(pool: &PgPool) -> Result<u64> {
    let done = sqlx::query("delete from sessions where expires_at <= now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
