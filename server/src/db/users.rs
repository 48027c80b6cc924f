//! Users and their sessions.

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

/// Where a session was signed in from, shown in its owner's sessions list.
pub struct SessionOrigin<'a> {
    pub user_agent: &'a str,
    pub client_ip: Option<std::net::IpAddr>,
}

pub async fn create_session(
    pool: &PgPool,
    token_hash: &[u8],
    user_id: Uuid,
    expires_at: OffsetDateTime,
    origin: SessionOrigin<'_>,
) -> Result<()> {
    sqlx::query(
        "insert into sessions (token_hash, user_id, expires_at, user_agent, client_ip)
         values ($1, $2, $3, $4, $5::inet)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .bind(origin.user_agent)
    .bind(origin.client_ip.map(|ip| ip.to_string()))
    .execute(pool)
    .await?;
    Ok(())
}

/// A live session as its owner sees it, with the hash that names it inside
/// the server (to tell the caller's own session from the others).
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub token_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub user_agent: String,
    pub client_ip: Option<String>,
}

/// `user`'s live sessions, newest first.
pub async fn sessions_of(pool: &PgPool, user: Uuid) -> Result<Vec<SessionRow>> {
    Ok(sqlx::query_as(
        "select session_id, token_hash, created_at, expires_at, user_agent,
                host(client_ip) as client_ip
           from sessions
          where user_id = $1 and expires_at > now()
          order by created_at desc, session_id",
    )
    .bind(user)
    .fetch_all(pool)
    .await?)
}

/// Ends `user`'s session `session_id`; its token's hash, or `None` when
/// `user` has no such session.
pub async fn delete_session_by_id(
    pool: &PgPool,
    user: Uuid,
    session_id: Uuid,
) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "delete from sessions where user_id = $1 and session_id = $2 returning token_hash",
    )
    .bind(user)
    .bind(session_id)
    .fetch_optional(pool)
    .await?)
}

/// `user`'s password hash.
pub async fn password_hash(pool: &PgPool, user: Uuid) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select password_hash from users where user_id = $1")
            .bind(user)
            .fetch_optional(pool)
            .await?,
    )
}

/// Replaces `user`'s password hash and ends every other session of theirs,
/// in one transaction; the ended sessions' token hashes.
pub async fn change_password(
    pool: &PgPool,
    user: Uuid,
    new_hash: &str,
    keep_session: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let mut tx = pool.begin().await?;
    sqlx::query("update users set password_hash = $2 where user_id = $1")
        .bind(user)
        .bind(new_hash)
        .execute(&mut *tx)
        .await?;
    let ended = sqlx::query_scalar(
        "delete from sessions where user_id = $1 and token_hash <> $2 returning token_hash",
    )
    .bind(user)
    .bind(keep_session)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ended)
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
