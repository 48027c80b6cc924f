//! Credentials: argon2id password hashes, opaque bearer tokens, and the
//! sign-in rate limits.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Hashes a password with argon2id (the crate's defaults follow OWASP's
/// recommendation). Slow on purpose: call from a blocking thread.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("hashing password: {error}"))
}

/// A hash of a password nobody knows, checked when the email is unknown so that
/// a wrong email takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not the password of anyone").unwrap_or_default());

/// Checks `password` against `hash`, or against a dummy hash when there is no
/// user, so both failures cost the same. Slow: call from a blocking thread.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

/// A new bearer token (256 random bits, URL-safe) and the hash to store.
pub fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// Secrets of API tokens start with this, so a leaked one is recognisable
/// (secret scanners, logs) and is looked up among tokens, not sessions.
pub const API_TOKEN_PREFIX: &str = "tmpat_";

/// A new API token's secret and its hash.
pub fn new_api_token() -> (String, Vec<u8>) {
    let (random, _) = new_token();
    let secret = format!("{API_TOKEN_PREFIX}{random}");
    let hash = token_hash(&secret);
    (secret, hash)
}

/// What an API token allows, on top of its user's roles. A session has none
/// of these limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub token_id: uuid::Uuid,
    /// May change tasks (else read and subscribe only).
    pub write: bool,
    /// The one project it works in, if limited.
    pub project: Option<uuid::Uuid>,
}

/// What the database keeps of a token: its SHA-256. Tokens are random and
/// long, so a fast hash suffices (no dictionary to guess from).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Sign-in attempt limits, per email and per client IP, kept in this
/// instance's memory (an attacker spreading attempts over N instances gets at
/// most N times the budget).
#[derive(Clone)]
pub struct LoginLimiter {
    by_email: Arc<DefaultKeyedRateLimiter<String>>,
    by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl LoginLimiter {
    pub fn new(per_email_per_minute: u32, per_ip_per_minute: u32) -> Self {
        let quota = |per_minute: u32| {
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
        };
        LoginLimiter {
            by_email: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_email_per_minute))),
            by_ip: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_ip_per_minute))),
        }
    }

    /// Counts an attempt from `ip`; refuses it once the IP's budget is spent.
    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        self.by_ip.check_key(&ip).map_err(|not_until| {
            Error::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Counts an attempt for `email`; refuses it once the address's budget is spent.
    pub fn check_email(&self, email: &str) -> Result<()> {
        self.by_email
            .check_key(&email.to_owned())
            .map_err(|not_until| {
                Error::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
            })
    }

    /// Forgets idle keys, so the maps stay bounded by recent traffic.
    pub fn sweep(&self) {
        self.by_email.retain_recent();
        self.by_ip.retain_recent();
        self.by_email.shrink_to_fit();
        self.by_ip.shrink_to_fit();
    }
}

/// How often idle rate-limit keys and expired sessions are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert!(!verify_password("not the password of anyone", None));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, token_hash(&a));
        assert_eq!(hash_a.len(), 32);
    }

    #[test]
    fn limiter_refuses_after_budget() {
        let limiter = LoginLimiter::new(2, 100);
        assert!(limiter.check_email("a@x.io").is_ok());
        assert!(limiter.check_email("a@x.io").is_ok());
        let error = limiter.check_email("a@x.io").unwrap_err();
        assert_eq!(error.code(), "rate_limited");
        assert!(
            limiter.check_email("b@x.io").is_ok(),
            "keys are independent"
        );
    }
}
