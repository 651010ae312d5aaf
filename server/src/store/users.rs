//! Users, access-token ids and refresh tokens (N10).

use sqlx::Row;

use super::rooms::{fetch_user, give_back_wins, lock_room};
use super::{
    DeletedUser, Participant, REFRESH_TOKEN_TTL_MS, Store, StoreError, TokenRow, User, new_id,
    now_ms, random_hex, require_text, secret_digest,
};

impl Store {
    /// Creates a user.
    pub async fn create_user(
        &self,
        name: &str,
        avatar: Option<String>,
    ) -> Result<User, StoreError> {
        require_text("name", name)?;
        let user = User {
            id: new_id("usr"),
            name: name.to_string(),
            avatar,
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO users (id, name, avatar, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&user.id)
            .bind(&user.name)
            .bind(&user.avatar)
            .bind(user.created_at)
            .execute(&self.pool)
            .await?;
        Ok(user)
    }

    /// A user by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT id, name, avatar, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| User::from_row(&row))
            .transpose()
    }

    /// Deletes a user with everything that is theirs: their participant
    /// records (prizes they won are given back, as when a participant is
    /// removed), answers, notifications, access-token records and refresh
    /// tokens. Returns what went, for the events that follow. `NotFound`.
    ///
    /// The foreign keys cascade anyway; the rows are deleted explicitly
    /// first, as in [`Store::delete_room`], so that the work is the same on
    /// both databases and the won units are returned. The user's row is
    /// locked first, then each of their rooms in id order (PostgreSQL).
    pub async fn delete_user(&self, user_id: &str) -> Result<DeletedUser, StoreError> {
        let mut tx = self.begin_write().await?;
        let locked = sqlx::query("UPDATE users SET name = name WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::not_found("user", user_id));
        }
        let user = fetch_user(&mut tx, user_id).await?;
        let participants: Vec<Participant> = sqlx::query(
            "SELECT id, room_id, user_id, role, joined_at FROM participants \
             WHERE user_id = $1 ORDER BY room_id, id",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Participant::from_row)
        .collect::<Result<_, _>>()?;
        let mut left = Vec::with_capacity(participants.len());
        for participant in participants {
            lock_room(&mut tx, &participant.room_id).await?;
            let given_back = give_back_wins(&mut tx, &participant.id).await?;
            left.push((participant, given_back));
        }
        for sql in [
            "DELETE FROM answers WHERE user_id = $1",
            "DELETE FROM notifications WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM access_tokens WHERE user_id = $1",
            "DELETE FROM participants WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(DeletedUser { user, left })
    }

    /// Records an issued access token by its `jti`. `NotFound` for an
    /// unknown user, `Conflict` if the `jti` is already recorded.
    pub async fn insert_token(
        &self,
        jti: &str,
        user_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        require_text("jti", jti)?;
        let mut tx = self.begin_write().await?;
        let user = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(StoreError::not_found("user", user_id));
        }
        sqlx::query(
            "INSERT INTO access_tokens (jti, user_id, expires_at, revoked, created_at) \
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(jti)
        .bind(user_id)
        .bind(expires_at_ms)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored state of an access token; `None` if it was never recorded.
    pub async fn token_state(&self, jti: &str) -> Result<Option<TokenRow>, StoreError> {
        let row =
            sqlx::query("SELECT user_id, expires_at, revoked FROM access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(TokenRow {
                user_id: row.try_get("user_id")?,
                expires_at_ms: row.try_get("expires_at")?,
                revoked: row.try_get::<i64, _>("revoked")? != 0,
            })
        })
        .transpose()
    }

    /// Revokes an access token. `false` if the `jti` is unknown; `true` if
    /// it is now revoked (also when it already was).
    pub async fn revoke_token(&self, jti: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE jti = $1")
            .bind(jti)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Issues a refresh token valid for [`REFRESH_TOKEN_TTL_MS`]: 32 bytes
    /// from the OS CSPRNG, hex encoded (64 characters). Only its digest is
    /// stored. `NotFound` for an unknown user.
    pub async fn create_refresh_token(&self, user_id: &str) -> Result<String, StoreError> {
        self.create_refresh_token_with_ttl(user_id, REFRESH_TOKEN_TTL_MS)
            .await
    }

    /// [`Store::create_refresh_token`] with a chosen lifetime in ms.
    pub async fn create_refresh_token_with_ttl(
        &self,
        user_id: &str,
        ttl_ms: i64,
    ) -> Result<String, StoreError> {
        let secret = random_hex(32)?;
        let digest = secret_digest(&secret)?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let user = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(StoreError::not_found("user", user_id));
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&digest)
        .bind(user_id)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Uses a refresh token: returns its user id and deletes it, so it works
    /// exactly once (one atomic `DELETE ... RETURNING`: of two concurrent
    /// calls exactly one gets the user). `None` if unknown, already used or
    /// expired (an expired one is deleted too).
    pub async fn consume_refresh_token(&self, secret: &str) -> Result<Option<String>, StoreError> {
        let digest = secret_digest(secret)?;
        let rows = sqlx::query(
            "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING user_id, expires_at",
        )
        .bind(&digest)
        .fetch_all(&self.pool)
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now_ms() {
            return Ok(None);
        }
        Ok(Some(row.try_get("user_id")?))
    }

    /// Deletes access-token records and refresh tokens that expired before
    /// `now_ms`; returns how many rows went. The server runs it at start
    /// and every hour (`serve::TOKEN_PURGE_EVERY`).
    pub async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let a = sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(a.rows_affected() + r.rows_affected())
    }
}
