//! Exact sliding-window rate limits: "at most N in any window of length W".
//!
//! A log of the accepted events' times, bounded by N, so memory is at most
//! N instants per key and nothing while idle. Exact, unlike a token bucket
//! (which smooths) or a fixed minute (which allows 2N across a boundary).
//!
//! The application-event limits sit behind [`AppEventLimits`]: in this
//! process ([`AppEventLimiter`]) or, for a cluster, in Redis with the same
//! algorithm ([`crate::cluster::RedisAppLimiter`]); the server picks one at
//! start. The per-connection limit is per socket, so always local.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

/// The application-event limits (per application in each room, and per
/// application, protocol notes N8): accepts an event only if both allow it, then records it
/// under both; a refused event is recorded nowhere.
pub trait AppEventLimits: Send + Sync {
    /// `Ok(Err(hit))`: refused by that limit; `Err`: the limiter could not
    /// be asked (Redis unreachable).
    fn acquire<'a>(
        &'a self,
        room: &'a str,
        app: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Result<(), AppLimitHit>>>;
}

impl AppEventLimits for AppEventLimiter {
    fn acquire<'a>(
        &'a self,
        room: &'a str,
        app: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Result<(), AppLimitHit>>> {
        let verdict = AppEventLimiter::acquire(self, room, app, Instant::now());
        Box::pin(std::future::ready(Ok(verdict)))
    }
}

/// One sliding window.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    accepted: VecDeque<Instant>,
}

impl SlidingWindow {
    /// Records an event at `now` if fewer than `limit` were accepted in the
    /// window ending at `now`; returns whether it was accepted.
    pub fn try_acquire(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        while let Some(&oldest) = self.accepted.front() {
            if now.duration_since(oldest) >= window {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if self.accepted.len() >= limit as usize {
            return false;
        }
        self.accepted.push_back(now);
        true
    }

    /// Whether an event at `now` would be accepted, without recording it.
    pub fn would_accept(&self, now: Instant, limit: u32, window: Duration) -> bool {
        let live = self
            .accepted
            .iter()
            .filter(|&&t| now.duration_since(t) < window)
            .count();
        live < limit as usize
    }

    /// Whether nothing is left in the window (the key can be dropped).
    fn is_idle(&self, now: Instant, window: Duration) -> bool {
        self.accepted
            .back()
            .is_none_or(|&t| now.duration_since(t) >= window)
    }
}

/// The application-event limits: per room and per application, checked
/// and recorded under one lock so concurrent requests cannot overshoot.
#[derive(Debug)]
pub struct AppEventLimiter {
    per_room: (u32, Duration),
    per_app: (u32, Duration),
    windows: Mutex<AppWindows>,
}

#[derive(Debug, Default)]
struct AppWindows {
    /// Per (application, room): one application's traffic does not use up
    /// the room's budget of the others.
    rooms: HashMap<(String, String), SlidingWindow>,
    apps: HashMap<String, SlidingWindow>,
}

/// Which limit refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppLimitHit {
    Room,
    App,
}

impl AppEventLimiter {
    pub fn new(per_room: (u32, Duration), per_app: (u32, Duration)) -> Self {
        AppEventLimiter {
            per_room,
            per_app,
            windows: Mutex::default(),
        }
    }

    /// Accepts an event of `app` into `room` only if both limits allow it,
    /// then records it under both. A refused event is recorded nowhere.
    pub fn acquire(&self, room: &str, app: &str, now: Instant) -> Result<(), AppLimitHit> {
        let mut w = self.windows.lock().expect("limiter lock");
        let (room_limit, room_window) = self.per_room;
        let (app_limit, app_window) = self.per_app;
        if w.rooms.len() > 4096 {
            w.rooms.retain(|_, s| !s.is_idle(now, room_window));
        }
        if w.apps.len() > 4096 {
            w.apps.retain(|_, s| !s.is_idle(now, app_window));
        }
        let room_key = (app.to_owned(), room.to_owned());
        if w.rooms
            .get(&room_key)
            .is_some_and(|s| !s.would_accept(now, room_limit, room_window))
        {
            return Err(AppLimitHit::Room);
        }
        if w.apps
            .get(app)
            .is_some_and(|s| !s.would_accept(now, app_limit, app_window))
        {
            return Err(AppLimitHit::App);
        }
        w.rooms
            .entry(room_key)
            .or_default()
            .try_acquire(now, room_limit, room_window);
        w.apps
            .entry(app.to_owned())
            .or_default()
            .try_acquire(now, app_limit, app_window);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_in_any_window() {
        let mut w = SlidingWindow::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        for i in 0..100 {
            assert!(w.try_acquire(t0 + Duration::from_millis(i), 100, minute));
        }
        assert!(!w.try_acquire(t0 + Duration::from_secs(59), 100, minute));
        // The first event leaves the window at t0 + 60 s exactly.
        assert!(w.try_acquire(t0 + Duration::from_secs(60), 100, minute));
        assert!(!w.try_acquire(t0 + Duration::from_secs(60), 100, minute));
    }

    #[test]
    fn room_and_app_limits_all_or_nothing() {
        let sec = Duration::from_secs(1);
        let limiter = AppEventLimiter::new((2, sec), (3, sec));
        let t = Instant::now();
        assert_eq!(limiter.acquire("a", "app", t), Ok(()));
        assert_eq!(limiter.acquire("a", "app", t), Ok(()));
        assert_eq!(limiter.acquire("a", "app", t), Err(AppLimitHit::Room));
        // The refusal above did not use the app's budget.
        assert_eq!(limiter.acquire("b", "app", t), Ok(()));
        assert_eq!(limiter.acquire("c", "app", t), Err(AppLimitHit::App));
        assert_eq!(limiter.acquire("c", "other", t), Ok(()));
        assert_eq!(limiter.acquire("a", "app", t + sec), Ok(()));
    }
}
