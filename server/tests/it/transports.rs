//! The same protocol over every Engine.IO transport: HTTP long-polling only,
//! and polling upgraded to WebSocket (the JS client's default).

use serde_json::json;
use server::testing::*;
use sioclient::{ConnectError, Direction, Frame, Socket, Transport};
use tokio::sync::mpsc::unbounded_channel;

async fn connect_over(server: &TestServer, token: &str, ns: &str, transport: Transport) -> Socket {
    sioclient::connect(server.client_config(token, ns).with_transport(transport))
        .await
        .unwrap_or_else(|e| panic!("connect to {ns} over {transport} failed: {e}"))
}

/// Subscribe, receive the confirmation and two kinds of room event, ask for
/// presence, unsubscribe: the whole flow on one socket.
async fn subscribe_and_receive(transport: Transport, expected: Transport) {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let room = server.room("Wire", "public").await;
    let (tap, mut frames) = unbounded_channel::<Frame>();
    let config = server
        .client_config(&alice.token, "/")
        .with_transport(transport)
        .with_frame_tap(tap);
    let mut socket = sioclient::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect over {transport} failed: {e}"));
    assert_eq!(socket.transport(), expected);
    assert!(!socket.sid().is_empty());

    let sub = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &sub);
    assert_eq!(
        sub,
        json!({"success": true, "room": {"id": room, "name": "Wire", "status": "active"}})
    );
    let subscribed = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);
    assert_eq!(subscribed["roomId"], json!(room));
    let online = next_event(&mut socket, "presence:user_online").await;
    assert_payload("presence:user_online", &online);
    assert_eq!(online["userId"], json!(alice.id));

    server
        .patch(
            &format!("/api/rooms/{room}"),
            json!({"name": "Wire 2", "status": "paused"}),
        )
        .await;
    let changed = next_event(&mut socket, "room:status_changed").await;
    assert_payload("room:status_changed", &changed);
    assert_eq!(changed["roomId"], json!(room));
    assert_eq!(changed["oldStatus"], json!("active"));
    assert_eq!(changed["newStatus"], json!("paused"));
    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(
        updated["changes"],
        json!({"name": "Wire 2", "status": "paused"})
    );
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "Wire 2", "status": "paused"})
    );

    let bob = server.user("Bob").await;
    let pid = server.join(&room, &bob.id, "participant").await;
    let joined = next_event(&mut socket, "participant:joined").await;
    assert_payload("participant:joined", &joined);
    assert_eq!(joined["participant"]["id"], json!(pid));
    assert_eq!(
        joined["participant"]["user"],
        json!({"id": bob.id, "name": "Bob"})
    );

    let list = ack(&socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &list);
    assert_eq!(list["count"], json!(1), "{list}");
    assert_eq!(list["users"][0]["id"], json!(alice.id));

    let unsub = ack(&socket, "room:unsubscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:unsubscribe", &unsub);
    assert_eq!(unsub, json!({"success": true, "data": {"roomId": room}}));
    let unsubscribed = next_event(&mut socket, "room:unsubscribed").await;
    assert_payload("room:unsubscribed", &unsubscribed);
    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Wire 3"}))
        .await;
    assert_no_event(&mut socket, "room:updated").await;

    // Still on the same transport at the end.
    assert_eq!(socket.transport(), expected);
    assert!(socket.is_connected());
    socket.disconnect().await;

    // The frames travelled where they should have.
    let mut seen = Vec::new();
    while let Ok(frame) = frames.try_recv() {
        seen.push(frame);
    }
    let first = seen.first().expect("tapped frames");
    assert_eq!(first.direction, Direction::Received);
    assert!(
        first.text.starts_with('0'),
        "first frame is not OPEN: {first:?}"
    );
    let open_transport = if transport == Transport::WebSocket {
        Transport::WebSocket
    } else {
        Transport::Polling
    };
    assert_eq!(first.transport, open_transport, "handshake transport");
    if transport == Transport::PollingThenUpgrade {
        let ws_sent: Vec<&str> = seen
            .iter()
            .filter(|f| f.direction == Direction::Sent && f.transport == Transport::WebSocket)
            .map(|f| f.text.as_str())
            .collect();
        assert_eq!(
            ws_sent.get(..2),
            Some(&["2probe", "5"][..]),
            "upgrade: {ws_sent:?}"
        );
        assert!(seen.iter().any(|f| f.direction == Direction::Received
            && f.transport == Transport::WebSocket
            && f.text == "3probe"));
    }
    let event_frames: Vec<&Frame> = seen
        .iter()
        .filter(|f| f.text.starts_with("42[\"room:updated\""))
        .collect();
    assert_eq!(
        event_frames.len(),
        1,
        "room:updated frames: {event_frames:?}"
    );
    assert_eq!(event_frames[0].transport, expected);
    if expected == Transport::Polling {
        assert!(
            seen.iter().all(|f| f.transport == Transport::Polling),
            "a frame left polling"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn whole_flow_over_polling() {
    subscribe_and_receive(Transport::Polling, Transport::Polling).await;
}

#[tokio::test]
async fn whole_flow_over_polling_upgraded_to_websocket() {
    subscribe_and_receive(Transport::PollingThenUpgrade, Transport::WebSocket).await;
}

#[tokio::test]
async fn room_namespace_over_polling() {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let room = server.room("Polled", "public").await;
    let mut socket = connect_over(
        &server,
        &alice.token,
        &format!("/rooms/{room}"),
        Transport::Polling,
    )
    .await;
    assert_eq!(socket.transport(), Transport::Polling);
    let subscribed = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);
    assert_eq!(subscribed["roomId"], json!(room));
    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Polled 2"}))
        .await;
    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["changes"], json!({"name": "Polled 2"}));
    server.stop().await;
}

#[tokio::test]
async fn connect_error_over_polling() {
    let server = TestServer::start().await;
    let config = server
        .client_config("garbage", "/")
        .with_transport(Transport::Polling);
    match sioclient::connect(config).await {
        Err(ConnectError::Rejected { message, .. }) => {
            assert_eq!(message, "Authentication failed: Invalid token");
        }
        Err(other) => panic!("expected connect_error, got {other}"),
        Ok(_) => panic!("a garbage token was accepted over polling"),
    }

    let alice = server.user("Alice").await;
    let config = server
        .client_config(&alice.token, "/rooms/room_missing")
        .with_transport(Transport::PollingThenUpgrade);
    match sioclient::connect(config).await {
        Err(ConnectError::Rejected { message, .. }) => {
            assert_eq!(message, "Room not found: room_missing");
        }
        Err(other) => panic!("expected connect_error, got {other}"),
        Ok(_) => panic!("an unknown room was accepted"),
    }
    server.stop().await;
}
