//! Prizes: `prize:created`, `prize:updated`, `prize:deleted`; and the
//! helpers the prize, winner, quiz and application cases share.

use std::time::SystemTime;

use protocol::ErrorCode;
use protocol::event as ev;
use serde_json::{Value, json};
use sioclient::{Event, Incoming, Socket};

use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, vars};

pub const CASES: &[Case] = &[
    case!(
        "prizes.created.payload",
        "Creating a prize sends `prize:created` with the whole prize",
        "prize:created: {roomId, prize: {id, name, description, imageUrl, quantity, quantityRemaining, createdAt}, timestamp, eventId}; a new prize has quantityRemaining = quantity",
        ["create_user", "mint_token", "create_room", "create_prize"],
        created
    ),
    case!(
        "prizes.updated.payload",
        "Changing a prize sends `prize:updated` with the changed fields and the whole prize",
        "prize:updated: {roomId, prizeId, changes (every changed field, new value), prize (the whole prize after the change), timestamp, eventId}",
        [
            "create_user",
            "mint_token",
            "create_room",
            "create_prize",
            "update_prize"
        ],
        updated
    ),
    case!(
        "prizes.deleted.payload",
        "Deleting a prize sends `prize:deleted`",
        "prize:deleted: {roomId, prizeId, timestamp, eventId} to the room's subscribers",
        [
            "create_user",
            "mint_token",
            "create_room",
            "create_prize",
            "delete_prize"
        ],
        deleted
    ),
];

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

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

/// Proves the socket still receives the room's events: renames the room and
/// reads up to that `room:updated`. Returns every event before it (and it).
/// A case checking that something did *not* happen looks at these.
pub(crate) async fn room_sentinel(
    cx: &mut Ctx,
    s: &mut Socket,
    room: &Room,
) -> Result<Vec<Event>, Failure> {
    let name = format!("{} (sentinel)", room.name);
    cx.act(
        "update_room",
        vars(&[
            ("roomId", json!(room.id)),
            ("patch", json!({ "name": name })),
        ]),
    )
    .await?;
    let want = json!(name);
    events_until(cx, s, "`room:updated` (the sentinel rename)", |e| {
        e.name == ev::ROOM_UPDATED
            && e.args.first().and_then(|p| p.pointer("/room/name")) == Some(&want)
    })
    .await
}

/// The first argument of an event.
pub(crate) fn first_arg(e: &Event) -> Value {
    e.args.first().cloned().unwrap_or(Value::Null)
}

/// A timestamp field: an ISO-8601 UTC string within 5 minutes of now.
pub(crate) fn check_time(cx: &Ctx, what: &str, v: &Value) -> Result<(), Failure> {
    let ok = v.as_str().is_some_and(|s| {
        protocol::timestamp::is_recent(s, SystemTime::now(), protocol::limits::TIMESTAMP_MAX_SKEW)
    });
    cx.ensure(
        ok,
        format!("{what}: an ISO-8601 UTC timestamp within 5 minutes of now"),
        format!("{what} = {v}"),
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

/// A REST error answer: the code's HTTP status and
/// `{"error": {"code", "message"}}`.
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
            "create_prize",
            vars(&[
                ("roomId", json!(room.id)),
                ("name", json!(name)),
                ("description", json!(description)),
                ("imageUrl", json!(image_url)),
                ("quantity", json!(quantity)),
            ]),
        )
        .await?;
    let id = out
        .get("prizeId")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Error("driver gave no string `prizeId`".into()))?
        .to_owned();
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

/// A user on `/` subscribed to `room` (the room's observer).
pub(crate) async fn observer(cx: &mut Ctx, room: &Room) -> Result<Socket, Failure> {
    let u = cx.user("observer").await?;
    let s = cx.connect(&u.token, "/").await?;
    let ack = cx.subscribe(&s, &room.id).await?;
    cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    Ok(s)
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

async fn created(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room("public").await?;
    let mut s = observer(cx, &room).await?;
    let prize = create_prize(cx, &room, "Weekend trip", 3).await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_CREATED).await?;
    cx.check_payload(ev::PRIZE_CREATED, &p)?;
    cx.expect_eq("prize:created roomId", &json!(room.id), &p["roomId"])?;
    check_prize(cx, "prize:created prize", &p["prize"], &prize, 3)?;
    note_event_id(cx, ev::PRIZE_CREATED, &p);
    s.disconnect().await;
    Ok(())
}

async fn updated(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room("public").await?;
    let mut s = observer(cx, &room).await?;
    let mut prize = create_prize(cx, &room, "Telescope", 2).await?;
    let created = cx.expect_event(&mut s, ev::PRIZE_CREATED).await?;
    cx.check_payload(ev::PRIZE_CREATED, &created)?;
    let created_at = created["prize"]["createdAt"].clone();

    prize.name = format!("{} (deluxe)", prize.name);
    prize.description = format!("{} and a star map", prize.description);
    cx.act(
        "update_prize",
        vars(&[
            ("roomId", json!(room.id)),
            ("prizeId", json!(prize.id)),
            (
                "patch",
                json!({ "name": prize.name, "description": prize.description }),
            ),
        ]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_UPDATED).await?;
    cx.check_payload(ev::PRIZE_UPDATED, &p)?;
    cx.expect_eq("prize:updated roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq("prize:updated prizeId", &json!(prize.id), &p["prizeId"])?;
    cx.expect_eq(
        "prize:updated changes",
        &json!({ "name": prize.name, "description": prize.description }),
        &p["changes"],
    )?;
    check_prize(cx, "prize:updated prize", &p["prize"], &prize, 2)?;
    cx.expect_eq(
        "prize:updated prize.createdAt (unchanged since prize:created)",
        &created_at,
        &p["prize"]["createdAt"],
    )?;
    note_event_id(cx, ev::PRIZE_UPDATED, &p);
    s.disconnect().await;
    Ok(())
}

async fn deleted(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room("public").await?;
    let mut s = observer(cx, &room).await?;
    let prize = create_prize(cx, &room, "Bicycle", 1).await?;
    cx.act(
        "delete_prize",
        vars(&[("roomId", json!(room.id)), ("prizeId", json!(prize.id))]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_DELETED).await?;
    cx.check_payload(ev::PRIZE_DELETED, &p)?;
    cx.expect_eq("prize:deleted roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq("prize:deleted prizeId", &json!(prize.id), &p["prizeId"])?;
    note_event_id(cx, ev::PRIZE_DELETED, &p);
    s.disconnect().await;
    Ok(())
}
