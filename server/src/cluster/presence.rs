//! Presence shared by every node, in Redis.
//!
//! Remote sockets carry no extensions in socketioxide, so presence cannot be
//! read off the adapter: each node counts its own subscribed sockets into
//! Redis, and Lua scripts keep every step atomic.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `platform:presence:room:{room}` | hash | user → sockets subscribed, all nodes |
//! | `platform:presence:info:{room}` | hash | user → `{name, avatar, since}` of online users |
//! | `platform:presence:node:{node}` | hash | `{room}\n{user}` → that node's sockets |
//! | `platform:presence:alive:{node}` | string, TTL | the node's heartbeat |
//! | `platform:presence:nodes` | set | nodes that have entries |
//!
//! A user comes online when the room's count goes 0 → 1 and offline when it
//! goes 1 → 0, inside one script: one event each, whichever node the
//! sockets are on. A node refreshes its heartbeat every `ttl / 5`; any node
//! that finds another's heartbeat expired takes that node's counts off the
//! rooms (one script, so exactly one node does it) and announces the users
//! that went offline. When a node finds its own heartbeat gone (Redis was
//! restarted and lost everything, or the node was cut off long enough to be
//! reaped) it writes its local counts back in one step.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use futures_util::future::BoxFuture;
use protocol::payload::{OnlineUser, UserInfo};
use redis::Script;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::PREFIX;
use crate::presence::{PresenceStore, sorted_online};

/// `KEYS`: room counts, room info, node counts. `ARGV`: user, node field,
/// info JSON. Returns 1 when the user came online.
static JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
",
    )
});

/// `KEYS`: room counts, room info, node counts. `ARGV`: user, node field.
/// Returns 1 when the user went offline; 0 (and changes nothing) when this
/// node had not counted the socket.
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if mine <= 0 then return 0 end
if mine == 1 then
  redis.call('HDEL', KEYS[3], ARGV[2])
else
  redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
end
local total = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if total <= 0 then return 0 end
if total == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
return 0
",
    )
});

/// `KEYS`: the node's heartbeat. `ARGV`: TTL ms. Refreshes it; returns 0
/// (and sets nothing) when it had expired or vanished.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
",
    )
});

/// Replaces a node's counts. `ARGV`: prefix, mode, node, TTL ms, then
/// `room, user, count, info` per entry.
///
/// * `set`: the node's counts become the entries; heartbeat refreshed.
/// * `leave`: the node's counts become nothing; heartbeat and membership
///   removed (a node stopping).
/// * `reap`: `leave` for every member node whose heartbeat expired (the
///   node argument is ignored).
///
/// Returns the users whose room count crossed zero, flat:
/// `room, user, "+" | "-"`.
static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local prefix, mode, self_node, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local nodes_key = prefix .. 'presence:nodes'
local changes = {}

local function apply(field, delta, info)
  if delta == 0 then return end
  local sep = string.find(field, '\n', 1, true)
  if not sep then return end
  local room, user = string.sub(field, 1, sep - 1), string.sub(field, sep + 1)
  local room_key = prefix .. 'presence:room:' .. room
  local info_key = prefix .. 'presence:info:' .. room
  local total = tonumber(redis.call('HGET', room_key, user) or '0')
  if delta < 0 and total <= 0 then return end
  local new = total + delta
  if new <= 0 then
    redis.call('HDEL', room_key, user)
    redis.call('HDEL', info_key, user)
    table.insert(changes, room); table.insert(changes, user); table.insert(changes, '-')
  else
    redis.call('HSET', room_key, user, new)
    if total <= 0 then
      redis.call('HSET', info_key, user, info)
      table.insert(changes, room); table.insert(changes, user); table.insert(changes, '+')
    end
  end
end

local function replace(node, want, infos)
  local node_key = prefix .. 'presence:node:' .. node
  local flat = redis.call('HGETALL', node_key)
  local have = {}
  for i = 1, #flat, 2 do have[flat[i]] = tonumber(flat[i + 1]) end
  for field, n in pairs(have) do apply(field, (want[field] or 0) - n, infos[field]) end
  for field, n in pairs(want) do
    if have[field] == nil then apply(field, n, infos[field]) end
  end
  redis.call('DEL', node_key)
  for field, n in pairs(want) do
    if n > 0 then redis.call('HSET', node_key, field, n) end
  end
end

if mode == 'set' then
  local want, infos = {}, {}
  for i = 5, #ARGV, 4 do
    local field = ARGV[i] .. '\n' .. ARGV[i + 1]
    want[field] = (want[field] or 0) + tonumber(ARGV[i + 2])
    infos[field] = ARGV[i + 3]
  end
  replace(self_node, want, infos)
  redis.call('SET', prefix .. 'presence:alive:' .. self_node, '1', 'PX', ttl)
  redis.call('SADD', nodes_key, self_node)
elseif mode == 'leave' then
  replace(self_node, {}, {})
  redis.call('DEL', prefix .. 'presence:alive:' .. self_node)
  redis.call('SREM', nodes_key, self_node)
elseif mode == 'reap' then
  for _, node in ipairs(redis.call('SMEMBERS', nodes_key)) do
    if redis.call('EXISTS', prefix .. 'presence:alive:' .. node) == 0 then
      replace(node, {}, {})
      redis.call('SREM', nodes_key, node)
    end
  end
end
return changes
",
    )
});

/// What Redis keeps about an online user.
#[derive(Serialize, Deserialize)]
struct Info {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    avatar: Option<String>,
    since: i64,
}

/// One node's sockets of one user subscribed to one room.
#[derive(Debug, Clone)]
pub struct LocalEntry {
    pub room: String,
    pub user: UserInfo,
    pub sockets: u32,
}

/// A user whose count in a room crossed zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub room: String,
    pub user_id: String,
    pub online: bool,
}

/// Presence in Redis, counted per node.
#[derive(Clone)]
pub struct RedisPresence {
    conn: ConnectionManager,
    node: String,
    ttl: Duration,
}

fn room_key(room: &str) -> String {
    format!("{PREFIX}presence:room:{room}")
}

fn info_key(room: &str) -> String {
    format!("{PREFIX}presence:info:{room}")
}

fn field(room: &str, user_id: &str) -> String {
    format!("{room}\n{user_id}")
}

fn info_json(user: &UserInfo, since_ms: i64) -> String {
    serde_json::to_string(&Info {
        name: user.name.clone(),
        avatar: user.avatar.clone(),
        since: since_ms,
    })
    .expect("info serializes")
}

impl RedisPresence {
    pub fn new(conn: ConnectionManager, node: String, ttl: Duration) -> RedisPresence {
        RedisPresence { conn, node, ttl }
    }

    fn node_key(&self) -> String {
        format!("{PREFIX}presence:node:{}", self.node)
    }

    fn alive_key(&self) -> String {
        format!("{PREFIX}presence:alive:{}", self.node)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    /// Refreshes this node's heartbeat; false when it was gone (the caller
    /// then writes its counts back with [`set_local`](Self::set_local)).
    pub async fn heartbeat(&self) -> redis::RedisResult<bool> {
        let alive: i64 = HEARTBEAT
            .key(self.alive_key())
            .arg(self.ttl_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(alive == 1)
    }

    /// Makes this node's counts exactly `entries` (and its heartbeat
    /// fresh); returns who came online or went offline by it.
    pub async fn set_local(
        &self,
        entries: &[LocalEntry],
        now_ms: i64,
    ) -> redis::RedisResult<Vec<Change>> {
        let mut inv = SYNC.prepare_invoke();
        inv.arg(PREFIX)
            .arg("set")
            .arg(&self.node)
            .arg(self.ttl_ms());
        for e in entries {
            inv.arg(&e.room)
                .arg(&e.user.id)
                .arg(e.sockets)
                .arg(info_json(&e.user, now_ms));
        }
        parse_changes(inv.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Takes this node's counts off every room (the node is stopping).
    pub async fn leave_all(&self) -> redis::RedisResult<Vec<Change>> {
        let mut inv = SYNC.prepare_invoke();
        inv.arg(PREFIX)
            .arg("leave")
            .arg(&self.node)
            .arg(self.ttl_ms());
        parse_changes(inv.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Takes the counts of every node whose heartbeat expired off the rooms.
    pub async fn reap(&self) -> redis::RedisResult<Vec<Change>> {
        let mut inv = SYNC.prepare_invoke();
        inv.arg(PREFIX)
            .arg("reap")
            .arg(&self.node)
            .arg(self.ttl_ms());
        parse_changes(inv.invoke_async(&mut self.conn.clone()).await?)
    }
}

fn parse_changes(flat: Vec<String>) -> redis::RedisResult<Vec<Change>> {
    Ok(flat
        .chunks_exact(3)
        .map(|c| Change {
            room: c[0].clone(),
            user_id: c[1].clone(),
            online: c[2] == "+",
        })
        .collect())
}

impl PresenceStore for RedisPresence {
    fn join<'a>(
        &'a self,
        room: &'a str,
        user: &'a UserInfo,
        now_ms: i64,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let first: i64 = JOIN
                .key(room_key(room))
                .key(info_key(room))
                .key(self.node_key())
                .arg(&user.id)
                .arg(field(room, &user.id))
                .arg(info_json(user, now_ms))
                .invoke_async(&mut self.conn.clone())
                .await?;
            Ok(first == 1)
        })
    }

    fn leave<'a>(&'a self, room: &'a str, user_id: &'a str) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let last: i64 = LEAVE
                .key(room_key(room))
                .key(info_key(room))
                .key(self.node_key())
                .arg(user_id)
                .arg(field(room, user_id))
                .invoke_async(&mut self.conn.clone())
                .await?;
            Ok(last == 1)
        })
    }

    fn online<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<OnlineUser>>> {
        Box::pin(async move {
            let infos: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(info_key(room))
                .query_async(&mut self.conn.clone())
                .await?;
            let list = infos
                .into_iter()
                .filter_map(|(id, json)| {
                    let info: Info = serde_json::from_str(&json).ok()?;
                    let user = UserInfo {
                        id,
                        name: info.name,
                        avatar: info.avatar,
                    };
                    Some((user, info.since))
                })
                .collect();
            Ok(sorted_online(list))
        })
    }

    fn drop_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            redis::cmd("DEL")
                .arg(room_key(room))
                .arg(info_key(room))
                .exec_async(&mut self.conn.clone())
                .await?;
            Ok(())
        })
    }
}
