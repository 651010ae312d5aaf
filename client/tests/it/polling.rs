//! HTTP long-polling only: connect, emit, ack, receive, batching.

use serde_json::json;
use sioclient::{Direction, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

#[tokio::test]
async fn polling_connect_emit_ack_receive() {
    bounded(async {
        let server = common::start().await;
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let mut socket = sioclient::connect(
            server
                .config()
                .with_transport(Transport::Polling)
                .with_auth(json!({"token": "poll"}))
                .with_frame_tap(tap),
        )
        .await
        .expect("connect");
        assert_eq!(socket.transport(), Transport::Polling);
        // socketioxide offers the websocket upgrade on polling sessions.
        assert_eq!(socket.handshake().upgrades, vec!["websocket".to_owned()]);

        let seen = server
            .seen
            .wait("connect", |s| matches!(s, Seen::Connected { .. }))
            .await;
        assert!(
            matches!(&seen, Seen::Connected { auth: Some(a), sid, .. } if a == &json!({"token": "poll"}) && sid == socket.sid()),
            "{seen:?}"
        );

        let welcome = socket.wait_for("welcome", WAIT).await.expect("welcome");
        assert_eq!(welcome.args[0]["ns"], json!("/"));

        socket.emit("echo", json!({"via": "polling"})).expect("emit");
        let echo = socket.wait_for("echo", WAIT).await.expect("echo");
        assert_eq!(echo.args, vec![json!({"via": "polling"})]);

        let answer = socket
            .emit_with_ack("ack", json!([1, 2]), WAIT)
            .await
            .expect("ack");
        assert_eq!(answer, vec![json!([1, 2])]);

        // Every frame went over polling; the transcript starts with the open packet.
        let frames = common::drain_tap(&mut frames);
        assert!(frames.iter().all(|f| f.transport == Transport::Polling));
        let received = common::texts(&frames, Direction::Received);
        assert!(received[0].starts_with(r#"0{"sid":"#), "{received:?}");
        let sent = common::texts(&frames, Direction::Sent);
        assert_eq!(sent[0], r#"40{"token":"poll"}"#);
        assert!(sent.contains(&r#"42["echo",{"via":"polling"}]"#.to_owned()));
    })
    .await;
}

#[tokio::test]
async fn polling_batches_many_emits() {
    bounded(async {
        let server = common::start().await;
        let mut socket = sioclient::connect(server.config().with_transport(Transport::Polling))
            .await
            .expect("connect");
        // Queue many frames at once; they go out as few `\x1e`-joined POSTs
        // (one POST in flight at a time) and must arrive in order.
        for i in 0..200 {
            socket.emit("echo", json!(i)).expect("emit");
        }
        for i in 0..200 {
            let echo = socket.wait_for("echo", WAIT).await.expect("echo");
            assert_eq!(echo.args, vec![json!(i)]);
        }
        let echoes: Vec<_> = server
            .seen
            .all()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Message { event, data, .. } if event == "echo" => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(echoes, (0..200).map(|i| json!(i)).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn shared_http_client_is_used_for_polling() {
    bounded(async {
        let server = common::start().await;
        let http = reqwest::Client::new();
        let mut config = server.config().with_transport(Transport::Polling);
        config.http_client = Some(http.clone());
        let a = sioclient::connect(config.clone()).await.expect("connect a");
        let b = sioclient::connect(config).await.expect("connect b");
        assert_ne!(a.sid(), b.sid());
        assert_eq!(
            a.emit_with_ack("ack", json!("a"), WAIT).await,
            Ok(vec![json!("a")])
        );
        assert_eq!(
            b.emit_with_ack("ack", json!("b"), WAIT).await,
            Ok(vec![json!("b")])
        );
    })
    .await;
}
