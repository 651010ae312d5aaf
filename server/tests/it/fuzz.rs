//! Fuzzing the decoders (issue 13): seeded mutations of real frames and
//! bodies. No crash, no hang, every bad input answered as documented.
//!
//! - [`decoders_survive_mutated_frames`]: the Engine.IO packet decoder,
//!   the Socket.IO packet decoder (the server's parser configuration) and
//!   the decoders of every client event's payload, called in-process on
//!   `FUZZ_INPUTS` mutated frames (default 20,000);
//! - [`server_answers_mutated_frames_and_bodies`]: the same kind of frames
//!   sent to a real server over a WebSocket, and mutated REST bodies sent
//!   to every endpoint that takes one, `FUZZ_E2E_INPUTS` of each (default
//!   1,000): each frame is answered by a protocol ack or `error` event, or
//!   closes the connection; each REST body by a 2xx or a 4xx with a
//!   protocol error body, never a 5xx; the server still serves after.
//!
//! `FUZZ_SEED` (default 13) picks the run; a failure names its input.
//! The million-input run (README "Tests"):
//! `FUZZ_INPUTS=1000000 cargo test -p server --test it fuzz::decoders -- --nocapture`.

use std::time::{Duration, Instant};

use engineioxide_core::{Packet as EioPacket, ProtocolVersion};
use futures_util::SinkExt;
use protocol::ErrorCode;
use protocol::payload::{AnswerSubmit, MarkRead, RoomRef};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use server::testing::*;
use socketioxide_core::Value as SioValue;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;
use tokio_tungstenite::tungstenite::Message;

use crate::hardening::{Ws, next_text, open_ws};

/// The slowest a single input may take to decode before it counts as a
/// hang (debug builds on a loaded 2-core machine included).
const HANG: Duration = Duration::from_secs(1);

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a count"))
        })
        .unwrap_or(default)
}

fn seed() -> u64 {
    env_count("FUZZ_SEED", 13) as u64
}

/// Real frames: Engine.IO packets carrying every kind of Socket.IO packet
/// and every client event.
const FRAMES: &[&str] = &[
    "0{\"sid\":\"AAAAAAAAAAAAAAAA\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
    "1",
    "2",
    "3",
    "2probe",
    "3probe",
    "5",
    "6",
    "bAQIDBA==",
    "40",
    "40{\"token\":\"eyJhbGciOiJIUzI1NiJ9.e30.sig\"}",
    "40/rooms/room_0123456789abcdef,{\"token\":\"t\"}",
    "41",
    "41/rooms/room_1,",
    "42[\"room:subscribe\",{\"roomId\":\"room_1\"}]",
    "427[\"room:unsubscribe\",{\"roomId\":\"room_1\"}]",
    "4212[\"presence:get_online\",{\"roomId\":\"room_1\"}]",
    "42/rooms/room_1,3[\"quiz:answer_submit\",{\"questionId\":\"q_1\",\"answer\":\"B\",\"timestamp\":1733468400000}]",
    "4299[\"notification:mark_read\",{\"notificationId\":\"ntf_1\"}]",
    "43/rooms/room_1,5[{\"success\":true}]",
    "451-[\"room:subscribe\",{\"_placeholder\":true,\"num\":0}]",
    "44{\"message\":\"Authentication failed: Invalid token\"}",
];

/// Pieces a mutation may insert: JSON and packet syntax, escapes, numbers
/// at the edges of their types, long runs.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ",",
    ":",
    "/",
    "-",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "\u{0}",
    "é",
    "\u{10FFFF}",
    "_placeholder",
    "\"num\":",
    "roomId",
    "42",
    "451-",
    "/rooms/",
];

/// A seeded mutator over a corpus.
struct Mutator {
    rng: StdRng,
    corpus: Vec<Vec<u8>>,
}

impl Mutator {
    fn new(seed: u64, corpus: &[&str]) -> Mutator {
        Mutator {
            rng: StdRng::seed_from_u64(seed),
            corpus: corpus.iter().map(|s| s.as_bytes().to_vec()).collect(),
        }
    }

    /// A corpus entry with one to four mutations.
    fn next(&mut self) -> Vec<u8> {
        let mut input = self.corpus[self.rng.random_range(0..self.corpus.len())].clone();
        for _ in 0..self.rng.random_range(1..=4) {
            self.mutate(&mut input);
        }
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        let len = input.len();
        let at = self.rng.random_range(0..=len);
        match self.rng.random_range(0..7) {
            // Flip bits of a byte.
            0 if len > 0 => {
                let i = self.rng.random_range(0..len);
                input[i] ^= 1 << self.rng.random_range(0..8);
            }
            // A random byte.
            1 => input.insert(at, self.rng.random()),
            // Delete a range.
            2 if len > 0 => {
                let end = (at + self.rng.random_range(1..=8)).min(len);
                input.drain(at.min(len - 1)..end.max(at.min(len - 1) + 1));
            }
            // Duplicate a range (nesting, repeats).
            3 if len > 0 => {
                let from = self.rng.random_range(0..len);
                let end = (from + self.rng.random_range(1..=32)).min(len);
                let piece = input[from..end].to_vec();
                input.splice(at..at, piece);
            }
            // A token.
            4 => {
                let token = TOKENS[self.rng.random_range(0..TOKENS.len())].as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            // The tail of another entry (splice).
            5 => {
                let other = &self.corpus[self.rng.random_range(0..self.corpus.len())];
                let from = self.rng.random_range(0..=other.len());
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            // A long run (size limits).
            _ => {
                let byte = *input.get(at.saturating_sub(1)).unwrap_or(&b'[');
                let n = self.rng.random_range(1..=4096);
                input.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }
}

/// Decodes `frame` as the server does: Engine.IO, then Socket.IO (no
/// binary attachments, as configured in `serve`), then the payload of the
/// client event it names. Returns what it got to, for the tally.
fn decode_frame(frame: &str) -> &'static str {
    let sio = match EioPacket::parse(ProtocolVersion::V4, frame.to_owned()) {
        Ok(EioPacket::Message(msg)) => msg,
        Ok(_) => return "engine.io control",
        Err(_) => return "engine.io error",
    };
    let config = ParseConfig {
        max_incoming_binaries: 0,
        ..ParseConfig::default()
    };
    let packet = match CommonParser.decode_str(&config, &ParserState::default(), sio) {
        Ok(p) => p,
        Err(_) => return "socket.io error",
    };
    let PacketData::Event(SioValue::Str(data, _), _) = packet.inner else {
        return "socket.io other";
    };
    let Ok(Value::Array(args)) = serde_json::from_str::<Value>(&data) else {
        return "event not an array";
    };
    let Some(payload) = args.get(1).cloned() else {
        return "event without payload";
    };
    let decoded = match args.first().and_then(Value::as_str) {
        Some("room:subscribe" | "room:unsubscribe" | "presence:get_online") => {
            serde_json::from_value::<RoomRef>(payload).is_ok()
        }
        Some("quiz:answer_submit") => serde_json::from_value::<AnswerSubmit>(payload).is_ok(),
        Some("notification:mark_read") => serde_json::from_value::<MarkRead>(payload).is_ok(),
        _ => return "unknown event",
    };
    if decoded {
        "payload decoded"
    } else {
        "payload refused"
    }
}

#[test]
fn decoders_survive_mutated_frames() {
    let inputs = env_count("FUZZ_INPUTS", 20_000);
    let mut mutator = Mutator::new(seed(), FRAMES);
    let mut tally = std::collections::BTreeMap::<&str, usize>::new();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for i in 0..inputs {
        let input = mutator.next();
        let frame = String::from_utf8_lossy(&input);
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| decode_frame(&frame))
            .unwrap_or_else(|_| panic!("input {i} (seed {}) panicked: {frame:?}", seed()));
        let took = t.elapsed();
        assert!(took < HANG, "input {i} took {took:?}: {frame:?}");
        slowest = slowest.max(took);
        *tally.entry(outcome).or_default() += 1;
        // The raw bytes as a payload of every client event, too.
        let _ = serde_json::from_slice::<RoomRef>(&input);
        let _ = serde_json::from_slice::<AnswerSubmit>(&input);
        let _ = serde_json::from_slice::<MarkRead>(&input);
    }
    println!(
        "{inputs} inputs (seed {}) in {:.1} s, slowest {slowest:?}: {tally:?}",
        seed(),
        started.elapsed().as_secs_f64()
    );
    // The mutations reach every stage, not only the first refusal.
    for stage in [
        "engine.io error",
        "socket.io error",
        "payload decoded",
        "payload refused",
    ] {
        assert!(
            tally.get(stage).is_some_and(|&n| n > 0),
            "{stage}: {tally:?}"
        );
    }
}

/// Event frames only (what the WebSocket part sends).
const EVENT_FRAMES: &[&str] = &[
    "42[\"room:subscribe\",{\"roomId\":\"ROOM\"}]",
    "427[\"room:unsubscribe\",{\"roomId\":\"ROOM\"}]",
    "4212[\"presence:get_online\",{\"roomId\":\"ROOM\"}]",
    "423[\"quiz:answer_submit\",{\"questionId\":\"q_1\",\"answer\":\"B\",\"timestamp\":1733468400000}]",
    "4299[\"notification:mark_read\",{\"notificationId\":\"ntf_1\"}]",
    "42[\"no:such_event\",{}]",
];

/// A WebSocket session connected to `/` as `token`.
async fn session(srv: &TestServer, token: &str) -> Ws {
    let mut ws = open_ws(&srv.url).await;
    ws.send(Message::text(format!("40{}", json!({"token": token}))))
        .await
        .expect("send CONNECT");
    let connected = next_text(&mut ws).await.expect("CONNECT answered");
    assert!(connected.starts_with("40"), "{connected}");
    ws
}

/// Checks a frame the server sent in answer to a fuzzed one: an ack or an
/// `error` event, with a protocol error code when it is a failure.
fn check_answer(answer: &str, input: &str) {
    let json_at = answer
        .find('[')
        .unwrap_or_else(|| panic!("answer {answer:?} to {input:?}"));
    let args: Value = serde_json::from_str(&answer[json_at..])
        .unwrap_or_else(|e| panic!("answer {answer:?} to {input:?}: {e}"));
    let failure = if answer.starts_with("43") {
        if args[0]["success"] == json!(true) {
            return;
        }
        &args[0]["error"]
    } else {
        assert!(answer.starts_with("42"), "answer {answer:?} to {input:?}");
        match args[0].as_str() {
            Some("error") => &args[1],
            // A broadcast caused by an accepted event (room:subscribed...).
            _ => return,
        }
    };
    let code = failure["code"].as_str().unwrap_or_default();
    assert!(
        ErrorCode::parse(code).is_some(),
        "answer {answer:?} to {input:?}: not a protocol error"
    );
}

/// REST endpoints that take a body, and a real body for each.
fn rest_corpus(room: &str, user: &str) -> Vec<(Method, String, String)> {
    let r = |m: Method, p: &str, b: Value| (m, p.to_owned(), b.to_string());
    vec![
        r(Method::POST, "/api/users", json!({"name": "Ann"})),
        r(
            Method::POST,
            &format!("/api/users/{user}/notifications"),
            json!({"type": "system", "title": "Hi", "message": "m", "data": {}}),
        ),
        r(
            Method::POST,
            "/api/auth/token",
            json!({"userId": user, "ttlSeconds": 60}),
        ),
        r(
            Method::POST,
            "/api/auth/refresh",
            json!({"refreshToken": "rt_x"}),
        ),
        r(
            Method::POST,
            "/api/auth/revoke",
            json!({"tokenId": "tok_x"}),
        ),
        r(
            Method::POST,
            "/api/apps",
            json!({"id": "lottery", "name": "L", "permissions": ["realtime:publish"]}),
        ),
        r(
            Method::PUT,
            "/api/apps/lottery/permissions",
            json!({"permissions": ["rooms:manage"]}),
        ),
        r(
            Method::POST,
            "/api/rooms",
            json!({"name": "R", "visibility": "public"}),
        ),
        r(
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            json!({"name": "S", "status": "active", "visibility": "public"}),
        ),
        r(
            Method::POST,
            &format!("/api/rooms/{room}/participants"),
            json!({"userId": user, "role": "participant"}),
        ),
        r(
            Method::POST,
            &format!("/api/rooms/{room}/prizes"),
            json!({"name": "Car", "description": "d", "quantity": 1}),
        ),
        r(
            Method::POST,
            &format!("/api/rooms/{room}/quiz/questions"),
            json!({"question": "Q?", "options": ["A", "B"], "correctAnswer": "A", "timeLimit": 10}),
        ),
        r(
            Method::POST,
            &format!("/api/rooms/{room}/events"),
            json!({"event": "lottery:draw", "data": {"n": 1}}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_mutated_frames_and_bodies() {
    let inputs = env_count("FUZZ_E2E_INPUTS", 1_000);
    // The fuzzer is one user sending thousands of events: the rate limits
    // are not what is tested here.
    let srv = TestServer::start_with(|c| {
        c.client_events_per_minute = u32::MAX;
        c.app_events_per_room_per_second = u32::MAX;
        c.app_events_per_app_per_minute = u32::MAX;
    })
    .await;
    let room = srv.room("Fuzzed", "public").await;
    let user = srv.user("fuzzer").await;

    // Socket.IO event frames over a WebSocket.
    let corpus: Vec<String> = EVENT_FRAMES
        .iter()
        .map(|f| f.replace("ROOM", &room))
        .collect();
    let corpus: Vec<&str> = corpus.iter().map(String::as_str).collect();
    let mut mutator = Mutator::new(seed(), &corpus);
    let mut ws = session(&srv, &user.token).await;
    let sentinel = format!("42999{}", json!(["presence:get_online", {"roomId": room}]));
    let mut closed = 0;
    for _ in 0..inputs {
        let frame = String::from_utf8_lossy(&mutator.next()).into_owned();
        ws.send(Message::text(frame.clone())).await.ok();
        ws.send(Message::text(sentinel.clone())).await.ok();
        loop {
            match next_text(&mut ws).await {
                // Undecodable: the server closed the connection (N9),
                // with or without an Engine.IO close packet first.
                Some(answer) if answer == "1" => {
                    closed += 1;
                    drop(ws);
                    ws = session(&srv, &user.token).await;
                    break;
                }
                None => {
                    closed += 1;
                    ws = session(&srv, &user.token).await;
                    break;
                }
                Some(answer) if answer.starts_with("43999[") => break,
                Some(answer) => check_answer(&answer, &frame),
            }
        }
    }

    // REST bodies.
    let rest = rest_corpus(&room, &user.id);
    let app_token = srv.app("lottery", &["realtime:publish"]).await;
    let bodies: Vec<&str> = rest.iter().map(|(_, _, b)| b.as_str()).collect();
    let mut mutator = Mutator::new(seed(), &bodies);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..inputs {
        let (method, path, _) = &rest[i % rest.len()];
        let body = mutator.next();
        let mut req = srv
            .http
            .request(method.clone(), format!("{}{path}", srv.url))
            .header("content-type", "application/json")
            .body(body.clone());
        req = if path.ends_with("/events") {
            req.bearer_auth(&app_token).header("X-App-Id", "lottery")
        } else {
            req.bearer_auth(&srv.admin_token)
        };
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let shown = String::from_utf8_lossy(&body);
        assert!(
            status.as_u16() < 500,
            "{method} {path} {shown:?}: {status} {text}"
        );
        if status.is_client_error() {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path} {shown:?}: {status} {text}: {e}"));
            let code = v["error"]["code"].as_str().unwrap_or_default();
            assert!(
                ErrorCode::parse(code).is_some() || ["NOT_FOUND", "CONFLICT"].contains(&code),
                "{method} {path} {shown:?}: {status} {text}"
            );
        }
        *statuses.entry(status.as_u16()).or_default() += 1;
    }
    println!(
        "{inputs} frames ({closed} closed the connection), {inputs} REST bodies: {statuses:?}"
    );
    assert!(statuses.get(&400).is_some_and(|&n| n > 0), "{statuses:?}");
    // Still serving.
    let ws_ok = session(&srv, &user.token).await;
    drop(ws_ok);
    let (status, _) = srv
        .admin_call(Method::GET, &format!("/api/rooms/{room}"), None)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    srv.stop().await;
}
