//! Token expiry while connected and the refresh flow (protocol notes N10):
//! `token:expired`, then `AUTHENTICATION_FAILED` for client events, then a
//! server disconnect after the grace period; refresh tokens work once.

use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;
use sioclient::DisconnectReason;

const GRACE: Duration = Duration::from_millis(700);

async fn short_grace_server() -> TestServer {
    TestServer::start_with(|c| c.token_grace = GRACE).await
}

fn time_of(payload: &Value, field: &str) -> SystemTime {
    payload[field]
        .as_str()
        .and_then(protocol::timestamp::parse_utc)
        .unwrap_or_else(|| panic!("{field} is not an ISO-8601 UTC time: {payload}"))
}

/// Waits for `token:expired`, checks it in full and returns `disconnectAt`.
async fn expect_token_expired(socket: &mut sioclient::Socket) -> SystemTime {
    let expired = next_event(socket, "token:expired").await;
    assert_payload("token:expired", &expired);
    let keys: Vec<&String> = expired.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        2,
        "token:expired has only timestamp and disconnectAt: {expired}"
    );
    let at = time_of(&expired, "timestamp");
    let disconnect_at = time_of(&expired, "disconnectAt");
    let gap = disconnect_at
        .duration_since(at)
        .unwrap_or_else(|_| panic!("disconnectAt before timestamp: {expired}"));
    assert!(
        gap > Duration::ZERO && gap <= GRACE,
        "disconnectAt should be the grace period after timestamp: {expired}"
    );
    disconnect_at
}

#[tokio::test]
async fn expiry_while_connected_warns_refuses_then_disconnects() {
    let server = short_grace_server().await;
    let room = server.room("Clock", "public").await;
    let user = server.user_with_ttl("Short", 2).await;
    let mut socket = server.connect(&user.token, "/").await;
    // Before `exp`, events work.
    let sub = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(sub["success"], json!(true), "{sub}");

    let disconnect_at = expect_token_expired(&mut socket).await;

    let refused = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &refused);
    assert_ack_error(&refused, "AUTHENTICATION_FAILED");
    assert_eq!(
        refused["error"]["message"],
        json!("Authentication failed: Token expired")
    );
    // Without an ack: an `error` event.
    socket
        .emit("presence:get_online", json!({"roomId": room}))
        .expect("emit");
    let err = next_event(&mut socket, "error").await;
    assert_payload("error", &err);
    assert_eq!(err["code"], json!("AUTHENTICATION_FAILED"));
    assert_eq!(
        err["message"],
        json!("Authentication failed: Token expired")
    );
    assert_eq!(err["details"]["event"], json!("presence:get_online"));

    assert_eq!(
        disconnected(&mut socket).await,
        DisconnectReason::ServerDisconnect
    );
    // Not before the announced time (timestamps have millisecond precision).
    let now = SystemTime::now();
    assert!(
        now + Duration::from_millis(5) >= disconnect_at,
        "disconnected before disconnectAt"
    );
    // The token cannot connect again.
    assert_eq!(
        server.connect_refused(&user.token, "/").await,
        "Authentication failed: Token expired"
    );
    server.stop().await;
}

#[tokio::test]
async fn expiry_on_a_room_namespace() {
    let server = short_grace_server().await;
    let room = server.room("Clock", "public").await;
    let user = server.user_with_ttl("Short", 2).await;
    let mut socket = server.connect(&user.token, &format!("/rooms/{room}")).await;
    next_event(&mut socket, "room:subscribed").await;

    expect_token_expired(&mut socket).await;
    let refused = ack(&socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &refused);
    assert_ack_error(&refused, "AUTHENTICATION_FAILED");
    assert_eq!(
        disconnected(&mut socket).await,
        DisconnectReason::ServerDisconnect
    );
    server.stop().await;
}

/// `POST /api/auth/refresh` with `refresh_token`, no credentials.
pub(crate) async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            None,
            Some(json!({"refreshToken": refresh_token})),
        )
        .await
}

#[tokio::test]
async fn refresh_rotates_and_works_once() {
    let server = TestServer::start_with(|c| c.access_token_ttl = Duration::from_secs(600)).await;
    let user = server.user("Refresher").await;
    let room = server.room("Lobby", "public").await;

    let (status, fresh) = refresh(&server, &user.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let access = fresh["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();
    let next_refresh = fresh["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned();
    assert_ne!(access, user.token);
    assert_ne!(next_refresh, user.refresh_token);
    assert_eq!(fresh["userId"], json!(user.id));
    assert!(
        fresh["tokenId"]
            .as_str()
            .is_some_and(|t| t != user.token_id)
    );
    // expiresAt is the configured lifetime from now.
    let expires_at = time_of(&fresh, "expiresAt");
    let lifetime = expires_at
        .duration_since(SystemTime::now())
        .expect("expiresAt in the future");
    assert!(
        lifetime > Duration::from_secs(590) && lifetime <= Duration::from_secs(600),
        "expiresAt {lifetime:?} from now: {fresh}"
    );

    // The new access token connects and works.
    let socket = server.connect(&access, "/").await;
    let sub = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(sub["success"], json!(true), "{sub}");

    // The new one works, once.
    let (status, again) = refresh(&server, &next_refresh).await;
    assert_eq!(status, StatusCode::OK, "{again}");

    // The old refresh token was used up: presenting it again is reuse,
    // refused, and it revokes its family (protocol notes N10), so the
    // latest refresh token stops working too.
    let (status, body) = refresh(&server, &user.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], json!("AUTHENTICATION_FAILED"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reused")),
        "{body}"
    );
    let latest = again["refreshToken"].as_str().expect("refreshToken");
    let (status, body) = refresh(&server, latest).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], json!("AUTHENTICATION_FAILED"));

    // A made-up refresh token is refused the same way.
    let (status, body) = refresh(&server, "not-a-refresh-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], json!("AUTHENTICATION_FAILED"));
    server.stop().await;
}

#[tokio::test]
async fn refresh_during_the_grace_period_and_reconnect() {
    let server = short_grace_server().await;
    let room = server.room("Clock", "public").await;
    let user = server.user_with_ttl("Short", 2).await;
    let mut old = server.connect(&user.token, "/").await;

    expect_token_expired(&mut old).await;
    // The documented flow: refresh, then reconnect with the new token.
    let (status, fresh) = refresh(&server, &user.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let access = fresh["accessToken"].as_str().expect("accessToken");
    let mut new = server.connect(access, "/").await;
    let sub = ack(&new, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(sub["success"], json!(true), "{sub}");
    next_event(&mut new, "room:subscribed").await;

    // The old socket goes; the new one stays and keeps receiving.
    assert_eq!(
        disconnected(&mut old).await,
        DisconnectReason::ServerDisconnect
    );
    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Clock 2"}))
        .await;
    let updated = next_event(&mut new, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["changes"], json!({"name": "Clock 2"}));
    assert!(new.is_connected());
    assert_no_event(&mut new, "token:expired").await;
    server.stop().await;
}
