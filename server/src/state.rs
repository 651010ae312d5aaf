//! The state every handler shares, and the one way events leave the server.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::event::room_namespace;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use socketioxide::SocketIo;

use crate::auth::Tokens;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::ratelimit::AppEventLimiter;
use crate::store::Store;

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
    pub io: SocketIo,
    pub presence: Presence,
    pub app_limits: AppEventLimiter,
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
    pub fn new(config: Config, store: Store, tokens: Tokens, io: SocketIo) -> AppState {
        let event_prefix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        let app_limits = AppEventLimiter::new(
            (
                config.app_events_per_room_per_second,
                protocol::limits::SECOND,
            ),
            (
                config.app_events_per_app_per_minute,
                protocol::limits::MINUTE,
            ),
        );
        AppState(Arc::new(Shared {
            config,
            store,
            tokens,
            io,
            presence: Presence::default(),
            app_limits,
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
    /// room's namespace.
    pub async fn to_room<T: Serialize + ?Sized>(&self, room_id: &str, event: &str, payload: &T) {
        let room = subscribers(room_id);
        let namespaces = ["/".to_owned(), room_namespace(room_id)];
        for ns in namespaces {
            if let Some(op) = self.io.of(&ns)
                && let Err(e) = op.to(room.clone()).emit(event, payload).await
            {
                tracing::warn!(%event, %ns, error = %e, "broadcast failed");
            }
        }
        self.metrics.event_out(event);
    }

    /// Sends `event` to every socket of a user on `/`.
    pub async fn to_user<T: Serialize + ?Sized>(&self, user_id: &str, event: &str, payload: &T) {
        if let Some(op) = self.io.of("/")
            && let Err(e) = op.to(user_sockets(user_id)).emit(event, payload).await
        {
            tracing::warn!(%event, error = %e, "emit to user failed");
        }
        self.metrics.event_out(event);
    }
}
