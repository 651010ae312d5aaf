//! Misbehaving (scripted) servers: bad frames are reported as
//! `Incoming::Invalid` without killing the connection; transport ends are
//! reported with their reason; handshake violations fail `connect`.

use serde_json::json;
use sioclient::{ConnectError, DisconnectReason, Incoming, PacketError};

use crate::common;
use crate::common::{WAIT, bounded};

async fn collect_until_disconnect(socket: &mut sioclient::Socket) -> Vec<Incoming> {
    let mut items = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded")
        {
            Some(item) => {
                let end = matches!(item, Incoming::Disconnected { .. });
                items.push(item);
                if end {
                    return items;
                }
            }
            None => return items,
        }
    }
}

/// An event hook takes the events it handles out of the queue; everything
/// else (other events, invalid frames, other namespaces, the end) comes as
/// without a hook, and the frame tap still sees every frame.
#[tokio::test]
async fn event_hook_handles_events_and_leaves_the_rest_queued() {
    use std::sync::{Arc, Mutex};
    bounded(async {
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_handshake(&mut ws, 25000, 20000).await;
            for frame in [
                r#"42["counted",{"sentAtUs":5}]"#,
                r#"42["counted""#,
                r#"42["kept",1]"#,
                r#"42/other,["counted"]"#,
                r#"42["c\u006funted",2]"#,
                "1",
            ] {
                common::fake_send(&mut ws, frame).await;
            }
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let hook_seen = seen.clone();
        let hook = sioclient::EventHook::new(move |ev| {
            let counted = ev.name == "counted";
            if counted {
                let mut seen = hook_seen.lock().unwrap();
                seen.push((ev.name.to_string(), ev.payload.to_owned()));
            }
            counted
        });
        let (tap, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let config = sioclient::ClientConfig::new(url)
            .with_connect_timeout(WAIT)
            .with_frame_tap(tap)
            .with_event_hook(hook);
        let mut socket = sioclient::connect(config).await.expect("connect");
        let items = collect_until_disconnect(&mut socket).await;
        let summary: Vec<String> = items
            .iter()
            .map(|i| match i {
                Incoming::Event(e) => format!("event {} {:?}", e.name, e.args),
                Incoming::Invalid { frame, .. } => format!("invalid {frame}"),
                Incoming::Disconnected { reason } => format!("end {reason}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                r#"invalid 42["counted""#.to_owned(),
                "event kept [Number(1)]".to_owned(),
                "end transport close".to_owned(),
            ]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (
                    "counted".to_owned(),
                    r#"["counted",{"sentAtUs":5}]"#.to_owned()
                ),
                ("counted".to_owned(), r#"["c\u006funted",2]"#.to_owned()),
            ]
        );
        let received = common::drain_tap(&mut frames)
            .iter()
            .filter(|f| f.direction == sioclient::Direction::Received && f.text.starts_with("42"))
            .count();
        assert_eq!(received, 5);
    })
    .await;
}

#[tokio::test]
async fn invalid_frames_are_reported_and_connection_survives() {
    bounded(async {
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_handshake(&mut ws, 25000, 20000).await;
            for frame in [
                "9",
                r#"42["unterminated""#,
                "42{}",
                r#"451-["file",{"_placeholder":true,"num":0}]"#,
                r#"42/other,["elsewhere"]"#,
                r#"43999["stray ack"]"#,
                "6",
                r#"42["ok",1]"#,
                "1",
            ] {
                common::fake_send(&mut ws, frame).await;
            }
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let mut socket =
            sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
                .await
                .expect("connect");
        assert_eq!(socket.sid(), "fake-sio");
        assert_eq!(socket.engine_sid(), "fake-eio");
        let items = collect_until_disconnect(&mut socket).await;
        let summary: Vec<String> = items
            .iter()
            .map(|i| match i {
                Incoming::Event(e) => format!("event {} {:?}", e.name, e.args),
                Incoming::Invalid { frame, .. } => format!("invalid {frame}"),
                Incoming::Disconnected { reason } => format!("end {reason}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "invalid 9".to_owned(),
                r#"invalid 42["unterminated""#.to_owned(),
                "invalid 42{}".to_owned(),
                r#"invalid 451-["file",{"_placeholder":true,"num":0}]"#.to_owned(),
                "event ok [Number(1)]".to_owned(),
                "end transport close".to_owned(),
            ]
        );
        assert!(matches!(
            &items[0],
            Incoming::Invalid {
                error: PacketError::UnknownEioType('9'),
                ..
            }
        ));
        assert!(matches!(
            &items[3],
            Incoming::Invalid {
                error: PacketError::UnsupportedBinary {
                    packet_type: 5,
                    attachments: 1,
                    ..
                },
                ..
            }
        ));
        assert_eq!(
            items.last(),
            Some(&Incoming::Disconnected {
                reason: DisconnectReason::TransportClose
            })
        );
    })
    .await;
}

#[tokio::test]
async fn websocket_close_frame_is_transport_close() {
    bounded(async {
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_handshake(&mut ws, 25000, 20000).await;
            let _ = ws.close(None).await;
        })
        .await;
        let mut socket =
            sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
                .await
                .expect("connect");
        let items = collect_until_disconnect(&mut socket).await;
        assert_eq!(
            items,
            vec![Incoming::Disconnected {
                reason: DisconnectReason::TransportClose
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn ping_during_connect_is_answered_and_auth_is_sent() {
    bounded(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(
                &mut ws,
                r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100}"#,
            )
            .await;
            let connect = common::fake_recv(&mut ws).await;
            common::fake_send(&mut ws, "2").await;
            let pong = common::fake_recv(&mut ws).await;
            common::fake_send(&mut ws, r#"40/admin,{"sid":"s"}"#).await;
            let _ = tx.send((connect, pong));
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let socket = sioclient::connect(
            sioclient::ClientConfig::new(url)
                .with_namespace("/admin")
                .with_auth(json!({"token": "t"}))
                .with_connect_timeout(WAIT),
        )
        .await
        .expect("connect");
        assert_eq!(socket.sid(), "s");
        let (connect, pong) = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
        assert_eq!(connect.as_deref(), Some(r#"40/admin,{"token":"t"}"#));
        assert_eq!(pong.as_deref(), Some("3"));
    })
    .await;
}

#[tokio::test]
async fn handshake_violations_fail_connect() {
    bounded(async {
        // No open packet first.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(&mut ws, r#"42["too early"]"#).await;
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let err = sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
            .await
            .expect_err("no open packet");
        assert!(matches!(err, ConnectError::Handshake(_)), "{err:?}");

        // Malformed open packet.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(&mut ws, r#"0{"sid":1}"#).await;
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let err = sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
            .await
            .expect_err("bad open packet");
        assert!(matches!(err, ConnectError::Protocol(PacketError::InvalidOpen(_))), "{err:?}");

        // CONNECT answer without sid.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(
                &mut ws,
                r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100}"#,
            )
            .await;
            common::fake_recv(&mut ws).await;
            common::fake_send(&mut ws, "40").await;
            while common::fake_recv(&mut ws).await.is_some() {}
        })
        .await;
        let err = sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
            .await
            .expect_err("no sid");
        assert!(matches!(err, ConnectError::Handshake(_)), "{err:?}");

        // Server closes during connect.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(
                &mut ws,
                r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100}"#,
            )
            .await;
            common::fake_recv(&mut ws).await;
            let _ = ws.close(None).await;
        })
        .await;
        let err = sioclient::connect(sioclient::ClientConfig::new(url).with_connect_timeout(WAIT))
            .await
            .expect_err("closed");
        assert!(matches!(err, ConnectError::Transport(_)), "{err:?}");
    })
    .await;
}
