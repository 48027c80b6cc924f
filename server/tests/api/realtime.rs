//! Real time on one instance, through the official JavaScript client.

use std::time::Duration;

use serde_json::json;

use crate::helpers::TestApp;
use crate::sockets::{seqs, Clients, WAIT};

#[tokio::test]
async fn connects_with_a_token_over_websocket_and_over_polling() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let mut clients = Clients::start().await;

    for (id, transport) in [("ws", "websocket"), ("poll", "polling")] {
        let connected = clients
            .connect(id, &app.address, Some(&user.token), transport)
            .await;
        assert_eq!(connected.as_deref(), Ok(transport));
        let ack = clients.join(id, &project, None).await;
        assert_eq!(ack, json!({"ok": true, "seq": 0}));
    }

    let task = app
        .create_task(&user, &project, json!({"title": "live"}))
        .await;
    for id in ["ws", "poll"] {
        let events = clients.events(id, 1, WAIT).await;
        assert_eq!(events.len(), 1, "{id}");
        let event = &events[0];
        assert_eq!(event["seq"], 1);
        assert_eq!(event["type"], "task.created");
        assert_eq!(event["project_id"], project.as_str());
        assert_eq!(event["actor_id"], user.id.as_str());
        assert_eq!(event["task"], task);
        assert!(event["at"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused_with_connect_error() {
    let app = TestApp::spawn().await;
    let mut clients = Clients::start().await;
    let bad = clients
        .connect("bad", &app.address, Some("not-a-token"), "websocket")
        .await;
    assert_eq!(bad, Err("invalid or expired token".to_owned()));
    let missing = clients
        .connect("missing", &app.address, None, "websocket")
        .await;
    assert!(missing.unwrap_err().contains("missing credentials"));
    let polling = clients
        .connect("poll", &app.address, Some("nope"), "polling")
        .await;
    assert_eq!(polling, Err("invalid or expired token".to_owned()));
}

#[tokio::test]
async fn non_members_and_unknown_projects_get_the_same_refusal() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let stranger = app.register("Stranger").await;
    let project = app.create_project(&owner, "P").await;
    let mut clients = Clients::start().await;
    clients
        .connect("s", &app.address, Some(&stranger.token), "websocket")
        .await
        .unwrap();

    let foreign = clients.join("s", &project, None).await;
    let unknown = clients
        .join("s", &uuid::Uuid::now_v7().to_string(), None)
        .await;
    let garbage = clients.join("s", "not-a-project", None).await;
    assert_eq!(foreign["ok"], false);
    assert_eq!(foreign["error"]["code"], "project_not_found");
    assert_eq!(foreign, unknown);
    assert_eq!(unknown, garbage);

    // Nothing of the project reaches them.
    app.create_task(&owner, &project, json!({"title": "secret"}))
        .await;
    assert!(clients
        .events("s", 1, Duration::from_millis(500))
        .await
        .is_empty());
}

#[tokio::test]
async fn join_with_since_replays_then_continues_live() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    for n in 1..=5 {
        app.create_task(&user, &project, json!({"title": format!("t{n}")}))
            .await;
    }
    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();

    let ack = clients.join("c", &project, Some(2)).await;
    assert_eq!(ack, json!({"ok": true, "seq": 5}));
    // Replayed events were emitted before the ack, so they are already here.
    let replayed = clients.drain("c", "event");
    assert_eq!(seqs(&replayed), [3, 4, 5]);
    assert_eq!(replayed[0]["task"]["title"], "t3");

    app.patch_task(&user, &project, 1, json!({"status": "done"}))
        .await;
    // Well before the periodic reconciliation could have found it.
    let live = clients.events("c", 1, Duration::from_secs(2)).await;
    assert_eq!(seqs(&live), [6]);
    assert_eq!(live[0]["type"], "task.updated");

    // since = latest: nothing to replay.
    clients
        .connect("d", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    assert_eq!(
        clients.join("d", &project, Some(6)).await,
        json!({"ok": true, "seq": 6})
    );
    assert!(clients.drain("d", "event").is_empty());
}

#[tokio::test]
async fn since_ahead_of_the_log_or_too_far_behind_is_refused() {
    let app = TestApp::spawn_with(|config| config.replay_max_events = 3).await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    for n in 1..=5 {
        app.create_task(&user, &project, json!({"title": format!("t{n}")}))
            .await;
    }
    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();

    let ahead = clients.join("c", &project, Some(6)).await;
    assert_eq!(
        (ahead["ok"].clone(), ahead["error"]["code"].clone()),
        (json!(false), json!("invalid_since"))
    );
    let negative = clients.join("c", &project, Some(-1)).await;
    assert_eq!(negative["error"]["code"], "invalid_since");
    let behind = clients.join("c", &project, Some(1)).await;
    assert_eq!(
        (behind["ok"].clone(), behind["error"]["code"].clone()),
        (json!(false), json!("resync_required"))
    );
    assert!(
        clients.drain("c", "event").is_empty(),
        "a refused join replays nothing"
    );
    assert_eq!(
        clients.join("c", &project, Some(2)).await,
        json!({"ok": true, "seq": 5})
    );
    assert_eq!(seqs(&clients.drain("c", "event")), [3, 4, 5]);
}

#[tokio::test]
async fn leave_stops_delivery() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    clients.join("c", &project, None).await;
    app.create_task(&user, &project, json!({"title": "a"}))
        .await;
    assert_eq!(seqs(&clients.events("c", 1, WAIT).await), [1]);

    let ack = clients
        .emit("c", "leave", json!({"project_id": project}))
        .await;
    assert_eq!(ack, json!({"ok": true}));
    app.create_task(&user, &project, json!({"title": "b"}))
        .await;
    assert!(clients
        .events("c", 1, Duration::from_millis(500))
        .await
        .is_empty());
}

#[tokio::test]
async fn writes_over_the_socket_behave_like_rest() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let viewer = app.register("Viewer").await;
    let project = app.create_project(&owner, "P").await;
    app.add_member(&owner, &project, &viewer, "viewer").await;
    let mut clients = Clients::start().await;
    clients
        .connect("o", &app.address, Some(&owner.token), "websocket")
        .await
        .unwrap();
    clients
        .connect("v", &app.address, Some(&viewer.token), "websocket")
        .await
        .unwrap();
    clients.join("v", &project, None).await;

    let created = clients
        .emit("o", "task:create", json!({"project_id": project, "task": {"title": "over the socket", "priority": "high"}}))
        .await;
    assert_eq!(created["ok"], true, "{created}");
    assert_eq!(created["task"]["id"], 1);
    assert_eq!(created["task"]["priority"], "high");
    let seen = clients.events("v", 1, WAIT).await;
    assert_eq!(seen[0]["task"], created["task"]);
    assert_eq!(app.task(&owner, &project, 1).await.body, created["task"]);

    clients
        .emit(
            "o",
            "task:create",
            json!({"project_id": project, "task": {"title": "second", "dependencies": [1]}}),
        )
        .await;
    let cycle = clients
        .emit(
            "o",
            "task:update",
            json!({"project_id": project, "id": 1, "changes": {"dependencies": [2]}}),
        )
        .await;
    assert_eq!(cycle["ok"], false);
    assert_eq!(cycle["error"]["code"], "dependency_cycle");
    assert_eq!(cycle["error"]["status"], 409);

    let stale = clients
        .emit(
            "o",
            "task:update",
            json!({"project_id": project, "id": 1, "changes": {"title": "x"}, "if_match": 7}),
        )
        .await;
    assert_eq!(stale["error"]["code"], "version_mismatch");

    let updated = clients
        .emit(
            "o",
            "task:update",
            json!({"project_id": project, "id": 1, "changes": {"status": "done"}, "if_match": 1}),
        )
        .await;
    assert_eq!(updated["task"]["version"], 2);

    let invalid = clients
        .emit(
            "o",
            "task:create",
            json!({"project_id": project, "task": {"title": "x", "colour": "red"}}),
        )
        .await;
    assert_eq!(invalid["error"]["code"], "invalid_field");
    assert_eq!(invalid["error"]["status"], 422);
    let wrong_type = clients
        .emit(
            "o",
            "task:create",
            json!({"project_id": project, "task": {"title": 5}}),
        )
        .await;
    assert_eq!(wrong_type["error"]["status"], 400);

    let forbidden = clients
        .emit(
            "v",
            "task:create",
            json!({"project_id": project, "task": {"title": "nope"}}),
        )
        .await;
    assert_eq!(forbidden["error"]["code"], "forbidden");

    let deleted = clients
        .emit("o", "task:delete", json!({"project_id": project, "id": 1}))
        .await;
    assert_eq!(deleted, json!({"ok": true}));
    // The viewer saw every change, in order: create, create, update, delete,
    // and the dependent's update.
    let events = clients.events("v", 4, WAIT).await;
    assert_eq!(seqs(&events), [2, 3, 4, 5]);
    assert_eq!(events[2]["type"], "task.deleted");
    assert_eq!(events[3]["type"], "task.updated");
    assert_eq!(events[3]["task"]["dependencies"], json!([]));
}

#[tokio::test]
async fn a_removed_member_stops_receiving_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let member = app.register("Member").await;
    let project = app.create_project(&owner, "P").await;
    app.add_member(&owner, &project, &member, "editor").await;
    let mut clients = Clients::start().await;
    clients
        .connect("m", &app.address, Some(&member.token), "websocket")
        .await
        .unwrap();
    clients.join("m", &project, None).await;
    app.create_task(&owner, &project, json!({"title": "before"}))
        .await;
    assert_eq!(seqs(&clients.events("m", 1, WAIT).await), [1]);

    let removed = app
        .delete(
            &format!("/api/v1/projects/{project}/members/{}", member.id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, 204);
    app.create_task(&owner, &project, json!({"title": "after"}))
        .await;
    assert!(clients
        .events("m", 1, Duration::from_millis(700))
        .await
        .is_empty());
    let again = clients.join("m", &project, None).await;
    assert_eq!(again["error"]["code"], "project_not_found");
}

#[tokio::test]
async fn presence_lists_each_joined_user_once() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let project = app.create_project(&ann, "P").await;
    app.add_member(&ann, &project, &bob, "viewer").await;
    let mut clients = Clients::start().await;

    let names = |message: &serde_json::Value| -> Vec<String> {
        message["data"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };
    clients
        .connect("ann1", &app.address, Some(&ann.token), "websocket")
        .await
        .unwrap();
    clients.join("ann1", &project, None).await;
    let first = clients
        .next_of("ann1", &["presence"], WAIT)
        .await
        .expect("presence for the joiner");
    assert_eq!(names(&first), ["Ann"]);
    assert_eq!(first["data"]["project_id"], project.as_str());

    clients
        .connect("bob", &app.address, Some(&bob.token), "websocket")
        .await
        .unwrap();
    clients.join("bob", &project, None).await;
    let seen_by_bob = clients.next_of("bob", &["presence"], WAIT).await.unwrap();
    assert_eq!(names(&seen_by_bob), ["Ann", "Bob"]);
    let seen_by_ann = clients.next_of("ann1", &["presence"], WAIT).await.unwrap();
    assert_eq!(names(&seen_by_ann), ["Ann", "Bob"]);

    // A second tab of Ann's changes nothing for the others, but the joiner
    // still hears the current set.
    clients
        .connect("ann2", &app.address, Some(&ann.token), "websocket")
        .await
        .unwrap();
    clients.join("ann2", &project, None).await;
    let ann2 = clients.next_of("ann2", &["presence"], WAIT).await.unwrap();
    assert_eq!(names(&ann2), ["Ann", "Bob"]);
    assert!(clients
        .next_of("bob", &["presence"], Duration::from_millis(400))
        .await
        .is_none());

    // Bob leaves: the others hear it.
    clients.close("bob").await;
    let after = clients.next_of("ann1", &["presence"], WAIT).await.unwrap();
    assert_eq!(names(&after), ["Ann"]);
}

#[tokio::test]
async fn joining_while_writes_arrive_neither_skips_nor_repeats() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    app.create_task(&user, &project, json!({"title": "seed"}))
        .await;
    let mut clients = Clients::start().await;

    const CHANGES: i64 = 150;
    let writer = {
        let (address, token, project) = (app.address.clone(), user.token.clone(), project.clone());
        tokio::spawn(async move {
            let client = crate::helpers::http();
            for n in 0..CHANGES {
                let response = client
                    .patch(format!("{address}/api/v1/projects/{project}/tasks/1"))
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("edit {n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    };
    // Joins at staggered moments, with and without `since`, while the writer runs.
    let mut joined = Vec::new();
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let id = format!("c{n}");
        clients
            .connect(&id, &app.address, Some(&user.token), "websocket")
            .await
            .unwrap();
        let since = if n % 2 == 0 { Some(1) } else { None };
        let ack = clients.join(&id, &project, since).await;
        assert_eq!(ack["ok"], true, "{ack}");
        joined.push((id, since.unwrap_or(ack["seq"].as_i64().unwrap())));
    }
    writer.await.unwrap();
    let last = 1 + CHANGES;
    for (id, from) in joined {
        let expected: Vec<i64> = (from + 1..=last).collect();
        let events = clients.events(&id, expected.len(), WAIT).await;
        assert_eq!(seqs(&events), expected, "{id} joined after {from}");
        assert!(
            clients
                .events(&id, 1, Duration::from_millis(200))
                .await
                .is_empty(),
            "{id}: extra events"
        );
    }
}

#[tokio::test]
async fn real_time_is_visible_in_metrics() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    let mut clients = Clients::start().await;
    clients
        .connect("c", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    clients.join("c", &project, None).await;
    app.create_task(&user, &project, json!({"title": "measured"}))
        .await;
    assert_eq!(clients.events("c", 1, WAIT).await.len(), 1);

    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    for name in [
        "realtime_connections ",
        "realtime_projects ",
        "realtime_deliveries_total ",
        "realtime_fanout_seconds_bucket",
        "realtime_fanout_up ",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
}

/// A raw WebSocket Socket.IO client that joins and then stops reading, like
/// a client on a stalled network.
async fn stalled_client(
    app: &TestApp,
    token: &str,
    project: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        app.address.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut sent_connect = false;
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("socket closed during the handshake");
        };
        let text = text.as_str();
        if text == "2" {
            socket.send(Message::text("3")).await.unwrap();
        } else if text.starts_with('0') && !sent_connect {
            sent_connect = true;
            socket
                .send(Message::text(format!("40{}", json!({ "token": token }))))
                .await
                .unwrap();
        } else if text.starts_with("40") {
            let join = json!(["join", {"project_id": project}]);
            socket
                .send(Message::text(format!("421{join}")))
                .await
                .unwrap();
        } else if text.starts_with("431") {
            assert!(text.contains("\"ok\":true"), "{text}");
            return socket;
        }
    }
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_disconnected_and_recovers_by_replay() {
    let app = TestApp::spawn_with(|config| config.socket_send_buffer_packets = 4).await;
    let user = app.register("Ann").await;
    let project = app.create_project(&user, "P").await;
    // Big events fill the socket buffers quickly: each carries the whole task.
    app.create_task(
        &user,
        &project,
        json!({"title": "big", "details": "x".repeat(900_000)}),
    )
    .await;
    let mut stalled = stalled_client(&app, &user.token, &project).await;
    let mut clients = Clients::start().await;
    clients
        .connect("healthy", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    clients.join("healthy", &project, None).await;

    for n in 0..20 {
        app.patch_task(&user, &project, 1, json!({"title": format!("edit {n}")}))
            .await;
    }
    // The healthy client is unaffected…
    assert_eq!(
        seqs(&clients.events("healthy", 20, WAIT).await),
        (2..=21).collect::<Vec<_>>()
    );
    // …the stalled one was cut off instead of being buffered without bound.
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    let disconnected = metrics
        .lines()
        .find_map(|line| line.strip_prefix("realtime_slow_consumers_disconnected_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        disconnected >= 1.0,
        "no slow consumer was disconnected:\n{metrics}"
    );
    // When it reads again it finds what was queued before the cut, then the
    // server's disconnect: it knows to re-join.
    let closed = tokio::time::timeout(WAIT, async {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while let Some(message) = stalled.next().await {
            match message {
                Ok(Message::Text(text)) if text.as_str().starts_with("41") => return,
                Ok(Message::Close(_)) | Err(_) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled socket was not disconnected");

    // Coming back with `since`, it is replayed what it missed.
    clients
        .connect("back", &app.address, Some(&user.token), "websocket")
        .await
        .unwrap();
    let ack = clients.join("back", &project, Some(16)).await;
    assert_eq!(ack, json!({"ok": true, "seq": 21}));
    assert_eq!(
        seqs(&clients.drain("back", "event")),
        (17..=21).collect::<Vec<_>>()
    );
}

/// Connects `id`, retrying while the server still counts a connection that
/// was just closed (its disconnect is handled asynchronously).
async fn connect_eventually(clients: &mut Clients, id: &str, address: &str, token: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match clients.connect(id, address, Some(token), "websocket").await {
            Ok(_) => return,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(refusal) => panic!("{id} was never admitted again: {refusal}"),
        }
    }
}

#[tokio::test]
async fn connections_beyond_the_instance_limit_are_refused_until_one_leaves() {
    let app = TestApp::spawn_with(|config| config.socket_max_connections = 2).await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let mut clients = Clients::start().await;
    for (id, user) in [("a1", &ann), ("b1", &bob)] {
        clients
            .connect(id, &app.address, Some(&user.token), "websocket")
            .await
            .unwrap();
    }
    let refused = clients
        .connect("a2", &app.address, Some(&ann.token), "websocket")
        .await;
    assert_eq!(
        refused,
        Err(protocol::handshake_refusal::TOO_MANY_CONNECTIONS.to_owned())
    );
    clients.close("b1").await;
    connect_eventually(&mut clients, "a3", &app.address, &ann.token).await;
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    assert!(
        metrics.contains("realtime_connections_refused_total{limit=\"instance\"}"),
        "the refusal is counted"
    );
}

#[tokio::test]
async fn a_user_past_its_connection_limit_is_refused_and_others_are_not() {
    let app = TestApp::spawn_with(|config| config.socket_max_connections_per_user = 2).await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let mut clients = Clients::start().await;
    for id in ["a1", "a2"] {
        clients
            .connect(id, &app.address, Some(&ann.token), "websocket")
            .await
            .unwrap();
    }
    let refused = clients
        .connect("a3", &app.address, Some(&ann.token), "websocket")
        .await;
    assert_eq!(
        refused,
        Err(protocol::handshake_refusal::TOO_MANY_USER_CONNECTIONS.to_owned())
    );
    // Refusals are not sign-outs: the token is still good.
    assert!(!protocol::handshake_refusal::refuses_credentials(
        &refused.unwrap_err()
    ));
    clients
        .connect("b1", &app.address, Some(&bob.token), "websocket")
        .await
        .expect("another user is admitted");
    clients.close("a1").await;
    connect_eventually(&mut clients, "a4", &app.address, &ann.token).await;
}

#[tokio::test]
async fn a_connection_follows_a_bounded_number_of_projects() {
    let app = TestApp::spawn_with(|config| config.socket_max_projects_per_connection = 2).await;
    let ann = app.register("Ann").await;
    let mut projects = Vec::new();
    for name in ["P1", "P2", "P3"] {
        projects.push(app.create_project(&ann, name).await);
    }
    let mut clients = Clients::start().await;
    clients
        .connect("a", &app.address, Some(&ann.token), "websocket")
        .await
        .unwrap();
    for project in &projects[..2] {
        assert_eq!(clients.join("a", project, None).await["ok"], true);
    }
    // Joining one it already follows is not one more.
    assert_eq!(clients.join("a", &projects[0], None).await["ok"], true);
    let refused = clients.join("a", &projects[2], None).await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "too_many_projects");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 2 projects"));
    let left = clients
        .emit("a", "leave", json!({"project_id": projects[0]}))
        .await;
    assert_eq!(left["ok"], true);
    assert_eq!(clients.join("a", &projects[2], None).await["ok"], true);
}
