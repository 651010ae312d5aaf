//! Acknowledgements: round trip, 500 concurrent acks on one socket, ack
//! timeout, ack after disconnect, and the client answering a server ack.

use std::time::Duration;

use serde_json::json;
use sioclient::{AckError, Direction, Incoming, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

#[tokio::test]
async fn ack_round_trip() {
    bounded(async {
        let server = common::start().await;
        let socket = sioclient::connect(server.config()).await.expect("connect");
        let answer = socket
            .emit_with_ack("ack", json!({"hello": "world"}), WAIT)
            .await
            .expect("ack");
        assert_eq!(answer, vec![json!({"hello": "world"})]);
        let answer = socket
            .emit_with_ack("ack", json!(42), WAIT)
            .await
            .expect("ack");
        assert_eq!(answer, vec![json!(42)]);
    })
    .await;
}

#[tokio::test]
async fn ack_ids_increment_from_zero() {
    bounded(async {
        let server = common::start().await;
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let socket = sioclient::connect(server.config().with_frame_tap(tap))
            .await
            .expect("connect");
        for i in 0..3 {
            let answer = socket
                .emit_with_ack("ack", json!(i), WAIT)
                .await
                .expect("ack");
            assert_eq!(answer, vec![json!(i)]);
        }
        let frames = common::drain_tap(&mut frames);
        let sent = common::texts(&frames, Direction::Sent);
        let received = common::texts(&frames, Direction::Received);
        for i in 0..3 {
            assert!(sent.contains(&format!(r#"42{i}["ack",{i}]"#)), "{sent:?}");
            assert!(received.contains(&format!("43{i}[{i}]")), "{received:?}");
        }
    })
    .await;
}

async fn concurrent_acks(transport: Transport, n: u64) {
    let server = common::start().await;
    let socket = sioclient::connect(server.config().with_transport(transport))
        .await
        .expect("connect");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let handle = socket.handle();
        tasks.spawn(async move {
            let payload = json!({"i": i, "tag": format!("req-{i}")});
            let answer = handle
                .emit_with_ack("ack", payload.clone(), WAIT)
                .await
                .unwrap_or_else(|e| panic!("ack {i}: {e}"));
            assert_eq!(answer, vec![payload], "ack {i} got someone else's answer");
            i
        });
    }
    let mut done = vec![false; n as usize];
    while let Some(result) = tasks.join_next().await {
        done[result.expect("ack task") as usize] = true;
    }
    assert!(done.iter().all(|d| *d));
    assert!(socket.is_connected());
}

#[tokio::test]
async fn five_hundred_concurrent_acks_each_get_their_own_answer() {
    bounded(concurrent_acks(Transport::WebSocket, 500)).await;
}

#[tokio::test]
async fn five_hundred_concurrent_acks_over_polling() {
    bounded(concurrent_acks(Transport::Polling, 500)).await;
}

#[tokio::test]
async fn ack_timeout() {
    bounded(async {
        let server = common::start().await;
        let socket = sioclient::connect(server.config()).await.expect("connect");
        let started = std::time::Instant::now();
        let err = socket
            .emit_with_ack("noack", json!("x"), Duration::from_millis(200))
            .await
            .expect_err("server never acks");
        assert_eq!(err, AckError::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5));
        // The event itself did reach the server.
        server
            .seen
            .wait(
                "noack",
                |s| matches!(s, Seen::Message { event, .. } if event == "noack"),
            )
            .await;
        // The socket is still usable after a timeout.
        let answer = socket
            .emit_with_ack("ack", json!(1), WAIT)
            .await
            .expect("ack");
        assert_eq!(answer, vec![json!(1)]);
    })
    .await;
}

#[tokio::test]
async fn pending_ack_fails_with_disconnected() {
    bounded(async {
        let server = common::start().await;
        let socket = sioclient::connect(server.config()).await.expect("connect");
        let handle = socket.handle();
        let pending =
            tokio::spawn(async move { handle.emit_with_ack("noack", json!(1), WAIT).await });
        server
            .seen
            .wait(
                "noack",
                |s| matches!(s, Seen::Message { event, .. } if event == "noack"),
            )
            .await;
        socket.emit("kick", ()).expect("emit kick");
        let result = tokio::time::timeout(WAIT, pending)
            .await
            .expect("bounded")
            .expect("task");
        assert_eq!(result, Err(AckError::Disconnected));
        // After the end, new acks fail immediately.
        assert_eq!(
            socket.emit_with_ack("ack", json!(1), WAIT).await,
            Err(AckError::Disconnected)
        );
    })
    .await;
}

#[tokio::test]
async fn client_answers_server_ack_request() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config()).await.expect("connect");
        socket.emit("ask", json!("what?")).expect("emit");
        let question = socket.wait_for("question", WAIT).await.expect("question");
        assert_eq!(question.args, vec![json!("what?")]);
        let id = question.ack_id.expect("server asked for an ack");
        socket.ack(id, json!({"answer": 42})).expect("ack");
        let answer = socket.wait_for("answer", WAIT).await.expect("answer");
        assert_eq!(answer.args, vec![json!({"answer": 42})]);
        let seen = server
            .seen
            .wait("client ack", |s| matches!(s, Seen::ClientAck { .. }))
            .await;
        assert_eq!(
            seen,
            Seen::ClientAck {
                ns: "/".into(),
                data: json!({"answer": 42})
            }
        );
        // No stray items: only the welcome event is left.
        let mut rest = Vec::new();
        while let Some(item) = socket.try_next() {
            rest.push(item);
        }
        assert!(
            rest.iter()
                .all(|i| matches!(i, Incoming::Event(e) if e.name == "welcome")),
            "{rest:?}"
        );
    })
    .await;
}
