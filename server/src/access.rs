//! Room authorization (protocol notes N4), the one rule both edges ask: a
//! socket connecting to a room's namespace, subscribing or asking who is
//! online ([`crate::realtime`]), and a user reading a room over REST
//! ([`crate::api`]). Each edge turns an [`AccessError`] into its own
//! answer.

use crate::state::AppState;
use crate::store::{Room, StoreError};

/// Why a user may not see a room.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("Room not found: {0}")]
    RoomNotFound(String),
    /// The room is private and the user is not one of its participants.
    #[error("Room {0} is private and you are not a participant")]
    Private(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The room, if it exists and is public or the user is one of its
/// participants.
pub async fn authorize_room(
    st: &AppState,
    room_id: &str,
    user_id: &str,
) -> Result<Room, AccessError> {
    let room = st
        .store
        .get_room(room_id)
        .await?
        .ok_or_else(|| AccessError::RoomNotFound(room_id.to_owned()))?;
    if room.is_private() && st.store.find_participant(room_id, user_id).await?.is_none() {
        return Err(AccessError::Private(room_id.to_owned()));
    }
    Ok(room)
}
