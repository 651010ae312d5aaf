//! Incoming events: order, `wait_for` keeping other items, echo of emitted
//! arguments, multiple arguments.

use std::time::Duration;

use serde_json::json;
use sioclient::{Incoming, Transport, WaitError};

use crate::common;
use crate::common::{WAIT, bounded};

async fn events_arrive_in_order(transport: Transport) {
    let server = common::start().await;
    let mut socket = sioclient::connect(server.config().with_transport(transport))
        .await
        .expect("connect");
    socket.wait_for("welcome", WAIT).await.expect("welcome");
    let n = 300u64;
    socket.emit("burst", json!(n)).expect("emit");
    let mut last_at = None;
    for expected in 0..n {
        let item = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded")
            .expect("not closed");
        let Incoming::Event(ev) = item else {
            panic!("unexpected {item:?}");
        };
        assert_eq!(ev.name, "seq");
        assert_eq!(ev.args, vec![json!(expected)], "out of order");
        if let Some(prev) = last_at {
            assert!(ev.received_at >= prev);
        }
        last_at = Some(ev.received_at);
    }
    assert!(socket.try_next().is_none());
}

#[tokio::test]
async fn incoming_events_in_order_websocket() {
    bounded(events_arrive_in_order(Transport::WebSocket)).await;
}

#[tokio::test]
async fn incoming_events_in_order_polling() {
    bounded(events_arrive_in_order(Transport::Polling)).await;
}

#[tokio::test]
async fn wait_for_keeps_other_events_in_order() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config()).await.expect("connect");
        socket.wait_for("welcome", WAIT).await.expect("welcome");
        socket.emit("burst", json!(3)).expect("emit");
        socket.emit("echo", json!("last")).expect("emit");
        let echo = socket.wait_for("echo", WAIT).await.expect("echo");
        assert_eq!(echo.args, vec![json!("last")]);
        // The three `seq` events that arrived before it are still queued.
        for expected in 0..3 {
            match socket.next().await {
                Some(Incoming::Event(ev)) => {
                    assert_eq!((ev.name.as_str(), ev.args), ("seq", vec![json!(expected)]));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(socket.try_next().is_none());
        // Nothing named "never" comes: timeout, and nothing is consumed.
        socket.emit("echo", json!(1)).expect("emit");
        let err = socket
            .wait_for("never", Duration::from_millis(300))
            .await
            .expect_err("no such event");
        assert_eq!(err, WaitError::Timeout);
        assert!(matches!(socket.try_next(), Some(Incoming::Event(ev)) if ev.name == "echo"));
    })
    .await;
}

#[tokio::test]
async fn wait_for_reports_disconnect() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config()).await.expect("connect");
        socket.emit("kick", ()).expect("emit");
        let err = socket.wait_for("never", WAIT).await.expect_err("kicked");
        assert_eq!(
            err,
            WaitError::Disconnected(sioclient::DisconnectReason::ServerDisconnect)
        );
        // The welcome event and the final Disconnected are still there.
        assert!(matches!(socket.next().await, Some(Incoming::Event(ev)) if ev.name == "welcome"));
        assert!(matches!(
            socket.next().await,
            Some(Incoming::Disconnected { .. })
        ));
        assert!(socket.next().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn emitted_arguments_reach_the_server_intact() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config()).await.expect("connect");
        let payloads = [
            json!({"nested": {"list": [1, 2, 3], "s": "ü\"\n"}}),
            json!([1, "two", null]),
            json!("plain string"),
            json!(3.5),
            json!(true),
        ];
        for payload in &payloads {
            socket.emit("echo", payload.clone()).expect("emit");
            let echo = socket.wait_for("echo", WAIT).await.expect("echo");
            assert_eq!(&echo.args, &vec![payload.clone()]);
        }
        // Several arguments arrive as separate arguments.
        socket
            .emit("multi3", vec![json!(1), json!("b"), json!({"c": 3})])
            .expect("emit");
        let seen = server
            .seen
            .wait(
                "multi3",
                |s| matches!(s, common::Seen::Message { event, .. } if event == "multi3"),
            )
            .await;
        let common::Seen::Message { data, .. } = seen else {
            unreachable!()
        };
        assert_eq!(data, json!([1, "b", {"c": 3}]));
    })
    .await;
}

#[tokio::test]
async fn small_read_buffer_still_receives_large_frames() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config().with_ws_read_buffer_size(64))
            .await
            .expect("connect");
        let big = "x".repeat(200_000);
        socket.emit("echo", json!(big)).expect("emit");
        let echo = socket.wait_for("echo", WAIT).await.expect("echo");
        assert_eq!(echo.args, vec![json!(big)]);
        assert_eq!(
            socket.emit_with_ack("ack", json!("small"), WAIT).await,
            Ok(vec![json!("small")])
        );
    })
    .await;
}
