//! The per-connection client event limit (protocol notes N8, N9): 100
//! events in any 60-second window; over it an event is not processed and
//! gets `RATE_LIMIT_EXCEEDED`, in its ack or as an `error` event.

use serde_json::{Value, json};
use server::testing::*;
use sioclient::Socket;

const LIMIT: usize = 100;

async fn get_online(socket: &Socket, room: &str) -> Value {
    let a = ack(socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &a);
    a
}

/// Sends `n` acked `presence:get_online`, each of which must succeed.
async fn use_up(socket: &Socket, room: &str, n: usize) {
    for i in 0..n {
        let a = get_online(socket, room).await;
        assert_eq!(a["success"], json!(true), "event {} of {n}: {a}", i + 1);
        assert_eq!(a["roomId"], json!(room));
    }
}

fn assert_limited(ack: &Value) {
    assert_ack_error(ack, "RATE_LIMIT_EXCEEDED");
}

/// Checks an `error` event for a rate-limited `event`.
fn assert_limit_error_event(payload: &Value, event: &str) {
    assert_payload("error", payload);
    assert_exact_keys(payload, &["code", "message", "details", "timestamp"]);
    assert_eq!(payload["code"], json!("RATE_LIMIT_EXCEEDED"));
    assert!(
        payload["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{payload}"
    );
    assert_eq!(payload["details"]["action"], json!(event), "{payload}");
    assert_eq!(payload["details"]["event"], json!(event), "{payload}");
}

#[tokio::test]
async fn the_101st_acked_event_is_refused_and_not_processed() {
    let srv = TestServer::start().await;
    let room = srv.room("Busy", "public").await;
    let other = srv.room("Other", "public").await;
    let ann = srv.user("Ann").await;
    let bob = srv.user("Bob").await;
    let mut watcher = srv.subscribed(&bob.token, &other).await;
    // Bob's own arrival.
    let own = next_event(&mut watcher, "presence:user_online").await;
    assert_eq!(own["userId"], json!(bob.id));
    let mut s = srv.connect(&ann.token, "/").await;

    use_up(&s, &room, LIMIT).await;
    assert_limited(&get_online(&s, &room).await);

    // An over-limit subscribe is refused and not processed: no
    // confirmation, no presence.
    let a = ack(&s, "room:subscribe", json!({"roomId": other})).await;
    assert_ack_schema("room:subscribe", &a);
    assert_limited(&a);
    assert_none_of(&mut s, &["room:subscribed", "presence:user_online"]).await;
    assert_none_of(&mut watcher, &["presence:user_online"]).await;
    let online = get_online(&watcher, &other).await;
    assert_eq!(online["count"], json!(1), "only Bob is online: {online}");

    // The limit is per connection: the same user's second connection works,
    // while the first one stays limited.
    let mut s2 = srv.connect(&ann.token, "/").await;
    let a = get_online(&s2, &room).await;
    assert_eq!(a["success"], json!(true), "{a}");
    let a = ack(&s2, "room:subscribe", json!({"roomId": other})).await;
    assert_eq!(a["success"], json!(true), "{a}");
    next_event(&mut s2, "room:subscribed").await;
    assert_limited(&get_online(&s, &room).await);
    srv.stop().await;
}

#[tokio::test]
async fn without_an_ack_the_101st_event_gets_an_error_event() {
    let srv = TestServer::start().await;
    let room = srv.room("Busy", "public").await;
    let ann = srv.user("Ann").await;
    let mut s = srv.connect(&ann.token, "/").await;

    // Successful events without an ack are answered by nothing at all.
    for _ in 0..LIMIT {
        s.emit("presence:get_online", json!({"roomId": room}))
            .expect("emit");
    }
    s.emit("presence:get_online", json!({"roomId": room}))
        .expect("emit");
    let err = next_event(&mut s, "error").await;
    assert_limit_error_event(&err, "presence:get_online");
    // Exactly one of the 101 was refused.
    assert_none_of(&mut s, &["error"]).await;

    // An over-limit subscribe without an ack: an error event, and no
    // subscription.
    s.emit("room:subscribe", json!({"roomId": room}))
        .expect("emit");
    let err = next_event(&mut s, "error").await;
    assert_limit_error_event(&err, "room:subscribe");
    assert_none_of(&mut s, &["room:subscribed", "presence:user_online"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn every_event_counts_accepted_or_not() {
    let srv = TestServer::start().await;
    let public = srv.room("Open", "public").await;
    let private = srv.room("Closed", "private").await;
    let ann = srv.user("Ann").await;
    let s = srv.connect(&ann.token, "/").await;

    // 40 unknown events, 30 refused subscriptions, 30 accepted queries.
    for _ in 0..40 {
        let a = ack(&s, "chat:message", json!({"text": "hi"})).await;
        assert_ack_error(&a, "INVALID_PAYLOAD");
    }
    for _ in 0..30 {
        let a = ack(&s, "room:subscribe", json!({"roomId": private})).await;
        assert_ack_schema("room:subscribe", &a);
        assert_ack_error(&a, "PERMISSION_DENIED");
    }
    use_up(&s, &public, 30).await;

    assert_limited(&get_online(&s, &public).await);
    let a = ack(&s, "chat:message", json!({"text": "hi"})).await;
    assert_limited(&a);
    srv.stop().await;
}
