//! Input validation and room checks on every client event, table-driven
//! from the event catalog: each client event's payload schema gives the
//! fields to leave out or mistype, and its `roomId` field makes it
//! room-scoped. A new client event in the catalog is checked here without
//! a new case.

use protocol::ErrorCode;
use protocol::Visibility;
use protocol::catalog::{CATALOG, Direction, EventSpec};
use protocol::event as ev;
use serde_json::{Map, Value, json};
use sioclient::Socket;

use super::support::check_refused_ack;
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::Ctx;

pub const CASES: &[Case] = &[
    case!(
        "errors.invalid_payload.every_event",
        "Every client event refuses a non-object payload, each missing field and each mistyped field with INVALID_PAYLOAD; an unknown event and an oversize payload too",
        "Error codes: INVALID_PAYLOAD (invalid event payload); Server Implementation: \"Validate all inputs - Check payload structure\"; an unknown event name and the 16 KiB ceiling are N9 and N15",
        [CreateUser, MintToken, CreateRoom],
        invalid_payload_every_event
    ),
    case!(
        "errors.room_not_found.every_event",
        "Every room-scoped client event naming an unknown room is refused with ROOM_NOT_FOUND (room:unsubscribe may succeed instead)",
        "Error codes: ROOM_NOT_FOUND (room doesn't exist), for every client event that names a room; leaving a room one does not hear may succeed (N4)",
        [CreateUser, MintToken],
        room_not_found_every_event
    ),
    case!(
        "errors.permission_denied.every_event",
        "Room-scoped client events naming a private room the user is not in are refused (room:subscribe and presence:get_online); on /rooms/:roomId, room:subscribe of another room too",
        "Room Authorization: access checked before subscribing (PERMISSION_DENIED); presence:get_online refused for a private room's outsider is N4, room:subscribe of another room on a room's namespace refused is N5",
        [CreateUser, MintToken, CreateRoom],
        permission_denied_every_event
    ),
];

/// The client events of the catalog.
fn client_events() -> impl Iterator<Item = &'static EventSpec> {
    CATALOG
        .iter()
        .filter(|e| e.direction == Direction::ClientToServer)
}

/// The properties of a client event's payload schema: (name, JSON type).
fn fields(e: &EventSpec) -> Vec<(String, String)> {
    let schema = (e.payload)();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, s)| {
            let kind = match &s["type"] {
                Value::String(t) => t.clone(),
                // `["string", "null"]` and the like: the first type.
                Value::Array(ts) => ts.first().and_then(Value::as_str).unwrap_or("").to_owned(),
                _ => String::new(),
            };
            (name.clone(), kind)
        })
        .collect()
}

/// A value of JSON type `kind`, and one of another type.
fn of_type(kind: &str, tag: &str) -> (Value, Value) {
    match kind {
        "number" | "integer" => (json!(1), json!("one")),
        "boolean" => (json!(true), json!("true")),
        _ => (json!(tag), json!(42)),
    }
}

/// The payload variants that must be refused, with what each is.
fn invalid_variants(e: &EventSpec, tag: &str) -> Vec<(String, Value)> {
    let fields = fields(e);
    let valid: Map<String, Value> = fields
        .iter()
        .map(|(n, k)| (n.clone(), of_type(k, tag).0))
        .collect();
    let mut out: Vec<(String, Value)> = vec![
        ("a string payload".into(), json!("not an object")),
        (
            "an array payload".into(),
            Value::Array(vec![Value::Object(valid.clone())]),
        ),
        ("a number payload".into(), json!(7)),
        ("a null payload".into(), Value::Null),
    ];
    for (name, kind) in &fields {
        let mut missing = valid.clone();
        missing.remove(name);
        out.push((format!("without `{name}`"), Value::Object(missing)));
        let mut mistyped = valid.clone();
        mistyped.insert(name.clone(), of_type(kind, tag).1);
        out.push((
            format!("`{name}` of another type than {kind}"),
            Value::Object(mistyped),
        ));
    }
    out
}

/// A refused acked event: `{success: false}` with `code` (the text's code
/// for it); `decision`, when given, is what makes the refusal required.
async fn refused(
    cx: &mut Ctx,
    s: &Socket,
    event: &str,
    what: &str,
    payload: Value,
    code: ErrorCode,
    decision: Option<&'static str>,
) -> Result<(), Failure> {
    let ack = cx.ack(s, event, payload).await;
    let check = ack.and_then(|ack| {
        cx.ensure(
            ack.get("success") == Some(&json!(false))
                && ack.pointer("/error/code") == Some(&json!(code.as_str())),
            format!("`{event}` with {what}: ack {{success: false, error: {{code: {code}}}}}"),
            ack.to_string(),
        )
    });
    match decision {
        Some(n) => cx.decided(n, check),
        None => check,
    }
}

async fn invalid_payload_every_event(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("validator").await?;
    let room = cx.room(Visibility::Public).await?;
    let s = cx.connect(&u.token, "/").await?;
    let tag = cx.unique("id_");
    // About 40 events: within the 100 per minute of one connection.
    for e in client_events() {
        for (what, payload) in invalid_variants(e, &tag) {
            refused(
                cx,
                &s,
                e.name,
                &what,
                payload,
                ErrorCode::InvalidPayload,
                None,
            )
            .await?;
        }
    }
    // The text names no answer to an event it does not define, nor a
    // size limit: N9 and N15.
    let unknown = format!("{}:nonexistent_event", cx.unique("conformance_"));
    refused(
        cx,
        &s,
        &unknown,
        "an event name the protocol does not define",
        json!({ "roomId": room.id }),
        ErrorCode::InvalidPayload,
        Some("N9"),
    )
    .await?;
    let padding = "x".repeat(protocol::limits::MAX_CLIENT_EVENT_BYTES + 1024);
    refused(
        cx,
        &s,
        ev::ROOM_SUBSCRIBE,
        "a payload over 16 KiB",
        json!({ "roomId": room.id, "padding": padding }),
        ErrorCode::InvalidPayload,
        Some("N15"),
    )
    .await?;
    s.disconnect().await;
    Ok(())
}

/// The client events whose payload names a room (`roomId`).
fn room_scoped() -> impl Iterator<Item = &'static EventSpec> {
    client_events().filter(|e| fields(e).iter().any(|(n, _)| n == "roomId"))
}

async fn room_not_found_every_event(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("lost everywhere").await?;
    let s = cx.connect(&u.token, "/").await?;
    let missing = cx.unique("room_missing_");
    let mut n = 0;
    for e in room_scoped() {
        n += 1;
        let ack = cx.ack(&s, e.name, json!({ "roomId": missing })).await?;
        // Leaving a room one does not hear may succeed whether or not it
        // exists (N4); refused, it is the room's absence.
        if e.name == ev::ROOM_UNSUBSCRIBE && ack.get("success") == Some(&json!(true)) {
            cx.check_ack(e.name, &ack)?;
            continue;
        }
        cx.check_error_ack(e.name, &ack, ErrorCode::RoomNotFound)?;
    }
    cx.ensure(
        n >= 3,
        "at least three room-scoped client events",
        n.to_string(),
    )?;
    s.disconnect().await;
    Ok(())
}

async fn permission_denied_every_event(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("outsider everywhere").await?;
    let private = cx.room(Visibility::Private).await?;
    let s = cx.connect(&u.token, "/").await?;
    for e in room_scoped() {
        let payload = json!({ "roomId": private.id });
        match e.name {
            // Leaving a room one never heard changes nothing: the text
            // asks for no access check there.
            ev::ROOM_UNSUBSCRIBE => continue,
            ev::ROOM_SUBSCRIBE => {
                let ack = cx.ack(&s, e.name, payload).await?;
                cx.check_error_ack(e.name, &ack, ErrorCode::PermissionDenied)?;
            }
            _ => {
                // Refused at all is what N4 adds (the text guards
                // subscribing and receiving); its code is N4's too.
                let ack = cx.ack(&s, e.name, payload).await;
                let check = ack.and_then(|ack| {
                    check_refused_ack(cx, e.name, &ack, ErrorCode::PermissionDenied, "N4")
                });
                cx.decided("N4", check)?;
            }
        }
    }
    s.disconnect().await;
    // On a room's namespace, room:subscribe names that room only (N5):
    // another room, public as it is, is refused there.
    let here = cx.room(Visibility::Public).await?;
    let elsewhere = cx.room(Visibility::Public).await?;
    let ns = cx.connect(&u.token, &ev::room_namespace(&here.id)).await?;
    let ack = cx
        .ack(&ns, ev::ROOM_SUBSCRIBE, json!({ "roomId": elsewhere.id }))
        .await;
    let check = ack.and_then(|ack| {
        check_refused_ack(
            cx,
            ev::ROOM_SUBSCRIBE,
            &ack,
            ErrorCode::PermissionDenied,
            "N5",
        )
    });
    cx.decided("N5", check)?;
    ns.disconnect().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_come_from_the_catalog() {
        let names: Vec<&str> = room_scoped().map(|e| e.name).collect();
        for want in [
            ev::ROOM_SUBSCRIBE,
            ev::ROOM_UNSUBSCRIBE,
            ev::PRESENCE_GET_ONLINE,
        ] {
            assert!(names.contains(&want), "{names:?}");
        }
        let quiz = client_events()
            .find(|e| e.name == ev::QUIZ_ANSWER_SUBMIT)
            .unwrap();
        let variants = invalid_variants(quiz, "t");
        // 4 non-objects, and each of 3 fields missing and mistyped.
        assert_eq!(variants.len(), 4 + 2 * 3, "{variants:?}");
        assert!(
            variants
                .iter()
                .any(|(w, v)| w.contains("timestamp") && v["timestamp"] == json!("one"))
        );
    }
}
