//! Task Master files through the API: a `tasks.json` imports as one
//! project per tag and exports byte for byte; edits made afterwards show
//! in the export; what is not a Task Master file is refused and nothing is
//! created; task files add tasks to a project and come back out as
//! `task-master generate` writes them.

use std::io::Read as _;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};
use crate::sockets::Clients;

fn fixture(name: &str) -> String {
    let path = format!("{}/../files/tests/files/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn sample(name: &str) -> String {
    let path = format!(
        "{}/../../shared/taskmaster-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Sends `body` as it is, with `content_type`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    crate::helpers::http()
        .request(method, app.url(path))
        .bearer_auth(&user.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn import(app: &TestApp, user: &TestUser, text: &str) -> Value {
    let response = send(
        app,
        Method::POST,
        "/api/v1/imports",
        user,
        "application/json",
        text.to_owned(),
    )
    .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body
}

async fn text(app: &TestApp, user: &TestUser, path: &str) -> (u16, String) {
    let response = crate::helpers::http()
        .get(app.url(path))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("request");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

async fn export(app: &TestApp, user: &TestUser, import: &Value) -> String {
    let id = import["id"].as_str().unwrap();
    let (status, body) = text(app, user, &format!("/api/v1/imports/{id}/tasks.json")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn all_tasks(app: &TestApp, user: &TestUser, project: &str) -> Vec<Value> {
    let page = app
        .get(
            &format!("/api/v1/projects/{project}/tasks?limit=500"),
            &user.token,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn files_come_back_byte_for_byte_and_their_tasks_are_real_tasks() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;

    let legacy = fixture("legacy.json");
    let imported = import(&app, &ada, &legacy).await;
    assert_eq!(imported["format"], "legacy");
    assert_eq!(imported["projects"][0]["tag"], "master");
    assert_eq!(imported["projects"][0]["tasks"], 6);
    assert_eq!(imported["warnings"], json!([]));
    assert_eq!(export(&app, &ada, &imported).await, legacy);

    // Every task and subtask is a task of the project: REST, next-task and
    // the change log see them.
    let project = imported["projects"][0]["project"]["id"].as_str().unwrap();
    let tasks = all_tasks(&app, &ada, project).await;
    assert_eq!(tasks.len(), 6);
    let handlers = tasks.iter().find(|t| t["title"] == "Handlers").unwrap();
    assert_eq!(handlers["parent_id"], 2);
    assert_eq!(handlers["dependencies"], json!([4]));
    let next = app
        .get(
            &format!("/api/v1/projects/{project}/tasks/next"),
            &ada.token,
        )
        .await;
    assert_eq!(next.status, 200);
    // Task 2 is in progress: its first open subtask with its dependencies done.
    assert_eq!(next.body["title"], "Handlers");
    let events = app.events(project).await;
    assert_eq!(events.len(), 6);
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, (seq, kind, _))| *seq == i as i64 + 1 && kind == "task.created"));
    let projects = app.get("/api/v1/projects", &ada.token).await;
    assert_eq!(projects.body["items"].as_array().unwrap().len(), 1);

    for name in ["tagged.json", "odd.json"] {
        let text = fixture(name);
        let imported = import(&app, &ada, &text).await;
        assert_eq!(imported["format"], "tagged");
        assert_eq!(imported["projects"].as_array().unwrap().len(), 2, "{name}");
        assert_eq!(export(&app, &ada, &imported).await, text, "{name}");
    }
}

#[tokio::test]
async fn warnings_name_what_was_kept_but_not_modelled() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let imported = import(&app, &ada, &fixture("odd.json")).await;
    let warnings: Vec<&str> = imported["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let all = warnings.join("\n");
    for expected in [
        "names no task of tag `master`",
        "would close a dependency cycle",
        "status \"someday\"",
        "used by an earlier task",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in {all}");
    }
    let master = imported["projects"][0]["project"]["id"].as_str().unwrap();
    let tasks = all_tasks(&app, &ada, master).await;
    let padded = tasks.iter().find(|t| t["title"] == "Padded title").unwrap();
    assert_eq!(padded["status"], "done", "completed maps to done");
    assert_eq!(padded["dependencies"], json!([2]));
}

#[tokio::test]
async fn edits_made_in_the_app_appear_in_the_export() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let imported = import(&app, &ada, &fixture("legacy.json")).await;
    let project = imported["projects"][0]["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let patched = app
        .patch_task(
            &ada,
            &project,
            3,
            json!({"status": "review", "title": "Ship it"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let deleted = app
        .delete(&format!("/api/v1/projects/{project}/tasks/1"), &ada.token)
        .await;
    assert_eq!(deleted.status, 204);
    app.create_task(
        &ada,
        &project,
        json!({"title": "Added in the app", "priority": "high", "dependencies": [3]}),
    )
    .await;

    let exported: Value = serde_json::from_str(&export(&app, &ada, &imported).await).unwrap();
    let tasks = exported["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[0]["id"], 2);
    assert_eq!(tasks[0]["dependencies"], json!([]), "task 1 is gone");
    assert_eq!(tasks[1]["status"], "review");
    assert_eq!(tasks[1]["title"], "Ship it");
    assert_eq!(
        tasks[1]["complexity"], 7.5,
        "fields the server does not model stay"
    );
    assert_eq!(tasks[2]["id"], 7);
    assert_eq!(tasks[2]["title"], "Added in the app");
    assert_eq!(tasks[2]["priority"], "high");
    assert_eq!(tasks[2]["dependencies"], json!([3]));
    assert_eq!(exported["metadata"]["projectName"], "Demo");

    // The project's own document is the same tag as a legacy file.
    let (status, own) = text(
        &app,
        &ada,
        &format!("/api/v1/projects/{project}/tasks.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&own).unwrap(), exported);

    // A project made here exports as Task Master writes a new file.
    let fresh = app.create_project(&ada, "Fresh").await;
    let parent = app
        .create_task(&ada, &fresh, json!({"title": "Parent"}))
        .await;
    app.create_task(
        &ada,
        &fresh,
        json!({"title": "Child", "parent_id": parent["id"]}),
    )
    .await;
    let (status, own) = text(&app, &ada, &format!("/api/v1/projects/{fresh}/tasks.json")).await;
    assert_eq!(status, 200);
    let own: Value = serde_json::from_str(&own).unwrap();
    assert_eq!(own["tasks"][0]["title"], "Parent");
    assert_eq!(own["tasks"][0]["subtasks"][0]["id"], 1);
    assert_eq!(own["tasks"][0]["subtasks"][0]["title"], "Child");
}

#[tokio::test]
async fn what_is_not_a_task_master_file_is_refused_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let refusals = [
        ("not json", 400, "malformed_file"),
        ("{\"tasks\": []}{\"tasks\": []}", 400, "malformed_file"),
        ("{\n<<<<<<< HEAD\n\"tasks\": []\n=======\n\"tasks\": [1]\n>>>>>>> x\n}", 400, "malformed_file"),
        ("{\"version\": \"2.0.0\", \"tasks\": [{\"label\": \"build\", \"command\": \"make\"}]}", 422, "not_a_task_master_file"),
        ("[]", 422, "not_a_task_master_file"),
        ("{\"project\": {\"name\": \"x\"}}", 422, "not_a_task_master_file"),
        ("{\"tasks\": [{\"title\": \"no id\"}]}", 422, "not_a_task_master_file"),
        ("{\"tasks\": [{\"id\": 1, \"title\": \"ok\"}, {\"id\": 2, \"title\": \"nul \\u0000\"}]}", 422, "validation_failed"),
    ];
    for (body, status, code) in refusals {
        let response = send(
            &app,
            Method::POST,
            "/api/v1/imports",
            &ada,
            "application/json",
            body,
        )
        .await;
        let response = crate::helpers::Response::read(response).await;
        response.assert_error(status, code);
    }
    let response = send(
        &app,
        Method::POST,
        "/api/v1/imports",
        &ada,
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(response.status(), 415);
    let long_title = "x".repeat(501);
    let body = format!("{{\"tasks\": [{{\"id\": 1, \"title\": \"ok\"}}, {{\"id\": 2, \"title\": \"{long_title}\"}}]}}");
    let response = crate::helpers::Response::read(
        send(
            &app,
            Method::POST,
            "/api/v1/imports",
            &ada,
            "application/json",
            body,
        )
        .await,
    )
    .await;
    response.assert_error(422, "validation_failed");
    assert!(response.text.contains("tasks[1]"), "{}", response.text);

    let projects = app.get("/api/v1/projects", &ada.token).await;
    assert_eq!(projects.body["items"], json!([]), "nothing was created");
    let imports: i64 = sqlx::query_scalar("select count(*) from imports")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(imports, 0);
}

#[tokio::test]
async fn only_members_of_every_project_of_an_import_read_it() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let bob = app.register("Bob").await;
    let imported = import(&app, &ada, &fixture("tagged.json")).await;
    let id = imported["id"].as_str().unwrap();
    let path = format!("/api/v1/imports/{id}/tasks.json");
    let projects: Vec<String> = imported["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"]["id"].as_str().unwrap().to_owned())
        .collect();

    let (status, body) = text(&app, &bob, &path).await;
    assert_eq!(status, 404, "{body}");
    app.add_member(&ada, &projects[0], &bob, "viewer").await;
    assert_eq!(
        text(&app, &bob, &path).await.0,
        404,
        "a member of one tag's project only"
    );
    app.add_member(&ada, &projects[1], &bob, "viewer").await;
    assert_eq!(text(&app, &bob, &path).await.0, 200);
    assert_eq!(
        text(&app, &bob, "/api/v1/imports/not-an-id/tasks.json")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn task_files_add_tasks_and_come_back_as_generate_writes_them() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let viewer = app.register("Vic").await;
    let project = app.create_project(&ada, "Samples").await;
    app.add_member(&ada, &project, &viewer, "viewer").await;
    let path = format!("/api/v1/projects/{project}/imports");

    let refused = send(
        &app,
        Method::POST,
        &path,
        &viewer,
        "text/plain",
        sample("task_036.txt"),
    )
    .await;
    assert_eq!(refused.status(), 403, "a viewer cannot add tasks");

    let mut added = Vec::new();
    for name in [
        "task_036.txt",
        "task_010.txt",
        "task_015_pending.txt",
        "task_015_done_with_notes.txt",
    ] {
        let response = send(&app, Method::POST, &path, &ada, "text/plain", sample(name)).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{name}: {body}");
        added.push(body);
    }
    // task_010: five subtasks whose "10.1, 10.2" dependencies name each other.
    let ten = &added[1];
    let tasks = ten["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    assert_eq!(tasks[0]["title"], "Optimize Performance and Deploy MVP");
    assert_eq!(tasks[0]["status"], "done");
    let first_sub = tasks[1]["id"].as_i64().unwrap();
    assert_eq!(
        tasks[4]["dependencies"],
        json!([first_sub, first_sub + 1, first_sub + 2])
    );
    assert!(tasks[1..].iter().all(|t| t["parent_id"] == tasks[0]["id"]));
    let warnings = ten["warnings"].to_string();
    assert!(
        warnings.contains("dependency 5 names no task"),
        "{warnings}"
    );
    // The notes agents appended stay in the details.
    let notes = &added[3]["tasks"][1]["details"];
    assert!(notes
        .as_str()
        .unwrap()
        .contains("<info added on 2025-05-25T10:24:59.806Z>"));

    let markdown = send(
        &app,
        Method::POST,
        &path,
        &ada,
        "text/markdown",
        sample("not_a_task_file_agent_prompt.md"),
    )
    .await;
    let markdown = crate::helpers::Response::read(markdown).await;
    markdown.assert_error(422, "not_a_task_master_file");
    assert_eq!(
        all_tasks(&app, &ada, &project).await.len(),
        1 + 6 + 6 + 6,
        "the prompt added nothing"
    );

    // Out again as a zip of task files.
    let response = crate::helpers::http()
        .get(app.url(&format!("/api/v1/projects/{project}/task-files")))
        .bearer_auth(&viewer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert_eq!(archive.len(), 4);
    let mut first = String::new();
    archive
        .by_name("tasks/task_001.txt")
        .unwrap()
        .read_to_string(&mut first)
        .unwrap();
    assert!(first.starts_with("# Task ID: 1\n# Title: Implement Performance Optimization and Caching System\n# Status: pending\n"), "{first}");
    let mut second = String::new();
    archive
        .by_name("tasks/task_002.txt")
        .unwrap()
        .read_to_string(&mut second)
        .unwrap();
    assert!(second.contains("## 4. Implement Monitoring, Error Tracking, and Analytics [done]\n### Dependencies: 2.1, 2.2, 2.3\n"), "{second}");
    let bad = app
        .get(
            &format!("/api/v1/projects/{project}/task-files?format=pdf"),
            &ada.token,
        )
        .await;
    bad.assert_error(422, "validation_failed");
}

/// A plan of 1,000 tasks and subtasks with long details (about 2 MB)
/// imports whole, in one transaction, and replays like any other changes.
#[tokio::test]
async fn a_two_megabyte_plan_imports_whole() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let details = "Implementation notes. ".repeat(90);
    let tasks: Vec<Value> = (1..=250)
        .map(|id| {
            json!({
                "id": id, "title": format!("Task {id}"), "description": "d", "details": details,
                "testStrategy": details, "status": "pending", "priority": "medium",
                "dependencies": if id > 1 { json!([id - 1]) } else { json!([]) },
                "subtasks": (1..=3).map(|sub| json!({
                    "id": sub, "title": format!("Sub {id}.{sub}"), "description": "", "details": details,
                    "status": "pending", "dependencies": if sub > 1 { json!([sub - 1]) } else { json!([]) },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({"tasks": tasks})).unwrap();
    assert!(text.len() > 2_000_000, "{} bytes", text.len());
    let started = std::time::Instant::now();
    let imported = import(&app, &ada, &text).await;
    eprintln!(
        "imported {} bytes, 1,000 tasks in {:?}",
        text.len(),
        started.elapsed()
    );
    assert_eq!(imported["projects"][0]["tasks"], 1000);
    let project = imported["projects"][0]["project"]["id"].as_str().unwrap();
    assert_eq!(app.events(project).await.len(), 1000);
    let replay = app
        .get(
            &format!("/api/v1/projects/{project}/events?since=990"),
            &ada.token,
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(export(&app, &ada, &imported).await, text);
}

/// With `Prefer: respond-async` a file is checked at once (a bad one is
/// refused as without it, and no job is queued), then imported by a
/// background job: 202 with the job, progress and the end reach the
/// importer's Socket.IO connections (no one else's) as `job` messages, and
/// the job's result is the body a 201 would have had.
#[tokio::test]
async fn a_large_import_runs_as_a_job_that_tells_its_progress_over_socket_io() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let bob = app.register("Bob").await;
    let mut clients = Clients::start().await;
    for (id, user) in [("ada", &ada), ("bob", &bob)] {
        clients
            .connect(id, &app.address, Some(&user.token), "websocket")
            .await
            .expect("connects");
    }

    let refused = send_async(&app, &ada, "{\"tasks\": [".to_owned()).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_file", "{body}");
    assert!(
        clients
            .next_of("ada", &["job"], Duration::from_millis(300))
            .await
            .is_none(),
        "a refused file queues nothing"
    );

    let total = 6_000;
    let tasks: Vec<Value> = (1..=total / 3)
        .map(|id| {
            json!({
                "id": id, "title": format!("Task {id}"), "description": "d", "details": "",
                "testStrategy": "", "status": "pending", "priority": "medium",
                "dependencies": if id > 1 { json!([id - 1]) } else { json!([]) },
                "subtasks": (1..=2).map(|sub| json!({
                    "id": sub, "title": format!("Sub {id}.{sub}"), "description": "", "details": "",
                    "status": "pending", "dependencies": [],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({"tasks": tasks})).unwrap() + "\n";
    let queued = send_async(&app, &ada, text.clone()).await;
    assert_eq!(queued.status(), 202);
    let location = queued.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(queued.headers()["preference-applied"], "respond-async");
    let job: Value = queued.json().await.unwrap();
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/jobs/{job_id}"));
    assert_eq!(job["kind"], "import");

    let mut told = Vec::new();
    let finished = loop {
        let message = clients
            .next_of("ada", &["job"], Duration::from_secs(60))
            .await
            .expect("the importer hears of the job until it ends");
        let status = message["data"].clone();
        assert_eq!(status["id"], job_id.as_str(), "{status}");
        if status["state"] == "done" {
            break status;
        }
        told.push(status["progress"]["tasks_done"].as_i64().unwrap());
        assert_eq!(status["progress"]["tasks_total"], total, "{status}");
    };
    assert!(
        told.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress only grows: {told:?}"
    );
    assert!(
        told.iter().any(|&done| done > 0 && done < total),
        "progress between start and end: {told:?}"
    );
    let result = &finished["result"];
    assert_eq!(result["format"], "legacy");
    assert_eq!(result["projects"][0]["tasks"], total);
    assert_eq!(app.get(&location, &ada.token).await.body["result"], *result);
    assert!(
        clients.drain("bob", "job").is_empty(),
        "only the importer is told"
    );

    let project = result["projects"][0]["project"]["id"].as_str().unwrap();
    assert_eq!(app.events(project).await.len(), total as usize);
    assert_eq!(export(&app, &ada, result).await, text);
    // Someone else's job is not theirs to read.
    app.get(&location, &bob.token)
        .await
        .assert_error(404, "job_not_found");
}

/// A job runs on an instance with workers; the importer, connected to a
/// web-only instance (`JOB_CONCURRENCY=0`), still hears of it (the bus).
#[tokio::test]
async fn the_importer_hears_of_a_job_that_runs_on_another_instance() {
    use taskmaster_server::config::Secret;
    let redis = crate::scale::redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let (redis_web, prefix_web) = (redis.clone(), prefix.clone());
    let web = TestApp::spawn_with(move |config| {
        config.redis_url = Some(Secret::new(redis_web));
        config.redis_prefix = prefix_web;
        config.job_concurrency = 0;
    })
    .await;
    let worker = TestApp::spawn_on(&web.database_url, |config| {
        config.redis_url = Some(Secret::new(redis));
        config.redis_prefix = prefix;
    })
    .await;
    let ada = web.register("Ada").await;
    let mut clients = Clients::start().await;
    clients
        .connect("ada", &web.address, Some(&ada.token), "websocket")
        .await
        .expect("connects");
    let job = queue_import(&web, &ada, fixture("tagged.json")).await;
    let done = loop {
        let message = clients
            .next_of("ada", &["job"], Duration::from_secs(20))
            .await
            .expect("told through the bus");
        if message["data"]["state"] == "done" {
            break message["data"].clone();
        }
    };
    assert_eq!(done["id"], job["id"]);
    let id = job["id"].as_str().unwrap();
    let status = worker.get(&format!("/api/v1/jobs/{id}"), &ada.token).await;
    assert_eq!(status.body["result"], done["result"], "{}", status.text);
    assert_eq!(
        export(&web, &ada, &done["result"]).await,
        fixture("tagged.json")
    );
}

/// An import job run again after its commit (its instance died before
/// recording the outcome) answers with what the first run made: the file
/// is imported once.
#[tokio::test]
async fn an_import_job_run_twice_imports_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let job = queue_import(&app, &ada, fixture("tagged.json")).await;
    let path = format!("/api/v1/jobs/{}", job["id"].as_str().unwrap());
    let first = job_done(&app, &ada, &path).await;
    let projects = app.get("/api/v1/projects", &ada.token).await.body["items"].clone();

    // As if the instance had died between the commit and recording it.
    sqlx::query(
        "update jobs set state = 'queued', result = null, run_at = now() where job_id = $1",
    )
    .bind(uuid::Uuid::parse_str(job["id"].as_str().unwrap()).unwrap())
    .execute(&app.db)
    .await
    .unwrap();
    let second = job_done(&app, &ada, &path).await;
    assert_eq!(second["result"], first["result"]);
    assert_eq!(
        app.get("/api/v1/projects", &ada.token).await.body["items"],
        projects,
        "no second set of projects"
    );
}

/// The job at `path` once it is done.
async fn job_done(app: &TestApp, user: &TestUser, path: &str) -> Value {
    for _ in 0..400 {
        let status = app.get(path, &user.token).await.body;
        if status["state"] == "done" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job at {path} did not finish");
}

/// A task file as `task-master generate` writes one, with one subtask.
fn task_file(id: u64, title: &str, dependencies: &str, subtask_dependencies: &str) -> String {
    format!(
        "# Task ID: {id}\n# Title: {title}\n# Status: pending\n# Dependencies: {dependencies}\n\
         # Priority: high\n# Description: {title}.\n# Details:\nDo it.\n\n# Test Strategy:\nCheck it.\n\n\
         # Subtasks:\n## 1. First step of {title} [pending]\n### Dependencies: {subtask_dependencies}\n\
         ### Description: A step.\n### Details:\nStep.\n"
    )
}

/// Task files of one plan, added one after the other, find each other by
/// the ids the plan gave them (task and `P.S` subtask notation); entries
/// that name nothing are reported and kept for the exports.
#[tokio::test]
async fn task_files_of_one_plan_find_each_other_and_keep_what_names_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let project = app.create_project(&ada, "Plan").await;
    let path = format!("/api/v1/projects/{project}/imports");
    let add = |text: String| {
        let app = &app;
        let ada = &ada;
        let path = path.clone();
        async move {
            let response = send(app, Method::POST, &path, ada, "text/plain", text).await;
            let response = crate::helpers::Response::read(response).await;
            assert_eq!(response.status, 201, "{}", response.text);
            response.body
        }
    };

    // Task 7 of the plan depends on 3 and its subtask on 42.9: neither is here.
    let seven = add(task_file(7, "Seven", "3", "42.9")).await;
    let warnings = seven["warnings"].to_string();
    assert!(
        warnings.contains("task 7: dependency 3 names no task of this project; kept for export")
            && warnings.contains(
                "subtask 7.1: dependency 42.9 names no task of this project; kept for export"
            ),
        "{warnings}"
    );
    let (seven_id, seven_sub) = (
        seven["tasks"][0]["id"].as_i64().unwrap(),
        seven["tasks"][1]["id"].as_i64().unwrap(),
    );
    assert_eq!(seven["tasks"][0]["dependencies"], json!([]));

    // Task 8 names 7 and 7.1 by the plan's ids: they resolve to what 7 became.
    let eight = add(task_file(8, "Eight", "7", "7.1, 8.1")).await;
    assert_eq!(eight["tasks"][0]["dependencies"], json!([seven_id]));
    assert_eq!(eight["tasks"][1]["dependencies"], json!([seven_sub]));
    assert!(
        eight["warnings"]
            .to_string()
            .contains("subtask 8.1: dependency 8.1 is the task itself; kept for export"),
        "{}",
        eight["warnings"]
    );

    // The exports keep the entries that named nothing, as the files wrote them.
    let (status, text) = text(
        &app,
        &ada,
        &format!("/api/v1/projects/{project}/tasks.json"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    let tasks = document["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["dependencies"], json!([3]));
    assert_eq!(tasks[0]["subtasks"][0]["dependencies"], json!(["42.9"]));
    assert_eq!(tasks[1]["dependencies"], json!([seven_id]));
    let response = crate::helpers::http()
        .get(app.url(&format!("/api/v1/projects/{project}/task-files")))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut generated = String::new();
    archive
        .by_name(&format!("tasks/task_{seven_id:03}.txt"))
        .unwrap()
        .read_to_string(&mut generated)
        .unwrap();
    assert!(
        generated.contains("# Dependencies: 3\n") && generated.contains("### Dependencies: 42.9\n"),
        "{generated}"
    );
}

/// Sends `text` to be imported in the background; the job (202).
async fn queue_import(app: &TestApp, user: &TestUser, text: String) -> Value {
    let answer = send_async(app, user, text).await;
    let status = answer.status();
    let job: Value = answer.json().await.unwrap();
    assert_eq!(status, 202, "{job}");
    job
}

/// `POST /api/v1/imports` with `Prefer: respond-async` (among other
/// preferences, as RFC 7240 allows).
async fn send_async(app: &TestApp, user: &TestUser, text: String) -> reqwest::Response {
    crate::helpers::http()
        .post(app.url("/api/v1/imports"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .header("prefer", "wait=10, respond-async")
        .body(text)
        .send()
        .await
        .expect("request")
}
