//! Actions on a user's or a token's sockets wherever they are: run on this
//! node, then sent to the others as a [`Command`] (on one server, this node
//! is all there is). Each answers how far it reached ([`Reach`]): sockets
//! touched, and nodes that confirmed out of those Redis counted.
//!
//! A node can miss a command (Redis down, the node busy past the
//! timeout), so revocation does not rest on commands alone: every node
//! re-reads the recent revocations from the database every
//! [`REVOCATION_SWEEP`] ([`sweep_revoked`]) and drops their sockets.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::{Session, unsubscribe_socket};
use crate::cluster::Command;
use crate::state::{AppState, with_io};

/// How often each node re-reads the revocations from the database: the
/// bound on how long a node that missed a revocation's command keeps its
/// sockets (while it can read the database).
pub const REVOCATION_SWEEP: Duration = Duration::from_secs(2);

/// How far back before its previous read a node re-reads revocations:
/// covers clocks that differ between nodes and transactions that commit
/// after the time they recorded.
pub const REVOCATION_OVERLAP: Duration = Duration::from_secs(10);

/// How far a command reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// The sockets it touched, on the nodes that confirmed.
    pub sockets: usize,
    /// The nodes when it went out, this one included (Redis's count); `None`
    /// when Redis could not be reached to count or tell them.
    pub expected: Option<usize>,
    /// The nodes that ran it, this one included.
    pub confirmed: usize,
}

impl Reach {
    /// Every node counted confirmed.
    pub fn complete(&self) -> bool {
        self.expected == Some(self.confirmed)
    }
}

/// Disconnects every socket that authenticated with one of `jtis`, on
/// every node.
pub async fn disconnect_tokens(st: &AppState, jtis: &[String]) -> Reach {
    everywhere(
        st,
        Command::DisconnectTokens {
            jtis: jtis.to_vec(),
        },
    )
    .await
}

/// Disconnects every socket of user `user_id`, on every namespace and
/// every node (the user was deleted, or all their tokens revoked).
pub async fn disconnect_user(st: &AppState, user_id: &str) -> Reach {
    everywhere(
        st,
        Command::DisconnectUser {
            user_id: user_id.to_owned(),
        },
    )
    .await
}

/// Ends every subscription of a user to a room (they lost access), on
/// every node.
pub async fn unsubscribe_user(st: &AppState, user_id: &str, room_id: &str) {
    everywhere(
        st,
        Command::UnsubscribeUser {
            user_id: user_id.to_owned(),
            room_id: room_id.to_owned(),
        },
    )
    .await;
}

/// Runs `command` here, then on the other nodes of a cluster.
async fn everywhere(st: &AppState, command: Command) -> Reach {
    let mut reach = Reach {
        sockets: run_local(st, &command).await,
        expected: Some(1),
        confirmed: 1,
    };
    if let Some(cluster) = &st.cluster {
        match cluster.broadcast(command).await {
            Ok(answers) => {
                reach.sockets += answers.sockets;
                reach.confirmed += answers.answered;
                reach.expected = Some(1 + answers.expected);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reach the other nodes");
                reach.expected = None;
            }
        }
    }
    reach
}

/// Disconnects this node's sockets of the tokens revoked at or after
/// `since_ms`, those of users deleted since then included (one database
/// read); returns how many. Sockets that a
/// command already closed are gone, so reading a revocation twice costs a
/// walk of the sockets and nothing else.
pub async fn sweep_revoked(
    st: &AppState,
    since_ms: i64,
) -> Result<usize, crate::store::StoreError> {
    let revoked = st.store.revoked_since(since_ms).await?;
    if revoked.is_empty() {
        return Ok(0);
    }
    Ok(run_local(st, &Command::DisconnectTokens { jtis: revoked }).await)
}

/// Runs `command` on this node's sockets; returns how many it touched.
pub async fn run_local(st: &AppState, command: &Command) -> usize {
    match command {
        Command::DisconnectTokens { jtis } => {
            let jtis: HashSet<&str> = jtis.iter().map(String::as_str).collect();
            with_io!(&st.io, io => disconnect_where(io, |s| jtis.contains(s.jti.as_str())))
        }
        Command::DisconnectUser { user_id } => {
            with_io!(&st.io, io => disconnect_where(io, |s| s.user.id == *user_id))
        }
        Command::UnsubscribeUser { user_id, room_id } => {
            with_io!(&st.io, io => unsubscribe_local(st, io, user_id, room_id).await)
        }
    }
}

/// Disconnects this node's sockets whose session matches.
fn disconnect_where<A: Adapter>(io: &SocketIo<A>, matches: impl Fn(&Session) -> bool) -> usize {
    let mut n = 0;
    for op in io.nsps() {
        for socket in op.sockets() {
            let hit = socket
                .extensions
                .get::<Arc<Session>>()
                .is_some_and(|s| matches(&s));
            if hit && socket.disconnect().is_ok() {
                n += 1;
            }
        }
    }
    n
}

async fn unsubscribe_local<A: Adapter>(
    st: &AppState,
    io: &SocketIo<A>,
    user_id: &str,
    room_id: &str,
) -> usize {
    let mut n = 0;
    for op in io.nsps() {
        for socket in op.sockets() {
            let subscribed = socket
                .extensions
                .get::<Arc<Session>>()
                .is_some_and(|s| s.user.id == user_id && s.is_subscribed(room_id));
            if subscribed {
                unsubscribe_socket(st, &socket, user_id, room_id).await;
                n += 1;
            }
        }
    }
    n
}
