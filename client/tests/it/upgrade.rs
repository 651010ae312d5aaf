//! Polling handshake followed by the WebSocket upgrade (`2probe`/`3probe`/`5`).

use serde_json::json;
use sioclient::{Direction, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

#[tokio::test]
async fn polling_then_upgrade_ends_on_websocket() {
    bounded(async {
        let server = common::start().await;
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let mut socket = sioclient::connect(
            server
                .config()
                .with_transport(Transport::PollingThenUpgrade)
                .with_auth(json!({"token": "up"}))
                .with_frame_tap(tap),
        )
        .await
        .expect("connect");
        assert_eq!(socket.transport(), Transport::WebSocket);

        // Events, acks and server emits work after the upgrade.
        let welcome = socket.wait_for("welcome", WAIT).await.expect("welcome");
        assert_eq!(welcome.args[0]["sid"], json!(socket.sid()));
        let answer = socket
            .emit_with_ack("ack", json!("upgraded"), WAIT)
            .await
            .expect("ack");
        assert_eq!(answer, vec![json!("upgraded")]);
        socket.emit("echo", json!(7)).expect("emit");
        assert_eq!(
            socket.wait_for("echo", WAIT).await.expect("echo").args,
            vec![json!(7)]
        );

        // Same Engine.IO session all along: one connect on the server.
        let connects = server
            .seen
            .all()
            .iter()
            .filter(|s| matches!(s, Seen::Connected { .. }))
            .count();
        assert_eq!(connects, 1);

        // The transcript shows the JS-client upgrade sequence.
        let frames = common::drain_tap(&mut frames);
        let seq: Vec<(Direction, Transport, &str)> = frames
            .iter()
            .map(|f| (f.direction, f.transport, f.text.as_str()))
            .collect();
        let probe = seq
            .iter()
            .position(|f| *f == (Direction::Sent, Transport::WebSocket, "2probe"))
            .expect("2probe sent over websocket");
        assert_eq!(
            seq[probe + 1],
            (Direction::Received, Transport::WebSocket, "3probe")
        );
        assert_eq!(seq[probe + 2], (Direction::Sent, Transport::WebSocket, "5"));
        // Before the probe: open + CONNECT over polling.
        assert!(seq[..probe].iter().all(|f| f.1 == Transport::Polling));
        assert!(
            seq[..probe]
                .iter()
                .any(|f| f.0 == Direction::Sent && f.2 == r#"40{"token":"up"}"#)
        );
        // After the upgrade: everything over websocket.
        assert!(seq[probe..].iter().all(|f| f.1 == Transport::WebSocket));
        assert!(
            seq[probe..]
                .iter()
                .any(|f| f.2 == r#"420["ack","upgraded"]"#)
        );

        socket.disconnect().await;
        server
            .seen
            .wait("disconnect", |s| {
                matches!(s, Seen::Disconnected { reason, .. } if reason == "ClientNSDisconnect")
            })
            .await;
    })
    .await;
}

#[tokio::test]
async fn upgraded_socket_answers_pings_on_websocket() {
    bounded(async {
        let server = common::start_with(|b| {
            b.ping_interval(std::time::Duration::from_millis(300))
                .ping_timeout(std::time::Duration::from_millis(200))
        })
        .await;
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let socket = sioclient::connect(
            server
                .config()
                .with_transport(Transport::PollingThenUpgrade)
                .with_frame_tap(tap),
        )
        .await
        .expect("connect");
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        assert!(socket.is_connected());
        assert_eq!(
            socket.emit_with_ack("ack", json!(1), WAIT).await,
            Ok(vec![json!(1)])
        );
        let frames = common::drain_tap(&mut frames);
        let ws_pongs = frames
            .iter()
            .filter(|f| {
                f.transport == Transport::WebSocket
                    && f.direction == Direction::Sent
                    && f.text == "3"
            })
            .count();
        assert!(ws_pongs >= 2, "{frames:?}");
    })
    .await;
}
