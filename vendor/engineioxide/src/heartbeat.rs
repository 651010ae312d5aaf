//! Heartbeat of every session of an engine, driven by one task per engine.
//!
//! Upstream engineioxide spawns one heartbeat task per socket and feeds it
//! pongs through a one-slot mpsc channel: about 1.8 KiB per connection (a
//! 1.2 KiB task cell and a 0.5 KiB channel). Here each socket holds three
//! atomics ([`HeartbeatState`]) and a single task per engine walks the
//! session map every [`tick`], so timeouts are detected within one tick
//! (1/20 of the shortest of ping interval and ping timeout, 5 to 500 ms).
//!
//! Protocol v4: the server sends a ping every `ping_interval` (the first one
//! interval after the handshake, as Node's engine.io does); without a
//! pong within `ping_timeout` the session closes with
//! [`DisconnectReason::HeartbeatTimeout`]. While a polling session upgrades
//! to WebSocket no ping is sent. Protocol v3: the client pings, the server
//! answers right away (see [`Socket::on_heartbeat_packet`]), and the session
//! closes when no ping came for `ping_interval + ping_timeout`.

use std::sync::{
    Arc, OnceLock, Weak,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    engine::EngineIo,
    handler::EngineIoHandler,
    socket::{DisconnectReason, Socket},
};

const NOT_STARTED: u64 = u64::MAX;

/// Milliseconds on the heartbeat clock (tokio's, so paused-time tests work).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    Instant::now().duration_since(epoch).as_millis() as u64
}

/// How often the engine's heartbeat task checks its sessions.
pub(crate) fn tick(interval: Duration, timeout: Duration) -> Duration {
    (interval.min(timeout) / 20).clamp(Duration::from_millis(5), Duration::from_millis(500))
}

/// The heartbeat state of one socket.
#[derive(Debug)]
pub(crate) struct HeartbeatState {
    /// When the next step is due (heartbeat clock, ms): the next ping (v4,
    /// not awaiting), the pong deadline (v4, awaiting) or the ping deadline
    /// (v3). [`NOT_STARTED`] until the transport starts the heartbeat.
    due_ms: AtomicU64,
    /// v4: a ping was sent and its pong is awaited.
    awaiting: AtomicBool,
    /// A pong (v4) or a ping (v3) arrived since the last step.
    heard: AtomicBool,
}

impl HeartbeatState {
    pub(crate) fn new() -> Self {
        Self {
            due_ms: AtomicU64::new(NOT_STARTED),
            awaiting: AtomicBool::new(false),
            heard: AtomicBool::new(false),
        }
    }

    pub(crate) fn heard(&self) {
        self.heard.store(true, Ordering::Release);
    }
}

impl<D: Default + Send + Sync + 'static> Socket<D> {
    /// One heartbeat step at `now`, with the ping interval and timeout in
    /// milliseconds; returns false when the session timed out.
    fn heartbeat_step(&self, now: u64, interval: u64, timeout: u64) -> bool {
        let hb = &self.heartbeat;
        let due = hb.due_ms.load(Ordering::Acquire);
        if due == NOT_STARTED {
            return true;
        }
        #[cfg(feature = "v3")]
        if self.protocol == engineioxide_core::ProtocolVersion::V3 {
            if hb.heard.swap(false, Ordering::AcqRel) {
                hb.due_ms.store(now + interval + timeout, Ordering::Release);
                return true;
            }
            return now < due;
        }
        if hb.awaiting.load(Ordering::Acquire) {
            if hb.heard.swap(false, Ordering::AcqRel) {
                hb.awaiting.store(false, Ordering::Release);
                // The next ping is one interval after the last one.
                let pinged_at = due.saturating_sub(timeout);
                hb.due_ms.store(pinged_at + interval, Ordering::Release);
                return true;
            }
            return now < due;
        }
        if now < due || self.is_upgrading() {
            return true;
        }
        // Forget pongs nobody asked for (some clients send one first),
        // before the ping goes out so that its pong cannot be lost.
        hb.heard.store(false, Ordering::Release);
        if !self.send_ping() {
            return false;
        }
        hb.due_ms.store(now + timeout, Ordering::Release);
        hb.awaiting.store(true, Ordering::Release);
        true
    }
}

impl<H: EngineIoHandler> EngineIo<H> {
    /// Starts the heartbeat of `socket` (once its transport is open) and,
    /// on the first call, the engine's heartbeat task.
    pub(crate) fn start_heartbeat(self: &Arc<Self>, socket: &Socket<H::Data>) {
        let first_due = match socket.protocol {
            #[cfg(feature = "v3")]
            engineioxide_core::ProtocolVersion::V3 => {
                self.config.ping_interval + self.config.ping_timeout
            }
            _ => self.config.ping_interval,
        };
        socket
            .heartbeat
            .due_ms
            .store(now_ms() + first_due.as_millis() as u64, Ordering::Release);
        self.heartbeat_task.get_or_init(|| {
            tokio::spawn(heartbeat_task(Arc::downgrade(self)));
        });
    }
}

/// Checks every session of the engine each tick until the engine is gone.
async fn heartbeat_task<H: EngineIoHandler>(engine: Weak<EngineIo<H>>) {
    let Some(period) = engine
        .upgrade()
        .map(|e| tick(e.config.ping_interval, e.config.ping_timeout))
    else {
        return;
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut timed_out = Vec::new();
    loop {
        ticker.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let interval = engine.config.ping_interval.as_millis() as u64;
        let timeout = engine.config.ping_timeout.as_millis() as u64;
        let now = now_ms();
        engine.for_each_socket(|socket| {
            if !socket.heartbeat_step(now, interval, timeout) {
                timed_out.push(socket.clone());
            }
        });
        for socket in timed_out.drain(..) {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "heartbeat timeout");
            socket.close(DisconnectReason::HeartbeatTimeout);
        }
    }
}
