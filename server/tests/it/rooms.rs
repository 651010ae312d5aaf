//! Room subscriptions and room events (protocol notes N2, N4, N5, N9, N13),
//! and the REST errors of the room endpoints (N1).

use reqwest::Method;
use serde_json::{Value, json};
use server::testing::*;
use sioclient::{DisconnectReason, Incoming, Socket};

/// Emits without an ack and returns the `error` event it causes.
async fn error_event(socket: &mut Socket, event: &str, payload: Value) -> Value {
    socket.emit(event, payload).expect("emit");
    let err = next_event(socket, "error").await;
    assert_payload("error", &err);
    err
}

fn assert_event_id(payload: &Value) {
    assert!(
        payload["eventId"].as_str().is_some_and(|s| !s.is_empty()),
        "eventId missing: {payload}"
    );
}

#[tokio::test]
async fn subscribe_acks_with_the_room_and_confirms() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = server.room("Quiz night", "public").await;
    let mut socket = server.connect(&alice.token, "/").await;

    let ack = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &ack);
    assert_eq!(
        ack,
        json!({"success": true, "room": {"id": room, "name": "Quiz night", "status": "active"}})
    );
    let subscribed = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);
    assert_eq!(subscribed["roomId"], json!(room));
    assert_eq!(subscribed.as_object().unwrap().len(), 2, "{subscribed}");
    server.stop().await;
}

#[tokio::test]
async fn subscribe_to_an_unknown_room() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut socket = server.connect(&alice.token, "/").await;

    let ack = ack(&socket, "room:subscribe", json!({"roomId": "room_missing"})).await;
    assert_ack_schema("room:subscribe", &ack);
    assert_ack_error(&ack, "ROOM_NOT_FOUND");
    assert_eq!(
        ack["error"]["message"],
        json!("Room not found: room_missing")
    );

    let err = error_event(
        &mut socket,
        "room:subscribe",
        json!({"roomId": "room_missing"}),
    )
    .await;
    assert_eq!(err["code"], json!("ROOM_NOT_FOUND"));
    assert_eq!(err["message"], json!("Room not found: room_missing"));
    assert_eq!(
        err["details"],
        json!({"action": "room:subscribe", "event": "room:subscribe", "roomId": "room_missing"})
    );
    // An acked failure produced no `error` event (N9), and nothing subscribed.
    assert_no_event(&mut socket, "error").await;
    assert_no_event(&mut socket, "room:subscribed").await;
    server.stop().await;
}

#[tokio::test]
async fn subscribe_to_a_private_room_as_a_non_participant() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = server.room("Board", "private").await;
    let mut socket = server.connect(&alice.token, "/").await;

    let ack = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &ack);
    assert_ack_error(&ack, "PERMISSION_DENIED");

    let err = error_event(&mut socket, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(err["code"], json!("PERMISSION_DENIED"));
    assert_eq!(
        err["details"],
        json!({"action": "room:subscribe", "event": "room:subscribe", "roomId": room})
    );
    assert_no_event(&mut socket, "room:subscribed").await;

    // Not subscribed: room events do not reach the socket.
    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Board 2"}))
        .await;
    assert_no_event(&mut socket, "room:updated").await;
    server.stop().await;
}

#[tokio::test]
async fn subscribe_with_a_bad_payload_is_invalid() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut socket = server.connect(&alice.token, "/").await;

    let bad: [(&str, Value); 3] = [
        ("missing roomId", json!({})),
        ("number roomId", json!({"roomId": 42})),
        ("string payload", json!("room_1")),
    ];
    for (what, payload) in bad {
        let reply = ack(&socket, "room:subscribe", payload.clone()).await;
        assert_ack_schema("room:subscribe", &reply);
        assert_ack_error(&reply, "INVALID_PAYLOAD");

        let err = error_event(&mut socket, "room:subscribe", payload).await;
        assert_eq!(err["code"], json!("INVALID_PAYLOAD"), "{what}: {err}");
        assert_eq!(
            err["details"],
            json!({"action": "room:subscribe", "event": "room:subscribe"}),
            "{what}"
        );
    }

    // No payload at all.
    let args = socket
        .emit_with_ack("room:subscribe", (), WAIT)
        .await
        .expect("ack");
    let ack = args.into_iter().next().unwrap_or(Value::Null);
    assert_ack_schema("room:subscribe", &ack);
    assert_ack_error(&ack, "INVALID_PAYLOAD");
    socket.emit("room:subscribe", ()).expect("emit");
    let err = next_event(&mut socket, "error").await;
    assert_payload("error", &err);
    assert_eq!(err["code"], json!("INVALID_PAYLOAD"));
    assert_eq!(
        err["details"],
        json!({"action": "room:subscribe", "event": "room:subscribe"})
    );
    server.stop().await;
}

#[tokio::test]
async fn unsubscribe_acks_confirms_and_stops_room_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = server.room("Lobby", "public").await;
    let mut socket = server.subscribed(&alice.token, &room).await;

    let ack = ack(&socket, "room:unsubscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:unsubscribe", &ack);
    assert_eq!(ack, json!({"success": true, "data": {"roomId": room}}));
    let unsubscribed = next_event(&mut socket, "room:unsubscribed").await;
    assert_payload("room:unsubscribed", &unsubscribed);
    assert_eq!(unsubscribed["roomId"], json!(room));
    assert_eq!(unsubscribed.as_object().unwrap().len(), 2, "{unsubscribed}");

    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Lobby 2"}))
        .await;
    server
        .patch(&format!("/api/rooms/{room}"), json!({"status": "paused"}))
        .await;
    assert_no_event(&mut socket, "room:updated").await;
    assert_no_event(&mut socket, "room:status_changed").await;
    server.stop().await;
}

#[tokio::test]
async fn patching_the_name_sends_room_updated() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = server.room("Old name", "public").await;
    let mut socket = server.subscribed(&alice.token, &room).await;

    let res = server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "New name"}))
        .await;
    assert_eq!(res["name"], json!("New name"));

    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(updated["changes"], json!({"name": "New name"}));
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "New name", "status": "active"})
    );
    assert_event_id(&updated);
    // A name change is not a status change.
    assert_no_event(&mut socket, "room:status_changed").await;
    server.stop().await;
}

#[tokio::test]
async fn patching_the_status_sends_status_changed_and_updated() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = server.room("Show", "public").await;
    let mut socket = server.subscribed(&alice.token, &room).await;

    server
        .patch(&format!("/api/rooms/{room}"), json!({"status": "paused"}))
        .await;
    let changed = next_event(&mut socket, "room:status_changed").await;
    assert_payload("room:status_changed", &changed);
    assert_eq!(changed["roomId"], json!(room));
    assert_eq!(changed["oldStatus"], json!("active"));
    assert_eq!(changed["newStatus"], json!("paused"));
    assert_event_id(&changed);

    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(updated["changes"], json!({"status": "paused"}));
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "Show", "status": "paused"})
    );
    assert_event_id(&updated);
    assert_ne!(changed["eventId"], updated["eventId"]);

    // Any status may change to any other (N13); `changes` lists every field.
    server
        .patch(
            &format!("/api/rooms/{room}"),
            json!({"status": "draft", "name": "Show 2"}),
        )
        .await;
    let changed = next_event(&mut socket, "room:status_changed").await;
    assert_payload("room:status_changed", &changed);
    assert_eq!(changed["oldStatus"], json!("paused"));
    assert_eq!(changed["newStatus"], json!("draft"));
    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(
        updated["changes"],
        json!({"status": "draft", "name": "Show 2"})
    );
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "Show 2", "status": "draft"})
    );
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_room_notifies_both_kinds_of_listener() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = server.room("Doomed", "public").await;
    let mut on_root = server.subscribed(&alice.token, &room).await;
    let mut on_room = server.connect(&bob.token, &format!("/rooms/{room}")).await;
    let subscribed = next_event(&mut on_room, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);

    server.delete(&format!("/api/rooms/{room}")).await;

    for socket in [&mut on_root, &mut on_room] {
        let deleted = next_event(socket, "room:deleted").await;
        assert_payload("room:deleted", &deleted);
        assert_eq!(deleted["roomId"], json!(room));
        assert_event_id(&deleted);
    }
    // The namespace is gone: its socket is disconnected; `/` stays up.
    assert_eq!(
        disconnected(&mut on_room).await,
        DisconnectReason::ServerDisconnect
    );
    assert!(on_root.is_connected());
    let ack = ack(&on_root, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_error(&ack, "ROOM_NOT_FOUND");
    assert_eq!(
        server
            .connect_refused(&bob.token, &format!("/rooms/{room}"))
            .await,
        format!("Room not found: {room}")
    );
    server.stop().await;
}

/// Every event already queued on `socket` that concerns `room_id`.
fn queued_events_of(socket: &mut Socket, room_id: &str) -> Vec<Value> {
    let mut found = Vec::new();
    while let Some(item) = socket.try_next() {
        if let Incoming::Event(ev) = item
            && ev
                .args
                .first()
                .is_some_and(|a| a["roomId"] == json!(room_id))
        {
            found.push(json!({"event": ev.name, "args": ev.args}));
        }
    }
    found
}

#[tokio::test]
async fn subscribers_of_another_room_receive_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room_a = server.room("A", "public").await;
    let room_b = server.room("B", "public").await;
    let mut in_b = server.subscribed(&bob.token, &room_b).await;
    let mut in_b_ns = server
        .connect(&bob.token, &format!("/rooms/{room_b}"))
        .await;
    next_event(&mut in_b_ns, "room:subscribed").await;
    let mut in_a = server.subscribed(&alice.token, &room_a).await;

    server
        .patch(&format!("/api/rooms/{room_a}"), json!({"status": "ended"}))
        .await;
    // B's change is the sentinel: events reach a socket in order, so
    // anything of A's would be queued before it.
    server
        .patch(&format!("/api/rooms/{room_b}"), json!({"name": "B2"}))
        .await;
    let changed = next_event(&mut in_a, "room:status_changed").await;
    assert_eq!(changed["roomId"], json!(room_a), "A's subscriber hears A");
    for socket in [&mut in_b, &mut in_b_ns] {
        let updated = next_event(socket, "room:updated").await;
        assert_payload("room:updated", &updated);
        assert_eq!(updated["roomId"], json!(room_b), "{updated}");
        assert_eq!(queued_events_of(socket, &room_a), Vec::<Value>::new());
    }

    server.delete(&format!("/api/rooms/{room_a}")).await;
    server
        .patch(&format!("/api/rooms/{room_b}"), json!({"status": "paused"}))
        .await;
    let deleted = next_event(&mut in_a, "room:deleted").await;
    assert_eq!(deleted["roomId"], json!(room_a));
    for socket in [&mut in_b, &mut in_b_ns] {
        let changed = next_event(socket, "room:status_changed").await;
        assert_payload("room:status_changed", &changed);
        assert_eq!(changed["roomId"], json!(room_b), "{changed}");
        assert_eq!(queued_events_of(socket, &room_a), Vec::<Value>::new());
        assert!(socket.is_connected());
    }
    server.stop().await;
}

#[tokio::test]
async fn room_namespace_accepts_its_own_room_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room_a = server.room("A", "public").await;
    let room_b = server.room("B", "public").await;
    let mut socket = server
        .connect(&alice.token, &format!("/rooms/{room_a}"))
        .await;
    next_event(&mut socket, "room:subscribed").await;

    let denied = ack(&socket, "room:subscribe", json!({"roomId": room_b})).await;
    assert_ack_schema("room:subscribe", &denied);
    assert_ack_error(&denied, "PERMISSION_DENIED");

    // Its own room is accepted again (idempotent).
    let ack = ack(&socket, "room:subscribe", json!({"roomId": room_a})).await;
    assert_ack_schema("room:subscribe", &ack);
    assert_eq!(
        ack,
        json!({"success": true, "room": {"id": room_a, "name": "A", "status": "active"}})
    );
    server
        .patch(&format!("/api/rooms/{room_b}"), json!({"name": "B2"}))
        .await;
    assert_no_event(&mut socket, "room:updated").await;
    server.stop().await;
}

#[tokio::test]
async fn rest_errors_of_room_endpoints() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;

    let (status, body) = server
        .admin_call(
            Method::PATCH,
            "/api/rooms/room_missing",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body,
        json!({"error": {"code": "ROOM_NOT_FOUND", "message": "Room not found: room_missing"}})
    );

    let (status, body) = server
        .call(
            Method::POST,
            "/api/rooms",
            None,
            None,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], json!("AUTHENTICATION_FAILED"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let (status, body) = server
        .call(
            Method::POST,
            "/api/rooms",
            Some("not-a-token"),
            None,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        json!({"error": {"code": "AUTHENTICATION_FAILED", "message": "Authentication failed: Invalid token"}})
    );

    let (status, body) = server
        .call(
            Method::POST,
            "/api/rooms",
            Some(&alice.token),
            None,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], json!("PERMISSION_DENIED"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    server.stop().await;
}
