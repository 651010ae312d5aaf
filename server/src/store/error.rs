//! The one error type of the storage layer.

/// Every way a store operation can fail. The REST layer maps the variants
/// to the codes of N1:
///
/// | variant | HTTP | code |
/// |---|---|---|
/// | `NotFound` | 404 | `NOT_FOUND` |
/// | `RoomNotFound` | 404 | `ROOM_NOT_FOUND` |
/// | `Conflict` | 409 | `CONFLICT` |
/// | `Invalid` | 400 | `INVALID_PAYLOAD` |
/// | `Forbidden` | 403 | `PERMISSION_DENIED` |
/// | `Db` that [`is_unavailable`](StoreError::is_unavailable) | 503 | `UNAVAILABLE` |
/// | other `Db`, `Migrate`, `Internal` | 500 | `INTERNAL` |
///
/// The message of a `Db` error (which may name tables, columns or hosts)
/// is logged, never sent (protocol notes N18).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An object other than a room is unknown (`what`: `user`, `prize`,
    /// `participant`, `winner`, `question`, `app`, `notification`).
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    /// The room is unknown.
    #[error("Room not found: {0}")]
    RoomNotFound(String),
    /// The change contradicts the current state (already a participant, no
    /// prize left, too few eligible participants, id taken, ...).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed (bad status, answer not an option,
    /// already answered, ...).
    #[error("{0}")]
    Invalid(String),
    /// The object exists but belongs to someone else, or the caller is not
    /// allowed to act on it (e.g. not a participant of the room).
    #[error("{0}")]
    Forbidden(String),
    /// The database failed. Unique-constraint violations never end up here:
    /// they become [`StoreError::Conflict`].
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// Applying the migrations failed at connect.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something that should not fail did (e.g. the OS random generator).
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether the database could not be reached or is going away (refused
    /// or broken connection, pool timeout, server shutting down), as
    /// opposed to refusing a statement: a retry later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLSTATE class 08 (connection exception) and 57P0x (the
            // server is shutting down or starting).
            StoreError::Db(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
            _ => false,
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }
}

/// PostgreSQL's SQLSTATE `character_not_in_repertoire`: a NUL byte in a
/// text value.
const NUL_IN_TEXT: &str = "22021";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // The driver's message names the table and the constraint:
            // the callers that can say more check for the id first.
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".into())
            }
            // PostgreSQL refuses NUL in text (SQLSTATE 22021): the input is
            // wrong, not the server (SQLite stores it).
            sqlx::Error::Database(db) if db.code().as_deref() == Some(NUL_IN_TEXT) => {
                StoreError::Invalid("text must not contain NUL characters".into())
            }
            _ => StoreError::Db(e),
        }
    }
}
