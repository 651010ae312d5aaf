//! Namespaces: a dynamic namespace `/rooms/{id}` on its own Engine.IO session.

use serde_json::json;
use sioclient::{ConnectError, Direction, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

async fn rooms_namespace(transport: Transport) {
    let server = common::start().await;
    let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
    let mut socket = sioclient::connect(
        server
            .config()
            .with_transport(transport)
            .with_namespace("/rooms/abc")
            .with_auth(json!({"token": "t"}))
            .with_frame_tap(tap),
    )
    .await
    .expect("connect");
    assert_eq!(socket.namespace(), "/rooms/abc");

    let seen = server
        .seen
        .wait("connect", |s| matches!(s, Seen::Connected { .. }))
        .await;
    assert!(
        matches!(&seen, Seen::Connected { ns, auth: Some(a), .. } if ns == "/rooms/abc" && a == &json!({"token": "t"})),
        "{seen:?}"
    );
    let welcome = socket.wait_for("welcome", WAIT).await.expect("welcome");
    assert_eq!(welcome.args[0]["ns"], json!("/rooms/abc"));

    socket.emit("echo", json!("in room")).expect("emit");
    assert_eq!(
        socket.wait_for("echo", WAIT).await.expect("echo").args,
        vec![json!("in room")]
    );
    assert_eq!(
        socket.emit_with_ack("ack", json!(5), WAIT).await,
        Ok(vec![json!(5)])
    );
    socket.disconnect().await;
    server
        .seen
        .wait("disconnect", |s| {
            matches!(s, Seen::Disconnected { ns, reason, .. } if ns == "/rooms/abc" && reason == "ClientNSDisconnect")
        })
        .await;

    let frames = common::drain_tap(&mut frames);
    let sent = common::texts(&frames, Direction::Sent);
    let received = common::texts(&frames, Direction::Received);
    assert!(
        sent.contains(&r#"40/rooms/abc,{"token":"t"}"#.to_owned()),
        "{sent:?}"
    );
    assert!(
        sent.contains(&r#"42/rooms/abc,["echo","in room"]"#.to_owned()),
        "{sent:?}"
    );
    assert!(
        sent.contains(&r#"42/rooms/abc,0["ack",5]"#.to_owned()),
        "{sent:?}"
    );
    assert!(sent.contains(&"41/rooms/abc,".to_owned()), "{sent:?}");
    assert!(
        received.contains(&"43/rooms/abc,0[5]".to_owned()),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .any(|t| t.starts_with(r#"40/rooms/abc,{"sid":"#)),
        "{received:?}"
    );
}

#[tokio::test]
async fn dynamic_namespace_websocket() {
    bounded(rooms_namespace(Transport::WebSocket)).await;
}

#[tokio::test]
async fn dynamic_namespace_polling() {
    bounded(rooms_namespace(Transport::Polling)).await;
}

#[tokio::test]
async fn namespace_without_leading_slash_is_normalized() {
    bounded(async {
        let server = common::start().await;
        let socket = sioclient::connect(server.config().with_namespace("rooms/xyz"))
            .await
            .expect("connect");
        assert_eq!(socket.namespace(), "/rooms/xyz");
        server
            .seen
            .wait(
                "connect",
                |s| matches!(s, Seen::Connected { ns, .. } if ns == "/rooms/xyz"),
            )
            .await;
    })
    .await;
}

#[tokio::test]
async fn each_connect_is_its_own_session() {
    bounded(async {
        let server = common::start().await;
        let root = sioclient::connect(server.config()).await.expect("root");
        let room = sioclient::connect(server.config().with_namespace("/rooms/1"))
            .await
            .expect("room");
        assert_ne!(root.engine_sid(), room.engine_sid());
        // Events on one socket do not leak into the other.
        room.emit("kick", ()).expect("emit");
        tokio::time::timeout(WAIT, room.closed())
            .await
            .expect("room closed");
        assert!(root.is_connected());
        assert_eq!(
            root.emit_with_ack("ack", json!(1), WAIT).await,
            Ok(vec![json!(1)])
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_namespace_is_rejected() {
    bounded(async {
        let server = common::start().await;
        let err = sioclient::connect(server.config().with_namespace("/nope"))
            .await
            .expect_err("no such namespace");
        assert!(
            matches!(&err, ConnectError::Rejected { message, .. } if message == "Invalid namespace"),
            "{err:?}"
        );
    })
    .await;
}
