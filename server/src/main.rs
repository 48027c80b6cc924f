use taskmaster_server::config::{Cli, Command};
use taskmaster_server::startup::{database, shutdown_signal, Application};
use taskmaster_server::{db, telemetry};

// jemalloc returns freed memory to the system and fragments less than the
// system allocator under many connections and bursts of large, short-lived
// buffers (argon2 uses 19 MiB per hash); see docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::from_env_and_args();
    telemetry::init_logging(cli.config.log_format);
    tracing::debug!(config = ?cli.config, "configuration");
    match cli.command.unwrap_or(Command::Serve) {
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
