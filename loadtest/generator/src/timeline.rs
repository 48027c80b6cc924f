//! One row per second of the run, for plots of latency and throughput over
//! time (loadtest/plot.py): how many clients are connected, deliveries and
//! writes per second, delivery latency quantiles of that second, and the
//! servers' memory and CPU.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::report::{rss_kib, Counters, Latencies, ServerSample};

pub const HEADER: &str = "t_s,clients,deliveries_per_s,writes_per_s,write_errors_per_s,delivery_p50_ms,delivery_p95_ms,delivery_p99_ms,server_rss_mib,server_cpu_percent,unix_s";

/// Samples every second until `stop`, then writes the CSV to `path`.
pub fn record(
    path: PathBuf,
    server_pids: Vec<u32>,
    counters: Arc<Counters>,
    latencies: Arc<Latencies>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut csv = format!("{HEADER}\n");
        let mut previous = (
            Instant::now(),
            counters.received(),
            counters.writes_ok(),
            counters.write_errors(),
            ServerSample::take(&server_pids).cpu_seconds,
        );
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            let now = (
                Instant::now(),
                counters.received(),
                counters.writes_ok(),
                counters.write_errors(),
                ServerSample::take(&server_pids).cpu_seconds,
            );
            let seconds = now.0.duration_since(previous.0).as_secs_f64().max(1e-3);
            let window = latencies.take_window();
            let ms = |quantile: f64| {
                if window.is_empty() {
                    String::new()
                } else {
                    format!("{:.2}", window.value_at_quantile(quantile) as f64 / 1000.0)
                }
            };
            let rss: u64 = server_pids.iter().map(|pid| rss_kib(*pid)).sum();
            let _ = writeln!(
                csv,
                "{:.1},{},{:.1},{:.1},{:.1},{},{},{},{:.1},{:.1},{:.1}",
                started.elapsed().as_secs_f64(),
                counters.open(),
                (now.1 - previous.1) as f64 / seconds,
                (now.2 - previous.2) as f64 / seconds,
                (now.3 - previous.3) as f64 / seconds,
                ms(0.50),
                ms(0.95),
                ms(0.99),
                rss as f64 / 1024.0,
                (now.4 - previous.4) * 100.0 / seconds,
                crate::setup::now_micros() as f64 / 1e6,
            );
            previous = now;
        }
        std::fs::write(&path, csv)?;
        Ok(())
    })
}
