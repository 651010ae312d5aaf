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
//!
//! The task must outlive anything one session does to it (PATCH: issue 13
//! item 11): it walks a snapshot of the session map, so the map's lock is
//! held for the copy only, not for every step and send; a panic in one
//! session's step closes that session and the walk goes on; and a panic
//! anywhere else ends the task, which its supervisor starts again one tick
//! later.

use std::panic::AssertUnwindSafe;
use std::sync::{
    Arc, Mutex, OnceLock, Weak,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    engine::EngineIo,
    handler::EngineIoHandler,
    socket::{DisconnectReason, Sid, Socket},
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

/// PATCH: the session whose next heartbeat step panics ([`panic_in_next_step_of`]).
static PANIC_SID: Mutex<Option<Sid>> = Mutex::new(None);
/// PATCH: whether [`PANIC_SID`] is set (one atomic load per step otherwise).
static PANIC_ARMED: AtomicBool = AtomicBool::new(false);

/// PATCH: a test hook. The next heartbeat step of session `sid` panics,
/// once: the reference server's attack test shows that a panic in the
/// heartbeat no longer stops every ping and timeout. Nothing else calls it.
#[doc(hidden)]
pub fn panic_in_next_step_of(sid: Sid) {
    *PANIC_SID.lock().unwrap_or_else(|e| e.into_inner()) = Some(sid);
    PANIC_ARMED.store(true, Ordering::Release);
}

/// PATCH: panics if [`panic_in_next_step_of`] chose `sid`.
fn injected_panic(sid: Sid) {
    if !PANIC_ARMED.load(Ordering::Acquire) {
        return;
    }
    let mut chosen = PANIC_SID.lock().unwrap_or_else(|e| e.into_inner());
    if *chosen == Some(sid) {
        *chosen = None;
        PANIC_ARMED.store(false, Ordering::Release);
        drop(chosen);
        panic!("heartbeat step of {sid}: panic injected by a test");
    }
}

impl<D: Default + Send + Sync + 'static> Socket<D> {
    /// One heartbeat step at `now`, with the ping interval and timeout in
    /// milliseconds; returns false when the session timed out.
    fn heartbeat_step(&self, now: u64, interval: u64, timeout: u64) -> bool {
        injected_panic(self.id);
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
            tokio::spawn(supervise(Arc::downgrade(self)));
        });
    }
}

/// PATCH: runs the heartbeat task, again each time it panics, until the
/// engine is gone (upstream's per-socket tasks died alone; the one task of
/// this patch must not take every session's heartbeat with it).
async fn supervise<H: EngineIoHandler>(engine: Weak<EngineIo<H>>) {
    loop {
        match tokio::spawn(heartbeat_task(engine.clone())).await {
            Err(e) if e.is_panic() => {
                #[cfg(feature = "tracing")]
                tracing::error!("the heartbeat task panicked; starting it again");
            }
            _ => return,
        }
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
    // PATCH: the first walk one period from now, so that a task started
    // again after a panic does not spin.
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sockets = Vec::new();
    loop {
        ticker.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let interval = engine.config.ping_interval.as_millis() as u64;
        let timeout = engine.config.ping_timeout.as_millis() as u64;
        let now = now_ms();
        // PATCH: the map's read lock only for the copy, not for every step
        // (a ping is a channel send) nor for the closes.
        engine.for_each_socket(|socket| sockets.push(socket.clone()));
        drop(engine);
        for socket in sockets.drain(..) {
            let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
                socket.heartbeat_step(now, interval, timeout)
            }));
            match step {
                Ok(true) => continue,
                Ok(false) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(sid = ?socket.id, "heartbeat timeout");
                }
                // PATCH: a session whose step panicked cannot be kept alive
                // by it any more; closed like a timed-out one.
                Err(_) => {
                    #[cfg(feature = "tracing")]
                    tracing::error!(sid = ?socket.id, "heartbeat step panicked; closing the session");
                }
            }
            socket.close(DisconnectReason::HeartbeatTimeout);
        }
    }
}
