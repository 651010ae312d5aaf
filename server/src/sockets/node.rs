//! A cluster node's part towards its own sockets: it runs the other nodes'
//! commands on them, writes their presence back to Redis when Redis lost
//! it, announces who came online or went offline, and takes its users out
//! of presence when it stops. [`crate::cluster`] holds the Redis side and
//! calls back through the [`Node`] given at [`join`].

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{announce_offline, announce_online, commands, local_presence};
use crate::auth::unix_now_ms;
use crate::cluster::{Change, Cluster, Command, LocalEntry, Node};
use crate::state::AppState;

/// This node, as the cluster sees it.
struct Sockets(AppState);

impl Node for Sockets {
    fn run(&self, command: Command) -> BoxFuture<'static, usize> {
        let st = self.0.clone();
        Box::pin(async move { commands::run_local(&st, &command).await })
    }

    fn beat(&self) -> BoxFuture<'static, redis::RedisResult<()>> {
        let st = self.0.clone();
        Box::pin(async move {
            match st.cluster.clone() {
                Some(cluster) => beat(&st, &cluster).await,
                None => Ok(()),
            }
        })
    }
}

/// Makes this server a node of its cluster (none: nothing to do); see
/// [`Cluster::start`].
pub async fn join(st: &AppState) -> anyhow::Result<()> {
    match &st.cluster {
        Some(cluster) => cluster.start(Arc::new(Sockets(st.clone()))).await,
        None => Ok(()),
    }
}

/// First half of stopping a node: no more heartbeats or commands, and this
/// node's users leave presence (announced while the node can still
/// broadcast). The sockets close after this.
pub async fn leave(st: &AppState) {
    let Some(cluster) = &st.cluster else {
        return;
    };
    cluster.stop().await;
    let changes = {
        let _sync = st.presence_sync.write().await;
        cluster.presence.leave_all().await
    };
    match changes {
        Ok(changes) => announce(st, &changes, &[]).await,
        Err(e) => tracing::warn!(error = %e, "could not remove this node from presence"),
    }
}

/// One heartbeat: refresh, or write this node's counts back if they were
/// lost; then reap the nodes that went silent.
async fn beat(st: &AppState, cluster: &Cluster) -> redis::RedisResult<()> {
    if !cluster.presence.heartbeat().await? {
        let (entries, changes) = {
            let _sync = st.presence_sync.write().await;
            let entries = local_presence(st);
            let changes = cluster.presence.set_local(&entries, unix_now_ms()).await?;
            (entries, changes)
        };
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                "presence of this node written back to Redis"
            );
        }
        announce(st, &changes, &entries).await;
    }
    let reaped = cluster.presence.reap().await?;
    if !reaped.is_empty() {
        tracing::info!(
            users = reaped.len(),
            "removed the users of silent nodes from presence"
        );
    }
    announce(st, &reaped, &[]).await;
    Ok(())
}

/// `presence:user_online` / `presence:user_offline` for changes found by a
/// heartbeat (`entries`: this node's, to name the users who came online).
async fn announce(st: &AppState, changes: &[Change], entries: &[LocalEntry]) {
    for c in changes {
        if c.online {
            if let Some(e) = entries
                .iter()
                .find(|e| e.room == c.room && e.user.id == c.user_id)
            {
                announce_online(st, &c.room, &e.user).await;
            }
        } else {
            announce_offline(st, &c.room, &c.user_id).await;
        }
    }
}
