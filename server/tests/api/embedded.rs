//! The binary with no `DATABASE_URL`: it creates, runs and stops its own
//! PostgreSQL under `DATA_DIR`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Server {
    child: Child,
    address: String,
}

async fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskmaster"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("DATA_DIR", data_dir)
        .env("BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start taskmaster");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("taskmaster listening on ") {
                return address.to_owned();
            }
        }
        panic!("taskmaster exited before listening");
    })
    .await
    .expect("taskmaster did not start in time");
    Server { child, address }
}

/// Signs up `email` with the password every test here uses; returns the status.
async fn sign_up(client: &reqwest::Client, server: &Server, email: &str, name: &str) -> u16 {
    let body = json!({"email": email, "name": name, "password": PASSWORD});
    post(client, server, "/api/v1/auth/register", body).await
}

/// Signs in as `email`; returns the status.
async fn sign_in(client: &reqwest::Client, server: &Server, email: &str) -> u16 {
    let body = json!({"email": email, "password": PASSWORD});
    post(client, server, "/api/v1/auth/login", body).await
}

const PASSWORD: &str = "12345678";

async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    client
        .post(format!("{}{path}", server.address))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn stop(mut server: Server) {
    let pid = server.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), server.child.wait())
        .await
        .expect("taskmaster did not stop after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn starts_its_own_postgres_from_an_empty_data_dir_and_stops_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = crate::helpers::http();

    let server = start(data_dir.path()).await;
    let ready = client
        .get(format!("{}/readyz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        sign_up(&client, &server, "solo@example.com", "Solo").await,
        201
    );
    let cluster = data_dir.path().join("postgres");
    assert!(
        cluster.join("PG_VERSION").exists(),
        "cluster created under DATA_DIR"
    );
    assert!(cluster.join("postmaster.pid").exists(), "cluster running");
    stop(server).await;
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "PostgreSQL stopped with the server"
    );

    // A second start reuses the cluster and its data.
    let server = start(data_dir.path()).await;
    assert_eq!(sign_in(&client, &server, "solo@example.com").await, 200);
    stop(server).await;
}

/// The directory that `DATA_DIR/postgres-location` names, if the server put
/// the cluster outside DATA_DIR.
fn recorded_home(data_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(data_dir.join("postgres-location")).ok()?;
    text.lines()
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map(PathBuf::from)
}

/// Removes the cluster kept outside DATA_DIR, also when the test fails. A
/// postmaster orphaned by a failed test shuts itself down within a minute of
/// its lock file disappearing.
struct RemoveRecordedCluster<'a>(&'a Path);

impl Drop for RemoveRecordedCluster<'_> {
    fn drop(&mut self) {
        if let Some(home) = recorded_home(self.0) {
            if let Err(error) = std::fs::remove_dir_all(&home) {
                eprintln!("could not remove {}: {error}", home.display());
            }
            // The parent holds the clusters of every such DATA_DIR: only
            // remove it when this test's was the last.
            if let Some(parent) = home.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

fn running_as_root() -> bool {
    let output = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Under root PostgreSQL runs as `postgres`, which cannot enter a 0700
/// directory of root's (any checkout under /root). The cluster must then live
/// where `postgres` can reach it, and later starts must find it again.
#[tokio::test]
async fn as_root_keeps_the_cluster_elsewhere_when_postgres_cannot_enter_data_dir() {
    if !running_as_root() {
        eprintln!("skipped: only root hands PostgreSQL to the postgres user");
        return;
    }
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = closed.path().join("nested/data");
    let _cleanup = RemoveRecordedCluster(&data_dir);
    let client = crate::helpers::http();

    let server = start(&data_dir).await;
    assert_eq!(
        sign_up(&client, &server, "root@example.com", "Root").await,
        201
    );
    let home = recorded_home(&data_dir).expect("DATA_DIR/postgres-location names the cluster");
    assert!(
        !home.starts_with(closed.path()),
        "cluster outside the closed directory: {}",
        home.display()
    );
    let cluster = home.join("postgres");
    assert!(cluster.join("PG_VERSION").exists(), "cluster created there");
    assert!(cluster.join("postmaster.pid").exists(), "cluster running");
    assert!(
        !data_dir.join("postgres").exists(),
        "no cluster in DATA_DIR"
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(closed.path()),
        0o700,
        "the closed directory stays closed"
    );
    assert_eq!(
        mode(&home),
        0o700,
        "only postgres may enter the cluster's home"
    );
    stop(server).await;
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "PostgreSQL stopped with the server"
    );

    // A second start finds the same cluster and its data.
    let server = start(&data_dir).await;
    assert_eq!(recorded_home(&data_dir), Some(home));
    assert_eq!(sign_in(&client, &server, "root@example.com").await, 200);
    stop(server).await;
}

#[tokio::test]
async fn migrate_subcommand_prepares_the_database_and_exits() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_taskmaster"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("DATA_DIR", data_dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("database migrated"));
    assert!(
        !data_dir.path().join("postgres/postmaster.pid").exists(),
        "stopped after migrating"
    );
}
