//! Accounts and sessions: sign up, sign in, sign out, the token → user
//! look-up every authenticated call starts with, a user's list of their
//! sessions, revoking one, and changing the password (which ends the others).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use protocol::{
    AuthResponse, ChangePasswordRequest, LoginRequest, RegisterRequest, SessionInfo, User,
};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::{Actor, App};
use crate::auth::{self, token_hash};
use crate::cache::SessionUser;
use crate::db;
use crate::domain::task as rules;
use crate::error::{Error, Result};
use crate::limits::LoginKey;

impl App {
    /// The caller a bearer token belongs to; an unknown, expired or revoked
    /// token is a 401.
    pub async fn authenticate(&self, token: &str) -> Result<Actor> {
        let token_hash = token_hash(token);
        let db = self.db();
        let is_api_token = token.starts_with(auth::API_TOKEN_PREFIX);
        let session = self
            .cache()
            .session(&token_hash, async {
                // On the primary: a session signed in a moment ago on another
                // instance must work here at once.
                if is_api_token {
                    return Ok(db::tokens::user_of(db, &token_hash).await?.map(
                        |(user, grant, expires_at)| SessionUser {
                            user,
                            // Never: as far as the cache's own lifetime goes.
                            expires_at: expires_at.map_or(i64::MAX, OffsetDateTime::unix_timestamp),
                            grant: Some(grant),
                        },
                    ));
                }
                Ok(db::users::session_user(db, &token_hash)
                    .await?
                    .map(|(user, expires_at)| SessionUser {
                        user,
                        expires_at: expires_at.unix_timestamp(),
                        grant: None,
                    }))
            })
            .await?
            .ok_or_else(|| Error::Unauthorized("invalid or expired token; sign in again".into()))?;
        let user = session.user;
        let id = Uuid::parse_str(&user.id).map_err(anyhow::Error::from)?;
        Ok(Actor {
            id,
            user,
            token_hash,
            grant: session.grant,
        })
    }

    /// Creates an account and signs it in.
    pub async fn register(
        &self,
        client: SignIn<'_>,
        request: RegisterRequest,
    ) -> Result<AuthResponse> {
        self.login_limiter().check_ip(client.ip)?;
        self.check_shared_login_limit(LoginKey::Address(client.ip))
            .await?;
        let email = rules::email(&request.email)?;
        let name = rules::user_name(&request.name)?;
        rules::password(&request.password)?;
        let hash = hashing(move || auth::hash_password(&request.password)).await??;
        let user = db::users::create(self.db(), &email, &name, &hash).await?;
        let token = self.start_session(&user, client).await?;
        Ok(AuthResponse { user, token })
    }

    /// Signs in. A wrong password and an unknown email get the same answer.
    pub async fn login(&self, client: SignIn<'_>, request: LoginRequest) -> Result<AuthResponse> {
        self.login_limiter().check_ip(client.ip)?;
        let email = request.email.trim().to_lowercase();
        self.login_limiter().check_email(&email)?;
        self.check_shared_login_limit(LoginKey::Address(client.ip))
            .await?;
        self.check_shared_login_limit(LoginKey::Email(&email))
            .await?;
        // An address PostgreSQL cannot even store belongs to nobody; asking
        // for it would be an error, not an answer.
        let found = if rules::storable_text(&email) {
            db::users::find_by_email(self.db(), &email).await?
        } else {
            None
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let password = request.password;
        let verified = hashing(move || auth::verify_password(&password, hash.as_deref())).await?;
        let user = match (verified, user) {
            (true, Some(user)) => user,
            _ => return Err(Error::Unauthorized("wrong email or password".into())),
        };
        let token = self.start_session(&user, client).await?;
        Ok(AuthResponse { user, token })
    }

    /// Ends the caller's session: its token stops working at once.
    pub async fn logout(&self, actor: &Actor) -> Result<()> {
        actor.require_session("sign out (revoke the token instead)")?;
        db::users::delete_session(self.db(), &actor.token_hash).await?;
        self.after_sessions_ended(vec![actor.token_hash.clone()])
            .await;
        Ok(())
    }

    /// The caller's live sessions, newest first, the current one marked.
    pub async fn sessions(&self, actor: &Actor) -> Result<Vec<SessionInfo>> {
        actor.require_session("list sessions")?;
        let rows = db::users::sessions_of(self.db(), actor.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionInfo {
                id: row.session_id.to_string(),
                created_at: db::rfc3339(row.created_at),
                expires_at: db::rfc3339(row.expires_at),
                user_agent: row.user_agent,
                ip: row.client_ip,
                current: row.token_hash == actor.token_hash,
            })
            .collect())
    }

    /// Ends one of the caller's sessions (their current one too, if named):
    /// its token stops working and its open connections close, on every
    /// instance. Another user's session is as unknown as a made-up id.
    pub async fn revoke_session(&self, actor: &Actor, session_id: &str) -> Result<()> {
        actor.require_session("end sessions")?;
        let unknown = || Error::NotFound("session_not_found", "you have no such session".into());
        let session_id = Uuid::parse_str(session_id).map_err(|_| unknown())?;
        let token_hash = db::users::delete_session_by_id(self.db(), actor.id, session_id)
            .await?
            .ok_or_else(unknown)?;
        self.after_sessions_ended(vec![token_hash]).await;
        Ok(())
    }

    /// Changes the caller's password after checking the current one, and
    /// ends every other session of theirs: whoever knew the old password
    /// (or holds a stolen token) is signed out everywhere. The checks count
    /// against the same limits as signing in, or a stolen session would be
    /// an unthrottled way to guess the password.
    pub async fn change_password(
        &self,
        actor: &Actor,
        request: ChangePasswordRequest,
    ) -> Result<()> {
        actor.require_session("change the password")?;
        let email = actor.user.email.as_str();
        self.login_limiter().check_email(email)?;
        self.check_shared_login_limit(LoginKey::Email(email))
            .await?;
        rules::password(&request.new_password)?;
        let stored = db::users::password_hash(self.db(), actor.id).await?;
        let current = request.current_password;
        let verified = hashing(move || auth::verify_password(&current, stored.as_deref())).await?;
        if !verified {
            return Err(Error::Forbidden(
                "wrong_password",
                "the current password is not right".into(),
            ));
        }
        let new_password = request.new_password;
        let hash = hashing(move || auth::hash_password(&new_password)).await??;
        let ended =
            db::users::change_password(self.db(), actor.id, &hash, &actor.token_hash).await?;
        tracing::info!(user = %actor.id, ended = ended.len(), "password changed; other sessions ended");
        self.after_sessions_ended(ended).await;
        Ok(())
    }

    async fn start_session(&self, user: &User, client: SignIn<'_>) -> Result<String> {
        let (token, hash) = auth::new_token();
        let user_id = Uuid::parse_str(&user.id).map_err(anyhow::Error::from)?;
        let expires_at = OffsetDateTime::now_utc() + self.config().session_ttl();
        let user_agent = displayable_user_agent(client.user_agent);
        let origin = db::users::SessionOrigin {
            user_agent: &user_agent,
            client_ip: Some(client.ip),
        };
        db::users::create_session(self.db(), &hash, user_id, expires_at, origin).await?;
        Ok(token)
    }
}

/// Who is signing in, as far as the request tells: their address and the
/// `User-Agent` their session will be listed with.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub ip: IpAddr,
    pub user_agent: &'a str,
}

/// At most this many characters of a `User-Agent` are kept.
const USER_AGENT_CHARS: usize = 256;

/// A `User-Agent` as the sessions list shows it: printable characters only
/// (no NUL, which PostgreSQL cannot store), cut to a bounded length.
fn displayable_user_agent(user_agent: &str) -> String {
    user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_CHARS)
        .collect()
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
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let slot = Arc::clone(&HASHING_SLOTS)
        .acquire_owned()
        .await
        .map_err(|error| Error::Internal(anyhow::anyhow!("hashing slots closed: {error}")))?;
    // The slot moves into the work: a request that times out stops waiting,
    // but its hash still holds the slot until it is done.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|error| Error::Internal(anyhow::anyhow!("blocking task failed: {error}")))
}
