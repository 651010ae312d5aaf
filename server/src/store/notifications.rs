//! Notifications for one user (`notification:received`, `mark_read`).

use serde_json::{Map, Value};
use sqlx::{Any, Row, Transaction};

use super::rooms::fetch_user;
use super::{Notification, Store, StoreError, new_id, now_ms, require_text};

const NOTIFICATION_COLUMNS_BY_ID: &str = "SELECT id, user_id, kind, title, message, data_json, \
     is_read, created_at FROM notifications WHERE id = $1";

impl Store {
    /// Creates an unread notification for a user. `NotFound` (user).
    pub async fn create_notification(
        &self,
        user_id: &str,
        kind: &str,
        title: &str,
        message: &str,
        data: Map<String, Value>,
    ) -> Result<Notification, StoreError> {
        require_text("type", kind)?;
        let notification = Notification {
            id: new_id("notif"),
            user_id: user_id.to_string(),
            kind: kind.to_string(),
            title: title.to_string(),
            message: message.to_string(),
            data,
            read: false,
            created_at: now_ms(),
        };
        let mut tx = self.begin_write().await?;
        fetch_user(&mut tx, user_id).await?;
        insert_notification(&mut tx, &notification).await?;
        tx.commit().await?;
        Ok(notification)
    }

    /// Marks a notification read (idempotent) and returns it. `NotFound` if
    /// unknown; `Forbidden` if it belongs to another user.
    pub async fn mark_notification_read(
        &self,
        id: &str,
        user_id: &str,
    ) -> Result<Notification, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(NOTIFICATION_COLUMNS_BY_ID)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("notification", id))?;
        let owner: String = row.try_get("user_id")?;
        if owner != user_id {
            return Err(StoreError::Forbidden(format!(
                "notification {id} belongs to another user"
            )));
        }
        let mut notification = Notification::from_row(&row)?;
        if !notification.read {
            sqlx::query("UPDATE notifications SET is_read = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            notification.read = true;
        }
        tx.commit().await?;
        Ok(notification)
    }

    /// A notification by id.
    pub async fn get_notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        sqlx::query(NOTIFICATION_COLUMNS_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Notification::from_row(&row))
            .transpose()
    }

    /// A user's notifications, newest first (an unknown user has none).
    pub async fn list_notifications(&self, user_id: &str) -> Result<Vec<Notification>, StoreError> {
        sqlx::query(
            "SELECT id, user_id, kind, title, message, data_json, is_read, created_at \
             FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Notification::from_row)
        .collect()
    }
}

/// Writes `notification` in `tx` (its user must exist).
pub(crate) async fn insert_notification(
    tx: &mut Transaction<'static, Any>,
    notification: &Notification,
) -> Result<(), StoreError> {
    let data_json = serde_json::to_string(&notification.data)
        .map_err(|e| StoreError::Invalid(format!("notification data: {e}")))?;
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, message, data_json, is_read, \
                                    created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
    )
    .bind(&notification.id)
    .bind(&notification.user_id)
    .bind(&notification.kind)
    .bind(&notification.title)
    .bind(&notification.message)
    .bind(&data_json)
    .bind(notification.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
