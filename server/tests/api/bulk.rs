//! Bulk changes: one change to many tasks as one change set, over REST and
//! Socket.IO: one transaction, one event per task in the order asked, and
//! refused whole when any part of it is wrong.

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestUser};
use crate::sockets::{seqs, Clients, WAIT};

async fn tasks(app: &TestApp, user: &TestUser, project: &str, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let task = app
            .create_task(user, project, json!({"title": format!("Task {n}")}))
            .await;
        ids.push(task["id"].as_i64().unwrap());
    }
    ids
}

/// Every task of the project as (id, version, status), in id order.
async fn state(app: &TestApp, project: &str) -> Vec<(i64, i64, String)> {
    sqlx::query_as(
        "select task_id, version, status::text from tasks where project_id = $1::uuid order by task_id",
    )
    .bind(project)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_bulk_change_of_100_tasks_reaches_another_client_as_100_ordered_events() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let bob = app.register("Bob").await;
    let project = app.create_project(&ada, "Bulk").await;
    app.add_member(&ada, &project, &bob, "editor").await;
    let mut ids = tasks(&app, &ada, &project, 100).await;
    // The change set follows the order asked, not id order.
    ids.reverse();
    ids.swap(3, 70);

    let mut clients = Clients::start().await;
    clients
        .connect("bob", &app.address, Some(&bob.token), "websocket")
        .await
        .unwrap();
    let joined = clients.join("bob", &project, None).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let before = joined["seq"].as_i64().unwrap();

    let answer = app
        .post(
            &format!("/api/v1/projects/{project}/tasks/bulk"),
            &ada.token,
            json!({"task_ids": ids, "set": {"status": "in-progress", "priority": "high"}}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let changed = answer.body["tasks"].as_array().unwrap();
    assert_eq!(changed.len(), 100);
    assert!(changed
        .iter()
        .all(|task| task["status"] == "in-progress" && task["priority"] == "high"));
    assert_eq!(answer.body["seq"], before + 100);

    let events = clients.events("bob", 100, WAIT).await;
    assert_eq!(
        seqs(&events),
        ((before + 1)..=(before + 100)).collect::<Vec<_>>()
    );
    let order: Vec<i64> = events
        .iter()
        .map(|event| event["task"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, ids, "one event per task, in the order asked");
    assert!(events.iter().all(|event| event["type"] == "task.updated"));

    // Over Socket.IO too, with the same answer in the acknowledgement; a
    // change that changes nothing records nothing.
    let ack = clients
        .emit(
            "bob",
            "task:bulk",
            json!({"project_id": project, "change": {"task_ids": &ids[..10], "set": {"assignee_id": bob.id}}}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["seq"], before + 110);
    assert_eq!(seqs(&clients.events("bob", 10, WAIT).await).len(), 10);
    let again = clients
        .emit(
            "bob",
            "task:bulk",
            json!({"project_id": project, "change": {"task_ids": &ids[..10], "set": {"assignee_id": bob.id}}}),
        )
        .await;
    assert_eq!(again["ok"], true, "{again}");
    assert!(again.get("seq").is_none(), "{again}");
    assert_eq!(app.events(&project).await.len() as i64, before + 110);
}

#[tokio::test]
async fn a_bulk_change_is_refused_whole_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let vic = app.register("Vic").await;
    let project = app.create_project(&ada, "Refusals").await;
    app.add_member(&ada, &project, &vic, "viewer").await;
    let ids = tasks(&app, &ada, &project, 5).await;
    let path = format!("/api/v1/projects/{project}/tasks/bulk");
    let before = state(&app, &project).await;
    let events_before = app.events(&project).await.len();

    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"task_ids": [ids[0], 999], "set": {"status": "done"}}),
            404,
            "task_not_found",
            "999",
        ),
        (
            json!({"task_ids": ids, "set": {"status": "done"}, "if_versions": {ids[2].to_string(): 7}}),
            412,
            "version_mismatch",
            "version",
        ),
        (
            json!({"task_ids": [], "set": {"status": "done"}}),
            422,
            "validation_failed",
            "1 to 500",
        ),
        (
            json!({"task_ids": (1..=501).collect::<Vec<i64>>(), "set": {"status": "done"}}),
            422,
            "validation_failed",
            "not 501",
        ),
        (
            json!({"task_ids": [ids[0], ids[0]], "set": {"status": "done"}}),
            422,
            "validation_failed",
            "twice",
        ),
        (
            json!({"task_ids": ids, "set": {"status": "done"}, "delete": true}),
            422,
            "validation_failed",
            "not both",
        ),
        (
            json!({"task_ids": ids}),
            422,
            "validation_failed",
            "nothing to do",
        ),
        (
            json!({"task_ids": ids, "set": {}}),
            422,
            "validation_failed",
            "names no field",
        ),
        (
            json!({"task_ids": ids, "set": {"status": "done"}, "if_versions": {"42": 1}}),
            422,
            "validation_failed",
            "not one of task_ids",
        ),
        (
            json!({"task_ids": ids, "set": {"status": "finished"}}),
            422,
            "invalid_field",
            "finished",
        ),
        (
            json!({"task_ids": ids, "set": {"title": "x"}}),
            422,
            "invalid_field",
            "title",
        ),
        (
            json!({"task_ids": ids, "set": {"assignee_id": uuid::Uuid::new_v4()}}),
            422,
            "unknown_assignee",
            "not a member",
        ),
        (
            json!({"task_ids": "all", "set": {"status": "done"}}),
            400,
            "invalid_json_type",
            "sequence",
        ),
    ];
    for (body, status, code, says) in cases {
        let answer = app.post(&path, &ada.token, body.clone()).await;
        answer.assert_error(status, code);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    let viewer = app
        .post(&path, &vic.token, json!({"task_ids": ids, "delete": true}))
        .await;
    viewer.assert_error(403, "forbidden");

    assert_eq!(state(&app, &project).await, before, "nothing changed");
    assert_eq!(app.events(&project).await.len(), events_before);
}

#[tokio::test]
async fn a_bulk_delete_takes_subtasks_along_and_strips_dependencies() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let project = app.create_project(&ada, "Deletes").await;
    let parent = app
        .create_task(&ada, &project, json!({"title": "Parent"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let mut subtasks = Vec::new();
    for n in 0..2 {
        let subtask = app
            .create_task(
                &ada,
                &project,
                json!({"title": format!("Sub {n}"), "parent_id": parent}),
            )
            .await;
        subtasks.push(subtask["id"].as_i64().unwrap());
    }
    let other = app
        .create_task(&ada, &project, json!({"title": "Other"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let dependent = app
        .create_task(
            &ada,
            &project,
            json!({"title": "Dependent", "dependencies": [parent, other]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let seq_before = app.events(&project).await.len() as i64;

    // The parent's subtask comes after the parent: already gone, as asked.
    let answer = app
        .post(
            &format!("/api/v1/projects/{project}/tasks/bulk"),
            &ada.token,
            json!({"task_ids": [parent, subtasks[0], other], "delete": true}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.body["deleted"],
        json!([subtasks[0], subtasks[1], parent, other])
    );
    let events: Vec<(String, i64)> = app
        .events(&project)
        .await
        .into_iter()
        .filter(|(seq, _, _)| *seq > seq_before)
        .map(|(_, kind, id)| (kind, id))
        .collect();
    let deleted = |id: i64| ("task.deleted".to_owned(), id);
    let updated = |id: i64| ("task.updated".to_owned(), id);
    assert_eq!(
        events,
        [
            deleted(subtasks[0]),
            deleted(subtasks[1]),
            deleted(parent),
            updated(dependent),
            deleted(other),
            updated(dependent),
        ]
    );
    assert_eq!(answer.body["seq"], seq_before + 6);
    let left = app
        .get(
            &format!("/api/v1/projects/{project}/tasks/{dependent}"),
            &ada.token,
        )
        .await;
    assert_eq!(left.body["dependencies"], json!([]));
}
