//! Actions on a user's or a token's sockets wherever they are: run on this
//! node, then sent to the others as a [`Command`] (on one server, this node
//! is all there is). Each answers how many sockets it touched.

use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::{Session, unsubscribe_socket};
use crate::cluster::Command;
use crate::state::{AppState, with_io};

/// Disconnects every socket that authenticated with token `jti`, on every
/// node; returns how many.
pub async fn disconnect_token(st: &AppState, jti: &str) -> usize {
    everywhere(
        st,
        Command::DisconnectToken {
            jti: jti.to_owned(),
        },
    )
    .await
}

/// Disconnects every socket of user `user_id`, on every namespace and
/// every node (the user was deleted).
pub async fn disconnect_user(st: &AppState, user_id: &str) -> usize {
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

/// Runs `command` here, then on the other nodes of a cluster; returns the
/// number of sockets it touched.
async fn everywhere(st: &AppState, command: Command) -> usize {
    let mut n = run_local(st, &command).await;
    if let Some(cluster) = &st.cluster {
        match cluster.broadcast(command).await {
            Ok(remote) => n += remote,
            Err(e) => tracing::warn!(error = %e, "could not reach the other nodes"),
        }
    }
    n
}

/// Runs `command` on this node's sockets; returns how many it touched.
pub async fn run_local(st: &AppState, command: &Command) -> usize {
    match command {
        Command::DisconnectToken { jti } => {
            with_io!(&st.io, io => disconnect_where(io, |s| s.jti == *jti))
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
