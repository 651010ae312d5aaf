//! Participants: `participant:joined`, `participant:updated`,
//! `participant:left`; users join public rooms as themselves (N1), and a
//! removed participant of a private room loses its subscriptions (N4).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::Role;
use protocol::event as ev;
use protocol::payload as wire;
use serde::Deserialize;
use serde_json::{Map, json};

use super::prizes::emit_winner_removed;
use super::{ApiError, ApiJson, Caller, error::ApiResult};
use crate::sockets;
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewParticipant {
    user_id: Option<String>,
    role: Option<String>,
}

/// Managers add anyone with any role; a user joins a public room as a
/// `participant`, as themselves.
pub(super) async fn add_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<NewParticipant>,
) -> ApiResult<(StatusCode, Json<store::Participant>)> {
    let (user_id, role) = match &caller {
        Caller::User(c) => {
            if body.user_id.as_deref().is_some_and(|u| u != c.sub) {
                return Err(ApiError::forbidden("Users may only add themselves"));
            }
            if body
                .role
                .as_deref()
                .is_some_and(|r| Role::parse(r) != Some(Role::Participant))
            {
                return Err(ApiError::forbidden("Users join as participant"));
            }
            let room = st
                .store
                .get_room(&room_id)
                .await?
                .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
            if room.is_private() {
                return Err(ApiError::forbidden(
                    "Private rooms are joined by invitation",
                ));
            }
            (c.sub.clone(), Role::Participant.as_str().to_owned())
        }
        _ => {
            caller.require_manager()?;
            let user_id = body
                .user_id
                .ok_or_else(|| ApiError::invalid("userId is required"))?;
            let role = body
                .role
                .unwrap_or_else(|| Role::Participant.as_str().to_owned());
            (user_id, role)
        }
    };
    let (participant, user) = st.store.add_participant(&room_id, &user_id, &role).await?;
    let payload = wire::ParticipantJoined {
        room_id: room_id.clone(),
        participant: participant.to_wire(&user),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_JOINED, &payload).await;
    Ok((StatusCode::CREATED, Json(participant)))
}

pub(super) async fn list_participants(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Vec<store::Participant>>> {
    caller.require_manager()?;
    Ok(Json(st.store.list_participants(&room_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleChange {
    role: String,
}

pub(super) async fn update_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, participant_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<store::Participant>> {
    caller.require_manager()?;
    let (old, new, user) = st
        .store
        .update_participant_role(&room_id, &participant_id, &body.role)
        .await?;
    let mut changes = Map::new();
    if old.role != new.role {
        changes.insert("role".into(), json!(new.role));
    }
    let mut participant = new.to_wire(&user);
    participant.joined_at = None;
    let payload = wire::ParticipantUpdated {
        room_id: room_id.clone(),
        participant_id: participant_id.clone(),
        changes,
        participant,
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_UPDATED, &payload)
        .await;
    Ok(Json(new))
}

pub(super) async fn remove_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, participant_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let (p, wins) = st
        .store
        .remove_participant_with_wins(&room_id, &participant_id)
        .await?;
    // Their wins are gone with them: each is announced as removed.
    for (winner, prize) in &wins {
        emit_winner_removed(&st, &room_id, winner, prize).await;
    }
    let payload = wire::ParticipantLeft {
        room_id: room_id.clone(),
        participant_id: p.id.clone(),
        user_id: p.user_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_LEFT, &payload).await;
    let private = st
        .store
        .get_room(&room_id)
        .await?
        .is_some_and(|r| r.is_private());
    if private {
        sockets::unsubscribe_user(&st, &p.user_id, &room_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
