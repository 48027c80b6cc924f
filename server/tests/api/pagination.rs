use std::collections::HashSet;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::{TestApp, TestUser};

async fn create_many(app: &TestApp, user: &TestUser, project: &str, count: usize, status: &str) {
    futures::stream::iter(0..count)
        .for_each_concurrent(8, |n| async move {
            app.create_task(
                user,
                project,
                json!({"title": format!("task {n}"), "status": status}),
            )
            .await;
        })
        .await;
}

#[tokio::test]
async fn pages_cover_every_task_once_in_order_while_tasks_are_inserted() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "Big").await;
    create_many(&app, &user, &project, 1_000, "pending").await;

    let mut seen: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/v1/projects/{project}/tasks?limit=97");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, &user.token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 97);
        seen.extend(items.iter().map(|task| task["id"].as_i64().unwrap()));
        // Others keep inserting while we page.
        create_many(&app, &user, &project, 3, "pending").await;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no task twice");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "ordered by id"
    );
    assert!(
        (1..=1_000).all(|id| unique.contains(&id)),
        "every original task seen"
    );
}

#[tokio::test]
async fn status_filter_and_defaults() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    create_many(&app, &user, &project, 120, "pending").await;
    create_many(&app, &user, &project, 30, "done").await;
    create_many(&app, &user, &project, 5, "blocked").await;
    let base = format!("/api/v1/projects/{project}/tasks");

    let first = app.get(&base, &user.token).await;
    assert_eq!(
        first.body["items"].as_array().unwrap().len(),
        100,
        "default page is 100"
    );
    assert!(first.body["next_cursor"].is_string());

    let mut done = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("{base}?status=done&limit=7{cursor}"), &user.token)
            .await;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.iter().all(|task| task["status"] == "done"));
        done += items.len();
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(done, 30);

    let two = app
        .get(
            &format!("{base}?status=done,blocked&limit=500"),
            &user.token,
        )
        .await;
    assert_eq!(two.body["items"].as_array().unwrap().len(), 35);
    assert_eq!(two.body["next_cursor"], json!(null));
}
