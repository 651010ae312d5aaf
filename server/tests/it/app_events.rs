//! Application events over REST (`POST /api/rooms/:roomId/events`,
//! protocol notes N1, N6, N8): delivery to both namespaces with the data
//! exactly as sent plus `{eventId, appId, roomId, timestamp}`, the error
//! answers, and the per-room and per-application rate limits.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;
use sioclient::Socket;

const APP: &str = "lottery";
const EVENT: &str = "lottery:draw_started";

async fn publish(
    srv: &TestServer,
    app_id: &str,
    token: &str,
    room: &str,
    body: Value,
) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        &format!("/api/rooms/{room}/events"),
        Some(token),
        Some(app_id),
        Some(body),
    )
    .await
}

/// `n`-th draw event's data.
fn draw_data(n: u64) -> Value {
    json!({"drawNumber": n, "prizes": ["car", "boat"], "meta": {"round": null, "odds": 0.25}})
}

/// The second argument of an application event.
fn assert_meta(meta: &Value, event_id: &Value, room: &str) {
    let errors = protocol::validate::app_event_meta_errors(meta);
    assert!(
        errors.is_empty(),
        "meta {meta} violates its schema: {errors:?}"
    );
    assert_exact_keys(meta, &["eventId", "appId", "roomId", "timestamp"]);
    assert_eq!(&meta["eventId"], event_id);
    assert_eq!(meta["appId"], json!(APP));
    assert_eq!(meta["roomId"], json!(room));
    assert_recent(
        "meta timestamp",
        meta["timestamp"].as_str().expect("timestamp"),
    );
}

/// Waits for one application event and checks both arguments.
async fn app_event(socket: &mut Socket, name: &str, data: &Value, event_id: &Value, room: &str) {
    let ev = socket
        .wait_for(name, WAIT)
        .await
        .unwrap_or_else(|e| panic!("waiting for {name}: {e}"));
    assert_eq!(ev.args.len(), 2, "{name} args: {:?}", ev.args);
    assert_payload(protocol::event::APP_EVENT, &ev.args[0]);
    assert_eq!(&ev.args[0], data, "the data arrives exactly as sent");
    assert_meta(&ev.args[1], event_id, room);
}

fn accepted_id(status: StatusCode, body: &Value) -> Value {
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["eventId"].clone();
    assert!(
        id.as_str().is_some_and(|s| !s.is_empty()),
        "eventId missing: {body}"
    );
    id
}

#[tokio::test]
async fn app_event_reaches_both_namespaces_with_data_and_meta() {
    let srv = TestServer::start().await;
    let token = srv.app(APP, &["realtime:publish"]).await;
    let room = srv.room("Lottery night", "public").await;
    let other_room = srv.room("Elsewhere", "public").await;
    let a = srv.user("Ann").await;
    let b = srv.user("Bob").await;
    let mut root = srv.subscribed(&a.token, &room).await;
    let mut ns = srv.connect(&b.token, &format!("/rooms/{room}")).await;
    next_event(&mut ns, "room:subscribed").await;
    // Not subscribed to this room: receives nothing.
    let mut bystander = srv.subscribed(&b.token, &other_room).await;

    let data = draw_data(1);
    let (status, body) = publish(
        &srv,
        APP,
        &token,
        &room,
        json!({"event": EVENT, "data": data}),
    )
    .await;
    let id1 = accepted_id(status, &body);
    app_event(&mut root, EVENT, &data, &id1, &room).await;
    app_event(&mut ns, EVENT, &data, &id1, &room).await;

    // Any JSON value travels as is: an array stays one argument.
    let array = json!([1, "two", null, {"three": [3]}]);
    let (status, body) = publish(
        &srv,
        APP,
        &token,
        &room,
        json!({"event": "lottery:numbers", "data": array}),
    )
    .await;
    let id2 = accepted_id(status, &body);
    assert_ne!(id1, id2, "event ids are unique");
    app_event(&mut root, "lottery:numbers", &array, &id2, &room).await;
    app_event(&mut ns, "lottery:numbers", &array, &id2, &room).await;

    assert_none_of(&mut bystander, &[EVENT, "lottery:numbers"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn app_event_errors() {
    let srv = TestServer::start().await;
    let token = srv.app(APP, &["realtime:publish"]).await;
    let manager = srv.app("bingo", &["rooms:manage"]).await;
    let room = srv.room("Errors", "public").await;
    let u = srv.user("Ann").await;
    let mut root = srv.subscribed(&u.token, &room).await;

    // An app without realtime:publish.
    let (status, body) = publish(
        &srv,
        "bingo",
        &manager,
        &room,
        json!({"event": "bingo:x", "data": {}}),
    )
    .await;
    assert_rest_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "APP_PERMISSION_DENIED",
    );

    // Another app's prefix, and a name without an action.
    for event in ["quiz:x", "lottery", "lottery:", "lotteryx:y"] {
        let (status, body) = publish(
            &srv,
            APP,
            &token,
            &room,
            json!({"event": event, "data": {}}),
        )
        .await;
        assert_rest_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "APP_PERMISSION_DENIED",
        );
    }

    // Bad credentials: a wrong token, a token of another app, an unknown app.
    for (app_id, bearer) in [
        (APP, "not-the-token"),
        (APP, manager.as_str()),
        ("nope", token.as_str()),
    ] {
        let (status, body) = publish(
            &srv,
            app_id,
            bearer,
            &room,
            json!({"event": "lottery:x", "data": {}}),
        )
        .await;
        assert_rest_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_FAILED",
        );
    }

    // An unknown room.
    let (status, body) = publish(
        &srv,
        APP,
        &token,
        "room_does_not_exist",
        json!({"event": EVENT, "data": {}}),
    )
    .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "ROOM_NOT_FOUND");

    // No event name; a non-string event name.
    for bad in [
        json!({"data": {"drawNumber": 1}}),
        json!({"event": 7, "data": {}}),
    ] {
        let (status, body) = publish(&srv, APP, &token, &room, bad).await;
        assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");
    }

    // Nothing of the above reached the room.
    assert_none_of(
        &mut root,
        &["bingo:x", "quiz:x", "lottery:x", EVENT, "lottery"],
    )
    .await;

    // And the refusals did not use the room's budget: 10 still pass.
    for n in 1..=10 {
        let (status, body) = publish(
            &srv,
            APP,
            &token,
            &room,
            json!({"event": EVENT, "data": draw_data(n)}),
        )
        .await;
        accepted_id(status, &body);
    }
    srv.stop().await;
}

#[tokio::test]
async fn app_events_limited_to_ten_per_room_per_second() {
    let srv = TestServer::start().await;
    let token = srv.app(APP, &["realtime:publish"]).await;
    let u = srv.user("Ann").await;

    // The 11th is refused only if the first 10 were accepted less than a
    // second before it; on a very slow run the window may have slid, so the
    // attempt is repeated in a fresh room.
    let mut conclusive = false;
    for attempt in 0..5 {
        let room = srv.room(&format!("Busy {attempt}"), "public").await;
        let mut sub = srv.subscribed(&u.token, &room).await;
        let started = Instant::now();
        let mut ids = Vec::new();
        for n in 1..=10 {
            let (status, body) = publish(
                &srv,
                APP,
                &token,
                &room,
                json!({"event": EVENT, "data": draw_data(n)}),
            )
            .await;
            ids.push(accepted_id(status, &body));
        }
        let (status, body) = publish(
            &srv,
            APP,
            &token,
            &room,
            json!({"event": EVENT, "data": draw_data(11)}),
        )
        .await;
        if started.elapsed() >= Duration::from_millis(950) {
            continue;
        }
        assert_rest_error(
            status,
            &body,
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
        );
        let message = body["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains("room"), "names the room limit: {message}");

        // Another room of the same app is not affected.
        let other = srv.room(&format!("Quiet {attempt}"), "public").await;
        let (status, body) = publish(
            &srv,
            APP,
            &token,
            &other,
            json!({"event": EVENT, "data": draw_data(1)}),
        )
        .await;
        accepted_id(status, &body);

        // The subscriber got exactly the 10 accepted events, in order.
        for (n, id) in (1..=10).zip(&ids) {
            app_event(&mut sub, EVENT, &draw_data(n), id, &room).await;
        }
        assert_none_of(&mut sub, &[EVENT]).await;
        conclusive = true;
        break;
    }
    assert!(conclusive, "11 requests never fit in one second");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_events_limited_to_600_per_app_per_minute() {
    const ROOMS: usize = 61;
    let srv = TestServer::start().await;
    let token = srv.app(APP, &["realtime:publish"]).await;
    let other_token = srv.app("trivia", &["realtime:publish"]).await;
    let mut rooms = Vec::new();
    for chunk in (0..=ROOMS).collect::<Vec<_>>().chunks(16) {
        let names: Vec<String> = chunk.iter().map(|i| format!("Room {i}")).collect();
        rooms.extend(join_all(names.iter().map(|name| srv.room(name, "public"))).await);
    }
    let spare = rooms.pop().expect("62 rooms");

    // 61 rooms x 10 events: each room stays within its own limit, so only
    // the application's 600 per minute refuses anything. Each batch sends
    // one event to every room.
    let mut accepted = 0;
    let mut refused = Vec::new();
    for n in 1..=10u64 {
        let batch = rooms.iter().map(|room| {
            publish(
                &srv,
                APP,
                &token,
                room,
                json!({"event": EVENT, "data": draw_data(n)}),
            )
        });
        for (status, body) in join_all(batch).await {
            if status == StatusCode::ACCEPTED {
                accepted += 1;
            } else {
                refused.push((status, body));
            }
        }
    }
    assert_eq!(accepted, 600, "refused: {refused:?}");
    assert_eq!(refused.len(), 10);
    for (status, body) in &refused {
        assert_rest_error(
            *status,
            body,
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
        );
        let message = body["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(
            message.contains("app") && message.contains("600"),
            "names the application limit: {message}"
        );
    }

    // A fresh room of the same app is refused too; another app is not.
    let (status, body) = publish(
        &srv,
        APP,
        &token,
        &spare,
        json!({"event": EVENT, "data": draw_data(1)}),
    )
    .await;
    assert_rest_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
    );
    let (status, body) = publish(
        &srv,
        "trivia",
        &other_token,
        &spare,
        json!({"event": "trivia:started", "data": {}}),
    )
    .await;
    accepted_id(status, &body);
    srv.stop().await;
}
