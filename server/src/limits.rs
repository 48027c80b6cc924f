//! Request rate limits beyond sign-in's local ones (`auth::LoginLimiter`):
//!
//! - [`ApiLimiter`]: API requests per sign-in token and per user, in this
//!   instance's memory. A client's requests mostly land on one instance
//!   (sticky routing), and the limit is there to keep one runaway client
//!   from starving the others on it, so a local count is enough and costs
//!   no round trip.
//! - [`SharedLoginLimits`]: sign-in attempts per email and per address
//!   counted in Redis, so that guessing passwords over N instances gets the
//!   budget once, not N times. Behind a timeout and a circuit breaker
//!   (`ratelimit`); while Redis cannot answer, the local limits still hold.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::breaker::Breaker;
use crate::error::{Error, Result};

/// A burst may spend this many seconds' worth of the rate at once.
const BURST_SECONDS: u32 = 5;

fn keyed<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(BURST_SECONDS)).unwrap_or(rate);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// API requests per token and per user, on this instance.
pub struct ApiLimiter {
    by_token: Option<DefaultKeyedRateLimiter<Vec<u8>>>,
    by_user: Option<DefaultKeyedRateLimiter<Uuid>>,
}

impl ApiLimiter {
    /// Limits of `per_token` and `per_user` requests per second; 0 turns
    /// one off.
    pub fn new(per_token: u32, per_user: u32) -> Self {
        ApiLimiter {
            by_token: keyed(per_token),
            by_user: keyed(per_user),
        }
    }

    /// Counts one request of `user` made with the token hashed `token_hash`.
    pub fn check(&self, user: Uuid, token_hash: &[u8]) -> Result<()> {
        let refused = |not_until: governor::NotUntil<_>| {
            Error::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
        };
        if let Some(by_token) = &self.by_token {
            by_token
                .check_key(&token_hash.to_vec())
                .map_err(|not_until| {
                    metrics::counter!("rate_limited_total", "limit" => "token").increment(1);
                    refused(not_until)
                })?;
        }
        if let Some(by_user) = &self.by_user {
            by_user.check_key(&user).map_err(|not_until| {
                metrics::counter!("rate_limited_total", "limit" => "user").increment(1);
                refused(not_until)
            })?;
        }
        Ok(())
    }

    /// Forgets idle keys, so the maps stay bounded by recent traffic.
    pub fn sweep(&self) {
        if let Some(by_token) = &self.by_token {
            by_token.retain_recent();
            by_token.shrink_to_fit();
        }
        if let Some(by_user) = &self.by_user {
            by_user.retain_recent();
            by_user.shrink_to_fit();
        }
    }
}

/// The window a shared sign-in budget is counted over.
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Counts one attempt in KEYS[1]'s window (ARGV[1] ms, started by the
/// first attempt) and returns the count and the window's time left.
const COUNT_ATTEMPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
";

/// What is counted: an email address or a client address.
#[derive(Debug, Clone, Copy)]
pub enum LoginKey<'a> {
    Email(&'a str),
    Address(std::net::IpAddr),
}

/// Sign-in attempts per email and per address, counted in Redis across
/// every instance of the deployment.
pub struct SharedLoginLimits {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    breaker: Breaker,
    per_email: u32,
    per_address: u32,
}

impl SharedLoginLimits {
    /// Limits on the Redis at `url`. Connects lazily: Redis may be down at
    /// start.
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        per_email_per_minute: u32,
        per_address_per_minute: u32,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(200))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(SharedLoginLimits {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: format!("{prefix}:login-attempts:"),
            timeout,
            breaker: Breaker::new("ratelimit", 3, Duration::from_secs(2)),
            per_email: per_email_per_minute.max(1),
            per_address: per_address_per_minute.max(1),
        })
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Counts an attempt for `key`; refuses it once the deployment-wide
    /// budget of its window is spent. When Redis cannot answer the attempt
    /// is let through: the instance's own limits still apply.
    pub async fn check(&self, key: LoginKey<'_>) -> Result<()> {
        let (kind, subject, limit) = match key {
            LoginKey::Email(email) => ("email", email.to_owned(), self.per_email),
            LoginKey::Address(address) => ("address", address.to_string(), self.per_address),
        };
        if !self.breaker.allow() {
            return Ok(());
        }
        // Hashed: the keys of Redis hold no email addresses.
        let digest = Sha256::digest(subject.as_bytes());
        let key = format!("{}{kind}:{}", self.prefix, hex(&digest[..16]));
        let mut connection = self.connection.clone();
        // EVAL, not EVALSHA: the script is tiny, and Redis caches it anyway.
        let mut count = redis::cmd("EVAL");
        count
            .arg(COUNT_ATTEMPT)
            .arg(1)
            .arg(key)
            .arg(LOGIN_WINDOW.as_millis() as u64);
        let answer = tokio::time::timeout(
            self.timeout,
            count.query_async::<(u32, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((count, left_ms))) => {
                self.breaker.succeeded();
                if count > limit {
                    metrics::counter!("rate_limited_total", "limit" => kind).increment(1);
                    let wait = Duration::from_millis(left_ms.max(1) as u64);
                    return Err(Error::RateLimited(wait));
                }
                Ok(())
            }
            Ok(Err(error)) => {
                self.breaker.failed();
                tracing::debug!(%error, "shared sign-in limit unavailable; local limits apply");
                Ok(())
            }
            Err(_) => {
                self.breaker.failed();
                tracing::debug!("shared sign-in limit timed out; local limits apply");
                Ok(())
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_past_its_burst_is_refused_and_other_tokens_are_not() {
        let limiter = ApiLimiter::new(2, 0);
        let user = Uuid::new_v4();
        for _ in 0..2 * BURST_SECONDS {
            limiter.check(user, b"token-a").unwrap();
        }
        let refused = limiter.check(user, b"token-a").unwrap_err();
        assert!(matches!(refused, Error::RateLimited(wait) if wait <= Duration::from_secs(1)));
        limiter.check(user, b"token-b").unwrap();
    }

    #[test]
    fn a_user_limit_counts_every_token_of_the_user() {
        let limiter = ApiLimiter::new(0, 1);
        let user = Uuid::new_v4();
        for n in 0..BURST_SECONDS {
            limiter
                .check(user, format!("token-{n}").as_bytes())
                .unwrap();
        }
        assert!(limiter.check(user, b"yet another").is_err());
        limiter.check(Uuid::new_v4(), b"yet another").unwrap();
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = ApiLimiter::new(0, 0);
        for _ in 0..10_000 {
            limiter.check(Uuid::nil(), b"t").unwrap();
        }
    }
}
