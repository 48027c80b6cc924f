//! Accounts and sessions: sign up, sign in, sign out, and the token → user
//! look-up every authenticated call starts with.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use protocol::{AuthResponse, LoginRequest, RegisterRequest, User};
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
        let session = self
            .cache()
            .session(&token_hash, async {
                // On the primary: a session signed in a moment ago on another
                // instance must work here at once.
                Ok(db::users::session_user(db, &token_hash)
                    .await?
                    .map(|(user, expires_at)| SessionUser {
                        user,
                        expires_at: expires_at.unix_timestamp(),
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
        })
    }

    /// Creates an account and signs it in.
    pub async fn register(&self, client: IpAddr, request: RegisterRequest) -> Result<AuthResponse> {
        self.login_limiter().check_ip(client)?;
        self.check_shared_login_limit(LoginKey::Address(client))
            .await?;
        let email = rules::email(&request.email)?;
        let name = rules::user_name(&request.name)?;
        rules::password(&request.password)?;
        let hash = hashing(move || auth::hash_password(&request.password)).await??;
        let user = db::users::create(self.db(), &email, &name, &hash).await?;
        let token = self.start_session(&user).await?;
        Ok(AuthResponse { user, token })
    }

    /// Signs in. A wrong password and an unknown email get the same answer.
    pub async fn login(&self, client: IpAddr, request: LoginRequest) -> Result<AuthResponse> {
        self.login_limiter().check_ip(client)?;
        let email = request.email.trim().to_lowercase();
        self.login_limiter().check_email(&email)?;
        self.check_shared_login_limit(LoginKey::Address(client))
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
        let token = self.start_session(&user).await?;
        Ok(AuthResponse { user, token })
    }

    /// Ends the caller's session: its token stops working at once.
    pub async fn logout(&self, actor: &Actor) -> Result<()> {
        db::users::delete_session(self.db(), &actor.token_hash).await?;
        self.cache().revoke_session(&actor.token_hash).await;
        Ok(())
    }

    async fn start_session(&self, user: &User) -> Result<String> {
        let (token, hash) = auth::new_token();
        let user_id = Uuid::parse_str(&user.id).map_err(anyhow::Error::from)?;
        let expires_at = OffsetDateTime::now_utc() + self.config().session_ttl();
        db::users::create_session(self.db(), &hash, user_id, expires_at).await?;
        Ok(token)
    }
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
