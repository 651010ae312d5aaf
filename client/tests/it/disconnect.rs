//! Ends of a connection: server-initiated disconnect, graceful client
//! disconnect seen by the server, dropping a socket.

use serde_json::json;
use sioclient::{Direction, DisconnectReason, Incoming, SendError, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

async fn next_disconnect(socket: &mut sioclient::Socket) -> DisconnectReason {
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("bounded")
        {
            Some(Incoming::Disconnected { reason }) => return reason,
            Some(_) => {}
            None => panic!("stream ended without Disconnected"),
        }
    }
}

async fn server_disconnect(transport: Transport) {
    let server = common::start().await;
    let mut socket = sioclient::connect(server.config().with_transport(transport))
        .await
        .expect("connect");
    socket.emit("kick", ()).expect("emit");
    assert_eq!(
        next_disconnect(&mut socket).await,
        DisconnectReason::ServerDisconnect
    );
    assert!(socket.next().await.is_none());
    assert!(!socket.is_connected());
    assert_eq!(socket.emit("echo", json!(1)), Err(SendError::Disconnected));
    let seen = server
        .seen
        .wait("disconnect", |s| matches!(s, Seen::Disconnected { .. }))
        .await;
    assert!(
        matches!(&seen, Seen::Disconnected { reason, .. } if reason == "ServerNSDisconnect"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn server_initiated_disconnect_websocket() {
    bounded(server_disconnect(Transport::WebSocket)).await;
}

#[tokio::test]
async fn server_initiated_disconnect_polling() {
    bounded(server_disconnect(Transport::Polling)).await;
}

async fn graceful_disconnect(transport: Transport) {
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
    let sid = socket.sid().to_owned();
    socket.emit("echo", json!("before")).expect("emit");
    socket.disconnect().await;
    assert!(!socket.is_connected());
    assert_eq!(
        next_disconnect(&mut socket).await,
        DisconnectReason::ClientDisconnect
    );
    // Queued frames went out before the DISCONNECT packet.
    let sent = common::texts(&common::drain_tap(&mut frames), Direction::Sent);
    let echo = sent.iter().position(|t| t == r#"42["echo","before"]"#);
    let bye = sent.iter().position(|t| t == "41");
    assert!(echo.is_some() && bye.is_some() && echo < bye, "{sent:?}");
    let seen = server
        .seen
        .wait("disconnect", |s| matches!(s, Seen::Disconnected { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Disconnected {
            ns: "/".into(),
            sid,
            reason: "ClientNSDisconnect".into()
        }
    );
    // disconnect is idempotent.
    socket.disconnect().await;
    assert_eq!(socket.send_raw("2"), Err(SendError::Disconnected));
}

#[tokio::test]
async fn graceful_disconnect_seen_by_server_websocket() {
    bounded(graceful_disconnect(Transport::WebSocket)).await;
}

#[tokio::test]
async fn graceful_disconnect_seen_by_server_polling() {
    bounded(graceful_disconnect(Transport::Polling)).await;
}

#[tokio::test]
async fn dropping_the_socket_disconnects() {
    bounded(async {
        let server = common::start().await;
        let socket = sioclient::connect(server.config()).await.expect("connect");
        let handle = socket.handle();
        drop(socket);
        tokio::time::timeout(WAIT, handle.closed())
            .await
            .expect("closes");
        assert!(!handle.is_connected());
        server
            .seen
            .wait("disconnect", |s| matches!(s, Seen::Disconnected { .. }))
            .await;
    })
    .await;
}
