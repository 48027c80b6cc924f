//! A private PostgreSQL cluster for running without `DATABASE_URL`.
//!
//! The server creates the cluster under `DATA_DIR/postgres` on first start
//! (initdb from the installed PostgreSQL binaries), starts it listening only on
//! a Unix socket inside `DATA_DIR/run` (so it can never clash with another
//! PostgreSQL on the machine), and stops it when the server exits. PostgreSQL
//! refuses to run as root, so under root the cluster belongs to the `postgres`
//! system user that the PostgreSQL packages create.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

const SUPERUSER: &str = "taskmaster";
const DATABASE: &str = "taskmaster";
/// Only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;
/// The account PostgreSQL runs as when we are root.
const SYSTEM_USER: &str = "postgres";

pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<&'static str>,
    /// Whether this process started the cluster (and so must stop it).
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster if needed and starts it (or adopts one that a
    /// previous, crashed run left running).
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir()?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create DATA_DIR {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("cannot resolve DATA_DIR {}", data_dir.display()))?;
        let cluster_dir = data_dir.join("postgres");
        let socket_dir = data_dir.join("run");
        std::fs::create_dir_all(&socket_dir)?;
        let run_as = running_as_root().then_some(SYSTEM_USER);

        let mut pg = EmbeddedPostgres {
            bin_dir,
            cluster_dir,
            socket_dir,
            run_as,
            started_here: false,
        };
        if let Some(user) = run_as {
            pg.give_to(user, &data_dir)?;
        }
        if !pg.cluster_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %pg.cluster_dir.display(), "creating private PostgreSQL cluster");
            pg.initdb()?;
        }
        pg.write_settings()?;
        if pg.is_running() {
            tracing::info!("adopting the private PostgreSQL cluster that is already running");
        } else {
            tracing::info!("starting private PostgreSQL");
            pg.pg_ctl(
                &["start", "-w", "-t", "60", "-l"],
                Some(&data_dir.join("postgres.log")),
            )
            .context("private PostgreSQL did not start; see postgres.log in DATA_DIR")?;
            pg.started_here = true;
        }
        pg.ensure_database().await?;
        Ok(pg)
    }

    /// Options to connect to the application database of this cluster.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username(SUPERUSER)
            .database(DATABASE)
    }

    /// Stops the cluster if this process started it. Called on shutdown;
    /// `Drop` is the fallback for early exits.
    pub fn stop(&mut self) {
        if !self.started_here {
            return;
        }
        self.started_here = false;
        tracing::info!("stopping private PostgreSQL");
        if let Err(error) = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"], None) {
            tracing::error!(
                error = format!("{error:#}"),
                "could not stop private PostgreSQL"
            );
        }
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let mut command = self.command("initdb");
        command.arg("-D").arg(&self.cluster_dir).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ]);
        run(command).context("initdb failed")
    }

    /// Settings we own, rewritten at every start so a moved DATA_DIR still works.
    fn write_settings(&self) -> anyhow::Result<()> {
        let conf = self.cluster_dir.join("postgresql.conf");
        let include = "include_if_exists = 'taskmaster.conf'";
        let current = std::fs::read_to_string(&conf).context("cannot read postgresql.conf")?;
        if !current.contains(include) {
            std::fs::write(&conf, format!("{current}\n{include}\n"))?;
        }
        let settings = format!(
            "# Written by taskmaster at every start.\n\
             listen_addresses = ''\n\
             port = {SOCKET_PORT}\n\
             unix_socket_directories = '{}'\n\
             max_connections = 100\n",
            self.socket_dir.display().to_string().replace('\'', "''")
        );
        let path = self.cluster_dir.join("taskmaster.conf");
        std::fs::write(&path, settings)?;
        if let Some(user) = self.run_as {
            chown(user, &path)?;
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.cluster_dir)
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    }

    fn pg_ctl(&self, args: &[&str], log_file: Option<&Path>) -> anyhow::Result<()> {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(&self.cluster_dir).args(args);
        if let Some(log_file) = log_file {
            command.arg(log_file);
        }
        run(command)
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        let mut admin = self
            .connect_options()
            .database("postgres")
            .connect()
            .await
            .context("cannot connect to private PostgreSQL")?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            sqlx::query(&format!("create database {DATABASE}"))
                .execute(&mut admin)
                .await?;
        }
        admin.close().await?;
        Ok(())
    }

    /// A command for one of the PostgreSQL binaries, as the right user.
    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(binary);
                command
            }
            None => Command::new(binary),
        }
    }

    fn give_to(&self, user: &str, data_dir: &Path) -> anyhow::Result<()> {
        chown(user, data_dir)?;
        for dir in [&self.socket_dir, &self.cluster_dir] {
            if dir.exists() {
                let mut command = Command::new("chown");
                command.args(["-R", user]).arg(dir);
                run(command)?;
            }
        }
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chown(user: &str, path: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("chown");
    command.arg(user).arg(path);
    run(command).with_context(|| format!("cannot give {} to user {user}", path.display()))
}

fn run(mut command: Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} exited with {}: {}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Where `initdb` and `pg_ctl` live: `PG_BIN_DIR`, the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian), or the `PATH`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN_DIR={} does not contain initdb and pg_ctl",
            dir.display()
        );
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_tools(dir))
    {
        return Ok(dir);
    }
    bail!(
        "no DATABASE_URL is set and the PostgreSQL server programs (initdb, pg_ctl) are not \
         installed, so the private database cannot start. Install the Debian package \
         `postgresql` (apt-get install -y postgresql), or set DATABASE_URL to an existing database."
    )
}

/// Whether the effective user is root, read from `/proc/self/status`
/// (`Uid: real effective saved fs`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
