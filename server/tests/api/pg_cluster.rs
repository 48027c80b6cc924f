//! `PgCluster`: a real PostgreSQL primary and a real streaming replica on
//! loopback ports, for integration tests of read-replica routing.
//!
//! Both servers live in one fresh temporary directory (data directories, Unix
//! sockets and logs), listen only on 127.0.0.1 on free ports, and are stopped
//! when the cluster is dropped. PostgreSQL refuses to run as root, so under root
//! (as in CI) the PostgreSQL programs run as the `postgres` system user, who
//! then owns the directory.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use taskmaster_server::embedded_pg::{find_bin_dir, running_as_root};

/// How long any single wait (start, catch-up, visibility) may take.
const WAIT: Duration = Duration::from_secs(60);
/// Pause between two polls while waiting.
const POLL: Duration = Duration::from_millis(50);
/// The superuser `initdb` creates; the URLs connect as this role.
const SUPERUSER: &str = "postgres";
/// The account the PostgreSQL programs run as when we are root.
const SYSTEM_USER: &str = "postgres";
/// The physical replication slot that keeps the primary's WAL for the replica,
/// so it can catch up after `kill_replica` and `restart_replica`.
const SLOT: &str = "pg_cluster_replica";

/// A PostgreSQL primary and a hot-standby replica streaming from it, both on
/// 127.0.0.1. Dropping it stops both servers and removes their files.
pub struct PgCluster {
    /// Holds everything: `primary/`, `replica/`, the sockets and the logs.
    /// Dropped after `Drop::drop` has stopped the servers.
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    /// `Some("postgres")` when we are root and must run the programs as that user.
    run_as: Option<&'static str>,
    primary_port: u16,
    replica_port: u16,
}

impl PgCluster {
    /// initdb a primary in a fresh temp dir (`wal_level=replica`,
    /// `max_wal_senders`, `hot_standby`, `fsync=off`, listening on 127.0.0.1 on
    /// a free port, trust authentication including replication in `pg_hba.conf`),
    /// start it, `pg_basebackup -R` a replica into another dir, start it on
    /// another free port (`hot_standby=on`), and wait until the replica accepts
    /// connections and reports `pg_is_in_recovery() = true`.
    ///
    /// Panics, with the relevant output or log, when any step fails or a wait
    /// exceeds its timeout.
    pub async fn start() -> PgCluster {
        let bin_dir = find_bin_dir().unwrap_or_else(|error| panic!("{error:#}"));
        let run_as = running_as_root().then_some(SYSTEM_USER);
        let dir = tempfile::Builder::new()
            .prefix("pg-cluster-")
            .tempdir_in(std::env::temp_dir())
            .expect("create a temporary directory for the PostgreSQL cluster");
        if let Some(user) = run_as {
            let mut chown = Command::new("chown");
            chown.arg(format!("{user}:")).arg(dir.path());
            run(chown, "give the cluster directory to the postgres user").await;
        }
        let (primary_port, replica_port) = two_free_ports();
        // Built before anything starts, so that a panic below still stops
        // whatever did start (Drop), and removes the files.
        let cluster = PgCluster {
            dir,
            bin_dir,
            run_as,
            primary_port,
            replica_port,
        };
        cluster.init_primary().await;
        cluster
            .pg_ctl_start(&cluster.primary_dir(), &cluster.primary_log())
            .await;
        cluster
            .wait_until_accepting(cluster.primary_port, &cluster.primary_log(), false)
            .await;
        cluster.base_backup_replica().await;
        cluster
            .pg_ctl_start(&cluster.replica_dir(), &cluster.replica_log())
            .await;
        cluster
            .wait_until_accepting(cluster.replica_port, &cluster.replica_log(), true)
            .await;
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>` for the primary.
    pub fn primary_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}",
            self.primary_port
        )
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>` for the replica.
    pub fn replica_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}",
            self.replica_port
        )
    }

    /// Creates a database on the primary and waits until it is visible on the
    /// replica (so connecting to `replica_url(name)` works right away).
    pub async fn create_database(&self, name: &str) {
        let mut primary = self.connect_primary("postgres").await;
        sqlx::query(&format!(
            "create database \"{}\"",
            name.replace('"', "\"\"")
        ))
        .execute(&mut primary)
        .await
        .unwrap_or_else(|error| panic!("create database {name} on the primary: {error}"));
        primary.close().await.ok();

        let mut replica = self.connect_replica("postgres").await;
        let what = format!("database {name} did not appear on the replica");
        poll_until(
            &what,
            || self.logs(),
            async || {
                let visible: bool = sqlx::query_scalar(
                    "select exists (select 1 from pg_database where datname = $1)",
                )
                .bind(name)
                .fetch_one(&mut replica)
                .await
                .expect("look for the new database on the replica");
                visible.then_some(()).ok_or_else(|| "not yet".to_owned())
            },
        )
        .await;
        replica.close().await.ok();
    }

    /// `select pg_wal_replay_pause()` on the replica, then waits until replay
    /// has actually paused: from then on the replica's data stays as it is
    /// until `resume_replay`.
    pub async fn pause_replay(&self) {
        let mut replica = self.connect_replica("postgres").await;
        sqlx::query("select pg_wal_replay_pause()")
            .execute(&mut replica)
            .await
            .expect("pause WAL replay on the replica");
        // PostgreSQL 14+ separates "pause requested" from "paused".
        let version: i32 = sqlx::query_scalar("select current_setting('server_version_num')::int")
            .fetch_one(&mut replica)
            .await
            .expect("read the replica's version");
        if version >= 140_000 {
            poll_until(
                "WAL replay on the replica did not pause",
                || self.logs(),
                async || {
                    let state: String =
                        sqlx::query_scalar("select pg_get_wal_replay_pause_state()")
                            .fetch_one(&mut replica)
                            .await
                            .expect("read the replica's replay pause state");
                    (state == "paused")
                        .then_some(())
                        .ok_or_else(|| format!("state: {state}"))
                },
            )
            .await;
        }
        replica.close().await.ok();
    }

    /// `select pg_wal_replay_resume()` on the replica.
    pub async fn resume_replay(&self) {
        let mut replica = self.connect_replica("postgres").await;
        sqlx::query("select pg_wal_replay_resume()")
            .execute(&mut replica)
            .await
            .expect("resume WAL replay on the replica");
        replica.close().await.ok();
    }

    /// Stops the replica immediately (`pg_ctl stop -m immediate`), as a crash
    /// would; connections to `replica_url` fail until `restart_replica`.
    pub fn kill_replica(&self) {
        let mut command = self.pg_ctl(&self.replica_dir());
        command.args(["stop", "-m", "immediate", "-w", "-t", "60"]);
        let output = command
            .output()
            .unwrap_or_else(|error| panic!("cannot run pg_ctl stop: {error}"));
        if !output.status.success() {
            panic!(
                "pg_ctl stop -m immediate (replica) exited with {}:\n{}{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.logs()
            );
        }
    }

    /// Starts the replica again on the same port (after `kill_replica`) and
    /// waits until it accepts connections and is in recovery again.
    pub async fn restart_replica(&self) {
        self.pg_ctl_start(&self.replica_dir(), &self.replica_log())
            .await;
        self.wait_until_accepting(self.replica_port, &self.replica_log(), true)
            .await;
    }

    /// Waits until the replica has replayed everything the primary has written
    /// so far: `pg_last_wal_replay_lsn()` on the replica reaches the primary's
    /// `pg_current_wal_lsn()` read at the call. Panics after the timeout (for
    /// example while replay is paused) with both positions and the logs.
    pub async fn wait_for_replica_catch_up(&self) {
        let mut primary = self.connect_primary("postgres").await;
        let target: String = sqlx::query_scalar("select pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .expect("read the primary's current WAL position");
        primary.close().await.ok();

        let mut replica = self.connect_replica("postgres").await;
        poll_until(
            "the replica did not catch up with the primary",
            || self.logs(),
            async || {
                let (caught_up, replayed): (bool, Option<String>) = sqlx::query_as(
                    "select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),
                            pg_last_wal_replay_lsn()::text",
                )
                .bind(&target)
                .fetch_one(&mut replica)
                .await
                .expect("read the replica's replay position");
                caught_up.then_some(()).ok_or_else(|| {
                    format!(
                        "primary at {target}, replica replayed up to {}",
                        replayed.as_deref().unwrap_or("nothing")
                    )
                })
            },
        )
        .await;
        replica.close().await.ok();
    }

    fn primary_dir(&self) -> PathBuf {
        self.dir.path().join("primary")
    }

    fn replica_dir(&self) -> PathBuf {
        self.dir.path().join("replica")
    }

    fn primary_log(&self) -> PathBuf {
        self.dir.path().join("primary.log")
    }

    fn replica_log(&self) -> PathBuf {
        self.dir.path().join("replica.log")
    }

    /// initdb, then our settings and a `pg_hba.conf` that trusts loopback,
    /// replication included.
    async fn init_primary(&self) {
        let data = self.primary_dir();
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]);
        run(initdb, "initdb (primary)").await;

        let socket_dir = self.dir.path().display().to_string().replace('\'', "''");
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\n# Written by the tests' PgCluster.\n\
                 listen_addresses = '127.0.0.1'\n\
                 port = {}\n\
                 unix_socket_directories = '{socket_dir}'\n\
                 max_connections = 100\n\
                 shared_buffers = 16MB\n\
                 wal_level = replica\n\
                 max_wal_senders = 10\n\
                 max_replication_slots = 10\n\
                 hot_standby = on\n\
                 fsync = off\n\
                 full_page_writes = off\n\
                 wal_receiver_status_interval = 1s\n\
                 wal_retrieve_retry_interval = 100ms\n",
                self.primary_port
            ),
        );
        // Replaces initdb's file (which keeps its owner and mode).
        std::fs::write(
            data.join("pg_hba.conf"),
            "# Written by the tests' PgCluster: trust everything local.\n\
             local all         all              trust\n\
             host  all         all 127.0.0.1/32 trust\n\
             local replication all              trust\n\
             host  replication all 127.0.0.1/32 trust\n",
        )
        .expect("write the primary's pg_hba.conf");
    }

    /// `pg_basebackup -R` from the running primary, with a replication slot,
    /// then the replica's own port.
    async fn base_backup_replica(&self) {
        let data = self.replica_dir();
        let mut backup = self.command("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.primary_port.to_string())
            .args(["-U", SUPERUSER, "-D"])
            .arg(&data)
            .args([
                "--write-recovery-conf",
                "--wal-method=stream",
                "--create-slot",
                "--slot",
                SLOT,
                "--checkpoint=fast",
                "--no-sync",
            ]);
        run(backup, "pg_basebackup (replica)").await;
        // The copied postgresql.conf carries the primary's port; the last
        // setting wins.
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\n# The replica's own settings.\nport = {}\nhot_standby = on\n",
                self.replica_port
            ),
        );
    }

    /// `pg_ctl start -w`, panicking with the server log when it fails.
    async fn pg_ctl_start(&self, data: &Path, log: &Path) {
        let mut command = self.pg_ctl(data);
        command.arg("-l").arg(log).args(["-w", "-t", "60", "start"]);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("pg_ctl start task")
            .unwrap_or_else(|error| panic!("cannot run pg_ctl start: {error}"));
        if !output.status.success() {
            panic!(
                "pg_ctl start for {} exited with {}:\n{}{}\n{}",
                data.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                read_log(log)
            );
        }
    }

    /// Polls until a connection succeeds and `pg_is_in_recovery()` is as
    /// expected.
    async fn wait_until_accepting(&self, port: u16, log: &Path, in_recovery: bool) {
        let what = format!(
            "PostgreSQL on 127.0.0.1:{port} is not ready (accepting connections, \
             pg_is_in_recovery() = {in_recovery})"
        );
        let logs = || format!("--- {} ---\n{}", log.display(), read_log(log));
        poll_until(&what, logs, async || {
            let outcome = async {
                let mut connection = connect_options(port, "postgres").connect().await?;
                let recovering: bool = sqlx::query_scalar("select pg_is_in_recovery()")
                    .fetch_one(&mut connection)
                    .await?;
                connection.close().await.ok();
                Ok::<bool, sqlx::Error>(recovering)
            }
            .await;
            match outcome {
                Ok(recovering) if recovering == in_recovery => Ok(()),
                Ok(recovering) => Err(format!("pg_is_in_recovery() = {recovering}")),
                Err(error) => Err(error.to_string()),
            }
        })
        .await;
    }

    async fn connect_primary(&self, database: &str) -> PgConnection {
        self.connect(self.primary_port, "primary", database).await
    }

    async fn connect_replica(&self, database: &str) -> PgConnection {
        self.connect(self.replica_port, "replica", database).await
    }

    async fn connect(&self, port: u16, which: &str, database: &str) -> PgConnection {
        match connect_options(port, database).connect().await {
            Ok(connection) => connection,
            Err(error) => panic!(
                "cannot connect to the {which} (127.0.0.1:{port}/{database}): {error}\n{}",
                self.logs()
            ),
        }
    }

    /// Both server logs, for panic messages.
    fn logs(&self) -> String {
        format!(
            "--- primary.log ---\n{}\n--- replica.log ---\n{}",
            read_log(&self.primary_log()),
            read_log(&self.replica_log())
        )
    }

    /// `pg_ctl -D <data>`, as the right user.
    fn pg_ctl(&self, data: &Path) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(data);
        command
    }

    /// A command for one of the PostgreSQL programs, as the right user, run
    /// from the cluster directory (the postgres user may not be able to enter
    /// the test's working directory).
    fn command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for PgCluster {
    /// Stops both servers (`pg_ctl stop -m immediate`); the temporary directory
    /// then removes their files.
    fn drop(&mut self) {
        for data in [self.replica_dir(), self.primary_dir()] {
            if data.join("postmaster.pid").exists() {
                let mut command = self.pg_ctl(&data);
                command.args(["stop", "-m", "immediate", "-w", "-t", "60"]);
                let _ = command.output();
            }
        }
    }
}

fn connect_options(port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username(SUPERUSER)
        .database(database)
        .disable_statement_logging()
}

/// Two distinct free loopback ports: bind port 0 twice, read, release.
fn two_free_ports() -> (u16, u16) {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    let ports = (
        first.local_addr().expect("port").port(),
        second.local_addr().expect("port").port(),
    );
    drop((first, second));
    ports
}

/// Runs a command off the async threads; panics with its output on failure.
async fn run(mut command: Command, what: &str) {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("blocking task")
        .unwrap_or_else(|error| panic!("cannot {what}: {error}"));
    if !output.status.success() {
        panic!(
            "{what} exited with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|error| panic!("append to {}: {error}", path.display()));
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}

/// Polls `check` every [`POLL`] until it returns `Ok`. After [`WAIT`] it
/// panics with `what`, the state `check` last reported, and `logs()`.
async fn poll_until(
    what: &str,
    logs: impl Fn() -> String,
    mut check: impl AsyncFnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let state = match check().await {
            Ok(()) => return,
            Err(state) => state,
        };
        if Instant::now() > deadline {
            panic!("{what} within {WAIT:?} ({state})\n{}", logs());
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn count_rows(url: &str, table: &str) -> i64 {
    let mut connection = PgConnection::connect(url)
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    let count = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("count rows of {table} at {url}: {error}"));
    connection.close().await.ok();
    count
}

#[tokio::test]
async fn a_write_on_the_primary_reaches_the_replica_and_pausing_stops_it() {
    let started = Instant::now();
    let cluster = PgCluster::start().await;
    eprintln!("PgCluster::start took {:?}", started.elapsed());
    cluster.create_database("app").await;
    let primary_url = cluster.primary_url("app");
    let replica_url = cluster.replica_url("app");

    let mut primary = PgConnection::connect(&primary_url)
        .await
        .expect("connect to the primary");
    sqlx::query("create table notes (id bigint primary key, body text not null)")
        .execute(&mut primary)
        .await
        .expect("create table");
    sqlx::query("insert into notes values (1, 'first')")
        .execute(&mut primary)
        .await
        .expect("insert the first row");
    cluster.wait_for_replica_catch_up().await;
    let mut replica = PgConnection::connect(&replica_url)
        .await
        .expect("connect to the replica");
    let body: String = sqlx::query_scalar("select body from notes where id = 1")
        .fetch_one(&mut replica)
        .await
        .expect("read the first row on the replica");
    assert_eq!(body, "first");
    let read_only: String = sqlx::query_scalar("show transaction_read_only")
        .fetch_one(&mut replica)
        .await
        .expect("read transaction_read_only");
    assert_eq!(read_only, "on", "the replica is a read-only hot standby");
    replica.close().await.ok();

    cluster.pause_replay().await;
    sqlx::query("insert into notes values (2, 'second')")
        .execute(&mut primary)
        .await
        .expect("insert the second row");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_rows(&replica_url, "notes").await,
        1,
        "the replica must not replay while paused"
    );
    assert_eq!(count_rows(&primary_url, "notes").await, 2);
    cluster.resume_replay().await;
    cluster.wait_for_replica_catch_up().await;
    assert_eq!(count_rows(&replica_url, "notes").await, 2);

    cluster.kill_replica();
    let refused = PgConnection::connect(&replica_url).await;
    assert!(refused.is_err(), "connecting to a killed replica must fail");
    sqlx::query("insert into notes values (3, 'third')")
        .execute(&mut primary)
        .await
        .expect("insert while the replica is down");
    cluster.restart_replica().await;
    cluster.wait_for_replica_catch_up().await;
    assert_eq!(
        count_rows(&replica_url, "notes").await,
        3,
        "the restarted replica catches up on what it missed"
    );
    primary.close().await.ok();
}
