//! The reference server of the platform's real-time protocol.
//!
//! One port serves Socket.IO v4 (WebSocket and HTTP long-polling, through
//! socketioxide) and the REST API (axum). The layers, from the wire in:
//!
//! * [`realtime`]: connect-time auth, namespaces, every client event;
//! * [`api`]: REST endpoints for every domain change, app events, tokens;
//! * [`state`]: what both share, and the one path events leave by;
//! * [`store`]: the database (embedded SQLite by default, PostgreSQL by URL);
//! * [`auth`], [`presence`], [`ratelimit`], [`metrics`]: the rules.
//!
//! Tests and the other tools embed it with [`start`]; the `server` binary
//! calls [`run`].

pub mod api;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod presence;
pub mod ratelimit;
pub mod realtime;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use socketioxide::SocketIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Config, Opts};
pub use state::AppState;

/// A server started by [`start`].
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    pub state: AppState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

impl Running {
    /// `http://ADDR`, the base URL of the REST API and of Socket.IO.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every socket, then stops serving HTTP; waits at most 10 s.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.state.io.close().await;
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(joined) => joined.context("server task")?.context("serving HTTP")?,
            Err(_) => anyhow::bail!("the server did not stop within 10 s"),
        }
        Ok(())
    }
}

/// Opens the store, binds the listener and serves until [`Running::shutdown`].
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = store::Store::connect(&database_url(&config.database_url))
        .await
        .with_context(|| format!("opening the database {}", redact(&config.database_url)))?;
    let tokens = auth::Tokens::new(&config.jwt_secret, config.access_token_ttl)?;
    let (layer, io) = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(protocol::limits::MAX_ENGINE_PACKET_BYTES)
        .ws_read_buffer_size(4096)
        .build_layer();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config, store, tokens, io);
    realtime::attach(&state);
    let app = api::router(state.clone()).layer(layer);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        addr,
        state,
        stop,
        task,
    })
}

/// An SQLite URL without an open mode gets `mode=rwc`: the embedded
/// database file is created on first start.
fn database_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

/// Hides the password of a database URL for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The `server` binary: logs, start, wait for SIGTERM or Ctrl-C, stop.
pub async fn run(opts: Opts) -> anyhow::Result<()> {
    init_logging(&opts);
    let config = Config::try_from(&opts)?;
    if config.uses_dev_secrets() {
        tracing::warn!(
            "using the development JWT secret or admin token: set SERVER_JWT_SECRET and SERVER_ADMIN_TOKEN outside development"
        );
    }
    let running = start(config.clone()).await?;
    tracing::info!(
        addr = %running.addr,
        database = %redact(&config.database_url),
        "listening on http://{}",
        running.addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(opts: &Opts) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&opts.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match opts.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@127.0.0.1:5432/db"),
            "postgres://u:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            super::redact("sqlite://platform.db"),
            "sqlite://platform.db"
        );
    }
}
