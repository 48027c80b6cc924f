//! `TestApp`: a real server on port 0 over its own fresh PostgreSQL database,
//! with one method per endpoint so tests read like the API.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};
use taskmaster_server::config::{Config, Secret};
use taskmaster_server::startup::Application;
use tokio::sync::oneshot;

/// A command-line tool that scripts/test.sh installs from PyPI into the test
/// tools' Python environment (kubernetes-validate, schemathesis), or the
/// one on PATH when that environment is not there.
pub fn python_test_tool(name: &str) -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-tools/venv/bin")
        .join(name);
    if venv.exists() {
        venv
    } else {
        name.into()
    }
}

/// Where tests create their databases; the test script exports it.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database; returns its URL.
pub async fn create_database() -> (String, String) {
    let name = format!("tm_test_{}", uuid::Uuid::new_v4().simple());
    let admin = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    let mut connection = admin
        .connect()
        .await
        .expect("cannot reach the test PostgreSQL: is it running? (see README)");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut connection)
        .await
        .expect("create test database");
    connection.close().await.ok();
    let url = database_url(&name);
    (name, url)
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let (server, _) = base
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL names a database");
    format!("{server}/{name}{query}")
}

/// Drops a test database, closing whatever still uses it.
pub fn drop_database(name: &str) {
    let name = name.to_owned();
    // Drop runs outside any runtime (or inside one we must not block), so use
    // a short-lived runtime on its own thread.
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            if let Ok(mut connection) = PgConnectOptions::from_str(&admin_url())
                .expect("url")
                .connect()
                .await
            {
                let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut connection)
                    .await;
            }
        });
    })
    .join();
}

pub struct TestApp {
    pub address: String,
    /// `http://…` of the metrics listener, when the config gave it one.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    /// Direct access to the app's database, for checks behind the API.
    pub db: PgPool,
    pub database_url: String,
    /// Set when this app created the database (and so drops it).
    database_name: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for tests: generous rate limits unless a test tightens them.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::defaults();
    config.database_url = Some(Secret::new(database_url));
    config.redis_url = None;
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.login_attempts_per_email_per_minute = 10_000;
    config.login_attempts_per_ip_per_minute = 10_000;
    config.database_max_connections = 10;
    // Receivers in the tests listen on loopback; the SSRF test turns this
    // back off. Jobs are polled and retried quickly so tests need not wait.
    config.webhook_allow_private_addresses = true;
    config.job_poll_ms = 25;
    config.job_retry_base_ms = 50;
    config.job_retry_cap_ms = 400;
    config.web_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    config
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (database_name, database_url) = create_database().await;
        Self::start(Some(database_name), database_url, tweak).await
    }

    /// Another instance on an existing database (which it leaves in place).
    pub async fn spawn_on(database_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::start(None, database_url.to_owned(), tweak).await
    }

    async fn start(
        database_name: Option<String>,
        database_url: String,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        taskmaster_server::telemetry::init_logging(taskmaster_server::config::LogFormat::Text);
        let mut config = test_config(&database_url);
        tweak(&mut config);
        let app = Application::build(config).await.expect("build app");
        let address = format!("http://{}", app.local_addr());
        let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let db = app.db().clone();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop.await;
        }));
        TestApp {
            address,
            metrics_address,
            client: http_builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("client"),
            db,
            database_url,
            database_name,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Signals a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Begins a graceful shutdown and waits for the server to finish.
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request failed");
        Response::read(response).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// Registers a new user with a unique email; returns the user and token.
    pub async fn register(&self, name: &str) -> TestUser {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let response = self
            .request(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(&json!({"email": email, "name": name, "password": PASSWORD})),
                &[],
            )
            .await;
        assert_eq!(response.status, 201, "register: {}", response.body);
        TestUser {
            id: response.body["user"]["id"].as_str().expect("id").to_owned(),
            email,
            token: response.body["token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn create_project(&self, owner: &TestUser, name: &str) -> String {
        let response = self
            .post("/api/v1/projects", &owner.token, json!({ "name": name }))
            .await;
        assert_eq!(response.status, 201, "create project: {}", response.body);
        response.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn add_member(&self, owner: &TestUser, project: &str, member: &TestUser, role: &str) {
        let response = self
            .post(
                &format!("/api/v1/projects/{project}/members"),
                &owner.token,
                json!({"email": member.email, "role": role}),
            )
            .await;
        assert!(
            response.status == 201 || response.status == 200,
            "add member: {} {}",
            response.status,
            response.body
        );
    }

    pub async fn create_task(&self, user: &TestUser, project: &str, body: Value) -> Value {
        let response = self
            .post(
                &format!("/api/v1/projects/{project}/tasks"),
                &user.token,
                body,
            )
            .await;
        assert_eq!(response.status, 201, "create task: {}", response.body);
        response.body
    }

    pub async fn task(&self, user: &TestUser, project: &str, id: i64) -> Response {
        self.get(
            &format!("/api/v1/projects/{project}/tasks/{id}"),
            &user.token,
        )
        .await
    }

    pub async fn patch_task(
        &self,
        user: &TestUser,
        project: &str,
        id: i64,
        body: Value,
    ) -> Response {
        self.patch(
            &format!("/api/v1/projects/{project}/tasks/{id}"),
            &user.token,
            body,
        )
        .await
    }

    /// The project's change log, read straight from the table: (seq, type, task id).
    pub async fn events(&self, project: &str) -> Vec<(i64, String, i64)> {
        sqlx::query_as(
            "select seq, type, (payload->>'id')::bigint from events
              where project_id = $1::uuid order by seq",
        )
        .bind(project)
        .fetch_all(&self.db)
        .await
        .expect("read events")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(name) = &self.database_name {
            drop_database(name);
        }
    }
}

/// An HTTP client builder. reqwest takes the process's TLS provider, which
/// the server installs for itself and tests install here.
pub fn http_builder() -> reqwest::ClientBuilder {
    taskmaster_server::tls::install_default_provider();
    reqwest::Client::builder()
}

pub fn http() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

/// A plain GET, as `reqwest::get` does.
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// Every user `TestApp::register` makes signs in with this password.
pub const PASSWORD: &str = "correct horse battery";

pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub async fn read(response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts the contract's error shape, the status and the code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["error"]["code"], code,
            "unexpected code; body: {}",
            self.text
        );
        let message = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "error without a message: {}",
            self.text
        );
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}
