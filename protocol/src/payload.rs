//! Typed payloads of every event and ack, field for field as the protocol
//! shows them (camelCase on the wire).
//!
//! Where the reference server adds something the protocol does not show,
//! the field is optional and documented in `docs/protocol-notes.md`
//! (`eventId` for deduplication, `timestamp` on every server event).
//! Unknown fields are accepted when decoding, so a client built on these
//! types keeps working when a server adds fields.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ErrorCode;
use crate::domain::{Role, RoomStatus};

/// A JSON object of changed fields (`changes` in update events).
pub type Changes = Map<String, Value>;

/// `rank` is `null` for a wrong answer but never left out, so the schema
/// lists it as required (schemars leaves `Option` fields out of `required`,
/// and `#[schemars(required)]` would also forbid `null`).
fn rank_is_required(schema: &mut Schema) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    if !required.iter().any(|r| r == "rank") {
        required.push("rank".into());
    }
}

// ---------------------------------------------------------------------------
// Shared objects
// ---------------------------------------------------------------------------

/// A room as events show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub id: String,
    pub name: String,
    /// `draft`, `active`, `paused` or `ended`.
    #[schemars(extend("enum" = RoomStatus::ALL))]
    pub status: String,
}

/// A user as events show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// A participant of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub user_id: String,
    /// `participant` or `moderator`.
    #[schemars(extend("enum" = Role::ALL))]
    pub role: String,
    pub user: UserInfo,
    /// Shown in `participant:joined`; optional in `participant:updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<String>,
}

/// A prize of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prize {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub quantity: u32,
    pub quantity_remaining: u32,
    pub created_at: String,
}

/// The participant part of a winner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WinnerParticipant {
    pub id: String,
    pub user: UserInfo,
}

/// The prize part of a winner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WinnerPrize {
    pub id: String,
    pub name: String,
    pub image_url: String,
}

/// A winner of a prize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Winner {
    pub id: String,
    pub participant_id: String,
    pub prize_id: String,
    pub participant: WinnerParticipant,
    pub prize: WinnerPrize,
    pub created_at: String,
}

/// A user in the presence list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineUser {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    pub connected_at: String,
}

/// `error.details` and similar free-form objects.
pub type Details = Map<String, Value>;

// ---------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------

/// `room:subscribe`, `room:unsubscribe`, `presence:get_online`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomRef {
    pub room_id: String,
}

/// `quiz:answer_submit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerSubmit {
    pub question_id: String,
    pub answer: String,
    /// The client's clock, Unix milliseconds (`Date.now()`). Informational:
    /// the server measures `responseTime` on its own clock.
    pub timestamp: f64,
}

/// `notification:mark_read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkRead {
    pub notification_id: String,
}

// ---------------------------------------------------------------------------
// Acks
// ---------------------------------------------------------------------------

/// The error part of a failed ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// `{ "success": false, "error": { code, message } }`: every failed ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AckFailure {
    /// Always `false`.
    #[schemars(extend("const" = false))]
    pub success: bool,
    pub error: AckErrorBody,
}

impl AckFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AckFailure {
            success: false,
            error: AckErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

/// `room:subscribe` success: `room`, per the specific section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeAck {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub success: bool,
    pub room: RoomInfo,
}

/// The generic success ack: `{ success: true, data }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataAck<T> {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub success: bool,
    pub data: T,
}

/// `room:unsubscribe` success data.
pub type UnsubscribeAck = DataAck<RoomRef>;

/// `notification:mark_read` success data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadData {
    pub notification_id: String,
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub read: bool,
}

/// `notification:mark_read` success.
pub type MarkReadAck = DataAck<MarkReadData>;

/// `quiz:answer_submit` success, per the specific section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rank_is_required)]
pub struct AnswerAck {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub success: bool,
    pub correct: bool,
    /// Seconds from the question's `startTime` to the server receiving the
    /// answer.
    pub response_time: f64,
    /// 1-based position among the correct answers to this question so far;
    /// `null` for a wrong answer. Always present.
    #[schemars(extend("minimum" = 1))]
    pub rank: Option<u32>,
}

/// `presence:get_online` success: the specific section's fields plus the
/// generic `success`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceListAck {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub success: bool,
    pub room_id: String,
    pub users: Vec<OnlineUser>,
    pub count: u32,
}

// ---------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------

/// `room:subscribed` and `room:unsubscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomSubscription {
    pub room_id: String,
    pub timestamp: String,
}

/// `room:updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomUpdated {
    pub room_id: String,
    pub changes: Changes,
    pub room: RoomInfo,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `room:status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomStatusChanged {
    pub room_id: String,
    #[schemars(extend("enum" = RoomStatus::ALL))]
    pub old_status: String,
    #[schemars(extend("enum" = RoomStatus::ALL))]
    pub new_status: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `room:deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomDeleted {
    pub room_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `participant:joined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantJoined {
    pub room_id: String,
    pub participant: Participant,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `participant:left`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantLeft {
    pub room_id: String,
    pub participant_id: String,
    pub user_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `participant:updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantUpdated {
    pub room_id: String,
    pub participant_id: String,
    pub changes: Changes,
    pub participant: Participant,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `prize:created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrizeCreated {
    pub room_id: String,
    pub prize: Prize,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `prize:updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrizeUpdated {
    pub room_id: String,
    pub prize_id: String,
    pub changes: Changes,
    pub prize: Prize,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `prize:deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrizeDeleted {
    pub room_id: String,
    pub prize_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `winner:selected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WinnerSelected {
    pub room_id: String,
    pub winner: Winner,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `winner:removed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WinnerRemoved {
    pub room_id: String,
    pub winner_id: String,
    pub participant_id: String,
    pub prize_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `quiz:question_published`. The protocol's fields plus `roomId` and
/// `timestamp`; the answer key is never sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionPublished {
    pub question_id: String,
    pub question_number: u32,
    pub total_questions: u32,
    pub question: String,
    pub options: Vec<String>,
    /// Seconds.
    pub time_limit: u32,
    pub start_time: String,
    pub room_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The user part of `quiz:answer_result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerUser {
    pub id: String,
    pub name: String,
}

/// `quiz:answer_result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rank_is_required)]
pub struct AnswerResult {
    pub question_id: String,
    pub participant_id: String,
    pub user: AnswerUser,
    pub correct: bool,
    /// Seconds, as in the ack.
    pub response_time: f64,
    /// As in the ack: 1-based among the correct answers, `null` for a wrong
    /// one. Always present.
    #[schemars(extend("minimum" = 1))]
    pub rank: Option<u32>,
    /// The question's room. The reference server always sends it; the
    /// protocol's example does not show it, so it is optional when decoding
    /// (empty when absent) and left out when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub room_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `notification:received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationReceived {
    pub id: String,
    /// e.g. `winner_selected`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Map<String, Value>,
    pub read: bool,
    pub created_at: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `presence:user_online`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOnline {
    pub room_id: String,
    pub user_id: String,
    pub user: UserInfo,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `presence:user_offline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOffline {
    pub room_id: String,
    pub user_id: String,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent {
    pub code: ErrorCode,
    pub message: String,
    pub details: Details,
    pub timestamp: String,
}

/// `token:expired`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenExpired {
    pub timestamp: String,
    /// When the server closes the connection unless the client reconnects
    /// with a fresh token first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_at: Option<String>,
}

/// The second argument of every application event: the first argument is
/// the application's `data`, exactly as sent, so the metadata the platform
/// adds travels beside it (JS handlers that take one argument ignore it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppEventMeta {
    pub event_id: String,
    pub app_id: String,
    pub room_id: String,
    pub timestamp: String,
}

/// The `connect_error` data the client sees (`error.message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectErrorBody {
    pub message: String,
}

/// Wraps a success-ack payload type so tests can build one in a line.
pub fn ok_data<T>(data: T) -> DataAck<T> {
    DataAck {
        success: true,
        data,
    }
}
