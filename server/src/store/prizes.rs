//! Prizes and the winner draw (N12). A draw records its winners and each
//! winner's notification in one transaction: the events that announce
//! them go out after it commits, so a failure leaves either all of it or
//! none (before, each notification was its own transaction after the
//! draw's, and a failure between them answered the draw with an error
//! although its winners were drawn and announced).

use protocol::Role;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sqlx::{Any, Row, Transaction};

use serde_json::{Map, json};

use super::notifications::insert_notification;
use super::rooms::{fetch_room, lock_room, participant_with_user};
use super::{
    NewPrize, Notification, Prize, PrizePatch, Store, StoreError, Winner, WinnerFull, new_id,
    now_ms, require_text,
};

/// The `type` of the notification a drawn winner gets (N12).
pub const WINNER_NOTIFICATION: &str = "winner_selected";

/// The notification a drawn winner gets.
fn winner_notification(w: &WinnerFull, created_at: i64) -> Notification {
    let mut data = Map::new();
    data.insert("roomId".into(), json!(w.winner.room_id));
    data.insert("winnerId".into(), json!(w.winner.id));
    data.insert("prizeId".into(), json!(w.winner.prize_id));
    Notification {
        id: new_id("notif"),
        user_id: w.user.id.clone(),
        kind: WINNER_NOTIFICATION.to_owned(),
        title: "Congratulations!".to_owned(),
        message: format!("You won {}", w.prize.name),
        data,
        read: false,
        created_at,
    }
}

const PRIZE_SELECT: &str = "SELECT id, room_id, name, description, image_url, quantity, \
     quantity_remaining, created_at FROM prizes WHERE id = $1 AND room_id = $2";

pub(crate) async fn fetch_prize(
    tx: &mut Transaction<'static, Any>,
    room_id: &str,
    prize_id: &str,
) -> Result<Prize, StoreError> {
    let row = sqlx::query(PRIZE_SELECT)
        .bind(prize_id)
        .bind(room_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::not_found("prize", prize_id))?;
    Prize::from_row(&row)
}

/// Gives one unit of a prize back (a winner was removed); returns the prize
/// after.
pub(crate) async fn restore_unit(
    tx: &mut Transaction<'static, Any>,
    prize_id: &str,
) -> Result<Prize, StoreError> {
    let row = sqlx::query(
        "UPDATE prizes SET quantity_remaining = quantity_remaining + 1 \
         WHERE id = $1 AND quantity_remaining < quantity \
         RETURNING id, room_id, name, description, image_url, quantity, \
                   quantity_remaining, created_at",
    )
    .bind(prize_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| {
        StoreError::Internal(format!(
            "prize {prize_id}: quantity_remaining already equals quantity"
        ))
    })?;
    Prize::from_row(&row)
}

fn check_prize_text(name: Option<&str>) -> Result<(), StoreError> {
    if let Some(name) = name {
        require_text("name", name)?;
    }
    Ok(())
}

impl Store {
    /// Creates a prize with `quantity_remaining = quantity`. `RoomNotFound`.
    pub async fn create_prize(&self, room_id: &str, new: NewPrize) -> Result<Prize, StoreError> {
        check_prize_text(Some(&new.name))?;
        let prize = Prize {
            id: new_id("prize"),
            room_id: room_id.to_string(),
            name: new.name,
            description: new.description,
            image_url: new.image_url,
            quantity: new.quantity,
            quantity_remaining: new.quantity,
            created_at: now_ms(),
        };
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        sqlx::query(
            "INSERT INTO prizes (id, room_id, name, description, image_url, quantity, \
                                 quantity_remaining, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&prize.id)
        .bind(&prize.room_id)
        .bind(&prize.name)
        .bind(&prize.description)
        .bind(&prize.image_url)
        .bind(i64::from(prize.quantity))
        .bind(i64::from(prize.quantity_remaining))
        .bind(prize.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(prize)
    }

    /// A prize of a room.
    pub async fn get_prize(
        &self,
        room_id: &str,
        prize_id: &str,
    ) -> Result<Option<Prize>, StoreError> {
        sqlx::query(PRIZE_SELECT)
            .bind(prize_id)
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Prize::from_row(&row))
            .transpose()
    }

    /// A room's prizes, oldest first. `RoomNotFound`.
    pub async fn list_prizes(&self, room_id: &str) -> Result<Vec<Prize>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, room_id, name, description, image_url, quantity, quantity_remaining, \
                    created_at \
             FROM prizes WHERE room_id = $1 ORDER BY created_at, id",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && self.get_room(room_id).await?.is_none() {
            return Err(StoreError::RoomNotFound(room_id.to_string()));
        }
        rows.iter().map(Prize::from_row).collect()
    }

    /// Changes a prize; returns it before and after (see [`Prize::changes`]).
    /// A new `quantity` moves `quantity_remaining` by the same delta;
    /// `Conflict` if that would leave fewer units than already won.
    /// `NotFound` (prize).
    pub async fn update_prize(
        &self,
        room_id: &str,
        prize_id: &str,
        patch: PrizePatch,
    ) -> Result<(Prize, Prize), StoreError> {
        check_prize_text(patch.name.as_deref())?;
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let old = fetch_prize(&mut tx, room_id, prize_id).await?;
        let mut new = old.clone();
        if let Some(name) = patch.name {
            new.name = name;
        }
        if let Some(description) = patch.description {
            new.description = description;
        }
        if let Some(image_url) = patch.image_url {
            new.image_url = image_url;
        }
        if let Some(quantity) = patch.quantity {
            let won = old.won();
            if quantity < won {
                return Err(StoreError::Conflict(format!(
                    "prize {prize_id} has {won} winner(s); quantity cannot go below that"
                )));
            }
            new.quantity = quantity;
            new.quantity_remaining = quantity - won;
        }
        sqlx::query(
            "UPDATE prizes SET name = $2, description = $3, image_url = $4, quantity = $5, \
                               quantity_remaining = $6 \
             WHERE id = $1",
        )
        .bind(prize_id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(&new.image_url)
        .bind(i64::from(new.quantity))
        .bind(i64::from(new.quantity_remaining))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((old, new))
    }

    /// Deletes a prize and its winners; returns it as it was. `NotFound`.
    pub async fn delete_prize(&self, room_id: &str, prize_id: &str) -> Result<Prize, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let prize = fetch_prize(&mut tx, room_id, prize_id).await?;
        sqlx::query("DELETE FROM winners WHERE prize_id = $1")
            .bind(prize_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM prizes WHERE id = $1")
            .bind(prize_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(prize)
    }

    /// Draws `count` winners of a prize, in one transaction (N12):
    ///
    /// * eligible: the room's participants with role `participant` who have
    ///   not won any prize in this room;
    /// * `Conflict` (nothing changes) if `count` exceeds the units left or
    ///   the eligible participants; `Invalid` if `count` is 0;
    /// * chosen uniformly without replacement by
    ///   `rand::seq::index::sample` driven by the OS CSPRNG (`OsRng`);
    /// * `quantity_remaining` drops by `count` (a conditional update that
    ///   can never go below 0).
    ///
    /// Concurrent draws in one room are serialized (SQLite: `BEGIN
    /// IMMEDIATE`; PostgreSQL: the room row lock), so two draws for the last
    /// unit cannot both succeed and nobody wins twice.
    ///
    /// Each winner's `winner_selected` notification is recorded in the same
    /// transaction, so a draw is committed with its notifications or not at
    /// all; the caller announces both after the commit.
    ///
    /// Returns the winners in draw order (each with participant, user and
    /// the prize after the draw), the prize after, and the winners'
    /// notifications in the same order.
    pub async fn draw_winners(
        &self,
        room_id: &str,
        prize_id: &str,
        count: u32,
    ) -> Result<(Vec<WinnerFull>, Prize, Vec<Notification>), StoreError> {
        if count == 0 {
            return Err(StoreError::Invalid("count must be at least 1".into()));
        }
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let prize = fetch_prize(&mut tx, room_id, prize_id).await?;
        if count > prize.quantity_remaining {
            return Err(StoreError::Conflict(format!(
                "prize {prize_id} has {} unit(s) left, cannot draw {count}",
                prize.quantity_remaining
            )));
        }
        let eligible = sqlx::query(
            "SELECT p.id, p.room_id, p.user_id, p.role, p.joined_at, \
                    u.id AS u_id, u.name AS u_name, u.avatar AS u_avatar, \
                    u.created_at AS u_created_at \
             FROM participants p JOIN users u ON u.id = p.user_id \
             WHERE p.room_id = $1 AND p.role = $2 \
               AND NOT EXISTS (SELECT 1 FROM winners w \
                               WHERE w.room_id = $1 AND w.participant_id = p.id) \
             ORDER BY p.id",
        )
        .bind(room_id)
        // Only participants are eligible in a draw (N12).
        .bind(Role::Participant.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(participant_with_user)
        .collect::<Result<Vec<_>, _>>()?;
        if count as usize > eligible.len() {
            return Err(StoreError::Conflict(format!(
                "only {} eligible participant(s) in room {room_id}, cannot draw {count}",
                eligible.len()
            )));
        }
        let picked = {
            let mut rng = OsRng.unwrap_err();
            rand::seq::index::sample(&mut rng, eligible.len(), count as usize).into_vec()
        };

        let done = sqlx::query(
            "UPDATE prizes SET quantity_remaining = quantity_remaining - $2 \
             WHERE id = $1 AND quantity_remaining >= $2",
        )
        .bind(prize_id)
        .bind(i64::from(count))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "prize {prize_id} has fewer than {count} unit(s) left"
            )));
        }
        let prize_after = fetch_prize(&mut tx, room_id, prize_id).await?;

        let now = now_ms();
        let mut winners = Vec::with_capacity(picked.len());
        let mut notifications = Vec::with_capacity(picked.len());
        for index in picked {
            let chosen = &eligible[index];
            let winner = Winner {
                id: new_id("winner"),
                room_id: room_id.to_string(),
                prize_id: prize_id.to_string(),
                participant_id: chosen.participant.id.clone(),
                user_id: chosen.user.id.clone(),
                created_at: now,
            };
            sqlx::query(
                "INSERT INTO winners (id, room_id, prize_id, participant_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&winner.id)
            .bind(&winner.room_id)
            .bind(&winner.prize_id)
            .bind(&winner.participant_id)
            .bind(winner.created_at)
            .execute(&mut *tx)
            .await?;
            let full = WinnerFull {
                winner,
                participant: chosen.participant.clone(),
                user: chosen.user.clone(),
                prize: prize_after.clone(),
            };
            let notification = winner_notification(&full, now);
            insert_notification(&mut tx, &notification).await?;
            notifications.push(notification);
            winners.push(full);
        }
        tx.commit().await?;
        Ok((winners, prize_after, notifications))
    }

    /// Removes a winner and gives the unit back; returns the winner and the
    /// prize after. `NotFound` (winner).
    pub async fn remove_winner(
        &self,
        room_id: &str,
        winner_id: &str,
    ) -> Result<(Winner, Prize), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let row = sqlx::query(
            "SELECT w.id, w.room_id, w.prize_id, w.participant_id, p.user_id, w.created_at \
             FROM winners w JOIN participants p ON p.id = w.participant_id \
             WHERE w.id = $1 AND w.room_id = $2",
        )
        .bind(winner_id)
        .bind(room_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("winner", winner_id))?;
        let winner = Winner::from_row(&row)?;
        sqlx::query("DELETE FROM winners WHERE id = $1")
            .bind(winner_id)
            .execute(&mut *tx)
            .await?;
        let prize = restore_unit(&mut tx, &winner.prize_id).await?;
        tx.commit().await?;
        Ok((winner, prize))
    }

    /// A room's winners (oldest first), each with participant, user and the
    /// prize as it is now. `RoomNotFound`.
    pub async fn list_winners(&self, room_id: &str) -> Result<Vec<WinnerFull>, StoreError> {
        let mut tx = self.pool.begin().await?;
        fetch_room(&mut tx, room_id).await?;
        let rows = sqlx::query(
            "SELECT w.id AS w_id, w.prize_id AS w_prize_id, w.created_at AS w_created_at, \
                    p.id, p.room_id, p.user_id, p.role, p.joined_at, \
                    u.id AS u_id, u.name AS u_name, u.avatar AS u_avatar, \
                    u.created_at AS u_created_at, \
                    z.name AS z_name, z.description AS z_description, \
                    z.image_url AS z_image_url, z.quantity AS z_quantity, \
                    z.quantity_remaining AS z_quantity_remaining, z.created_at AS z_created_at \
             FROM winners w \
             JOIN participants p ON p.id = w.participant_id \
             JOIN users u ON u.id = p.user_id \
             JOIN prizes z ON z.id = w.prize_id \
             WHERE w.room_id = $1 ORDER BY w.created_at, w.id",
        )
        .bind(room_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                let pu = participant_with_user(row)?;
                let prize_id: String = row.try_get("w_prize_id")?;
                let prize = Prize::from_row_prefixed(row, &prize_id, room_id)?;
                Ok(WinnerFull {
                    winner: Winner {
                        id: row.try_get("w_id")?,
                        room_id: room_id.to_string(),
                        prize_id,
                        participant_id: pu.participant.id.clone(),
                        user_id: pu.user.id.clone(),
                        created_at: row.try_get("w_created_at")?,
                    },
                    participant: pu.participant,
                    user: pu.user,
                    prize,
                })
            })
            .collect()
    }
}

impl Prize {
    fn from_row_prefixed(
        row: &sqlx::any::AnyRow,
        id: &str,
        room_id: &str,
    ) -> Result<Prize, StoreError> {
        Ok(Prize {
            id: id.to_string(),
            room_id: room_id.to_string(),
            name: row.try_get("z_name")?,
            description: row.try_get("z_description")?,
            image_url: row.try_get("z_image_url")?,
            quantity: super::to_u32(row.try_get("z_quantity")?),
            quantity_remaining: super::to_u32(row.try_get("z_quantity_remaining")?),
            created_at: row.try_get("z_created_at")?,
        })
    }
}
