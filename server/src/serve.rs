//! Start and stop: opens the store, joins the cluster, builds Socket.IO,
//! attaches the layers and serves them on one port ([`start`]); closes
//! them in the order a cluster node needs ([`Running::shutdown`]); and the
//! `server` binary around both ([`run`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use socketioxide::SocketIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, LogFormat, Opts};
use crate::state::AppState;
use crate::{api, auth, cluster, listener, realtime, sockets, state, store};

/// How long [`Running::shutdown`] lets HTTP requests in flight finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long each of a cluster node's goodbyes to Redis (leaving presence,
/// closing the sockets, ending its subscriptions) may take at shutdown. With Redis unreachable
/// its client retries each command for about 15 s; the other nodes reap a
/// silent node's presence after `--redis-node-ttl` anyway.
pub const CLUSTER_GOODBYE_BOUND: Duration = Duration::from_secs(2);

/// How often expired access-token records and refresh tokens are deleted
/// (also once at start); every node of a cluster does it, harmlessly.
pub const TOKEN_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// A server started by [`start`].
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    pub state: AppState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    purge: JoinHandle<()>,
    sweep: JoinHandle<()>,
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

    /// Closes every socket, then stops serving HTTP: requests in flight get
    /// [`SHUTDOWN_GRACE`] to finish, then their connections are cut.
    ///
    /// What can outlive the grace period is a long-poll request of an
    /// Engine.IO session that has no namespace socket (a client between
    /// the handshake and CONNECT, or one whose CONNECT was refused and that
    /// did not close its session): socketioxide's `close()` closes namespace
    /// sockets only, so nothing answers that request before the next ping.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let Running {
            state,
            stop,
            mut task,
            purge,
            sweep,
            ..
        } = self;
        purge.abort();
        sweep.abort();
        // A cluster node first leaves presence, while it can still announce
        // it; then its sockets close; then its Redis subscriptions end.
        goodbye("leaving presence", sockets::node::leave(&state)).await;
        match &state.cluster {
            // The Redis adapter of every namespace unsubscribes as it closes.
            Some(_) => goodbye("closing the sockets", state.io.close()).await,
            None => state.io.close().await,
        }
        if let Some(cluster) = &state.cluster {
            goodbye("ending the Redis subscriptions", cluster.close()).await;
        }
        let _ = stop.send(());
        let served = match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(joined) => joined
                .context("server task")
                .and_then(|r| r.context("serving HTTP")),
            Err(_) => {
                tracing::warn!(
                    "HTTP requests still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
                );
                task.abort();
                Ok(())
            }
        };
        state.store.close().await;
        served
    }
}

/// Runs one of a cluster node's goodbyes to Redis for at most
/// [`CLUSTER_GOODBYE_BOUND`].
async fn goodbye(what: &str, step: impl Future<Output = ()>) {
    if tokio::time::timeout(CLUSTER_GOODBYE_BOUND, step)
        .await
        .is_err()
    {
        tracing::warn!("{what} took over {CLUSTER_GOODBYE_BOUND:?}: Redis unreachable?");
    }
}

/// Copies the request head (URI, header names and values) out of hyper's
/// read buffer.
///
/// hyper parses headers as zero-copy slices of the connection's 8-16 KiB
/// read buffer, and socketioxide keeps every socket's request head for the
/// socket's life, so each WebSocket would pin its whole read buffer. With
/// copies, only the few hundred bytes of the head stay (measured: -16 KiB
/// per connection; see the README's benchmark).
async fn detach_request_head(req: axum::extract::Request) -> axum::extract::Request {
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
    let (mut parts, body) = req.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).expect("a parsed name is valid");
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).expect("a parsed value is valid");
        copy.set_sensitive(value.is_sensitive());
        headers.append(name, copy);
    }
    parts.headers = headers;
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    axum::extract::Request::from_parts(parts, body)
}

/// Gives an Engine.IO handshake request (a `/socket.io/` request without
/// `sid`) the client-event budget of the connection it opens: socketioxide
/// keeps the handshake's request head for the connection's life and hands
/// it to every namespace socket on it, which so share one budget (N8).
async fn attach_connection_budget(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
) -> axum::extract::Request {
    let handshake = req.uri().path().starts_with("/socket.io/")
        && req
            .uri()
            .query()
            .is_none_or(|q| !q.split('&').any(|pair| pair.starts_with("sid=")));
    if handshake {
        let budget = std::sync::Arc::new(state.client_budgets.connection());
        req.extensions_mut().insert(budget);
    }
    req
}

/// Binds with a deep accept queue: thousands of clients connecting at once
/// (a reconnect storm, a load test) overflow the default one and wait a
/// second for SYN retries.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Opens the store (and, with `redis_url`, joins the cluster), binds the
/// listener and serves until [`Running::shutdown`].
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store =
        store::Store::connect_waiting(&config.database_url, config.database_acquire_timeout)
            .await
            .with_context(|| {
                format!(
                    "opening the database {}",
                    store::redact_url(&config.database_url)
                )
            })?;
    let tokens = auth::Tokens::new(&config.jwt_secret, config.access_token_ttl)?;
    let cluster = match &config.redis_url {
        None => None,
        Some(url) => Some(std::sync::Arc::new(
            cluster::Cluster::connect(url, config.redis_node_ttl)
                .await
                .with_context(|| format!("joining the cluster at {}", store::redact_url(url)))?,
        )),
    };
    let builder = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(protocol::limits::MAX_ENGINE_PACKET_BYTES)
        // engineioxide applies `max_payload` to polling only: the WebSocket
        // limit is set separately, so both transports close beyond 1 MB (N15).
        .ws_max_message_size(protocol::limits::MAX_ENGINE_PACKET_BYTES as usize)
        .ws_max_frame_size(protocol::limits::MAX_ENGINE_PACKET_BYTES as usize)
        .ws_read_buffer_size(1024)
        // Binary attachments are not supported (N9): a binary packet header
        // announcing any attachment is a parse error, which closes the
        // connection, instead of a packet left waiting for its attachments.
        .with_parser(socketioxide::ParserConfig::common().max_incoming_binaries(0));
    // The adapter is a type parameter of socketioxide: one branch each.
    type WithLayer = Box<dyn FnOnce(Router) -> Router + Send>;
    let (io, with_layer): (state::Io, WithLayer) = match &cluster {
        None => {
            let (layer, io) = builder.build_layer();
            (
                state::Io::Local(io),
                Box::new(move |r: Router| r.layer(layer)),
            )
        }
        Some(c) => {
            let (layer, io) = builder
                .with_adapter::<cluster::Adapter>(c.adapter())
                .build_layer();
            (
                state::Io::Cluster(io),
                Box::new(move |r: Router| r.layer(layer)),
            )
        }
    };
    let listener = bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config, store, tokens, io, cluster.clone());
    realtime::attach(&state).await?;
    sockets::node::join(&state).await?;
    let app = with_layer(api::router(state.clone()))
        .layer(axum::middleware::map_request_with_state(
            state.clone(),
            attach_connection_budget,
        ))
        .layer(axum::middleware::map_request(detach_request_head));
    let (stop, stopped) = oneshot::channel::<()>();
    let limits = state.config.http;
    let metrics = state.metrics.http();
    let task = tokio::spawn(async move {
        listener::serve(listener, app, limits, metrics, async {
            let _ = stopped.await;
        })
        .await;
        Ok(())
    });
    let purge = spawn_token_purge(state.store.clone());
    let sweep = spawn_revocation_sweep(state.clone());
    Ok(Running {
        addr,
        state,
        stop,
        task,
        purge,
        sweep,
    })
}

/// Deletes expired token records now and every [`TOKEN_PURGE_EVERY`]: an
/// expired token is refused by its `exp` before its record is looked at,
/// and without this the tables grow with every token ever minted.
fn spawn_token_purge(store: store::Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TOKEN_PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match store.purge_expired_tokens(auth::unix_now_ms()).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "expired token records purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired token records failed"),
            }
        }
    })
}

/// Re-reads the revocations every [`sockets::commands::REVOCATION_SWEEP`]
/// and drops their sockets on this node (a deleted user's tokens count as
/// revoked at the deletion): a revocation's or a deletion's cluster command
/// can miss a node (Redis down, the node too slow to answer), which would
/// otherwise keep the revoked token's sockets until the token expires. It
/// also closes a socket whose connect checked its token just before the
/// revocation and registered just after the command ran.
fn spawn_revocation_sweep(st: AppState) -> JoinHandle<()> {
    use sockets::commands::{REVOCATION_OVERLAP, REVOCATION_SWEEP, sweep_revoked};
    let overlap = REVOCATION_OVERLAP.as_millis() as i64;
    tokio::spawn(async move {
        // Sockets connect after the start; a revocation before it was
        // checked at their connect.
        let mut since = auth::unix_now_ms() - overlap;
        let mut every = tokio::time::interval(REVOCATION_SWEEP);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let started = auth::unix_now_ms();
            match sweep_revoked(&st, since).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(sockets = n, "sockets of revoked tokens disconnected");
                    }
                    since = started - overlap;
                }
                // Kept: the next read covers this one's window too.
                Err(e) => tracing::warn!(error = %e, "re-reading revocations failed"),
            }
        }
    })
}

/// The `server` binary: logs, start, wait for SIGTERM or Ctrl-C, stop.
pub async fn run(opts: Opts) -> anyhow::Result<()> {
    if let Some(docs) = &opts.docs {
        use clap::CommandFactory as _;
        return clidoc::run(Opts::command(), docs, &mut std::io::stdout().lock())
            .context("writing completions or man pages");
    }
    init_logging(&opts);
    let config = Config::try_from(&opts)?;
    if config.uses_dev_secrets() {
        tracing::warn!(
            "using the development JWT secret or admin token: set SERVER_JWT_SECRET and SERVER_ADMIN_TOKEN outside development"
        );
    }
    if config.redis_url.is_some() && config.database_url.starts_with("sqlite:") {
        tracing::warn!(
            "--redis with an SQLite database: every node must share one database; use PostgreSQL (--database-url postgres://...)"
        );
    }
    let running = start(config.clone()).await?;
    if let (Some(url), Some(cluster)) = (&config.redis_url, &running.state.cluster) {
        tracing::info!(
            redis = %store::redact_url(url),
            node = %cluster.node_id,
            "cluster node"
        );
    }
    tracing::info!(
        addr = %running.addr,
        database = %store::redact_url(&config.database_url),
        "listening on http://{}",
        running.addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// socketioxide and engineioxide log whole packets at `debug` and `trace`:
/// a CONNECT's `auth` (the access token) and every payload. `--log debug`
/// caps them at `info`; only a directive naming one of their modules
/// (`socketioxide::client=debug`, more specific than these) shows them.
const PACKET_LOG_CAPS: [&str; 2] = ["socketioxide=info", "engineioxide=info"];

fn init_logging(opts: &Opts) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_new(&opts.log).unwrap_or_else(|_| EnvFilter::new("info"));
    for cap in PACKET_LOG_CAPS {
        filter = filter.add_directive(cap.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match opts.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
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
