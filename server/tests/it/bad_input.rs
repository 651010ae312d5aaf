//! Bad input on a connected socket (protocol notes N9, N15): frames that are
//! not valid Socket.IO close the connection; valid frames with a bad payload
//! (wrong type, missing field, unknown event, over 16 KiB) get
//! `INVALID_PAYLOAD`, in the ack when one was asked for and as an `error`
//! event otherwise; an Engine.IO packet over 1 MB closes the transport.
//! After each of them the server still serves a fresh client, and a property
//! test throws random JSON at every client event of the catalog.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use protocol::{CATALOG, Direction, ErrorCode, limits};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use server::testing::*;
use sioclient::{ClientConfig, DisconnectReason, Incoming, Socket, Transport};

const ROOM_NAME: &str = "Bad input room";

/// A server with one user and one public room.
async fn setup() -> (TestServer, TestUser, String) {
    let srv = TestServer::start().await;
    let user = srv.user("Mallory").await;
    let room = srv.room(ROOM_NAME, "public").await;
    (srv, user, room)
}

fn config(srv: &TestServer, token: &str, transport: Transport) -> ClientConfig {
    srv.client_config(token, "/").with_transport(transport)
}

async fn connect_with(srv: &TestServer, token: &str, transport: Transport) -> Socket {
    sioclient::connect(config(srv, token, transport))
        .await
        .unwrap_or_else(|e| panic!("connect over {transport} failed: {e}"))
}

/// `/healthz` is 200 and a brand-new client connects and subscribes.
async fn assert_still_serving(srv: &TestServer, token: &str, room_id: &str) {
    let (status, body) = srv.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(status, StatusCode::OK, "healthz: {body}");
    assert_eq!(body, json!({"status": "ok"}));

    let mut fresh = srv.connect(token, "/").await;
    let reply = ack(&fresh, "room:subscribe", json!({"roomId": room_id})).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(
        reply,
        json!({"success": true, "room": {"id": room_id, "name": ROOM_NAME, "status": "active"}})
    );
    let confirm = next_event(&mut fresh, "room:subscribed").await;
    assert_payload("room:subscribed", &confirm);
    assert_eq!(confirm["roomId"], json!(room_id));
    assert_exact_keys(&confirm, &["roomId", "timestamp"]);
    fresh.disconnect().await;
}

/// The connection must end, closed by the server, with no reply to the bad
/// frame first. (Over polling, the server answers the pending long poll
/// with an empty body when it closes the session; the client reports that
/// as an empty invalid frame, which is not a reply and is skipped.)
async fn assert_closed_by_server(socket: &mut Socket, what: &str) -> DisconnectReason {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Disconnected { reason })) => {
                assert_ne!(
                    reason,
                    DisconnectReason::ClientDisconnect,
                    "{what}: the client, not the server, ended the connection"
                );
                return reason;
            }
            Ok(Some(Incoming::Invalid { frame, .. })) if frame.is_empty() => continue,
            Ok(Some(other)) => panic!("{what}: expected the connection to close, got {other:?}"),
            Ok(None) => panic!("{what}: stream ended without a Disconnected item"),
            Err(_) => panic!("{what}: the connection is still open after {WAIT:?}"),
        }
    }
}

/// Waits for an `error` event and checks it completely.
async fn assert_error_event(socket: &mut Socket, code: ErrorCode, details: Value) -> String {
    let err = next_event(socket, "error").await;
    assert_payload("error", &err);
    assert_exact_keys(&err, &["code", "details", "message", "timestamp"]);
    assert_eq!(err["code"], json!(code.as_str()), "error event: {err}");
    assert_eq!(err["details"], details, "error event: {err}");
    let message = err["message"].as_str().expect("message is a string");
    assert!(!message.is_empty(), "empty message: {err}");
    message.to_owned()
}

/// A failed ack, checked completely; returns its message.
fn assert_failure_ack(event: &str, reply: &Value, code: ErrorCode) -> String {
    assert_ack_schema(event, reply);
    assert_ack_error(reply, code.as_str());
    assert_exact_keys(reply, &["error", "success"]);
    assert_exact_keys(&reply["error"], &["code", "message"]);
    reply["error"]["message"].as_str().unwrap().to_owned()
}

/// Frames that are not valid Socket.IO: the decoder (or, for the binary
/// header, the attachment limit of 0) refuses them and the server closes
/// the connection, as N9 decides.
const UNDECODABLE: [(&str, &str); 6] = [
    ("truncated JSON array", "42["),
    (
        "event payload that is an object, not an array",
        r#"42{"a":1}"#,
    ),
    ("empty Socket.IO packet", "4"),
    ("unterminated event array", r#"42["room:subscribe""#),
    (
        "binary event header (attachments are not supported)",
        r#"451-["x",{"_placeholder":true,"num":0}]"#,
    ),
    ("unknown Socket.IO packet type 9", "49"),
];

async fn undecodable_frames_close(transport: Transport) {
    let (srv, user, room) = setup().await;
    for (what, frame) in UNDECODABLE {
        let mut socket = connect_with(&srv, &user.token, transport).await;
        socket.send_raw(frame).expect("frame queued");
        let reason = assert_closed_by_server(&mut socket, what).await;
        assert!(
            matches!(
                reason,
                DisconnectReason::TransportClose | DisconnectReason::TransportError(_)
            ),
            "{what} ({frame}) over {transport}: unexpected reason {reason:?}"
        );
        assert_still_serving(&srv, &user.token, &room).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn undecodable_frames_close_the_websocket_connection() {
    undecodable_frames_close(Transport::WebSocket).await;
}

#[tokio::test]
async fn undecodable_frames_close_the_polling_connection() {
    undecodable_frames_close(Transport::Polling).await;
}

/// The events and payloads that decode as Socket.IO but not as the event's
/// payload: wrong types and missing fields.
fn bad_payloads() -> Vec<(&'static str, Value)> {
    vec![
        ("room:subscribe", json!({"roomId": 42})),
        ("room:subscribe", json!({})),
        ("room:subscribe", json!({"roomid": "room_x"})),
        ("room:subscribe", json!("room_x")),
        ("room:subscribe", json!(null)),
        ("room:subscribe", json!([{"roomId": "room_x"}])),
        // serde would read a struct from an array; the protocol says object.
        ("room:subscribe", json!(["room_x"])),
        ("presence:get_online", json!(["room_x"])),
        ("room:unsubscribe", json!({"roomId": true})),
        ("room:unsubscribe", json!({})),
        ("presence:get_online", json!({"roomId": null})),
        ("presence:get_online", json!(7)),
        (
            "quiz:answer_submit",
            json!({"questionId": "q_1", "answer": "A"}),
        ),
        (
            "quiz:answer_submit",
            json!({"questionId": "q_1", "answer": "A", "timestamp": "now"}),
        ),
        (
            "quiz:answer_submit",
            json!({"questionId": 1, "answer": "A", "timestamp": 1}),
        ),
        (
            "quiz:answer_submit",
            json!({"answer": ["A"], "timestamp": 1}),
        ),
        (
            "notification:mark_read",
            json!({"notificationId": {"id": "n"}}),
        ),
        ("notification:mark_read", json!({})),
    ]
}

#[tokio::test]
async fn wrong_types_and_missing_fields_get_invalid_payload_in_the_ack() {
    let (srv, user, room) = setup().await;
    let mut socket = srv.connect(&user.token, "/").await;
    for (event, payload) in bad_payloads() {
        let reply = ack(&socket, event, payload.clone()).await;
        let message = assert_failure_ack(event, &reply, ErrorCode::InvalidPayload);
        assert!(
            message.starts_with("Invalid payload"),
            "{event} {payload}: message {message:?}"
        );
    }
    // No payload at all.
    for spec in CATALOG
        .iter()
        .filter(|s| s.direction == Direction::ClientToServer)
    {
        let args = socket
            .emit_with_ack(spec.name, (), WAIT)
            .await
            .unwrap_or_else(|e| panic!("ack of {} without payload: {e}", spec.name));
        assert_eq!(args.len(), 1, "{}: {args:?}", spec.name);
        let message = assert_failure_ack(spec.name, &args[0], ErrorCode::InvalidPayload);
        assert_eq!(message, "Missing payload", "{}", spec.name);
    }
    // A failure with an ack id gets no `error` event as well (N9).
    assert_no_event(&mut socket, "error").await;
    assert!(socket.is_connected());
    socket.disconnect().await;
    assert_still_serving(&srv, &user.token, &room).await;
    srv.stop().await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields_without_ack_get_an_error_event() {
    let (srv, user, room) = setup().await;
    let mut socket = srv.connect(&user.token, "/").await;

    // The raw frame of the brief, exactly as a client could write it.
    socket
        .send_raw(r#"42["room:subscribe",{"roomId":42}]"#)
        .expect("frame queued");
    let message = assert_error_event(
        &mut socket,
        ErrorCode::InvalidPayload,
        json!({"action": "room:subscribe", "event": "room:subscribe"}),
    )
    .await;
    assert!(message.starts_with("Invalid payload"), "{message}");

    for (event, payload) in bad_payloads() {
        socket.emit(event, payload.clone()).expect("emit");
        let message = assert_error_event(
            &mut socket,
            ErrorCode::InvalidPayload,
            json!({"action": event, "event": event}),
        )
        .await;
        assert!(
            message.starts_with("Invalid payload"),
            "{event} {payload}: message {message:?}"
        );
    }
    // `42["room:subscribe"]`: an event without its argument.
    socket.send_raw(r#"42["room:subscribe"]"#).expect("queued");
    let message = assert_error_event(
        &mut socket,
        ErrorCode::InvalidPayload,
        json!({"action": "room:subscribe", "event": "room:subscribe"}),
    )
    .await;
    assert_eq!(message, "Missing payload");

    // The socket is still usable.
    let reply = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(reply["success"], json!(true), "{reply}");
    socket.disconnect().await;
    assert_still_serving(&srv, &user.token, &room).await;
    srv.stop().await;
}

#[tokio::test]
async fn unknown_event_names_get_invalid_payload() {
    let (srv, user, room) = setup().await;
    let mut socket = srv.connect(&user.token, "/").await;

    socket
        .send_raw(r#"42["lottery:draw",{"roomId":"x"}]"#)
        .expect("queued");
    let message = assert_error_event(
        &mut socket,
        ErrorCode::InvalidPayload,
        json!({"action": "lottery:draw", "event": "lottery:draw"}),
    )
    .await;
    assert_eq!(message, "Unknown event: lottery:draw");

    // A server-to-client name sent by a client is unknown as a client event.
    socket.emit("room:updated", json!({})).expect("emit");
    let message = assert_error_event(
        &mut socket,
        ErrorCode::InvalidPayload,
        json!({"action": "room:updated", "event": "room:updated"}),
    )
    .await;
    assert_eq!(message, "Unknown event: room:updated");

    // With an ack id: the failure comes in the ack, with no `error` event.
    let args = socket
        .emit_with_ack("lottery:draw", json!({"roomId": room}), WAIT)
        .await
        .expect("ack");
    assert_eq!(args.len(), 1, "{args:?}");
    assert_eq!(
        args[0],
        json!({"success": false, "error": {"code": "INVALID_PAYLOAD", "message": "Unknown event: lottery:draw"}})
    );
    assert_ack_schema("room:subscribe", &args[0]);
    assert_no_event(&mut socket, "error").await;
    socket.disconnect().await;
    assert_still_serving(&srv, &user.token, &room).await;
    srv.stop().await;
}

/// Object keys with JSON escapes (quote, backslash, control characters,
/// `\uXXXX`) are read like any other key: the payload is valid. (socketioxide's
/// own data extractor used to fail on them and answer "Missing payload".)
#[tokio::test]
async fn payload_keys_with_json_escapes_are_read() {
    let (srv, user, room) = setup().await;
    let mut socket = srv.connect(&user.token, "/").await;
    for key in ["a\"b", "\\", "\n", "\u{1}", "\"", "é"] {
        let mut payload = Map::new();
        payload.insert(key.to_owned(), json!({key: [key]}));
        payload.insert("roomId".into(), json!(room));
        let payload = Value::Object(payload);
        let reply = ack(&socket, "room:subscribe", payload.clone()).await;
        assert_ack_schema("room:subscribe", &reply);
        assert_eq!(
            reply,
            json!({"success": true, "room": {"id": room, "name": ROOM_NAME, "status": "active"}}),
            "payload {payload}"
        );
        let confirm = next_event(&mut socket, "room:subscribed").await;
        assert_payload("room:subscribed", &confirm);
        assert_eq!(confirm["roomId"], json!(room));

        // Without an ack, the same payload subscribes too (no `error`).
        socket.emit("room:subscribe", payload).expect("emit");
        let confirm = next_event(&mut socket, "room:subscribed").await;
        assert_eq!(confirm["roomId"], json!(room));
    }
    assert_no_event(&mut socket, "error").await;
    socket.disconnect().await;
    srv.stop().await;
}

/// A `room:subscribe` whose packet text (`["room:subscribe",{...}]`, what the
/// server measures) is exactly `len` bytes.
fn subscribe_of_len(room_id: &str, len: usize) -> Value {
    let base = json!(["room:subscribe", {"roomId": room_id, "pad": ""}]);
    let base_len = serde_json::to_string(&base).unwrap().len();
    assert!(len >= base_len);
    let payload = json!({"roomId": room_id, "pad": "x".repeat(len - base_len)});
    assert_eq!(
        serde_json::to_string(&json!(["room:subscribe", payload]))
            .unwrap()
            .len(),
        len
    );
    payload
}

#[tokio::test]
async fn payloads_over_16_kib_get_invalid_payload() {
    let (srv, user, room) = setup().await;
    let mut socket = srv.connect(&user.token, "/").await;
    let max = limits::MAX_CLIENT_EVENT_BYTES;

    // Exactly at the limit: accepted (unknown fields are ignored).
    let reply = ack(&socket, "room:subscribe", subscribe_of_len(&room, max)).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(
        reply,
        json!({"success": true, "room": {"id": room, "name": ROOM_NAME, "status": "active"}})
    );

    // One byte over: refused, in the ack.
    let reply = ack(&socket, "room:subscribe", subscribe_of_len(&room, max + 1)).await;
    let message = assert_failure_ack("room:subscribe", &reply, ErrorCode::InvalidPayload);
    assert_eq!(
        message,
        format!("Payload too large: {} bytes, at most {max}", max + 1)
    );

    // 100 KiB, well below the 1 MB engine limit: refused, as an `error`
    // event when no ack is asked for; the connection stays up.
    let big = subscribe_of_len(&room, 100 * 1024);
    socket.emit("room:subscribe", big).expect("emit");
    let message = assert_error_event(
        &mut socket,
        ErrorCode::InvalidPayload,
        json!({"action": "room:subscribe", "event": "room:subscribe"}),
    )
    .await;
    assert_eq!(
        message,
        format!("Payload too large: {} bytes, at most {max}", 100 * 1024)
    );
    let reply = ack(&socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &reply);
    assert_eq!(reply["success"], json!(true), "{reply}");
    assert_eq!(reply["count"], json!(1), "{reply}");
    socket.disconnect().await;
    assert_still_serving(&srv, &user.token, &room).await;
    srv.stop().await;
}

/// An Engine.IO packet over `maxPayload` (1 MB) closes that connection only:
/// another client, subscribed to a room, keeps receiving its events.
async fn packet_over_engine_limit(transport: Transport) {
    let (srv, user, room) = setup().await;
    let bystander_user = srv.user("Bystander").await;
    let mut bystander = srv.subscribed(&bystander_user.token, &room).await;

    let mut socket = connect_with(&srv, &user.token, transport).await;
    let over = limits::MAX_ENGINE_PACKET_BYTES as usize + 1024;
    socket
        .emit("room:subscribe", subscribe_of_len(&room, over))
        .expect("emit");
    assert_closed_by_server(&mut socket, "packet over 1 MB").await;

    srv.patch(&format!("/api/rooms/{room}"), json!({"name": "Renamed"}))
        .await;
    let updated = next_event(&mut bystander, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(updated["changes"], json!({"name": "Renamed"}));
    assert_eq!(
        updated["room"],
        json!({"id": room, "name": "Renamed", "status": "active"})
    );
    srv.patch(&format!("/api/rooms/{room}"), json!({"name": ROOM_NAME}))
        .await;
    bystander.disconnect().await;
    assert_still_serving(&srv, &user.token, &room).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_websocket_packet_over_1_mb_closes_the_connection() {
    packet_over_engine_limit(Transport::WebSocket).await;
}

#[tokio::test]
async fn a_polling_packet_over_1_mb_closes_the_connection() {
    packet_over_engine_limit(Transport::Polling).await;
}

// ---------------------------------------------------------------------------
// Property test: random JSON payloads for every client event
// ---------------------------------------------------------------------------

/// Keys that the payload types use, so random objects sometimes decode.
const KEYS: [&str; 5] = [
    "roomId",
    "questionId",
    "answer",
    "timestamp",
    "notificationId",
];

/// Any JSON value: null, bools, integers, floats, short strings, nested
/// arrays and objects (keys drawn partly from the protocol's field names;
/// strings sometimes the real room id).
fn json_value(room_id: String) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        Just(Value::from(room_id)),
    ];
    let key = prop_oneof![
        3 => prop::sample::select(KEYS.as_slice()).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Payloads for the property: any JSON value, or an object that has a
/// `roomId` (the real room's id, another string, or anything else) next to
/// random fields, so that successes and `ROOM_NOT_FOUND` are exercised too.
fn payload(room_id: String) -> impl Strategy<Value = Value> {
    let room_ref = prop_oneof![
        Just(Value::from(room_id.clone())),
        "\\PC{0,16}".prop_map(Value::from),
        json_value(room_id.clone()),
    ];
    let extra = prop::collection::vec(("\\PC{0,8}", json_value(room_id.clone())), 0..4);
    let near_valid = (extra, room_ref).prop_map(|(extra, room)| {
        let mut map: Map<String, Value> = extra.into_iter().collect();
        map.insert("roomId".into(), room);
        Value::Object(map)
    });
    prop_oneof![2 => json_value(room_id), 1 => near_valid]
}

/// What the server must answer, decided from the payload alone.
#[derive(Debug, PartialEq)]
enum Expect {
    Success,
    Failure(ErrorCode),
}

fn string_field<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str)
}

fn expected(event: &str, payload: &Value, room_id: &str) -> Expect {
    let packet = serde_json::to_string(&json!([event, payload])).unwrap();
    if packet.len() > limits::MAX_CLIENT_EVENT_BYTES {
        return Expect::Failure(ErrorCode::InvalidPayload);
    }
    let invalid = Expect::Failure(ErrorCode::InvalidPayload);
    if !payload.is_object() {
        return invalid;
    }
    match event {
        "room:subscribe" | "presence:get_online" => match string_field(payload, "roomId") {
            None => invalid,
            Some(id) if id == room_id => Expect::Success,
            Some(_) => Expect::Failure(ErrorCode::RoomNotFound),
        },
        "room:unsubscribe" => match string_field(payload, "roomId") {
            None => invalid,
            Some(_) => Expect::Success,
        },
        // No question and no notification exists: always refused.
        "quiz:answer_submit" | "notification:mark_read" => invalid,
        other => panic!("the property test does not know {other}"),
    }
}

/// Random JSON as the payload of every client event of the catalog, with
/// an ack: each gets an ack that is a success matching the event's ack
/// schema or `{success: false, error: {code, message}}` with a protocol
/// code, exactly the one the payload calls for; the server stays up.
#[test]
fn random_json_payloads_get_a_protocol_ack_for_every_client_event() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (srv, user, room) = rt.block_on(setup());
    let events: Vec<&str> = CATALOG
        .iter()
        .filter(|s| s.direction == Direction::ClientToServer)
        .map(|s| s.name)
        .collect();
    assert_eq!(events.len(), 5, "client events: {events:?}");

    // One socket, replaced before it reaches the 100-events-a-minute limit,
    // by a socket of a new user: a user's next connection inherits the
    // budget of their closed one (protocol notes N8).
    let budget = (limits::CLIENT_EVENTS_PER_MINUTE as usize - 1) / events.len() * events.len();
    let socket: tokio::sync::Mutex<Option<(Socket, usize)>> = tokio::sync::Mutex::new(None);
    let mut config = ProptestConfig::with_cases(128);
    config.failure_persistence = None;
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let outcomes: RefCell<BTreeMap<String, usize>> = RefCell::default();
    let result = runner.run(&payload(room.clone()), |payload| {
        rt.block_on(async {
            let mut slot = socket.lock().await;
            if slot
                .as_ref()
                .is_none_or(|(_, sent)| sent + events.len() > budget)
            {
                if let Some((old, _)) = slot.take() {
                    old.disconnect().await;
                }
                let fresh = srv.user("fuzzer").await;
                *slot = Some((srv.connect(&fresh.token, "/").await, 0));
            }
            let (sock, sent) = slot.as_mut().expect("socket");
            for event in &events {
                *sent += 1;
                let args = sock
                    .emit_with_ack(event, payload.clone(), WAIT)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{event} {payload}: no ack: {e}")))?;
                if args.len() != 1 {
                    return Err(TestCaseError::fail(format!(
                        "{event} {payload}: ack has {} arguments: {args:?}",
                        args.len()
                    )));
                }
                let reply = &args[0];
                let outcome = std::panic::catch_unwind(|| assert_ack_schema(event, reply));
                if outcome.is_err() {
                    return Err(TestCaseError::fail(format!(
                        "{event} {payload}: ack {reply} violates the ack schema"
                    )));
                }
                let got = match reply["success"].as_bool() {
                    Some(true) => Expect::Success,
                    _ => {
                        let code = reply["error"]["code"]
                            .as_str()
                            .and_then(ErrorCode::parse)
                            .ok_or_else(|| {
                                TestCaseError::fail(format!("{event}: no protocol code: {reply}"))
                            })?;
                        let message = reply["error"]["message"].as_str().unwrap_or("");
                        if message.is_empty() {
                            return Err(TestCaseError::fail(format!(
                                "{event}: empty message: {reply}"
                            )));
                        }
                        Expect::Failure(code)
                    }
                };
                let want = expected(event, &payload, &room);
                *outcomes
                    .borrow_mut()
                    .entry(format!("{event} {want:?}"))
                    .or_default() += 1;
                if got != want {
                    return Err(TestCaseError::fail(format!(
                        "{event} {payload}: expected {want:?}, got {reply}"
                    )));
                }
                if want == Expect::Success {
                    let id = string_field(&payload, "roomId").unwrap();
                    let exact = match *event {
                        "room:unsubscribe" => *reply == json!({"success": true, "data": {"roomId": id}}),
                        "room:subscribe" => {
                            *reply
                                == json!({"success": true, "room": {"id": room, "name": ROOM_NAME, "status": "active"}})
                        }
                        _ => {
                            reply["roomId"] == json!(room)
                                && reply["users"].as_array().map(Vec::len)
                                    == reply["count"].as_u64().map(|n| n as usize)
                        }
                    };
                    if !exact {
                        return Err(TestCaseError::fail(format!("{event} {payload}: ack {reply}")));
                    }
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("property failed: {e}");
    }
    // The generator reaches every kind of answer, not only refusals.
    let outcomes = outcomes.into_inner();
    for kind in [
        "room:subscribe Success",
        "room:subscribe Failure(RoomNotFound)",
        "room:subscribe Failure(InvalidPayload)",
        "presence:get_online Success",
        "room:unsubscribe Success",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "no case of {kind}: {outcomes:#?}"
        );
    }
    rt.block_on(async {
        let last = socket.lock().await.take();
        if let Some((old, _)) = last {
            old.disconnect().await;
        }
        assert_still_serving(&srv, &user.token, &room).await;
        srv.stop().await;
    });
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the property test took {:?}",
        started.elapsed()
    );
}
