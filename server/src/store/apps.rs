//! Registered applications and their tokens (N1).

use sqlx::Row;

use super::{
    App, Store, StoreError, constant_time_eq, now_ms, random_hex, require_text, secret_digest,
};

const APP_BY_ID: &str = "SELECT id, name, permissions_json, token_hash, created_at \
     FROM apps WHERE id = $1";

/// Whether `app_id` is a valid application id: `[a-z0-9_-]{1,64}`.
pub fn is_valid_app_id(app_id: &str) -> bool {
    (1..=64).contains(&app_id.len())
        && app_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The platform's own event prefix that `app_id` is or starts with, if
/// any: the part before `:` of every event name in the protocol's catalog
/// (`room`, `token`, `quiz`, ...), or the whole name when it has none
/// (`error`). An application with such an id could publish `room:deleted`
/// or `token:expired` to every subscriber of a room.
pub fn platform_prefix_of(app_id: &str) -> Option<&'static str> {
    protocol::CATALOG
        .iter()
        .map(|spec| spec.name.split(':').next().unwrap_or(spec.name))
        .filter(|prefix| !prefix.is_empty())
        .find(|prefix| app_id.starts_with(prefix))
}

/// Trims, drops empties and duplicates, keeps the first-seen order.
fn normalize_permissions(permissions: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(permissions.len());
    for p in permissions {
        let p = p.trim().to_string();
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn permissions_json(permissions: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(permissions).map_err(|e| StoreError::Internal(e.to_string()))
}

impl Store {
    /// Registers an application under an operator-chosen id
    /// (`[a-z0-9_-]{1,64}`, else `Invalid`; `Conflict` if taken). Returns it
    /// and its bearer token (`app_` + 64 hex characters from the OS CSPRNG),
    /// which is shown only now: only a digest is stored.
    pub async fn create_app(
        &self,
        app_id: &str,
        name: &str,
        permissions: Vec<String>,
    ) -> Result<(App, String), StoreError> {
        if !is_valid_app_id(app_id) {
            return Err(StoreError::Invalid(format!(
                "app id must match [a-z0-9_-]{{1,64}}: {app_id:?}"
            )));
        }
        if let Some(prefix) = platform_prefix_of(app_id) {
            return Err(StoreError::Invalid(format!(
                "app id {app_id:?} starts with the platform's event prefix {prefix:?}"
            )));
        }
        require_text("name", name)?;
        let app = App {
            id: app_id.to_string(),
            name: name.to_string(),
            permissions: normalize_permissions(permissions),
            created_at: now_ms(),
        };
        let token = format!("app_{}", random_hex(32)?);
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT id FROM apps WHERE id = $1")
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("app id {app_id} is taken")));
        }
        sqlx::query(
            "INSERT INTO apps (id, name, permissions_json, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(permissions_json(&app.permissions)?)
        .bind(secret_digest(&token)?)
        .bind(app.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((app, token))
    }

    /// An application by id.
    pub async fn get_app(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        sqlx::query(APP_BY_ID)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| App::from_row(&row))
            .transpose()
    }

    /// Every application, by id.
    pub async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        sqlx::query("SELECT id, name, permissions_json, created_at FROM apps ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(App::from_row)
            .collect()
    }

    /// The application if `token` is its token (digests compared in
    /// constant time); `None` for an unknown app or a wrong token.
    pub async fn verify_app(&self, app_id: &str, token: &str) -> Result<Option<App>, StoreError> {
        let digest = secret_digest(token)?;
        let Some(row) = sqlx::query(APP_BY_ID)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get("token_hash")?;
        if !constant_time_eq(&stored, &digest) {
            return Ok(None);
        }
        Ok(Some(App::from_row(&row)?))
    }

    /// Replaces an application's permissions; returns the app after.
    /// `NotFound` (app).
    pub async fn set_app_permissions(
        &self,
        app_id: &str,
        permissions: Vec<String>,
    ) -> Result<App, StoreError> {
        let permissions = normalize_permissions(permissions);
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(APP_BY_ID)
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("app", app_id))?;
        let mut app = App::from_row(&row)?;
        sqlx::query("UPDATE apps SET permissions_json = $2 WHERE id = $1")
            .bind(app_id)
            .bind(permissions_json(&permissions)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        app.permissions = permissions;
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids() {
        assert!(is_valid_app_id("lottery"));
        assert!(is_valid_app_id("a-b_c9"));
        assert!(is_valid_app_id(&"x".repeat(64)));
        assert!(!is_valid_app_id(&"x".repeat(65)));
        assert!(!is_valid_app_id(""));
        assert!(!is_valid_app_id("Lottery"));
        assert!(!is_valid_app_id("a b"));
        assert!(!is_valid_app_id("a.b"));
    }

    #[test]
    fn permissions_are_normalized() {
        let p = normalize_permissions(vec![
            " rooms:manage ".into(),
            "".into(),
            "rooms:manage".into(),
            "realtime:publish".into(),
        ]);
        assert_eq!(p, vec!["rooms:manage", "realtime:publish"]);
    }
}
