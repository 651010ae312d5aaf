//! Exact sliding-window rate limits: "at most N in any window of length W".
//!
//! A log of the accepted events' times, bounded by N, so memory is at most
//! N instants per key and nothing while idle. Exact, unlike a token bucket
//! (which smooths) or a fixed minute (which allows 2N across a boundary).
//!
//! The application-event limits sit behind [`AppEventLimits`]: in this
//! process ([`AppEventLimiter`]) or, for a cluster, in Redis with the same
//! algorithm ([`crate::cluster::RedisAppLimiter`]); the server picks one at
//! start. The client-event budgets ([`ClientBudgets`]) are per connection,
//! so always local.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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

    /// Adds `other`'s events, keeping the `limit` most recent (older ones
    /// cannot matter: `limit` newer ones refuse as long as they would).
    fn merge(&mut self, other: SlidingWindow, limit: u32) {
        let mut all: Vec<Instant> = self.accepted.drain(..).chain(other.accepted).collect();
        all.sort_unstable();
        let skip = all.len().saturating_sub(limit as usize);
        self.accepted = all.into_iter().skip(skip).collect();
    }

    /// Whether nothing is left in the window (the key can be dropped).
    fn is_idle(&self, now: Instant, window: Duration) -> bool {
        self.accepted
            .back()
            .is_none_or(|&t| now.duration_since(t) >= window)
    }
}

/// Client-event budgets (protocol notes N8): one per Engine.IO connection,
/// shared by every namespace socket on it, with two windows of the same
/// limit: client events, and namespace CONNECTs (counted apart, so that
/// connecting does not use up the protocol's 100 events). When a connection
/// closes, what it used in the last window passes to its user's next
/// connection, so reconnecting does not reset the limits; a connection open
/// beside it keeps its own budget (the protocol's unit is the connection).
#[derive(Debug)]
pub struct ClientBudgets {
    limit: u32,
    window: Duration,
    /// The windows of closed connections, by user, while not idle.
    retired: Mutex<HashMap<String, Windows>>,
}

/// One connection's budget ([`ClientBudgets::connection`]); its window is
/// retired to its user when the last handle goes.
#[derive(Debug)]
pub struct ConnectionBudget {
    budgets: Arc<ClientBudgets>,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    user: Option<String>,
    windows: Windows,
}

/// What a [`ConnectionBudget`] is charged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A client event (whatever its name, accepted or not).
    Event,
    /// A namespace CONNECT.
    Connect,
}

#[derive(Debug, Default)]
struct Windows {
    events: SlidingWindow,
    connects: SlidingWindow,
}

impl Windows {
    fn get(&mut self, charge: Charge) -> &mut SlidingWindow {
        match charge {
            Charge::Event => &mut self.events,
            Charge::Connect => &mut self.connects,
        }
    }

    fn merge(&mut self, other: Windows, limit: u32) {
        self.events.merge(other.events, limit);
        self.connects.merge(other.connects, limit);
    }

    fn is_idle(&self, now: Instant, window: Duration) -> bool {
        self.events.is_idle(now, window) && self.connects.is_idle(now, window)
    }
}

impl ClientBudgets {
    pub fn new(limit: u32, window: Duration) -> Arc<ClientBudgets> {
        Arc::new(ClientBudgets {
            limit,
            window,
            retired: Mutex::default(),
        })
    }

    /// The budget of a new connection, not yet bound to a user.
    pub fn connection(self: &Arc<Self>) -> ConnectionBudget {
        ConnectionBudget {
            budgets: self.clone(),
            state: Mutex::default(),
        }
    }

    /// The events the limit allows in a window.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

impl ConnectionBudget {
    /// Binds the connection to `user` (the first call only) and takes on
    /// what the user's closed connections used in the current window.
    pub fn claim(&self, user: &str) {
        let mut state = self.state.lock().expect("budget lock");
        if state.user.is_some() {
            return;
        }
        state.user = Some(user.to_owned());
        let retired = self
            .budgets
            .retired
            .lock()
            .expect("retired lock")
            .remove(user);
        if let Some(retired) = retired {
            state.windows.merge(retired, self.budgets.limit);
        }
    }

    /// Charges one `charge` at `now`; `false` (nothing charged) over the
    /// limit.
    pub fn try_acquire(&self, charge: Charge, now: Instant) -> bool {
        self.state
            .lock()
            .expect("budget lock")
            .windows
            .get(charge)
            .try_acquire(now, self.budgets.limit, self.budgets.window)
    }
}

impl Drop for ConnectionBudget {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut().expect("budget lock"));
        let Some(user) = state.user else { return };
        let now = Instant::now();
        let window = self.budgets.window;
        if state.windows.is_idle(now, window) {
            return;
        }
        let mut retired = self.budgets.retired.lock().expect("retired lock");
        // Only users active in the last window are kept.
        if retired.len() > 4096 {
            retired.retain(|_, w| !w.is_idle(now, window));
        }
        retired
            .entry(user)
            .or_default()
            .merge(state.windows, self.budgets.limit);
    }
}

/// Failed authentication attempts per IP address (a refused token at
/// CONNECT, a refused bearer at the REST API): at most `limit` in any
/// window; beyond, the address's attempts are refused before any token is
/// looked at, until the window slides.
#[derive(Debug)]
pub struct FailedAuth {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, SlidingWindow>>,
}

impl FailedAuth {
    pub fn new(limit: u32, window: Duration) -> FailedAuth {
        FailedAuth {
            limit,
            window,
            failures: Mutex::default(),
        }
    }

    /// Whether `ip` may try to authenticate at `now`.
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures
            .lock()
            .expect("failures lock")
            .get(&ip)
            .is_none_or(|w| w.would_accept(now, self.limit, self.window))
    }

    /// Records a failed attempt of `ip` at `now`.
    pub fn record(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().expect("failures lock");
        // Only addresses that failed in the last window are kept.
        if failures.len() > 4096 {
            failures.retain(|_, w| !w.is_idle(now, self.window));
        }
        failures
            .entry(ip)
            .or_default()
            .try_acquire(now, self.limit, self.window);
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
    fn a_closed_connection_passes_its_budget_to_the_users_next_one() {
        let budgets = ClientBudgets::new(3, Duration::from_secs(60));
        let now = Instant::now();
        let first = budgets.connection();
        first.claim("u1");
        assert!(first.try_acquire(Charge::Event, now));
        assert!(first.try_acquire(Charge::Event, now));
        // Open beside it: a budget of its own.
        let beside = budgets.connection();
        beside.claim("u1");
        for _ in 0..3 {
            assert!(beside.try_acquire(Charge::Event, now));
        }
        drop(beside);
        drop(first);
        let next = budgets.connection();
        next.claim("u1");
        assert!(
            !next.try_acquire(Charge::Event, now),
            "the 3 most recent events carried over"
        );
        assert!(next.try_acquire(Charge::Connect, now), "connects apart");
        let other = budgets.connection();
        other.claim("u2");
        assert!(other.try_acquire(Charge::Event, now));
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
