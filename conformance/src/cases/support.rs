//! The helpers the case files share: waiting for events and draining what
//! a socket received, sentinel renames that prove a connection still
//! delivers, subscribed sockets, timestamp and error checks, prizes, and
//! the sessions of the rule cases.

use std::time::{Instant, SystemTime};

use driver::Action;
use protocol::ErrorCode;
use protocol::Visibility;
use protocol::event as ev;
use serde_json::{Value, json};
use sioclient::{Event, Incoming, Socket};

use crate::case::{Failure, Per};
use crate::ctx::{Ctx, Room, vars};
use crate::profile::Vars;

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// The first argument of an event.
pub(crate) fn first_arg(e: &Event) -> Value {
    e.args.first().cloned().unwrap_or(Value::Null)
}

/// Waits (at most `--timeout` in all) for an `event` whose first argument
/// satisfies `pred`; other `event`s are passed over. `what` describes the
/// predicate in the failure.
pub(crate) async fn expect_event_where(
    cx: &mut Ctx,
    socket: &mut Socket,
    event: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, Failure> {
    let limit = cx.wait();
    let deadline = Instant::now() + limit;
    let mut passed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.wait_for(event, left).await {
            Ok(e) => {
                let first = e.args.into_iter().next().unwrap_or(Value::Null);
                if pred(&first) {
                    return Ok(first);
                }
                passed.push(first);
            }
            Err(e) => {
                return Err(Failure::fail(
                    format!("event `{event}` with {what} within {limit:?}"),
                    if passed.is_empty() {
                        format!("{e}")
                    } else {
                        format!("{e}; other `{event}`: {}", Value::Array(passed))
                    },
                ));
            }
        }
    }
}

/// Reads the socket's events in arrival order up to and including the first
/// one for which `stop` holds; returns them all. `what` names the awaited
/// event in a failure. Consumes what it reads.
pub(crate) async fn events_until(
    cx: &mut Ctx,
    s: &mut Socket,
    what: &str,
    stop: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, Failure> {
    let wait = cx.wait();
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen: Vec<Event> = Vec::new();
    let names = |seen: &[Event]| {
        let n: Vec<&str> = seen.iter().map(|e| e.name.as_str()).collect();
        format!("received only [{}]", n.join(", "))
    };
    loop {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Ok(Some(Incoming::Event(e))) => {
                let done = stop(&e);
                seen.push(e);
                if done {
                    return Ok(seen);
                }
            }
            Ok(Some(Incoming::Invalid { .. })) => {}
            Ok(Some(Incoming::Disconnected { reason })) => {
                return Err(Failure::fail(
                    format!("{what} within {wait:?}"),
                    format!("disconnected ({reason:?}); {}", names(&seen)),
                ));
            }
            Ok(None) => {
                return Err(Failure::fail(
                    format!("{what} within {wait:?}"),
                    format!("connection closed; {}", names(&seen)),
                ));
            }
            Err(_) => {
                return Err(Failure::fail(
                    format!("{what} within {wait:?}"),
                    names(&seen),
                ));
            }
        }
    }
}

/// Takes everything the socket has queued so far, in arrival order.
pub(crate) fn drain(socket: &mut Socket) -> Vec<Incoming> {
    std::iter::from_fn(|| socket.try_next()).collect()
}

/// The events among what the socket has queued so far; drains the queue.
pub(crate) fn drain_events(socket: &mut Socket) -> impl Iterator<Item = Event> {
    drain(socket).into_iter().filter_map(|item| match item {
        Incoming::Event(e) => Some(e),
        _ => None,
    })
}

/// Takes everything the socket has queued so far and returns the events
/// (name, first argument) that satisfy `pred`. Call it after a sentinel
/// event: whatever the server sent before the sentinel is queued by then.
pub(crate) fn queued_matching(
    socket: &mut Socket,
    pred: impl Fn(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    drain_events(socket)
        .filter_map(|e| {
            let first = first_arg(&e);
            pred(&e.name, &first).then_some((e.name, first))
        })
        .collect()
}

/// Fails when `found` is not empty: `expected` names what must not arrive.
pub(crate) fn none_of(cx: &Ctx, expected: &str, found: &[(String, Value)]) -> Result<(), Failure> {
    let shown: Vec<Value> = found.iter().map(|(n, v)| json!([n, v])).collect();
    cx.ensure(
        found.is_empty(),
        expected.to_owned(),
        format!("received {}", Value::Array(shown)),
    )
}

/// Waits for `room:subscribed` of `room_id` and checks it.
pub(crate) async fn expect_subscribed(
    cx: &mut Ctx,
    socket: &mut Socket,
    room_id: &str,
) -> Result<Value, Failure> {
    let confirm = cx.expect_event(socket, ev::ROOM_SUBSCRIBED).await?;
    cx.check_payload(ev::ROOM_SUBSCRIBED, &confirm)?;
    cx.expect_eq(
        "room:subscribed roomId",
        &json!(room_id),
        &confirm["roomId"],
    )?;
    Ok(confirm)
}

/// `room:subscribed` on connecting to `/rooms/:roomId`: N5 (the text says
/// only that room-specific events reach the namespace). Waits for it
/// either way, so what follows starts from the same point.
pub(crate) async fn namespace_subscribed(
    cx: &mut Ctx,
    s: &mut Socket,
    room_id: &str,
) -> Result<(), Failure> {
    let confirmed = expect_subscribed(cx, s, room_id).await.map(drop);
    cx.decided("N5", confirmed)
}

// ---------------------------------------------------------------------------
// Rooms and sentinels
// ---------------------------------------------------------------------------

/// The suffix of a sentinel rename: a change whose `room:updated` proves the
/// connection still delivers.
pub(crate) const SENTINEL: &str = "(sentinel)";

/// Renames a room through the driver; returns the new name.
pub(crate) async fn rename_room(
    cx: &mut Ctx,
    room: &Room,
    suffix: &str,
) -> Result<String, Failure> {
    let name = format!("{} {suffix}", room.name);
    cx.act(
        Action::UpdateRoom,
        vars(&[
            ("roomId", json!(room.id)),
            ("patch", json!({ "name": name })),
        ]),
    )
    .await?;
    Ok(name)
}

/// Renames a room through the driver, then waits for the next
/// `room:updated` on `socket` and checks it carries the new name; returns
/// that payload.
pub(crate) async fn rename_and_expect_updated(
    cx: &mut Ctx,
    socket: &mut Socket,
    room: &Room,
    suffix: &str,
) -> Result<Value, Failure> {
    let name = rename_room(cx, room, suffix).await?;
    let updated = cx.expect_event(socket, ev::ROOM_UPDATED).await?;
    cx.check_payload(ev::ROOM_UPDATED, &updated)?;
    cx.expect_eq(
        "room:updated room.name",
        &json!(name),
        &updated["room"]["name"],
    )?;
    Ok(updated)
}

/// Proves the socket still receives the room's events: renames the room and
/// reads up to that `room:updated`. Returns every event before it (and it).
/// A case checking that something did *not* happen looks at these.
pub(crate) async fn room_sentinel(
    cx: &mut Ctx,
    s: &mut Socket,
    room: &Room,
) -> Result<Vec<Event>, Failure> {
    let name = rename_room(cx, room, SENTINEL).await?;
    let want = json!(name);
    events_until(cx, s, "`room:updated` (the sentinel rename)", |e| {
        e.name == ev::ROOM_UPDATED
            && e.args.first().and_then(|p| p.pointer("/room/name")) == Some(&want)
    })
    .await
}

/// The first half of a proof that a socket does not hear `room`: renames
/// the room (the probe) and waits until `witness`, a socket that hears the
/// room, has the probe: the server has sent it by then. Returns the
/// probe's name for [`probe_unheard`].
pub(crate) async fn probe_room(
    cx: &mut Ctx,
    witness: &mut Socket,
    room: &Room,
) -> Result<String, Failure> {
    let name = rename_room(cx, room, "(probe)").await?;
    let want = json!(name);
    expect_event_where(
        cx,
        witness,
        ev::ROOM_UPDATED,
        &format!("room.name {want} (the probe)"),
        |p| p.pointer("/room/name") == Some(&want),
    )
    .await?;
    Ok(name)
}

/// The second half: the caller has made `s` hear `room` again (it
/// re-subscribed); a marker rename of the same room follows, on the same
/// path as the probe, so a probe `s` was sent arrives before the marker.
/// Fails when it did: `what` says why `s` must not have heard it. The
/// proof needs no order across rooms or connections and no fixed sleep.
pub(crate) async fn probe_unheard(
    cx: &mut Ctx,
    s: &mut Socket,
    room: &Room,
    probe: &str,
    what: &str,
) -> Result<(), Failure> {
    let before = room_sentinel(cx, s, room).await?;
    let probe = json!(probe);
    let heard: Vec<(String, Value)> = before
        .into_iter()
        .map(|e| (e.name.clone(), first_arg(&e)))
        .filter(|(name, p)| name == ev::ROOM_UPDATED && p.pointer("/room/name") == Some(&probe))
        .collect();
    none_of(cx, what, &heard)
}

/// A public room the socket subscribes to, so that a later REST change is a
/// sentinel that proves the connection still delivers.
pub(crate) async fn sentinel_room(cx: &mut Ctx, socket: &mut Socket) -> Result<Room, Failure> {
    let room = cx.room(Visibility::Public).await?;
    let ack = cx.subscribe(socket, &room.id).await?;
    cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    expect_subscribed(cx, socket, &room.id).await?;
    Ok(room)
}

/// `room:unsubscribe` with an ack that must be a success; returns it.
pub(crate) async fn unsubscribe(
    cx: &mut Ctx,
    socket: &Socket,
    room_id: &str,
) -> Result<Value, Failure> {
    let ack = cx
        .ack(socket, ev::ROOM_UNSUBSCRIBE, json!({ "roomId": room_id }))
        .await?;
    cx.expect_eq(
        "room:unsubscribe ack.success",
        &json!(true),
        &ack["success"],
    )?;
    Ok(ack)
}

/// Removes the participant `participant_id` (the user `user`) from `room`
/// through the driver.
pub(crate) async fn remove_participant(
    cx: &mut Ctx,
    room: &Room,
    participant_id: &str,
    user_id: &str,
) -> Result<(), Failure> {
    cx.act(
        Action::RemoveParticipant,
        vars(&[
            ("roomId", json!(room.id)),
            ("participantId", json!(participant_id)),
            // For a target that names a member by its user.
            ("userId", json!(user_id)),
        ]),
    )
    .await?;
    Ok(())
}

/// Connects `token` to `/` and subscribes it to each room (ack checked).
pub(crate) async fn subscribed_socket(
    cx: &mut Ctx,
    token: &str,
    rooms: &[&Room],
) -> Result<Socket, Failure> {
    let s = cx.connect(token, "/").await?;
    for room in rooms {
        let ack = cx.subscribe(&s, &room.id).await?;
        cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    }
    Ok(s)
}

/// A user on `/` subscribed to `room` (the room's observer).
pub(crate) async fn observer(cx: &mut Ctx, room: &Room) -> Result<Socket, Failure> {
    let u = cx.user("observer").await?;
    subscribed_socket(cx, &u.token, &[room]).await
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Whether `value` is an ISO-8601 UTC timestamp within 5 minutes of now;
/// `expected` states the rule in the failure.
fn ensure_recent(cx: &Ctx, what: &str, value: &Value, expected: String) -> Result<(), Failure> {
    let ok = value.as_str().is_some_and(|s| {
        protocol::timestamp::is_recent(s, SystemTime::now(), protocol::limits::TIMESTAMP_MAX_SKEW)
    });
    cx.ensure(ok, expected, format!("{what} = {value}"))
}

/// Checks that `value` is a timestamp within the 5-minute rule.
pub(crate) fn expect_recent(cx: &Ctx, what: &str, value: &Value) -> Result<(), Failure> {
    ensure_recent(
        cx,
        what,
        value,
        format!("{what}: ISO-8601 UTC timestamp within 5 minutes of now"),
    )
}

/// A timestamp field: an ISO-8601 UTC string within 5 minutes of now.
pub(crate) fn check_time(cx: &Ctx, what: &str, v: &Value) -> Result<(), Failure> {
    ensure_recent(
        cx,
        what,
        v,
        format!("{what}: an ISO-8601 UTC timestamp within 5 minutes of now"),
    )
}

/// N6: every broadcast domain event carries `eventId`. The payload types
/// keep it optional for decoders, so its absence is a non-strict finding.
pub(crate) fn note_event_id(cx: &mut Ctx, event: &str, payload: &Value) {
    if payload.get("eventId").and_then(Value::as_str).is_none() {
        cx.notes.push(format!(
            "`{event}` has no eventId (N6: every room and user event carries one)"
        ));
    }
}

/// A refused REST request. The text names the error codes but no REST
/// error format: it requires a refusal (4xx) that names `code`, anywhere in
/// its JSON body; N1's status and `{"error": {"code", "message"}}` are a
/// decision ([`check_rest_error`]). Records that deviation and goes on.
pub(crate) fn check_rest_refusal(
    cx: &mut Ctx,
    what: &str,
    status: u16,
    body: &Value,
    code: ErrorCode,
) -> Result<(), Failure> {
    fn names(v: &Value, code: &str) -> bool {
        match v {
            Value::String(s) => s == code,
            Value::Object(m) => m.values().any(|x| names(x, code)),
            Value::Array(a) => a.iter().any(|x| names(x, code)),
            _ => false,
        }
    }
    cx.ensure(
        (400..500).contains(&status) && names(body, code.as_str()),
        format!("{what}: refused (HTTP 4xx) with error code {code}"),
        format!("{what}: HTTP {status} {body}"),
    )?;
    let exact = check_rest_error(cx, what, status, body, code);
    cx.decided("N1", exact)
}

/// A REST error answer: the code's HTTP status and
/// `{"error": {"code", "message"}}` (N1).
pub(crate) fn check_rest_error(
    cx: &Ctx,
    what: &str,
    status: u16,
    body: &Value,
    code: ErrorCode,
) -> Result<(), Failure> {
    let shaped = body.pointer("/error/code") == Some(&json!(code.as_str()))
        && body.pointer("/error/message").is_some_and(Value::is_string);
    cx.ensure(
        status == code.http_status() && shaped,
        format!(
            "{what}: HTTP {} with {{\"error\": {{\"code\": \"{code}\", \"message\": <string>}}}}",
            code.http_status(),
            code = code.as_str()
        ),
        format!("{what}: HTTP {status} {body}"),
    )
}

/// Emits `event` with an ack id and checks that the ack is the failure
/// `{success: false, error: {code, message}}` with a non-empty message.
pub(crate) async fn expect_error_ack(
    cx: &mut Ctx,
    socket: &Socket,
    event: &str,
    payload: Value,
    code: ErrorCode,
) -> Result<Value, Failure> {
    let ack = cx.ack(socket, event, payload).await?;
    cx.check_error_ack(event, &ack, code)?;
    let message = ack.pointer("/error/message").and_then(Value::as_str);
    cx.ensure(
        message.is_some_and(|m| !m.trim().is_empty()),
        format!("`{event}` ack error.message: a non-empty string"),
        ack.to_string(),
    )?;
    Ok(ack)
}

/// An ack the text requires to be a failure, with the code `code` that
/// `decision` chose: a failed ack of any code meets the text.
pub(crate) fn check_refused_ack(
    cx: &mut Ctx,
    event: &str,
    ack: &Value,
    code: ErrorCode,
    decision: &'static str,
) -> Result<(), Failure> {
    cx.check_ack(event, ack)?;
    cx.expect_eq(
        &format!("`{event}` refused: ack success"),
        &json!(false),
        &ack["success"],
    )?;
    let exact = cx.check_error_ack(event, ack, code);
    cx.decided(decision, exact)
}

/// The string `key` of a driver action's output.
pub(crate) fn output_string(out: &Vars, key: &str) -> Result<String, Failure> {
    out.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Failure::Error(format!("driver gave no string `{key}`")))
}

// ---------------------------------------------------------------------------
// Prizes
// ---------------------------------------------------------------------------

/// A prize the case created and the values it was created with.
pub(crate) struct NewPrize {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub quantity: u64,
}

/// Creates a prize in `room` through the driver.
pub(crate) async fn create_prize(
    cx: &mut Ctx,
    room: &Room,
    label: &str,
    quantity: u64,
) -> Result<NewPrize, Failure> {
    let tag = cx.unique("");
    let name = format!("{label} ✈ {tag}");
    let description = format!("Two nights in a lakeside cabin ({tag})");
    let image_url = format!("https://cdn.example.test/p/{tag}.jpg");
    let out = cx
        .act(
            Action::CreatePrize,
            vars(&[
                ("roomId", json!(room.id)),
                ("name", json!(name)),
                ("description", json!(description)),
                ("imageUrl", json!(image_url)),
                ("quantity", json!(quantity)),
            ]),
        )
        .await?;
    let id = output_string(&out, "prizeId")?;
    Ok(NewPrize {
        id,
        name,
        description,
        image_url,
        quantity,
    })
}

/// Checks a Prize object against what was created and its counts.
pub(crate) fn check_prize(
    cx: &Ctx,
    what: &str,
    p: &Value,
    want: &NewPrize,
    remaining: u64,
) -> Result<(), Failure> {
    cx.expect_eq(&format!("{what}.id"), &json!(want.id), &p["id"])?;
    cx.expect_eq(&format!("{what}.name"), &json!(want.name), &p["name"])?;
    cx.expect_eq(
        &format!("{what}.description"),
        &json!(want.description),
        &p["description"],
    )?;
    cx.expect_eq(
        &format!("{what}.imageUrl"),
        &json!(want.image_url),
        &p["imageUrl"],
    )?;
    cx.expect_eq(
        &format!("{what}.quantity"),
        &json!(want.quantity),
        &p["quantity"],
    )?;
    cx.expect_eq(
        &format!("{what}.quantityRemaining"),
        &json!(remaining),
        &p["quantityRemaining"],
    )?;
    check_time(cx, &format!("{what}.createdAt"), &p["createdAt"])
}

// ---------------------------------------------------------------------------
// Sessions of the rule and error cases
// ---------------------------------------------------------------------------

/// Connects with a 2-second token, proves the session works (it subscribes
/// to a fresh public room, which it returns), and waits for
/// `token:expired` (protocol notes N10). The 2 s are the rule's own time.
pub(crate) async fn expired_session(
    cx: &mut Ctx,
    label: &str,
) -> Result<(Socket, Room, Value), Failure> {
    let u = cx.user_with_ttl(label, 2).await?;
    let mut s = cx.connect(&u.token, "/").await?;
    // Before expiry the connection accepts events.
    let room = sentinel_room(cx, &mut s).await?;
    let expired = cx.expect_event(&mut s, ev::TOKEN_EXPIRED).await?;
    cx.check_payload(ev::TOKEN_EXPIRED, &expired)?;
    // A grace period after token:expired is N10; without one there is no
    // connection left to check the rest on, so a deviation ends the case.
    cx.ensure(
        s.is_connected(),
        "still connected when token:expired arrives (grace period)",
        "disconnected",
    )
    .per("N10")?;
    Ok((s, room, expired))
}

/// Sends `n` acked `presence:get_online` for `room_id` at once; each must
/// succeed. Every event a connection sends counts toward its limit (N8).
pub(crate) async fn accepted_burst(
    cx: &mut Ctx,
    socket: &Socket,
    room_id: &str,
    n: usize,
) -> Result<(), Failure> {
    let wait = cx.wait();
    let sends = (0..n)
        .map(|_| socket.emit_with_ack(ev::PRESENCE_GET_ONLINE, json!({ "roomId": room_id }), wait));
    let results = futures_util::future::join_all(sends).await;
    for (i, r) in results.into_iter().enumerate() {
        let ack = match r {
            Ok(args) => args.into_iter().next().unwrap_or(Value::Null),
            Err(e) => {
                return Err(Failure::fail(
                    format!("an ack to presence:get_online #{} within {wait:?}", i + 1),
                    format!("{e}"),
                ));
            }
        };
        check_presence_ack(
            cx,
            &format!(
                "presence:get_online #{} accepted (within 100 events per minute)",
                i + 1
            ),
            &ack,
        )?;
    }
    Ok(())
}

/// A successful `presence:get_online` ack: the section shows
/// `{roomId, users, count}` without `success`; `success: true` is N2 (a
/// deviation that [`Ctx::check_ack`] records). So the text needs a valid
/// ack that is not a failure.
pub(crate) fn check_presence_ack(cx: &mut Ctx, what: &str, ack: &Value) -> Result<(), Failure> {
    cx.check_ack(ev::PRESENCE_GET_ONLINE, ack)?;
    cx.ensure(
        ack.get("success") != Some(&json!(false)) && ack.get("users").is_some_and(Value::is_array),
        what.to_owned(),
        ack.to_string(),
    )
}
