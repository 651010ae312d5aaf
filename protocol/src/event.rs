//! Every event name of the protocol. Use these constants, never literals.

// Rooms.
pub const ROOM_SUBSCRIBE: &str = "room:subscribe";
pub const ROOM_SUBSCRIBED: &str = "room:subscribed";
pub const ROOM_UNSUBSCRIBE: &str = "room:unsubscribe";
pub const ROOM_UNSUBSCRIBED: &str = "room:unsubscribed";
pub const ROOM_UPDATED: &str = "room:updated";
pub const ROOM_STATUS_CHANGED: &str = "room:status_changed";
pub const ROOM_DELETED: &str = "room:deleted";

// Participants.
pub const PARTICIPANT_JOINED: &str = "participant:joined";
pub const PARTICIPANT_LEFT: &str = "participant:left";
pub const PARTICIPANT_UPDATED: &str = "participant:updated";

// Prizes and winners.
pub const PRIZE_CREATED: &str = "prize:created";
pub const PRIZE_UPDATED: &str = "prize:updated";
pub const PRIZE_DELETED: &str = "prize:deleted";
pub const WINNER_SELECTED: &str = "winner:selected";
pub const WINNER_REMOVED: &str = "winner:removed";

// Quiz.
pub const QUIZ_QUESTION_PUBLISHED: &str = "quiz:question_published";
pub const QUIZ_ANSWER_SUBMIT: &str = "quiz:answer_submit";
pub const QUIZ_ANSWER_RESULT: &str = "quiz:answer_result";

// Notifications.
pub const NOTIFICATION_RECEIVED: &str = "notification:received";
pub const NOTIFICATION_MARK_READ: &str = "notification:mark_read";

// Presence.
pub const PRESENCE_USER_ONLINE: &str = "presence:user_online";
pub const PRESENCE_USER_OFFLINE: &str = "presence:user_offline";
pub const PRESENCE_GET_ONLINE: &str = "presence:get_online";

// Errors and session.
pub const ERROR: &str = "error";
pub const TOKEN_EXPIRED: &str = "token:expired";

/// Pseudo-name of the catalog entry for application events: the real name
/// is `{appId}:{action}`, chosen by the application.
pub const APP_EVENT: &str = "{appId}:*";

/// Socket.IO's reserved names on the client side (not sent by the server as
/// events, but part of the connection protocol the docs describe).
pub const CONNECT: &str = "connect";
pub const CONNECT_ERROR: &str = "connect_error";
pub const DISCONNECT: &str = "disconnect";

/// The permission an application needs to publish custom events.
pub const PERMISSION_REALTIME_PUBLISH: &str = "realtime:publish";
/// The permission an application needs to manage rooms, prizes, draws and
/// quiz questions through the REST API.
pub const PERMISSION_ROOMS_MANAGE: &str = "rooms:manage";

/// Prefix of the room namespace: `/rooms/{roomId}`.
pub const ROOM_NAMESPACE_PREFIX: &str = "/rooms/";

/// The namespace of one room.
pub fn room_namespace(room_id: &str) -> String {
    format!("{ROOM_NAMESPACE_PREFIX}{room_id}")
}

/// The room id of a room namespace path, if it is one.
pub fn room_id_of_namespace(ns: &str) -> Option<&str> {
    ns.strip_prefix(ROOM_NAMESPACE_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Whether `event` is a valid application event name for `app_id`:
/// `{appId}:` followed by at least one character.
pub fn is_app_event_of(app_id: &str, event: &str) -> bool {
    event
        .strip_prefix(app_id)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|action| !action.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_namespace_round_trip() {
        assert_eq!(room_namespace("room_1"), "/rooms/room_1");
        assert_eq!(room_id_of_namespace("/rooms/room_1"), Some("room_1"));
        assert_eq!(room_id_of_namespace("/rooms/"), None);
        assert_eq!(room_id_of_namespace("/rooms/a/b"), None);
        assert_eq!(room_id_of_namespace("/"), None);
    }

    #[test]
    fn app_event_prefix() {
        assert!(is_app_event_of("lottery", "lottery:draw_started"));
        assert!(!is_app_event_of("lottery", "lottery:"));
        assert!(!is_app_event_of("lottery", "lotteryx:draw"));
        assert!(!is_app_event_of("lottery", "quiz:draw"));
        assert!(!is_app_event_of("lottery", "lottery"));
    }
}
