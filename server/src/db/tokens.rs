//! API tokens (personal access tokens).

use protocol::{ApiToken, TokenAccess, User};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rfc3339;
use crate::auth::Grant;
use crate::error::Result;

#[derive(sqlx::FromRow)]
struct TokenRow {
    token_id: Uuid,
    name: String,
    can_write: bool,
    project_id: Option<Uuid>,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

impl From<TokenRow> for ApiToken {
    fn from(row: TokenRow) -> Self {
        ApiToken {
            id: row.token_id.to_string(),
            name: row.name,
            access: if row.can_write {
                TokenAccess::Write
            } else {
                TokenAccess::Read
            },
            project_id: row.project_id.map(|id| id.to_string()),
            created_at: rfc3339(row.created_at),
            expires_at: row.expires_at.map(rfc3339),
            last_used_at: row.last_used_at.map(rfc3339),
        }
    }
}

const COLUMNS: &str = "token_id, name, can_write, project_id, created_at, expires_at, last_used_at";

/// A token of `user` to be stored.
pub struct NewToken<'a> {
    pub hash: &'a [u8],
    pub name: &'a str,
    pub write: bool,
    pub project: Option<Uuid>,
    pub expires_at: Option<OffsetDateTime>,
}

pub async fn create(pool: &PgPool, user: Uuid, new: NewToken<'_>) -> Result<ApiToken> {
    let row = sqlx::query_as::<_, TokenRow>(&format!(
        "insert into api_tokens (token_id, token_hash, user_id, name, can_write, project_id, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.hash)
    .bind(user)
    .bind(new.name)
    .bind(new.write)
    .bind(new.project)
    .bind(new.expires_at)
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

/// `user`'s tokens, newest first (expired ones too, marked by their date).
pub async fn list(pool: &PgPool, user: Uuid) -> Result<Vec<ApiToken>> {
    let rows = sqlx::query_as::<_, TokenRow>(&format!(
        "select {COLUMNS} from api_tokens where user_id = $1 order by created_at desc, token_id desc"
    ))
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ApiToken::from).collect())
}

/// Deletes one of `user`'s tokens; its hash, to end what it has open.
pub async fn delete(pool: &PgPool, user: Uuid, token: Uuid) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "delete from api_tokens where user_id = $1 and token_id = $2 returning token_hash",
    )
    .bind(user)
    .bind(token)
    .fetch_optional(pool)
    .await?)
}

/// The user of a live token, what it allows and when it expires (`None`:
/// never); notes its use, at most once a minute.
pub async fn user_of(
    pool: &PgPool,
    token_hash: &[u8],
) -> Result<Option<(User, Grant, Option<OffsetDateTime>)>> {
    type Row = (
        Uuid,
        String,
        String,
        Uuid,
        bool,
        Option<Uuid>,
        Option<OffsetDateTime>,
    );
    let row: Option<Row> = sqlx::query_as(
        "with used as (
             update api_tokens set last_used_at = now()
              where token_hash = $1
                and (last_used_at is null or last_used_at < now() - interval '1 minute'))
         select u.user_id, u.email, u.name, t.token_id, t.can_write, t.project_id, t.expires_at
           from api_tokens t join users u using (user_id)
          where t.token_hash = $1 and (t.expires_at is null or t.expires_at > now())",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(user_id, email, name, token_id, write, project, expires_at)| {
            (
                User {
                    id: user_id.to_string(),
                    email,
                    name,
                },
                Grant {
                    token_id,
                    write,
                    project,
                },
                expires_at,
            )
        },
    ))
}
