//! Connection: transports, authentication, namespaces, disconnect,
//! reconnect.

use driver::Action;
use protocol::error::AuthFailure;
use protocol::event as ev;
use protocol::{ErrorCode, Role, Visibility};
use serde_json::{Value, json};
use sioclient::{Incoming, Transport};

use super::support::{
    expect_event_where, expect_subscribed, rename_and_expect_updated, subscribed_socket,
};
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
        "The default namespace `/` accepts an authenticated client: the server's CONNECT answer names `/` with the socket's id, and it answers events there",
        "Namespaces: default namespace `/`",
        [CreateUser, MintToken],
        root_namespace
    ),
    case!(
        "connection.namespace.room",
        "`/rooms/:roomId` accepts an authenticated client of an existing room: the server's CONNECT answer names the namespace, and it answers there about that room (presence:get_online)",
        "Namespaces: room namespace `/rooms/:roomId` (the user listed online through it: N11)",
        [CreateUser, MintToken, CreateRoom],
        room_namespace
    ),
    case!(
        "connection.namespace.room_not_found",
        "`/rooms/:roomId` of an unknown room is refused with a connect_error naming the room as not found (not an authentication failure)",
        "Namespaces: room-specific namespace of a room that does not exist; Error codes: ROOM_NOT_FOUND (the message `Room not found: <roomId>`: N4)",
        [CreateUser, MintToken],
        room_namespace_unknown
    ),
    case!(
        "connection.namespace.room_auth.invalid_token",
        "`/rooms/:roomId` of a public room refuses a malformed token with `Authentication failed: ...`",
        "Authentication: the JWT is checked at connection, on every namespace (`/rooms/:roomId` too); the text's example: connect_error `Authentication failed: Invalid token`",
        [CreateUser, MintToken, CreateRoom],
        room_auth_invalid
    ),
    case!(
        "connection.namespace.room_auth.missing_token",
        "`/rooms/:roomId` of a public room refuses a handshake without auth.token with `Authentication failed: ...`",
        "Authentication: client must provide a JWT in the auth object, on every namespace (`Missing token`: N10)",
        [CreateUser, MintToken, CreateRoom],
        room_auth_missing
    ),
    case!(
        "connection.namespace.room_auth.expired_token",
        "`/rooms/:roomId` of a public room refuses an expired token with `Authentication failed: ...`",
        "Authentication: token expiration checked, on every namespace (the reason `Token expired`: N10)",
        [CreateUser, MintToken, CreateRoom],
        room_auth_expired
    ),
    case!(
        "connection.namespace.room_auth.private",
        "`/rooms/:roomId` of a private room refuses a user who is not a participant, and accepts them once they are",
        "Room Authorization: access checked before subscribing to room events (the namespace: \"Clients join after subscribing to room\"); the message `Permission denied: ...` is N4",
        [CreateUser, MintToken, CreateRoom, AddParticipant],
        room_auth_private
    ),
    case!(
        "connection.disconnect.graceful",
        "A client disconnect ends the session, and the server sees it: another subscriber gets presence:user_offline",
        "Connection management: graceful disconnect; Presence: offline when the user's last socket leaves",
        [CreateUser, MintToken, CreateRoom],
        graceful_disconnect
    ),
    case!(
        "connection.reconnect.resubscribe",
        "A client whose connection drops (no DISCONNECT) goes offline, reconnects with the same token, re-subscribes and receives room events again",
        "Reconnection: re-subscribe to rooms after reconnect; the server keeps no subscription across connections (N14)",
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
    cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    let confirm = cx.expect_event(&mut s, ev::ROOM_SUBSCRIBED).await?;
    cx.check_payload(ev::ROOM_SUBSCRIBED, &confirm)?;
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
        .and_then(Value::as_str)
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
    server_connected(cx, "/", s.sid()).await?;
    // The server handles events on it: any ack (here to a room that does
    // not exist) is its answer.
    let missing = cx.unique("room_missing_");
    cx.ack(&s, ev::PRESENCE_GET_ONLINE, json!({ "roomId": missing }))
        .await?;
    s.disconnect().await;
    Ok(())
}

/// What the server said when it accepted `ns`: its CONNECT packet on the
/// wire (`40{"sid"}` for `/`, `40/rooms/<id>,{"sid"}` otherwise) names
/// that namespace and the socket's id. Frames reach the transcript from
/// the connection's tap, so this waits (bounded) for the frame.
async fn server_connected(cx: &mut Ctx, ns: &str, sid: &str) -> Result<(), Failure> {
    let prefix = if ns == "/" {
        "40".to_owned()
    } else {
        format!("40{ns},")
    };
    let deadline = tokio::time::Instant::now() + cx.wait();
    loop {
        let found = cx.received_frames().iter().any(|frame| {
            frame
                .strip_prefix(&prefix)
                .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
                .is_some_and(|data| data["sid"] == json!(sid))
        });
        if found {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::fail(
                format!("the server's CONNECT for {ns}: `{prefix}{{\"sid\":\"{sid}\"}}`"),
                "no such frame received",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn room_namespace(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("roomns").await?;
    let room = cx.room(Visibility::Public).await?;
    let ns = ev::room_namespace(&room.id);
    let s = cx.connect(&u.token, &ns).await?;
    server_connected(cx, &ns, s.sid()).await?;
    // The server answers on the namespace about its room.
    let ack = cx
        .ack(&s, ev::PRESENCE_GET_ONLINE, json!({ "roomId": room.id }))
        .await?;
    cx.ensure(
        ack.get("success") != Some(&json!(false)) && ack["roomId"] == json!(room.id),
        format!(
            "presence:get_online on {ns}: the online users of room {}",
            room.id
        ),
        ack.to_string(),
    )?;
    // A namespace socket counts for presence: N11.
    let listed = cx.ensure(
        lists_user(&ack, &u.id),
        format!(
            "presence:get_online on {ns} lists the connected user {}",
            u.id
        ),
        ack.to_string(),
    );
    cx.decided("N11", listed)?;
    s.disconnect().await;
    Ok(())
}

/// Whether a `presence:get_online` ack lists `user_id`.
fn lists_user(ack: &Value, user_id: &str) -> bool {
    ack["users"]
        .as_array()
        .is_some_and(|us| us.iter().any(|x| x["id"] == json!(user_id)))
}

/// N4's message for a room namespace whose room does not exist.
const ROOM_NOT_FOUND_MESSAGE: &str = "Room not found: ";

async fn room_namespace_unknown(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("roomns404").await?;
    let missing = cx.unique("room_missing_");
    let ns = ev::room_namespace(&missing);
    let (m, data) = cx
        .connect_refusal(Some(json!({"token": u.token})), &ns, Transport::WebSocket)
        .await?;
    // The token is good: an authentication refusal is the wrong answer.
    // The text names the failure ROOM_NOT_FOUND ("Room doesn't exist"); a
    // message saying so, or that code in the refusal's data, meets it.
    let code = ErrorCode::RoomNotFound.as_str();
    let says_not_found =
        m.to_ascii_lowercase().contains("not found") || data.get("code") == Some(&json!(code));
    cx.ensure(
        !m.starts_with(protocol::error::AUTH_FAILED_PREFIX) && says_not_found,
        format!(
            "connect_error saying the room does not exist (`not found` in the message, or data.code {code})"
        ),
        format!("connect_error {m:?}, data {data}"),
    )?;
    let exact = cx.expect_eq(
        "connect_error message",
        &json!(format!("{ROOM_NOT_FOUND_MESSAGE}{missing}")),
        &json!(m),
    );
    cx.decided("N4", exact)
}

/// A refused connect to the namespace of an existing public room, with
/// `auth` made of a token of `failure`'s kind: the same checks as on `/`.
async fn room_auth_refused(cx: &mut Ctx, failure: AuthFailure) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let auth = match failure {
        AuthFailure::MissingToken => None,
        AuthFailure::TokenExpired => {
            let u = cx.user_with_ttl("expired ns", -60).await?;
            Some(json!({ "token": u.token }))
        }
        _ => Some(json!({ "token": "not.a.valid-jwt" })),
    };
    // A good token opens the same namespace: the refusal is the token's.
    let u = cx.user("ns control").await?;
    let ns = ev::room_namespace(&room.id);
    let control = cx.connect(&u.token, &ns).await?;
    control.disconnect().await;
    let m = cx.connect_refused(auth, &ns).await?;
    expect_message(cx, failure, &m)
}

async fn room_auth_invalid(cx: &mut Ctx) -> Result<(), Failure> {
    room_auth_refused(cx, AuthFailure::InvalidToken).await
}

async fn room_auth_missing(cx: &mut Ctx) -> Result<(), Failure> {
    room_auth_refused(cx, AuthFailure::MissingToken).await
}

async fn room_auth_expired(cx: &mut Ctx) -> Result<(), Failure> {
    room_auth_refused(cx, AuthFailure::TokenExpired).await
}

/// N4's message prefix for a room namespace the user may not enter.
const PERMISSION_DENIED_MESSAGE: &str = "Permission denied: ";

async fn room_auth_private(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("ns outsider").await?;
    let room = cx.room(Visibility::Private).await?;
    let ns = ev::room_namespace(&room.id);
    let m = cx
        .connect_refused(Some(json!({ "token": u.token })), &ns)
        .await?;
    cx.ensure(
        !m.starts_with(protocol::error::AUTH_FAILED_PREFIX),
        "a refusal for the room, not of the (valid) token",
        m.clone(),
    )?;
    let exact = cx.ensure(
        m.starts_with(PERMISSION_DENIED_MESSAGE),
        format!("connect_error message starting `{PERMISSION_DENIED_MESSAGE}`"),
        m.clone(),
    );
    cx.decided("N4", exact)?;
    // Once a participant, the same user enters.
    cx.join(&room, &u, Role::Participant).await?;
    let s = cx.connect(&u.token, &ns).await?;
    s.disconnect().await;
    Ok(())
}

async fn graceful_disconnect(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("stays").await?;
    let u = cx.user("bye").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut w = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    expect_event_where(
        cx,
        &mut w,
        ev::PRESENCE_USER_ONLINE,
        &format!("userId {}", u.id),
        |p| p["userId"] == json!(u.id),
    )
    .await?;
    s.disconnect().await;
    // The client's side: the session ends.
    loop {
        match tokio::time::timeout(cx.wait(), s.next()).await {
            Ok(Some(Incoming::Disconnected { .. })) | Ok(None) => break,
            Ok(Some(_)) => continue,
            Err(_) => {
                return Err(Failure::fail(
                    "the session ends after disconnect()",
                    "still open",
                ));
            }
        }
    }
    // The server's side: it saw the user leave.
    let offline = expect_event_where(
        cx,
        &mut w,
        ev::PRESENCE_USER_OFFLINE,
        &format!("userId {} (the server saw the disconnect)", u.id),
        |p| p["userId"] == json!(u.id),
    )
    .await?;
    cx.check_payload(ev::PRESENCE_USER_OFFLINE, &offline)?;
    cx.expect_eq(
        "presence:user_offline roomId",
        &json!(room.id),
        &offline["roomId"],
    )?;
    w.disconnect().await;
    Ok(())
}

async fn reconnect_resubscribe(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("watcher").await?;
    let u = cx.user("again").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut w = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    let first = subscribed_socket(cx, &u.token, &[&room]).await?;
    let is_user = |p: &Value| p["userId"] == json!(u.id);
    let about = format!("userId {}", u.id);
    expect_event_where(cx, &mut w, ev::PRESENCE_USER_ONLINE, &about, is_user).await?;
    // The connection drops without a Socket.IO DISCONNECT, as a broken
    // network drops it: a packet no Socket.IO server can decode makes the
    // server close the transport. The client then comes back.
    first
        .send_raw("4x")
        .map_err(|e| Failure::Error(format!("breaking the connection: {e}")))?;
    let limit = cx.wait();
    let dropped = tokio::time::timeout(limit, first.closed()).await.is_ok();
    cx.ensure(
        dropped,
        format!("the server closed the connection within {limit:?} of an undecodable packet"),
        "still open",
    )?;
    // The server saw the old connection go (the user was offline).
    expect_event_where(cx, &mut w, ev::PRESENCE_USER_OFFLINE, &about, is_user).await?;
    // The same client again, with the same token: it re-subscribes, as the
    // text advises, and hears the room.
    let mut second = cx.connect(&u.token, "/").await?;
    let ack = cx.subscribe(&second, &room.id).await?;
    cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    expect_subscribed(cx, &mut second, &room.id).await?;
    expect_event_where(cx, &mut w, ev::PRESENCE_USER_ONLINE, &about, is_user).await?;
    rename_and_expect_updated(cx, &mut second, &room, "renamed").await?;
    second.disconnect().await;
    w.disconnect().await;
    Ok(())
}
