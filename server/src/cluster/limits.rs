//! The application-event limits shared by every node, in Redis.
//!
//! The same exact sliding window as [`crate::ratelimit`]: each accepted
//! event is a member of a sorted set scored by its time; one Lua script
//! drops what left the window, checks both limits, and records the event
//! under both only if both allow it. Time is Redis's clock (`TIME`), so the
//! nodes' clocks need not agree.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `platform:limits:room:{room}` | sorted set, TTL = window | accepted events (µs) |
//! | `platform:limits:app:{app}` | sorted set, TTL = window | accepted events (µs) |

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use redis::aio::ConnectionManager;

use super::PREFIX;
use crate::ratelimit::{AppEventLimits, AppLimitHit};

/// `KEYS`: room window, app window. `ARGV`: room limit, room window µs,
/// app limit, app window µs, a unique member. Returns 0 (accepted), 1 (room
/// limit) or 2 (app limit).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local room_limit, room_window = tonumber(ARGV[1]), tonumber(ARGV[2])
local app_limit, app_window = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - room_window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - app_window)
if redis.call('ZCARD', KEYS[1]) >= room_limit then return 1 end
if redis.call('ZCARD', KEYS[2]) >= app_limit then return 2 end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.ceil(room_window / 1000) + 1)
redis.call('PEXPIRE', KEYS[2], math.ceil(app_window / 1000) + 1)
return 0
",
    )
});

/// The per-room and per-application windows in Redis.
pub struct RedisAppLimiter {
    conn: ConnectionManager,
    per_room: (u32, Duration),
    per_app: (u32, Duration),
    node: String,
    seq: AtomicU64,
}

impl RedisAppLimiter {
    pub fn new(
        conn: ConnectionManager,
        node: String,
        per_room: (u32, Duration),
        per_app: (u32, Duration),
    ) -> RedisAppLimiter {
        RedisAppLimiter {
            conn,
            per_room,
            per_app,
            node,
            seq: AtomicU64::new(0),
        }
    }
}

impl AppEventLimits for RedisAppLimiter {
    fn acquire<'a>(
        &'a self,
        room: &'a str,
        app: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Result<(), AppLimitHit>>> {
        Box::pin(async move {
            let member = format!("{}:{}", self.node, self.seq.fetch_add(1, Ordering::Relaxed));
            let verdict: i64 = ACQUIRE
                // Per (application, room): an app id has no `:` (N16).
                .key(format!("{PREFIX}limits:room:{app}:{room}"))
                .key(format!("{PREFIX}limits:app:{app}"))
                .arg(self.per_room.0)
                .arg(self.per_room.1.as_micros() as u64)
                .arg(self.per_app.0)
                .arg(self.per_app.1.as_micros() as u64)
                .arg(member)
                .invoke_async(&mut self.conn.clone())
                .await?;
            Ok(match verdict {
                0 => Ok(()),
                1 => Err(AppLimitHit::Room),
                _ => Err(AppLimitHit::App),
            })
        })
    }
}
