//! Raw frames: the frame tap records every text frame in both directions
//! with timestamps; `send_raw` sends frames exactly as given.

use std::time::{Duration, SystemTime};

use serde_json::json;
use sioclient::{Direction, DisconnectReason, Incoming, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

#[tokio::test]
async fn frame_tap_records_the_whole_transcript() {
    bounded(async {
        let server = common::start().await;
        let before = SystemTime::now();
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let mut socket = sioclient::connect(server.config().with_frame_tap(tap))
            .await
            .expect("connect");
        socket.emit("echo", json!({"a": 1})).expect("emit");
        socket.wait_for("echo", WAIT).await.expect("echo");
        socket.disconnect().await;

        let frames = common::drain_tap(&mut frames);
        // Heartbeats (`2`/`3`) are on their own clock and may fall anywhere
        // in the sequence; the order below is about everything else.
        let transcript: Vec<(Direction, &str)> = frames
            .iter()
            .map(|f| (f.direction, f.text.as_str()))
            .filter(|(_, text)| !matches!(*text, "2" | "3"))
            .collect();
        let sid = socket.sid();
        assert!(transcript[0].0 == Direction::Received && transcript[0].1.starts_with('0'));
        assert_eq!(transcript[1], (Direction::Sent, "40"));
        assert_eq!(
            transcript[2],
            (
                Direction::Received,
                format!(r#"40{{"sid":"{sid}"}}"#).as_str()
            )
        );
        assert!(transcript.contains(&(Direction::Sent, r#"42["echo",{"a":1}]"#)));
        assert!(transcript.contains(&(Direction::Received, r#"42["echo",{"a":1}]"#)));
        assert_eq!(transcript.last(), Some(&(Direction::Sent, "41")));
        // Timestamps are wall-clock and non-decreasing.
        assert!(frames[0].at >= before);
        assert!(frames.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(frames.iter().all(|f| f.transport == Transport::WebSocket));
    })
    .await;
}

#[tokio::test]
async fn send_raw_sends_frames_verbatim() {
    bounded(async {
        let server = common::start().await;
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let mut socket = sioclient::connect(server.config().with_frame_tap(tap))
            .await
            .expect("connect");
        // A valid frame built by hand.
        socket.send_raw(r#"42["echo","raw"]"#).expect("send");
        let echo = socket.wait_for("echo", WAIT).await.expect("echo");
        assert_eq!(echo.args, vec![json!("raw")]);
        // A hand-made ack request: the server acks id 77 (not from our counter).
        socket.send_raw(r#"4277["ack","manual"]"#).expect("send");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let received = common::texts(&common::drain_tap(&mut frames), Direction::Received);
            if received.iter().any(|t| t == r#"4377["manual"]"#) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no ack 77");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(socket.is_connected());
    })
    .await;
}

async fn malformed_frame_is_sent_and_server_drops_us(transport: Transport) {
    let server = common::start().await;
    let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
    let mut socket = sioclient::connect(
        server
            .config()
            .with_transport(transport)
            .with_frame_tap(tap),
    )
    .await
    .expect("connect");
    // Unterminated JSON: socketioxide treats it as a parsing error and
    // closes the session.
    socket.send_raw(r#"42["echo""#).expect("send");
    let reason = loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded")
        {
            Some(Incoming::Disconnected { reason }) => break reason,
            Some(_) => {}
            None => panic!("no Disconnected"),
        }
    };
    assert_ne!(reason, DisconnectReason::ClientDisconnect);
    let sent = common::texts(&common::drain_tap(&mut frames), Direction::Sent);
    assert!(sent.contains(&r#"42["echo""#.to_owned()), "{sent:?}");
    let seen = server
        .seen
        .wait("disconnect", |s| matches!(s, Seen::Disconnected { .. }))
        .await;
    assert!(
        matches!(&seen, Seen::Disconnected { reason, .. } if reason == "PacketParsingError"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn malformed_frame_websocket() {
    bounded(malformed_frame_is_sent_and_server_drops_us(
        Transport::WebSocket,
    ))
    .await;
}

#[tokio::test]
async fn malformed_frame_polling() {
    bounded(malformed_frame_is_sent_and_server_drops_us(
        Transport::Polling,
    ))
    .await;
}
