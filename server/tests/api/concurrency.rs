use futures::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn concurrent_patches_leave_gapless_seqs_in_every_project() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let mut projects = Vec::new();
    for n in 0..5 {
        let project = app.create_project(&user, &format!("P{n}")).await;
        for t in 0..3 {
            app.create_task(&user, &project, json!({"title": format!("t{t}")}))
                .await;
        }
        projects.push(project);
    }

    // 50 PATCHes, 10 per project, all in flight at once.
    let patches = (0..50).map(|n| {
        let project = &projects[n % 5];
        let task_id = (n / 5) % 3 + 1;
        app.patch_task(
            &user,
            project,
            task_id as i64,
            json!({"title": format!("edit {n}")}),
        )
    });
    for response in join_all(patches).await {
        assert_eq!(response.status, 200, "{}", response.text);
    }

    for project in &projects {
        let events = app.events(project).await;
        let seqs: Vec<i64> = events.iter().map(|(seq, _, _)| *seq).collect();
        let expected: Vec<i64> = (1..=13).collect();
        assert_eq!(
            seqs, expected,
            "3 creates + 10 patches, gapless, no duplicate"
        );
        let last_seq: i64 =
            sqlx::query_scalar("select last_seq from projects where project_id = $1::uuid")
                .bind(project)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(last_seq, 13);
        // Each task's version counts its own changes.
        let versions: i64 = sqlx::query_scalar(
            "select sum(version)::bigint from tasks where project_id = $1::uuid",
        )
        .bind(project)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(versions, 3 + 10);
    }
}

#[tokio::test]
async fn a_failed_write_leaves_no_gap() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "a"}))
        .await;
    app.patch_task(&user, &project, 1, json!({"dependencies": [1]}))
        .await
        .assert_error(409, "dependency_cycle");
    app.post(
        &format!("/api/v1/projects/{project}/tasks"),
        &user.token,
        json!({"title": "x", "dependencies": [9]}),
    )
    .await
    .assert_error(422, "unknown_dependency");
    app.create_task(&user, &project, json!({"title": "b"}))
        .await;
    let seqs: Vec<i64> = app
        .events(&project)
        .await
        .iter()
        .map(|(seq, _, _)| *seq)
        .collect();
    assert_eq!(seqs, [1, 2]);
}
