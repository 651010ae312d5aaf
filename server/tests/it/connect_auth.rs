//! Connect-time authentication and room authorization (protocol notes N4,
//! N5, N10): the exact `connect_error` messages, the room namespace, and
//! revocation of a live token. A malformed, an expired and an unknown
//! user's token are conformance cases (`connection.auth.*`), checked
//! against this server by `conformance/tests/reference.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::testing::*;
use sioclient::{ClientConfig, ConnectError, DisconnectReason, Transport};

/// Connects to `/` with `auth` exactly as given (or none), expecting a
/// refusal; returns the `connect_error` message.
async fn refused_with_auth(server: &TestServer, auth: Option<serde_json::Value>) -> String {
    let mut config = ClientConfig::new(server.url.clone())
        .with_namespace("/")
        .with_transport(Transport::WebSocket)
        .with_connect_timeout(WAIT);
    if let Some(auth) = auth {
        config = config.with_auth(auth);
    }
    match sioclient::connect(config).await {
        Err(ConnectError::Rejected { message, .. }) => message,
        Err(other) => panic!("expected connect_error, got {other}"),
        Ok(_) => panic!("expected connect_error, but / accepted the connection"),
    }
}

#[tokio::test]
async fn token_signed_with_another_secret_is_invalid() {
    let server = TestServer::start_with(|c| c.jwt_secret = "first-secret".into()).await;
    let other = TestServer::start_with(|c| c.jwt_secret = "second-secret".into()).await;
    let forged = other.user("mallory").await;
    assert_eq!(
        server.connect_refused(&forged.token, "/").await,
        "Authentication failed: Invalid token"
    );
    // The same token is fine where it was minted.
    let socket = other.connect(&forged.token, "/").await;
    assert!(!socket.sid().is_empty());
    drop(socket);
    other.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn revoked_token_is_refused() {
    let server = TestServer::start().await;
    let bob = server.user("bob").await;
    let res = server
        .post("/api/auth/revoke", json!({"tokenId": bob.token_id}))
        .await;
    assert_eq!(res["revoked"], json!(true), "{res}");
    assert_eq!(res["disconnected"], json!(0), "{res}");
    assert_eq!(
        server.connect_refused(&bob.token, "/").await,
        "Authentication failed: Token revoked"
    );
    server.stop().await;
}

#[tokio::test]
async fn missing_token_is_refused() {
    let server = TestServer::start().await;
    assert_eq!(
        refused_with_auth(&server, None).await,
        "Authentication failed: Missing token"
    );
    assert_eq!(
        refused_with_auth(&server, Some(json!({}))).await,
        "Authentication failed: Missing token"
    );
    assert_eq!(
        refused_with_auth(&server, Some(json!({"token": ""}))).await,
        "Authentication failed: Missing token"
    );
    server.stop().await;
}

#[tokio::test]
async fn room_namespace_of_a_public_room_subscribes_and_receives_events() {
    let server = TestServer::start().await;
    let carol = server.user("carol").await;
    let room = server.room("Main stage", "public").await;
    let ns = format!("/rooms/{room}");
    let mut socket = server.connect(&carol.token, &ns).await;
    assert_eq!(socket.namespace(), ns);

    let subscribed = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);
    assert_eq!(subscribed["roomId"], json!(room));
    assert_eq!(subscribed.as_object().unwrap().len(), 2, "{subscribed}");

    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Side stage"}))
        .await;
    let updated = next_event(&mut socket, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(updated["changes"], json!({"name": "Side stage"}));
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "Side stage", "status": "active"})
    );
    assert!(updated["eventId"].as_str().is_some_and(|s| !s.is_empty()));
    server.stop().await;
}

#[tokio::test]
async fn room_namespace_of_an_unknown_room_is_refused() {
    let server = TestServer::start().await;
    let dave = server.user("dave").await;
    assert_eq!(
        server
            .connect_refused(&dave.token, "/rooms/room_nope")
            .await,
        "Room not found: room_nope"
    );
    server.stop().await;
}

#[tokio::test]
async fn private_room_namespace_needs_participation() {
    let server = TestServer::start().await;
    let outsider = server.user("outsider").await;
    let member = server.user("member").await;
    let room = server.room("Backstage", "private").await;
    server.join(&room, &member.id, "participant").await;
    let ns = format!("/rooms/{room}");

    let message = server.connect_refused(&outsider.token, &ns).await;
    assert!(
        message.starts_with("Permission denied"),
        "unexpected connect_error: {message}"
    );

    let mut socket = server.connect(&member.token, &ns).await;
    let subscribed = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &subscribed);
    assert_eq!(subscribed["roomId"], json!(room));
    server.stop().await;
}

#[tokio::test]
async fn room_namespace_checks_the_token_first() {
    let server = TestServer::start().await;
    let room = server.room("Anyone", "public").await;
    assert_eq!(
        server
            .connect_refused("garbage", &format!("/rooms/{room}"))
            .await,
        "Authentication failed: Invalid token"
    );
    server.stop().await;
}

#[tokio::test]
async fn revoking_a_token_disconnects_its_live_sockets_only() {
    let server = TestServer::start().await;
    let erin = server.user("erin").await;
    // A second token of the same user: its socket must survive.
    let second = server
        .post(
            "/api/auth/token",
            json!({"userId": erin.id, "ttlSeconds": 3600}),
        )
        .await;
    let second_token = second["accessToken"].as_str().unwrap().to_owned();
    let room = server.room("Hall", "public").await;

    let mut on_root = server.connect(&erin.token, "/").await;
    let mut on_room = server.connect(&erin.token, &format!("/rooms/{room}")).await;
    let survivor = server.connect(&second_token, "/").await;

    let (status, res) = server
        .call(
            Method::POST,
            "/api/auth/revoke",
            Some(&erin.token),
            None,
            Some(json!({"tokenId": erin.token_id})),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res,
        json!({
            "revoked": true,
            "accessTokens": 1,
            "refreshTokens": 1,
            "disconnected": 2,
            "nodes": {"expected": 1, "confirmed": 1, "complete": true},
        })
    );

    assert_eq!(
        disconnected(&mut on_root).await,
        DisconnectReason::ServerDisconnect
    );
    assert_eq!(
        disconnected(&mut on_room).await,
        DisconnectReason::ServerDisconnect
    );
    // The other token's socket still works.
    let ack = ack(&survivor, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(ack["success"], json!(true), "{ack}");
    assert_eq!(
        server.connect_refused(&erin.token, "/").await,
        "Authentication failed: Token revoked"
    );
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_disconnects_them_and_refuses_their_tokens() {
    let server = TestServer::start().await;
    let frank = server.user("frank").await;
    let watcher = server.user("watcher").await;
    let room = server.room("Lounge", "public").await;
    let participant = server.join(&room, &frank.id, "participant").await;
    let prize = server
        .post(
            &format!("/api/rooms/{room}/prizes"),
            json!({"name": "Mug", "quantity": 1}),
        )
        .await;
    let prize_id = prize["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/api/rooms/{room}/prizes/{prize_id}/draw"),
            json!({}),
        )
        .await;

    let mut on_root = server.connect(&frank.token, "/").await;
    let mut on_room = server
        .connect(&frank.token, &format!("/rooms/{room}"))
        .await;
    let mut observer = server.subscribed(&watcher.token, &room).await;

    // Only the operator may delete a user.
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/api/users/{}", frank.id),
            Some(&frank.token),
            None,
            None,
        )
        .await;
    assert_rest_error(status, &body, StatusCode::FORBIDDEN, "PERMISSION_DENIED");

    let (status, body) = server
        .admin_call(Method::DELETE, &format!("/api/users/{}", frank.id), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The room hears the won unit given back, then the participant leave.
    let removed = next_event(&mut observer, "winner:removed").await;
    assert_payload("winner:removed", &removed);
    assert_eq!(removed["participantId"], json!(participant));
    let updated = next_event(&mut observer, "prize:updated").await;
    assert_payload("prize:updated", &updated);
    assert_eq!(updated["changes"], json!({"quantityRemaining": 1}));
    let left = next_event(&mut observer, "participant:left").await;
    assert_payload("participant:left", &left);
    assert_eq!(left["participantId"], json!(participant));
    assert_eq!(left["userId"], json!(frank.id));

    // Their live sockets go, on every namespace.
    assert_eq!(
        disconnected(&mut on_root).await,
        DisconnectReason::ServerDisconnect
    );
    assert_eq!(
        disconnected(&mut on_room).await,
        DisconnectReason::ServerDisconnect
    );

    // The still-valid token now names a user that does not exist.
    assert_eq!(
        server.connect_refused(&frank.token, "/").await,
        "Authentication failed: User not found"
    );
    let (status, body) = server
        .admin_call(Method::GET, &format!("/api/users/{}", frank.id), None)
        .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = server
        .admin_call(Method::DELETE, &format!("/api/users/{}", frank.id), None)
        .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    // The refresh token went with the user.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            None,
            Some(json!({"refreshToken": frank.refresh_token})),
        )
        .await;
    assert_rest_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    );

    // Others are unaffected.
    let ack = ack(&observer, "presence:get_online", json!({"roomId": room})).await;
    assert_eq!(ack["success"], json!(true), "{ack}");
    server.stop().await;
}
