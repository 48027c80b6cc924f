//! A private PostgreSQL cluster for running without `DATABASE_URL`.
//!
//! The server creates the cluster under `DATA_DIR/postgres` on first start
//! (initdb from the installed PostgreSQL binaries), starts it listening only on
//! a Unix socket inside `DATA_DIR/run` (so it can never clash with another
//! PostgreSQL on the machine), and stops it when the server exits. PostgreSQL
//! refuses to run as root, so under root the cluster belongs to the `postgres`
//! system user that the PostgreSQL packages create.
//!
//! That user then has to get into DATA_DIR, which it cannot when a directory
//! above it is closed to it (any checkout under `/root`, which is mode 0700).
//! We never open up the user's directories; instead the cluster, its socket
//! directory and its log go to `<home of postgres>/taskmaster/<hash of
//! DATA_DIR>` (on Debian `/var/lib/postgresql/taskmaster/…`), and
//! `DATA_DIR/postgres-location` records that directory, so later starts use
//! the same cluster and a person can find it.

use std::fs::DirBuilder;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

const SUPERUSER: &str = "taskmaster";
const DATABASE: &str = "taskmaster";
/// Only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;
/// The account PostgreSQL runs as when we are root.
const SYSTEM_USER: &str = "postgres";
/// The file in DATA_DIR naming the cluster's home when it is not DATA_DIR.
const LOCATION_FILE: &str = "postgres-location";

pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<&'static str>,
    /// Whether this process started the cluster (and so must stop it).
    started_here: bool,
}

/// The directory holding the cluster (`postgres/`), its socket directory
/// (`run/`) and its log (`postgres.log`).
struct Home {
    dir: PathBuf,
    /// Whether `DATA_DIR/postgres-location` named it, i.e. a cluster was made
    /// there before.
    recorded: bool,
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
        let run_as = running_as_root().then_some(SYSTEM_USER);
        let home = cluster_home(&data_dir, run_as)?;
        let cluster_dir = home.dir.join("postgres");
        let socket_dir = home.dir.join("run");
        let log_file = home.dir.join("postgres.log");
        std::fs::create_dir_all(&socket_dir)
            .with_context(|| format!("cannot create {}", socket_dir.display()))?;

        let mut pg = EmbeddedPostgres {
            bin_dir,
            cluster_dir,
            socket_dir,
            run_as,
            started_here: false,
        };
        if let Some(user) = run_as {
            pg.give_to(user, &home.dir, &log_file)?;
            // Fails here, with the reason, rather than in initdb with a bare
            // "Permission denied".
            for (flag, what) in [("-x", "enter"), ("-w", "write to")] {
                if !user_can(user, flag, &home.dir)? {
                    bail!(
                        "the {user} user, which runs the private PostgreSQL, cannot {what} {}",
                        home.dir.display()
                    );
                }
            }
        }
        let has_cluster = pg
            .cluster_dir
            .join("PG_VERSION")
            .try_exists()
            .with_context(|| {
                format!("cannot look for a cluster in {}", pg.cluster_dir.display())
            })?;
        if !has_cluster {
            if home.recorded {
                tracing::warn!(
                    dir = %pg.cluster_dir.display(),
                    "{} names a PostgreSQL cluster that is not there any more; \
                     creating an empty one in its place",
                    data_dir.join(LOCATION_FILE).display()
                );
            } else {
                tracing::info!(dir = %pg.cluster_dir.display(), "creating private PostgreSQL cluster");
            }
            pg.initdb()?;
        }
        pg.write_settings()?;
        if pg.is_running() {
            tracing::info!("adopting the private PostgreSQL cluster that is already running");
        } else {
            tracing::info!("starting private PostgreSQL");
            pg.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some(&log_file))
                .with_context(|| {
                    format!(
                        "private PostgreSQL did not start; see {}",
                        log_file.display()
                    )
                })?;
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

    /// Makes the cluster's files the user's, also after a root-owned copy or
    /// restore of them.
    fn give_to(&self, user: &str, home: &Path, log_file: &Path) -> anyhow::Result<()> {
        chown(user, home)?;
        for path in [&self.socket_dir, &self.cluster_dir, log_file] {
            if path.exists() {
                let mut command = Command::new("chown");
                command.args(["-R", user]).arg(path);
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

/// Where the cluster lives: where `DATA_DIR/postgres-location` says, else in
/// DATA_DIR itself, unless PostgreSQL's user cannot get into DATA_DIR; then in
/// a directory of that user's, which the location file then records.
fn cluster_home(data_dir: &Path, run_as: Option<&str>) -> anyhow::Result<Home> {
    let location_file = data_dir.join(LOCATION_FILE);
    if let Some(dir) = read_location(&location_file)? {
        tracing::info!(
            data_dir = %data_dir.display(),
            cluster = %dir.join("postgres").display(),
            "the private PostgreSQL lives outside DATA_DIR, where {} says",
            location_file.display()
        );
        if let Some(user) = run_as {
            create_private_dir(user, &dir)?;
        }
        return Ok(Home {
            dir,
            recorded: true,
        });
    }
    let in_data_dir = Home {
        dir: data_dir.to_owned(),
        recorded: false,
    };
    let Some(user) = run_as else {
        return Ok(in_data_dir);
    };
    // DATA_DIR itself is given to the user (`give_to`), so what decides is
    // whether it may pass through every directory above DATA_DIR.
    let parent = data_dir.parent().unwrap_or(data_dir);
    if user_can(user, "-x", parent)? {
        return Ok(in_data_dir);
    }

    let digest = Sha256::digest(data_dir.as_os_str().as_bytes());
    let name: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let dir = home_of(user)?.join("taskmaster").join(name);
    let stranded = data_dir.join("postgres");
    if stranded
        .join("PG_VERSION")
        .try_exists()
        .with_context(|| format!("cannot look for a cluster in {}", stranded.display()))?
    {
        // Starting an empty cluster elsewhere would look like lost data.
        bail!(
            "{} holds a PostgreSQL cluster, but the {user} user that has to run it cannot \
             enter {}. Move DATA_DIR to a place the {user} user can reach, or move the \
             cluster to {} and write the line {} into {}",
            stranded.display(),
            parent.display(),
            dir.join("postgres").display(),
            dir.display(),
            location_file.display()
        );
    }
    create_private_dir(user, &dir)?;
    let note = format!(
        "# The private PostgreSQL of this DATA_DIR lives in the directory below\n\
         # (cluster in postgres/, socket in run/, log in postgres.log), because the\n\
         # {user} user that runs it cannot enter {}.\n\
         # Taskmaster reads this file at every start; edit it if you move the cluster.\n\
         {}\n",
        parent.display(),
        dir.display()
    );
    std::fs::write(&location_file, note)
        .with_context(|| format!("cannot write {}", location_file.display()))?;
    tracing::warn!(
        data_dir = %data_dir.display(),
        cluster = %dir.join("postgres").display(),
        "the {user} user cannot enter {}, so the private PostgreSQL lives in {} instead of \
         DATA_DIR; {} records where",
        parent.display(),
        dir.display(),
        location_file.display()
    );
    Ok(Home {
        dir,
        recorded: false,
    })
}

/// The directory named in the location file, if there is one.
fn read_location(file: &Path) -> anyhow::Result<Option<PathBuf>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", file.display()));
        }
    };
    let dir = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map(PathBuf::from)
        .with_context(|| format!("{} names no directory", file.display()))?;
    if !dir.is_absolute() {
        bail!(
            "{} must name an absolute path, not {}",
            file.display(),
            dir.display()
        );
    }
    Ok(Some(dir))
}

/// Creates `dir` and any missing directories above it as `user`'s, mode 0700:
/// only PostgreSQL (and root) has any business in them.
fn create_private_dir(user: &str, dir: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(path) = next {
        if path
            .try_exists()
            .with_context(|| format!("cannot look for {}", path.display()))?
        {
            break;
        }
        missing.push(path);
        next = path.parent();
    }
    for path in missing.into_iter().rev() {
        DirBuilder::new()
            .mode(0o700)
            .create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        chown(user, path)?;
    }
    Ok(())
}

/// Whether `test <flag> <path>` holds for `user`. Asking the kernel as that
/// user counts everything that PostgreSQL will meet: every directory above,
/// groups and ACLs.
fn user_can(user: &str, flag: &str, path: &Path) -> anyhow::Result<bool> {
    let output = Command::new("runuser")
        .args(["-u", user, "--", "test", flag])
        .arg(path)
        .output()
        .context("cannot run runuser")?;
    // `test` answers "no" with status 1 and says nothing; runuser's own
    // failures (no such user, say) come with a message.
    match output.status.code() {
        Some(0) => Ok(true),
        Some(1) if output.stderr.is_empty() => Ok(false),
        _ => bail!(
            "cannot check whether the {user} user can use {}: runuser exited with {}: {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// The home directory of a system user, from the user database.
fn home_of(user: &str) -> anyhow::Result<PathBuf> {
    let output = Command::new("getent")
        .args(["passwd", user])
        .output()
        .context("cannot run getent")?;
    if !output.status.success() {
        bail!("there is no {user} user (getent passwd {user} found nothing)");
    }
    let entry = String::from_utf8_lossy(&output.stdout);
    entry
        .trim_end()
        .split(':')
        .nth(5)
        .filter(|home| home.starts_with('/'))
        .map(PathBuf::from)
        .with_context(|| {
            format!(
                "the {user} user has no home directory: {}",
                entry.trim_end()
            )
        })
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
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
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
pub fn running_as_root() -> bool {
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
