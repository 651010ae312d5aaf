//! Outbound operations on live sockets: what the server does to a socket
//! rather than in answer to it.
//!
//! Both edges of the server act on sockets: the Socket.IO handlers
//! ([`crate::realtime`]) subscribe the socket that asked, the REST API
//! ([`crate::api`]) disconnects a revoked token's sockets or closes a
//! deleted room, and a cluster node runs the other nodes' commands on its
//! own sockets. Those operations live here, below both edges, so that
//! neither the API nor the cluster ever calls into an event handler:
//!
//! * [`Session`], what each socket carries, and its subscriptions with
//!   their presence counts and `presence:user_online` / `_offline`;
//! * [`commands`]: disconnect a token's or a user's sockets, end a user's
//!   subscriptions, on every node;
//! * [`close_room`]: a deleted room's subscribers leave, its namespace goes;
//! * [`node`]: a cluster node's part towards its own sockets (the
//!   [`crate::cluster::Node`] it gives the cluster).

pub mod commands;
pub mod node;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use protocol::event as ev;
use protocol::payload::{RoomSubscription, UserInfo, UserOffline, UserOnline};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::auth::unix_now_ms;
use crate::cluster::LocalEntry;
use crate::ratelimit::ConnectionBudget;
use crate::state::{AppState, Io, subscribers, with_io};

pub use commands::{Reach, disconnect_tokens, disconnect_user, unsubscribe_user};

/// What a connection carries: who it is and its per-connection limits.
#[derive(Debug)]
pub struct Session {
    pub user: UserInfo,
    pub jti: String,
    /// The room of a `/rooms/{roomId}` socket; `None` on `/`.
    pub room: Option<String>,
    /// The client-event budget of this socket's Engine.IO connection,
    /// shared with the connection's other namespace sockets (N8).
    pub(crate) budget: Arc<ConnectionBudget>,
    /// Set when the token expired (client events are refused from then on).
    pub(crate) expired: AtomicBool,
    /// The task that sends `token:expired` and then disconnects.
    pub(crate) expiry: Mutex<Option<tokio::task::AbortHandle>>,
    /// The rooms this socket is subscribed to, counted in presence. Kept
    /// here rather than read from `socket.rooms()` at disconnect: when a
    /// client sends DISCONNECT and then closes the transport, socketioxide
    /// closes the socket twice and the second close empties its rooms
    /// before the (spawned) disconnect handler runs, which lost
    /// `presence:user_offline`.
    subscriptions: Mutex<HashSet<String>>,
    /// Held across each subscribe, unsubscribe and the final release of
    /// this socket, awaits included, so they take effect in order; `true`
    /// once released. A subscribe that was waiting (on the database, say)
    /// while the socket closed finds `true` and joins nothing: without it
    /// the socket's user stayed online in the room for good.
    released: tokio::sync::Mutex<bool>,
}

impl Session {
    /// A fresh session on a connection with `budget`: no subscription,
    /// token valid.
    pub fn new(
        user: UserInfo,
        jti: String,
        room: Option<String>,
        budget: Arc<ConnectionBudget>,
    ) -> Session {
        Session {
            user,
            jti,
            room,
            budget,
            expired: AtomicBool::new(false),
            expiry: Mutex::new(None),
            subscriptions: Mutex::default(),
            released: tokio::sync::Mutex::new(false),
        }
    }

    fn is_subscribed(&self, room_id: &str) -> bool {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .contains(room_id)
    }
}

/// Joins the subscribers' room, counts presence and confirms; idempotent.
/// Nothing happens once the socket is released (it closed meanwhile).
pub async fn subscribe_socket<A: Adapter>(
    st: &AppState,
    socket: &SocketRef<A>,
    session: &Session,
    room_id: &str,
) {
    let online = {
        let released = session.released.lock().await;
        if *released {
            return;
        }
        let _sync = st.presence_sync.read().await;
        let newly = session
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .insert(room_id.to_owned());
        socket.join(subscribers(room_id));
        newly
            && st
                .presence
                .join(room_id, &session.user, unix_now_ms())
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "presence unavailable: join not counted");
                    false
                })
    };
    if online {
        announce_online(st, room_id, &session.user).await;
    }
    let confirm = RoomSubscription {
        room_id: room_id.to_owned(),
        timestamp: protocol::timestamp::now(),
    };
    let _ = socket.emit(ev::ROOM_SUBSCRIBED, &confirm);
    st.metrics.event_out(ev::ROOM_SUBSCRIBED);
}

/// Ends one socket's subscription to a room (no-op if not subscribed).
pub async fn unsubscribe_socket<A: Adapter>(
    st: &AppState,
    socket: &SocketRef<A>,
    user_id: &str,
    room_id: &str,
) {
    let session = socket.extensions.get::<Arc<Session>>();
    let offline = {
        let _order = match &session {
            Some(s) => Some(s.released.lock().await),
            None => None,
        };
        let _sync = st.presence_sync.read().await;
        let was = session.as_ref().is_some_and(|s| {
            s.subscriptions
                .lock()
                .expect("subscriptions lock")
                .remove(room_id)
        });
        socket.leave(subscribers(room_id));
        was && leave_presence(st, room_id, user_id).await
    };
    if offline {
        announce_offline(st, room_id, user_id).await;
    }
    let confirm = RoomSubscription {
        room_id: room_id.to_owned(),
        timestamp: protocol::timestamp::now(),
    };
    let _ = socket.emit(ev::ROOM_UNSUBSCRIBED, &confirm);
    st.metrics.event_out(ev::ROOM_UNSUBSCRIBED);
}

/// A socket closed: each of its subscriptions leaves presence, and the
/// users who went offline with it are announced.
pub async fn release(st: &AppState, session: &Session) {
    let mut offline = Vec::new();
    {
        let mut released = session.released.lock().await;
        *released = true;
        let _sync = st.presence_sync.read().await;
        let rooms: Vec<String> = session
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .drain()
            .collect();
        for room_id in rooms {
            if leave_presence(st, &room_id, &session.user.id).await {
                offline.push(room_id);
            }
        }
    }
    for room_id in offline {
        announce_offline(st, &room_id, &session.user.id).await;
    }
}

/// `presence:user_online` to a room.
pub async fn announce_online(st: &AppState, room_id: &str, user: &UserInfo) {
    let payload = UserOnline {
        room_id: room_id.to_owned(),
        user_id: user.id.clone(),
        user: user.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(room_id, ev::PRESENCE_USER_ONLINE, &payload)
        .await;
}

/// Counts one subscribed socket less; true when the user went offline
/// (the caller announces it, outside `presence_sync`).
async fn leave_presence(st: &AppState, room_id: &str, user_id: &str) -> bool {
    st.presence
        .leave(room_id, user_id)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "presence unavailable: leave not counted");
            false
        })
}

/// `presence:user_offline` to a room.
pub async fn announce_offline(st: &AppState, room_id: &str, user_id: &str) {
    let payload = UserOffline {
        room_id: room_id.to_owned(),
        user_id: user_id.to_owned(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(room_id, ev::PRESENCE_USER_OFFLINE, &payload)
        .await;
}

/// This node's subscribed sockets, counted per room and user (what a
/// cluster node writes back to Redis).
pub fn local_presence(st: &AppState) -> Vec<LocalEntry> {
    let mut counts: std::collections::HashMap<(String, String), LocalEntry> =
        std::collections::HashMap::new();
    with_io!(&st.io, io => {
        for op in io.nsps() {
            for socket in op.sockets() {
                let Some(session) = socket.extensions.get::<Arc<Session>>() else {
                    continue;
                };
                let rooms = session.subscriptions.lock().expect("subscriptions lock");
                for room in rooms.iter() {
                    counts
                        .entry((room.clone(), session.user.id.clone()))
                        .or_insert_with(|| LocalEntry {
                            room: room.clone(),
                            user: session.user.clone(),
                            sockets: 0,
                        })
                        .sockets += 1;
                }
            }
        }
    });
    counts.into_values().collect()
}

/// A room was deleted: its subscribers on `/` leave it, its presence is
/// forgotten, and the sockets of its namespace are disconnected, on every
/// node (protocol notes N5).
pub async fn close_room(st: &AppState, room_id: &str) {
    let room = subscribers(room_id);
    with_io!(&st.io, io => {
        if let Some(op) = io.of("/")
            && let Err(e) = op.to(room.clone()).leave(room.clone()).await
        {
            tracing::warn!(%room, error = %e, "leaving a deleted room failed");
        }
    });
    if let Err(e) = st.presence.drop_room(room_id).await {
        tracing::warn!(%room, error = %e, "presence unavailable: deleted room kept");
    }
    let ns = ev::room_namespace(room_id);
    // `delete_ns` alone closes the sockets without telling their clients:
    // send them DISCONNECT first. It is queued after `room:deleted` on each
    // socket, so the deletion event arrives first.
    match &st.io {
        Io::Local(io) => {
            if let Some(op) = io.of(&ns)
                && let Err(e) = op.disconnect().await
            {
                tracing::warn!(%ns, error = %e, "disconnecting a deleted room's sockets failed");
            }
            io.delete_ns(&ns);
        }
        Io::Cluster(io) => {
            if let Some(op) = st.room_ns_op(room_id).await
                && let Err(e) = op.disconnect().await
            {
                tracing::warn!(%ns, error = %e, "disconnecting a deleted room's sockets failed");
            }
            if io.of(&ns).is_some() {
                io.delete_ns(&ns);
            }
            if let Some(cluster) = &st.cluster {
                cluster.drop_emitter_ns(&ns);
            }
        }
    }
}
