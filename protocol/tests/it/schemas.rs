//! The committed JSON Schemas under `protocol/schemas/` are exactly what
//! `protocol::schema::files()` generates, and the schemas accept the
//! protocol's example payloads and reject broken ones at the right place.
//!
//! `UPDATE_SCHEMAS=1 cargo test -p protocol --test it schemas::` rewrites the
//! folder (and deletes stale `.json` files in it).

use std::collections::BTreeSet;
use std::path::PathBuf;

use protocol::schema::{self, files};
use protocol::validate::{self, Violation};
use serde_json::{Value, json};

fn schema_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

/// A schema file as committed: pretty JSON and a trailing newline.
fn render(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("a Value always serializes");
    s.push('\n');
    s
}

fn updating() -> bool {
    std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1")
}

#[test]
fn committed_schemas_match_the_types() {
    let dir = schema_dir();
    let generated = files();
    let names: BTreeSet<&str> = generated.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names.len(), generated.len(), "duplicate schema file names");

    if updating() {
        std::fs::create_dir_all(&dir).expect("create protocol/schemas");
        for (name, schema) in &generated {
            let path = dir.join(name);
            let text = render(schema);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
                eprintln!("rewrote protocol/schemas/{name}");
            }
        }
        for entry in std::fs::read_dir(&dir).expect("read protocol/schemas") {
            let entry = entry.expect("read protocol/schemas entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !names.contains(name.as_str()) {
                std::fs::remove_file(entry.path())
                    .unwrap_or_else(|e| panic!("remove stale {name}: {e}"));
                eprintln!("removed stale protocol/schemas/{name}");
            }
        }
    }

    let mut problems = Vec::new();
    for (name, schema) in &generated {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) if text == render(schema) => {}
            Ok(_) => problems.push(format!("{name}: differs from the generated schema")),
            Err(_) => problems.push(format!("{name}: missing")),
        }
    }
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry
                    .expect("read protocol/schemas entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if !names.contains(name.as_str()) {
                    problems.push(format!("{name}: stale, no schema generates it"));
                }
            }
        }
        Err(e) => problems.push(format!("protocol/schemas/ cannot be read: {e}")),
    }
    assert!(
        problems.is_empty(),
        "protocol/schemas/ has drifted from the protocol types:\n  {}\n\n\
         Run `UPDATE_SCHEMAS=1 cargo test -p protocol --test it schemas::` and commit the result.",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Validation of example payloads
// ---------------------------------------------------------------------------

/// The generated schema file `name`.
fn schema_file(name: &str) -> Value {
    files()
        .into_iter()
        .find(|(p, _)| p == name)
        .unwrap_or_else(|| panic!("no schema file {name}"))
        .1
}

/// The same schema as embedded in `catalog.json`: the entry's schema with
/// the catalog's shared `$defs` beside it.
fn catalog_schema(event: &str, key: &str) -> Value {
    let catalog = schema::catalog_document();
    let mut embedded = catalog["events"][event][key].clone();
    assert!(embedded.is_object(), "catalog.json has no {event}/{key}");
    embedded["$defs"] = catalog["$defs"].clone();
    embedded["$schema"] = json!(schema::DRAFT);
    embedded
}

/// Every violation of `schema` by `instance`.
fn errors(schema: &Value, instance: &Value) -> Vec<Violation> {
    validate::schema_errors(schema, instance).unwrap_or_else(|e| panic!("{e}\n{schema:#}"))
}

fn assert_valid(file: &str, event_and_key: Option<(&str, &str)>, instance: &Value) {
    let errs = errors(&schema_file(file), instance);
    assert!(
        errs.is_empty(),
        "{file} rejects a valid example: {errs:?}\n{instance:#}"
    );
    if let Some((event, key)) = event_and_key {
        let errs = errors(&catalog_schema(event, key), instance);
        assert!(
            errs.is_empty(),
            "catalog.json {event}/{key} rejects a valid example: {errs:?}\n{instance:#}"
        );
    }
}

/// `instance` is rejected, and one of the errors is at `pointer`.
fn assert_rejected_at(file: &str, instance: &Value, pointer: &str) {
    let errs = errors(&schema_file(file), instance);
    assert!(
        errs.iter().any(|e| e.pointer == pointer),
        "{file}: expected an error at {pointer:?}, got {errs:?}\n{instance:#}"
    );
}

#[test]
fn every_schema_compiles() {
    for (name, schema) in files() {
        if let Err(e) = validate::schema_errors(&schema, &Value::Null) {
            panic!("{name}: {e}");
        }
    }
}

fn prize_created() -> Value {
    json!({
        "roomId": "room_fz81",
        "prize": {
            "id": "prize_kite",
            "name": "Stunt kite",
            "description": "Dual-line kite with carry bag",
            "imageUrl": "https://img.example.test/kite.webp",
            "quantity": 4,
            "quantityRemaining": 4,
            "createdAt": "2025-06-02T09:15:00Z"
        },
        "timestamp": "2025-06-02T09:15:00.120Z",
        "eventId": "evt_a01"
    })
}

fn winner_selected() -> Value {
    json!({
        "roomId": "room_fz81",
        "winner": {
            "id": "win_17",
            "participantId": "part_q2",
            "prizeId": "prize_kite",
            "participant": {
                "id": "part_q2",
                "user": { "id": "usr_tt4", "name": "Jonas Vell", "avatar": "https://img.example.test/u/tt4.png" }
            },
            "prize": { "id": "prize_kite", "name": "Stunt kite", "imageUrl": "https://img.example.test/kite.webp" },
            "createdAt": "2025-06-02T09:40:00Z"
        },
        "timestamp": "2025-06-02T09:40:00Z"
    })
}

fn answer_result() -> Value {
    json!({
        "questionId": "qst_9",
        "participantId": "part_q2",
        "user": { "id": "usr_tt4", "name": "Jonas Vell" },
        "correct": true,
        "responseTime": 2.47,
        "rank": 3,
        "timestamp": "2025-06-02T10:00:02.470Z"
    })
}

fn presence_ack() -> Value {
    json!({
        "success": true,
        "roomId": "room_fz81",
        "users": [
            { "id": "usr_tt4", "name": "Jonas Vell", "connectedAt": "2025-06-02T09:00:00Z" },
            { "id": "usr_b0", "name": "Ines Marr", "avatar": "https://img.example.test/u/b0.png", "connectedAt": "2025-06-02T09:01:30Z" }
        ],
        "count": 2
    })
}

fn ack_failure() -> Value {
    json!({
        "success": false,
        "error": { "code": "ROOM_NOT_FOUND", "message": "Room not found: room_nope" }
    })
}

#[test]
fn protocol_examples_are_valid() {
    // Server events, as the protocol shows them (with our values).
    assert_valid(
        "prize_created.payload.json",
        Some(("prize:created", "payload")),
        &prize_created(),
    );
    assert_valid(
        "winner_selected.payload.json",
        Some(("winner:selected", "payload")),
        &winner_selected(),
    );
    assert_valid(
        "quiz_answer_result.payload.json",
        Some(("quiz:answer_result", "payload")),
        &answer_result(),
    );
    // A wrong answer: rank is null, and the reference server adds roomId.
    let mut wrong = answer_result();
    wrong["correct"] = json!(false);
    wrong["rank"] = Value::Null;
    wrong["roomId"] = json!("room_fz81");
    wrong["eventId"] = json!("evt_a02");
    assert_valid("quiz_answer_result.payload.json", None, &wrong);
    assert_valid(
        "notification_received.payload.json",
        Some(("notification:received", "payload")),
        &json!({
            "id": "ntf_77",
            "type": "winner_selected",
            "title": "Lucky you",
            "message": "You won a Stunt kite",
            "data": { "roomId": "room_fz81", "winnerId": "win_17", "prizeId": "prize_kite" },
            "read": false,
            "createdAt": "2025-06-02T09:40:00Z",
            "timestamp": "2025-06-02T09:40:00.010Z"
        }),
    );
    assert_valid(
        "error.payload.json",
        Some(("error", "payload")),
        &json!({
            "code": "RATE_LIMIT_EXCEEDED",
            "message": "Slow down",
            "details": { "event": "room:subscribe" },
            "timestamp": "2025-06-02T09:00:00Z"
        }),
    );
    // Application events: any data, and the metadata argument.
    assert_valid(
        "app_event.payload.json",
        Some(("{appId}:*", "payload")),
        &json!({ "round": 1, "prizes": 5 }),
    );
    assert_valid(
        "app_event.meta.json",
        Some(("{appId}:*", "meta")),
        &json!({ "eventId": "evt_a03", "appId": "lottery", "roomId": "room_fz81", "timestamp": "2025-06-02T09:00:00Z" }),
    );

    // Client events and their acks.
    assert_valid(
        "room_subscribe.payload.json",
        Some(("room:subscribe", "payload")),
        &json!({ "roomId": "room_fz81" }),
    );
    assert_valid(
        "room_subscribe.ack.json",
        Some(("room:subscribe", "ackSchema")),
        &json!({ "success": true, "room": { "id": "room_fz81", "name": "Kite Festival", "status": "active" } }),
    );
    assert_valid(
        "quiz_answer_submit.payload.json",
        Some(("quiz:answer_submit", "payload")),
        &json!({ "questionId": "qst_9", "answer": "Blue", "timestamp": 1_748_858_402_470_u64 }),
    );
    assert_valid(
        "quiz_answer_submit.ack.json",
        Some(("quiz:answer_submit", "ackSchema")),
        &json!({ "success": true, "correct": true, "responseTime": 2.47, "rank": 1 }),
    );
    assert_valid(
        "quiz_answer_submit.ack.json",
        None,
        &json!({ "success": true, "correct": false, "responseTime": 5.0, "rank": null }),
    );
    assert_valid(
        "presence_get_online.ack.json",
        Some(("presence:get_online", "ackSchema")),
        &presence_ack(),
    );
    assert_valid(
        "room_unsubscribe.ack.json",
        Some(("room:unsubscribe", "ackSchema")),
        &json!({ "success": true, "data": { "roomId": "room_fz81" } }),
    );
    assert_valid(
        "notification_mark_read.ack.json",
        Some(("notification:mark_read", "ackSchema")),
        &json!({ "success": true, "data": { "notificationId": "ntf_77", "read": true } }),
    );
    // A failure is a valid ack of every client event.
    assert_valid("ack_failure.json", None, &ack_failure());
    for spec in protocol::CATALOG {
        if spec.ack.success_schema().is_some() {
            let file = format!("{}.ack.json", schema::file_stem(spec.name));
            assert_valid(&file, Some((spec.name, "ackSchema")), &ack_failure());
        }
    }
}

#[test]
fn broken_payloads_are_rejected_where_they_break() {
    // Missing field, nested: the error is at the object that lacks it.
    let mut p = prize_created();
    p["prize"]
        .as_object_mut()
        .unwrap()
        .remove("quantityRemaining");
    assert_rejected_at("prize_created.payload.json", &p, "/prize");

    // Missing top-level field.
    let mut p = prize_created();
    p.as_object_mut().unwrap().remove("roomId");
    assert_rejected_at("prize_created.payload.json", &p, "");

    // Wrong type.
    let mut p = prize_created();
    p["prize"]["quantity"] = json!("four");
    assert_rejected_at("prize_created.payload.json", &p, "/prize/quantity");
    let mut w = winner_selected();
    w["winner"]["participant"]["user"]["name"] = json!(42);
    assert_rejected_at(
        "winner_selected.payload.json",
        &w,
        "/winner/participant/user/name",
    );

    // rank: required (null allowed, absent not), 1-based, an integer.
    let mut r = answer_result();
    r.as_object_mut().unwrap().remove("rank");
    assert_rejected_at("quiz_answer_result.payload.json", &r, "");
    let mut r = answer_result();
    r["rank"] = json!(0);
    assert_rejected_at("quiz_answer_result.payload.json", &r, "/rank");
    let mut r = answer_result();
    r["rank"] = json!("first");
    assert_rejected_at("quiz_answer_result.payload.json", &r, "/rank");

    // Presence list entry without connectedAt.
    let mut a = presence_ack();
    a["users"][1].as_object_mut().unwrap().remove("connectedAt");
    assert_rejected_at("presence_get_online.payload.json", &json!({}), "");
    let success_only = {
        let ack = schema_file("presence_get_online.ack.json");
        let mut s = ack["oneOf"][0].clone();
        s["$defs"] = ack["$defs"].clone();
        s
    };
    let errs = errors(&success_only, &a);
    assert!(
        errs.iter().any(|e| e.pointer == "/users/1"),
        "expected an error at /users/1, got {errs:?}"
    );
    // ... and the whole ack (success or failure) rejects it at the root.
    assert_rejected_at("presence_get_online.ack.json", &a, "");

    // Bad error code.
    let mut f = ack_failure();
    f["error"]["code"] = json!("NOT_FOUND");
    assert_rejected_at("ack_failure.json", &f, "/error/code");
    assert_rejected_at("room_subscribe.ack.json", &f, "");
    let bad_event = json!({
        "code": "TEAPOT",
        "message": "x",
        "details": {},
        "timestamp": "2025-06-02T09:00:00Z"
    });
    assert_rejected_at("error.payload.json", &bad_event, "/code");

    // success must match the shape: a failure flagged as success, and a
    // success without its fields, are no ack.
    let mut f = ack_failure();
    f["success"] = json!(true);
    assert_rejected_at("ack_failure.json", &f, "/success");
    assert_rejected_at("room_subscribe.ack.json", &f, "");
    assert_rejected_at(
        "quiz_answer_submit.ack.json",
        &json!({ "success": false, "correct": true, "responseTime": 1.0, "rank": 1 }),
        "",
    );

    // Room status outside draft/active/paused/ended.
    assert_rejected_at(
        "room_status_changed.payload.json",
        &json!({
            "roomId": "room_fz81",
            "oldStatus": "active",
            "newStatus": "archived",
            "timestamp": "2025-06-02T09:00:00Z"
        }),
        "/newStatus",
    );
}
