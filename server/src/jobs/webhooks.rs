//! Webhook deliveries, as jobs.
//!
//! One job per webhook (its `queue_key`), so deliveries run one at a time
//! and in seq order: it reads the project's change log after the webhook's
//! `delivered_seq` and posts each event the webhook wants, signed, moving
//! `delivered_seq` on after each success. A failure is retried by the queue
//! with backoff; after the last attempt the event is dead-lettered (kept for
//! redelivery) and the webhook moves on; after several dead letters in a row
//! it is disabled and says why. Every commit pokes the job (the outbox in
//! `ProjectWrite::commit`), so nothing committed waits for the next change.
//! Posting again after a crash is allowed (at least once); receivers dedupe
//! by `X-TaskMaster-Delivery` (project and seq).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use protocol::Event;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use super::{Context, Outcome};
use crate::db;
use crate::error::{Error, Result};

/// A run delivers for at most this long, then lets other jobs have the slot.
const RUN_BUDGET: Duration = Duration::from_secs(20);
/// Events read from the log at a time.
const BATCH: i64 = 50;

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-taskmaster-signature";

/// `t=…,v1=…` for `body` sent at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether webhooks may post to `address`: public unicast only, unless the
/// deployment allows private networks (`WEBHOOK_ALLOW_PRIVATE_ADDRESSES`).
pub fn address_allowed(address: IpAddr, allow_private: bool) -> bool {
    if allow_private {
        return !address.is_unspecified() && !address.is_multicast();
    }
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                // carrier-grade NAT, and "this network"
                || (a == 100 && (64..128).contains(&b))
                || a == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), false);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // unique local fc00::/7, link-local fe80::/10
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Checks a webhook URL and resolves it to an address webhooks may post to
/// (the connection then goes to that very address, so a name cannot point
/// elsewhere between the check and the request).
pub async fn resolve(url: &str, allow_private: bool) -> Result<(reqwest::Url, SocketAddr)> {
    let invalid = |why: String| Error::Invalid("invalid_webhook_url", why);
    let parsed =
        reqwest::Url::parse(url).map_err(|error| invalid(format!("not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("a webhook URL is http:// or https://".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "put credentials in the secret, not in the URL".into(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| invalid("the URL has no port".into()))?;
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![SocketAddr::new(address, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| invalid(format!("{host} did not resolve in time")))?
        .map_err(|error| invalid(format!("{host} does not resolve: {error}")))?
        .collect(),
    };
    let allowed = addresses
        .iter()
        .find(|address| address_allowed(address.ip(), allow_private));
    match allowed {
        Some(address) => Ok((parsed, *address)),
        None => Err(invalid(format!(
            "{host} is a loopback, private or reserved address; webhooks post to public addresses only"
        ))),
    }
}

/// A webhook as the delivery job reads it.
#[derive(sqlx::FromRow)]
struct Target {
    project_id: Uuid,
    url: String,
    secret: String,
    event_types: Vec<String>,
    enabled: bool,
    delivered_seq: i64,
}

async fn target(context: &Context<'_>, webhook: Uuid) -> Result<Option<Target>> {
    Ok(sqlx::query_as(
        "select project_id, url, secret, event_types, enabled, delivered_seq
           from webhooks where webhook_id = $1",
    )
    .bind(webhook)
    .fetch_optional(context.app.db())
    .await?)
}

fn webhook_of(payload: &Value) -> Result<Uuid> {
    payload["webhook_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("webhook job without a webhook_id")))
}

/// Posts a webhook's events: its address resolved and checked, and a
/// client made, once per run rather than once per event.
struct Poster {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: String,
    timeout: Duration,
}

impl Poster {
    async fn new(context: &Context<'_>, target: &Target) -> std::result::Result<Poster, String> {
        let settings = context.app.config();
        // A post ends well inside the lease, so no other instance can start
        // on this webhook while one of ours is still in flight (order holds).
        let timeout = settings.webhook_timeout().min(context.settings.lease / 2);
        let (url, address) = resolve(&target.url, settings.webhook_allow_private_addresses)
            .await
            .map_err(|error| error.to_string())?;
        let host = url.host_str().unwrap_or_default().to_owned();
        crate::tls::install_default_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, address)
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Poster {
            client,
            url,
            secret: target.secret.clone(),
            timeout,
        })
    }

    /// The poster of this run, made on first use.
    async fn ready<'p>(
        slot: &'p mut Option<Poster>,
        context: &Context<'_>,
        target: &Target,
    ) -> std::result::Result<&'p Poster, String> {
        if slot.is_none() {
            *slot = Some(Poster::new(context, target).await?);
        }
        Ok(slot.as_ref().expect("just made"))
    }

    /// Posts one event; an error says why it did not count as delivered.
    async fn post(&self, event: &Event) -> std::result::Result<u16, String> {
        let body = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, "TaskMaster-Webhooks/1")
            .header(SIGNATURE_HEADER, signature(&self.secret, timestamp, &body))
            .header("x-taskmaster-event", &event.kind)
            .header(
                "x-taskmaster-delivery",
                format!("{}:{}", event.project_id, event.seq),
            )
            .header("x-taskmaster-seq", event.seq.to_string())
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    format!("no answer within {:?}", self.timeout)
                } else {
                    format!("could not post: {error}")
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// Delivers what the webhook has not had yet, in seq order.
pub async fn deliver(context: &Context<'_>) -> Result<Outcome> {
    let webhook = webhook_of(&context.job.payload)?;
    let pool = context.app.db();
    let started = Instant::now();
    // The attempt this run is for the event at the head of the queue.
    let mut attempt = context.job.attempts;
    let mut delivered = 0u64;
    let mut renewed = Instant::now();
    let mut poster = None;
    loop {
        let Some(target) = target(context, webhook).await? else {
            return Ok(Outcome::Done(json!({"skipped": "the webhook was deleted"})));
        };
        if !target.enabled {
            return Ok(Outcome::Done(json!({"skipped": "the webhook is disabled"})));
        }
        let events =
            db::events::since(pool, target.project_id, target.delivered_seq, BATCH).await?;
        if events.is_empty() {
            return Ok(Outcome::Done(
                json!({ "delivered": delivered, "through_seq": target.delivered_seq }),
            ));
        }
        for event in &events {
            // The lease is renewed well before it could run out (a third of
            // it), and never with a post in flight: with posts bounded by
            // half the lease, another instance can only take over once ours
            // has stopped, so deliveries never overlap.
            if renewed.elapsed() > context.settings.lease / 3 {
                if !context.keep().await? {
                    return Ok(Outcome::Again);
                }
                renewed = Instant::now();
            }
            let wanted = target.event_types.is_empty() || target.event_types.contains(&event.kind);
            if wanted {
                let sent = match Poster::ready(&mut poster, context, &target).await {
                    Ok(poster) => poster.post(event).await,
                    Err(why) => Err(why),
                };
                match sent {
                    Ok(_) => {
                        delivered += 1;
                        metrics::counter!("webhook_deliveries_total", "outcome" => "delivered")
                            .increment(1);
                    }
                    Err(why) if attempt >= context.job.max_attempts => {
                        metrics::counter!("webhook_deliveries_total", "outcome" => "dead")
                            .increment(1);
                        dead_letter(context, webhook, event.seq, attempt, &why).await?;
                        reset_attempts(context).await?;
                        // The next events go on at once (or stop, if this
                        // disabled the webhook).
                        return Ok(Outcome::Again);
                    }
                    Err(why) => {
                        metrics::counter!("webhook_deliveries_total", "outcome" => "failed")
                            .increment(1);
                        return Ok(Outcome::Failed(format!("seq {}: {why}", event.seq)));
                    }
                }
            }
            sqlx::query(
                "update webhooks set delivered_seq = $2, dead_in_a_row = case when $3 then 0 else dead_in_a_row end
                  where webhook_id = $1 and delivered_seq < $2",
            )
            .bind(webhook)
            .bind(event.seq)
            .bind(wanted)
            .execute(pool)
            .await?;
            if wanted && attempt > 1 {
                attempt = 1;
                reset_attempts(context).await?;
            }
            if started.elapsed() > RUN_BUDGET {
                return Ok(Outcome::Again);
            }
        }
    }
}

/// The head event failed its last attempt: keep it for redelivery, move on,
/// and disable the webhook after too many in a row.
async fn dead_letter(
    context: &Context<'_>,
    webhook: Uuid,
    seq: i64,
    attempts: i32,
    why: &str,
) -> Result<()> {
    let pool = context.app.db();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into webhook_dead_letters (webhook_id, seq, attempts, last_error) values ($1, $2, $3, $4)
         on conflict (webhook_id, seq) do update
            set attempts = excluded.attempts, last_error = excluded.last_error,
                failed_at = now(), redelivered_at = null",
    )
    .bind(webhook)
    .bind(seq)
    .bind(attempts)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    let in_a_row: i32 = sqlx::query_scalar(
        "update webhooks set delivered_seq = greatest(delivered_seq, $2), dead_in_a_row = dead_in_a_row + 1
          where webhook_id = $1 returning dead_in_a_row",
    )
    .bind(webhook)
    .bind(seq)
    .fetch_one(&mut *tx)
    .await?;
    let limit = context.app.config().webhook_disable_after_dead_letters;
    if in_a_row as u32 >= limit {
        let reason = format!(
            "disabled after {in_a_row} events in a row could not be delivered (the last: {why}); \
             fix the receiver, then re-enable it and redeliver the dead letters"
        );
        sqlx::query(
            "update webhooks set enabled = false, disabled_reason = $2 where webhook_id = $1",
        )
        .bind(webhook)
        .bind(&reason)
        .execute(&mut *tx)
        .await?;
        // The owner is told through the project's audit log, in the same
        // transaction: never a disabled webhook without its entry.
        sqlx::query(
            "insert into audit_events (project_id, action, detail)
             select project_id, 'webhook_disabled', 'webhook ' || webhook_id || ' (' || url || ') ' || $2
               from webhooks where webhook_id = $1",
        )
        .bind(webhook)
        .bind(&reason)
        .execute(&mut *tx)
        .await?;
        metrics::counter!("webhooks_disabled_total").increment(1);
        tracing::warn!(%webhook, %reason, "webhook disabled");
    }
    tx.commit().await?;
    Ok(())
}

async fn reset_attempts(context: &Context<'_>) -> Result<()> {
    sqlx::query("update jobs set attempts = 1 where job_id = $1 and leased_by = $2")
        .bind(context.job.job_id)
        .bind(context.worker)
        .execute(context.app.db())
        .await?;
    Ok(())
}

/// Posts dead-lettered events again, as an owner asked (out of order by
/// nature: they were skipped). Each one delivered is marked redelivered.
pub async fn redeliver(context: &Context<'_>) -> Result<Outcome> {
    let webhook = webhook_of(&context.job.payload)?;
    let pool = context.app.db();
    let Some(target) = target(context, webhook).await? else {
        return Ok(Outcome::Done(json!({"skipped": "the webhook was deleted"})));
    };
    let seqs: Vec<i64> = sqlx::query_scalar(
        "select seq from webhook_dead_letters
          where webhook_id = $1 and redelivered_at is null and ($2::bigint[] is null or seq = any($2))
          order by seq",
    )
    .bind(webhook)
    .bind(
        context.job.payload["seqs"]
            .as_array()
            .map(|seqs| seqs.iter().filter_map(Value::as_i64).collect::<Vec<i64>>()),
    )
    .fetch_all(pool)
    .await?;
    let mut redelivered = 0;
    let mut poster = None;
    for seq in seqs {
        let Some(event) = db::events::since(pool, target.project_id, seq - 1, 1)
            .await?
            .into_iter()
            .find(|event| event.seq == seq)
        else {
            // Past the change log's retention: nothing left to send.
            continue;
        };
        let sent = match Poster::ready(&mut poster, context, &target).await {
            Ok(poster) => poster.post(&event).await,
            Err(why) => Err(why),
        };
        if let Err(why) = sent {
            return Ok(Outcome::Failed(format!("seq {seq}: {why}")));
        }
        sqlx::query("update webhook_dead_letters set redelivered_at = now() where webhook_id = $1 and seq = $2")
            .bind(webhook)
            .bind(seq)
            .execute(pool)
            .await?;
        redelivered += 1;
    }
    Ok(Outcome::Done(json!({ "redelivered": redelivered })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python's hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(
            signature("secret", 1_700_000_000, b"{}"),
            signature("other", 1_700_000_000, b"{}")
        );
    }

    #[test]
    fn only_public_addresses_unless_private_ones_are_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let address: IpAddr = private.parse().unwrap();
            assert!(!address_allowed(address, false), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(address_allowed(public.parse().unwrap(), false), "{public}");
        }
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(!address_allowed("0.0.0.0".parse().unwrap(), true));
    }
}
