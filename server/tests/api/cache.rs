//! The read cache against a real Redis: coherent across instances, never
//! crossing roles, one fill per key, validators answered from the cache,
//! and degrading to PostgreSQL when Redis dies.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use taskmaster_server::config::Secret;

use crate::helpers::{Response, TestApp, TestUser};
use crate::scale::{redis_url, two_instances, PrivateRedis};

/// One instance caching in the given Redis under a prefix of its own.
async fn instance_on(redis: &str) -> TestApp {
    let redis = redis.to_owned();
    TestApp::spawn_with(move |config| {
        config.redis_url = Some(Secret::new(redis));
        config.redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    })
    .await
}

/// The sum of a counter's samples whose labels contain every one of `labels`.
pub async fn counter(app: &TestApp, name: &str, labels: &[&str]) -> f64 {
    let metrics = app.request(Method::GET, "/metrics", None, None, &[]).await;
    metrics
        .text
        .lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn project_with_tasks(app: &TestApp, owner: &TestUser, tasks: usize) -> String {
    let project = app.create_project(owner, "Cached").await;
    for n in 0..tasks {
        app.create_task(owner, &project, json!({ "title": format!("task {n}") }))
            .await;
    }
    project
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_write_answered_by_one_instance_is_read_at_once_on_another() {
    let (a, b) = two_instances(&redis_url()).await;
    let owner = a.register("Owner").await;
    let project = project_with_tasks(&a, &owner, 3).await;
    let tasks = format!("/api/v1/projects/{project}/tasks");
    let next = format!("/api/v1/projects/{project}/tasks/next");
    // B fills every kind of entry.
    for _ in 0..2 {
        assert_eq!(b.task(&owner, &project, 1).await.body["title"], "task 0");
        assert_eq!(titles(&b.get(&tasks, &owner.token).await.body)[0], "task 0");
        assert_eq!(b.get(&next, &owner.token).await.body["id"], 1);
    }
    assert!(
        counter(
            &b,
            "cache_requests_total",
            &["kind=\"task\"", "outcome=\"hit\""]
        )
        .await
            >= 1.0
    );

    for round in 0..20 {
        let title = format!("edit {round}");
        let patched = a
            .patch_task(
                &owner,
                &project,
                1,
                json!({"title": title, "status": "done"}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        // Right after A's answer, B sees the change in every read.
        let task = b.task(&owner, &project, 1).await;
        assert_eq!(task.body["title"], title);
        assert_eq!(task.body["version"], patched.body["version"]);
        assert_eq!(titles(&b.get(&tasks, &owner.token).await.body)[0], title);
        assert_eq!(
            b.get(&next, &owner.token).await.body["id"],
            2,
            "task 1 is done"
        );
        let reopened = a
            .patch_task(&owner, &project, 1, json!({"status": "pending"}))
            .await;
        assert_eq!(reopened.status, 200);
        assert_eq!(b.get(&next, &owner.token).await.body["id"], 1);
    }
    // A deletion too.
    assert_eq!(
        a.delete(&format!("{tasks}/3"), &owner.token).await.status,
        204
    );
    b.task(&owner, &project, 3)
        .await
        .assert_error(404, "task_not_found");
    assert_eq!(titles(&b.get(&tasks, &owner.token).await.body).len(), 2);
}

#[tokio::test]
async fn no_cached_answer_crosses_roles() {
    let (a, b) = two_instances(&redis_url()).await;
    let owner = a.register("Owner").await;
    let viewer = a.register("Viewer").await;
    let editor = a.register("Editor").await;
    let outsider = a.register("Outsider").await;
    let project = project_with_tasks(&a, &owner, 2).await;
    a.add_member(&owner, &project, &viewer, "viewer").await;
    a.add_member(&owner, &project, &editor, "editor").await;
    let tasks = format!("/api/v1/projects/{project}/tasks");

    // Everything a member can read is cached now, on both instances.
    for app in [&a, &b] {
        for user in [&owner, &viewer, &editor] {
            assert_eq!(app.task(user, &project, 1).await.status, 200);
            assert_eq!(app.get(&tasks, &user.token).await.status, 200);
            assert_eq!(
                app.get(&format!("/api/v1/projects/{project}/members"), &user.token)
                    .await
                    .status,
                200
            );
        }
    }
    // Someone who is not a member gets nothing of it.
    for app in [&a, &b] {
        app.task(&outsider, &project, 1)
            .await
            .assert_error(404, "project_not_found");
        app.get(&tasks, &outsider.token)
            .await
            .assert_error(404, "project_not_found");
    }
    // A viewer still may not write.
    b.patch_task(&viewer, &project, 1, json!({"title": "no"}))
        .await
        .assert_error(403, "forbidden");

    // A removal on A shuts the editor out on B at once.
    let removed = a
        .delete(
            &format!("/api/v1/projects/{project}/members/{}", editor.id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, 204);
    b.task(&editor, &project, 1)
        .await
        .assert_error(404, "project_not_found");
    b.get(&tasks, &editor.token)
        .await
        .assert_error(404, "project_not_found");
    let members = b
        .get(&format!("/api/v1/projects/{project}/members"), &owner.token)
        .await;
    assert!(
        !members.text.contains(&editor.id),
        "the member list forgot the editor"
    );

    // A demotion on A is a demotion on B at once.
    a.add_member(&owner, &project, &viewer, "editor").await;
    assert_eq!(
        b.patch_task(&viewer, &project, 1, json!({"title": "now I may"}))
            .await
            .status,
        200
    );
    a.add_member(&owner, &project, &viewer, "viewer").await;
    b.patch_task(&viewer, &project, 1, json!({"title": "not any more"}))
        .await
        .assert_error(403, "forbidden");

    // Signing out on A ends the session on B at once.
    assert_eq!(b.get("/api/v1/auth/me", &viewer.token).await.status, 200);
    let signed_out = a
        .request(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&viewer.token),
            None,
            &[],
        )
        .await;
    assert!(signed_out.status < 300, "{}", signed_out.text);
    b.get("/api/v1/auth/me", &viewer.token)
        .await
        .assert_error(401, "unauthorized");
    b.task(&viewer, &project, 1)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_hundred_concurrent_misses_fill_once() {
    let app = instance_on(&redis_url()).await;
    let owner = app.register("Owner").await;
    let project = project_with_tasks(&app, &owner, 5).await;
    let tasks = format!("/api/v1/projects/{project}/tasks?limit=50");
    let fills = || counter(&app, "cache_fills_total", &["kind=\"list\""]);
    let before = fills().await;
    let pages = join_all((0..100).map(|_| app.get(&tasks, &owner.token))).await;
    assert!(pages
        .iter()
        .all(|page| page.status == 200 && titles(&page.body).len() == 5));
    assert_eq!(
        fills().await - before,
        1.0,
        "one database read for 100 concurrent misses"
    );
}

#[tokio::test]
async fn an_unchanged_list_is_answered_304_from_the_cache_alone() {
    let app = instance_on(&redis_url()).await;
    let owner = app.register("Owner").await;
    let project = project_with_tasks(&app, &owner, 2).await;
    for path in [
        format!("/api/v1/projects/{project}/tasks"),
        format!("/api/v1/projects/{project}/tasks/next"),
    ] {
        let first = app.get(&path, &owner.token).await;
        assert_eq!(first.status, 200);
        let etag = first.header("etag").expect("a validator").to_owned();
        let reads = counter(&app, "db_reads_total", &[]).await;
        let again = if_none_match(&app, &path, &owner, &etag).await;
        assert_eq!(again.status, 304, "{path}");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert!(again.text.is_empty());
        assert_eq!(
            counter(&app, "db_reads_total", &[]).await,
            reads,
            "no database read for a 304"
        );

        app.patch_task(
            &owner,
            &project,
            1,
            json!({"title": format!("changed for {path}")}),
        )
        .await;
        let changed = if_none_match(&app, &path, &owner, &etag).await;
        assert_eq!(
            changed.status, 200,
            "a change makes the old validator stale"
        );
        assert_ne!(changed.header("etag"), Some(etag.as_str()));
    }
}

async fn if_none_match(app: &TestApp, path: &str, user: &TestUser, etag: &str) -> Response {
    app.request(
        Method::GET,
        path,
        Some(&user.token),
        None,
        &[("if-none-match", etag)],
    )
    .await
}

/// `circuit_breaker_state{dependency}`: 0 closed, 1 half-open, 2 open.
pub async fn breaker_gauge(app: &TestApp, dependency: &str) -> f64 {
    counter(
        app,
        "circuit_breaker_state",
        &[&format!("dependency=\"{dependency}\"")],
    )
    .await
}

async fn readiness(app: &TestApp) -> Value {
    app.request(Method::GET, "/readyz", None, None, &[])
        .await
        .body
}

#[tokio::test]
async fn redis_down_degrades_to_postgres_and_recovers_by_itself() {
    let mut redis = PrivateRedis::start().await;
    let app = instance_on(&redis.url()).await;
    let owner = app.register("Owner").await;
    let project = project_with_tasks(&app, &owner, 3).await;
    assert_eq!(readiness(&app).await["checks"]["cache"], "ok");
    assert_eq!(readiness(&app).await["breakers"]["cache"], "closed");
    assert_eq!(breaker_gauge(&app, "cache").await, 0.0);

    redis.kill().await;
    // Every request still answers, correctly and quickly, while Redis is gone.
    let started = Instant::now();
    for round in 0..30 {
        let title = format!("while redis is down {round}");
        let patched = app
            .patch_task(&owner, &project, 1, json!({"title": title}))
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let task = app.task(&owner, &project, 1).await;
        assert_eq!(
            (task.status, task.body["title"].as_str()),
            (200, Some(title.as_str()))
        );
        let page = app
            .get(&format!("/api/v1/projects/{project}/tasks"), &owner.token)
            .await;
        assert_eq!(page.status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded latency without Redis"
    );
    let ready = readiness(&app).await;
    assert_eq!(ready["checks"]["cache"], "degraded", "{ready}");
    assert_ne!(ready["breakers"]["cache"], "closed", "{ready}");
    assert!(
        breaker_gauge(&app, "cache").await > 0.0,
        "open or half-open"
    );
    assert!(
        counter(
            &app,
            "circuit_breaker_opened_total",
            &["dependency=\"cache\""]
        )
        .await
            >= 1.0
    );
    assert_eq!(
        ready["status"], "ok",
        "a dead cache is no reason to stop serving"
    );
    assert!(counter(&app, "cache_requests_total", &["outcome=\"bypass\""]).await > 0.0);

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while readiness(&app).await["checks"]["cache"] != "ok" {
        assert!(Instant::now() < deadline, "the cache did not recover");
        app.task(&owner, &project, 2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(readiness(&app).await["breakers"]["cache"], "closed");
    assert_eq!(breaker_gauge(&app, "cache").await, 0.0);
    // Back on the cache, and still current.
    let patched = app
        .patch_task(&owner, &project, 1, json!({"title": "after"}))
        .await;
    assert_eq!(patched.status, 200);
    for _ in 0..2 {
        assert_eq!(app.task(&owner, &project, 1).await.body["title"], "after");
    }
    assert!(
        counter(
            &app,
            "cache_requests_total",
            &["kind=\"task\"", "outcome=\"hit\""]
        )
        .await
            > 0.0
    );
}
