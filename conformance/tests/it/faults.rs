//! Proves the conformance runner catches drift.
//!
//! Each test starts a reference server (its own temporary SQLite database),
//! puts a frame-rewriting proxy in front of it (common/proxy.rs) that
//! injects one fault, runs the relevant sections of the conformance suite
//! against the proxy, and checks that the run fails (exit code 1), that the
//! case owning the broken requirement fails, and that cases the fault does
//! not touch still pass. A run without a fault checks the proxy itself is
//! transparent.
//!
//! These faults check the runner's precision (the broken case fails, the
//! others still pass); that every case id can fail at all is
//! `fault_matrix.rs`'s job.
//!
//! `cargo test -p conformance --test it faults:: -- --nocapture` prints the
//! runner's output and one `fault ...` line per run with its time.

use std::time::{Duration, SystemTime};

use conformance::case::Verdict;
use serde_json::{Value, json};

use crate::common::{Fault, HttpResponse, Scenario, run, sio};

// ---------------------------------------------------------------------------
// The proxy itself
// ---------------------------------------------------------------------------

/// Without a fault the proxy is transparent: WebSocket, long-polling, the
/// polling→WebSocket upgrade and the REST driver all pass through it, and
/// every section passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault_passes() {
    let o = run(Scenario::new("none", Fault::none(), &[])).await;
    o.assert_conformant();
    for section in [
        "connection",
        "rooms",
        "participants",
        "prizes",
        "winners",
        "quiz",
        "notifications",
        "presence",
        "apps",
        "errors",
        "rules",
    ] {
        assert!(
            o.report
                .cases
                .iter()
                .any(|c| c.id.starts_with(&format!("{section}."))),
            "section {section} ran"
        );
    }
    o.assert_pass(&[
        "connection.polling",
        "connection.polling_upgrade",
        "connection.websocket",
    ]);
}

// ---------------------------------------------------------------------------
// Payload drift
// ---------------------------------------------------------------------------

/// prize:created without `prize.quantityRemaining`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_field() {
    let f = sio::on_event("prize:created", |p| {
        if let Some(prize) = p["prize"].as_object_mut() {
            prize.remove("quantityRemaining");
        }
    });
    let o = run(Scenario::new("missing quantityRemaining", f, &["prizes.*"])).await;
    o.assert_caught(&["prizes.created.payload"]);
    o.assert_pass(&["prizes.deleted.payload"]);
}

/// prize:updated gives `quantity` as a string (`"3"` for `3`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type() {
    let f = sio::on_event("prize:updated", |p| {
        sio::each_field(p, "quantity", &|q| {
            if let Some(n) = q.as_u64() {
                *q = json!(n.to_string());
            }
        });
    });
    let o = run(Scenario::new("quantity as string", f, &["prizes.*"])).await;
    o.assert_caught(&["prizes.updated.payload"]);
    o.assert_pass(&["prizes.created.payload", "prizes.deleted.payload"]);
}

/// `room:updated` arrives as `room:update`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_event() {
    let f = sio::rename_event("room:updated", "room:update");
    let o = run(Scenario::new("room:updated renamed", f, &["rooms.*"]).flags(&["--timeout", "3"]))
        .await;
    o.assert_caught(&["rooms.updated.payload", "rooms.namespace.events"]);
    o.assert_pass(&[
        "rooms.subscribe.ack",
        "rooms.unsubscribed.payload",
        "rooms.deleted.payload",
    ]);
}

/// winner:selected is never delivered (the draw itself works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_event() {
    let f = sio::drop_event("winner:selected");
    let o =
        run(Scenario::new("winner:selected dropped", f, &["winners.*"]).flags(&["--timeout", "3"]))
            .await;
    o.assert_caught(&["winners.selected.payload"]);
    // The winner's notification travels separately and still arrives.
    o.assert_pass(&["winners.selected.notification"]);
}

/// Every `timestamp` becomes epoch milliseconds (a number) instead of an
/// ISO-8601 string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_iso_timestamp() {
    let f = sio::events(|_, args| {
        for a in args {
            sio::each_field(a, "timestamp", &|t| {
                if let Some(at) = t.as_str().and_then(protocol::timestamp::parse_utc) {
                    let ms = at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis();
                    *t = json!(ms as u64);
                }
            });
        }
        true
    });
    let o = run(Scenario::new(
        "epoch-ms timestamp",
        f,
        &[
            "rules.timestamps.*",
            "rooms.subscribed.payload",
            "connection.polling",
            "connection.auth.*",
        ],
    ))
    .await;
    // connection.polling: the rewrite reaches long-polling bodies too.
    o.assert_caught(&[
        "rules.timestamps.iso_recent",
        "rooms.subscribed.payload",
        "connection.polling",
    ]);
    o.assert_section_passes(&["connection.auth.*"]);
}

/// Every `timestamp` is an hour old: valid ISO-8601, outside the 5-minute
/// window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_timestamp() {
    let f = sio::events(|_, args| {
        for a in args {
            sio::each_field(a, "timestamp", &|t| {
                if let Some(at) = t.as_str().and_then(protocol::timestamp::parse_utc) {
                    *t = json!(protocol::timestamp::format(at - Duration::from_secs(3600)));
                }
            });
        }
        true
    });
    let o = run(Scenario::new(
        "timestamp 1 h old",
        f,
        &[
            "rules.timestamps.*",
            "rooms.unsubscribed.payload",
            "connection.auth.*",
        ],
    ))
    .await;
    o.assert_caught(&["rules.timestamps.iso_recent", "rooms.unsubscribed.payload"]);
    o.assert_section_passes(&["connection.auth.*"]);
}

/// presence:user_offline is never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_offline_dropped() {
    let f = sio::drop_event("presence:user_offline");
    let o =
        run(Scenario::new("user_offline dropped", f, &["presence.*"]).flags(&["--timeout", "3"]))
            .await;
    o.assert_caught(&["presence.user_offline.payload"]);
    o.assert_pass(&["presence.user_online.payload", "presence.get_online.ack"]);
}

/// notification:received says `read: true` for a new notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_read_flag() {
    let f = sio::on_event("notification:received", |p| p["read"] = json!(true));
    let o = run(Scenario::new(
        "notification read:true",
        f,
        &["notifications.*"],
    ))
    .await;
    o.assert_caught(&["notifications.received.payload"]);
    o.assert_pass(&["notifications.mark_read.other_user"]);
}

/// An application event's data is altered on the way: numbers become
/// strings (as a gateway that re-encodes JSON might do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_event_data_altered() {
    fn stringify_numbers(v: &mut Value) {
        match v {
            Value::Number(n) => *v = json!(n.to_string()),
            Value::Array(a) => a.iter_mut().for_each(stringify_numbers),
            Value::Object(m) => m.values_mut().for_each(stringify_numbers),
            _ => {}
        }
    }
    // Application events carry `{eventId, appId, roomId, timestamp}` as
    // their second argument (protocol notes N6).
    let f = sio::events(|_, args| {
        if args.get(1).is_some_and(|meta| meta.get("appId").is_some())
            && let Some(data) = args.first_mut()
        {
            stringify_numbers(data);
        }
        true
    });
    let o = run(Scenario::new("app data altered", f, &["apps.*"])).await;
    o.assert_caught(&["apps.custom.delivered"]);
    o.assert_pass(&["apps.permission.realtime_publish", "apps.event_prefix"]);
}

// ---------------------------------------------------------------------------
// Acks and errors
// ---------------------------------------------------------------------------

/// The room:subscribe ack says `data` where the section says `room`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ack_shape() {
    let f = sio::on_ack(|ack| {
        if let Some(obj) = ack.as_object_mut()
            && let Some(room) = obj.remove("room")
        {
            obj.insert("data".into(), room);
        }
    });
    let o = run(Scenario::new(
        "subscribe ack room->data",
        f,
        &["rooms.subscribe.ack", "connection.auth.*"],
    ))
    .await;
    o.assert_caught(&["rooms.subscribe.ack"]);
    o.assert_section_passes(&["connection.auth.*"]);
}

/// Failed acks say PERMISSION_DENIED where the room does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_error_code_in_ack() {
    let f = sio::on_ack(|ack| {
        if ack.pointer("/error/code") == Some(&json!("ROOM_NOT_FOUND")) {
            ack["error"]["code"] = json!("PERMISSION_DENIED");
        }
    });
    let o = run(Scenario::new(
        "ROOM_NOT_FOUND->PERMISSION_DENIED",
        f,
        &["errors.*"],
    ))
    .await;
    o.assert_caught(&["errors.room_not_found.ack"]);
    // The `error` event form is untouched.
    o.assert_pass(&[
        "errors.room_not_found.event",
        "errors.permission_denied.ack",
    ]);
}

/// connect_error says `Invalid token` instead of
/// `Authentication failed: Invalid token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_connect_error_message() {
    let f = sio::on_connect_error(|d| {
        if d["message"] == json!("Authentication failed: Invalid token") {
            d["message"] = json!("Invalid token");
        }
    });
    let o = run(Scenario::new(
        "connect_error message",
        f,
        &["connection.*", "errors.authentication_failed.connect"],
    ))
    .await;
    o.assert_caught(&[
        "connection.auth.invalid_token",
        "errors.authentication_failed.connect",
    ]);
    o.assert_pass(&[
        "connection.websocket",
        "connection.polling",
        "connection.auth.expired_token",
        "connection.auth.missing_token",
    ]);
}

/// The quiz ranks the second correct answer 1 (in its ack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_quiz_rank() {
    let f = sio::on_ack(|ack| {
        if ack.get("rank") == Some(&json!(2)) {
            ack["rank"] = json!(1);
        }
    });
    let o = run(Scenario::new("quiz rank 2->1", f, &["quiz.*"])).await;
    o.assert_caught(&["quiz.ranking"]);
    o.assert_pass(&["quiz.answer_submit.ack", "quiz.answer_result.payload"]);
}

// ---------------------------------------------------------------------------
// Rules enforced by the server
// ---------------------------------------------------------------------------

/// The client rate limit is not enforced (server switch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_not_enforced() {
    let s = Scenario::new(
        "client rate limit off",
        Fault::none(),
        &[
            "errors.rate_limit_exceeded.*",
            "rules.client_rate.*",
            "rules.app_rate.room_per_second",
        ],
    )
    .config(|c| c.client_events_per_minute = 100_000)
    .flags(&["--timeout", "3"]);
    let o = run(s).await;
    o.assert_caught(&[
        "errors.rate_limit_exceeded.ack",
        "errors.rate_limit_exceeded.event",
        "rules.client_rate.per_connection",
    ]);
    // Application limits are separate and still on.
    o.assert_pass(&["rules.app_rate.room_per_second"]);
}

/// Private rooms are not private: the REST request that creates the
/// runner's private room is rewritten to `visibility: public`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_not_enforced() {
    let f = Fault::request(|req| {
        if req.method == "POST"
            && req.path() == "/api/rooms"
            && let Ok(mut body) = serde_json::from_slice::<Value>(&req.body)
            && body["visibility"] == json!("private")
        {
            body["visibility"] = json!("public");
            req.body = body.to_string().into_bytes();
        }
        None
    });
    let o = run(Scenario::new(
        "private room made public",
        f,
        &[
            "errors.permission_denied.*",
            "errors.room_not_found.*",
            "rules.room_authorization.*",
        ],
    )
    .flags(&["--timeout", "3"]))
    .await;
    o.assert_caught(&[
        "errors.permission_denied.ack",
        "errors.permission_denied.event",
        "rules.room_authorization.private",
    ]);
    o.assert_pass(&["errors.room_not_found.ack", "errors.room_not_found.event"]);
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

/// Long-polling broken behind a load balancer: every request of a polling
/// session (carrying `sid`) goes unanswered, as when a proxy buffers
/// long-poll responses. The handshake still works, so the target looks
/// reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_fallback_broken() {
    let f =
        Fault::stall(|req| req.query("transport") == Some("polling") && req.query("sid").is_some());
    let o =
        run(Scenario::new("polling unanswered", f, &["connection.*"]).flags(&["--timeout", "2"]))
            .await;
    o.assert_caught(&["connection.polling", "connection.polling_upgrade"]);
    o.assert_pass(&["connection.websocket", "connection.auth.invalid_token"]);
}

/// The same breakage answered with HTTP 400 (`Session ID unknown`, as with
/// missing sticky sessions): the polling cases fail, the run exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_answered_400() {
    let f = Fault::request(|req| {
        (req.query("transport") == Some("polling") && req.query("sid").is_some()).then(|| {
            HttpResponse::new(
                400,
                "application/json",
                r#"{"code":1,"message":"Session ID unknown"}"#,
            )
        })
    });
    let o = run(Scenario::new("polling 400", f, &["connection.*"])).await;
    o.assert_caught(&["connection.polling"]);
    o.assert_pass(&["connection.websocket"]);
}

// ---------------------------------------------------------------------------
// Strictness
// ---------------------------------------------------------------------------

fn extra_field() -> Fault {
    sio::events(|_, args| {
        if let Some(Value::Object(p)) = args.first_mut() {
            p.insert("debug".into(), json!(1));
        }
        true
    })
}

/// `"debug": 1` in every event payload is allowed: the run passes with
/// non-strict findings; with --strict the same run fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_field_strict_only() {
    let o = run(Scenario::new("extra field", extra_field(), &["rooms.*"])).await;
    o.assert_conformant();
    assert!(
        o.report.summary.non_strict > 0,
        "extra fields must be noted"
    );
    assert_eq!(o.verdict("rooms.updated.payload"), Verdict::NonStrict);

    let o = run(
        Scenario::new("extra field --strict", extra_field(), &["rooms.*"]).flags(&["--strict"]),
    )
    .await;
    o.assert_caught(&["rooms.updated.payload"]);
    // Acks are untouched: their case stays clean under --strict.
    o.assert_pass(&["rooms.unsubscribe.ack"]);
}

// ---------------------------------------------------------------------------
// Levels: a target that follows the protocol text, not our decisions
// ---------------------------------------------------------------------------

/// What the text shows where our decisions say more: the `error` event
/// names the failed event in `details.action` only (not N9's
/// `details.event`), every authentication refusal is the text's one
/// message `Authentication failed: Invalid token` (not N10's reasons), and
/// the `presence:get_online` ack is the section's `{roomId, users, count}`
/// without N2's `success`.
fn text_not_decisions() -> Fault {
    sio::all_down(vec![
        sio::on_event("error", |p| {
            if let Some(d) = p["details"].as_object_mut() {
                d.remove("event");
            }
        }),
        sio::on_connect_error(|d| {
            let auth = d["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Authentication failed: "));
            if auth {
                d["message"] = json!("Authentication failed: Invalid token");
            }
        }),
        sio::on_ack(|ack| {
            if ack.get("users").is_some()
                && let Some(o) = ack.as_object_mut()
            {
                o.remove("success");
            }
        }),
    ])
}

const LEVEL_CASES: &[&str] = &["errors.*", "connection.auth.*", "presence.get_online.ack"];

/// At `--level spec` the cases that rest on N9, N10 and N2 deviate (exit
/// 0), in the text, JSON and JUnit outputs; at `--level reference` they
/// fail (exit 1), naming the decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_deviate_at_spec_level_and_fail_at_reference_level() {
    let dir = tempfile::tempdir().unwrap();
    // Scenario flags live as long as the test.
    let junit_flags = |name: &str| -> (&'static str, &'static [&'static str]) {
        let path: &'static str = Box::leak(
            dir.path()
                .join(name)
                .to_str()
                .unwrap()
                .to_owned()
                .into_boxed_str(),
        );
        (path, Box::leak(Box::new(["--junit", path])))
    };
    let (junit, flags) = junit_flags("spec.xml");
    let (junit_ref, flags_ref) = junit_flags("reference.xml");
    let deviating = [
        ("errors.permission_denied.event", "N9"),
        ("errors.room_not_found.event", "N9"),
        ("errors.invalid_payload.event", "N9"),
        ("connection.auth.expired_token", "N10"),
        ("connection.auth.unknown_user", "N10"),
        ("presence.get_online.ack", "N2"),
    ];

    let spec = run(Scenario::new(
        "the text, not our decisions (spec)",
        text_not_decisions(),
        LEVEL_CASES,
    )
    .level("spec")
    .flags(flags))
    .await;
    for (id, decision) in deviating {
        spec.assert_deviated(&[id], decision);
    }
    // The text's own requirements still hold and pass.
    spec.assert_pass(&[
        "connection.auth.invalid_token",
        "errors.permission_denied.ack",
    ]);
    assert_eq!(spec.report.summary.failed, 0);
    assert!(spec.report.summary.deviations >= deviating.len());
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains(r#"<property name="deviation" value="N9: "#)
            && xml.contains("DEVIATION: deviates from reference decision N10"),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");

    let reference = run(Scenario::new(
        "the text, not our decisions (reference)",
        text_not_decisions(),
        LEVEL_CASES,
    )
    .level("reference")
    .flags(flags_ref))
    .await;
    let xml = std::fs::read_to_string(junit_ref).unwrap();
    assert!(xml.contains(r#"<failure message="[N10] "#), "{xml}");
    let ids: Vec<&str> = deviating.iter().map(|(id, _)| *id).collect();
    reference.assert_caught(&ids);
    for (id, decision) in deviating {
        let c = reference.report.cases.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.decision.as_deref(), Some(decision), "{id}: {c:?}");
    }
    reference.assert_pass(&["connection.auth.invalid_token"]);
}
