//! The event catalog: one [`EventSpec`] per event of the protocol.
//!
//! The conformance runner walks this table, the server's tests check every
//! entry, and `docs/protocol.md` lists the same rows (a test compares them).

use serde_json::Value;

use crate::event as ev;
use crate::payload::*;
use crate::schema::root;

/// Who sends the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    /// The arrow used in the docs: `C→S` or `S→C`.
    pub const fn arrow(self) -> &'static str {
        match self {
            Direction::ClientToServer => "C→S",
            Direction::ServerToClient => "S→C",
        }
    }
}

/// Which namespaces carry the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    /// The default namespace `/` only.
    Root,
    /// `/` (for sockets subscribed to the room) and `/rooms/:roomId`.
    Both,
}

impl NamespaceKind {
    /// As the docs write it.
    pub const fn label(self) -> &'static str {
        match self {
            Root => "/",
            Both => "/ and /rooms/:roomId",
        }
    }
}

/// What a client event's acknowledgement looks like.
#[derive(Debug, Clone, Copy)]
pub enum AckShape {
    /// The event takes no ack (server events).
    None,
    /// The client may ask for an ack; the protocol shows none, the
    /// generic rule gives `{success, data}`.
    Optional(fn() -> Value),
    /// The protocol shows the ack; clients are expected to ask for it.
    Required(fn() -> Value),
}

impl AckShape {
    /// The success schema, if any.
    pub fn success_schema(&self) -> Option<Value> {
        match self {
            AckShape::None => None,
            AckShape::Optional(f) | AckShape::Required(f) => Some(f()),
        }
    }

    /// As the docs write it: `none`, `optional` or `required`.
    pub const fn label(&self) -> &'static str {
        match self {
            AckShape::None => "none",
            AckShape::Optional(_) => "optional",
            AckShape::Required(_) => "required",
        }
    }
}

/// One event of the protocol.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    /// The wire name, e.g. `room:subscribe`.
    pub name: &'static str,
    /// Stable id of the protocol section, e.g. `rooms.subscribe`; the
    /// conformance runner builds its case ids from it.
    pub section: &'static str,
    pub direction: Direction,
    pub namespaces: NamespaceKind,
    /// One line for the docs and `conformance list`.
    pub summary: &'static str,
    /// JSON Schema of the (first) argument.
    pub payload: fn() -> Value,
    pub ack: AckShape,
}

impl EventSpec {
    /// The event's entry, by wire name. Application events (`app:x`) are
    /// not matched; use [`APP_EVENT_SPEC`] for them.
    pub fn get(name: &str) -> Option<&'static EventSpec> {
        CATALOG.iter().find(|e| e.name == name)
    }
}

fn any_value() -> Value {
    crate::schema::with_draft(serde_json::json!({
        "title": "Application data",
        "description": "Any JSON value, exactly as the application sent it."
    }))
}

const fn c2s(
    name: &'static str,
    section: &'static str,
    namespaces: NamespaceKind,
    summary: &'static str,
    payload: fn() -> Value,
    ack: AckShape,
) -> EventSpec {
    EventSpec {
        name,
        section,
        direction: Direction::ClientToServer,
        namespaces,
        summary,
        payload,
        ack,
    }
}

const fn s2c(
    name: &'static str,
    section: &'static str,
    namespaces: NamespaceKind,
    summary: &'static str,
    payload: fn() -> Value,
) -> EventSpec {
    EventSpec {
        name,
        section,
        direction: Direction::ServerToClient,
        namespaces,
        summary,
        payload,
        ack: AckShape::None,
    }
}

use NamespaceKind::{Both, Root};

/// Application events: `{appId}:*`, published over REST, delivered with the
/// app's data as the first argument and [`AppEventMeta`] as the second.
pub const APP_EVENT_SPEC: EventSpec = s2c(
    ev::APP_EVENT,
    "apps.custom",
    Both,
    "Custom application event, published over REST, data as sent by the app",
    any_value,
);

/// Every event of the protocol.
pub const CATALOG: &[EventSpec] = &[
    c2s(
        ev::ROOM_SUBSCRIBE,
        "rooms.subscribe",
        Both,
        "Subscribe to a room's events",
        root::<RoomRef>,
        AckShape::Required(root::<SubscribeAck>),
    ),
    s2c(
        ev::ROOM_SUBSCRIBED,
        "rooms.subscribed",
        Both,
        "Confirms a subscription to the subscribing socket",
        root::<RoomSubscription>,
    ),
    c2s(
        ev::ROOM_UNSUBSCRIBE,
        "rooms.unsubscribe",
        Both,
        "Stop receiving a room's events",
        root::<RoomRef>,
        AckShape::Optional(root::<UnsubscribeAck>),
    ),
    s2c(
        ev::ROOM_UNSUBSCRIBED,
        "rooms.unsubscribed",
        Both,
        "Confirms an unsubscription to the socket",
        root::<RoomSubscription>,
    ),
    s2c(
        ev::ROOM_UPDATED,
        "rooms.updated",
        Both,
        "A room's fields changed",
        root::<RoomUpdated>,
    ),
    s2c(
        ev::ROOM_STATUS_CHANGED,
        "rooms.status_changed",
        Both,
        "A room's status changed",
        root::<RoomStatusChanged>,
    ),
    s2c(
        ev::ROOM_DELETED,
        "rooms.deleted",
        Both,
        "A room was deleted",
        root::<RoomDeleted>,
    ),
    s2c(
        ev::PARTICIPANT_JOINED,
        "participants.joined",
        Both,
        "A participant joined the room",
        root::<ParticipantJoined>,
    ),
    s2c(
        ev::PARTICIPANT_LEFT,
        "participants.left",
        Both,
        "A participant left the room",
        root::<ParticipantLeft>,
    ),
    s2c(
        ev::PARTICIPANT_UPDATED,
        "participants.updated",
        Both,
        "A participant's role changed",
        root::<ParticipantUpdated>,
    ),
    s2c(
        ev::PRIZE_CREATED,
        "prizes.created",
        Both,
        "A prize was created",
        root::<PrizeCreated>,
    ),
    s2c(
        ev::PRIZE_UPDATED,
        "prizes.updated",
        Both,
        "A prize changed (including quantityRemaining after a draw)",
        root::<PrizeUpdated>,
    ),
    s2c(
        ev::PRIZE_DELETED,
        "prizes.deleted",
        Both,
        "A prize was deleted",
        root::<PrizeDeleted>,
    ),
    s2c(
        ev::WINNER_SELECTED,
        "winners.selected",
        Both,
        "A winner was drawn for a prize",
        root::<WinnerSelected>,
    ),
    s2c(
        ev::WINNER_REMOVED,
        "winners.removed",
        Both,
        "A winner was removed",
        root::<WinnerRemoved>,
    ),
    s2c(
        ev::QUIZ_QUESTION_PUBLISHED,
        "quiz.question_published",
        Both,
        "A quiz question opened",
        root::<QuestionPublished>,
    ),
    c2s(
        ev::QUIZ_ANSWER_SUBMIT,
        "quiz.answer_submit",
        Both,
        "Answer the open question; the ack says correct, responseTime, rank",
        root::<AnswerSubmit>,
        AckShape::Required(root::<AnswerAck>),
    ),
    s2c(
        ev::QUIZ_ANSWER_RESULT,
        "quiz.answer_result",
        Both,
        "An answer's result, broadcast to the room",
        root::<AnswerResult>,
    ),
    s2c(
        ev::NOTIFICATION_RECEIVED,
        "notifications.received",
        Root,
        "A notification for this user",
        root::<NotificationReceived>,
    ),
    c2s(
        ev::NOTIFICATION_MARK_READ,
        "notifications.mark_read",
        Root,
        "Mark one of the user's notifications read",
        root::<MarkRead>,
        AckShape::Required(root::<MarkReadAck>),
    ),
    s2c(
        ev::PRESENCE_USER_ONLINE,
        "presence.user_online",
        Both,
        "A user's first socket subscribed to the room",
        root::<UserOnline>,
    ),
    s2c(
        ev::PRESENCE_USER_OFFLINE,
        "presence.user_offline",
        Both,
        "A user's last socket left the room",
        root::<UserOffline>,
    ),
    c2s(
        ev::PRESENCE_GET_ONLINE,
        "presence.get_online",
        Both,
        "List the users online in a room",
        root::<RoomRef>,
        AckShape::Required(root::<PresenceListAck>),
    ),
    s2c(
        ev::ERROR,
        "errors.event",
        Both,
        "A failed client event that asked for no ack",
        root::<ErrorEvent>,
    ),
    s2c(
        ev::TOKEN_EXPIRED,
        "security.token_expired",
        Both,
        "The connection's token expired; refresh and reconnect",
        root::<TokenExpired>,
    ),
    APP_EVENT_SPEC,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sections_are_unique() {
        let mut names: Vec<_> = CATALOG.iter().map(|e| e.name).collect();
        let mut sections: Vec<_> = CATALOG.iter().map(|e| e.section).collect();
        names.sort_unstable();
        sections.sort_unstable();
        let n = names.len();
        names.dedup();
        sections.dedup();
        assert_eq!(names.len(), n, "duplicate event name");
        assert_eq!(sections.len(), n, "duplicate section id");
    }

    #[test]
    fn every_client_event_has_an_ack_and_no_server_event_does() {
        for e in CATALOG {
            match e.direction {
                Direction::ClientToServer => assert!(
                    e.ack.success_schema().is_some(),
                    "{} has no ack schema",
                    e.name
                ),
                Direction::ServerToClient => {
                    assert!(e.ack.success_schema().is_none(), "{} has an ack", e.name)
                }
            }
        }
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(
            EventSpec::get(ev::ROOM_SUBSCRIBE).unwrap().section,
            "rooms.subscribe"
        );
        assert!(EventSpec::get("lottery:draw_started").is_none());
    }
}
