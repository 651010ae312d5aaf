//! Engine.IO heartbeat, server side: the server pings every `pingInterval`
//! and closes a session whose pong does not come within `pingTimeout`, over
//! WebSocket and over long-polling; answered pings keep a session open,
//! one ping per interval. (One heartbeat task serves every session of the
//! engine: vendor/README.md.)

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use server::testing::*;
use tokio_tungstenite::tungstenite::Message;

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.ping_interval = INTERVAL;
        c.ping_timeout = TIMEOUT;
    })
    .await
}

/// Timing slack: the heartbeat is checked every 1/20 of the shorter period.
const SLACK: Duration = Duration::from_millis(50);

/// The session closed `closed` after its unanswered ping: not before the
/// ping timeout, and not long after it.
fn assert_closed_after_the_timeout(closed: Duration) {
    assert!(
        closed >= TIMEOUT - SLACK && closed < TIMEOUT * 5,
        "closed {closed:?} after the ping, timeout {TIMEOUT:?}"
    );
}

/// A raw Engine.IO WebSocket session, after its open packet.
async fn open_ws(server: &TestServer) -> Ws {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        server.url.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket opens");
    let open = next_text(&mut ws).await.expect("open packet");
    assert!(open.starts_with("0{"), "open packet: {open}");
    ws
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next Engine.IO text frame, or None when the connection ended.
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn websocket_session_without_pongs_is_closed_after_the_ping_timeout() {
    let server = server().await;
    let mut ws = open_ws(&server).await;
    let opened = Instant::now();

    assert_eq!(next_text(&mut ws).await.as_deref(), Some("2"), "a ping");
    let pinged = Instant::now();
    assert!(
        pinged - opened >= INTERVAL - SLACK,
        "ping after {:?}, interval {INTERVAL:?}",
        pinged - opened
    );
    // No pong: the server sends a close packet and ends the connection.
    let mut rest = Vec::new();
    while let Some(text) = next_text(&mut ws).await {
        rest.push(text);
    }
    let closed = pinged.elapsed();
    assert_eq!(rest, ["1"], "only a close packet after the ping");
    assert_closed_after_the_timeout(closed);
    server.stop().await;
}

#[tokio::test]
async fn websocket_session_that_answers_pings_stays_open_one_ping_per_interval() {
    let server = server().await;
    let mut ws = open_ws(&server).await;
    let mut pings = Vec::new();
    while pings.len() < 4 {
        let text = next_text(&mut ws)
            .await
            .unwrap_or_else(|| panic!("closed after {} pings", pings.len()));
        assert_eq!(text, "2", "only pings on an idle session");
        pings.push(Instant::now());
        ws.send(Message::text("3")).await.expect("pong sent");
    }
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= INTERVAL - SLACK && gap < INTERVAL * 3,
            "{gap:?} between pings, interval {INTERVAL:?}"
        );
    }
    server.stop().await;
}

/// One long-polling GET: status and body.
async fn poll(server: &TestServer, sid: &str) -> (u16, String) {
    let res = server
        .http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
            server.url
        ))
        .timeout(WAIT)
        .send()
        .await
        .expect("poll request");
    (res.status().as_u16(), res.text().await.expect("poll body"))
}

#[tokio::test]
async fn polling_session_without_pongs_is_closed_after_the_ping_timeout() {
    let server = server().await;
    let open = server
        .http
        .get(format!("{}/socket.io/?EIO=4&transport=polling", server.url))
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("open packet");
    let opened = Instant::now();
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no sid in {open}"))
        .to_owned();

    assert_eq!(poll(&server, &sid).await, (200, "2".to_owned()), "a ping");
    assert!(opened.elapsed() >= INTERVAL - SLACK);
    let pinged = Instant::now();
    // No pong: the next poll returns the close packet (or the session is
    // already gone), and the session is unknown afterwards.
    let (status, body) = poll(&server, &sid).await;
    let closed = pinged.elapsed();
    assert!(
        (status == 200 && body == "1") || status == 400,
        "after the timeout: {status} {body}"
    );
    assert_closed_after_the_timeout(closed);
    assert_eq!(poll(&server, &sid).await.0, 400, "session gone");
    server.stop().await;
}
