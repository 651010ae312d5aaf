//! Revocation that did not revoke (issue 13, item 7): revoking an access
//! token left its refresh token working, a refresh token or all tokens of
//! a user could not be revoked, a rotated refresh token presented again
//! went unnoticed, and in Redis mode a node that missed the revocation
//! kept the socket until the token expired while REST answered 200.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;

use crate::cluster::Deployment;
use crate::token_expiry::refresh;

/// Asserts a refused refresh.
async fn refresh_refused(server: &TestServer, refresh_token: &str) -> Value {
    let (status, body) = refresh(server, refresh_token).await;
    assert_rest_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    );
    body
}

/// `(accessToken, refreshToken)` of a refresh that must work.
async fn refreshed(server: &TestServer, refresh_token: &str) -> (String, String) {
    let (status, body) = refresh(server, refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let field = |k: &str| body[k].as_str().expect(k).to_owned();
    (field("accessToken"), field("refreshToken"))
}

/// Fails on the code before the fix: the revoked token's refresh token
/// still minted a working access token.
#[tokio::test]
async fn revoking_an_access_token_revokes_its_refresh_token() {
    let server = TestServer::start().await;
    let u = server.user("victim").await;
    let mut socket = server.connect(&u.token, "/").await;
    server
        .post("/api/auth/revoke", json!({"tokenId": u.token_id}))
        .await;
    disconnected(&mut socket).await;
    refresh_refused(&server, &u.refresh_token).await;

    // After a refresh, revoking the first access token also revokes the one
    // the refresh minted, and the refresh token it gave.
    let v = server.user("holder").await;
    let (second, second_refresh) = refreshed(&server, &v.refresh_token).await;
    let mut socket = server.connect(&second, "/").await;
    let res = server
        .post("/api/auth/revoke", json!({"tokenId": v.token_id}))
        .await;
    disconnected(&mut socket).await;
    refresh_refused(&server, &second_refresh).await;
    assert_eq!(
        server.connect_refused(&second, "/").await,
        "Authentication failed: Token revoked"
    );
    assert_eq!(res["accessTokens"], json!(2), "{res}");
    assert_eq!(
        res["refreshTokens"],
        json!(2),
        "the used one and the live one: {res}"
    );
    server.stop().await;
}

/// Fails on the code before the fix: the replay was refused, but the
/// family it was stolen from went on working (here the holder's socket
/// stayed; had the thief refreshed first, the thief's would have).
#[tokio::test]
async fn a_reused_rotated_refresh_token_revokes_its_family() {
    let server = TestServer::start().await;
    let u = server.user("holder").await;
    let stolen = u.refresh_token.clone();
    // The holder rotates first; the thief replays the copy.
    let (access, next_refresh) = refreshed(&server, &u.refresh_token).await;
    let mut socket = server.connect(&access, "/").await;
    let body = refresh_refused(&server, &stolen).await;
    disconnected(&mut socket).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reused")),
        "{body}"
    );
    assert_eq!(
        server.connect_refused(&access, "/").await,
        "Authentication failed: Token revoked"
    );
    refresh_refused(&server, &next_refresh).await;
    // Another family of the same user is not touched.
    let other = server.user("bystander").await;
    refreshed(&server, &other.refresh_token).await;
    server.stop().await;
}

/// Fails on the code before the fix: neither route existed.
#[tokio::test]
async fn the_operator_revokes_a_refresh_token_or_every_token_of_a_user() {
    let server = TestServer::start().await;
    let u = server.user("leaked").await;
    let mut socket = server.connect(&u.token, "/").await;
    let res = server
        .post(
            "/api/auth/revoke-refresh",
            json!({"refreshToken": u.refresh_token}),
        )
        .await;
    disconnected(&mut socket).await;
    assert_eq!(
        res,
        json!({
            "revoked": true,
            "accessTokens": 1,
            "refreshTokens": 1,
            "disconnected": 1,
            "nodes": {"expected": 1, "confirmed": 1, "complete": true},
        })
    );
    refresh_refused(&server, &u.refresh_token).await;
    let (status, body) = server
        .admin_call(
            Method::POST,
            "/api/auth/revoke-refresh",
            Some(json!({"refreshToken": u.refresh_token})),
        )
        .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

    // Every token of a user: two families, a socket on each.
    let v = server.user("compromised").await;
    let second = server
        .post("/api/auth/token", json!({"userId": v.id}))
        .await;
    let second_token = second["accessToken"].as_str().expect("token").to_owned();
    let mut first_socket = server.connect(&v.token, "/").await;
    let mut second_socket = server.connect(&second_token, "/").await;
    let bystander = server.user("bystander").await;
    let path = format!("/api/users/{}/revoke-tokens", v.id);
    let (status, body) = server
        .call(Method::POST, &path, Some(&bystander.token), None, None)
        .await;
    assert_rest_error(status, &body, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    let res = server.admin(Method::POST, &path, None).await;
    disconnected(&mut first_socket).await;
    disconnected(&mut second_socket).await;
    assert_eq!(res["accessTokens"], json!(2), "{res}");
    assert_eq!(res["refreshTokens"], json!(2), "{res}");
    assert_eq!(res["disconnected"], json!(2), "{res}");
    for token in [&v.token, &second_token] {
        assert_eq!(
            server.connect_refused(token, "/").await,
            "Authentication failed: Token revoked"
        );
    }
    refresh_refused(&server, &v.refresh_token).await;
    refresh_refused(&server, second["refreshToken"].as_str().expect("refresh")).await;
    // The bystander's tokens still work.
    server.connect(&bystander.token, "/").await;
    let (status, body) = server
        .admin_call(Method::POST, "/api/users/usr_nobody/revoke-tokens", None)
        .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    server.stop().await;
}

/// Fails on the code before the fix: with Redis down when the revocation
/// went out, node B never heard of it and kept the socket until the token
/// expired, while node A answered 200 with no word on the other nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_revocation_drops_the_socket_anyway() {
    let mut d = Deployment::start("revocation_missed", 2).await;
    // Reached: both nodes confirm before the answer.
    let u = d.nodes[0].user("first").await;
    let mut on_b = d.nodes[1].connect(&u.token, "/").await;
    let res = d.nodes[0]
        .post("/api/auth/revoke", json!({"tokenId": u.token_id}))
        .await;
    disconnected(&mut on_b).await;
    assert_eq!(res["disconnected"], json!(1), "{res}");
    assert_eq!(
        res["nodes"],
        json!({"expected": 2, "confirmed": 2, "complete": true})
    );

    // Missed: Redis is down when the revocation goes out.
    let v = d.nodes[0].user("second").await;
    let mut on_b = d.nodes[1].connect(&v.token, "/").await;
    tokio::task::block_in_place(|| d.redis.stop());
    let res = d.nodes[0]
        .post("/api/auth/revoke", json!({"tokenId": v.token_id}))
        .await;
    // Node B drops the socket by itself, Redis still down.
    disconnected(&mut on_b).await;
    assert_eq!(res["disconnected"], json!(0), "{res}");
    assert_eq!(
        res["nodes"],
        json!({"expected": null, "confirmed": 1, "complete": false}),
        "the answer says the other nodes were not reached"
    );
    assert_eq!(
        d.nodes[1].connect_refused(&v.token, "/").await,
        "Authentication failed: Token revoked"
    );
    tokio::task::block_in_place(|| d.redis.restart());
    d.stop().await;
}

/// Fails on the code before the fix: deleting the user deleted their
/// access-token records, so the nodes' re-read of the revocations had
/// nothing to find, and node B, which missed the deletion's cluster command
/// (Redis down), kept the deleted user's socket until the token expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_user_deletion_drops_the_socket_anyway() {
    let mut d = Deployment::start("deletion_missed", 2).await;
    let gone = d.nodes[0].user("gone").await;
    let stays = d.nodes[0].user("stays").await;
    let room = d.nodes[0].room("Lobby", "public").await;
    let mut on_b = d.nodes[1].connect(&gone.token, "/").await;
    let bystander = d.nodes[1].connect(&stays.token, "/").await;

    tokio::task::block_in_place(|| d.redis.stop());
    let (status, body) = d.nodes[0]
        .admin_call(Method::DELETE, &format!("/api/users/{}", gone.id), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Node B drops the socket by itself, Redis still down.
    disconnected(&mut on_b).await;
    let sub = ack(&bystander, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(
        sub["success"],
        json!(true),
        "another user's socket on B stays: {sub}"
    );
    assert_eq!(
        d.nodes[1].connect_refused(&gone.token, "/").await,
        "Authentication failed: User not found"
    );
    tokio::task::block_in_place(|| d.redis.restart());
    d.stop().await;
}
