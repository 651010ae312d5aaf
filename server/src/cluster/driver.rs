//! The pub/sub driver of the Socket.IO Redis adapter, on redis's
//! `ConnectionManager`.
//!
//! socketioxide-redis ships a driver on a plain `MultiplexedConnection`,
//! which never reconnects: after a Redis restart a node would neither
//! publish nor receive again until it is restarted. This one is the same
//! driver (same channels, same message routing) on a `ConnectionManager`
//! that reconnects with backoff and re-subscribes every channel, so
//! broadcasts resume by themselves once Redis is back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, PushInfo, PushKind, RedisResult};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// One Redis connection shared by pub/sub (the adapter's channels, the
/// cluster's command channel) and commands (presence, limits).
#[derive(Clone)]
pub struct ManagedDriver {
    handlers: Handlers,
    conn: ConnectionManager,
}

impl std::fmt::Debug for ManagedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedDriver").finish_non_exhaustive()
    }
}

impl ManagedDriver {
    /// Connects (RESP3 is required for pub/sub pushes); fails if Redis
    /// cannot be reached within a few seconds.
    pub async fn connect(client: redis::Client) -> RedisResult<ManagedDriver> {
        let handlers: Handlers = Arc::default();
        let routes = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |msg: PushInfo| {
                route(msg, &routes);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(6);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(ManagedDriver { handlers, conn })
    }

    /// A handle for commands on the same connection.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Drops every subscription's stream (their readers end) and
    /// unsubscribes from Redis: used when a node stops.
    pub async fn close(&self) {
        let channels: Vec<String> = {
            let mut handlers = self.handlers.write().expect("handlers lock");
            handlers.drain().map(|(chan, _)| chan).collect()
        };
        if !channels.is_empty() {
            let _ = self.conn.clone().unsubscribe(channels).await;
        }
    }
}

fn route(msg: PushInfo, handlers: &Handlers) {
    if !matches!(msg.kind, PushKind::Message | PushKind::SMessage) || msg.data.len() < 2 {
        return;
    }
    let mut data = msg.data.into_iter();
    let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(payload)) = (
        String::from_redis_value(chan),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        tracing::warn!("unreadable pub/sub message from Redis");
        return;
    };
    if let Some(tx) = handlers.read().expect("handlers lock").get(&chan)
        && let Err(e) = tx.try_send((chan, payload))
    {
        tracing::warn!(error = %e, "Redis pub/sub channel full: message dropped");
    }
}

impl Driver for ManagedDriver {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        redis::cmd("PUBLISH")
            .arg(chan)
            .arg(val)
            .exec_async(&mut self.conn.clone())
            .await
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        // Registered before SUBSCRIBE so no message is lost in between.
        self.handlers
            .write()
            .expect("handlers lock")
            .insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers.write().expect("handlers lock").remove(&chan);
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
