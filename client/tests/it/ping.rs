//! Heartbeat: server pings are answered and keep the connection alive;
//! missing pings end the connection with `PingTimeout`.

use std::time::{Duration, Instant};

use serde_json::json;
use sioclient::{Direction, DisconnectReason, Incoming, Transport};

use crate::common;
use crate::common::{WAIT, bounded};

async fn survives_short_ping_interval(transport: Transport) {
    let server = common::start_with(|b| {
        b.ping_interval(Duration::from_millis(300))
            .ping_timeout(Duration::from_millis(200))
    })
    .await;
    let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
    let mut socket = sioclient::connect(
        server
            .config()
            .with_transport(transport)
            .with_frame_tap(tap),
    )
    .await
    .expect("connect");
    assert_eq!(socket.handshake().ping_interval, 300);
    assert_eq!(socket.handshake().ping_timeout, 200);

    // Five ping intervals; the server would drop us after ~500 ms without pongs.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(socket.is_connected());
    let answer = socket
        .emit_with_ack("ack", json!("alive"), WAIT)
        .await
        .expect("ack");
    assert_eq!(answer, vec![json!("alive")]);

    let frames = common::drain_tap(&mut frames);
    let pings = common::texts(&frames, Direction::Received)
        .iter()
        .filter(|t| *t == "2")
        .count();
    let pongs = common::texts(&frames, Direction::Sent)
        .iter()
        .filter(|t| *t == "3")
        .count();
    assert!(pings >= 3, "only {pings} pings in 1.6 s");
    // Every ping is answered (with polling the very last pong may still sit
    // in the outbox behind an in-flight POST).
    assert!(
        pongs == pings || pongs + 1 == pings,
        "{pings} pings, {pongs} pongs"
    );
    // Each pong follows its ping: the sequence alternates 2, 3, 2, 3, ...
    let order: Vec<&str> = frames
        .iter()
        .filter(|f| f.text == "2" || f.text == "3")
        .map(|f| f.text.as_str())
        .collect();
    for (i, text) in order.iter().enumerate() {
        let expected = if i % 2 == 0 { "2" } else { "3" };
        assert_eq!(*text, expected, "{order:?}");
    }
    // No disconnect happened meanwhile.
    while let Some(item) = socket.try_next() {
        assert!(!matches!(item, Incoming::Disconnected { .. }), "{item:?}");
    }
}

#[tokio::test]
async fn websocket_survives_several_ping_intervals() {
    bounded(survives_short_ping_interval(Transport::WebSocket)).await;
}

#[tokio::test]
async fn polling_survives_several_ping_intervals() {
    bounded(survives_short_ping_interval(Transport::Polling)).await;
}

#[tokio::test]
async fn missing_pings_end_with_ping_timeout() {
    bounded(async {
        // Fake server: handshake with pingInterval 200 + pingTimeout 100,
        // then stays silent (but keeps the TCP connection open).
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_handshake(&mut ws, 200, 100).await;
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let mut socket =
            sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
                .await
                .expect("connect");
        let started = Instant::now();
        let item = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded");
        assert_eq!(
            item,
            Some(Incoming::Disconnected {
                reason: DisconnectReason::PingTimeout
            })
        );
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn pings_reset_the_ping_timer() {
    bounded(async {
        // Pings every 100 ms with a 200+100 ms window: must stay up for 1 s.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_handshake(&mut ws, 200, 100).await;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                common::fake_send(&mut ws, "2").await;
                if common::fake_recv(&mut ws).await.as_deref() != Some("3") {
                    return;
                }
            }
            common::fake_send(&mut ws, r#"42["done"]"#).await;
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let mut socket =
            sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
                .await
                .expect("connect");
        let done = socket
            .wait_for("done", WAIT)
            .await
            .expect("stayed connected");
        assert!(done.args.is_empty());
    })
    .await;
}
