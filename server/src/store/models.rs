//! Domain structs, their JSON form for the REST layer (camelCase, times as
//! ISO-8601 strings) and their conversions to the protocol's wire types.

use protocol::Visibility;
use protocol::payload;
use protocol::timestamp::from_unix_ms;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{StoreError, to_u32};

fn ser_ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&from_unix_ms(*ms))
}

fn ser_opt_ms<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&from_unix_ms(*ms)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------
// Users and tokens
// ---------------------------------------------------------------------------

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    pub avatar: Option<String>,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl User {
    pub(crate) fn from_row(row: &AnyRow) -> Result<User, StoreError> {
        Ok(User {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            avatar: row.try_get("avatar")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// As events show a user.
    pub fn to_info(&self) -> payload::UserInfo {
        payload::UserInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            avatar: self.avatar.clone(),
        }
    }
}

/// The stored state of an access token (by its `jti`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: String,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

/// What a revocation revoked: the access tokens (by `jti`) whose sockets
/// must go, and how many refresh tokens were deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    pub access: Vec<String>,
    pub refresh: u64,
}

/// What presenting a refresh token did ([`crate::store::Store::rotate_refresh_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was valid: it is now used, and the new pair of its family is
    /// recorded; `refresh_token` is the new secret.
    Rotated {
        user_id: String,
        refresh_token: String,
    },
    /// It had been used before, so someone else holds it too: its whole
    /// family is now revoked.
    Reused { user_id: String, revoked: Revoked },
    /// Unknown, expired, or of a revoked family.
    Refused,
}

// ---------------------------------------------------------------------------
// Rooms and participants
// ---------------------------------------------------------------------------

/// A room.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    pub name: String,
    /// `draft`, `active`, `paused` or `ended`.
    pub status: String,
    /// `public` or `private`.
    pub visibility: String,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_ms")]
    pub updated_at: i64,
}

impl Room {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Room, StoreError> {
        Ok(Room {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            visibility: row.try_get("visibility")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// As events show a room.
    pub fn to_info(&self) -> payload::RoomInfo {
        payload::RoomInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            status: self.status.clone(),
        }
    }

    pub fn is_private(&self) -> bool {
        self.visibility == Visibility::Private.as_str()
    }

    /// The `changes` of `room:updated`: every field that differs between
    /// `old` and `new`, with its new value, camelCase.
    pub fn changes(old: &Room, new: &Room) -> payload::Changes {
        let mut c = Map::new();
        if old.name != new.name {
            c.insert("name".into(), Value::from(new.name.clone()));
        }
        if old.status != new.status {
            c.insert("status".into(), Value::from(new.status.clone()));
        }
        if old.visibility != new.visibility {
            c.insert("visibility".into(), Value::from(new.visibility.clone()));
        }
        c
    }
}

/// A partial update of a room; `None` leaves a field as it is. JSON:
/// `{name?, status?, visibility?}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoomPatch {
    pub name: Option<String>,
    pub status: Option<String>,
    pub visibility: Option<String>,
}

/// A user's membership in a room.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub room_id: String,
    pub user_id: String,
    /// `participant` or `moderator`.
    pub role: String,
    #[serde(serialize_with = "ser_ms")]
    pub joined_at: i64,
}

impl Participant {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Participant, StoreError> {
        Ok(Participant {
            id: row.try_get("id")?,
            room_id: row.try_get("room_id")?,
            user_id: row.try_get("user_id")?,
            role: row.try_get("role")?,
            joined_at: row.try_get("joined_at")?,
        })
    }

    /// As `participant:joined` / `participant:updated` show it; `user` must
    /// be this participant's user.
    pub fn to_wire(&self, user: &User) -> payload::Participant {
        debug_assert_eq!(self.user_id, user.id);
        payload::Participant {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            role: self.role.clone(),
            user: user.to_info(),
            joined_at: Some(from_unix_ms(self.joined_at)),
        }
    }
}

/// A participant with their user, as listings show them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWithUser {
    #[serde(flatten)]
    pub participant: Participant,
    pub user: User,
}

impl ParticipantWithUser {
    pub fn to_wire(&self) -> payload::Participant {
        self.participant.to_wire(&self.user)
    }
}

// ---------------------------------------------------------------------------
// Prizes and winners
// ---------------------------------------------------------------------------

/// A prize of a room.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prize {
    pub id: String,
    pub room_id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub quantity: u32,
    /// `quantity` minus the number of winners of this prize.
    pub quantity_remaining: u32,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl Prize {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Prize, StoreError> {
        Ok(Prize {
            id: row.try_get("id")?,
            room_id: row.try_get("room_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            image_url: row.try_get("image_url")?,
            quantity: to_u32(row.try_get("quantity")?),
            quantity_remaining: to_u32(row.try_get("quantity_remaining")?),
            created_at: row.try_get("created_at")?,
        })
    }

    /// How many units have been won.
    pub fn won(&self) -> u32 {
        self.quantity.saturating_sub(self.quantity_remaining)
    }

    /// As events show a prize.
    pub fn to_wire(&self) -> payload::Prize {
        payload::Prize {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            image_url: self.image_url.clone(),
            quantity: self.quantity,
            quantity_remaining: self.quantity_remaining,
            created_at: from_unix_ms(self.created_at),
        }
    }

    /// The `changes` of `prize:updated`: every field that differs, with its
    /// new value, camelCase (`quantityRemaining` included).
    pub fn changes(old: &Prize, new: &Prize) -> payload::Changes {
        let mut c = Map::new();
        if old.name != new.name {
            c.insert("name".into(), Value::from(new.name.clone()));
        }
        if old.description != new.description {
            c.insert("description".into(), Value::from(new.description.clone()));
        }
        if old.image_url != new.image_url {
            c.insert("imageUrl".into(), Value::from(new.image_url.clone()));
        }
        if old.quantity != new.quantity {
            c.insert("quantity".into(), Value::from(new.quantity));
        }
        if old.quantity_remaining != new.quantity_remaining {
            c.insert(
                "quantityRemaining".into(),
                Value::from(new.quantity_remaining),
            );
        }
        c
    }
}

/// A new prize. JSON: `{name, description?, imageUrl?, quantity}`
/// (`description` and `imageUrl` default to "").
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPrize {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub image_url: String,
    pub quantity: u32,
}

/// A partial update of a prize; `None` leaves a field as it is. Changing
/// `quantity` changes `quantity_remaining` by the same amount. JSON:
/// `{name?, description?, imageUrl?, quantity?}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrizePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub quantity: Option<u32>,
}

/// One unit of a prize won by a participant (at most one per participant
/// per room).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Winner {
    pub id: String,
    pub room_id: String,
    pub prize_id: String,
    pub participant_id: String,
    /// The participant's user.
    pub user_id: String,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl Winner {
    /// From a row with the winner's columns plus `user_id`.
    pub(crate) fn from_row(row: &AnyRow) -> Result<Winner, StoreError> {
        Ok(Winner {
            id: row.try_get("id")?,
            room_id: row.try_get("room_id")?,
            prize_id: row.try_get("prize_id")?,
            participant_id: row.try_get("participant_id")?,
            user_id: row.try_get("user_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A winner with everything `winner:selected` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WinnerFull {
    pub winner: Winner,
    pub participant: Participant,
    pub user: User,
    /// The prize (for a draw: as it is after the draw).
    pub prize: Prize,
}

impl WinnerFull {
    /// The winning user's id (who gets `notification:received`).
    pub fn user_id(&self) -> &str {
        &self.user.id
    }

    /// As `winner:selected` shows it.
    pub fn to_wire(&self) -> payload::Winner {
        payload::Winner {
            id: self.winner.id.clone(),
            participant_id: self.participant.id.clone(),
            prize_id: self.prize.id.clone(),
            participant: payload::WinnerParticipant {
                id: self.participant.id.clone(),
                user: self.user.to_info(),
            },
            prize: payload::WinnerPrize {
                id: self.prize.id.clone(),
                name: self.prize.name.clone(),
                image_url: self.prize.image_url.clone(),
            },
            created_at: from_unix_ms(self.winner.created_at),
        }
    }
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

/// A notification for one user.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    /// e.g. `winner_selected`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    pub data: Map<String, Value>,
    pub read: bool,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl Notification {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Notification, StoreError> {
        let data: String = row.try_get("data_json")?;
        let data = serde_json::from_str(&data)
            .map_err(|e| StoreError::Internal(format!("stored notification data: {e}")))?;
        Ok(Notification {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            kind: row.try_get("kind")?,
            title: row.try_get("title")?,
            message: row.try_get("message")?,
            data,
            read: row.try_get::<i64, _>("is_read")? != 0,
            created_at: row.try_get("created_at")?,
        })
    }

    /// As `notification:received` shows it.
    pub fn to_received(
        &self,
        timestamp: String,
        event_id: Option<String>,
    ) -> payload::NotificationReceived {
        payload::NotificationReceived {
            id: self.id.clone(),
            kind: self.kind.clone(),
            title: self.title.clone(),
            message: self.message.clone(),
            data: self.data.clone(),
            read: self.read,
            created_at: from_unix_ms(self.created_at),
            timestamp,
            event_id,
        }
    }
}

// ---------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------

pub use protocol::event::{PERMISSION_REALTIME_PUBLISH, PERMISSION_ROOMS_MANAGE};

/// A registered application (its token is stored only as a digest).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl App {
    pub(crate) fn from_row(row: &AnyRow) -> Result<App, StoreError> {
        let permissions: String = row.try_get("permissions_json")?;
        let permissions = serde_json::from_str(&permissions)
            .map_err(|e| StoreError::Internal(format!("stored app permissions: {e}")))?;
        Ok(App {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            permissions,
            created_at: row.try_get("created_at")?,
        })
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

// ---------------------------------------------------------------------------
// Quiz
// ---------------------------------------------------------------------------

/// A quiz question, with its answer key (never send `answer` to clients;
/// the JSON form includes it for the operator / application that made it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub id: String,
    pub room_id: String,
    pub question: String,
    pub options: Vec<String>,
    pub answer: String,
    /// Seconds (`timeLimit` in JSON, as in `quiz:question_published`).
    pub time_limit: u32,
    pub question_number: u32,
    pub total_questions: u32,
    /// When it was published (`startTime`), Unix ms; `None` until then.
    #[serde(rename = "startTime", serialize_with = "ser_opt_ms")]
    pub start_time_ms: Option<i64>,
    #[serde(serialize_with = "ser_ms")]
    pub created_at: i64,
}

impl Question {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Question, StoreError> {
        let options: String = row.try_get("options_json")?;
        let options = serde_json::from_str(&options)
            .map_err(|e| StoreError::Internal(format!("stored question options: {e}")))?;
        Ok(Question {
            id: row.try_get("id")?,
            room_id: row.try_get("room_id")?,
            question: row.try_get("question")?,
            options,
            answer: row.try_get("answer")?,
            time_limit: to_u32(row.try_get("time_limit_secs")?),
            question_number: to_u32(row.try_get("question_number")?),
            total_questions: to_u32(row.try_get("total_questions")?),
            start_time_ms: row.try_get("start_time")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub fn is_published(&self) -> bool {
        self.start_time_ms.is_some()
    }

    /// As `quiz:question_published` shows it (without the answer key);
    /// `None` while unpublished.
    pub fn to_published(
        &self,
        timestamp: String,
        event_id: Option<String>,
    ) -> Option<payload::QuestionPublished> {
        Some(payload::QuestionPublished {
            question_id: self.id.clone(),
            question_number: self.question_number,
            total_questions: self.total_questions,
            question: self.question.clone(),
            options: self.options.clone(),
            time_limit: self.time_limit,
            start_time: from_unix_ms(self.start_time_ms?),
            room_id: self.room_id.clone(),
            timestamp,
            event_id,
        })
    }
}

/// A new question. `question_number` defaults to the number of the room's
/// questions + 1, `total_questions` to `question_number`. JSON:
/// `{question, options, answer, timeLimit, questionNumber?, totalQuestions?}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewQuestion {
    pub question: String,
    pub options: Vec<String>,
    /// Must be one of `options`.
    pub answer: String,
    /// Seconds.
    #[serde(rename = "timeLimit", alias = "timeLimitSecs")]
    pub time_limit_secs: u32,
    #[serde(default)]
    pub question_number: Option<u32>,
    #[serde(default)]
    pub total_questions: Option<u32>,
}

/// The result of recording an answer (N3).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerOutcome {
    pub correct: bool,
    /// Seconds from the question's start to receipt, millisecond precision.
    pub response_time_secs: f64,
    /// 1-based position among the correct answers; `None` when wrong.
    pub rank: Option<u32>,
}

/// What deleting a user removed (for the events that follow): the user as
/// it was and, per room they were in, their participant record with the
/// prizes they won there, each given back (winner and prize after).
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedUser {
    pub user: User,
    pub left: Vec<(Participant, Vec<(Winner, Prize)>)>,
}
