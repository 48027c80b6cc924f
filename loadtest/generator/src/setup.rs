//! The REST side: creating users and projects, and the writers.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::report::Counters;
use crate::tls::Trust;
use crate::Args;

/// What the clients and writers work on.
pub struct World {
    pub urls: Vec<String>,
    pub owner_token: String,
    pub user_tokens: Vec<String>,
    pub projects: Vec<String>,
    /// Whether dropped clients reconnect and catch up (`--reconnect`).
    pub reconnect: bool,
    pub trust: Trust,
    http: reqwest::Client,
}

pub struct WriteStats {
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
    /// Per project, the titles of the acknowledged writes.
    pub acknowledged: HashMap<String, Vec<String>>,
    pub not_durable: u64,
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.as_u16() == 429 {
        bail!("{url}: rate limited; run the server with LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000 for load tests");
    }
    if !status.is_success() {
        bail!("POST {url}: {status} {body}");
    }
    Ok(body)
}

pub async fn prepare(args: &Args, trust: Trust) -> anyhow::Result<World> {
    let http = trust.http_client()?;
    let base = args.url[0].trim_end_matches('/').to_owned();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let register = |name: String| {
        let (http, base, run) = (http.clone(), base.clone(), run.clone());
        async move {
            let body = json!({"email": format!("{name}-{run}@load.test"), "name": name, "password": "load test password"});
            let answer = post(&http, &format!("{base}/api/v1/auth/register"), None, body).await?;
            let token = answer["token"].as_str().context("token")?.to_owned();
            let email = answer["user"]["email"]
                .as_str()
                .context("email")?
                .to_owned();
            anyhow::Ok((token, email))
        }
    };
    let (owner_token, _) = register("owner".into()).await?;
    let users: Vec<(String, String)> =
        futures::stream::iter((0..args.users).map(|n| register(format!("user{n}"))))
            .buffered(8)
            .try_collect()
            .await?;

    let mut projects = Vec::with_capacity(args.projects);
    for n in 0..args.projects {
        let project = post(
            &http,
            &format!("{base}/api/v1/projects"),
            Some(&owner_token),
            json!({"name": format!("load {n}")}),
        )
        .await?;
        let id = project["id"].as_str().context("project id")?.to_owned();
        post(
            &http,
            &format!("{base}/api/v1/projects/{id}/tasks"),
            Some(&owner_token),
            json!({"title": "load target"}),
        )
        .await?;
        projects.push(id);
    }
    let memberships = projects.iter().flat_map(|project| {
        users
            .iter()
            .map(move |(_, email)| (project.clone(), email.clone()))
    });
    futures::stream::iter(memberships.map(|(project, email)| {
        let (http, base, owner) = (http.clone(), base.clone(), owner_token.clone());
        async move {
            post(
                &http,
                &format!("{base}/api/v1/projects/{project}/members"),
                Some(&owner),
                json!({"email": email, "role": "editor"}),
            )
            .await
        }
    }))
    .buffer_unordered(32)
    .try_collect::<Vec<_>>()
    .await?;

    Ok(World {
        urls: args
            .url
            .iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect(),
        owner_token,
        user_tokens: users.into_iter().map(|(token, _)| token).collect(),
        projects,
        reconnect: args.reconnect,
        trust,
        http,
    })
}

/// Microseconds since the Unix epoch: what writers stamp into titles and
/// clients subtract from their receive time.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or_default()
}

/// Runs the writers for `duration` and collects their latencies. A write that
/// fails for a reason the client did not cause (connection refused or reset,
/// 5xx, 429) is retried as a user's client would, after `Retry-After` when the
/// server gave one, up to `--write-attempts` times; its latency runs from the
/// first attempt to the acknowledgement.
pub async fn write_for(
    args: &Args,
    world: &World,
    counters: &Counters,
    duration: Duration,
) -> WriteStats {
    let per_writer = args.rate / args.writers as f64;
    let interval = Duration::from_secs_f64(1.0 / per_writer.max(0.001));
    let deadline = Instant::now() + duration;
    let writers = (0..args.writers).map(|writer| async move {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut acknowledged: Vec<(String, String)> = Vec::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0usize;
        while Instant::now() < deadline {
            ticker.tick().await;
            let project = &world.projects[(writer + n * args.writers) % world.projects.len()];
            n += 1;
            let sent = now_micros();
            let title = format!("lg {sent} w{writer}");
            let started = Instant::now();
            let mut attempt = 0;
            loop {
                let base = &world.urls[(writer + n + attempt) % world.urls.len()];
                attempt += 1;
                let result = world
                    .http
                    .patch(format!("{base}/api/v1/projects/{project}/tasks/1"))
                    .bearer_auth(&world.owner_token)
                    // Each writer is its own browser to a sticky edge.
                    .header(reqwest::header::COOKIE, format!("tm_route=writer{writer}"))
                    .json(&json!({ "title": title }))
                    .send()
                    .await;
                let retry_after = match result {
                    Ok(response) if response.status().is_success() => {
                        ok += 1;
                        counters.write_ok();
                        let _ = latency.record(started.elapsed().as_micros() as u64);
                        acknowledged.push((project.clone(), title.clone()));
                        break;
                    }
                    Ok(response)
                        if response.status().is_client_error()
                            && response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
                    {
                        // Our own mistake: retrying would not help.
                        failed += 1;
                        break;
                    }
                    Ok(response) => response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<u64>().ok())
                        .map(Duration::from_secs),
                    Err(_) => None,
                };
                counters.write_error();
                if attempt >= args.write_attempts {
                    failed += 1;
                    break;
                }
                let pause = Duration::from_millis(50 << attempt.min(5));
                tokio::time::sleep(retry_after.unwrap_or(pause).min(Duration::from_secs(5))).await;
            }
        }
        (latency, ok, failed, acknowledged)
    });
    let mut stats = WriteStats {
        latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram"),
        ok: 0,
        failed: 0,
        acknowledged: HashMap::new(),
        not_durable: 0,
    };
    for (latency, ok, failed, acknowledged) in futures::future::join_all(writers).await {
        let _ = stats.latency.add(&latency);
        stats.ok += ok;
        stats.failed += failed;
        for (project, title) in acknowledged {
            stats.acknowledged.entry(project).or_default().push(title);
        }
    }
    stats
}

/// GET `url` as the owner; any status but 2xx is an error.
async fn owner_get(world: &World, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = world
        .http
        .get(url)
        .bearer_auth(&world.owner_token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    Ok(response)
}

/// `count` REST reads, 16 at a time, alternating a project's task list and
/// its task 1 over the projects; returns how many succeeded (any failure is
/// an error: a read benchmark must not hide refusals).
pub async fn read(world: &World, count: usize) -> anyhow::Result<usize> {
    let requests = (0..count).map(|n| {
        let project = &world.projects[n % world.projects.len()];
        let base = &world.urls[n % world.urls.len()];
        let url = if n % 2 == 0 {
            format!("{base}/api/v1/projects/{project}/tasks?limit=50")
        } else {
            format!("{base}/api/v1/projects/{project}/tasks/1")
        };
        async move {
            owner_get(world, &url).await?.bytes().await?;
            anyhow::Ok(())
        }
    });
    let done: Vec<()> = futures::stream::iter(requests)
        .buffer_unordered(16)
        .try_collect()
        .await?;
    Ok(done.len())
}

/// Counts the acknowledged writes whose change is not in the project's
/// change log: reads every project's log from the start.
pub async fn count_not_durable(world: &World, writes: &WriteStats) -> anyhow::Result<u64> {
    let mut missing = 0;
    for (project, titles) in &writes.acknowledged {
        let mut logged = std::collections::HashSet::new();
        let mut since = 0;
        loop {
            let url = format!(
                "{}/api/v1/projects/{project}/events?since={since}&limit=1000",
                world.urls[0]
            );
            let page: Value = owner_get(world, &url).await?.json().await?;
            let items = page["items"].as_array().context("items")?;
            for event in items {
                if let Some(title) = event["task"]["title"].as_str() {
                    logged.insert(title.to_owned());
                }
                since = event["seq"].as_i64().unwrap_or(since);
            }
            if items.is_empty() || since >= page["latest_seq"].as_i64().unwrap_or(0) {
                break;
            }
        }
        missing += titles
            .iter()
            .filter(|title| !logged.contains(*title))
            .count() as u64;
    }
    Ok(missing)
}

/// Each project's latest seq, read after the run.
pub async fn latest_seqs(world: &World) -> anyhow::Result<HashMap<String, i64>> {
    let mut latest = HashMap::new();
    for project in &world.projects {
        let page: Value = world
            .http
            .get(format!(
                "{}/api/v1/projects/{project}/events?limit=1",
                world.urls[0]
            ))
            .bearer_auth(&world.owner_token)
            .send()
            .await?
            .json()
            .await?;
        latest.insert(
            project.clone(),
            page["latest_seq"].as_i64().context("latest_seq")?,
        );
    }
    Ok(latest)
}
