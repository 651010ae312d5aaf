//! Duplicate deliveries: an event a connection received twice.
//!
//! Checked after every case on everything the case's connections received
//! (the transcript), so a server that sends a broadcast twice fails
//! wherever the suite waits for events, not only in one case that looks.
//! A repeat is a duplicate when it carries the `eventId` an earlier event
//! on the same connection carried (N6), or, without event ids, when the
//! same frame arrives twice in a row: two real events of the same kind
//! differ at least in their timestamp or come with something between them.
//! `error` events are left out: a burst of refused events legitimately
//! gets identical errors within one timestamp tick.

use std::collections::{BTreeMap, BTreeSet};

use protocol::event as ev;
use serde_json::Value;

use crate::case::WireLine;

/// The first event a connection received twice: `(connection, frame)`.
pub fn first_duplicate(transcript: &[WireLine]) -> Option<(String, String)> {
    #[derive(Default)]
    struct Seen<'a> {
        last: Option<&'a str>,
        ids: BTreeSet<String>,
    }
    let mut per_conn: BTreeMap<&str, Seen<'_>> = BTreeMap::new();
    let received = transcript
        .iter()
        .filter(|l| l.dir == "<" && l.conn != "http");
    for line in received {
        // Long-polling delivers several packets in one payload.
        for frame in line.text.split('\x1e') {
            let Some((name, first)) = event_of(frame) else {
                continue;
            };
            if name == ev::ERROR {
                continue;
            }
            let seen = per_conn.entry(line.conn.as_str()).or_default();
            let repeated = match first.get("eventId").and_then(Value::as_str) {
                Some(id) => !seen.ids.insert(id.to_owned()),
                None => seen.last == Some(frame),
            };
            if repeated {
                return Some((line.conn.clone(), frame.to_owned()));
            }
            seen.last = Some(frame);
        }
    }
    None
}

/// The name and first argument of a Socket.IO EVENT frame
/// (`42[...]`, `42/nsp,[...]`, with or without an ack id).
fn event_of(frame: &str) -> Option<(String, Value)> {
    let rest = frame.strip_prefix("42")?;
    let rest = match rest.strip_prefix('/') {
        Some(nsp) => &nsp[nsp.find(',')? + 1..],
        None => rest,
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let Value::Array(mut parts) = serde_json::from_str(rest).ok()? else {
        return None;
    };
    if parts.is_empty() {
        return None;
    }
    let first = if parts.len() > 1 {
        parts.swap_remove(1)
    } else {
        Value::Null
    };
    Some((parts[0].as_str()?.to_owned(), first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(conn: &str, dir: &'static str, text: &str) -> WireLine {
        WireLine {
            at_ms: 0,
            conn: conn.to_owned(),
            dir,
            text: text.to_owned(),
        }
    }

    #[test]
    fn the_same_frame_twice_in_a_row_is_a_duplicate() {
        let f = r#"42["room:updated",{"roomId":"r","timestamp":"2026-01-01T00:00:00Z"}]"#;
        let dup = first_duplicate(&[line("c1", "<", f), line("c1", "<", f)]);
        assert_eq!(dup, Some(("c1".to_owned(), f.to_owned())));
        // On two connections, sent, or with another event between: none.
        assert_eq!(
            first_duplicate(&[line("c1", "<", f), line("c2", "<", f)]),
            None
        );
        assert_eq!(
            first_duplicate(&[line("c1", ">", f), line("c1", ">", f)]),
            None
        );
        let other = r#"42["presence:user_offline",{"roomId":"r"}]"#;
        let apart = [
            line("c1", "<", f),
            line("c1", "<", other),
            line("c1", "<", f),
        ];
        assert_eq!(first_duplicate(&apart), None);
        // Identical error events (a refused burst) are not duplicates.
        let err = r#"42["error",{"code":"RATE_LIMIT_EXCEEDED"}]"#;
        assert_eq!(
            first_duplicate(&[line("c1", "<", err), line("c1", "<", err)]),
            None
        );
    }

    #[test]
    fn an_event_id_seen_before_is_a_duplicate_anywhere_on_the_connection() {
        let a = r#"42/rooms/r,["room:updated",{"eventId":"e1","n":1}]"#;
        let b = r#"42/rooms/r,["room:updated",{"eventId":"e2"}]"#;
        let a_again = r#"42/rooms/r,["room:updated",{"eventId":"e1","n":2}]"#;
        let polled = format!("{b}\x1e{a_again}");
        let dup = first_duplicate(&[line("c3", "<", a), line("c3", "<", &polled)]);
        assert_eq!(dup, Some(("c3".to_owned(), a_again.to_owned())));
        assert_eq!(
            first_duplicate(&[line("c3", "<", a), line("c3", "<", b)]),
            None
        );
        // Acks and other packets are no events.
        assert_eq!(event_of(r#"431[{"success":true}]"#), None);
        assert_eq!(
            event_of(r#"4212["x",1]"#),
            Some(("x".to_owned(), Value::from(1)))
        );
    }
}
