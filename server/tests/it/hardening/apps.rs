//! Applications impersonating the platform (issue 13, item 8): platform
//! event prefixes as app ids, unbounded event names, publishing into
//! private rooms, one app using up the room budget of every app.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;

const PUBLISH: &str = "realtime:publish";
const PUBLISH_PRIVATE: &str = server::api::PERMISSION_PUBLISH_PRIVATE;

async fn publish(
    srv: &TestServer,
    app: &str,
    token: &str,
    room: &str,
    event: &str,
) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        &format!("/api/rooms/{room}/events"),
        Some(token),
        Some(app),
        Some(json!({"event": event, "data": {"n": 1}})),
    )
    .await
}

/// Fails on the code before the fix: an app registered as `token` (or
/// `room`, ...) published `token:expired` to every subscriber of a room.
#[tokio::test]
async fn platform_event_prefixes_are_not_app_ids() {
    let srv = TestServer::start().await;
    for id in [
        "room",
        "token",
        "quiz",
        "error",
        "notification",
        "presence",
        "participant",
        "prize",
        "winner",
        "roomservice",
        "tokens",
    ] {
        let (status, body) = srv
            .admin_call(
                Method::POST,
                "/api/apps",
                Some(json!({"id": id, "name": id, "permissions": [PUBLISH]})),
            )
            .await;
        assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("platform's event prefix"),
            "{id}: {message}"
        );
    }
    // Whatever else matches the id rule is still an app id.
    srv.app("lottery", &[PUBLISH]).await;
    srv.stop().await;
}

/// Fails on the code before the fix: any length was accepted (up to the
/// request body limit), and broadcast to every subscriber.
#[tokio::test]
async fn app_event_names_are_bounded() {
    let srv = TestServer::start().await;
    let token = srv.app("lottery", &[PUBLISH]).await;
    let room = srv.room("Draws", "public").await;
    let user = srv.user("ann").await;
    let mut sub = srv.subscribed(&user.token, &room).await;

    let longest = format!("lottery:{}", "x".repeat(120));
    assert_eq!(longest.len(), server::api::MAX_APP_EVENT_NAME_BYTES);
    let too_long = format!("{longest}x");
    let huge = format!("lottery:{}", "x".repeat(100_000));
    for name in [&too_long, &huge] {
        let (status, body) = publish(&srv, "lottery", &token, &room, name).await;
        assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");
    }
    let (status, body) = publish(&srv, "lottery", &token, &room, &longest).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ev = next_of(&mut sub, &[&longest, &too_long, &huge]).await;
    assert_eq!(ev.name, longest);
    assert_none_of(&mut sub, &[&too_long, &huge]).await;
    srv.stop().await;
}

/// Fails on the code before the fix: an app with `realtime:publish` alone
/// published into every private room.
#[tokio::test]
async fn private_rooms_need_the_publish_private_permission() {
    let srv = TestServer::start().await;
    let public_only = srv.app("lottery", &[PUBLISH]).await;
    let trusted = srv.app("bingo", &[PUBLISH, PUBLISH_PRIVATE]).await;
    let room = srv.room("Board", "private").await;
    let member = srv.user("member").await;
    srv.join(&room, &member.id, "participant").await;
    let mut sub = srv.subscribed(&member.token, &room).await;

    let (status, body) = publish(&srv, "lottery", &public_only, &room, "lottery:draw").await;
    assert_rest_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "APP_PERMISSION_DENIED",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(PUBLISH_PRIVATE),
        "{body}"
    );
    let (status, body) = publish(&srv, "bingo", &trusted, &room, "bingo:call").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ev = next_of(&mut sub, &["lottery:draw", "bingo:call"]).await;
    assert_eq!(ev.name, "bingo:call");
    assert_none_of(&mut sub, &["lottery:draw"]).await;
    srv.stop().await;
}

/// Fails on the code before the fix: the 10 per second of a room were
/// shared by every app, so one app's burst refused every other app's
/// events in that room.
#[tokio::test]
async fn one_app_does_not_use_up_the_room_budget_of_another() {
    let srv = TestServer::start().await;
    let noisy = srv.app("noisy", &[PUBLISH]).await;
    let quiet = srv.app("quiet", &[PUBLISH]).await;
    let per_room = protocol::limits::APP_EVENTS_PER_ROOM_PER_SECOND;
    // Conclusive only if the burst and the other app's event fit in one
    // second; on a very slow run, again in a fresh room.
    for attempt in 0..5 {
        let room = srv.room(&format!("Shared {attempt}"), "public").await;
        let started = Instant::now();
        for _ in 0..per_room {
            let (status, body) = publish(&srv, "noisy", &noisy, &room, "noisy:ping").await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        let (over, _) = publish(&srv, "noisy", &noisy, &room, "noisy:ping").await;
        let (other, body) = publish(&srv, "quiet", &quiet, &room, "quiet:ping").await;
        if started.elapsed() >= Duration::from_millis(950) {
            continue;
        }
        assert_eq!(
            over,
            StatusCode::TOO_MANY_REQUESTS,
            "the noisy app is limited"
        );
        assert_eq!(other, StatusCode::ACCEPTED, "the quiet app is not: {body}");
        srv.stop().await;
        return;
    }
    panic!("{per_room} requests never fit in one second");
}
