//! The web app: how the server serves it, its real-user monitoring endpoint,
//! and end-to-end scenarios in headless Chromium (`web/e2e/run.mjs`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::{TestApp, TestUser};

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

fn assert_web_app_built() {
    assert!(
        web_dir().join("dist/index.html").is_file(),
        "the web app is not built: run scripts/build-web.sh (scripts/test.sh does)"
    );
    assert!(
        web_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in web (scripts/build-web.sh does)"
    );
}

/// Screenshots land here, one folder per scenario.
fn artifacts(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e-artifacts")
        .join(scenario)
}

/// One scenario of `web/e2e/run.mjs`, running in its own Chromium.
struct Scenario {
    node: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// Longest a scenario may take between two messages.
const SCENARIO_STEP: Duration = Duration::from_secs(120);

impl Scenario {
    fn start(name: &str, mut args: Value) -> Scenario {
        assert_web_app_built();
        args["artifacts"] = json!(artifacts(name));
        let mut node = Command::new("node")
            .arg("e2e/run.mjs")
            .arg(name)
            .arg(args.to_string())
            .current_dir(web_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (scripts/test.sh installs it)");
        let stdin = node.stdin.take().expect("stdin");
        let lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
        Scenario { node, stdin, lines }
    }

    /// The next message: a step the scenario waits on, or its result.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(SCENARIO_STEP, self.lines.next_line())
            .await
            .expect("the browser scenario stalled")
            .expect("read the scenario's output");
        match line {
            Some(line) => serde_json::from_str(&line).expect("a JSON line"),
            None => {
                let status = self.node.wait().await.expect("scenario exit");
                panic!("the browser scenario failed ({status}); its reason is above");
            }
        }
    }

    async fn expect_step(&mut self, name: &str) {
        let message = self.next().await;
        assert_eq!(message["step"], name, "unexpected message {message}");
    }

    async fn go_on(&mut self) {
        self.stdin
            .write_all(b"{}\n")
            .await
            .expect("answer the scenario");
    }

    /// The scenario's `stop_server` step (the server really stops), then its
    /// `start_server_and_change` step: a new server on the same address and
    /// database, returned for the test to change things on before
    /// [`Scenario::go_on`]. `app` stays alive: its database is the new
    /// server's.
    async fn restart_server(&mut self, app: &mut TestApp) -> TestApp {
        let bind: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
        self.expect_step("stop_server").await;
        app.shut_down().await.unwrap();
        self.go_on().await;
        self.expect_step("start_server_and_change").await;
        TestApp::spawn_on(&app.database_url, |config| config.bind = bind).await
    }

    async fn result(mut self) -> Value {
        let message = self.next().await;
        let status = self.node.wait().await.expect("scenario exit");
        assert!(status.success(), "scenario exited with {status}");
        message["result"].clone()
    }
}

fn browser_user(user: &TestUser, name: &str) -> Value {
    json!({ "id": user.id, "email": user.email, "password": crate::helpers::PASSWORD, "name": name })
}

/// A scenario on one project, with the browsers signed in as `users`.
fn on_project(name: &str, app: &TestApp, project: &str, users: &[(&TestUser, &str)]) -> Scenario {
    let users: Vec<Value> = users
        .iter()
        .map(|(user, name)| browser_user(user, name))
        .collect();
    Scenario::start(
        name,
        json!({ "base": app.address, "project": project, "users": users }),
    )
}

#[tokio::test]
async fn serves_the_app_with_hashed_immutable_assets_and_a_fresh_index() {
    assert_web_app_built();
    let app = TestApp::spawn().await;
    let index = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = index.text().await.unwrap();

    // A page address the app routes on the client gets the same document.
    let deep = app
        .client
        .get(app.url("/projects/abc/tasks/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert_eq!(deep.text().await.unwrap(), html);

    let wasm = html
        .split('"')
        .find(|part| part.starts_with("/assets/") && part.ends_with("/app_bg.wasm"))
        .expect("index.html names the wasm in the build's hashed directory");
    let asset = app
        .client
        .get(app.url(wasm))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["content-encoding"], "br");
    assert_eq!(asset.headers()["content-type"], "application/wasm");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // The service worker: revalidated like the page, and it precaches this
    // build.
    let worker = app.client.get(app.url("/sw.js")).send().await.unwrap();
    assert_eq!(worker.status(), 200);
    assert_eq!(worker.headers()["cache-control"], "no-cache");
    assert!(worker.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let worker = worker.text().await.unwrap();
    assert!(worker.contains(&format!("\"{wasm}\"")), "{worker}");
    let gzip = app
        .client
        .get(app.url(wasm))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");

    let missing = app
        .client
        .get(app.url("/assets/app-0000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let api = app
        .client
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
}

/// The `Cookie` header of a browser that signed in as `user`.
async fn session_cookies(app: &TestApp, user: &TestUser) -> String {
    let answer = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": user.email, "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn the_first_paint_draws_the_page_before_the_app_which_takes_over_in_place() {
    assert_web_app_built();
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&ada, "Launch plan").await;
    app.create_task(
        &ada,
        &project,
        json!({
            "title": "<img src=x onerror=\"window.__pwned = 1\">",
            "description": "Use **Redis** first.\n\n<script>window.__pwned = 2</script>",
        }),
    )
    .await;
    for number in 2..=30 {
        let title = format!("Task number {number}");
        app.create_task(&ada, &project, json!({ "title": title }))
            .await;
    }
    let board = app.url(&format!("/projects/{project}"));

    // Over HTTP: a member's page has the board in it, private to them and
    // compressed; anyone else gets the plain page.
    let cookies = session_cookies(&app, &ada).await;
    let compressed = app
        .client
        .get(&board)
        .header("cookie", &cookies)
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "br");
    let page = app
        .client
        .get(&board)
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "private, no-cache");
    assert_eq!(page.headers()["x-first-paint"], "1");
    assert!(page.headers()["vary"].to_str().unwrap().contains("cookie"));
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("'sha256-"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<div id=\"shell\" class=\"first-paint\" inert>"),
        "{html}"
    );
    assert!(html.contains("Launch plan") && html.contains("Task number 30"));
    assert!(
        html.contains("&lt;img src=x") && !html.contains("<img"),
        "the title is text: {html}"
    );
    let plain = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stranger = session_cookies(&app, &bob).await;
    for (cookie, who) in [
        (stranger.as_str(), "a non-member"),
        ("", "nobody signed in"),
    ] {
        let page = app
            .client
            .get(&board)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert!(page.headers().get("x-first-paint").is_none(), "{who}");
        assert_eq!(page.headers()["cache-control"], "no-cache", "{who}");
        assert_eq!(page.text().await.unwrap(), plain, "{who}");
    }

    let result = on_project("firstPaint", &app, &project, &[(&ada, "ada")])
        .result()
        .await;
    let board = &result["board"];
    assert_eq!(board["inert"], true, "{result}");
    assert_eq!(board["name"], "Launch plan", "{result}");
    assert_eq!(board["who"], "ada", "{result}");
    let titles = board["titles"].as_array().unwrap();
    assert_eq!(titles.len(), 30, "{result}");
    assert_eq!(titles[0], "<img src=x onerror=\"window.__pwned = 1\">");
    assert_eq!(titles[29], "Task number 30");
    let task = &result["task"];
    assert_eq!(task["title"], "<img src=x onerror=\"window.__pwned = 1\">");
    assert_eq!(task["strong"], json!(["Redis"]), "{result}");
    assert!(task["markdownText"]
        .as_str()
        .unwrap()
        .contains("<script>window.__pwned = 2</script>"));
    assert_eq!(result["signIn"]["inert"], true, "{result}");
    for screen in ["board", "task", "signIn"] {
        assert_eq!(
            (&result[screen]["images"], &result[screen]["scripts"]),
            (&json!(0), &json!(0)),
            "no markup from a task reached the page: {result}"
        );
        assert_eq!(result[screen]["pwned"], Value::Null, "{result}");
        assert_eq!(
            result[format!("{screen}Moved")],
            json!([]),
            "the hand-over moved nothing on the {screen} screen"
        );
        // No shift anyone could see: a hand-over that moved the page would
        // score ten times this or more.
        let shift = result[format!("{screen}Shift")].as_f64().unwrap();
        assert!(shift < 0.001, "the {screen} screen shifted: {result}");
    }
    assert_eq!(result["inertClickStayed"], true, "{result}");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
}

#[tokio::test]
async fn browser_timings_become_prometheus_histograms() {
    let app = TestApp::spawn().await;
    let report = json!({ "metrics": [
        { "name": "lcp", "value": 812.5 }, { "name": "fcp", "value": 301.0 },
        { "name": "cls", "value": 0.02 }, { "name": "inp", "value": 48.0 },
        { "name": "board_ready", "value": 640.0 }
    ]});
    let response = app
        .client
        .post(app.url("/api/v1/rum"))
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("web_vitals_seconds_bucket{metric=\"lcp\",le=\"1\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("web_vitals_seconds_count{metric=\"board_ready\"}"));
    assert!(metrics.contains("web_vitals_cls_bucket{le=\"0.05\"}"));

    for (bad, code) in [
        (
            json!({ "metrics": [{ "name": "made_up", "value": 1 }] }),
            422,
        ),
        (json!({ "metrics": [{ "name": "lcp", "value": -5 }] }), 422),
        (
            json!({ "metrics": [{ "name": "lcp", "value": "soon" }] }),
            400,
        ),
        (
            json!({ "metrics": [{ "name": "lcp", "value": 1 }], "extra": 1 }),
            422,
        ),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/rum"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code, "{bad}");
    }
}

#[tokio::test]
async fn sign_up_create_a_project_and_a_task_in_the_browser() {
    let app = TestApp::spawn().await;
    let invited = app.register("grace").await;
    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4());
    let scenario = Scenario::start(
        "signup",
        json!({ "base": app.address, "email": email, "inviteEmail": invited.email }),
    );
    let result = scenario.result().await;
    assert_eq!(result["projects"], json!(["Launch plan"]));
    assert!(result["url"].as_str().unwrap().ends_with("/tasks/1"));
    assert_eq!(result["saved"]["priority"], "high");
    assert_eq!(
        result["saved"]["details"],
        "Two paragraphs and a link to the demo."
    );
    // The session lived in an HttpOnly, Secure, SameSite=Strict cookie that
    // the page could not read; writes needed the CSRF value; the page's
    // policy kept an injected script from running, and nothing of ours broke it.
    assert_eq!(
        result["session"],
        json!({"httpOnly": true, "secure": true, "sameSite": "Strict", "name": "__Host-tm_session"}),
        "{result}"
    );
    assert_eq!(result["tokenVisibleToPage"], false, "{result}");
    assert_eq!(result["csrfVisibleToPage"], true, "{result}");
    assert_eq!(result["forged"], 403, "{result}");
    assert_eq!(result["injectedRan"], false, "{result}");
    let violations = result["policyViolations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "only the injected script: {result}");
    assert!(
        violations[0].as_str().unwrap().starts_with("script-src"),
        "{result}"
    );
    // Signing out cleared the cookies, and the session is over.
    assert_eq!(result["cookiesAfterSignOut"], json!([]), "{result}");
    assert_eq!(result["meAfterSignOut"], 401, "{result}");
    assert_eq!(
        result["taskModuleBeforeOpening"], true,
        "the task page's code, a module of its own, is prefetched while the board is idle"
    );
    eprintln!("opening the first task took {} ms", result["openTaskMs"]);
    // The invitation reached the server: Grace sees the project.
    let projects = app.get("/api/v1/projects", &invited.token).await;
    assert_eq!(projects.body["items"][0]["name"], "Launch plan");
    let project = projects.body["items"][0]["id"].as_str().unwrap().to_owned();
    let members = app
        .get(
            &format!("/api/v1/projects/{project}/members"),
            &invited.token,
        )
        .await;
    let roles: Vec<&str> = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"viewer"), "{roles:?}");
    let subtask = app.task(&invited, &project, 2).await;
    assert_eq!(subtask.body["parent_id"], 1);
}

#[tokio::test]
async fn a_change_in_one_browser_shows_in_another_within_a_second() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&alice, "Shared").await;
    app.add_member(&alice, &project, &bob, "editor").await;
    app.create_task(&alice, &project, json!({ "title": "First" }))
        .await;
    app.create_task(&alice, &project, json!({ "title": "Second" }))
        .await;
    let scenario = on_project(
        "live",
        &app,
        &project,
        &[(&alice, "Alice Adams"), (&bob, "Bob Brown")],
    );
    let result = scenario.result().await;
    assert!(result["statusMs"].as_u64().unwrap() <= 1000, "{result}");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
    assert!(result["url"]
        .as_str()
        .unwrap()
        .contains("status=in-progress"));
    let task = app.task(&alice, &project, 1).await;
    assert_eq!(task.body["status"], "in-progress");
}

#[tokio::test]
async fn markdown_in_a_task_renders_formatted_and_inert() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let project = app.create_project(&ada, "Notes").await;
    let details = "# Plan\n\nUse **Redis** first.\n\n- cache\n- measure\n\n\
        <script>window.__pwned = 1</script>\n\n<img src=x onerror=\"window.__pwned = 2\">\n\n\
        [docs](https://example.com/docs) [trap](javascript:window.__pwned=3)\n\
        <info added on 2025-05-25T10:24:59.806Z>\nDone: **all green**.\n</info added on 2025-05-25T10:24:59.806Z>\n";
    app.create_task(
        &ada,
        &project,
        json!({ "title": "Cache", "details": details }),
    )
    .await;
    let result = on_project("markdown", &app, &project, &[(&ada, "Ada")])
        .result()
        .await;
    assert_eq!(result["headings"], json!(["Plan"]), "{result}");
    assert_eq!(result["strong"], json!(["Redis", "all green"]), "{result}");
    assert_eq!(result["items"], 2, "{result}");
    assert_eq!(
        result["pwned"],
        Value::Null,
        "nothing in the text ran: {result}"
    );
    assert_eq!(
        (&result["scripts"], &result["images"], &result["handlers"]),
        (&json!(0), &json!(0), &json!(0)),
        "no markup from the text reached the page: {result}"
    );
    assert_eq!(
        result["links"],
        json!(["https://example.com/docs"]),
        "{result}"
    );
    let text = result["text"].as_str().unwrap();
    assert!(
        text.contains("<script>window.__pwned = 1</script>") && text.contains("trap"),
        "shown as text: {text}"
    );
    assert_eq!(
        result["notes"],
        json!([{ "summary": "Note added 2025-05-25 10:24 UTC", "open": false }])
    );
    assert_eq!(result["opened"], true);
    assert_eq!(result["live"], "bold");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
}

#[tokio::test]
async fn dark_mode_follows_the_system_and_keeps_text_readable_on_desktop_and_phone() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let project = app.create_project(&ada, "Themes").await;
    for title in ["Design the schema", "Write the importer"] {
        app.create_task(&ada, &project, json!({ "title": title }))
            .await;
    }
    let result = on_project("themes", &app, &project, &[(&ada, "Ada")])
        .result()
        .await;
    let background = |theme: &str| result[theme]["background"].as_str().unwrap().to_owned();
    assert_eq!(
        background("light-desktop"),
        "rgb(246, 247, 249)",
        "{result}"
    );
    assert_eq!(background("dark-desktop"), "rgb(15, 18, 24)", "{result}");
    assert_eq!(background("dark-phone"), background("dark-desktop"));
    for theme in ["light-desktop", "light-phone", "dark-desktop", "dark-phone"] {
        assert!(
            result[theme]["overflow"].as_i64().unwrap() <= 0,
            "{theme}: the page is wider than the screen: {result}"
        );
        assert!(
            result[theme]["titleWidth"].as_f64().unwrap() >= 120.0,
            "{theme}: no room for a task's title: {result}"
        );
        for pair in ["text", "rowText", "muted"] {
            let ratio = result[theme][pair].as_f64().unwrap();
            assert!(
                ratio >= 4.5,
                "{theme} {pair}: contrast {ratio:.2} under 4.5: {result}"
            );
        }
    }
    for picture in [
        "board-light-desktop",
        "board-dark-desktop",
        "board-light-phone",
        "board-dark-phone",
        "task-light-phone",
        "task-dark-desktop",
    ] {
        assert!(
            artifacts("themes").join(format!("{picture}.png")).is_file(),
            "{picture}"
        );
    }
}

#[tokio::test]
async fn the_board_works_by_keyboard_and_a_bulk_change_reaches_another_browser() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&alice, "Keys").await;
    app.add_member(&alice, &project, &bob, "editor").await;
    let count = 100;
    seed_tasks(&app, &project, count).await;
    sqlx::query("update tasks set status = 'pending' where project_id = $1::uuid")
        .bind(&project)
        .execute(&app.db)
        .await
        .unwrap();
    let users: Vec<Value> = [(&alice, "Alice Adams"), (&bob, "Bob Brown")]
        .iter()
        .map(|(user, name)| browser_user(user, name))
        .collect();
    let result = Scenario::start(
        "keyboard",
        json!({ "base": app.address, "project": project, "users": users, "count": count }),
    )
    .result()
    .await;
    assert_eq!(result["helpRows"], 9, "{result}");
    assert_eq!(
        result["helpFocused"], "Close",
        "the dialog takes the focus: {result}"
    );
    assert_eq!(result["cursor"], "2", "{result}");
    assert_eq!(result["current"], "true", "{result}");
    assert_eq!(result["chosenByKeys"], "2 selected", "{result}");
    assert_eq!(result["chosenByPointer"], "3 selected", "{result}");
    assert_eq!(result["chosenAll"], format!("{count} selected"), "{result}");
    eprintln!(
        "a bulk change of {count} tasks reached the other browser in {} ms",
        result["seenByOtherMs"]
    );
    assert!(
        result["seenByOtherMs"].as_u64().unwrap() <= 1000,
        "the other browser saw the change in {} ms",
        result["seenByOtherMs"]
    );
    assert_eq!(
        result["bulkSelectAfter"], "",
        "the bar's choice goes back to its prompt: {result}"
    );
    assert_eq!(result["statusFocused"], true, "{result}");
    assert_eq!(
        result["opened"],
        format!("/projects/{project}/tasks/3"),
        "{result}"
    );
    assert_eq!(result["filterFocused"], "q", "{result}");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
    // One change set: every task done, one event each, in order.
    let events = app.events(&project).await;
    assert_eq!(
        events,
        (1..=count)
            .map(|id| (id, "task.updated".to_owned(), id))
            .collect::<Vec<_>>()
    );
    let page = app
        .get(
            &format!("/api/v1/projects/{project}/tasks?status=done&limit=500"),
            &alice.token,
        )
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), count as usize);
}

#[tokio::test]
async fn every_screen_passes_axe_in_light_and_dark_on_desktop_and_phone() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&ada, "Accessible").await;
    app.add_member(&ada, &project, &bob, "viewer").await;
    app.create_task(
        &ada,
        &project,
        json!({ "title": "Cache", "priority": "high",
                "details": "# Plan\n\nUse **Redis**.\n\n- [x] measure\n\n<info added on 2025-05-25T10:24:59.806Z>\nDone.\n</info added on 2025-05-25T10:24:59.806Z>\n" }),
    )
    .await;
    app.create_task(
        &ada,
        &project,
        json!({ "title": "Ship", "dependencies": [1] }),
    )
    .await;
    let result = Scenario::start(
        "accessibility",
        json!({ "base": app.address, "project": project, "projectName": "Accessible",
                "users": [browser_user(&ada, "Ada")] }),
    )
    .result()
    .await;
    let screens = result.as_object().unwrap();
    assert_eq!(
        screens.len(),
        40,
        "ten screens, light and dark, desktop and phone: {result}"
    );
    let failing: Vec<String> = screens
        .iter()
        .filter(|(_, violations)| violations.as_array().is_some_and(|list| !list.is_empty()))
        .map(|(screen, violations)| format!("{screen}: {violations}"))
        .collect();
    assert!(
        failing.is_empty(),
        "axe-core found:\n{}",
        failing.join("\n")
    );
}

#[tokio::test]
async fn cards_move_between_columns_by_mouse_touch_and_keyboard() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&alice, "Columns").await;
    app.add_member(&alice, &project, &bob, "editor").await;
    for title in ["By mouse", "By finger", "By key"] {
        app.create_task(&alice, &project, json!({ "title": title }))
            .await;
    }
    let result = on_project(
        "drag",
        &app,
        &project,
        &[(&alice, "Alice Adams"), (&bob, "Bob Brown")],
    )
    .result()
    .await;
    assert_eq!(result["ghost"], "#1 By mouse", "{result}");
    assert_eq!(result["highlighted"], "done", "{result}");
    for seen in ["mouseSeenMs", "touchSeenMs", "keySeenMs"] {
        assert!(
            result[seen].as_u64().unwrap() <= 1000,
            "{seen}: the other browser took over a second: {result}"
        );
    }
    assert_eq!(result["announced"], "Task #3 moved to in-progress");
    assert_eq!(result["clickMoved"], false, "{result}");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
    let status = |id: i64| {
        let app = &app;
        let alice = &alice;
        let project = project.clone();
        async move { app.task(alice, &project, id).await.body["status"].clone() }
    };
    assert_eq!(status(1).await, "done");
    assert_eq!(status(2).await, "review");
    assert_eq!(status(3).await, "in-progress");
}

/// The graph scenario on a grid of `total` tasks, with the checks every
/// size shares; what the browser measured.
async fn graph_scenario(total: i64) -> Value {
    let app = TestApp::spawn().await;
    let ada = app.register("ada").await;
    let project = app.create_project(&ada, "Graph").await;
    seed_graph(&app, &project, total).await;
    let next = app
        .get(
            &format!("/api/v1/projects/{project}/tasks/next"),
            &ada.token,
        )
        .await;
    let mut scenario = Scenario::start(
        "graph",
        json!({ "base": app.address, "project": project, "total": total,
                "users": [browser_user(&ada, "Ada")] }),
    );
    scenario.expect_step("mark_3_done").await;
    let done = app
        .patch(
            &format!("/api/v1/projects/{project}/tasks/3"),
            &ada.token,
            json!({ "status": "done" }),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    scenario.go_on().await;
    let result = scenario.result().await;
    eprintln!("graph of {total} tasks: {result}");
    let first = &result["first"];
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{total} tasks")),
        "{result}"
    );
    assert_eq!(result["lastShown"], true, "scrolling draws the last column");
    let layouts = result["layoutSeries"].as_array().unwrap();
    assert_eq!(layouts.len(), 12, "a layout after each of 12 changes");
    assert!(layouts
        .iter()
        .all(|ms| ms.as_f64().is_some_and(|ms| ms >= 0.0)));
    assert!(first["critical"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(
        first["next"].as_str().map(str::to_owned),
        next.body["id"].as_i64().map(|id| id.to_string()),
        "the next task is the server's: {result}"
    );
    assert!(result["liveMs"].as_u64().unwrap() < 1000, "{result}");
    assert_ne!(result["nextAfter"], first["next"]);
    assert_eq!(result["policyViolations"], json!([]), "{result}");
    result
}

#[tokio::test]
async fn the_dependency_graph_of_a_thousand_tasks_renders_bounded_and_live() {
    let result = graph_scenario(1000).await;
    let drawn = result["first"]["drawn"].as_u64().unwrap();
    assert!(
        drawn > 10 && drawn < 200,
        "a bounded DOM: {drawn} nodes drawn"
    );
    assert!(
        result["scrolled"]["drawn"].as_u64().unwrap() < 200,
        "{result}"
    );
}

#[tokio::test]
async fn the_dependency_graph_of_a_hundred_tasks_renders_and_follows_changes() {
    let result = graph_scenario(100).await;
    assert!(result["first"]["drawn"].as_u64().unwrap() > 10, "{result}");
}

/// A grid of dependencies: `count` tasks in chains of ten, each depending
/// on the one before in its chain and on the same place in the chain
/// before; the first two of every chain done.
async fn seed_graph(app: &TestApp, project: &str, count: i64) {
    let project: uuid::Uuid = project.parse().unwrap();
    sqlx::query(
        "insert into tasks (project_id, task_id, title, status, priority, dependencies)
         select $1, n, 'Task number ' || n,
                (case when n % 10 in (1, 2) then 'done' else 'pending' end)::task_status,
                'medium'::task_priority,
                case when n % 10 = 1 then '{}'::bigint[]
                     when n > 10 then array[n - 1, n - 10]::bigint[]
                     else array[n - 1]::bigint[] end
         from generate_series(1, $2) as n",
    )
    .bind(project)
    .bind(count)
    .execute(&app.db)
    .await
    .unwrap();
    numbered_up_to(app, project, count).await;
}

/// Tasks inserted as fixtures took their numbers by hand: the project's
/// counter moves past them, so the next task the API makes is `count + 1`.
pub async fn numbered_up_to(app: &TestApp, project: uuid::Uuid, count: i64) {
    sqlx::query("update projects set last_task_id = $2 where project_id = $1")
        .bind(project)
        .bind(count)
        .execute(&app.db)
        .await
        .unwrap();
}

/// Inserts `count` tasks at once, as a fixture (the API would take minutes).
pub async fn seed_tasks(app: &TestApp, project: &str, count: i64) {
    let project: uuid::Uuid = project.parse().unwrap();
    sqlx::query(
        "insert into tasks (project_id, task_id, title, status, priority)
         select $1, n, 'Task number ' || n,
                (array['pending','in-progress','review','done','deferred','cancelled','blocked'])[1 + n % 7]::task_status,
                (array['critical','high','medium','low'])[1 + n % 4]::task_priority
         from generate_series(1, $2) as n",
    )
    .bind(project)
    .bind(count)
    .execute(&app.db)
    .await
    .unwrap();
    numbered_up_to(app, project, count).await;
}

#[tokio::test]
async fn a_board_of_ten_thousand_tasks_keeps_a_bounded_dom_while_scrolling() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let project = app.create_project(&alice, "Big").await;
    seed_tasks(&app, &project, 10_000).await;
    let scenario = on_project("scale", &app, &project, &[(&alice, "Alice Adams")]);
    let result = scenario.result().await;
    let rows = result["maxRows"].as_u64().unwrap();
    assert!(rows > 0 && rows < 150, "{rows} task rows in the DOM");
    let cards = result["maxCards"].as_u64().unwrap();
    assert!(cards > 0 && cards < 150, "{cards} task cards in the DOM");
    println!("10,000-task board: {result}");
    std::fs::write(artifacts("scale").join("timings.json"), result.to_string()).unwrap();
}

#[tokio::test]
async fn a_refused_edit_rolls_back_with_a_message_and_keeps_the_typing() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&alice, "Edits").await;
    app.add_member(&alice, &project, &bob, "editor").await;
    app.create_task(&alice, &project, json!({ "title": "One" }))
        .await;
    app.create_task(&alice, &project, json!({ "title": "Two" }))
        .await;
    app.patch_task(&alice, &project, 1, json!({ "dependencies": [2] }))
        .await;
    let mut scenario = on_project("rollback", &app, &project, &[(&alice, "Alice Adams")]);
    scenario.expect_step("change_task_1").await;
    let changed = app
        .patch_task(&bob, &project, 1, json!({ "title": "Bob's title" }))
        .await;
    assert_eq!(changed.status, 200);
    scenario.go_on().await;
    let result = scenario.result().await;
    assert!(
        result["cycleMessage"].as_str().unwrap().contains("cycle"),
        "{result}"
    );
    assert!(
        result["staleMessage"]
            .as_str()
            .unwrap()
            .contains("changed this task first"),
        "{result}"
    );
    assert_eq!(result["typed"], "Alice's new title");
    assert_eq!(result["shown"], "Bob's title");
    assert!(result["missing"].as_str().unwrap().contains("no such task"));
    assert!(
        result["refusedText"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{result}"
    );
    assert_eq!(result["hasRetry"], true);
    assert_eq!(
        result["taskModuleLoads"],
        json!(["link"]),
        "a page opened at a task's address preloads the task page's module, once"
    );
    let task = app.task(&alice, &project, 2).await;
    assert_eq!(
        task.body["dependencies"],
        json!([]),
        "the refused cycle changed nothing"
    );
}

#[tokio::test]
async fn the_board_goes_offline_and_catches_up_after_a_server_restart() {
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let project = app.create_project(&alice, "Restart").await;
    app.create_task(&alice, &project, json!({ "title": "Before" }))
        .await;
    let mut scenario = on_project("reconnect", &app, &project, &[(&alice, "Alice Adams")]);
    let again = scenario.restart_server(&mut app).await;
    again
        .create_task(
            &alice,
            &project,
            json!({ "title": "Made while you were away" }),
        )
        .await;
    again
        .patch_task(&alice, &project, 1, json!({ "status": "done" }))
        .await;
    scenario.go_on().await;
    let result = scenario.result().await;
    assert_eq!(result["status"], "done");
}

#[tokio::test]
async fn offline_the_board_reloads_from_the_device_keeps_edits_and_catches_up() {
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let project = app.create_project(&alice, "Offline").await;
    app.add_member(&alice, &project, &bob, "editor").await;
    for title in ["Ship it", "Review it", "Plan it"] {
        app.create_task(&alice, &project, json!({ "title": title }))
            .await;
    }
    let mut scenario = on_project("offline", &app, &project, &[(&alice, "Alice Adams")]);
    let again = scenario.restart_server(&mut app).await;
    // Bob changes task 2 while Alice's edit of it waits on her device.
    again
        .patch_task(&bob, &project, 2, json!({ "title": "Bob's review" }))
        .await;
    again
        .create_task(
            &bob,
            &project,
            json!({ "title": "Made while you were away" }),
        )
        .await;
    scenario.go_on().await;
    let result = scenario.result().await;

    assert!(result["seqKept"].as_i64().unwrap() >= 3, "{result}");
    assert_eq!(result["pageFromWorker"], true, "{result}");
    assert_eq!(result["titleOffline"], "Offline", "{result}");
    assert_eq!(result["rowsOffline"], 3, "{result}");
    assert_eq!(
        result["queuedAfterReload"],
        json!({ "1": "done", "2": "review" })
    );
    assert_eq!(result["status1"], "done", "{result}");
    assert_eq!(result["status2"], "pending", "{result}");
    assert_eq!(result["title2"], "Bob's review", "{result}");
    assert_eq!(
        result["restRequests"],
        json!([]),
        "catching up reads no task by REST"
    );
    assert_eq!(result["policyViolations"], json!([]));
    // The server has Alice's queued edit of task 1 and not the refused one.
    let task = |id: i64| {
        let path = format!("/api/v1/projects/{project}/tasks/{id}");
        let again = &again;
        let token = &alice.token;
        async move { again.get(&path, token).await.body }
    };
    let one = task(1).await;
    assert_eq!(
        (one["status"].as_str(), one["version"].as_i64()),
        (Some("done"), Some(2))
    );
    let two = task(2).await;
    assert_eq!(
        (two["status"].as_str(), two["version"].as_i64()),
        (Some("pending"), Some(2))
    );
}

#[tokio::test]
async fn a_deploy_is_offered_to_an_open_page_and_taken_on_reload() {
    assert_web_app_built();
    // A web directory of our own, to deploy a new build into.
    let web = tempfile::tempdir().unwrap();
    copy_dir(&web_dir().join("dist"), web.path());
    let web_path = web.path().to_path_buf();
    let app = TestApp::spawn_with(|config| config.web_dir = web_path).await;
    let alice = app.register("alice").await;
    let project = app.create_project(&alice, "Deploys").await;
    app.create_task(&alice, &project, json!({ "title": "Keep working" }))
        .await;
    let mut scenario = on_project("deploy", &app, &project, &[(&alice, "Alice Adams")]);
    scenario.expect_step("deploy").await;

    let worker = std::fs::read_to_string(web.path().join("sw.js")).unwrap();
    let build = worker
        .split("const BUILD = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("sw.js names its build")
        .to_owned();
    let next = format!("{build}-next");
    std::fs::write(
        web.path().join("sw.js"),
        worker.replace(
            &format!("const BUILD = \"{build}\""),
            &format!("const BUILD = \"{next}\""),
        ),
    )
    .unwrap();
    let index = std::fs::read_to_string(web.path().join("index.html")).unwrap();
    for compressed in ["index.html.br", "index.html.gz"] {
        let _ = std::fs::remove_file(web.path().join(compressed));
    }
    std::fs::write(
        web.path().join("index.html"),
        index.replace(
            &format!("var build = \"{build}\""),
            &format!("var build = \"{next}\""),
        ),
    )
    .unwrap();
    scenario.go_on().await;
    let result = scenario.result().await;

    assert_eq!(
        result["before"],
        json!([format!("taskmaster-{build}")]),
        "{result}"
    );
    assert_eq!(
        result["after"],
        json!([format!("taskmaster-{next}")]),
        "{result}"
    );
    assert!(
        result["notice"].as_str().unwrap().contains("new version"),
        "{result}"
    );
    assert_eq!(
        result["build"],
        next.as_str(),
        "the reload brought the new build"
    );
    assert_eq!(result["noticeAfterReload"], false, "{result}");
    assert_eq!(result["policyViolations"], json!([]));
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_handshake_refused_by_a_server_failure_keeps_the_user_signed_in_and_retries() {
    let mut app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let project = app.create_project(&alice, "Blip").await;
    let bind: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let mut scenario = on_project("unavailable", &app, &project, &[(&alice, "Alice Adams")]);
    scenario
        .expect_step("restart_unable_to_read_sessions")
        .await;
    // A restart empties the instance's session cache, so the next handshake
    // reads the sessions table: gone, it fails as a database outage would.
    app.shut_down().await.unwrap();
    let db = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    sqlx::query("alter table sessions rename to sessions_away")
        .execute(&db)
        .await
        .unwrap();
    let _restarted = TestApp::spawn_on(&app.database_url, |config| config.bind = bind).await;
    scenario.go_on().await;
    scenario.expect_step("sessions_readable_again").await;
    sqlx::query("alter table sessions_away rename to sessions")
        .execute(&db)
        .await
        .unwrap();
    scenario.go_on().await;
    let result = scenario.result().await;
    assert_eq!(result["token_kept"], true, "{result}");
    assert_eq!(result["policyViolations"], json!([]), "{result}");
    assert!(
        result["url"].as_str().unwrap().contains(&project),
        "still on the board: {result}"
    );
}
