//! Connection: transports, authentication, namespaces, disconnect,
//! reconnect.

use driver::Action;
use protocol::Visibility;
use protocol::error::AuthFailure;
use serde_json::json;
use sioclient::{Incoming, Transport};

use super::support::rename_and_expect_updated;
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, vars};

pub const CASES: &[Case] = &[
    case!(
        "connection.websocket",
        "A valid token connects over WebSocket",
        "Transport: WebSocket; the server accepts a valid JWT in auth.token",
        [CreateUser, MintToken],
        websocket
    ),
    case!(
        "connection.polling",
        "A valid token connects over HTTP long-polling and can subscribe",
        "Transport: WebSocket with fallback to HTTP long-polling",
        [CreateUser, MintToken, CreateRoom],
        polling
    ),
    case!(
        "connection.polling_upgrade",
        "Long-polling upgrades to WebSocket",
        "Transport: the polling session upgrades to WebSocket (Engine.IO probe)",
        [CreateUser, MintToken],
        upgrade
    ),
    case!(
        "connection.auth.invalid_token",
        "A malformed token is refused with `Authentication failed: Invalid token`",
        "Authentication: signature checked; the text's example: connect_error `Authentication failed: Invalid token`",
        [],
        invalid_token
    ),
    case!(
        "connection.auth.expired_token",
        "An expired token is refused with `Authentication failed: Token expired`",
        "Authentication: token expiration checked; refused with `Authentication failed: ...` (the reason `Token expired`: N10)",
        [CreateUser, MintToken],
        expired_token
    ),
    case!(
        "connection.auth.revoked_token",
        "A revoked token is refused with `Authentication failed: Token revoked`",
        "Authentication: token not revoked; refused with `Authentication failed: ...` (the reason `Token revoked`: N10)",
        [CreateUser, MintToken, RevokeToken],
        revoked_token
    ),
    case!(
        "connection.auth.refresh",
        "POST /api/auth/refresh turns a refresh token into an access token that connects and subscribes",
        "Security, Token Refresh: `fetch('/api/auth/refresh', {method: 'POST', body: JSON.stringify({refreshToken})})`, then `socket.auth.token = data.accessToken` and reconnect",
        [CreateUser, MintToken, RefreshToken, CreateRoom],
        refresh_reconnect
    ),
    case!(
        "connection.auth.unknown_user",
        "A token of a deleted or unknown user is refused with `Authentication failed: User not found`",
        "Authentication: user existence checked; refused with `Authentication failed: ...` (the reason `User not found`: N10)",
        [CreateUser, MintToken, DeleteUser],
        unknown_user
    ),
    case!(
        "connection.auth.missing_token",
        "A handshake without auth.token is refused with an `Authentication failed:` message",
        "Authentication: client must provide a JWT in the auth object",
        [],
        missing_token
    ),
    case!(
        "connection.namespace.root",
        "The default namespace `/` accepts an authenticated client",
        "Namespaces: default namespace `/`",
        [CreateUser, MintToken],
        root_namespace
    ),
    case!(
        "connection.namespace.room",
        "`/rooms/:roomId` accepts an authenticated client of an existing room",
        "Namespaces: room namespace `/rooms/:roomId`",
        [CreateUser, MintToken, CreateRoom],
        room_namespace
    ),
    case!(
        "connection.namespace.room_not_found",
        "`/rooms/:roomId` of an unknown room is refused with a connect_error",
        "Namespaces: room-specific namespace of a room that does not exist",
        [CreateUser, MintToken],
        room_namespace_unknown
    ),
    case!(
        "connection.disconnect.graceful",
        "A client disconnect ends the session; the server answers nothing after it",
        "Connection management: graceful disconnect",
        [CreateUser, MintToken],
        graceful_disconnect
    ),
    case!(
        "connection.reconnect.resubscribe",
        "After reconnecting, a client re-subscribes and receives room events again",
        "Reconnection: re-subscribe to rooms after reconnect",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        reconnect_resubscribe
    ),
];

async fn websocket(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("ws").await?;
    let s = cx.connect(&u.token, "/").await?;
    cx.ensure(!s.sid().is_empty(), "a socket id", "empty sid")?;
    cx.ensure(
        s.transport() == Transport::WebSocket,
        "transport websocket",
        format!("{:?}", s.transport()),
    )?;
    s.disconnect().await;
    Ok(())
}

async fn polling(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("poll").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = cx.connect_over(&u.token, "/", Transport::Polling).await?;
    cx.ensure(
        s.transport() == Transport::Polling,
        "transport polling",
        format!("{:?}", s.transport()),
    )?;
    let ack = cx.subscribe(&s, &room.id).await?;
    cx.check_ack(protocol::event::ROOM_SUBSCRIBE, &ack)?;
    let confirm = cx
        .expect_event(&mut s, protocol::event::ROOM_SUBSCRIBED)
        .await?;
    cx.check_payload(protocol::event::ROOM_SUBSCRIBED, &confirm)?;
    s.disconnect().await;
    Ok(())
}

async fn upgrade(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("upgrade").await?;
    let s = cx
        .connect_over(&u.token, "/", Transport::PollingThenUpgrade)
        .await?;
    cx.ensure(
        s.transport() == Transport::WebSocket,
        "transport websocket after the upgrade",
        format!("{:?}", s.transport()),
    )?;
    s.disconnect().await;
    Ok(())
}

/// The text shows one refusal, `Authentication failed: Invalid token`: a
/// message with that prefix meets it for every reason; the message per
/// reason (`Token expired`, `User not found`, `Token revoked`) is N10.
fn expect_message(cx: &mut Ctx, failure: AuthFailure, actual: &str) -> Result<(), Failure> {
    cx.ensure(
        actual.starts_with(protocol::error::AUTH_FAILED_PREFIX),
        format!(
            "connect_error message starting `{}`",
            protocol::error::AUTH_FAILED_PREFIX
        ),
        actual.to_owned(),
    )?;
    let exact = cx.expect_eq(
        "connect_error message",
        &json!(failure.message()),
        &json!(actual),
    );
    if failure == AuthFailure::InvalidToken {
        // The text's own example.
        exact
    } else {
        cx.decided("N10", exact)
    }
}

async fn invalid_token(cx: &mut Ctx) -> Result<(), Failure> {
    let m = cx
        .connect_refused(Some(json!({"token": "not.a.valid-jwt"})), "/")
        .await?;
    expect_message(cx, AuthFailure::InvalidToken, &m)
}

async fn expired_token(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user_with_ttl("expired", -60).await?;
    let m = cx
        .connect_refused(Some(json!({"token": u.token})), "/")
        .await?;
    expect_message(cx, AuthFailure::TokenExpired, &m)
}

async fn revoked_token(cx: &mut Ctx) -> Result<(), Failure> {
    // A static identity may hold a revoked token ready-made.
    let token = match cx.static_revoked_token() {
        Some(token) => token,
        None => {
            let u = cx.user("revoked").await?;
            let token_id = u
                .token_id
                .clone()
                .ok_or_else(|| Failure::Skip("the driver's mint_token gives no tokenId".into()))?;
            cx.act(Action::RevokeToken, vars(&[("tokenId", json!(token_id))]))
                .await?;
            u.token
        }
    };
    let m = cx
        .connect_refused(Some(json!({ "token": token })), "/")
        .await?;
    expect_message(cx, AuthFailure::TokenRevoked, &m)
}

async fn refresh_reconnect(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("refresher").await?;
    let refresh = u.refresh_token.clone().ok_or_else(|| {
        Failure::Skip(
            "needs a refresh token: the identity gives none (mint_token extracts no \
             refreshToken; a signing identity needs refresh_claims)"
                .into(),
        )
    })?;
    let room = cx.room(Visibility::Public).await?;
    // The profile's refresh_token action is the protocol's endpoint unless
    // the profile says otherwise; its `token` is the answer's accessToken.
    let out = cx
        .act(
            Action::RefreshToken,
            vars(&[("refreshToken", json!(refresh))]),
        )
        .await?;
    let token = out
        .get("token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    cx.ensure(
        !token.is_empty(),
        "the refresh answer's accessToken: a non-empty string",
        "none",
    )?;
    // Reconnect with it, as the text's client does: the same user, who
    // may subscribe.
    let s = cx.connect(&token, "/").await?;
    cx.subscribe(&s, &room.id).await?;
    s.disconnect().await;
    Ok(())
}

async fn unknown_user(cx: &mut Ctx) -> Result<(), Failure> {
    // A token that is valid in every other respect (signature, expiry, not
    // revoked) whose user no longer exists.
    let u = cx.user("ghost").await?;
    cx.act(Action::DeleteUser, vars(&[("userId", json!(u.id))]))
        .await?;
    let m = cx
        .connect_refused(Some(json!({ "token": u.token })), "/")
        .await?;
    expect_message(cx, AuthFailure::UserNotFound, &m)
}

async fn missing_token(cx: &mut Ctx) -> Result<(), Failure> {
    let m = cx.connect_refused(None, "/").await?;
    cx.ensure(
        m.starts_with(protocol::error::AUTH_FAILED_PREFIX),
        "connect_error message starting `Authentication failed: `",
        m.clone(),
    )
}

async fn root_namespace(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("root").await?;
    let s = cx.connect(&u.token, "/").await?;
    cx.expect_eq("namespace", &json!("/"), &json!(s.namespace()))?;
    s.disconnect().await;
    Ok(())
}

async fn room_namespace(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("roomns").await?;
    let room = cx.room(Visibility::Public).await?;
    let ns = protocol::event::room_namespace(&room.id);
    let s = cx.connect(&u.token, &ns).await?;
    cx.expect_eq("namespace", &json!(ns), &json!(s.namespace()))?;
    s.disconnect().await;
    Ok(())
}

async fn room_namespace_unknown(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("roomns404").await?;
    let ns = protocol::event::room_namespace(&cx.unique("room_missing_"));
    let m = cx
        .connect_refused(Some(json!({"token": u.token})), &ns)
        .await?;
    cx.ensure(!m.is_empty(), "a connect_error message", "empty message")
}

async fn graceful_disconnect(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("bye").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    s.disconnect().await;
    loop {
        match tokio::time::timeout(cx.wait(), s.next()).await {
            Ok(Some(Incoming::Disconnected { .. })) | Ok(None) => return Ok(()),
            Ok(Some(_)) => continue,
            Err(_) => {
                return Err(Failure::fail(
                    "the session ends after disconnect()",
                    "still open",
                ));
            }
        }
    }
}

async fn reconnect_resubscribe(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("again").await?;
    let room = cx.room(Visibility::Public).await?;
    let first = cx.connect(&u.token, "/").await?;
    cx.subscribe(&first, &room.id).await?;
    first.disconnect().await;
    let mut second = cx.connect(&u.token, "/").await?;
    cx.subscribe(&second, &room.id).await?;
    rename_and_expect_updated(cx, &mut second, &room, "renamed").await?;
    second.disconnect().await;
    Ok(())
}
