//! The state every handler shares, and the one way events leave the server
//! ([`Shared::to_room`], [`Shared::to_user`]). It sits below both edges and
//! the socket operations, above the cluster it holds.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::event::room_namespace;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use socketioxide::BroadcastError;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;

use crate::auth::Tokens;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::presence::{Presence, PresenceStore};
use crate::ratelimit::{AppEventLimiter, AppEventLimits, ClientBudgets, FailedAuth};
use crate::store::Store;

/// The Socket.IO instance, with the adapter chosen at start: in memory (one
/// server) or Redis (a cluster node).
pub enum Io {
    Local(SocketIo),
    Cluster(SocketIo<crate::cluster::Adapter>),
}

/// Runs `$body` with `$io` bound to the [`SocketIo`] of either adapter, so
/// code generic over the adapter is written once.
macro_rules! with_io {
    ($target:expr, $io:ident => $body:expr) => {
        match $target {
            $crate::state::Io::Local($io) => $body,
            $crate::state::Io::Cluster($io) => $body,
        }
    };
}
pub(crate) use with_io;

impl Io {
    /// Closes every socket (server shutdown).
    pub async fn close(&self) {
        with_io!(self, io => io.close().await)
    }
}

/// The Socket.IO room, in `/` and in `/rooms/:roomId`, of a room's
/// subscribers.
pub fn subscribers(room_id: &str) -> String {
    format!("room:{room_id}")
}

/// The Socket.IO room, in `/`, of one user's sockets.
pub fn user_sockets(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// Shared by every request and socket.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub tokens: Tokens,
    pub io: Io,
    pub presence: Box<dyn PresenceStore>,
    /// Held (shared) around every change of a socket's subscriptions and
    /// its presence count, and (exclusively) by a cluster node writing its
    /// counts back to Redis, so that it reads a consistent picture.
    pub presence_sync: tokio::sync::RwLock<()>,
    pub app_limits: Box<dyn AppEventLimits>,
    /// Client-event budgets, one per Engine.IO connection (N8).
    pub client_budgets: Arc<ClientBudgets>,
    /// Failed authentication attempts per address.
    pub failed_auth: FailedAuth,
    /// `Some` on a cluster node.
    pub cluster: Option<Arc<Cluster>>,
    pub metrics: Metrics,
    event_prefix: String,
    event_seq: AtomicU64,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The state of one server (`cluster: None`) or of a cluster node:
    /// presence and the application-event limits are then in Redis.
    pub fn new(
        config: Config,
        store: Store,
        tokens: Tokens,
        io: Io,
        cluster: Option<Arc<Cluster>>,
    ) -> AppState {
        let event_prefix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        let per_room = (
            config.app_events_per_room_per_second,
            protocol::limits::SECOND,
        );
        let per_app = (
            config.app_events_per_app_per_minute,
            protocol::limits::MINUTE,
        );
        let (presence, app_limits): (Box<dyn PresenceStore>, Box<dyn AppEventLimits>) =
            match &cluster {
                None => (
                    Box::new(Presence::default()),
                    Box::new(AppEventLimiter::new(per_room, per_app)),
                ),
                Some(c) => (
                    Box::new(c.presence.clone()),
                    Box::new(c.app_limiter(per_room, per_app)),
                ),
            };
        let client_budgets =
            ClientBudgets::new(config.client_events_per_minute, protocol::limits::MINUTE);
        let failed_auth = FailedAuth::new(
            config.failed_auth_per_address_per_minute,
            protocol::limits::MINUTE,
        );
        AppState(Arc::new(Shared {
            config,
            store,
            tokens,
            io,
            presence,
            presence_sync: tokio::sync::RwLock::new(()),
            app_limits,
            client_budgets,
            failed_auth,
            cluster,
            metrics: Metrics::default(),
            event_prefix,
            event_seq: AtomicU64::new(1),
        }))
    }
}

impl Shared {
    /// A fresh event id: unique within this process (a counter) and across
    /// processes (a random prefix).
    pub fn event_id(&self) -> String {
        let n = self.event_seq.fetch_add(1, Ordering::Relaxed);
        format!("evt_{}{n:x}", self.event_prefix)
    }

    /// Sends `event` to every subscriber of a room, on `/` and on the
    /// room's namespace, on every node.
    pub async fn to_room<T: Serialize + ?Sized>(&self, room_id: &str, event: &str, payload: &T) {
        let room = subscribers(room_id);
        let ns = room_namespace(room_id);
        with_io!(&self.io, io => emit(io, io.of("/"), "/", &room, event, payload).await);
        match &self.io {
            Io::Local(io) => emit(io, io.of(&ns), &ns, &room, event, payload).await,
            Io::Cluster(io) => {
                let op = self.room_ns_op(room_id).await;
                emit(io, op, &ns, &room, event, payload).await;
            }
        }
        self.metrics.event_out(event);
    }

    /// Sends `event` to every socket of a user on `/`, on every node.
    pub async fn to_user<T: Serialize + ?Sized>(&self, user_id: &str, event: &str, payload: &T) {
        let room = user_sockets(user_id);
        with_io!(&self.io, io => emit(io, io.of("/"), "/", &room, event, payload).await);
        self.metrics.event_out(event);
    }

    /// On a cluster node, operators on a room's namespace that reach every
    /// node: the node's own namespace if a socket ever connected to it
    /// here, else the emitter's.
    pub async fn room_ns_op(
        &self,
        room_id: &str,
    ) -> Option<BroadcastOperators<crate::cluster::Adapter>> {
        let (Io::Cluster(io), Some(cluster)) = (&self.io, &self.cluster) else {
            return None;
        };
        let ns = room_namespace(room_id);
        match io.of(&ns) {
            Some(op) => Some(op),
            None => cluster.emitter_of(&ns).await,
        }
    }
}

/// Broadcasts with `op` (on namespace `ns` of `io`, or of the emitter). When
/// the other nodes cannot be reached (Redis down), the sockets of this node
/// still get the event.
async fn emit<A: Adapter, T: Serialize + ?Sized>(
    io: &SocketIo<A>,
    op: Option<BroadcastOperators<A>>,
    ns: &str,
    room: &str,
    event: &str,
    payload: &T,
) {
    let Some(op) = op else {
        return;
    };
    match op.to(room.to_owned()).emit(event, payload).await {
        Ok(()) => {}
        Err(BroadcastError::Adapter(e)) => {
            tracing::warn!(%event, %room, error = %e, "other nodes unreachable: broadcast on this node only");
            if let Some(local) = io.of(ns)
                && let Err(e) = local.local().to(room.to_owned()).emit(event, payload).await
            {
                tracing::warn!(%event, %room, error = %e, "broadcast failed");
            }
        }
        Err(e) => tracing::warn!(%event, %room, error = %e, "broadcast failed"),
    }
}
