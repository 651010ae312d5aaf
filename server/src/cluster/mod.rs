//! Several server nodes as one deployment, through Redis (`--redis URL`).
//!
//! * Broadcasts: the Socket.IO Redis adapter (socketioxide-redis) relays
//!   every room and user broadcast to the sockets of every node. Its
//!   pub/sub runs on a reconnecting connection ([`driver`]), so a Redis
//!   restart needs no node restart.
//! * Room namespaces (`/rooms/{roomId}`) exist on a node only once a socket
//!   connected there, and a broadcast needs the namespace on the sending
//!   node. When the node has none, the broadcast goes out through an
//!   *emitter*: a second Socket.IO instance that serves no connection and
//!   only publishes, on its own Redis connection. (Registering the namespace
//!   on the serving instance instead could replace a namespace that a
//!   connecting client is creating at that moment.)
//! * Presence ([`presence`]) and the application-event limits ([`limits`])
//!   live in Redis, behind the same traits as their one-process versions.
//! * Actions on sockets wherever they are (token revocation, user deletion,
//!   loss of access to a private room) are [`Command`]s on a pub/sub
//!   channel: every node runs them on its own sockets and answers how many
//!   it touched.
//!
//! This module sits below the server state and knows no socket: what a node
//! does for the cluster with its own sockets (run a command, write its
//! presence back, announce) it is given as a [`Node`] at [`Cluster::start`]
//! (`crate::sockets::node` implements it).
//!
//! Every key and channel starts with [`PREFIX`].

pub mod driver;
pub mod limits;
pub mod presence;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::adapter::Emitter;
use socketioxide::operators::BroadcastOperators;
use socketioxide_redis::drivers::Driver;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub use driver::ManagedDriver;
pub use limits::RedisAppLimiter;
pub use presence::{Change, LocalEntry, RedisPresence};

/// The start of every Redis key and channel this server uses.
pub const PREFIX: &str = "platform:";

/// The Socket.IO adapter of a cluster node.
pub type Adapter = CustomRedisAdapter<Emitter, ManagedDriver>;

/// How long a node waits for the others to answer a [`Command`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// `url` with `protocol=resp3` (pub/sub needs RESP3 pushes) unless it names
/// a protocol already.
pub fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// An action on sockets that must run on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Disconnect the sockets that authenticated with one of these tokens
    /// (a revoked token family, or a user's revoked tokens).
    DisconnectTokens { jtis: Vec<String> },
    /// Disconnect every socket of this user (deleted).
    DisconnectUser { user_id: String },
    /// End this user's subscriptions to this room (lost access).
    UnsubscribeUser { user_id: String, room_id: String },
}

#[derive(Serialize, Deserialize)]
struct Request {
    from: String,
    id: u64,
    command: Command,
}

/// What the other nodes answered to a [`Command`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answers {
    /// The other nodes subscribed to the command channel when it went out
    /// (Redis's count).
    pub expected: usize,
    /// Those that answered within [`COMMAND_TIMEOUT`].
    pub answered: usize,
    /// The sockets they touched.
    pub sockets: usize,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    id: u64,
    count: usize,
}

/// What a node does for the cluster with its own sockets, which this module
/// cannot reach: the layer that owns the sockets implements it.
pub trait Node: Send + Sync + 'static {
    /// Runs another node's `command` on this node's sockets; answers how
    /// many it touched.
    fn run(&self, command: Command) -> BoxFuture<'static, usize>;

    /// One heartbeat: refresh this node's presence (writing its counts
    /// back if Redis lost them), reap the nodes that went silent, and
    /// announce who came online or went offline.
    fn beat(&self) -> BoxFuture<'static, redis::RedisResult<()>>;
}

fn command_channel() -> String {
    format!("{PREFIX}cluster")
}

fn reply_channel(node: &str) -> String {
    format!("{PREFIX}cluster#{node}")
}

/// This node's link to the others.
pub struct Cluster {
    /// Unique per process start.
    pub node_id: String,
    pub presence: RedisPresence,
    driver: ManagedDriver,
    emitter_driver: ManagedDriver,
    emitter: SocketIo<Adapter>,
    emitter_creation: tokio::sync::Mutex<()>,
    ttl: Duration,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<usize>>>,
    seq: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

fn adapter_config() -> RedisAdapterConfig {
    RedisAdapterConfig::new()
        .with_prefix(format!("{PREFIX}socket.io"))
        // Messages wait here while a namespace's relay task catches up; a
        // full buffer drops them, so it is deep.
        .with_stream_buffer(16_384)
}

impl Cluster {
    /// Connects to Redis (two connections: the node's, the emitter's).
    pub async fn connect(url: &str, node_ttl: Duration) -> anyhow::Result<Cluster> {
        let client = redis::Client::open(resp3_url(url)).context("parsing the Redis URL")?;
        let driver = ManagedDriver::connect(client.clone())
            .await
            .context("connecting to Redis")?;
        let emitter_driver = ManagedDriver::connect(client)
            .await
            .context("connecting to Redis")?;
        let (_svc, emitter) = SocketIo::builder()
            .with_adapter::<Adapter>(RedisAdapterCtr::new_with_driver(
                emitter_driver.clone(),
                adapter_config(),
            ))
            .build_svc();
        let node_id = crate::store::new_id("node");
        let presence = RedisPresence::new(driver.connection(), node_id.clone(), node_ttl);
        Ok(Cluster {
            node_id,
            presence,
            driver,
            emitter_driver,
            emitter,
            emitter_creation: tokio::sync::Mutex::new(()),
            ttl: node_ttl,
            pending: Mutex::default(),
            seq: AtomicU64::new(1),
            tasks: Mutex::default(),
        })
    }

    /// The adapter constructor for the node's Socket.IO instance.
    pub fn adapter(&self) -> RedisAdapterCtr<ManagedDriver> {
        RedisAdapterCtr::new_with_driver(self.driver.clone(), adapter_config())
    }

    /// A Redis connection for commands.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.driver.connection()
    }

    /// The application-event limiter on this cluster's Redis.
    pub fn app_limiter(
        &self,
        per_room: (u32, Duration),
        per_app: (u32, Duration),
    ) -> RedisAppLimiter {
        RedisAppLimiter::new(
            self.driver.connection(),
            self.node_id.clone(),
            per_room,
            per_app,
        )
    }

    /// Operators on namespace `ns` of the emitter (created on first use),
    /// for broadcasting from a node that has no such namespace itself.
    pub async fn emitter_of(&self, ns: &str) -> Option<BroadcastOperators<Adapter>> {
        if let Some(op) = self.emitter.of(ns) {
            return Some(op);
        }
        let _creating = self.emitter_creation.lock().await;
        if let Some(op) = self.emitter.of(ns) {
            return Some(op);
        }
        if let Err(e) = self.emitter.ns(ns.to_owned(), async || {}).await {
            tracing::warn!(%ns, error = %e, "cannot open the namespace for broadcasting");
            return None;
        }
        self.emitter.of(ns)
    }

    /// Forgets the emitter's namespace `ns` (its room was deleted).
    pub fn drop_emitter_ns(&self, ns: &str) {
        if self.emitter.of(ns).is_some() {
            self.emitter.delete_ns(ns);
        }
    }

    /// Subscribes to the command channels, registers this node's presence
    /// (the first [`Node::beat`]) and starts the heartbeat; from then on
    /// this node is part of the cluster and runs the others' commands
    /// through `node`.
    pub async fn start(self: &Arc<Self>, node: Arc<dyn Node>) -> anyhow::Result<()> {
        let commands = self
            .driver
            .subscribe(command_channel(), 1024)
            .await
            .context("subscribing to the cluster channel")?;
        let replies = self
            .driver
            .subscribe(reply_channel(&self.node_id), 1024)
            .await
            .context("subscribing to the cluster channel")?;
        node.beat().await.context("registering the node")?;
        let listener = tokio::spawn(listen(
            self.clone(),
            node.clone(),
            futures_util::stream::select(commands, replies),
        ));
        let heart = tokio::spawn(heartbeat(self.clone(), node));
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.push(listener.abort_handle());
        tasks.push(heart.abort_handle());
        Ok(())
    }

    /// Runs `command` on every other node and waits for their answers, at
    /// most [`COMMAND_TIMEOUT`]: how many were expected, how many answered
    /// and how many sockets they touched. An error: Redis unreachable.
    pub async fn broadcast(&self, command: Command) -> anyhow::Result<Answers> {
        let others = usize::from(
            self.driver
                .num_serv(&command_channel())
                .await?
                .saturating_sub(1),
        );
        let mut answers = Answers {
            expected: others,
            ..Answers::default()
        };
        if others == 0 {
            return Ok(answers);
        }
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let request = Request {
            from: self.node_id.clone(),
            id,
            command,
        };
        let sent = self
            .driver
            .publish(
                command_channel(),
                serde_json::to_vec(&request).expect("request serializes"),
            )
            .await;
        if sent.is_ok() {
            let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
            while answers.answered < others {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(n)) => {
                        answers.answered += 1;
                        answers.sockets += n;
                    }
                    _ => {
                        tracing::warn!(
                            answered = answers.answered,
                            expected = others,
                            "not every node answered a cluster command"
                        );
                        break;
                    }
                }
            }
        }
        self.pending.lock().expect("pending lock").remove(&id);
        sent?;
        Ok(answers)
    }

    /// First half of stopping: no more heartbeats, and no more commands
    /// from the others (who stop waiting for this node's answers). The
    /// node then takes its users out of presence while it can still
    /// announce it.
    pub async fn stop(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
        let _ = self.driver.unsubscribe(command_channel()).await;
    }

    /// Second half of stopping, after the sockets are closed: the
    /// subscriptions end, so nothing of this node stays behind in Redis.
    pub async fn close(&self) {
        self.emitter.close().await;
        self.driver.close().await;
        self.emitter_driver.close().await;
    }
}

/// Beats every `ttl / 5`, and keeps the emitter's connection in use.
async fn heartbeat(cluster: Arc<Cluster>, node: Arc<dyn Node>) {
    let period = (cluster.ttl / 5).max(Duration::from_millis(200));
    let mut healthy = true;
    loop {
        tokio::time::sleep(period).await;
        let result = node.beat().await;
        // The emitter's connection reconnects when used: keep it in use.
        let _ = redis::cmd("PING")
            .exec_async(&mut cluster.emitter_driver.connection())
            .await;
        match result {
            Ok(()) if !healthy => {
                tracing::info!("Redis reachable again");
                healthy = true;
            }
            Ok(()) => {}
            Err(e) if healthy => {
                tracing::warn!(error = %e, "Redis unreachable; retrying");
                healthy = false;
            }
            Err(_) => {}
        }
    }
}

/// Runs the other nodes' commands on this node's sockets and routes the
/// answers to this node's own commands.
async fn listen(
    cluster: Arc<Cluster>,
    node: Arc<dyn Node>,
    mut messages: impl futures_util::Stream<Item = (String, Vec<u8>)> + Unpin,
) {
    let commands = command_channel();
    while let Some((chan, payload)) = messages.next().await {
        if chan == commands {
            let Ok(request) = serde_json::from_slice::<Request>(&payload) else {
                tracing::warn!("unreadable cluster command");
                continue;
            };
            if request.from == cluster.node_id {
                continue;
            }
            let cluster = cluster.clone();
            let run = node.run(request.command);
            tokio::spawn(async move {
                let count = run.await;
                let reply = Reply {
                    id: request.id,
                    count,
                };
                if let Err(e) = cluster
                    .driver
                    .publish(
                        reply_channel(&request.from),
                        serde_json::to_vec(&reply).expect("reply serializes"),
                    )
                    .await
                {
                    tracing::warn!(error = %e, "could not answer a cluster command");
                }
            });
        } else if let Ok(reply) = serde_json::from_slice::<Reply>(&payload)
            && let Some(tx) = cluster.pending.lock().expect("pending lock").get(&reply.id)
        {
            let _ = tx.send(reply.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_is_added_once() {
        assert_eq!(
            resp3_url("redis://h:1"),
            "redis://h:1?protocol=resp3".to_owned()
        );
        assert_eq!(
            resp3_url("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3".to_owned()
        );
        assert_eq!(
            resp3_url("redis://h?protocol=resp3"),
            "redis://h?protocol=resp3"
        );
    }

    #[test]
    fn commands_are_tagged_json() {
        let c = Command::UnsubscribeUser {
            user_id: "u".into(),
            room_id: "r".into(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"op": "unsubscribe_user", "user_id": "u", "room_id": "r"})
        );
        assert_eq!(serde_json::from_value::<Command>(v).unwrap(), c);
    }
}
