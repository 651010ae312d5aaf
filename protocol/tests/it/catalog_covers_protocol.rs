//! Every event name and error code the original protocol text mentions is
//! in the crate, and the crate invents no event of its own.
//!
//! The names are transcribed by hand from the protocol text (every
//! `socket.on(...)` and `socket.emit(...)`), so this test reads nothing
//! outside the repository. Socket.IO's reserved names (`connect`,
//! `connect_error`, `disconnect`, `reconnect`, `reconnect_error`,
//! `reconnect_failed`) are left out: they belong to the library. The
//! `action: "prize:create"` inside the protocol's error example is a detail
//! value, not an event.

use protocol::catalog::APP_EVENT_SPEC;
use protocol::event::{self as ev, is_app_event_of};
use protocol::{CATALOG, Direction, ErrorCode, EventSpec};

/// (name, who sends it) for every platform event the protocol shows.
const PROTOCOL_EVENTS: &[(&str, Direction)] = &[
    ("room:subscribe", Direction::ClientToServer),
    ("room:subscribed", Direction::ServerToClient),
    ("room:unsubscribe", Direction::ClientToServer),
    ("room:unsubscribed", Direction::ServerToClient),
    ("room:updated", Direction::ServerToClient),
    ("room:status_changed", Direction::ServerToClient),
    ("room:deleted", Direction::ServerToClient),
    ("participant:joined", Direction::ServerToClient),
    ("participant:left", Direction::ServerToClient),
    ("participant:updated", Direction::ServerToClient),
    ("prize:created", Direction::ServerToClient),
    ("prize:updated", Direction::ServerToClient),
    ("prize:deleted", Direction::ServerToClient),
    ("winner:selected", Direction::ServerToClient),
    ("winner:removed", Direction::ServerToClient),
    ("quiz:question_published", Direction::ServerToClient),
    ("quiz:answer_submit", Direction::ClientToServer),
    ("quiz:answer_result", Direction::ServerToClient),
    ("notification:received", Direction::ServerToClient),
    ("notification:mark_read", Direction::ClientToServer),
    ("presence:user_online", Direction::ServerToClient),
    ("presence:user_offline", Direction::ServerToClient),
    ("presence:get_online", Direction::ClientToServer),
    ("error", Direction::ServerToClient),
    ("token:expired", Direction::ServerToClient),
];

/// Socket.IO's own names, which the protocol text uses but the catalog must
/// not contain.
const SOCKET_IO_RESERVED: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
];

/// The protocol's example application event and the app that publishes it.
const APP_EXAMPLE: (&str, &str) = ("lottery", "lottery:draw_started");

/// The protocol's error table: (code, description).
const PROTOCOL_ERROR_CODES: &[(&str, &str)] = &[
    ("AUTHENTICATION_FAILED", "Invalid or expired token"),
    ("PERMISSION_DENIED", "Insufficient permissions"),
    ("ROOM_NOT_FOUND", "Room doesn't exist"),
    ("INVALID_PAYLOAD", "Invalid event payload"),
    ("RATE_LIMIT_EXCEEDED", "Too many events"),
    ("APP_PERMISSION_DENIED", "App lacks required permission"),
];

#[test]
fn every_protocol_event_is_in_the_catalog_with_its_direction() {
    let mut problems = Vec::new();
    for (name, direction) in PROTOCOL_EVENTS {
        match EventSpec::get(name) {
            None => problems.push(format!("{name}: not in CATALOG")),
            Some(spec) if spec.direction != *direction => problems.push(format!(
                "{name}: CATALOG says {}, the protocol {}",
                spec.direction.arrow(),
                direction.arrow()
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_catalog_invents_no_event() {
    for spec in CATALOG {
        if spec.name == ev::APP_EVENT {
            continue;
        }
        assert!(
            PROTOCOL_EVENTS.iter().any(|(n, _)| *n == spec.name),
            "CATALOG has {}, which the protocol does not mention",
            spec.name
        );
    }
    assert_eq!(CATALOG.len(), PROTOCOL_EVENTS.len() + 1);
}

#[test]
fn the_example_app_event_matches_the_app_event_entry() {
    let (app_id, name) = APP_EXAMPLE;
    assert!(
        EventSpec::get(name).is_none(),
        "{name} is an application's event, not a catalog entry"
    );
    assert!(is_app_event_of(app_id, name));
    assert!(!is_app_event_of("quiz", name));
    let entry = CATALOG
        .iter()
        .find(|e| e.name == ev::APP_EVENT)
        .expect("CATALOG has the {appId}:* entry");
    assert_eq!(entry.section, APP_EVENT_SPEC.section);
    assert_eq!(entry.direction, Direction::ServerToClient);
}

#[test]
fn socket_io_reserved_names_are_not_catalog_events() {
    for name in SOCKET_IO_RESERVED {
        assert!(EventSpec::get(name).is_none(), "{name} is in CATALOG");
    }
}

#[test]
fn every_protocol_error_code_is_known_with_its_description() {
    for (code, description) in PROTOCOL_ERROR_CODES {
        let parsed = ErrorCode::parse(code).unwrap_or_else(|| panic!("{code} is not an ErrorCode"));
        assert_eq!(parsed.description(), *description, "{code}");
    }
    assert_eq!(
        ErrorCode::ALL.map(|c| c.as_str()).to_vec(),
        PROTOCOL_ERROR_CODES
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>(),
        "ErrorCode::ALL must be the protocol's codes in the protocol's order"
    );
}
