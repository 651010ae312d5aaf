//! Interoperability with a third-party Rust client, `rust_socketio` 0.6
//! (async API): it connects with a valid token, subscribes with an ack and
//! receives a room broadcast, over WebSocket and over polling; with an
//! invalid token it reports the documented `connect_error` message.
//!
//! Its quirks, handled here: `connect()` returns before the server accepted
//! the namespace (so the test waits for the `Connect` callback before
//! emitting), and a `connect_error` arrives through the `Error` callback as
//! a string (`Received an ConnectError frame: {"message": ...}`).

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use server::testing::*;
use tokio::sync::mpsc;

const ROOM_NAME: &str = "rust_socketio room";

/// What the callbacks report, in arrival order.
#[derive(Debug)]
enum Seen {
    Connected,
    Error(String),
    Event(String, Vec<Value>),
    Ack(Vec<Value>),
}

/// The arguments of a payload. An ACK's data reaches the ack callback as
/// one JSON array (the packet's whole argument list); events arrive as the
/// list itself.
fn args_of(payload: Payload) -> Vec<Value> {
    match payload {
        Payload::Text(values) => values,
        other => panic!("unexpected non-text payload {other:?}"),
    }
}

fn builder(
    srv: &TestServer,
    token: &str,
    transport: TransportType,
    tx: &mpsc::UnboundedSender<Seen>,
) -> ClientBuilder {
    let on_connect = tx.clone();
    let on_error = tx.clone();
    let on_subscribed = tx.clone();
    let on_updated = tx.clone();
    ClientBuilder::new(srv.url.clone())
        .namespace("/")
        .auth(json!({"token": token}))
        .transport_type(transport)
        .reconnect(false)
        .on(Event::Connect, move |_, _| {
            let _ = on_connect.send(Seen::Connected);
            async {}.boxed()
        })
        .on(Event::Error, move |payload, _| {
            let text = match payload {
                Payload::Text(values) => values
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => format!("{other:?}"),
            };
            let _ = on_error.send(Seen::Error(text));
            async {}.boxed()
        })
        .on("room:subscribed", move |payload, _| {
            let _ = on_subscribed.send(Seen::Event("room:subscribed".into(), args_of(payload)));
            async {}.boxed()
        })
        .on("room:updated", move |payload, _| {
            let _ = on_updated.send(Seen::Event("room:updated".into(), args_of(payload)));
            async {}.boxed()
        })
}

/// The next report; panics after [`WAIT`].
async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>, what: &str) -> Seen {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(seen)) => seen,
        Ok(None) => panic!("callbacks gone while waiting for {what}"),
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

async fn round_trip(transport: TransportType, label: &str) {
    let srv = TestServer::start().await;
    let user = srv.user("Ferris").await;
    let room = srv.room(ROOM_NAME, "public").await;
    let (tx, mut rx) = mpsc::unbounded_channel();

    let client = builder(&srv, &user.token, transport, &tx)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("rust_socketio connect over {label}: {e}"));
    match next_seen(&mut rx, "the Connect callback").await {
        Seen::Connected => {}
        other => panic!("expected Connect, got {other:?}"),
    }

    let on_ack = tx.clone();
    client
        .emit_with_ack(
            "room:subscribe",
            json!({"roomId": room}),
            WAIT,
            move |payload: Payload, _: Client| {
                let _ = on_ack.send(Seen::Ack(args_of(payload)));
                async {}.boxed()
            },
        )
        .await
        .expect("emit_with_ack");

    // The ack and `room:subscribed` may come in either order.
    let mut ack = None;
    let mut confirm = None;
    while ack.is_none() || confirm.is_none() {
        match next_seen(&mut rx, "the subscribe ack and room:subscribed").await {
            Seen::Ack(args) => ack = Some(args),
            Seen::Event(name, args) if name == "room:subscribed" => confirm = Some(args),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ack = ack.unwrap();
    assert_eq!(ack.len(), 1, "ack arguments: {ack:?}");
    let ack = match &ack[0] {
        // The whole argument list as one array (see `args_of`).
        Value::Array(list) => {
            assert_eq!(list.len(), 1, "ack arguments: {list:?}");
            list[0].clone()
        }
        other => other.clone(),
    };
    assert_ack_schema("room:subscribe", &ack);
    assert_eq!(
        ack,
        json!({"success": true, "room": {"id": room, "name": ROOM_NAME, "status": "active"}})
    );
    let confirm = confirm.unwrap();
    assert_eq!(confirm.len(), 1, "{confirm:?}");
    assert_payload("room:subscribed", &confirm[0]);
    assert_exact_keys(&confirm[0], &["roomId", "timestamp"]);
    assert_eq!(confirm[0]["roomId"], json!(room));

    let renamed = format!("{ROOM_NAME} ({label})");
    srv.patch(&format!("/api/rooms/{room}"), json!({"name": renamed}))
        .await;
    let updated = match next_seen(&mut rx, "room:updated").await {
        Seen::Event(name, args) if name == "room:updated" => args,
        other => panic!("expected room:updated, got {other:?}"),
    };
    assert_eq!(updated.len(), 1, "{updated:?}");
    let data = &updated[0];
    assert_payload("room:updated", data);
    assert_exact_keys(data, &["roomId", "changes", "room", "timestamp", "eventId"]);
    assert_eq!(data["roomId"], json!(room));
    assert_eq!(data["changes"], json!({"name": renamed}));
    assert_eq!(
        data["room"],
        json!({"id": room, "name": renamed, "status": "active"})
    );

    tokio::time::timeout(WAIT, client.disconnect())
        .await
        .expect("disconnect within the wait")
        .expect("disconnect");
    srv.stop().await;
}

#[tokio::test]
async fn rust_socketio_over_websocket() {
    round_trip(TransportType::Websocket, "websocket").await;
}

#[tokio::test]
async fn rust_socketio_over_polling() {
    round_trip(TransportType::Polling, "polling").await;
}

async fn invalid_token(transport: TransportType) {
    let srv = TestServer::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let expected = "Authentication failed: Invalid token";
    match builder(&srv, "not-a-jwt", transport, &tx).connect().await {
        // The usual case: connect() returned before the server answered,
        // and the refusal comes through the Error callback.
        Ok(client) => {
            let message = match next_seen(&mut rx, "the connect_error").await {
                Seen::Error(message) => message,
                other => panic!("expected an error, got {other:?}"),
            };
            assert!(
                message.contains(expected),
                "rust_socketio reported {message:?}"
            );
            assert!(
                message.contains(&json!({"message": expected}).to_string()),
                "the connect_error data is not {{message}}: {message:?}"
            );
            // The server answers CONNECT with either CONNECT or CONNECT_ERROR,
            // so the error being the first report means it never connected.
            // rust_socketio cannot close this client: `disconnect()` fails
            // with "Called an action before the connection was established"
            // and its task keeps the Engine.IO session (and, over polling, a
            // long-poll request) open. socketioxide's `close()` only closes
            // namespace sockets, so a graceful `srv.stop()` would wait the
            // whole `server::SHUTDOWN_GRACE` for that request; the server is
            // dropped instead, with the test's runtime.
            drop(client);
        }
        Err(e) => assert!(
            e.to_string().contains(expected),
            "rust_socketio connect failed with {e}"
        ),
    }
    // Still serving others.
    let user = srv.user("After").await;
    let socket = srv.connect(&user.token, "/").await;
    let reply = ack(
        &socket,
        "presence:get_online",
        json!({"roomId": "room_none"}),
    )
    .await;
    assert_ack_schema("presence:get_online", &reply);
    assert_ack_error(&reply, "ROOM_NOT_FOUND");
    socket.disconnect().await;
    assert!(!socket.is_connected());
    drop(srv);
}

#[tokio::test]
async fn rust_socketio_reports_an_invalid_token_over_websocket() {
    invalid_token(TransportType::Websocket).await;
}

#[tokio::test]
async fn rust_socketio_reports_an_invalid_token_over_polling() {
    invalid_token(TransportType::Polling).await;
}
