//! API tokens: made, listed and revoked by their user, from a signed-in
//! session only (a token cannot mint tokens); and the limits a token puts
//! on what its user may otherwise do.

use protocol::{ApiToken, CreateTokenRequest, CreatedToken, TokenAccess};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Actor, App, Need};
use crate::auth;
use crate::db;
use crate::domain::task as rules;
use crate::error::{Error, Result};

/// Longest lifetime a token may be given, in days.
pub const MAX_TOKEN_DAYS: u32 = 3650;
/// Tokens per user, at most.
pub const MAX_TOKENS_PER_USER: usize = 100;

impl Actor {
    /// Refuses what only a signed-in person may do (account settings,
    /// tokens themselves) when the caller came with an API token.
    pub fn require_session(&self, what: &str) -> Result<()> {
        match self.grant {
            None => Ok(()),
            Some(_) => Err(Error::Forbidden(
                "session_required",
                format!("an API token cannot {what}; sign in to do it"),
            )),
        }
    }

    /// What a token allows in `project` for `need`: a token limited to
    /// another project sees it as unknown (404), a read-only one may not
    /// change it (403). Sessions pass.
    pub fn check_grant(&self, project: Uuid, need: Need) -> Result<()> {
        let Some(grant) = self.grant else {
            return Ok(());
        };
        if grant.project.is_some_and(|only| only != project) {
            return Err(Error::project_not_found());
        }
        if need != Need::Read && !grant.write {
            return Err(Error::Forbidden(
                "read_only_token",
                "this API token is read-only".into(),
            ));
        }
        if need == Need::Manage {
            return Err(Error::Forbidden(
                "session_required",
                "an API token cannot manage members; sign in to do it".into(),
            ));
        }
        Ok(())
    }

    /// Whether the caller may create projects (a token limited to one
    /// project, or a read-only one, may not).
    pub fn check_may_create_projects(&self) -> Result<()> {
        match self.grant {
            Some(grant) if grant.project.is_some() => Err(Error::Forbidden(
                "token_limited_to_project",
                "this API token is limited to one project; it cannot create others".into(),
            )),
            Some(grant) if !grant.write => Err(Error::Forbidden(
                "read_only_token",
                "this API token is read-only".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl App {
    /// A new token of the caller's; its secret is in the answer and
    /// nowhere else.
    pub async fn create_token(
        &self,
        actor: &Actor,
        request: CreateTokenRequest,
    ) -> Result<CreatedToken> {
        actor.require_session("create API tokens")?;
        let name = rules::bounded_name("name", &request.name, 100)?;
        let expires_at = match request.expires_in_days {
            None => None,
            Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => {
                Some(OffsetDateTime::now_utc() + Duration::days(i64::from(days)))
            }
            Some(_) => {
                return Err(Error::validation(format!(
                    "expires_in_days must be 1 to {MAX_TOKEN_DAYS}"
                )))
            }
        };
        let project = match request.project_id.as_deref() {
            Some(project_id) => Some(self.authorize(actor, project_id, Need::Read).await?.project),
            None => None,
        };
        if db::tokens::list(self.db(), actor.id).await?.len() >= MAX_TOKENS_PER_USER {
            return Err(Error::Conflict(
                "too_many_tokens",
                format!("you have {MAX_TOKENS_PER_USER} tokens; revoke one first"),
            ));
        }
        let (secret, hash) = auth::new_api_token();
        let token = db::tokens::create(
            self.db(),
            actor.id,
            db::tokens::NewToken {
                hash: &hash,
                name: &name,
                write: request.access == TokenAccess::Write,
                project,
                expires_at,
            },
        )
        .await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        actor.require_session("list API tokens")?;
        db::tokens::list(self.db(), actor.id).await
    }

    /// Revokes one of the caller's tokens: it stops working at once, and
    /// the connections it holds open close, on every instance.
    pub async fn revoke_token(&self, actor: &Actor, token_id: &str) -> Result<()> {
        actor.require_session("revoke API tokens")?;
        let unknown = || Error::NotFound("token_not_found", "you have no such token".into());
        let token_id = Uuid::parse_str(token_id).map_err(|_| unknown())?;
        let hash = db::tokens::delete(self.db(), actor.id, token_id)
            .await?
            .ok_or_else(unknown)?;
        self.after_sessions_ended(vec![hash]).await;
        Ok(())
    }
}
