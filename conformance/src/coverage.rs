//! The coverage matrix: every requirement of the protocol text with the
//! cases that check it and how strictly, so that what the suite leaves
//! unchecked is written down rather than unnoticed.
//!
//! The requirements come from the code: one per event of the catalog
//! (`protocol::catalog::CATALOG` and application events: a server event's
//! payload, a client event's ack), one per error code (`ErrorCode::ALL`),
//! and the text's rules and REST endpoints ([`RULES`]). Which case checks
//! which requirement is [`CHECKS`]; a requirement no case checks needs a
//! reason in [`UNCHECKED`]. `conformance list --json` prints the matrix;
//! the tests below keep it in step with the catalog, the cases and
//! docs/protocol.md.

use protocol::ErrorCode;
use protocol::catalog::{AckShape, CATALOG, Direction, EventSpec};
use serde::Serialize;

/// How much of a requirement a case checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strictness {
    /// The schema and every value the case can know.
    Exact,
    /// That it happens, with the schema, but not every value (or one
    /// instance of a general rule).
    Shape,
    /// Only what a reference decision adds (binding at `--level reference`).
    Decision,
}

/// One requirement of the text and what checks it.
#[derive(Debug, Clone, Serialize)]
pub struct Requirement {
    /// `payload:room:updated`, `ack:room:subscribe`, `code:ROOM_NOT_FOUND`,
    /// `rule:...`, `endpoint:...`.
    pub id: String,
    /// The text's section.
    pub section: String,
    pub checks: Vec<Check>,
    /// Why no case checks it (only when `checks` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<&'static str>,
}

/// A case checking a requirement.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub case: &'static str,
    pub strictness: Strictness,
}

/// The text's rules and endpoints that are no event or code: id, section.
pub const RULES: &[(&str, &str)] = &[
    ("rule:transport.websocket", "Connection: Transport"),
    (
        "rule:transport.polling",
        "Connection: Transport (fallback to HTTP long-polling)",
    ),
    ("rule:auth.token", "Authentication: JWT in the auth object"),
    ("rule:namespace.root", "Namespaces: `/`"),
    ("rule:namespace.room", "Namespaces: `/rooms/:roomId`"),
    (
        "rule:auth.room_namespace",
        "Authentication: the JWT checked on `/rooms/:roomId` too; room access before joining it",
    ),
    (
        "rule:auth.revocation",
        "Authentication: token not revoked (a revoked token no longer acts on a live connection)",
    ),
    (
        "rule:disconnect",
        "Connection Management: Graceful Disconnect",
    ),
    (
        "rule:reconnect",
        "Connection Management: Reconnection (re-subscribe)",
    ),
    (
        "rule:timestamp",
        "Security: Message Verification (timestamp within 5 minutes)",
    ),
    (
        "rule:event_ids",
        "Security: Message Verification (track processed event IDs)",
    ),
    (
        "rule:rate.client",
        "Security: Rate Limiting (client events 100/minute)",
    ),
    (
        "rule:rate.app",
        "Security: Rate Limiting (app events 600/minute)",
    ),
    (
        "rule:rate.app_room",
        "Custom Events: maximum 10 events per second per room",
    ),
    ("rule:room_authorization", "Security: Room Authorization"),
    (
        "rule:validate_inputs",
        "Server Implementation: validate all inputs (every client event)",
    ),
    (
        "rule:token_expiry",
        "Security: Token Refresh (token:expired)",
    ),
    (
        "rule:app.permission",
        "Custom Events: realtime:publish permission",
    ),
    (
        "rule:app.prefix",
        "Custom Events: event name starts with `{appId}:`",
    ),
    (
        "rule:notifications.root",
        "User Notifications: global namespace `/`",
    ),
    ("endpoint:POST /api/rooms/:roomId/events", "Custom Events"),
    ("endpoint:POST /api/auth/refresh", "Security: Token Refresh"),
];

use Strictness::{Decision as D, Exact as E, Shape as S};

/// Which cases check which requirement.
pub const CHECKS: &[(&str, &[(&str, Strictness)])] = &[
    (
        "ack:room:subscribe",
        &[
            ("rooms.subscribe.ack", E),
            ("rules.room_authorization.private", S),
        ],
    ),
    (
        "payload:room:subscribed",
        &[("rooms.subscribed.payload", E), ("connection.polling", S)],
    ),
    ("ack:room:unsubscribe", &[("rooms.unsubscribe.ack", E)]),
    (
        "payload:room:unsubscribed",
        &[
            ("rooms.unsubscribed.payload", E),
            ("rooms.unsubscribe.stops_events", S),
        ],
    ),
    (
        "payload:room:updated",
        &[
            ("rooms.updated.payload", E),
            ("rooms.namespace.events", E),
            ("rooms.status_changed.payload", D),
        ],
    ),
    (
        "payload:room:status_changed",
        &[("rooms.status_changed.payload", E)],
    ),
    (
        "payload:room:deleted",
        &[
            ("rooms.deleted.payload", E),
            ("rooms.deleted.namespace_closed", E),
        ],
    ),
    (
        "payload:participant:joined",
        &[("participants.joined.payload", E)],
    ),
    (
        "payload:participant:left",
        &[("participants.left.payload", E)],
    ),
    (
        "payload:participant:updated",
        &[("participants.updated.payload", E)],
    ),
    ("payload:prize:created", &[("prizes.created.payload", E)]),
    (
        "payload:prize:updated",
        &[
            ("prizes.updated.payload", E),
            ("winners.quantity_remaining", D),
            ("winners.removed.payload", D),
        ],
    ),
    ("payload:prize:deleted", &[("prizes.deleted.payload", E)]),
    (
        "payload:winner:selected",
        &[
            ("winners.selected.payload", E),
            ("winners.quantity_remaining", S),
        ],
    ),
    ("payload:winner:removed", &[("winners.removed.payload", E)]),
    (
        "payload:quiz:question_published",
        &[("quiz.question_published.payload", E)],
    ),
    (
        "ack:quiz:answer_submit",
        &[
            ("quiz.answer_submit.ack", E),
            ("quiz.ranking", D),
            ("quiz.answer_submit.invalid", S),
            ("quiz.answer_submit.unpublished", S),
            ("quiz.answer_submit.not_an_option", S),
            ("quiz.answer_submit.duplicate", D),
            ("quiz.answer_submit.late", D),
            ("quiz.answer_submit.non_participant", E),
        ],
    ),
    (
        "payload:quiz:answer_result",
        &[("quiz.answer_result.payload", E), ("quiz.ranking", S)],
    ),
    (
        "payload:notification:received",
        &[
            ("notifications.received.payload", E),
            ("winners.selected.notification", E),
        ],
    ),
    (
        "ack:notification:mark_read",
        &[
            ("notifications.mark_read.ack", E),
            ("notifications.mark_read.other_user", S),
        ],
    ),
    (
        "payload:presence:user_online",
        &[
            ("presence.user_online.payload", E),
            ("presence.online_once", D),
        ],
    ),
    (
        "payload:presence:user_offline",
        &[
            ("presence.user_offline.payload", E),
            ("presence.user_offline.unsubscribe", E),
            ("presence.online_once", S),
            ("connection.disconnect.graceful", S),
            ("connection.reconnect.resubscribe", S),
        ],
    ),
    (
        "ack:presence:get_online",
        &[
            ("presence.get_online.ack", E),
            ("connection.namespace.room", S),
        ],
    ),
    (
        "payload:error",
        &[
            ("errors.authentication_failed.event", E),
            ("errors.permission_denied.event", E),
            ("errors.room_not_found.event", E),
            ("errors.invalid_payload.event", E),
            ("errors.rate_limit_exceeded.event", E),
            ("rules.client_rate.over_limit_not_processed", E),
        ],
    ),
    ("payload:token:expired", &[("rules.token_expired.event", S)]),
    (
        "payload:{appId}:*",
        &[
            ("apps.custom.delivered", E),
            ("apps.custom.room_namespace", E),
        ],
    ),
    (
        "code:AUTHENTICATION_FAILED",
        &[
            ("errors.authentication_failed.connect", E),
            ("errors.authentication_failed.ack", E),
            ("errors.authentication_failed.event", E),
            ("rules.token_revoked.live", S),
        ],
    ),
    (
        "code:PERMISSION_DENIED",
        &[
            ("errors.permission_denied.ack", E),
            ("errors.permission_denied.event", E),
            ("errors.permission_denied.every_event", S),
        ],
    ),
    (
        "code:ROOM_NOT_FOUND",
        &[
            ("errors.room_not_found.ack", E),
            ("errors.room_not_found.event", E),
            ("errors.room_not_found.every_event", E),
            ("connection.namespace.room_not_found", S),
        ],
    ),
    (
        "code:INVALID_PAYLOAD",
        &[
            ("errors.invalid_payload.ack", E),
            ("errors.invalid_payload.event", E),
            ("errors.invalid_payload.every_event", E),
        ],
    ),
    (
        "code:RATE_LIMIT_EXCEEDED",
        &[
            ("errors.rate_limit_exceeded.ack", E),
            ("errors.rate_limit_exceeded.event", E),
        ],
    ),
    (
        "code:APP_PERMISSION_DENIED",
        &[
            ("errors.app_permission_denied.rest", E),
            ("apps.permission.realtime_publish", E),
        ],
    ),
    ("rule:transport.websocket", &[("connection.websocket", E)]),
    (
        "rule:transport.polling",
        &[("connection.polling", E), ("connection.polling_upgrade", E)],
    ),
    (
        "rule:auth.token",
        &[
            ("connection.auth.invalid_token", E),
            ("connection.auth.expired_token", S),
            ("connection.auth.revoked_token", S),
            ("connection.auth.unknown_user", S),
            ("connection.auth.missing_token", E),
        ],
    ),
    ("rule:namespace.root", &[("connection.namespace.root", E)]),
    (
        "rule:namespace.room",
        &[
            ("connection.namespace.room", E),
            ("connection.namespace.room_not_found", E),
            ("rooms.namespace.events", E),
        ],
    ),
    (
        "rule:auth.room_namespace",
        &[
            ("connection.namespace.room_auth.invalid_token", E),
            ("connection.namespace.room_auth.missing_token", E),
            ("connection.namespace.room_auth.expired_token", S),
            ("connection.namespace.room_auth.private", E),
        ],
    ),
    ("rule:auth.revocation", &[("rules.token_revoked.live", E)]),
    ("rule:disconnect", &[("connection.disconnect.graceful", E)]),
    ("rule:reconnect", &[("connection.reconnect.resubscribe", E)]),
    ("rule:timestamp", &[("rules.timestamps.iso_recent", E)]),
    ("rule:event_ids", &[("rules.event_ids.unique", D)]),
    (
        "rule:rate.client",
        &[
            ("rules.client_rate.per_connection", E),
            ("rules.client_rate.over_limit_not_processed", E),
        ],
    ),
    ("rule:rate.app", &[("rules.app_rate.app_per_minute", S)]),
    (
        "rule:rate.app_room",
        &[("rules.app_rate.room_per_second", S)],
    ),
    (
        "rule:room_authorization",
        &[
            ("rules.room_authorization.private", E),
            ("rooms.isolation", E),
            ("rooms.unsubscribe.stops_events", E),
            ("notifications.private", E),
            ("rooms.isolation.every_event", E),
            ("rules.room_authorization.removed", E),
            ("errors.permission_denied.every_event", S),
            ("connection.namespace.room_auth.private", E),
        ],
    ),
    (
        "rule:validate_inputs",
        &[
            ("errors.invalid_payload.every_event", E),
            ("errors.room_not_found.every_event", E),
        ],
    ),
    ("rule:token_expiry", &[("rules.token_expired.event", S)]),
    (
        "rule:app.permission",
        &[("apps.permission.realtime_publish", E)],
    ),
    ("rule:app.prefix", &[("apps.event_prefix", E)]),
    (
        "rule:notifications.root",
        &[("notifications.received.root_only", E)],
    ),
    (
        "endpoint:POST /api/rooms/:roomId/events",
        &[("apps.custom.delivered", E)],
    ),
    (
        "endpoint:POST /api/auth/refresh",
        &[("connection.auth.refresh", S)],
    ),
];

/// Requirements no case checks, and why.
pub const UNCHECKED: &[(&str, &str)] = &[];

/// The requirement ids and sections the code defines: the catalog's
/// events (payload or ack), the error codes, then [`RULES`].
fn requirements() -> Vec<(String, String)> {
    let app = protocol::catalog::APP_EVENT_SPEC;
    let events = CATALOG.iter().chain(std::iter::once(&app));
    let mut out: Vec<(String, String)> = events
        .filter_map(|e: &EventSpec| {
            let id = match (e.direction, e.ack) {
                (Direction::ServerToClient, _) => format!("payload:{}", e.name),
                (Direction::ClientToServer, AckShape::None) => return None,
                (Direction::ClientToServer, _) => format!("ack:{}", e.name),
            };
            Some((id, e.section.to_owned()))
        })
        .collect();
    out.extend(ErrorCode::ALL.iter().map(|c| {
        (
            format!("code:{}", c.as_str()),
            "Common Error Codes".to_owned(),
        )
    }));
    out.extend(
        RULES
            .iter()
            .map(|(id, s)| ((*id).to_owned(), (*s).to_owned())),
    );
    out
}

/// The matrix.
pub fn matrix() -> Vec<Requirement> {
    requirements()
        .into_iter()
        .map(|(id, section)| {
            let checks = CHECKS
                .iter()
                .filter(|(r, _)| *r == id)
                .flat_map(|(_, cs)| cs.iter())
                .map(|&(case, strictness)| Check { case, strictness })
                .collect();
            let unchecked = UNCHECKED
                .iter()
                .find(|(r, _)| *r == id)
                .map(|(_, why)| *why);
            Requirement {
                id,
                section,
                checks,
                unchecked,
            }
        })
        .collect()
}

/// `conformance list --json`: the cases and the matrix.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub cases: Vec<ListedCase>,
    pub coverage: Vec<Requirement>,
    /// Requirements, how many some case checks, how many none does.
    pub requirements: usize,
    pub covered: usize,
    pub unchecked: usize,
}

/// One case in [`Listing`].
#[derive(Debug, Serialize)]
pub struct ListedCase {
    pub id: &'static str,
    pub description: &'static str,
    pub requirement: &'static str,
    pub needs: Vec<&'static str>,
}

impl Listing {
    pub fn of(selected: &[&'static crate::case::Case]) -> Listing {
        let coverage = matrix();
        let covered = coverage.iter().filter(|r| !r.checks.is_empty()).count();
        Listing {
            cases: selected
                .iter()
                .map(|c| ListedCase {
                    id: c.id,
                    description: c.description,
                    requirement: c.requirement,
                    needs: c.needs.iter().map(|a| a.as_str()).collect(),
                })
                .collect(),
            requirements: coverage.len(),
            unchecked: coverage.len() - covered,
            covered,
            coverage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases;

    /// Every requirement is checked by a case or says why not (never
    /// both); every row names a requirement and a case that exist; every
    /// case checks something.
    #[test]
    fn the_matrix_is_in_step_with_the_catalog_and_the_cases() {
        let m = matrix();
        let ids: Vec<&str> = m.iter().map(|r| r.id.as_str()).collect();
        for r in &m {
            assert!(
                r.checks.is_empty() != r.unchecked.is_none(),
                "{}: checked by a case xor a written reason",
                r.id
            );
        }
        let cases: Vec<&str> = cases::all().iter().map(|c| c.id).collect();
        for (req, checks) in CHECKS {
            assert!(ids.contains(req), "CHECKS names no requirement {req}");
            for (case, _) in *checks {
                assert!(cases.contains(case), "{req}: no case {case}");
            }
        }
        for (req, _) in UNCHECKED {
            assert!(ids.contains(req), "UNCHECKED names no requirement {req}");
        }
        for case in &cases {
            assert!(
                CHECKS
                    .iter()
                    .any(|(_, cs)| cs.iter().any(|(c, _)| c == case)),
                "case {case} checks no requirement of the matrix"
            );
        }
        // docs/protocol.md documents every event and code the matrix has.
        let doc = include_str!("../../docs/protocol.md");
        for id in &ids {
            if let Some(name) = id.split_once(':').map(|(_, n)| n)
                && !id.starts_with("rule:")
                && !id.starts_with("endpoint:")
            {
                assert!(
                    doc.contains(&format!("`{name}`")),
                    "docs/protocol.md lacks `{name}`"
                );
            }
        }
        // The catalog's 25 events and application events, 6 codes.
        assert_eq!(ids.iter().filter(|i| i.starts_with("code:")).count(), 6);
        assert!(ids.contains(&"payload:{appId}:*") && ids.contains(&"ack:room:subscribe"));
    }
}
