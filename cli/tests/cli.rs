//! `tm` end to end: the real binary against a real server on a real
//! PostgreSQL (its own database, port 0), with its configuration in a
//! directory of its own.

use std::process::{Command, Output};
use std::str::FromStr;

use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use taskmaster_server::startup::Application;

struct Server {
    url: String,
    database: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl Server {
    async fn start() -> Server {
        taskmaster_server::tls::install_default_provider();
        let database = format!("tm_cli_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnectOptions::from_str(&admin_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        sqlx::query(&format!("create database {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (base, _) = admin_url()
            .rsplit_once('/')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        let mut config = taskmaster_server::config::Config::defaults();
        config.database_url = Some(taskmaster_server::config::Secret::new(format!(
            "{base}/{database}"
        )));
        config.redis_url = None;
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.database_max_connections = 5;
        let app = Application::build(config).await.expect("server starts");
        let url = format!("http://{}", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Server {
            url,
            database,
            _stop: stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let database = self.database.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnectOptions::from_str(&admin_url())
                    .unwrap()
                    .connect()
                    .await
                {
                    let _ =
                        sqlx::query(&format!("drop database if exists {database} with (force)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

/// `tm` with its own configuration directory.
struct Tm {
    config: tempfile::TempDir,
}

impl Tm {
    fn new() -> Tm {
        Tm {
            config: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tm"));
        command
            .args(args)
            .env("TM_CONFIG_DIR", self.config.path())
            .env_remove("TM_URL")
            .env_remove("TM_TOKEN")
            .env_remove("TM_PROJECT")
            .stdin(std::process::Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs and expects success; its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]).await;
        assert!(
            output.status.success(),
            "tm {args:?} failed ({:?}): {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args).await).unwrap()
    }

    async fn code(&self, args: &[&str]) -> i32 {
        self.run(args, &[]).await.status.code().unwrap()
    }
}

async fn register(server: &Server, email: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", server.url))
        .json(&serde_json::json!({"email": email, "name": "Ada", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_plan_from_sign_in_to_export() {
    let server = Server::start().await;
    register(&server, "ada@example.com").await;
    let tm = Tm::new();

    assert_eq!(tm.code(&["list"]).await, 3, "not signed in yet");
    let login = tm
        .run(
            &["login", "--url", &server.url, "--email", "ada@example.com"],
            &[("TM_PASSWORD", "wrong password")],
        )
        .await;
    assert_eq!(login.status.code(), Some(3), "refused credentials");
    let login = tm
        .run(
            &["login", "--url", &server.url, "--email", "ada@example.com"],
            &[("TM_PASSWORD", "correct horse battery")],
        )
        .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    // The token is kept where only the user can read it.
    let settings = tm.config.path().join("tm.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&settings).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A Task Master file in, and used as the project.
    let file = format!(
        "{}/../files/tests/files/legacy.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let imported = tm.json(&["import", &file, "--name", "Demo plan"]).await;
    let project = imported["projects"][0]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(tm.ok(&["use", &project]).await.contains("Demo plan"));
    let projects = tm.ok(&["projects"]).await;
    assert!(projects.contains(&format!("* {project}")), "{projects}");

    let listed = tm.json(&["list"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 6);
    let table = tm.ok(&["list", "--with-subtasks"]).await;
    assert!(
        table.contains("Build the API") && table.contains("└ Handlers"),
        "{table}"
    );
    let pending = tm.json(&["list", "--status", "pending"]).await;
    assert!(pending
        .as_array()
        .unwrap()
        .iter()
        .all(|task| task["status"] == "pending"));
    assert_eq!(tm.json(&["next"]).await["title"], "Handlers");

    let added = tm
        .json(&[
            "add-task",
            "--title",
            "Write the docs",
            "--priority",
            "high",
            "--dependencies",
            "3",
        ])
        .await;
    let id = added["id"].as_i64().unwrap().to_string();
    assert_eq!(added["dependencies"], serde_json::json!([3]));
    let sub = tm
        .json(&["add-subtask", "--parent", &id, "--title", "Outline"])
        .await;
    assert_eq!(sub["parent_id"].to_string(), id);
    tm.ok(&[
        "update-task",
        "--id",
        &id,
        "--details",
        "Start with the README",
    ])
    .await;
    tm.ok(&["add-dependency", "--id", &id, "--depends-on", "1"])
        .await;
    tm.ok(&["remove-dependency", "--id", &id, "--depends-on", "3"])
        .await;
    tm.ok(&[
        "set-status",
        "--id",
        &format!("{id},3"),
        "--status",
        "in-progress",
    ])
    .await;
    let shown = tm.json(&["show", "--id", &id]).await;
    assert_eq!(shown["details"], "Start with the README");
    assert_eq!(shown["dependencies"], serde_json::json!([1]));
    assert_eq!(shown["status"], "in-progress");
    let shown = tm.ok(&["show", "--id", &id]).await;
    assert!(
        shown.contains("Subtasks:") && shown.contains("Outline"),
        "{shown}"
    );

    // Refusals keep their meaning in the exit code.
    assert_eq!(
        tm.code(&["add-dependency", "--id", &id, "--depends-on", &id])
            .await,
        5,
        "a cycle"
    );
    assert_eq!(tm.code(&["show", "--id", "9999"]).await, 4);
    assert_eq!(
        tm.code(&["set-status", "--id", "1", "--status", "finished"])
            .await,
        2,
        "usage"
    );
    assert_eq!(
        tm.code(&["list", "--url", "http://127.0.0.1:9"]).await,
        6,
        "nobody there"
    );

    // Out as Task Master writes it.
    let exported: Value = serde_json::from_str(&tm.ok(&["export"]).await).unwrap();
    let tasks = exported["tasks"].as_array().unwrap();
    assert_eq!(tasks.last().unwrap()["title"], "Write the docs");
    assert_eq!(tasks.last().unwrap()["subtasks"][0]["title"], "Outline");
    let whole = tm
        .ok(&["export", "--import", imported["id"].as_str().unwrap()])
        .await;
    assert!(whole.contains("\"Write the docs\""));

    tm.ok(&["remove-task", "--id", &id]).await;
    assert_eq!(tm.code(&["show", "--id", &id]).await, 4);

    let completions = tm.ok(&["completions", "bash"]).await;
    assert!(completions.contains("add-dependency"));
    tm.ok(&["logout"]).await;
    assert_eq!(tm.code(&["list"]).await, 3);
}

#[tokio::test]
async fn watch_prints_changes_live_and_an_api_token_drives_it() {
    let server = Server::start().await;
    let user = register(&server, "agent@example.com").await;
    let session = user["token"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let project: Value = client
        .post(format!("{}/api/v1/projects", server.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"name": "Watched"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().unwrap().to_owned();
    let token: Value = client
        .post(format!("{}/api/v1/auth/tokens", server.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"name": "tm", "access": "write", "project_id": project}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = token["secret"].as_str().unwrap().to_owned();

    let tm = Tm::new();
    tm.ok(&["login", "--url", &server.url, "--api-token", &secret])
        .await;
    tm.ok(&["use", &project]).await;
    tm.ok(&["add-task", "--title", "Before watching"]).await;

    // From seq 0: the first task replays, the next two arrive live.
    let watcher = {
        let config = tm.config.path().to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_tm"))
                .args(["watch", "--since", "0", "--count", "3", "--json"])
                .env("TM_CONFIG_DIR", config)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    tm.ok(&["add-task", "--title", "While watching"]).await;
    tm.ok(&["set-status", "--id", "1", "--status", "done"])
        .await;
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), watcher)
        .await
        .expect("watch ends after three events")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let seqs: Vec<i64> = events
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(events[2]["type"], "task.updated");

    // The token is limited to this project: it cannot create another.
    let output = tm
        .run(
            &[
                "import",
                &format!(
                    "{}/../files/tests/files/legacy.json",
                    env!("CARGO_MANIFEST_DIR")
                ),
            ],
            &[],
        )
        .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `tasks.json` over a megabyte is imported by a background job that
/// `tm import` follows to its end: the same answer, the same plan.
#[tokio::test]
async fn a_large_file_imports_in_the_background() {
    let server = Server::start().await;
    register(&server, "ada@example.com").await;
    let tm = Tm::new();
    let login = tm
        .run(
            &["login", "--url", &server.url, "--email", "ada@example.com"],
            &[("TM_PASSWORD", "correct horse battery")],
        )
        .await;
    assert!(login.status.success());
    let details = "Implementation notes. ".repeat(40);
    let tasks: Vec<Value> = (1..=1_500)
        .map(|id| {
            serde_json::json!({"id": id, "title": format!("Task {id}"), "description": "",
            "details": details, "testStrategy": "", "status": "pending", "priority": "medium",
            "dependencies": [], "subtasks": []})
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({ "tasks": tasks })).unwrap();
    assert!(text.len() > 1024 * 1024, "{} bytes", text.len());
    let file = tm.config.path().join("tasks.json");
    std::fs::write(&file, &text).unwrap();

    let output = tm.run(&["import", file.to_str().unwrap()], &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("(1500 tasks)"), "{stdout}");
    let import = stdout
        .split_whitespace()
        .nth(2)
        .expect("imported as <id>")
        .to_owned();

    // It ran as a job, and the import's file comes back whole.
    let database = format!(
        "{}/{}",
        admin_url().rsplit_once('/').unwrap().0,
        server.database
    );
    let mut connection = PgConnectOptions::from_str(&database)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let jobs: Vec<(String, Value)> =
        sqlx::query_as("select state, result from jobs where kind = 'import'")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, "done");
    assert_eq!(jobs[0].1["id"], import.as_str());
    let exported = tm.ok(&["export", "--import", &import]).await;
    assert_eq!(exported.trim_end(), text);
}
