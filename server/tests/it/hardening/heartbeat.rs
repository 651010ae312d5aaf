//! The engine's one heartbeat task against a panic (issue 13, item 11):
//! before the fix a panic in it ended every ping and every timeout of the
//! process for good. A panic cannot be caused from outside (that would be
//! a bug of its own), so the patched engine's test hook injects one into a
//! chosen session's heartbeat step.

use std::str::FromStr;
use std::time::Duration;

use engineioxide::socket::Sid;
use futures_util::StreamExt;
use serde_json::json;
use server::testing::*;
use tokio_tungstenite::tungstenite::Message;

use super::{Ws, next_text, open_ws_session};

const INTERVAL: Duration = Duration::from_millis(200);
// Long enough for the steady client to answer on a busy machine (300 ms,
// then 1 s, dropped it while other test binaries ran beside this one); the
// silent session is still closed after one ping, 3.2 s in.
const TIMEOUT: Duration = Duration::from_millis(3000);

/// A raw Engine.IO WebSocket session and its sid.
async fn open_session(url: &str) -> (Ws, Sid) {
    let (ws, open) = open_ws_session(url).await;
    let sid = Sid::from_str(open["sid"].as_str().expect("sid")).expect("a sid");
    (ws, sid)
}

/// Fails on the code before the fix: the injected panic ended the heartbeat
/// task, so the session that never answers a ping stayed open (and the
/// panicking session got no more pings: its reader timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_heartbeat_does_not_stop_it() {
    let server = TestServer::start_with(|c| {
        c.ping_interval = INTERVAL;
        c.ping_timeout = TIMEOUT;
    })
    .await;
    let room = server.room("Beat", "public").await;
    let user = server.user("steady").await;
    let steady = server.connect(&user.token, "/").await;

    // The victim answers every ping; its step panics once.
    let (mut victim, sid) = open_session(&server.url).await;
    engineioxide::__panic_in_next_heartbeat_step_of(sid);
    // Closed by the panic (answered pings would keep it open otherwise);
    // `next_text` panics if no frame came for 5 s.
    while next_text(&mut victim).await.is_some() {}

    // After the panic: a session that never answers is still timed out.
    let (mut silent, _) = open_session(&server.url).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT + WAIT;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(deadline, silent.next())
            .await
            .expect("the silent session closed in time")
        {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => pings += 1,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    assert_eq!(pings, 1, "one ping, then closed by the timeout");

    // And a client that answers its pings was left alone.
    tokio::time::sleep(INTERVAL * 3).await;
    let answer = ack(&steady, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(answer["success"], json!(true), "{answer}");
    silent.close(None).await.ok();
    server.stop().await;
}
