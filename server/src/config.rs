//! Command-line flags and environment, parsed once into [`Config`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// The development secret used when none is configured; the server logs a
/// warning when it is in use.
pub const DEV_JWT_SECRET: &str = "dev-jwt-secret-change-me";
/// The development admin token used when none is configured.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";
/// The shortest `--jwt-secret` and `--admin-token` accepted (the
/// development values aside): 256 bits, HS256's key size.
pub const MIN_SECRET_BYTES: usize = 32;

/// The Engine.IO ping interval and timeout the server accepts, in ms: 0
/// would ping without pause (and time out at once); past an hour a dead
/// peer holds its slot for hours, and the engine's clock arithmetic has
/// room to spare.
pub const PING_MS: std::ops::RangeInclusive<u64> = 10..=3_600_000;

/// The version `--version` prints: the package version and, in a git
/// checkout, the revision (`0.1.0 (git 0123456789ab)`), as the tools print.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("GIT_REVISION_SUFFIX"));

/// Reference server for the platform's real-time protocol.
///
/// Socket.IO (WebSocket and long-polling) and the REST API share one port.
/// Every flag can also be set through the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(name = "server", version = VERSION, about, long_about = None)]
pub struct Opts {
    /// Address to listen on; port 0 picks a free port (the bound address is
    /// logged at start).
    #[arg(long, env = "SERVER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://FILE` (embedded, created if missing) or
    /// `postgres://USER:PASS@HOST/DB`.
    #[arg(
        long,
        env = "SERVER_DATABASE_URL",
        default_value = "sqlite://platform.db"
    )]
    pub database_url: String,

    /// HS256 secret that signs and verifies access tokens; at least 32
    /// bytes. Unset: a development value, refused outside loopback unless
    /// --dev.
    #[arg(
        long,
        env = "SERVER_JWT_SECRET",
        default_value = DEV_JWT_SECRET,
        hide_default_value = true,
        hide_env_values = true
    )]
    pub jwt_secret: String,

    /// Bearer token of the operator (full REST access); at least 32 bytes.
    /// Unset: a development value, refused outside loopback unless --dev.
    #[arg(
        long,
        env = "SERVER_ADMIN_TOKEN",
        default_value = DEV_ADMIN_TOKEN,
        hide_default_value = true,
        hide_env_values = true
    )]
    pub admin_token: String,

    /// Allow the development JWT secret and admin token on a non-loopback
    /// address (anyone who can reach the server can then act as any user
    /// and as the operator).
    #[arg(long, env = "SERVER_DEV")]
    pub dev: bool,

    /// Lifetime of minted access tokens, in seconds (at most ten years).
    #[arg(long, env = "SERVER_ACCESS_TOKEN_TTL", default_value_t = 86_400)]
    pub access_token_ttl: i64,

    /// Milliseconds a request waits for a PostgreSQL connection before it
    /// is answered "unavailable" (100 to 60,000; SQLite does not wait).
    #[arg(
        long,
        env = "SERVER_DATABASE_ACQUIRE_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 3_000
    )]
    pub database_acquire_timeout_ms: u64,

    /// Seconds between `token:expired` and the server closing the socket.
    #[arg(long, env = "SERVER_TOKEN_GRACE", default_value_t = 30)]
    pub token_grace: u64,

    /// Engine.IO ping interval in milliseconds (10 to 3,600,000).
    #[arg(long, env = "SERVER_PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// Engine.IO ping timeout in milliseconds (10 to 3,600,000).
    #[arg(long, env = "SERVER_PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Client events accepted per connection per minute (the protocol says
    /// 100; raise it only for benchmarks).
    #[arg(long, env = "SERVER_CLIENT_EVENTS_PER_MINUTE", default_value_t = protocol::limits::CLIENT_EVENTS_PER_MINUTE)]
    pub client_events_per_minute: u32,

    /// Failed authentication attempts (CONNECT or REST) accepted per IP
    /// address per minute; beyond, the address's attempts are refused
    /// before any token is checked.
    #[arg(
        long,
        env = "SERVER_FAILED_AUTH_PER_ADDRESS_PER_MINUTE",
        value_name = "N",
        default_value_t = 30
    )]
    pub failed_auth_per_address_per_minute: u32,

    /// Application events accepted per room per second (the protocol says
    /// 10; raise it only for benchmarks).
    #[arg(long, env = "SERVER_APP_EVENTS_PER_ROOM_PER_SECOND", default_value_t = protocol::limits::APP_EVENTS_PER_ROOM_PER_SECOND)]
    pub app_events_per_room_per_second: u32,

    /// Application events accepted per application per minute (the
    /// protocol says 600; raise it only for benchmarks).
    #[arg(long, env = "SERVER_APP_EVENTS_PER_APP_PER_MINUTE", default_value_t = protocol::limits::APP_EVENTS_PER_APP_PER_MINUTE)]
    pub app_events_per_app_per_minute: u32,

    /// Most TCP connections open at once (HTTP, long-polling and
    /// WebSocket); one more is closed as soon as it is accepted. Keep it
    /// below the open-file limit (`ulimit -n`) less about 100.
    #[arg(
        long,
        env = "SERVER_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 16_384
    )]
    pub max_connections: usize,

    /// Most TCP connections open at once from one IP address; one more is
    /// closed as soon as it is accepted. 0: no cap (behind a reverse proxy,
    /// every connection comes from the proxy; load tests from one address).
    #[arg(
        long,
        env = "SERVER_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N",
        default_value_t = 1_024
    )]
    pub max_connections_per_address: usize,

    /// Milliseconds a connection has to send a complete request head
    /// (request line and headers), counted from its accept or from the end
    /// of its previous response: also the keep-alive idle timeout.
    #[arg(
        long,
        env = "SERVER_HEADER_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 10_000
    )]
    pub header_timeout_ms: u64,

    /// Redis URL (`redis://HOST:PORT`): runs this server as one node of a
    /// cluster. Broadcasts reach the sockets of every node (Socket.IO Redis
    /// adapter), and presence, the application-event limits and token
    /// revocation become cluster-wide. Use a shared PostgreSQL
    /// `--database-url` with it. `?protocol=resp3` is added when missing.
    #[arg(long = "redis", env = "SERVER_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// With `--redis`: seconds after which a node that stopped refreshing
    /// its heartbeat (killed, cut off) is considered gone and the others
    /// remove its users from presence.
    #[arg(
        long,
        env = "SERVER_REDIS_NODE_TTL",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub redis_node_ttl: u64,

    /// Log format.
    #[arg(long, env = "SERVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "SERVER_LOG", default_value = "info")]
    pub log: String,

    /// Hidden: `server completions SHELL`, `server man --out DIR` instead
    /// of serving.
    #[command(subcommand)]
    pub docs: Option<clidoc::DocCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The HTTP listener's limits ([`crate::listener`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IP address; 0: no cap.
    pub max_per_address: usize,
    /// Time allowed for a request head; also the keep-alive idle timeout.
    pub header_timeout: Duration,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// How long a request waits for a PostgreSQL connection.
    pub database_acquire_timeout: Duration,
    pub jwt_secret: String,
    pub admin_token: String,
    pub access_token_ttl: Duration,
    pub token_grace: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub client_events_per_minute: u32,
    pub failed_auth_per_address_per_minute: u32,
    pub app_events_per_room_per_second: u32,
    pub app_events_per_app_per_minute: u32,
    pub http: HttpLimits,
    /// `Some`: a cluster node sharing this Redis (a RESP3 URL).
    pub redis_url: Option<String>,
    /// How long a silent node keeps its presence entries.
    pub redis_node_ttl: Duration,
    /// An artificial delay before each client event is handled, for tests
    /// that need a slower build of this server (`reports compare` must
    /// flag it). Zero in every configuration but a test's: no flag sets it.
    pub event_delay: Duration,
}

impl Config {
    /// The configuration of an in-process server ([`crate::Embedded`]):
    /// loopback port 0, the given database URL, the development secrets
    /// (which never leave loopback) and the protocol's limits.
    pub fn loopback(database_url: impl Into<String>) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            database_url: database_url.into(),
            database_acquire_timeout: crate::store::POSTGRES_ACQUIRE_TIMEOUT,
            jwt_secret: DEV_JWT_SECRET.into(),
            admin_token: DEV_ADMIN_TOKEN.into(),
            access_token_ttl: Duration::from_secs(86_400),
            token_grace: Duration::from_secs(30),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            client_events_per_minute: protocol::limits::CLIENT_EVENTS_PER_MINUTE,
            // Its clients are on this machine, and a conformance run makes
            // many failed attempts on purpose.
            failed_auth_per_address_per_minute: 100_000,
            app_events_per_room_per_second: protocol::limits::APP_EVENTS_PER_ROOM_PER_SECOND,
            app_events_per_app_per_minute: protocol::limits::APP_EVENTS_PER_APP_PER_MINUTE,
            // Every client of an in-process server is on this machine (a
            // load test's thousands of them too): no per-address cap.
            http: HttpLimits {
                max_connections: 16_384,
                max_per_address: 0,
                header_timeout: Duration::from_secs(10),
            },
            redis_url: None,
            redis_node_ttl: Duration::from_secs(10),
            event_delay: Duration::ZERO,
        }
    }

    /// Whether a development secret is in use (the server warns).
    pub fn uses_dev_secrets(&self) -> bool {
        self.jwt_secret == DEV_JWT_SECRET || self.admin_token == DEV_ADMIN_TOKEN
    }
}

impl TryFrom<&Opts> for Config {
    type Error = anyhow::Error;

    fn try_from(o: &Opts) -> anyhow::Result<Config> {
        anyhow::ensure!(!o.jwt_secret.is_empty(), "--jwt-secret must not be empty");
        anyhow::ensure!(!o.admin_token.is_empty(), "--admin-token must not be empty");
        for (flag, value, dev_value) in [
            ("--jwt-secret", &o.jwt_secret, DEV_JWT_SECRET),
            ("--admin-token", &o.admin_token, DEV_ADMIN_TOKEN),
        ] {
            anyhow::ensure!(
                value == dev_value || value.len() >= MIN_SECRET_BYTES,
                "{flag} must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            );
        }
        let dev_secrets = o.jwt_secret == DEV_JWT_SECRET || o.admin_token == DEV_ADMIN_TOKEN;
        anyhow::ensure!(
            !dev_secrets || o.listen.ip().is_loopback() || o.dev,
            "refusing to serve {} with the development JWT secret or admin token, which \
             anyone can read: set --jwt-secret and --admin-token (SERVER_JWT_SECRET, \
             SERVER_ADMIN_TOKEN; at least {MIN_SECRET_BYTES} bytes each), or pass --dev",
            o.listen
        );
        anyhow::ensure!(
            (1..=crate::auth::MAX_TOKEN_TTL_SECS).contains(&o.access_token_ttl),
            "--access-token-ttl must be between 1 and {} seconds",
            crate::auth::MAX_TOKEN_TTL_SECS
        );
        for (flag, ms) in [
            ("--ping-interval-ms", o.ping_interval_ms),
            ("--ping-timeout-ms", o.ping_timeout_ms),
        ] {
            anyhow::ensure!(
                PING_MS.contains(&ms),
                "{flag} must be between {} and {} ms",
                PING_MS.start(),
                PING_MS.end()
            );
        }
        anyhow::ensure!(
            o.database_url.starts_with("sqlite:") || o.database_url.starts_with("postgres"),
            "--database-url must start with sqlite:// or postgres://"
        );
        if let Some(url) = &o.redis_url {
            anyhow::ensure!(
                url.starts_with("redis://"),
                "--redis must start with redis:// (TLS is not built in)"
            );
        }
        anyhow::ensure!(o.max_connections > 0, "--max-connections must be positive");
        anyhow::ensure!(
            o.header_timeout_ms > 0,
            "--header-timeout-ms must be positive"
        );
        anyhow::ensure!(
            (100..=60_000).contains(&o.database_acquire_timeout_ms),
            "--database-acquire-timeout-ms must be between 100 and 60000"
        );
        anyhow::ensure!(
            o.redis_node_ttl >= 2,
            "--redis-node-ttl must be at least 2 seconds"
        );
        Ok(Config {
            listen: o.listen,
            database_url: o.database_url.clone(),
            database_acquire_timeout: Duration::from_millis(o.database_acquire_timeout_ms),
            jwt_secret: o.jwt_secret.clone(),
            admin_token: o.admin_token.clone(),
            access_token_ttl: Duration::from_secs(o.access_token_ttl as u64),
            token_grace: Duration::from_secs(o.token_grace),
            ping_interval: Duration::from_millis(o.ping_interval_ms),
            ping_timeout: Duration::from_millis(o.ping_timeout_ms),
            client_events_per_minute: o.client_events_per_minute,
            failed_auth_per_address_per_minute: o.failed_auth_per_address_per_minute,
            app_events_per_room_per_second: o.app_events_per_room_per_second,
            app_events_per_app_per_minute: o.app_events_per_app_per_minute,
            http: HttpLimits {
                max_connections: o.max_connections,
                max_per_address: o.max_connections_per_address,
                header_timeout: Duration::from_millis(o.header_timeout_ms),
            },
            redis_url: o.redis_url.as_deref().map(crate::cluster::resp3_url),
            redis_node_ttl: Duration::from_secs(o.redis_node_ttl),
            event_delay: Duration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn completions_and_man_pages_mention_every_flag() {
        let cmd = Opts::command();
        cmd.clone().debug_assert();
        assert_eq!(clidoc::missing_mentions(&cmd), Vec::<String>::new());
        let o = Opts::try_parse_from(["server", "completions", "zsh"]).unwrap();
        assert_eq!(
            o.docs,
            Some(clidoc::DocCommand::Completions {
                shell: clidoc::Shell::Zsh
            })
        );
        assert_eq!(Opts::try_parse_from(["server"]).unwrap().docs, None);
    }
}
