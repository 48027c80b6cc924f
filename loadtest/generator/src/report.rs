//! Counting, latency histograms, server sampling and the final report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::client::ClientOutcome;
use crate::setup::WriteStats;
use crate::Args;

#[derive(Default)]
pub struct Counters {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    reconnected: AtomicU64,
    gave_up: AtomicU64,
    writes_ok: AtomicU64,
    write_errors: AtomicU64,
}

impl Counters {
    pub fn connect_ok(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a failed connection; returns how many have failed so far.
    pub fn connect_failed(&self) -> u64 {
        self.connect_failed.fetch_add(1, Ordering::Relaxed) + 1
    }
    pub fn received_one(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub fn reconnected(&self) {
        self.reconnected.fetch_add(1, Ordering::Relaxed);
    }
    pub fn gave_up(&self) {
        self.gave_up.fetch_add(1, Ordering::Relaxed);
    }
    pub fn write_ok(&self) {
        self.writes_ok.fetch_add(1, Ordering::Relaxed);
    }
    /// A write attempt that failed (it may succeed when retried).
    pub fn write_error(&self) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Clients connected now.
    pub fn open(&self) -> u64 {
        let up = self.connected.load(Ordering::Relaxed) + self.reconnected.load(Ordering::Relaxed);
        up.saturating_sub(self.dropped.load(Ordering::Relaxed))
    }
    pub fn writes_ok(&self) -> u64 {
        self.writes_ok.load(Ordering::Relaxed)
    }
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Delivery latencies in microseconds, sharded so 20,000 clients do not all
/// contend for one lock: over the whole run, and over the current second of
/// the timeline.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
    window: Vec<Mutex<Histogram<u64>>>,
    catch_up: Mutex<Histogram<u64>>,
}

const SHARDS: usize = 64;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn merge(shards: &[Mutex<Histogram<u64>>], reset: bool) -> Histogram<u64> {
    let mut all = histogram();
    for shard in shards {
        if let Ok(mut shard) = shard.lock() {
            let _ = all.add(&*shard);
            if reset {
                shard.reset();
            }
        }
    }
    all
}

impl Latencies {
    pub fn new() -> Self {
        let shards = || (0..SHARDS).map(|_| Mutex::new(histogram())).collect();
        Latencies {
            shards: shards(),
            window: shards(),
            catch_up: Mutex::new(histogram()),
        }
    }

    pub fn record(&self, client: usize, micros: u64) {
        for shards in [&self.shards, &self.window] {
            if let Ok(mut shard) = shards[client % SHARDS].lock() {
                let _ = shard.record(micros.max(1));
            }
        }
    }

    /// Time from a dropped connection to the reconnected client's join.
    pub fn record_catch_up(&self, elapsed: Duration) {
        if let Ok(mut histogram) = self.catch_up.lock() {
            let _ = histogram.record((elapsed.as_micros() as u64).max(1));
        }
    }

    fn merged(&self) -> Histogram<u64> {
        merge(&self.shards, false)
    }

    /// The latencies recorded since the last call.
    pub fn take_window(&self) -> Histogram<u64> {
        merge(&self.window, true)
    }
}

/// CPU time and memory of the server processes at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSample {
    pub cpu_seconds: f64,
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

impl ServerSample {
    pub fn take(pids: &[u32]) -> ServerSample {
        let ticks = clock_ticks_per_second();
        let cpu_seconds = pids
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .filter_map(|stat| {
                // Fields after the parenthesised command name; utime and stime are 14 and 15.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / ticks)
            })
            .sum();
        ServerSample { cpu_seconds }
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// The servers' resident memory now, summed (KiB).
pub fn rss_sum_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|pid| rss_kib(*pid)).sum()
}

/// Samples the servers' resident memory every 200 ms; returns the peak sum (KiB).
pub fn watch_peak_rss(
    pids: Vec<u32>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        loop {
            peak = peak.max(pids.iter().map(|pid| rss_kib(*pid)).sum());
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return peak,
            }
        }
    })
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    count: u64,
}

impl Quantiles {
    pub fn of(histogram: &Histogram<u64>) -> Quantiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Quantiles {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            count: histogram.len(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    instances: usize,
    clients: usize,
    connected: u64,
    connect_failed: u64,
    connections_dropped: u64,
    reconnected: u64,
    reconnect_gave_up: u64,
    catch_up: Quantiles,
    projects: usize,
    writers: usize,
    target_rate: f64,
    duration_s: u64,
    writes_ok: u64,
    /// Attempts that failed and were retried.
    write_errors: u64,
    /// Writes that still failed after their retries.
    pub writes_failed: u64,
    /// Acknowledged writes missing from the change log afterwards.
    pub writes_not_durable: u64,
    write_latency: Quantiles,
    delivery_latency: Quantiles,
    expected_deliveries: u64,
    received_in_order: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    deliveries_per_second: f64,
    server_cpu_seconds: Option<f64>,
    server_cpu_us_per_delivery: Option<f64>,
    server_peak_rss_mib: Option<f64>,
    /// Server memory added per connected client: resident memory once all
    /// had joined, less before the first connected, over the clients.
    server_kib_per_client: Option<f64>,
    /// The same under load: peak resident memory while writing, less before
    /// the first connected, over the clients (what sizing must allow for).
    server_peak_kib_per_client: Option<f64>,
    reads: Option<usize>,
    server_cpu_us_per_read: Option<f64>,
    /// The generator's own CPU time over the whole run (it shares the
    /// machine with what it measures).
    pub generator_cpu_seconds: f64,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        args: &Args,
        counters: &Counters,
        latencies: &Latencies,
        writes: &WriteStats,
        outcomes: Vec<ClientOutcome>,
        latest: &HashMap<String, i64>,
        deliveries: u64,
        before: ServerSample,
        after: ServerSample,
        peak_rss_kib: u64,
        (rss_before_connect, rss_connected): (u64, u64),
        reads: Option<(usize, f64)>,
    ) -> Report {
        let mut expected = 0u64;
        let (mut in_order, mut duplicated, mut out_of_order) = (0u64, 0u64, 0u64);
        for outcome in &outcomes {
            let last = latest
                .get(&outcome.project)
                .copied()
                .unwrap_or(outcome.joined_at);
            expected += (last - outcome.joined_at).max(0) as u64;
            in_order += outcome.in_order;
            duplicated += outcome.duplicates;
            out_of_order += outcome.out_of_order;
        }
        let measured = !args.server_pid.is_empty();
        let cpu = after.cpu_seconds - before.cpu_seconds;
        let window = (args.duration + args.grace) as f64;
        let connected = counters.connected();
        let kib_per_client = |rss_kib: u64| {
            (measured && connected > 0)
                .then(|| rss_kib.saturating_sub(rss_before_connect) as f64 / connected as f64)
        };
        Report {
            instances: args.url.len(),
            clients: args.clients,
            connected: counters.connected(),
            connect_failed: counters.connect_failed.load(Ordering::Relaxed),
            connections_dropped: counters.dropped.load(Ordering::Relaxed),
            reconnected: counters.reconnected.load(Ordering::Relaxed),
            reconnect_gave_up: counters.gave_up.load(Ordering::Relaxed),
            catch_up: Quantiles::of(
                &latencies
                    .catch_up
                    .lock()
                    .map(|h| h.clone())
                    .unwrap_or_else(|_| histogram()),
            ),
            projects: args.projects,
            writers: args.writers,
            target_rate: args.rate,
            duration_s: args.duration,
            writes_ok: writes.ok,
            write_errors: counters.write_errors(),
            writes_failed: writes.failed,
            writes_not_durable: writes.not_durable,
            write_latency: Quantiles::of(&writes.latency),
            delivery_latency: Quantiles::of(&latencies.merged()),
            expected_deliveries: expected,
            received_in_order: in_order,
            lost: expected.saturating_sub(in_order),
            duplicated,
            out_of_order,
            deliveries_per_second: deliveries as f64 / window,
            server_cpu_seconds: measured.then_some(cpu),
            server_cpu_us_per_delivery: (measured && deliveries > 0)
                .then(|| cpu * 1e6 / deliveries as f64),
            server_peak_rss_mib: measured.then(|| peak_rss_kib as f64 / 1024.0),
            server_kib_per_client: kib_per_client(rss_connected),
            server_peak_kib_per_client: kib_per_client(peak_rss_kib),
            reads: reads.map(|(done, _)| done),
            server_cpu_us_per_read: reads
                .filter(|(done, _)| measured && *done > 0)
                .map(|(done, cpu)| cpu * 1e6 / done as f64),
            generator_cpu_seconds: ServerSample::take(&[std::process::id()]).cpu_seconds,
        }
    }

    pub fn print(&self) {
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        println!("{json}");
    }
}
