use taskmaster_server::config::{Cli, Command};
use taskmaster_server::startup::{database, shutdown_signal, Application};
use taskmaster_server::{db, probe, telemetry};

// jemalloc returns freed memory to the system and fragments less than the
// system allocator under many connections and bursts of large, short-lived
// buffers (argon2 uses 19 MiB per hash); see docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    taskmaster_server::tls::install_default_provider();
    let cli = Cli::from_env_and_args();
    // Before the runtime starts: the trace exporter runs on a thread of its
    // own with a blocking HTTP client, which must not be made (or dropped)
    // on the runtime's threads. Held to the end: dropping it sends the last spans.
    let traces = telemetry::TraceExport::from_config(&cli.config);
    let _telemetry = telemetry::init(cli.config.log_format, traces.as_ref())?;
    tracing::debug!(config = ?cli.config, "configuration");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Probe(args) => {
            let outcome = probe::run(&args).await;
            std::process::exit(outcome.exit_code());
        }
        Command::Serve => {
            let app = Application::build(cli.config).await?;
            // Printed, not only logged: scripts starting us on port 0 read it.
            println!("taskmaster listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let (pool, embedded) = database(&cli.config).await?;
            db::migrate(&pool, std::time::Duration::from_secs(30)).await?;
            pool.close().await;
            // Dropping it stops the private PostgreSQL, if this run started it.
            drop(embedded);
            println!(
                "database migrated ({} migrations)",
                db::MIGRATOR.iter().count()
            );
            Ok(())
        }
    }
}
