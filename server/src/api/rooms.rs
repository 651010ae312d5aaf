//! Rooms: create, read, change (`room:status_changed`, `room:updated`; a
//! room turned private keeps only its participants' subscriptions, N4) and
//! delete (`room:deleted`, then the room's sockets are let go, N5).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::event as ev;
use protocol::payload as wire;
use protocol::{RoomStatus, Visibility};
use serde::Deserialize;

use super::{ApiJson, Caller, error::ApiResult};
use crate::access::authorize_room;
use crate::sockets;
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRoom {
    name: String,
    status: Option<String>,
    visibility: Option<String>,
}

pub(super) async fn create_room(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewRoom>,
) -> ApiResult<(StatusCode, Json<store::Room>)> {
    caller.require_manager()?;
    let room = st
        .store
        .create_room(
            &body.name,
            body.status
                .as_deref()
                .unwrap_or(RoomStatus::Active.as_str()),
            body.visibility
                .as_deref()
                .unwrap_or(Visibility::Public.as_str()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

pub(super) async fn get_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<Json<store::Room>> {
    let room = st
        .store
        .get_room(&room_id)
        .await?
        .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
    if let Caller::User(c) = &caller {
        authorize_room(&st, &room_id, &c.sub).await?;
    }
    Ok(Json(room))
}

pub(super) async fn update_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(patch): ApiJson<store::RoomPatch>,
) -> ApiResult<Json<store::Room>> {
    caller.require_manager()?;
    let (old, new) = st.store.update_room(&room_id, patch).await?;
    let changes = store::Room::changes(&old, &new);
    if old.status != new.status {
        let payload = wire::RoomStatusChanged {
            room_id: room_id.clone(),
            old_status: old.status.clone(),
            new_status: new.status.clone(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::ROOM_STATUS_CHANGED, &payload)
            .await;
    }
    if !changes.is_empty() {
        let payload = wire::RoomUpdated {
            room_id: room_id.clone(),
            changes,
            room: new.to_info(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::ROOM_UPDATED, &payload).await;
    }
    if !old.is_private() && new.is_private() {
        unsubscribe_outsiders(&st, &room_id).await;
    }
    Ok(Json(new))
}

/// A room turned private: every subscriber who is not a participant, on
/// every node, is unsubscribed (`room:unsubscribed`), as when a participant
/// is removed (N4). After `room:updated`, which tells them why. The
/// subscribers are the room's presence list.
async fn unsubscribe_outsiders(st: &AppState, room_id: &str) {
    // The change is made either way; a failure here is logged (the
    // outsiders keep their subscriptions until they resubscribe).
    let participants = match st.store.list_participants(room_id).await {
        Ok(list) => list
            .into_iter()
            .map(|p| p.user_id)
            .collect::<std::collections::HashSet<String>>(),
        Err(e) => {
            tracing::error!(error = %e, room_id, "cannot list the participants of a room turned private");
            return;
        }
    };
    let online = match st.presence.online(room_id).await {
        Ok(online) => online,
        Err(e) => {
            tracing::error!(error = %e, room_id, "cannot list the subscribers of a room turned private");
            return;
        }
    };
    for user in online.iter().filter(|u| !participants.contains(&u.id)) {
        sockets::unsubscribe_user(st, &user.id, room_id).await;
    }
}

pub(super) async fn delete_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    st.store.delete_room(&room_id).await?;
    let payload = wire::RoomDeleted {
        room_id: room_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::ROOM_DELETED, &payload).await;
    // Subscribers on `/` leave the room; the room's namespace goes away,
    // disconnecting its sockets (protocol notes N5).
    sockets::close_room(&st, &room_id).await;
    Ok(StatusCode::NO_CONTENT)
}
