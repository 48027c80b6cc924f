//! The production edge: real nginx (nginx/nginx.conf.template, rendered by
//! nginx/render.sh) over HTTP/2 and TLS, in front of real instances — the
//! `taskmaster` binary as processes, so an instance can be killed like a
//! crashed server — on one database and one Redis.
//!
//! REST goes through `curl --http2`, Socket.IO through the official
//! `socket.io-client`, and routing is read back from nginx's JSON access log.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{create_database, drop_database};
use crate::scale::redis_url;
use crate::sockets::{assert_seqs, Clients, WAIT};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One server process.
pub struct Instance {
    child: Child,
    pub port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Instance {
    /// Starts `taskmaster serve` on `port` with `env` and waits until it
    /// listens.
    pub async fn start(port: u16, env: Vec<(String, String)>, log: PathBuf) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_taskmaster"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the taskmaster binary runs");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (listening, heard) = tokio::sync::oneshot::channel::<()>();
        let mut listening = Some(listening);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
            .expect("instance log");
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            let mut err = BufReader::new(stderr).lines();
            loop {
                let line = tokio::select! {
                    line = out.next_line() => line,
                    line = err.next_line() => line,
                };
                let Ok(Some(line)) = line else { break };
                if line.contains("taskmaster listening on http://") {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                }
                let _ = file.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        tokio::time::timeout(Duration::from_secs(60), heard)
            .await
            .unwrap_or_else(|_| panic!("instance on {port} did not start in time; see {log:?}"))
            .unwrap_or_else(|_| panic!("instance on {port} exited; see {}", read_log(&log)));
        Instance {
            child,
            port,
            env,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the instance runs")
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kill -9`: no drain, sockets cut.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill");
    }

    /// SIGTERM, then waits for the drain to finish.
    pub async fn stop(&mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(45), self.child.wait())
            .await
            .expect("the instance drains within its grace period")
            .unwrap();
    }

    /// The same instance again, on the same port, with `changes` to its
    /// settings (a new release, say).
    pub async fn restart_with(&mut self, changes: &[(&str, String)]) {
        let mut env = self.env.clone();
        for (name, value) in changes {
            env.retain(|(existing, _)| existing != name);
            env.push(((*name).to_owned(), value.clone()));
        }
        *self = Instance::start(self.port, env, self.log.clone()).await;
    }
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    text[start..].to_owned()
}

/// A built web app, as scripts/build-web.sh lays it out: `index.html` (from
/// web/index.html) naming one content-hashed directory of assets, each with
/// brotli and gzip copies. Small stand-ins for the modules, so the tests do
/// not need a wasm build; `split_graph.wasm` plays a lazily loaded module.
pub struct Release {
    pub web_dir: PathBuf,
    pub build: String,
}

pub const LAZY_MODULE: &str = "split_graph.wasm";

impl Release {
    pub fn make(root: &Path, label: &str) -> Release {
        let web_dir = root.join(format!("web-{label}"));
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "app.js",
                format!(
                    "// release {label}\n{}",
                    "export const x = 1;\n".repeat(200)
                )
                .into_bytes(),
            ),
            (
                "app_bg.wasm",
                [
                    b"\0asm\x01\0\0\0".as_slice(),
                    &[7u8; 4096],
                    label.as_bytes(),
                ]
                .concat(),
            ),
            (
                "style.css",
                format!("/* {label} */\n{}", "body { margin: 0 }\n".repeat(100)).into_bytes(),
            ),
            (
                LAZY_MODULE,
                [
                    b"\0asm\x01\0\0\0".as_slice(),
                    &[9u8; 2048],
                    label.as_bytes(),
                ]
                .concat(),
            ),
        ];
        let mut hasher = Sha256::new();
        for (_, content) in &files {
            hasher.update(content);
        }
        let build: String = hasher.finalize()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let bundle = web_dir.join("assets").join(&build);
        std::fs::create_dir_all(&bundle).unwrap();
        for (name, content) in &files {
            std::fs::write(bundle.join(name), content).unwrap();
        }
        let index = std::fs::read_to_string(repo().join("web/index.html"))
            .unwrap()
            .replace("{{JS}}", &format!("{build}/app.js"))
            .replace("{{WASM}}", &format!("{build}/app_bg.wasm"))
            .replace("{{CSS}}", &format!("{build}/style.css"));
        std::fs::write(web_dir.join("index.html"), index).unwrap();
        let mut compressed: Vec<PathBuf> =
            files.iter().map(|(name, _)| bundle.join(name)).collect();
        compressed.push(web_dir.join("index.html"));
        for path in compressed {
            for (tool, args) in [
                ("brotli", &["-q", "11", "-k", "-f"][..]),
                ("gzip", &["-9", "-k", "-f"][..]),
            ] {
                let status = std::process::Command::new(tool)
                    .args(args)
                    .arg(&path)
                    .status()
                    .unwrap_or_else(|error| {
                        panic!("{tool} runs (scripts/test.sh installs it): {error}")
                    });
                assert!(status.success());
            }
        }
        Release { web_dir, build }
    }

    /// This release with the previous one's builds carried in, as a deploy
    /// makes it (scripts/carry-assets.sh).
    pub fn carrying(self, previous: &Release) -> Release {
        let status = std::process::Command::new("bash")
            .arg(repo().join("scripts/carry-assets.sh"))
            .arg(&self.web_dir)
            .arg(&previous.web_dir)
            .status()
            .unwrap();
        assert!(status.success());
        self
    }
}

/// nginx, rendered from the template into a directory of its own.
pub struct Edge {
    pub dir: PathBuf,
    nginx: Child,
    watcher: Option<Child>,
    pub https_port: u16,
    pub http_port: u16,
}

impl Edge {
    pub async fn start(dir: &Path, upstreams: &[String], settings: &[(&str, &str)]) -> Edge {
        let (http_port, https_port) = (free_port(), free_port());
        let rendered = Command::new("bash")
            .arg(repo().join("nginx/render.sh"))
            .arg(dir)
            .env("EDGE_UPSTREAMS", upstreams.join(" "))
            .env("EDGE_HTTP_PORT", http_port.to_string())
            .env("EDGE_HTTPS_PORT", https_port.to_string())
            .env("EDGE_WORKERS", "2")
            .envs(settings.iter().copied())
            .output()
            .await
            .expect("render runs");
        assert!(
            rendered.status.success(),
            "nginx/render.sh: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let nginx = Command::new("nginx")
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .kill_on_drop(true)
            .spawn()
            .expect("nginx runs (scripts/test.sh installs it)");
        let edge = Edge {
            dir: dir.to_owned(),
            nginx,
            watcher: None,
            https_port,
            http_port,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", https_port))
                .await
                .is_ok()
            {
                return edge;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
    }

    /// Runs nginx/watch-readiness.sh for these instances.
    pub fn watch_readiness(&mut self, instances: &[String]) {
        let watcher = Command::new("bash")
            .arg(repo().join("nginx/watch-readiness.sh"))
            .arg(&self.dir)
            .args(instances)
            .env("EDGE_WATCH_INTERVAL", "0.3")
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the watcher runs");
        self.watcher = Some(watcher);
    }

    /// The watcher's current view: instance → "up" | "down".
    pub fn upstream_state(&self) -> HashMap<String, String> {
        std::fs::read_to_string(self.dir.join("upstreams.state"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(instance, state)| (instance.to_owned(), state.to_owned()))
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https_port)
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls/cert.pem")
    }

    /// `curl --http2` against the edge, trusting its certificate.
    pub async fn curl(&self, args: &[&str]) -> Curl {
        curl(&self.cert(), args).await
    }

    /// A JSON request through the edge.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Curl {
        let body = body.map(|body| body.to_string());
        self.request(method, path, token, &[], body.as_deref())
            .await
    }

    /// A request through the edge with extra headers and a raw JSON body
    /// (`@file` reads it from a file, as curl does).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[&str],
        body: Option<&str>,
    ) -> Curl {
        api_request(&self.cert(), &self.url(path), method, token, headers, body).await
    }

    /// The access log so far, one JSON object per request.
    pub async fn access_log(&self) -> Vec<Value> {
        // Reopening makes nginx write out its log buffer.
        let _ = Command::new("nginx")
            .arg("-q")
            .arg("-e")
            .arg(self.dir.join("logs/error.log"))
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", "reopen"])
            .status()
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::read_to_string(self.dir.join("logs/access.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("access log line {line:?}: {error}"))
            })
            .collect()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // SIGKILL would orphan the workers; SIGTERM stops them with it.
        if let Some(pid) = self.nginx.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..50 {
                if matches!(self.nginx.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(watcher) = &mut self.watcher {
            let _ = watcher.start_kill();
        }
    }
}

/// What curl got: the final response's status, protocol, headers and body.
pub struct Curl {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes received for the body, before curl decoded any compression.
    pub downloaded: usize,
}

impl Curl {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{}: not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

/// `curl` for one API call: method, bearer token, extra headers, JSON body.
pub async fn api_request(
    cert: &Path,
    url: &str,
    method: &str,
    token: Option<&str>,
    headers: &[&str],
    body: Option<&str>,
) -> Curl {
    let mut args = vec!["-X", method, url];
    let authorization = token.map(|token| format!("Authorization: Bearer {token}"));
    if let Some(authorization) = &authorization {
        args.extend(["-H", authorization.as_str()]);
    }
    for header in headers {
        args.extend(["-H", header]);
    }
    if let Some(body) = body {
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    curl(cert, &args).await
}

pub async fn curl(cert: &Path, args: &[&str]) -> Curl {
    let scratch = tempfile::tempdir().unwrap();
    let (headers, body) = (scratch.path().join("headers"), scratch.path().join("body"));
    let output = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "20", "--cacert"])
        .arg(cert)
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_version} %{http_code} %{size_download}"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    let written = String::from_utf8_lossy(&output.stdout).to_string();
    let mut written = written.split(' ');
    let (version, status, downloaded) = (
        written.next().unwrap_or_default(),
        written.next().unwrap_or("0"),
        written.next().unwrap_or("0"),
    );
    let raw = std::fs::read_to_string(&headers).unwrap_or_default();
    // With redirects or 100-continue there are several blocks: the last counts.
    let last = raw.trim_end().rsplit("\r\n\r\n").next().unwrap_or_default();
    Curl {
        status: status.trim().parse().unwrap_or(0),
        version: version.to_owned(),
        headers: last
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect(),
        body: std::fs::read(&body).unwrap_or_default(),
        downloaded: downloaded.trim().parse().unwrap_or(0),
    }
}

/// Instances on one database and one Redis (a channel prefix of their own)
/// behind one edge.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub instances: Vec<Instance>,
    pub edge: Edge,
    pub release: Release,
    database_name: String,
}

impl Cluster {
    pub async fn start(count: usize, edge_settings: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let release = Release::make(dir.path(), "a");
        let (database_name, database_url) = create_database().await;
        let env = instance_env(&database_url, &release);
        let mut instances = Vec::new();
        for n in 0..count {
            let log = dir.path().join(format!("instance-{n}.log"));
            instances.push(Instance::start(free_port(), env.clone(), log).await);
        }
        let upstreams: Vec<String> = instances.iter().map(Instance::address).collect();
        let edge = Edge::start(&dir.path().join("edge"), &upstreams, edge_settings).await;
        Cluster {
            dir,
            instances,
            edge,
            release,
            database_name,
        }
    }

    pub fn addresses(&self) -> Vec<String> {
        self.instances.iter().map(Instance::address).collect()
    }

    /// Signs a new user up through the edge; returns their token.
    pub async fn user(&self, name: &str) -> String {
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        let response = self
            .edge
            .api(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"email": email, "name": name, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(
            response.status,
            201,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()["token"].as_str().unwrap().to_owned()
    }

    pub async fn project(&self, token: &str) -> String {
        let response = self
            .edge
            .api(
                "POST",
                "/api/v1/projects",
                Some(token),
                Some(json!({"name": "Edge"})),
            )
            .await;
        assert_eq!(response.status, 201);
        response.json()["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop_database(&self.database_name);
    }
}

pub fn instance_env(database_url: &str, release: &Release) -> Vec<(String, String)> {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url()),
        ("REDIS_PREFIX", prefix),
        ("WEB_DIR", release.web_dir.display().to_string()),
        ("TRUST_FORWARDED_FOR", "true".into()),
        ("LOG_FORMAT", "json".into()),
        ("RUST_LOG", "warn".into()),
        ("DATABASE_MAX_CONNECTIONS", "5".into()),
        ("LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "10000".into()),
        ("LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE", "10000".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The upstream that served each request matching `filter`.
fn upstreams_of(log: &[Value], filter: impl Fn(&Value) -> bool) -> Vec<String> {
    log.iter()
        .filter(|entry| filter(entry))
        .map(|entry| entry["upstream"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn rest_contract_over_http2_and_tls() {
    let cluster = Cluster::start(3, &[]).await;
    let edge = &cluster.edge;

    // Plain HTTP only redirects, keeping the path and query.
    let plain = curl(
        &edge.cert(),
        &[&format!(
            "http://127.0.0.1:{}/projects/x?view=board",
            edge.http_port
        )],
    )
    .await;
    assert_eq!(plain.status, 301);
    assert_eq!(
        plain.header("location"),
        Some(
            format!(
                "https://127.0.0.1:{}/projects/x?view=board",
                edge.https_port
            )
            .as_str()
        )
    );

    let token = cluster.user("ada").await;
    let login_email = {
        let me = edge
            .api("GET", "/api/v1/projects", Some(&token), None)
            .await;
        assert_eq!(me.status, 200);
        assert_eq!(me.version, "2", "HTTP/2 through the edge");
        assert_eq!(
            me.header("strict-transport-security"),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(me.header("x-content-type-options"), Some("nosniff"));
        me.json()
    };
    assert_eq!(login_email["items"], json!([]));

    // The caller's request id reaches the instance and comes back.
    let traced = edge
        .curl(&[&edge.url("/healthz"), "-H", "X-Request-Id: edge-trace-42"])
        .await;
    assert_eq!(traced.status, 200);
    assert_eq!(traced.header("x-request-id"), Some("edge-trace-42"));
    let minted = edge.curl(&[&edge.url("/healthz")]).await;
    assert!(minted
        .header("x-request-id")
        .is_some_and(|id| id.len() >= 16));

    // Projects, tasks, conditional requests, errors: the contract, unchanged.
    let project = cluster.project(&token).await;
    let created = edge
        .api(
            "POST",
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&token),
            Some(json!({"title": "Through the edge", "priority": "high"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let task = created.json();
    assert_eq!(task["title"], "Through the edge");
    let path = format!("/api/v1/projects/{project}/tasks/{}", task["id"]);
    let fetched = edge.api("GET", &path, Some(&token), None).await;
    assert_eq!(fetched.status, 200);
    let etag = fetched.header("etag").unwrap().to_owned();
    let unchanged = edge
        .request(
            "GET",
            &path,
            Some(&token),
            &[&format!("If-None-Match: {etag}")],
            None,
        )
        .await;
    assert_eq!(unchanged.status, 304);
    let stale = edge
        .request(
            "PATCH",
            &path,
            Some(&token),
            &["If-Match: \"999\""],
            Some(r#"{"title":"late"}"#),
        )
        .await;
    stale.assert_error(412, "version_mismatch");
    let list = format!("/api/v1/projects/{project}/tasks");
    let page = edge.api("GET", &list, Some(&token), None).await;
    assert_eq!(page.status, 200);
    let page_etag = page.header("etag").unwrap().to_owned();
    let same_page = edge
        .request(
            "GET",
            &list,
            Some(&token),
            &[&format!("If-None-Match: {page_etag}")],
            None,
        )
        .await;
    assert_eq!(same_page.status, 304);

    edge.request("POST", &list, Some(&token), &[], Some("{not json"))
        .await
        .assert_error(400, "malformed_json");
    edge.api("GET", &list, None, None)
        .await
        .assert_error(401, "unauthorized");
    edge.api("GET", "/api/v1/nothing-here", Some(&token), None)
        .await
        .assert_error(404, "not_found");
    // Metrics are for the private network only.
    assert_eq!(edge.curl(&[&edge.url("/metrics")]).await.status, 404);
    // Too large for the edge: the API's error body, not an HTML page.
    let huge = "x".repeat(9 * 1024 * 1024);
    let body_file = cluster.dir.path().join("huge.json");
    std::fs::write(&body_file, format!("{{\"title\":\"{huge}\"}}")).unwrap();
    let from_file = format!("@{}", body_file.display());
    edge.request("POST", &list, Some(&token), &[], Some(&from_file))
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn sign_in_is_rate_limited_at_the_edge_with_the_api_error_body() {
    let cluster = Cluster::start(
        1,
        &[("EDGE_SIGNIN_RATE", "1r/m"), ("EDGE_SIGNIN_BURST", "2")],
    )
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let response = cluster
            .edge
            .api(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"email": "nobody@example.com", "password": "wrong password"})),
            )
            .await;
        statuses.push(response.status);
        if response.status == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(
        &statuses[..3],
        &[401, 401, 401],
        "{statuses:?}: the burst passes to the instance"
    );
    let limited = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    limited.assert_error(429, "rate_limited");
    assert!(limited
        .header("retry-after")
        .is_some_and(|s| s.parse::<u32>().is_ok()));
    // Only sign-in is this tight: the API answers.
    assert_eq!(
        cluster
            .edge
            .curl(&[&cluster.edge.url("/healthz")])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn compression_cache_headers_and_the_edge_cache() {
    let cluster = Cluster::start(3, &[]).await;
    let edge = &cluster.edge;
    let build = &cluster.release.build;

    // API responses are compressed by the edge, as the client prefers.
    let token = cluster.user("grace").await;
    let project = cluster.project(&token).await;
    for n in 0..15 {
        let created = edge
            .api(
                "POST",
                &format!("/api/v1/projects/{project}/tasks"),
                Some(&token),
                Some(json!({"title": format!("Compressible task number {n}"), "description": "words ".repeat(20)})),
            )
            .await;
        assert_eq!(created.status, 201);
    }
    let list = edge.url(&format!("/api/v1/projects/{project}/tasks"));
    let auth = format!("Authorization: Bearer {token}");
    for (offered, expected) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("gzip, deflate, br", Some("br")),
        ("identity", None),
    ] {
        let response = edge
            .curl(&[
                &list,
                "-H",
                &auth,
                "-H",
                &format!("Accept-Encoding: {offered}"),
            ])
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-encoding"),
            expected,
            "offered {offered}"
        );
        if expected.is_none() {
            assert_eq!(response.json()["items"].as_array().unwrap().len(), 15);
        }
    }
    let decoded = edge.curl(&[&list, "-H", &auth, "--compressed"]).await;
    assert_eq!(decoded.json()["items"].as_array().unwrap().len(), 15);

    // index.html: revalidated on every load, with a validator; sets the route cookie.
    let page = edge
        .curl(&[&edge.url("/projects/anything"), "-H", "Accept-Encoding: br"])
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("content-encoding"), Some("br"));
    let etag = page
        .header("etag")
        .expect("index.html has an ETag")
        .to_owned();
    assert!(page
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("tm_route=")
            && c.contains("Secure")
            && c.contains("HttpOnly")));
    let revalidated = edge
        .curl(&[&edge.url("/"), "-H", &format!("If-None-Match: {etag}")])
        .await;
    assert_eq!(revalidated.status, 304);

    // Hashed assets: immutable for a year, the right type, precompressed,
    // and served by an instance once per encoding, then from the edge cache.
    for (file, content_type) in [
        ("app.js", "text/javascript"),
        ("style.css", "text/css"),
        ("app_bg.wasm", "application/wasm"),
    ] {
        let url = edge.url(&format!("/assets/{build}/{file}"));
        let mut cache = Vec::new();
        for n in 0..6 {
            // A different route cookie each time: any instance could be asked.
            let response = edge
                .curl(&[
                    &url,
                    "-H",
                    "Accept-Encoding: br, gzip",
                    "-H",
                    &format!("Cookie: tm_route=asset-{n}"),
                ])
                .await;
            assert_eq!(response.status, 200, "{file}");
            assert_eq!(
                response.header("cache-control"),
                Some("public, max-age=31536000, immutable"),
                "{file}"
            );
            assert!(
                response
                    .header("content-type")
                    .is_some_and(|t| t.starts_with(content_type)),
                "{file}: {:?}",
                response.header("content-type")
            );
            assert_eq!(response.header("content-encoding"), Some("br"), "{file}");
            assert!(
                response.header("last-modified").is_some() || response.header("etag").is_some(),
                "{file}: a validator"
            );
            assert_eq!(
                response.header("access-control-allow-origin"),
                Some("*"),
                "{file}: loadable from a CDN origin"
            );
            cache.push(
                response
                    .header("x-cache-status")
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        assert_eq!(cache[0], "MISS", "{file}: {cache:?}");
        assert!(
            cache[1..].iter().all(|status| status == "HIT"),
            "{file}: {cache:?}"
        );
        let gzip = edge.curl(&[&url, "-H", "Accept-Encoding: gzip"]).await;
        assert_eq!(gzip.header("content-encoding"), Some("gzip"));
        let plain = edge.curl(&[&url]).await;
        assert_eq!(plain.header("content-encoding"), None);
        assert_eq!(
            plain.body,
            std::fs::read(
                cluster
                    .release
                    .web_dir
                    .join("assets")
                    .join(build)
                    .join(file)
            )
            .unwrap()
        );
    }
    let log = cluster.edge.access_log().await;
    let from_instances = upstreams_of(&log, |entry| {
        entry["uri"].as_str().unwrap().starts_with("/assets/")
            && !entry["upstream"].as_str().unwrap_or_default().is_empty()
    });
    // Three files in three encodings each: nine trips to an instance in all.
    assert_eq!(from_instances.len(), 9, "{from_instances:?}");
    // An unknown asset is a plain 404 (after every instance was asked).
    assert_eq!(
        edge.curl(&[&edge.url(&format!("/assets/{build}/missing.js"))])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn sticky_routing_by_cookie_with_the_address_as_fallback() {
    let cluster = Cluster::start(3, &[]).await;
    let edge = &cluster.edge;
    // A browser's first response carries its route cookie; later ones don't.
    let first = edge.curl(&[&edge.url("/healthz")]).await;
    let cookie = first
        .header("set-cookie")
        .expect("a route cookie")
        .to_owned();
    assert!(
        cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let again = edge
        .curl(&[
            &edge.url("/healthz"),
            "-H",
            &format!("Cookie: {cookie_pair}"),
        ])
        .await;
    assert_eq!(again.header("set-cookie"), None);

    for n in 0..40 {
        for _ in 0..3 {
            let response = edge
                .curl(&[
                    &edge.url("/healthz"),
                    "-H",
                    &format!("Cookie: tm_route=user-{n}"),
                ])
                .await;
            assert_eq!(response.status, 200);
        }
    }
    for _ in 0..10 {
        assert_eq!(edge.curl(&[&edge.url("/healthz")]).await.status, 200);
    }
    let log = edge.access_log().await;
    let mut by_route: HashMap<String, BTreeSet<String>> = HashMap::new();
    for entry in &log {
        if entry["uri"] == "/healthz" {
            by_route
                .entry(entry["route"].as_str().unwrap().to_owned())
                .or_default()
                .insert(entry["upstream"].as_str().unwrap().to_owned());
        }
    }
    for (route, upstreams) in &by_route {
        assert_eq!(upstreams.len(), 1, "route {route} went to {upstreams:?}");
    }
    // Many users behind one address still spread over every instance.
    let used: BTreeSet<&String> = (0..40)
        .flat_map(|n| by_route[&format!("user-{n}")].iter())
        .collect();
    assert_eq!(used.len(), 3, "{used:?}");
    // Without a cookie, the address decides.
    assert_eq!(by_route["127.0.0.1"].len(), 1);
}

#[tokio::test]
async fn socketio_over_websocket_and_long_polling_through_the_edge() {
    let cluster = Cluster::start(3, &[]).await;
    let edge = &cluster.edge;
    let token = cluster.user("linus").await;
    let project = cluster.project(&token).await;
    let cert = edge.cert().display().to_string();
    let mut clients = Clients::start_with_env(&[("NODE_EXTRA_CA_CERTS", &cert)]).await;
    let base = edge.url("");
    for (id, transport, cookie) in [
        ("ws", "websocket", "tm_route=a"),
        ("poll", "polling", "tm_route=b"),
        ("poll2", "polling", "tm_route=c"),
    ] {
        let connected = clients
            .connect_with_headers(
                id,
                &base,
                Some(&token),
                transport,
                json!({"cookie": cookie}),
            )
            .await
            .unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(connected, transport);
        let joined = clients.join(id, &project, None).await;
        assert_eq!(joined["ok"], true, "{joined}");
    }
    for n in 0..5 {
        let created = edge
            .api(
                "POST",
                &format!("/api/v1/projects/{project}/tasks"),
                Some(&token),
                Some(json!({"title": format!("live {n}")})),
            )
            .await;
        assert_eq!(created.status, 201);
    }
    for id in ["ws", "poll", "poll2"] {
        let events = clients.events(id, 5, WAIT).await;
        assert_seqs(&events, 1, 5, id);
    }
    // A write over the socket reaches the REST readers and the others.
    let ack = clients
        .emit(
            "poll",
            "task:create",
            json!({"project_id": project, "task": {"title": "from a socket"}}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    for id in ["ws", "poll", "poll2"] {
        assert_seqs(&clients.events(id, 1, WAIT).await, 6, 6, id);
    }
    // Long-polling sessions stayed on their instance (each poll of a session
    // goes where its handshake went).
    let log = edge.access_log().await;
    for cookie in ["b", "c"] {
        let upstreams: BTreeSet<String> = upstreams_of(&log, |e| {
            e["route"] == cookie && e["uri"].as_str().unwrap().starts_with("/socket.io/")
        })
        .into_iter()
        .collect();
        assert_eq!(upstreams.len(), 1, "{cookie}: {upstreams:?}");
    }
}

/// Engine.IO long-polling spoken by hand through the edge, so the test sees
/// each poll's encoding and size: a batch of events is compressed as the
/// client asks, and decodes to the same packets.
#[tokio::test]
async fn long_polling_batches_are_compressed_at_the_edge() {
    let cluster = Cluster::start(2, &[]).await;
    let edge = &cluster.edge;
    let token = cluster.user("ada").await;
    let project = cluster.project(&token).await;
    let cookie = "Cookie: tm_route=poller";
    let open = edge
        .curl(&[
            &edge.url("/socket.io/?EIO=4&transport=polling"),
            "-H",
            cookie,
        ])
        .await;
    let open = String::from_utf8(open.body).unwrap();
    let handshake: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = handshake["sid"].as_str().unwrap().to_owned();
    poll(
        edge,
        cookie,
        &sid,
        "identity",
        Some(format!("40{}", json!({"token": token}))),
    )
    .await;
    let connected = poll(edge, cookie, &sid, "identity", None).await;
    let connected = String::from_utf8(connected.body).unwrap();
    assert!(
        connected
            .split('\u{1e}')
            .any(|packet| packet.starts_with("40{")),
        "{connected}"
    );
    let join = json!(["join", {"project_id": project}]);
    poll(edge, cookie, &sid, "identity", Some(format!("420{join}"))).await;
    let joined = String::from_utf8(poll(edge, cookie, &sid, "identity", None).await.body).unwrap();
    assert!(joined.contains(r#"430[{"ok":true"#), "{joined}");

    for (round, encoding) in [(0, "br"), (1, "gzip"), (2, "identity")] {
        for n in 0..8 {
            let created = edge
                .api(
                    "POST",
                    &format!("/api/v1/projects/{project}/tasks"),
                    Some(&token),
                    Some(json!({
                        "title": format!("round {round} task {n}: write the importer for tasks.json"),
                        "description": "Parse the Task Master file, map statuses and priorities, keep dependencies. ".repeat(3),
                    })),
                )
                .await;
            assert_eq!(created.status, 201);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let batch = poll(edge, cookie, &sid, encoding, None).await;
        let expected = (encoding != "identity").then_some(encoding);
        assert_eq!(batch.header("content-encoding"), expected, "{encoding}");
        let text = String::from_utf8(batch.body.clone()).unwrap();
        let events: Vec<Value> = text
            .split('\u{1e}')
            .filter_map(|packet| packet.strip_prefix("42"))
            .map(|packet| serde_json::from_str::<Value>(packet).unwrap())
            .filter(|packet| packet[0] == "event")
            .map(|packet| packet[1].clone())
            .collect();
        let first = 1 + 8 * round;
        assert_seqs(&events, first, first + 7, encoding);
        if let Some(encoding) = expected {
            assert!(
                batch.downloaded * 3 < text.len(),
                "{encoding}: {} bytes on the wire for {} of packets",
                batch.downloaded,
                text.len()
            );
            println!(
                "{encoding}: a poll of 8 events, {} bytes, arrived as {} ({:.0} %)",
                text.len(),
                batch.downloaded,
                100.0 * batch.downloaded as f64 / text.len() as f64
            );
        }
    }
}

/// One Engine.IO long-polling request of session `sid` through the edge:
/// a GET (a poll) without `body`, a POST with it.
async fn poll(edge: &Edge, cookie: &str, sid: &str, encoding: &str, body: Option<String>) -> Curl {
    let url = edge.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let accept = format!("Accept-Encoding: {encoding}");
    let mut args = vec![url.as_str(), "-H", cookie, "-H", accept.as_str()];
    if encoding != "identity" {
        args.push("--compressed");
    }
    if let Some(body) = &body {
        args.extend(["-H", "Content-Type: text/plain;charset=UTF-8"]);
        args.extend(["--data-binary", body.as_str()]);
    }
    let response = edge.curl(&args).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    // Answer the server's pings, as a client does, or it drops the session.
    let pinged = response
        .body
        .split(|byte| *byte == 0x1e)
        .any(|packet| packet == b"2");
    if body.is_none() && pinged {
        Box::pin(poll(edge, cookie, sid, "identity", Some("3".into()))).await;
    }
    response
}

/// A killed instance's clients reconnect through the edge to the others and
/// catch up with `since`: every acknowledged write reaches every client,
/// exactly once and in order.
#[tokio::test]
async fn killed_instance_clients_reconnect_elsewhere_and_catch_up() {
    let mut cluster = Cluster::start(3, &[]).await;
    let token = cluster.user("barbara").await;
    let project = cluster.project(&token).await;
    let created = cluster
        .edge
        .api(
            "POST",
            &format!("/api/v1/projects/{project}/tasks"),
            Some(&token),
            Some(json!({"title": "edit me"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let cert = cluster.edge.cert().display().to_string();
    let mut clients = Clients::start_with_env(&[("NODE_EXTRA_CA_CERTS", &cert)]).await;
    let base = cluster.edge.url("");
    let ids: Vec<String> = (0..9).map(|n| format!("c{n}")).collect();
    for id in &ids {
        clients
            .connect_with_headers(
                id,
                &base,
                Some(&token),
                "websocket",
                json!({"cookie": format!("tm_route={id}")}),
            )
            .await
            .unwrap();
        assert_eq!(clients.join(id, &project, Some(1)).await["ok"], true);
    }
    // Which instance holds whom: nginx logs a WebSocket only when it closes,
    // but any request with the same cookie hashes to the same instance.
    let mut held: HashMap<String, Vec<String>> = HashMap::new();
    for id in &ids {
        held.entry(route_of(&cluster.edge, id).await)
            .or_default()
            .push(id.clone());
    }
    let (victim_address, victims) = held
        .iter()
        .max_by_key(|(_, ids)| ids.len())
        .map(|(a, v)| (a.clone(), v.clone()))
        .unwrap();
    let victim = cluster
        .instances
        .iter()
        .position(|i| i.address() == victim_address)
        .unwrap();

    // A writer through the edge, retrying what fails while the instance dies.
    let edge_url = cluster
        .edge
        .url(&format!("/api/v1/projects/{project}/tasks/1"));
    let writer = {
        let (cert, token) = (cluster.edge.cert(), token.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut errors = 0;
            for n in 0..60 {
                let title = format!("edit {n}");
                let body = json!({ "title": title }).to_string();
                loop {
                    let response =
                        api_request(&cert, &edge_url, "PATCH", Some(&token), &[], Some(&body))
                            .await;
                    if response.status == 200 {
                        acknowledged.push(title);
                        break;
                    }
                    errors += 1;
                    assert!(errors < 50, "writes keep failing: {}", response.status);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            (acknowledged, errors)
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.instances[victim].kill().await;

    let mut received: HashMap<String, Vec<Value>> = HashMap::new();
    for id in &victims {
        let disconnected = clients.next_of(id, &["disconnect"], WAIT).await;
        assert!(disconnected.is_some(), "{id} noticed nothing");
        let seen = clients.drain(id, "event");
        let last = seen.last().and_then(|e| e["seq"].as_i64()).unwrap_or(1);
        received.insert(id.clone(), seen);
        // Same cookie: the edge finds the instance gone and picks another.
        clients
            .connect_with_headers(
                id,
                &base,
                Some(&token),
                "websocket",
                json!({"cookie": format!("tm_route={id}")}),
            )
            .await
            .unwrap_or_else(|error| panic!("{id} could not reconnect: {error}"));
        assert_eq!(clients.join(id, &project, Some(last)).await["ok"], true);
    }
    let (acknowledged, errors) = writer.await.unwrap();
    let final_seq = 1 + acknowledged.len() as i64;
    for id in &ids {
        let mut events = received.remove(id).unwrap_or_default();
        let missing = (final_seq - 1) as usize - events.len();
        events.extend(clients.events(id, missing, WAIT).await);
        assert_seqs(&events, 2, final_seq, id);
        let titles: Vec<&str> = events
            .iter()
            .map(|e| e["task"]["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            acknowledged.iter().map(String::as_str).collect::<Vec<_>>(),
            "{id}"
        );
    }
    // Only requests in flight at the kill could fail; the retry took care of them.
    assert!(errors <= 5, "{errors} failed writes");
    for id in &victims {
        let now = route_of(&cluster.edge, id).await;
        assert_ne!(
            now, victim_address,
            "{id} still routed to the dead instance"
        );
    }
}

/// The instance a route cookie leads to now (the last one tried, when the
/// edge had to skip a dead one).
async fn route_of(edge: &Edge, route: &str) -> String {
    let before = edge.access_log().await.len();
    let response = edge
        .curl(&[
            &edge.url("/healthz"),
            "-H",
            &format!("Cookie: tm_route={route}"),
        ])
        .await;
    assert_eq!(response.status, 200);
    let log = edge.access_log().await;
    let tried = upstreams_of(&log[before..], |e| e["route"] == route)
        .pop()
        .unwrap();
    tried.rsplit(", ").next().unwrap().to_owned()
}

/// An instance whose /readyz fails (its database refuses connections) leaves
/// the edge, and comes back when it recovers.
#[tokio::test]
async fn an_unready_instance_leaves_the_edge_and_comes_back() {
    let mut cluster = Cluster::start(2, &[]).await;
    // A third instance on a database of its own, which can fail alone.
    let (sick_name, sick_url) = create_database().await;
    let env = instance_env(&sick_url, &cluster.release);
    let sick = Instance::start(free_port(), env, cluster.dir.path().join("sick.log")).await;
    let sick_address = sick.address();
    cluster.instances.push(sick);
    let addresses = cluster.addresses();
    // The edge knows all three; the watcher decides who gets traffic.
    let edge_dir = cluster.dir.path().join("edge2");
    let mut edge = Edge::start(&edge_dir, &addresses, &[]).await;
    edge.watch_readiness(&addresses);
    let wait_for = |wanted: &'static str, edge: &Edge| {
        let state = edge.upstream_state();
        state.get(&sick_address).map(String::as_str) == Some(wanted) && state.len() == 3
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !wait_for("up", &edge) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher never saw three ready instances"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let admin = crate::helpers::admin_url();
    let sql = |statement: String| {
        let admin = admin.clone();
        async move {
            let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            sqlx::query(&statement)
                .execute(&mut connection)
                .await
                .unwrap();
        }
    };
    sql(format!(
        "alter database {sick_name} allow_connections false"
    ))
    .await;
    sql(format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{sick_name}'"
    ))
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wait_for("down", &edge) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sick instance stayed in: {:?}",
            edge.upstream_state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = edge.access_log().await.len();
    for n in 0..30 {
        let response = edge
            .curl(&[
                &edge.url("/healthz"),
                "-H",
                &format!("Cookie: tm_route=r{n}"),
            ])
            .await;
        assert_eq!(response.status, 200);
    }
    let log = edge.access_log().await;
    let sent = upstreams_of(&log[before..], |e| e["uri"] == "/healthz");
    assert_eq!(sent.len(), 30);
    assert!(
        !sent.contains(&sick_address),
        "the unready instance still got requests: {sent:?}"
    );

    sql(format!("alter database {sick_name} allow_connections true")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wait_for("up", &edge) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance did not come back: {:?}",
            edge.upstream_state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.instances.pop();
    drop_database(&sick_name);
}

/// A page loaded before a rolling deploy still loads its lazily loaded
/// module after every instance runs the new release.
#[tokio::test]
async fn the_previous_release_assets_survive_a_rolling_deploy() {
    let mut cluster = Cluster::start(3, &[]).await;
    let before = cluster.release.build.clone();
    let page = cluster.edge.curl(&[&cluster.edge.url("/")]).await;
    assert!(String::from_utf8_lossy(&page.body).contains(&format!("/assets/{before}/app.js")));

    let next = Release::make(cluster.dir.path(), "b").carrying(&cluster.release);
    assert_ne!(next.build, before);
    for n in 0..cluster.instances.len() {
        cluster.instances[n].stop().await;
        cluster.instances[n]
            .restart_with(&[("WEB_DIR", next.web_dir.display().to_string())])
            .await;
    }
    let page = cluster.edge.curl(&[&cluster.edge.url("/")]).await;
    assert!(String::from_utf8_lossy(&page.body).contains(&format!("/assets/{}/app.js", next.build)));
    // Never fetched before the deploy, so no cache anywhere holds it: a new
    // instance serves it, in each encoding, from the carried build.
    let lazy = cluster.edge.url(&format!("/assets/{before}/{LAZY_MODULE}"));
    for encoding in ["br", "gzip", "identity"] {
        let response = cluster
            .edge
            .curl(&[&lazy, "-H", &format!("Accept-Encoding: {encoding}")])
            .await;
        assert_eq!(response.status, 200, "{encoding}");
        assert_eq!(
            response.header("x-cache-status"),
            Some("MISS"),
            "{encoding}"
        );
    }
    // Each instance serves it itself, not only the edge's cache.
    for instance in &cluster.instances {
        let direct = crate::helpers::get(format!(
            "http://{}/assets/{before}/{LAZY_MODULE}",
            instance.address()
        ))
        .await
        .unwrap();
        assert_eq!(direct.status(), 200, "{}", instance.address());
    }
    let releases = std::fs::read_to_string(next.web_dir.join("assets/RELEASES")).unwrap();
    assert_eq!(releases, format!("{before}\n{}\n", next.build));
}
