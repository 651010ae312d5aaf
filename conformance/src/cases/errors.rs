//! Errors: every error code of the protocol, provoked and checked in each
//! form it can take. A failed client event with an ack id gets
//! `{success: false, error: {code, message}}` in its ack (the text's
//! "Error Response"), and no `error` event (N9: a decision); one without an
//! ack id gets an `error` event `{code, message, details, timestamp}`
//! naming the event in `details.action` (the text's example) or
//! `details.event` (N9; the reference server sends both).
//! Authentication failures at connect are `connect_error` messages
//! (`Authentication failed: ...`, N10); application permission failures
//! are REST answers (N1).

use driver::Action;
use protocol::ErrorCode;
use protocol::Visibility;
use protocol::error::AUTH_FAILED_PREFIX;
use protocol::event as ev;
use serde_json::{Value, json};
use sioclient::{Event, Socket};

use super::support::{
    SENTINEL, accepted_burst, check_rest_refusal, drain_events, expect_error_ack, expired_session,
    rename_room, sentinel_room,
};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, vars};

pub const CASES: &[Case] = &[
    case!(
        "errors.authentication_failed.connect",
        "An invalid or missing token is refused with a connect_error `Authentication failed: ...`",
        "Error codes: AUTHENTICATION_FAILED (invalid or expired token); at connect it is a connect_error whose message starts `Authentication failed: `",
        [],
        auth_failed_connect
    ),
    case!(
        "errors.authentication_failed.ack",
        "After token:expired, an acked event gets AUTHENTICATION_FAILED in its ack and no error event",
        "Error codes: AUTHENTICATION_FAILED; Acknowledgments: a failed event with an ack id gets {success: false, error: {code, message}}; no `error` event besides is N9",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        auth_failed_ack
    ),
    case!(
        "errors.authentication_failed.event",
        "After token:expired, an event without ack gets an `error` event AUTHENTICATION_FAILED",
        "Error codes: AUTHENTICATION_FAILED; a failed event without an ack id gets an `error` event {code, message, details, timestamp}",
        [CreateUser, MintToken, CreateRoom],
        auth_failed_event
    ),
    case!(
        "errors.permission_denied.ack",
        "Subscribing to a private room as a non-participant gets PERMISSION_DENIED in the ack",
        "Error codes: PERMISSION_DENIED (insufficient permissions), as an ack error; no `error` event besides is N9",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        permission_denied_ack
    ),
    case!(
        "errors.permission_denied.event",
        "Subscribing to a private room as a non-participant without ack gets an `error` event PERMISSION_DENIED",
        "Error codes: PERMISSION_DENIED; Server Error Event: details {action, roomId} (the example; `details.event` is N9)",
        [CreateUser, MintToken, CreateRoom],
        permission_denied_event
    ),
    case!(
        "errors.room_not_found.ack",
        "Subscribing to an unknown room gets ROOM_NOT_FOUND in the ack",
        "Error codes: ROOM_NOT_FOUND (room doesn't exist), as an ack error; no `error` event besides is N9",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        room_not_found_ack
    ),
    case!(
        "errors.room_not_found.event",
        "Subscribing to an unknown room without ack gets an `error` event ROOM_NOT_FOUND",
        "Error codes: ROOM_NOT_FOUND; Server Error Event: details {action, roomId} (the example; `details.event` is N9)",
        [CreateUser, MintToken],
        room_not_found_event
    ),
    case!(
        "errors.invalid_payload.ack",
        "room:subscribe with a numeric roomId gets INVALID_PAYLOAD in the ack",
        "Error codes: INVALID_PAYLOAD (invalid event payload), as an ack error; no `error` event besides is N9",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        invalid_payload_ack
    ),
    case!(
        "errors.invalid_payload.event",
        "room:subscribe with a numeric roomId and no ack gets an `error` event INVALID_PAYLOAD",
        "Error codes: INVALID_PAYLOAD; Server Error Event: details {action} (the example; `details.event` is N9)",
        [CreateUser, MintToken],
        invalid_payload_event
    ),
    case!(
        "errors.rate_limit_exceeded.ack",
        "The 101st event within a minute on one connection gets RATE_LIMIT_EXCEEDED in its ack",
        "Error codes: RATE_LIMIT_EXCEEDED (too many events; \"Client events: 100/minute\" per connection), as an ack error; no `error` event besides is N9",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        rate_limit_ack
    ),
    case!(
        "errors.rate_limit_exceeded.event",
        "The 101st event within a minute, sent without ack, gets an `error` event RATE_LIMIT_EXCEEDED",
        "Error codes: RATE_LIMIT_EXCEEDED; Server Error Event: details {action} (the example; `details.event` is N9)",
        [CreateUser, MintToken, CreateRoom],
        rate_limit_event
    ),
    case!(
        "errors.app_permission_denied.rest",
        "An application without realtime:publish is refused with 403 APP_PERMISSION_DENIED and nothing is broadcast",
        "Error codes: APP_PERMISSION_DENIED (app lacks required permission); \"App must have `realtime:publish` permission\" (403 and the error envelope: N1)",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom,
            UpdateRoom
        ],
        app_permission_denied_rest
    ),
];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Emits `event` without an ack id.
fn emit_no_ack(socket: &Socket, event: &str, payload: Value) -> Result<(), Failure> {
    socket
        .emit(event, payload)
        .map_err(|e| Failure::fail(format!("`{event}` sent"), format!("{e}")))
}

/// Waits for an `error` event and checks it: the catalog schema and
/// timestamp, `code`, a non-empty `message`, `details` an object naming the
/// failed `event`, and `details.roomId` when the room is known.
async fn expect_error_event(
    cx: &mut Ctx,
    socket: &mut Socket,
    event: &str,
    code: ErrorCode,
    room_id: Option<&str>,
) -> Result<Value, Failure> {
    let err = cx.expect_event(socket, ev::ERROR).await?;
    cx.check_error_event(&err, code)?;
    cx.ensure(
        err["message"]
            .as_str()
            .is_some_and(|m| !m.trim().is_empty()),
        "error.message: a non-empty string",
        err["message"].to_string(),
    )?;
    cx.ensure(
        err["details"].is_object(),
        "error.details: an object",
        err["details"].to_string(),
    )?;
    // The text's example names the failed action `details.action`; N9
    // named it `details.event`. Either form meets the text; N9 wants both.
    let want = json!(event);
    let named = |key: &str| err["details"].get(key) == Some(&want);
    cx.ensure(
        named("action") || named("event"),
        format!("error.details.action (or details.event) = {want}"),
        format!("error.details = {}", err["details"]),
    )?;
    let both = cx.ensure(
        named("action") && named("event"),
        format!("error.details.action and error.details.event = {want}"),
        format!("error.details = {}", err["details"]),
    );
    cx.decided("N9", both)?;
    if let Some(room_id) = room_id {
        cx.expect_eq(
            "error.details.roomId",
            &json!(room_id),
            &err["details"]["roomId"],
        )?;
    }
    Ok(err)
}

/// Fails if an event that `forbidden` matches is queued on the socket;
/// drains the queue.
fn none_queued(
    socket: &mut Socket,
    what: &str,
    forbidden: impl Fn(&Event) -> bool,
) -> Result<(), Failure> {
    match drain_events(socket).find(|e| forbidden(e)) {
        Some(e) => Err(Failure::fail(
            what.to_owned(),
            format!("`{}` {}", e.name, Value::Array(e.args)),
        )),
        None => Ok(()),
    }
}

/// What must not arrive: its description, the decision it rests on
/// (`None`: the text), and the events it is.
type Forbidden<'a> = (
    &'a str,
    Option<&'static str>,
    &'a (dyn Fn(&Event) -> bool + Sync),
);

/// Proves that nothing `forbidden` matches arrived: renames the sentinel
/// room over REST and waits for its `room:updated` (sent after anything
/// the earlier exchange could have caused), then checks what is queued.
/// What it finds rests on `decision` when one is given.
async fn none_before_sentinel(
    cx: &mut Ctx,
    socket: &mut Socket,
    sentinel: &Room,
    checks: &[Forbidden<'_>],
) -> Result<(), Failure> {
    let name = rename_room(cx, sentinel, SENTINEL).await?;
    let updated = cx.expect_event(socket, ev::ROOM_UPDATED).await?;
    cx.check_payload(ev::ROOM_UPDATED, &updated)?;
    cx.expect_eq(
        "room:updated roomId",
        &json!(sentinel.id),
        &updated["roomId"],
    )?;
    cx.expect_eq(
        "room:updated room.name",
        &json!(name),
        &updated["room"]["name"],
    )?;
    let queued: Vec<Event> = drain_events(socket).collect();
    for (what, decision, forbidden) in checks {
        let found = match queued.iter().find(|e| forbidden(e)) {
            Some(e) => Err(Failure::fail(
                (*what).to_owned(),
                format!("`{}` {}", e.name, Value::Array(e.args.clone())),
            )),
            None => Ok(()),
        };
        match decision {
            Some(n) => cx.decided(n, found)?,
            None => found?,
        }
    }
    Ok(())
}

/// No `error` event for a failure reported in an ack: N9, not the text
/// (which allows both).
const NO_ERROR_EVENT: Forbidden<'static> = (
    "no `error` event for a failure reported in the ack",
    Some("N9"),
    &|e: &Event| e.name == ev::ERROR,
);

/// [`none_before_sentinel`] for `error` events.
async fn no_error_event(cx: &mut Ctx, socket: &mut Socket, sentinel: &Room) -> Result<(), Failure> {
    none_before_sentinel(cx, socket, sentinel, &[NO_ERROR_EVENT]).await
}

// ---------------------------------------------------------------------------
// AUTHENTICATION_FAILED
// ---------------------------------------------------------------------------

async fn auth_failed_connect(cx: &mut Ctx) -> Result<(), Failure> {
    for auth in [Some(json!({ "token": "not.a.valid-jwt" })), None] {
        let m = cx.connect_refused(auth, "/").await?;
        cx.ensure(
            m.starts_with(AUTH_FAILED_PREFIX) && m.len() > AUTH_FAILED_PREFIX.len(),
            format!("connect_error message `{AUTH_FAILED_PREFIX}<reason>`"),
            m.clone(),
        )?;
    }
    Ok(())
}

async fn auth_failed_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let (mut s, room, _) = expired_session(cx, "expiring ack").await?;
    expect_error_ack(
        cx,
        &s,
        ev::PRESENCE_GET_ONLINE,
        json!({ "roomId": room.id }),
        ErrorCode::AuthenticationFailed,
    )
    .await?;
    // Server events still reach the socket during the grace period.
    no_error_event(cx, &mut s, &room).await?;
    s.disconnect().await;
    Ok(())
}

async fn auth_failed_event(cx: &mut Ctx) -> Result<(), Failure> {
    let (mut s, room, _) = expired_session(cx, "expiring event").await?;
    emit_no_ack(&s, ev::PRESENCE_GET_ONLINE, json!({ "roomId": room.id }))?;
    expect_error_event(
        cx,
        &mut s,
        ev::PRESENCE_GET_ONLINE,
        ErrorCode::AuthenticationFailed,
        None,
    )
    .await?;
    s.disconnect().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// PERMISSION_DENIED, ROOM_NOT_FOUND, INVALID_PAYLOAD
// ---------------------------------------------------------------------------

/// Whether `e` confirms a subscription to `room_id`.
fn confirms(e: &Event, room_id: &Value) -> bool {
    e.name == ev::ROOM_SUBSCRIBED && e.args.first().map(|a| &a["roomId"]) == Some(room_id)
}

/// A refused `room:subscribe` with an ack: the failure in the ack, then
/// neither an `error` event nor a confirmation.
async fn refused_subscribe_ack(
    cx: &mut Ctx,
    payload: Value,
    code: ErrorCode,
    label: &str,
) -> Result<(), Failure> {
    let u = cx.user(label).await?;
    let mut s = cx.connect(&u.token, "/").await?;
    let sentinel = sentinel_room(cx, &mut s).await?;
    expect_error_ack(cx, &s, ev::ROOM_SUBSCRIBE, payload.clone(), code).await?;
    let room_id = payload["roomId"].clone();
    let confirmed = |e: &Event| confirms(e, &room_id);
    none_before_sentinel(
        cx,
        &mut s,
        &sentinel,
        &[
            (
                "no room:subscribed after a refused room:subscribe",
                None,
                &confirmed,
            ),
            NO_ERROR_EVENT,
        ],
    )
    .await?;
    s.disconnect().await;
    Ok(())
}

/// A refused `room:subscribe` without an ack: an `error` event, and no
/// confirmation before it.
async fn refused_subscribe_event(
    cx: &mut Ctx,
    payload: Value,
    code: ErrorCode,
    label: &str,
    room_id: Option<&str>,
) -> Result<(), Failure> {
    let u = cx.user(label).await?;
    let mut s = cx.connect(&u.token, "/").await?;
    emit_no_ack(&s, ev::ROOM_SUBSCRIBE, payload.clone())?;
    expect_error_event(cx, &mut s, ev::ROOM_SUBSCRIBE, code, room_id).await?;
    let requested = payload["roomId"].clone();
    none_queued(
        &mut s,
        "no room:subscribed for a refused room:subscribe",
        |e| confirms(e, &requested),
    )?;
    s.disconnect().await;
    Ok(())
}

async fn permission_denied_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let private = cx.room(Visibility::Private).await?;
    refused_subscribe_ack(
        cx,
        json!({ "roomId": private.id }),
        ErrorCode::PermissionDenied,
        "outsider ack",
    )
    .await
}

async fn permission_denied_event(cx: &mut Ctx) -> Result<(), Failure> {
    let private = cx.room(Visibility::Private).await?;
    refused_subscribe_event(
        cx,
        json!({ "roomId": private.id }),
        ErrorCode::PermissionDenied,
        "outsider event",
        Some(&private.id),
    )
    .await
}

async fn room_not_found_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let missing = cx.unique("room_missing_");
    refused_subscribe_ack(
        cx,
        json!({ "roomId": missing }),
        ErrorCode::RoomNotFound,
        "lost ack",
    )
    .await
}

async fn room_not_found_event(cx: &mut Ctx) -> Result<(), Failure> {
    let missing = cx.unique("room_missing_");
    refused_subscribe_event(
        cx,
        json!({ "roomId": missing }),
        ErrorCode::RoomNotFound,
        "lost event",
        Some(&missing),
    )
    .await
}

async fn invalid_payload_ack(cx: &mut Ctx) -> Result<(), Failure> {
    refused_subscribe_ack(
        cx,
        json!({ "roomId": 42 }),
        ErrorCode::InvalidPayload,
        "sloppy ack",
    )
    .await
}

async fn invalid_payload_event(cx: &mut Ctx) -> Result<(), Failure> {
    refused_subscribe_event(
        cx,
        json!({ "roomId": 42 }),
        ErrorCode::InvalidPayload,
        "sloppy event",
        None,
    )
    .await
}

// ---------------------------------------------------------------------------
// RATE_LIMIT_EXCEEDED
// ---------------------------------------------------------------------------

async fn rate_limit_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("chatty ack").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    // Event 1: the subscription to the sentinel room; events 2..=100.
    let sentinel = sentinel_room(cx, &mut s).await?;
    accepted_burst(cx, &s, &sentinel.id, 99).await?;
    expect_error_ack(
        cx,
        &s,
        ev::PRESENCE_GET_ONLINE,
        json!({ "roomId": sentinel.id }),
        ErrorCode::RateLimitExceeded,
    )
    .await?;
    // Server events are not client events: the sentinel still arrives.
    no_error_event(cx, &mut s, &sentinel).await?;
    s.disconnect().await;
    Ok(())
}

async fn rate_limit_event(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("chatty event").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = cx.connect(&u.token, "/").await?;
    accepted_burst(cx, &s, &room.id, 100).await?;
    emit_no_ack(&s, ev::PRESENCE_GET_ONLINE, json!({ "roomId": room.id }))?;
    expect_error_event(
        cx,
        &mut s,
        ev::PRESENCE_GET_ONLINE,
        ErrorCode::RateLimitExceeded,
        None,
    )
    .await?;
    s.disconnect().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// APP_PERMISSION_DENIED
// ---------------------------------------------------------------------------

async fn app_permission_denied_rest(cx: &mut Ctx) -> Result<(), Failure> {
    let app_id = cx.unique("app_");
    // It may manage rooms, but not publish.
    let created = cx
        .act(
            Action::CreateApp,
            vars(&[
                ("appId", json!(app_id)),
                ("permissions", json!([ev::PERMISSION_ROOMS_MANAGE])),
            ]),
        )
        .await?;
    let app_token = created
        .get("appToken")
        .cloned()
        .ok_or_else(|| Failure::Error("create_app gave no appToken".into()))?;
    // The target may assign the id (it is the event prefix): use its own.
    let app_id = match created.get("appId").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => app_id,
    };
    let u = cx.user("listener").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    let sentinel = sentinel_room(cx, &mut s).await?;
    let event = format!("{app_id}:ping");
    let (status, body) = cx
        .act_raw(
            Action::PublishAppEvent,
            vars(&[
                ("appId", json!(app_id)),
                ("appToken", app_token),
                ("roomId", json!(sentinel.id)),
                ("event", json!(event)),
                ("data", json!({ "n": 1 })),
            ]),
        )
        .await?;
    check_rest_refusal(
        cx,
        "publishing without realtime:publish",
        status,
        &body,
        ErrorCode::AppPermissionDenied,
    )?;
    // The refused event reached nobody: the sentinel arrives, the event not.
    let published = |e: &Event| e.name == event;
    none_before_sentinel(
        cx,
        &mut s,
        &sentinel,
        &[(
            "a refused application event is not broadcast",
            None,
            &published,
        )],
    )
    .await?;
    s.disconnect().await;
    Ok(())
}
