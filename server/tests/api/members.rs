use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn projects_list_only_the_callers_own() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ben = app.register("Ben").await;
    let created = app
        .post("/api/v1/projects", &ann.token, json!({"name": "  Apollo "}))
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["name"], "Apollo");
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));
    app.create_project(&ben, "Borealis").await;

    let listed = app.get("/api/v1/projects", &ann.token).await;
    assert_eq!(listed.status, 200);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|project| project["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Apollo"]);

    app.post("/api/v1/projects", &ann.token, json!({"name": ""}))
        .await
        .assert_error(422, "validation_failed");
}

#[tokio::test]
async fn owners_add_members_change_roles_and_remove_them() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let member = app.register("Member").await;
    let project = app.create_project(&owner, "P").await;
    let path = format!("/api/v1/projects/{project}/members");

    let added = app
        .post(
            &path,
            &owner.token,
            json!({"email": member.email, "role": "viewer"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["user"]["id"], member.id.as_str());
    assert_eq!(added.body["role"], "viewer");

    let changed = app
        .post(
            &path,
            &owner.token,
            json!({"email": member.email, "role": "editor"}),
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body["role"], "editor");

    let listed = app.get(&path, &member.token).await;
    assert_eq!(listed.status, 200);
    let roles: Vec<(String, String)> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["user"]["id"].as_str().unwrap().to_owned(),
                item["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (owner.id.clone(), "owner".to_owned()),
            (member.id.clone(), "editor".to_owned())
        ]
    );

    app.post(
        &path,
        &owner.token,
        json!({"email": "nobody@example.com", "role": "viewer"}),
    )
    .await
    .assert_error(404, "user_not_found");
    app.post(
        &path,
        &owner.token,
        json!({"email": member.email, "role": "admin"}),
    )
    .await
    .assert_error(422, "invalid_field");

    let removed = app
        .delete(&format!("{path}/{}", member.id), &owner.token)
        .await;
    assert_eq!(removed.status, 204);
    // A removed member can no longer learn the project exists.
    app.get(&format!("/api/v1/projects/{project}/tasks"), &member.token)
        .await
        .assert_error(404, "project_not_found");
    app.delete(&format!("{path}/{}", member.id), &owner.token)
        .await
        .assert_error(404, "member_not_found");
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let other = app.register("Other").await;
    let project = app.create_project(&owner, "P").await;
    let path = format!("/api/v1/projects/{project}/members");

    app.delete(&format!("{path}/{}", owner.id), &owner.token)
        .await
        .assert_error(409, "last_owner");
    app.post(
        &path,
        &owner.token,
        json!({"email": owner.email, "role": "editor"}),
    )
    .await
    .assert_error(409, "last_owner");

    // With a second owner, the first may step down.
    app.add_member(&owner, &project, &other, "owner").await;
    let response = app
        .delete(&format!("{path}/{}", owner.id), &owner.token)
        .await;
    assert_eq!(response.status, 204);
    let listed = app.get(&path, &other.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_may_remove_themselves_but_not_others() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let viewer = app.register("Viewer").await;
    let editor = app.register("Editor").await;
    let project = app.create_project(&owner, "P").await;
    app.add_member(&owner, &project, &viewer, "viewer").await;
    app.add_member(&owner, &project, &editor, "editor").await;
    let path = format!("/api/v1/projects/{project}/members");

    app.delete(&format!("{path}/{}", viewer.id), &editor.token)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.delete(&format!("{path}/{}", viewer.id), &viewer.token)
            .await
            .status,
        204
    );
    app.get(&path, &viewer.token)
        .await
        .assert_error(404, "project_not_found");
}
