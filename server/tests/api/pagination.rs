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

/// What happens between page reads in a generated walk.
#[derive(Debug, Clone)]
enum Step {
    ReadPage,
    Insert,
    /// Deletes the live task at this position (modulo how many there are).
    Delete(usize),
}

#[test]
fn a_walk_through_pages_sees_every_surviving_task_once_in_order_whatever_changes_meanwhile() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (app, user) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let user = app.register("Ann").await;
        (app, user)
    });
    let step = prop_oneof![
        3 => Just(Step::ReadPage),
        2 => Just(Step::Insert),
        2 => any::<usize>().prop_map(Step::Delete),
    ];
    let walk = (
        0..25usize,
        1..8usize,
        proptest::collection::vec(step, 0..40),
    );
    let mut runner = TestRunner::new(Config {
        cases: 40,
        // Run by hand, not by the macro: there is no source file to keep
        // failing cases beside; a failure prints its minimal case instead.
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&walk, |(initial, limit, steps)| {
        let failure = runtime.block_on(async {
            let project = app.create_project(&user, "Walk").await;
            let base = format!("/api/v1/projects/{project}/tasks");
            let create = async || {
                app.create_task(&user, &project, json!({"title": "t"}))
                    .await["id"]
                    .as_i64()
                    .unwrap()
            };
            let mut live: Vec<i64> = Vec::new();
            for _ in 0..initial {
                live.push(create().await);
            }
            let mut deleted: HashSet<i64> = HashSet::new();
            let mut seen: Vec<i64> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut finished = false;
            // The tasks there were when the walk ended.
            let mut at_the_end: Vec<i64> = Vec::new();
            let steps = steps.into_iter().map(Some).chain(std::iter::repeat(None));
            for step in steps {
                match step {
                    Some(Step::Insert) => live.push(create().await),
                    Some(Step::Delete(at)) if !live.is_empty() => {
                        let id = live.remove(at % live.len());
                        let gone = app.delete(&format!("{base}/{id}"), &user.token).await;
                        assert_eq!(gone.status, 204, "{}", gone.text);
                        deleted.insert(id);
                    }
                    Some(Step::Delete(_)) => {}
                    Some(Step::ReadPage) | None if !finished => {
                        let mut path = format!("{base}?limit={limit}");
                        if let Some(cursor) = &cursor {
                            path.push_str(&format!("&cursor={cursor}"));
                        }
                        let page = app.get(&path, &user.token).await;
                        assert_eq!(page.status, 200, "{}", page.text);
                        for item in page.body["items"].as_array().unwrap() {
                            let id = item["id"].as_i64().unwrap();
                            if deleted.contains(&id) {
                                return Some(format!("{id} was served after its deletion"));
                            }
                            seen.push(id);
                        }
                        match page.body["next_cursor"].as_str() {
                            Some(next) => cursor = Some(next.to_owned()),
                            None => {
                                finished = true;
                                at_the_end.clone_from(&live);
                            }
                        }
                    }
                    Some(Step::ReadPage) => {}
                    None => break,
                }
            }
            if !seen.windows(2).all(|pair| pair[0] < pair[1]) {
                return Some(format!("not once each in order: {seen:?}"));
            }
            // A new task's id is above every id there is, so beyond the
            // cursor: a walk must meet every task there still was when it
            // ended, whenever it was inserted.
            let missed: Vec<&i64> = at_the_end.iter().filter(|id| !seen.contains(id)).collect();
            if !missed.is_empty() {
                return Some(format!("never served: {missed:?} (saw {seen:?})"));
            }
            None
        });
        match failure {
            Some(failure) => Err(TestCaseError::fail(failure)),
            None => Ok(()),
        }
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
