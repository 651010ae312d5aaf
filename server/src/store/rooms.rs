//! Rooms (N4, N13) and participants.

use protocol::{Role, RoomStatus, Visibility};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{
    Backend, Participant, ParticipantWithUser, Prize, Room, RoomPatch, Store, StoreError, User,
    Winner, new_id, now_ms, one_of, require_text,
};

pub(crate) async fn fetch_room(
    tx: &mut Transaction<'static, Any>,
    room_id: &str,
) -> Result<Room, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, status, visibility, created_at, updated_at FROM rooms WHERE id = $1",
    )
    .bind(room_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::RoomNotFound(room_id.to_string()))?;
    Room::from_row(&row)
}

/// Takes the room's row lock (PostgreSQL; SQLite's `BEGIN IMMEDIATE`
/// already serializes writers), so that read-then-write operations on the
/// room's participants, prizes and winners do not interleave.
/// `RoomNotFound` if the room does not exist.
pub(crate) async fn lock_room(
    tx: &mut Transaction<'static, Any>,
    room_id: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE rooms SET updated_at = updated_at WHERE id = $1")
        .bind(room_id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::RoomNotFound(room_id.to_string()));
    }
    Ok(())
}

pub(crate) async fn fetch_user(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<User, StoreError> {
    let row = sqlx::query("SELECT id, name, avatar, created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::not_found("user", user_id))?;
    User::from_row(&row)
}

pub(crate) async fn fetch_participant(
    tx: &mut Transaction<'static, Any>,
    room_id: &str,
    participant_id: &str,
) -> Result<Participant, StoreError> {
    let row = sqlx::query(
        "SELECT id, room_id, user_id, role, joined_at FROM participants \
         WHERE id = $1 AND room_id = $2",
    )
    .bind(participant_id)
    .bind(room_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::not_found("participant", participant_id))?;
    Participant::from_row(&row)
}

/// Gives back the prizes a participant won: each of their winner rows, in
/// winning order, is deleted and its prize's `quantity_remaining` goes up by
/// one. Returns, per deleted winner, the winner and its prize after. The
/// caller holds the room's lock.
pub(super) async fn give_back_wins(
    tx: &mut Transaction<'static, Any>,
    participant_id: &str,
) -> Result<Vec<(Winner, Prize)>, StoreError> {
    let wins: Vec<Winner> = sqlx::query(
        "SELECT w.id, w.room_id, w.prize_id, w.participant_id, p.user_id, w.created_at \
         FROM winners w JOIN participants p ON p.id = w.participant_id \
         WHERE w.participant_id = $1 ORDER BY w.created_at, w.id",
    )
    .bind(participant_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(Winner::from_row)
    .collect::<Result<_, _>>()?;
    let mut given_back = Vec::with_capacity(wins.len());
    for winner in wins {
        sqlx::query("DELETE FROM winners WHERE id = $1")
            .bind(&winner.id)
            .execute(&mut **tx)
            .await?;
        let prize = super::prizes::restore_unit(tx, &winner.prize_id).await?;
        given_back.push((winner, prize));
    }
    Ok(given_back)
}

/// Participant columns as `id, room_id, user_id, role, joined_at` and user
/// columns prefixed `u_`.
pub(crate) fn participant_with_user(row: &AnyRow) -> Result<ParticipantWithUser, StoreError> {
    Ok(ParticipantWithUser {
        participant: Participant::from_row(row)?,
        user: User {
            id: row.try_get("u_id")?,
            name: row.try_get("u_name")?,
            avatar: row.try_get("u_avatar")?,
            created_at: row.try_get("u_created_at")?,
        },
    })
}

impl Store {
    /// Creates a room. `status`: draft, active, paused, ended;
    /// `visibility`: public, private.
    pub async fn create_room(
        &self,
        name: &str,
        status: &str,
        visibility: &str,
    ) -> Result<Room, StoreError> {
        require_text("name", name)?;
        let status = one_of("status", status, RoomStatus::parse, RoomStatus::names)?;
        let visibility = one_of(
            "visibility",
            visibility,
            Visibility::parse,
            Visibility::names,
        )?;
        let now = now_ms();
        let room = Room {
            id: new_id("room"),
            name: name.to_string(),
            status: status.to_string(),
            visibility: visibility.to_string(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO rooms (id, name, status, visibility, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&room.id)
        .bind(&room.name)
        .bind(&room.status)
        .bind(&room.visibility)
        .bind(room.created_at)
        .bind(room.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(room)
    }

    /// A room by id.
    pub async fn get_room(&self, room_id: &str) -> Result<Option<Room>, StoreError> {
        sqlx::query(
            "SELECT id, name, status, visibility, created_at, updated_at FROM rooms WHERE id = $1",
        )
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Room::from_row(&row))
        .transpose()
    }

    /// Every room, oldest first.
    pub async fn list_rooms(&self) -> Result<Vec<Room>, StoreError> {
        sqlx::query(
            "SELECT id, name, status, visibility, created_at, updated_at FROM rooms \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Room::from_row)
        .collect()
    }

    /// Changes a room; returns it before and after (use [`Room::changes`]
    /// for `room:updated`, and compare `status` for `room:status_changed`).
    pub async fn update_room(
        &self,
        room_id: &str,
        patch: RoomPatch,
    ) -> Result<(Room, Room), StoreError> {
        if let Some(name) = &patch.name {
            require_text("name", name)?;
        }
        if let Some(status) = &patch.status {
            one_of("status", status, RoomStatus::parse, RoomStatus::names)?;
        }
        if let Some(visibility) = &patch.visibility {
            one_of(
                "visibility",
                visibility,
                Visibility::parse,
                Visibility::names,
            )?;
        }
        let mut tx = self.begin_write().await?;
        // Read-modify-write: on PostgreSQL (READ COMMITTED) two patches at
        // once would both read the same row and the second write would undo
        // the first's fields; the row lock makes the second wait and read
        // the first's result. (SQLite's BEGIN IMMEDIATE already serializes.)
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM rooms WHERE id = $1 FOR UPDATE")
                .bind(room_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let old = fetch_room(&mut tx, room_id).await?;
        let new = Room {
            name: patch.name.unwrap_or_else(|| old.name.clone()),
            status: patch.status.unwrap_or_else(|| old.status.clone()),
            visibility: patch.visibility.unwrap_or_else(|| old.visibility.clone()),
            updated_at: now_ms().max(old.updated_at),
            ..old.clone()
        };
        sqlx::query(
            "UPDATE rooms SET name = $2, status = $3, visibility = $4, updated_at = $5 \
             WHERE id = $1",
        )
        .bind(room_id)
        .bind(&new.name)
        .bind(&new.status)
        .bind(&new.visibility)
        .bind(new.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((old, new))
    }

    /// Deletes a room with its participants, prizes, winners, questions and
    /// answers; returns the room as it was.
    pub async fn delete_room(&self, room_id: &str) -> Result<Room, StoreError> {
        let mut tx = self.begin_write().await?;
        let room = fetch_room(&mut tx, room_id).await?;
        // Foreign keys cascade; deleting children explicitly first keeps the
        // work identical on both databases and independent of PRAGMAs.
        for sql in [
            "DELETE FROM answers WHERE question_id IN (SELECT id FROM questions WHERE room_id = $1)",
            "DELETE FROM questions WHERE room_id = $1",
            "DELETE FROM winners WHERE room_id = $1",
            "DELETE FROM prizes WHERE room_id = $1",
            "DELETE FROM participants WHERE room_id = $1",
            "DELETE FROM rooms WHERE id = $1",
        ] {
            sqlx::query(sql).bind(room_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(room)
    }

    /// Adds a user to a room. `RoomNotFound`; `NotFound` (user); `Conflict`
    /// if the user is already in the room; `Invalid` role.
    pub async fn add_participant(
        &self,
        room_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<(Participant, User), StoreError> {
        let role = one_of("role", role, Role::parse, Role::names)?;
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let user = fetch_user(&mut tx, user_id).await?;
        let existing =
            sqlx::query("SELECT id FROM participants WHERE room_id = $1 AND user_id = $2")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let id: String = row.try_get("id")?;
            return Err(StoreError::Conflict(format!(
                "user {user_id} is already a participant of room {room_id} ({id})"
            )));
        }
        let participant = Participant {
            id: new_id("part"),
            room_id: room_id.to_string(),
            user_id: user_id.to_string(),
            role: role.to_string(),
            joined_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO participants (id, room_id, user_id, role, joined_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&participant.id)
        .bind(&participant.room_id)
        .bind(&participant.user_id)
        .bind(&participant.role)
        .bind(participant.joined_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((participant, user))
    }

    /// A participant of a room by participant id.
    pub async fn get_participant(
        &self,
        room_id: &str,
        participant_id: &str,
    ) -> Result<Option<Participant>, StoreError> {
        sqlx::query(
            "SELECT id, room_id, user_id, role, joined_at FROM participants \
             WHERE id = $1 AND room_id = $2",
        )
        .bind(participant_id)
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Participant::from_row(&row))
        .transpose()
    }

    /// A user's participation in a room, if any.
    pub async fn find_participant(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<Participant>, StoreError> {
        sqlx::query(
            "SELECT id, room_id, user_id, role, joined_at FROM participants \
             WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Participant::from_row(&row))
        .transpose()
    }

    /// Changes a participant's role; returns it before and after, and the
    /// user. `NotFound` (participant), `Invalid` role.
    pub async fn update_participant_role(
        &self,
        room_id: &str,
        participant_id: &str,
        role: &str,
    ) -> Result<(Participant, Participant, User), StoreError> {
        let role = one_of("role", role, Role::parse, Role::names)?;
        let mut tx = self.begin_write().await?;
        let old = fetch_participant(&mut tx, room_id, participant_id).await?;
        sqlx::query("UPDATE participants SET role = $2 WHERE id = $1")
            .bind(participant_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        let user = fetch_user(&mut tx, &old.user_id).await?;
        tx.commit().await?;
        let new = Participant {
            role: role.to_string(),
            ..old.clone()
        };
        Ok((old, new, user))
    }

    /// Removes a participant from a room and returns them. Prizes they won
    /// in this room are given back (see
    /// [`Store::remove_participant_with_wins`], which also returns those).
    /// `NotFound` (participant).
    pub async fn remove_participant(
        &self,
        room_id: &str,
        participant_id: &str,
    ) -> Result<Participant, StoreError> {
        Ok(self
            .remove_participant_with_wins(room_id, participant_id)
            .await?
            .0)
    }

    /// Removes a participant from a room. Prizes they won in this room are
    /// given back: each such winner row is deleted and its prize's
    /// `quantity_remaining` goes up by one. Returns the participant and, per
    /// deleted winner, the winner and its prize after (for `winner:removed`
    /// and `prize:updated`). `NotFound` (participant).
    pub async fn remove_participant_with_wins(
        &self,
        room_id: &str,
        participant_id: &str,
    ) -> Result<(Participant, Vec<(Winner, Prize)>), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let participant = fetch_participant(&mut tx, room_id, participant_id).await?;
        let removed = give_back_wins(&mut tx, participant_id).await?;
        sqlx::query("DELETE FROM participants WHERE id = $1")
            .bind(participant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((participant, removed))
    }

    /// A room's participants, in joining order. `RoomNotFound`.
    pub async fn list_participants(&self, room_id: &str) -> Result<Vec<Participant>, StoreError> {
        Ok(self
            .list_participants_with_users(room_id)
            .await?
            .into_iter()
            .map(|p| p.participant)
            .collect())
    }

    /// A room's participants with their users, in joining order.
    /// `RoomNotFound` for an unknown room.
    pub async fn list_participants_with_users(
        &self,
        room_id: &str,
    ) -> Result<Vec<ParticipantWithUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.room_id, p.user_id, p.role, p.joined_at, \
                    u.id AS u_id, u.name AS u_name, u.avatar AS u_avatar, \
                    u.created_at AS u_created_at \
             FROM participants p JOIN users u ON u.id = p.user_id \
             WHERE p.room_id = $1 ORDER BY p.joined_at, p.id",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && self.get_room(room_id).await?.is_none() {
            return Err(StoreError::RoomNotFound(room_id.to_string()));
        }
        rows.iter().map(participant_with_user).collect()
    }
}
