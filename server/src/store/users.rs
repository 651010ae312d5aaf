//! Users, access-token ids and refresh tokens (N10), and the token
//! families that revocation and refresh-token reuse revoke whole.

use sqlx::{Any, Row, Transaction};

use super::rooms::{fetch_user, give_back_wins, lock_room};
use super::{
    DeletedUser, Participant, REFRESH_TOKEN_TTL_MS, Revoked, Rotation, Store, StoreError, TokenRow,
    User, new_id, now_ms, random_hex, require_text, secret_digest,
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
    /// The access tokens' ids are kept, revoked now, in
    /// `deleted_user_tokens` until the tokens expire, for the nodes'
    /// re-read of the revocations ([`Store::revoked_since`]).
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
        // Their access tokens stay visible to the nodes' re-read of the
        // revocations after the rows go.
        sqlx::query(
            "INSERT INTO deleted_user_tokens (jti, expires_at, revoked_at) \
             SELECT jti, expires_at, $2 FROM access_tokens WHERE user_id = $1 \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at, \
             revoked_at = excluded.revoked_at",
        )
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
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

    /// Records an issued access token by its `jti`, as a family of its own.
    /// `NotFound` for an unknown user, `Conflict` if the `jti` is already
    /// recorded.
    pub async fn insert_token(
        &self,
        jti: &str,
        user_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        require_text("jti", jti)?;
        let mut tx = self.begin_write().await?;
        require_user(&mut tx, user_id).await?;
        insert_access(&mut tx, jti, user_id, expires_at_ms, jti).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a freshly minted pair, a new family: access token `jti`
    /// (expiring at `access_expires_at_ms`) and a refresh token valid for
    /// [`REFRESH_TOKEN_TTL_MS`], whose secret it returns. `NotFound` for an
    /// unknown user, `Conflict` if the `jti` is already recorded.
    pub async fn issue_tokens(
        &self,
        user_id: &str,
        jti: &str,
        access_expires_at_ms: i64,
    ) -> Result<String, StoreError> {
        require_text("jti", jti)?;
        let family = new_id("fam");
        let mut tx = self.begin_write().await?;
        require_user(&mut tx, user_id).await?;
        insert_access(&mut tx, jti, user_id, access_expires_at_ms, &family).await?;
        let secret = insert_refresh(&mut tx, user_id, &family, REFRESH_TOKEN_TTL_MS).await?;
        tx.commit().await?;
        Ok(secret)
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

    /// Revokes an access token with its whole family: the access tokens
    /// minted along with it or by refreshing it, and its refresh tokens.
    /// `None` if the `jti` is unknown; otherwise what was revoked, `jti`
    /// always among the access tokens (also when it already was revoked).
    pub async fn revoke_token(&self, jti: &str) -> Result<Option<Revoked>, StoreError> {
        let found = self
            .revoke_family_of(
                "SELECT user_id, family FROM access_tokens WHERE jti = $1",
                jti,
            )
            .await?;
        Ok(found.map(|mut revoked| {
            if !revoked.access.iter().any(|j| j == jti) {
                revoked.access.push(jti.to_owned());
            }
            revoked
        }))
    }

    /// Revokes a refresh token (used or not) with its whole family, access
    /// tokens included. `None` if unknown (or its family already revoked).
    pub async fn revoke_refresh_token(&self, secret: &str) -> Result<Option<Revoked>, StoreError> {
        let digest = secret_digest(secret)?;
        self.revoke_family_of(
            "SELECT user_id, family FROM refresh_tokens WHERE token_hash = $1",
            &digest,
        )
        .await
    }

    /// Revokes every access and refresh token of a user. `NotFound`.
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<Revoked, StoreError> {
        let mut tx = self.begin_write().await?;
        if !lock_user(&mut tx, user_id).await? {
            return Err(StoreError::not_found("user", user_id));
        }
        let revoked = revoke_all(&mut tx, Scope::User, user_id).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// The access tokens revoked at or after `since_ms`, those of users
    /// deleted since then included (what a node re-reads in case it missed
    /// a revocation's or a deletion's cluster command).
    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT jti FROM access_tokens WHERE revoked_at >= $1 \
             UNION SELECT jti FROM deleted_user_tokens WHERE revoked_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok(row.try_get("jti")?))
        .collect()
    }

    /// Finds a token's user and family with `select` (bound to `key`), then
    /// revokes the family under the user's lock.
    async fn revoke_family_of(
        &self,
        select: &'static str,
        key: &str,
    ) -> Result<Option<Revoked>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(select)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let user_id: String = row.try_get("user_id")?;
        let family: Option<String> = row.try_get("family")?;
        lock_user(&mut tx, &user_id).await?;
        let revoked = revoke_all(&mut tx, Scope::Family, family.as_deref().unwrap_or(key)).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Issues a refresh token valid for [`REFRESH_TOKEN_TTL_MS`], a family
    /// of its own: 32 bytes from the OS CSPRNG, hex encoded (64
    /// characters). Only its digest is stored. `NotFound` for an unknown
    /// user.
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
        let mut tx = self.begin_write().await?;
        require_user(&mut tx, user_id).await?;
        let secret = insert_refresh(&mut tx, user_id, &new_id("fam"), ttl_ms).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Presents a refresh token (the protocol's refresh, which rotates).
    /// A valid one is marked used and a new pair of its family recorded in
    /// the same transaction: access token `jti` expiring at
    /// `access_expires_at_ms`, and a new refresh token. A used one is a
    /// stolen one (its holder and the thief both have it): its family is
    /// revoked. Of two concurrent presentations exactly one rotates and the
    /// other counts as reuse: they serialize on the user's row, and on
    /// PostgreSQL each statement after the lock reads what the first
    /// committed. Used tokens stay (for the reuse check) until they expire.
    pub async fn rotate_refresh_token(
        &self,
        secret: &str,
        jti: &str,
        access_expires_at_ms: i64,
    ) -> Result<Rotation, StoreError> {
        let digest = secret_digest(secret)?;
        let select = "SELECT user_id, expires_at, used_at, family FROM refresh_tokens \
                      WHERE token_hash = $1";
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query(select)
            .bind(&digest)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Rotation::Refused);
        };
        let user_id: String = row.try_get("user_id")?;
        lock_user(&mut tx, &user_id).await?;
        // Again under the lock: a rotation or revocation of this family
        // that ran meanwhile has committed by now.
        let Some(row) = sqlx::query(select)
            .bind(&digest)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Rotation::Refused);
        };
        let family = row
            .try_get::<Option<String>, _>("family")?
            .unwrap_or_else(|| digest.clone());
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            let revoked = revoke_all(&mut tx, Scope::Family, &family).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { user_id, revoked });
        }
        let now = now_ms();
        if row.try_get::<i64, _>("expires_at")? <= now {
            sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1")
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Refused);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_access(&mut tx, jti, &user_id, access_expires_at_ms, &family).await?;
        let refresh_token =
            insert_refresh(&mut tx, &user_id, &family, REFRESH_TOKEN_TTL_MS).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            user_id,
            refresh_token,
        })
    }

    /// Deletes access-token records, deleted users' access tokens and
    /// refresh tokens that expired before `now_ms`; returns how many rows
    /// went. The server runs it at start and every hour
    /// (`serve::TOKEN_PURGE_EVERY`).
    pub async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut rows = 0;
        for sql in [
            "DELETE FROM access_tokens WHERE expires_at < $1",
            "DELETE FROM deleted_user_tokens WHERE expires_at < $1",
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
        ] {
            rows += sqlx::query(sql)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(rows)
    }
}

/// `NotFound` unless the user exists.
async fn require_user(tx: &mut Transaction<'static, Any>, user_id: &str) -> Result<(), StoreError> {
    let user = sqlx::query("SELECT id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
    match user {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found("user", user_id)),
    }
}

/// Locks a user's row for the rest of the transaction (PostgreSQL; SQLite
/// writers are serialized anyway): every change to a user's tokens takes
/// it, so a revocation and a rotation of one family run one after the
/// other. `false` if the user does not exist.
async fn lock_user(tx: &mut Transaction<'static, Any>, user_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE users SET name = name WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn insert_access(
    tx: &mut Transaction<'static, Any>,
    jti: &str,
    user_id: &str,
    expires_at_ms: i64,
    family: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO access_tokens (jti, user_id, expires_at, revoked, created_at, family) \
         VALUES ($1, $2, $3, 0, $4, $5)",
    )
    .bind(jti)
    .bind(user_id)
    .bind(expires_at_ms)
    .bind(now_ms())
    .bind(family)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new refresh token of `family`; returns its secret (only the digest is
/// stored).
async fn insert_refresh(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    family: &str,
    ttl_ms: i64,
) -> Result<String, StoreError> {
    let secret = random_hex(32)?;
    let digest = secret_digest(&secret)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at, family) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&digest)
    .bind(user_id)
    .bind(now.saturating_add(ttl_ms))
    .bind(now)
    .bind(family)
    .execute(&mut **tx)
    .await?;
    Ok(secret)
}

/// Which tokens [`revoke_all`] revokes.
#[derive(Clone, Copy)]
enum Scope {
    /// A family's.
    Family,
    /// A user's.
    User,
}

/// Revokes the tokens of a family or of a user: the access tokens (the
/// ones newly revoked are returned, with the time for the nodes' re-read)
/// and the refresh tokens, used ones included (deleted).
async fn revoke_all(
    tx: &mut Transaction<'static, Any>,
    scope: Scope,
    key: &str,
) -> Result<Revoked, StoreError> {
    // Static statements: sqlx takes no SQL built at run time.
    let (update, delete) = match scope {
        Scope::Family => (
            "UPDATE access_tokens SET revoked = 1, revoked_at = $2 \
             WHERE family = $1 AND revoked = 0 RETURNING jti",
            "DELETE FROM refresh_tokens WHERE family = $1",
        ),
        Scope::User => (
            "UPDATE access_tokens SET revoked = 1, revoked_at = $2 \
             WHERE user_id = $1 AND revoked = 0 RETURNING jti",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
        ),
    };
    let access = sqlx::query(update)
        .bind(key)
        .bind(now_ms())
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get("jti"))
        .collect::<Result<Vec<String>, _>>()?;
    let refresh = sqlx::query(delete)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(Revoked { access, refresh })
}
