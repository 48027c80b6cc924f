//! `loadgen`: many Socket.IO clients and a few REST writers against a running
//! Task Master deployment, measuring what users feel.
//!
//! Scenario: U users, R projects, N WebSocket clients joined across the
//! projects, W writers PATCHing tasks at X changes/s in total for D seconds.
//! Reports connection success, write latency, end-to-end delivery latency
//! (PATCH sent → event received, from the title the writer stamped), expected
//! against received deliveries (lost, duplicated, out of order), and — given
//! the server's pids — its peak memory and CPU time per delivery.
//!
//! Only for servers you run yourself on this machine: it refuses any address
//! that is not loopback.

mod client;
mod report;
mod setup;
mod timeline;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::sync::watch;

use report::{Counters, Latencies, ServerSample};

#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", about = "Socket.IO and REST load for Task Master")]
pub struct Args {
    /// Base URLs of the instances (clients and writers spread over them).
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Users to register (clients sign in as them, round-robin).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Projects to create (clients join them, round-robin).
    #[arg(long, default_value_t = 50)]
    pub projects: usize,
    /// Socket.IO clients to connect.
    #[arg(long, default_value_t = 1_000)]
    pub clients: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 20)]
    pub writers: usize,
    /// Changes per second, all writers together.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 1_000)]
    pub connect_rate: u64,
    /// Seconds to wait for deliveries after the last write.
    #[arg(long, default_value_t = 5)]
    pub grace: u64,
    /// Seconds to keep the clients connected after the measurement ends, so
    /// an outside sampler (loadtest/bus-bench.sh) can read the servers
    /// before the disconnects move their counters.
    #[arg(long, default_value_t = 0)]
    pub linger: u64,
    /// Pids of the server processes, to report their memory and CPU.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write one CSV row per second (clients, deliveries, writes, latency,
    /// server memory and CPU) to this file, for loadtest/plot.py.
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
    /// PEM certificate to trust for https:// and wss:// (the edge's, on a
    /// local cluster).
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Reconnect dropped clients and catch up with `join` + `since`, as the
    /// web app does (rolling deploys, killed instances).
    #[arg(long)]
    pub reconnect: bool,
    /// Attempts per write before it counts as failed (connection errors,
    /// 5xx and 429 are retried).
    #[arg(long, default_value_t = 10)]
    pub write_attempts: usize,
    /// After the writing, this many REST reads (task lists and single tasks,
    /// 16 at a time), to measure the server's CPU per request.
    #[arg(long, default_value_t = 0)]
    pub reads: usize,
}

/// Whether `url` is an http(s) URL whose host is this machine: `localhost`,
/// 127.0.0.0/8 or `[::1]`. Parsed as a URL, so `[2001:db8::1]:80` or
/// `127.0.0.1.example.com` are not mistaken for loopback.
fn targets_loopback(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for url in &args.url {
        if !targets_loopback(url) {
            bail!("{url}: loadgen only targets servers on this machine (loopback)");
        }
    }
    if args.projects == 0 || args.users == 0 || args.writers == 0 {
        bail!("--users, --projects and --writers must be at least 1");
    }
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    if (limit as usize) < args.clients + 256 {
        eprintln!("warning: open-file limit {limit} is below --clients + 256");
    }

    eprintln!(
        "setting up {} users and {} projects…",
        args.users, args.projects
    );
    let trust = tls::Trust::load(args.ca_cert.as_deref())?;
    let world = Arc::new(setup::prepare(&args, trust).await?);

    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Latencies::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let timeline = args.timeline.clone().map(|path| {
        timeline::record(
            path,
            args.server_pid.clone(),
            counters.clone(),
            latencies.clone(),
            stop_rx.clone(),
        )
    });

    let rss_before_connect = report::rss_sum_kib(&args.server_pid);
    eprintln!("connecting {} clients…", args.clients);
    let ramp_started = Instant::now();
    let clients = client::spawn_all(&args, &world, &counters, &latencies, stop_rx.clone()).await;
    let connected = counters.connected();
    eprintln!(
        "{connected} of {} connected and joined in {:.1}s",
        args.clients,
        ramp_started.elapsed().as_secs_f64()
    );

    // Memory settles a moment after the last join.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = report::rss_sum_kib(&args.server_pid);
    let server_before = ServerSample::take(&args.server_pid);
    let peak_watch = report::watch_peak_rss(args.server_pid.clone(), stop_rx.clone());
    let deliveries_before = counters.received();

    eprintln!(
        "writing {:.0} changes/s with {} writers for {}s…",
        args.rate, args.writers, args.duration
    );
    let mut writes =
        setup::write_for(&args, &world, &counters, Duration::from_secs(args.duration)).await;
    tokio::time::sleep(Duration::from_secs(args.grace)).await;

    let server_after = ServerSample::take(&args.server_pid);
    let deliveries = counters.received() - deliveries_before;
    let reads = if args.reads > 0 {
        eprintln!("reading {} times…", args.reads);
        let before = ServerSample::take(&args.server_pid);
        let done = setup::read(&world, args.reads).await?;
        let after = ServerSample::take(&args.server_pid);
        Some((done, after.cpu_seconds - before.cpu_seconds))
    } else {
        None
    };
    eprintln!("measured; disconnecting the clients in {}s…", args.linger);
    tokio::time::sleep(Duration::from_secs(args.linger)).await;
    let _ = stop_tx.send(true);
    let outcomes = futures::future::join_all(clients).await;
    let peak_rss = peak_watch.await.unwrap_or_default();

    if let Some(timeline) = timeline {
        timeline.await??;
    }
    let latest = setup::latest_seqs(&world).await?;
    writes.not_durable = setup::count_not_durable(&world, &writes).await?;
    let report = report::Report::build(
        &args,
        &counters,
        &latencies,
        &writes,
        outcomes.into_iter().flatten().flatten().collect(),
        &latest,
        deliveries,
        server_before,
        server_after,
        peak_rss,
        (rss_before_connect, rss_connected),
        reads,
    );
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if report.lost > 0
        || report.duplicated > 0
        || report.out_of_order > 0
        || report.writes_failed > 0
        || report.writes_not_durable > 0
    {
        std::process::exit(2);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::targets_loopback;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1/x",
            "https://127.3.4.5",
            "http://[::1]:8080/",
        ] {
            assert!(targets_loopback(url), "{url}");
        }
        for url in [
            "http://[2001:db8::1]:8080",
            "http://[::ffff:10.0.0.1]/",
            "http://10.0.0.1",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
        ] {
            assert!(!targets_loopback(url), "{url}");
        }
    }
}
