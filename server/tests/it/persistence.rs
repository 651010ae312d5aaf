//! Durability of the embedded SQLite store: what the REST API acknowledged
//! is there after a clean restart, and after the process is killed with
//! SIGKILL, when a new server opens the same file.

use std::os::unix::process::ExitStatusExt;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;

use crate::server_bin;

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/db.sqlite", dir.path().display())
}

async fn get(srv: &TestServer, path: &str) -> Value {
    srv.admin(Method::GET, path, None).await
}

#[tokio::test]
async fn data_survives_a_clean_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite_url(&dir);

    let srv = TestServer::start_on(&db).await;
    let user = srv
        .post(
            "/api/users",
            json!({"name": "Ada", "avatar": "https://example.com/ada.png"}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let tokens = srv
        .post(
            "/api/auth/token",
            json!({"userId": user_id, "ttlSeconds": 3600}),
        )
        .await;
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let revoked = srv
        .post(
            "/api/auth/token",
            json!({"userId": user_id, "ttlSeconds": 3600}),
        )
        .await;
    srv.post("/api/auth/revoke", json!({"tokenId": revoked["tokenId"]}))
        .await;
    let room = srv
        .post(
            "/api/rooms",
            json!({"name": "Durable room", "status": "paused", "visibility": "private"}),
        )
        .await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let prize = srv
        .post(
            &format!("/api/rooms/{room_id}/prizes"),
            json!({"name": "Mug", "description": "A mug", "imageUrl": "https://example.com/mug.png", "quantity": 3}),
        )
        .await;
    let participant = srv
        .post(
            &format!("/api/rooms/{room_id}/participants"),
            json!({"userId": user_id, "role": "moderator"}),
        )
        .await;
    let notification = srv
        .post(
            &format!("/api/users/{user_id}/notifications"),
            json!({"type": "announcement", "title": "Hello", "message": "Welcome", "data": {"roomId": room_id, "n": 1}}),
        )
        .await;
    // What the first server reads back is what the second must read back.
    assert_eq!(get(&srv, &format!("/api/users/{user_id}")).await, user);
    assert_eq!(get(&srv, &format!("/api/rooms/{room_id}")).await, room);
    srv.stop().await;

    let srv = TestServer::start_on(&db).await;
    assert_eq!(get(&srv, &format!("/api/users/{user_id}")).await, user);
    assert_eq!(user["name"], json!("Ada"));
    assert_eq!(user["avatar"], json!("https://example.com/ada.png"));
    assert_eq!(get(&srv, &format!("/api/rooms/{room_id}")).await, room);
    assert_eq!(room["name"], json!("Durable room"));
    assert_eq!(room["status"], json!("paused"));
    assert_eq!(room["visibility"], json!("private"));
    assert_eq!(
        get(&srv, &format!("/api/rooms/{room_id}/prizes")).await,
        json!([prize])
    );
    assert_eq!(prize["quantity"], json!(3));
    assert_eq!(prize["quantityRemaining"], json!(3));
    assert_eq!(
        get(&srv, &format!("/api/rooms/{room_id}/participants")).await,
        json!([participant])
    );
    assert_eq!(participant["userId"], json!(user_id));
    assert_eq!(participant["role"], json!("moderator"));
    assert_eq!(
        get(&srv, &format!("/api/users/{user_id}/notifications")).await,
        json!([notification])
    );
    assert_eq!(notification["read"], json!(false));
    assert_eq!(notification["data"], json!({"roomId": room_id, "n": 1}));

    // Tokens too: the access token still connects (and, as a participant
    // of the private room, subscribes); the revoked one stays revoked.
    let mut socket = srv.connect(&access, "/").await;
    let reply = ack(&socket, "room:subscribe", json!({"roomId": room_id})).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(
        reply,
        json!({"success": true, "room": {"id": room_id, "name": "Durable room", "status": "paused"}})
    );
    let confirm = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &confirm);
    assert_eq!(confirm["roomId"], json!(room_id));
    let reply = ack(&socket, "presence:get_online", json!({"roomId": room_id})).await;
    assert_ack_schema("presence:get_online", &reply);
    assert_eq!(reply["count"], json!(1), "{reply}");
    assert_eq!(reply["users"][0]["id"], json!(user_id), "{reply}");
    socket.disconnect().await;
    assert_eq!(
        srv.connect_refused(revoked["accessToken"].as_str().unwrap(), "/")
            .await,
        "Authentication failed: Token revoked"
    );
    // And the new server keeps writing to the same file.
    let (status, body) = srv
        .admin_call(
            Method::PATCH,
            &format!("/api/rooms/{room_id}"),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], json!("active"));
    srv.stop().await;
    drop(dir);
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite_url(&dir);

    let mut first = ServerProcess::start(server_bin(), &db);
    let mut rooms = Vec::new();
    let mut users = Vec::new();
    for i in 0..50 {
        let (status, room) = first
            .admin_call(
                Method::POST,
                "/api/rooms",
                Some(json!({"name": format!("Room {i}"), "visibility": "public"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "room {i}: {room}");
        rooms.push(room);
        let (status, user) = first
            .admin_call(
                Method::POST,
                "/api/users",
                Some(json!({"name": format!("User {i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "user {i}: {user}");
        users.push(user);
    }
    let status = first.kill9();
    assert_eq!(
        status.signal(),
        Some(9),
        "the server was not killed by SIGKILL: {status}"
    );

    let second = ServerProcess::start(server_bin(), &db);
    assert_ne!(second.url, "", "second server address");
    for (i, room) in rooms.iter().enumerate() {
        let id = room["id"].as_str().expect("room id");
        let (status, body) = second
            .admin_call(Method::GET, &format!("/api/rooms/{id}"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "room {i} lost after kill -9: {body}"
        );
        assert_eq!(&body, room, "room {i}");
        assert_eq!(body["name"], json!(format!("Room {i}")));
    }
    for (i, user) in users.iter().enumerate() {
        let id = user["id"].as_str().expect("user id");
        let (status, body) = second
            .admin_call(Method::GET, &format!("/api/users/{id}"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "user {i} lost after kill -9: {body}"
        );
        assert_eq!(&body, user, "user {i}");
        assert_eq!(body["name"], json!(format!("User {i}")));
    }
    let (status, body) = second.admin_call(Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    drop(second);
    drop(first);
    drop(dir);
}
