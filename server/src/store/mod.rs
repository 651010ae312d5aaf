//! The reference server's storage layer: every domain object the protocol
//! talks about, in SQLite (default) or PostgreSQL, through `sqlx::AnyPool`.
//!
//! * One [`Store`] per process; it is cheap to clone (a pool handle).
//! * Every domain change runs in one transaction and returns what the caller
//!   needs to build the event that follows it (N1: the event is broadcast
//!   only after the change is committed, i.e. after the call returns `Ok`).
//! * Times are stored as Unix milliseconds; domain structs keep them as
//!   `i64` milliseconds and serialize them as ISO-8601 strings (N7).
//! * Concurrency: on SQLite every writing transaction starts with
//!   `BEGIN IMMEDIATE` (writers are serialized, waiting up to the busy
//!   timeout); on PostgreSQL the operations that read-then-write take a row
//!   lock first (a no-op `UPDATE` of the room or question row), and unique
//!   constraints back up every "at most one" rule on both databases.
//! * Randomness: ids come from `rand::rng()` (ChaCha12, seeded from the OS);
//!   tokens and the prize draw use the operating system's CSPRNG
//!   (`rand::rngs::OsRng`) directly (N12).

mod apps;
mod error;
mod models;
mod notifications;
mod prizes;
mod quiz;
mod rooms;
mod users;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::distr::{Alphanumeric, SampleString};
use rand::{TryRngCore, rngs::OsRng};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::{Any, AnyPool, SqlSafeStr, Transaction};

pub use apps::{is_valid_app_id, platform_prefix_of};
pub use error::StoreError;
pub use models::*;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a connection URL names, if it is one we support.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// How long an SQLite connection waits for the write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a PostgreSQL connection by default (sqlx's
/// default is 30 s; `--database-acquire-timeout-ms` changes it): while the
/// database is down each attempt waits this long, and
/// clients should hear "unavailable" before they give up themselves (the
/// usual Socket.IO connect timeout is 5 s or more; protocol notes N18).
/// SQLite keeps sqlx's default: its failures are immediate, and its writers
/// queue for the one write lock.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a refresh token is valid when created with
/// [`Store::create_refresh_token`].
pub const REFRESH_TOKEN_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The storage layer. Clone it freely: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `sqlite://path?mode=rwc` (or `sqlite::memory:`) or
    /// `postgres://...` and runs the migrations for that database. An SQLite
    /// URL without `mode=` gets `mode=rwc`: the file is created if missing.
    ///
    /// SQLite connections use WAL, `synchronous=FULL` (a committed change
    /// survives `kill -9` and power loss), a busy timeout and foreign keys.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_waiting(url, POSTGRES_ACQUIRE_TIMEOUT).await
    }

    /// [`Store::connect`] where a PostgreSQL request waits at most
    /// `acquire_timeout` for a connection (SQLite ignores it).
    pub async fn connect_waiting(
        url: &str,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unsupported database URL (want sqlite:// or postgres://): {}",
                redact_url(url)
            ))
        })?;
        let options = match backend {
            Backend::Sqlite => AnyPoolOptions::new().max_connections(8),
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(acquire_timeout),
        };
        let url = match backend {
            Backend::Sqlite => sqlite_create_if_missing(url),
            Backend::Postgres => url.to_string(),
        };
        Self::connect_with(&url, backend, options).await
    }

    /// A private in-memory SQLite database, for tests and throwaway runs.
    ///
    /// It lives as long as the returned store (and its clones): the pool
    /// holds exactly one connection that is never closed. Nothing is
    /// durable, and writers are serialized by that single connection.
    pub async fn memory() -> Result<Store, StoreError> {
        let options = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        Self::connect_with("sqlite::memory:", Backend::Sqlite, options).await
    }

    async fn connect_with(
        url: &str,
        backend: Backend,
        options: PoolOptions<Any>,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let connect_options = AnyConnectOptions::from_str(url)?;
        let options = match backend {
            Backend::Postgres => options,
            Backend::Sqlite => options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // `journal_mode` is persistent and a no-op once the file
                    // is in WAL; the others are per connection.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .fetch_all(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    // sqlx-sqlite's own default is 5 s; make it explicit.
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .fetch_all(&mut *conn)
                        .await?;
                    Ok(())
                })
            }),
        };
        let pool = options.connect_with(connect_options).await?;
        migrator(backend).run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (for health checks and metrics).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; later calls fail. Waits for checked-out
    /// connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock up front (`BEGIN IMMEDIATE`), so a transaction never fails
    /// half-way with `SQLITE_BUSY` because another writer got in between
    /// its read and its write; it waits for the busy timeout instead.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The schema of `backend`, embedded in the binary (`migrations/`), for
/// sqlx's migrator. Listed by hand rather than with `sqlx::migrate!`: the
/// macro needs sqlx's `macros` feature, which builds a second, host-side
/// sqlx with both database drivers (bundled SQLite's C included) only to
/// read these files at compile time. Version, description and SQL are what
/// the macro would take from the file name and content, so databases
/// migrated before keep matching checksums. A new migration is one more
/// entry per backend.
fn migrator(backend: Backend) -> Migrator {
    let files: [(i64, &str, &str); 3] = match backend {
        Backend::Sqlite => [
            (
                1,
                "init",
                include_str!("../../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "token families",
                include_str!("../../migrations/sqlite/0002_token_families.sql"),
            ),
            (
                3,
                "deleted user tokens",
                include_str!("../../migrations/sqlite/0003_deleted_user_tokens.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                1,
                "init",
                include_str!("../../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "token families",
                include_str!("../../migrations/postgres/0002_token_families.sql"),
            ),
            (
                3,
                "deleted user tokens",
                include_str!("../../migrations/postgres/0003_deleted_user_tokens.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The longest id the store holds: every id is [`new_id`]'s (at most 21
/// bytes for the longest prefix); the bound leaves room and lets callers
/// refuse a longer id from a client before any lookup or allocation.
pub const MAX_ID_BYTES: usize = 64;

/// A fresh id: `prefix`, `_`, then 16 random alphanumeric characters
/// (about 95 bits), e.g. `room_3fK9aZ0qLm2XbT7c`.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    Alphanumeric.append_string(&mut rand::rng(), &mut id, 16);
    id
}

/// `n` bytes from the operating system's CSPRNG, hex encoded.
fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; n];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| StoreError::Internal(format!("OS random generator failed: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The digest stored in place of a bearer secret (refresh and app tokens):
/// HMAC-SHA256 under a fixed, public key, base64url. A database dump thus
/// does not reveal usable tokens. (No hashing crate is a direct dependency;
/// `jsonwebtoken`, which the server uses for JWTs anyway, provides HMAC.)
fn secret_digest(secret: &str) -> Result<String, StoreError> {
    const KEY: &[u8] = b"platform-reference-server/store/secret-digest/v1";
    let key = jsonwebtoken::EncodingKey::from_secret(KEY)
        .map_err(|e| StoreError::Internal(format!("digest key: {e}")))?;
    jsonwebtoken::crypto::sign(secret.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .map_err(|e| StoreError::Internal(format!("digest failed: {e}")))
}

/// Compares two strings in time that depends only on their lengths.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `url` with `mode=rwc` added when it names an SQLite file without a
/// `mode` parameter.
fn sqlite_create_if_missing(url: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let in_memory = path.ends_with(":memory:") || path.trim_start_matches("sqlite:").is_empty();
    let has_mode = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode=")));
    if in_memory || has_mode {
        return url.to_string();
    }
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}&mode=rwc"),
        _ => format!("{path}?mode=rwc"),
    }
}

/// A URL with its secrets replaced, for logs and error messages: the
/// password of the user info, and the value of every query parameter whose
/// name mentions a password, secret, token or key (`?password=...`,
/// `sslpassword`, ...), as PostgreSQL and Redis URLs accept them there too.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.find("://") {
        Some(scheme_end) => {
            let rest = &base[scheme_end + 3..];
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    let masked = if userinfo.contains(':') {
                        format!("{user}:***")
                    } else {
                        user.to_owned()
                    };
                    format!(
                        "{}{masked}@{host}{}",
                        &base[..scheme_end + 3],
                        &rest[authority.len()..]
                    )
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_parameter(k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Whether a URL query parameter named `name` holds a secret.
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|w| name.contains(w))
}

/// Rejects an empty (or all-blank) required text field.
fn require_text(field: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{field} must not be empty")));
    }
    Ok(())
}

/// Rejects a value not in `allowed`.
/// `value` as a value of one of the protocol's closed vocabularies
/// (`protocol::RoomStatus`, `Visibility`, `Role`: their `parse` and
/// `names`), or `Invalid` naming the allowed values.
fn one_of<T>(
    field: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    names: fn() -> Vec<&'static str>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| {
        StoreError::Invalid(format!(
            "{field} must be one of {}, not {value:?}",
            names().join(", ")
        ))
    })
}

/// A stored count or quantity as `u32` (the columns only ever hold values
/// that came from `u32`s).
fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn the_embedded_migrations_are_every_file_of_each_backend() {
        for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            let listed: Vec<String> = migrator(backend)
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_")))
                .collect();
            assert_eq!(
                listed, files,
                "{dir}: list every migration file in `migrator`"
            );
            for m in migrator(backend).iter() {
                let file = path.join(format!(
                    "{:04}_{}.sql",
                    m.version,
                    m.description.replace(' ', "_")
                ));
                assert_eq!(m.sql.as_str(), std::fs::read_to_string(file).unwrap());
            }
        }
    }

    #[test]
    fn ids_have_prefix_and_enough_entropy() {
        let a = new_id("room");
        let b = new_id("room");
        assert!(a.starts_with("room_"));
        assert_eq!(a.len(), "room_".len() + 16);
        assert!(a[5..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn digests_are_stable_and_distinct() {
        let d1 = secret_digest("abc").unwrap();
        assert_eq!(d1, secret_digest("abc").unwrap());
        assert_ne!(d1, secret_digest("abd").unwrap());
        assert!(!d1.contains("abc"));
        assert!(constant_time_eq(&d1, &d1.clone()));
        assert!(!constant_time_eq("a", "ab"));
        assert!(!constant_time_eq("ab", "ac"));
    }

    #[test]
    fn urls_are_recognized_and_redacted() {
        assert_eq!(
            Backend::from_url("sqlite://x.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::from_url("mysql://h/db"), None);
        assert_eq!(
            redact_url("postgres://me:secret@host:5432/db"),
            "postgres://me:***@host:5432/db"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        // A password in the query is one too (hardening, issue 13 item 10).
        assert_eq!(
            redact_url("postgres://me@host/db?sslmode=require&password=secret&sslpassword=s2"),
            "postgres://me@host/db?sslmode=require&password=***&sslpassword=***"
        );
        // An `@` in the query is not the user info's end.
        assert_eq!(
            redact_url("postgres://me:secret@host/db?application_name=a@b"),
            "postgres://me:***@host/db?application_name=a@b"
        );
        assert_eq!(
            redact_url("redis://:secret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
    }

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(
            sqlite_create_if_missing("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite:///tmp/a.db?cache=shared"),
            "sqlite:///tmp/a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite::memory:"),
            "sqlite::memory:"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://?mode=memory"),
            "sqlite://?mode=memory"
        );
    }

    #[test]
    fn random_hex_is_hex() {
        let h = random_hex(32).unwrap();
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
