//! One virtual user: runs its group's steps on (at most) one socket,
//! reading every incoming item as it arrives, and records into the shared
//! recorder. Per-VU state is kept small (no histograms, queues that
//! allocate only when used); the step machinery is boxed so an idle VU only
//! holds its socket and a few words.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use driver::FailureKind;
use formats::names::{self, code};
use formats::report::Mismatch;
use protocol::event;
use serde_json::{Value, json};
use sioclient::{
    AckError, ClientConfig, ConnectError, DisconnectReason, Event, EventHook, Incoming, Socket,
};

use super::vars::{self, Rng, as_count, subset, think_duration, unix_ms, unix_us};
use super::{Retire, RunCtx, client_transport};
use crate::metrics::Recorder;
use crate::scenario::feeder::Pick;
use crate::scenario::{DEFAULT_ACK_TIMEOUT, Step, Transport};

/// Bound of one connect (TCP, handshake, Socket.IO CONNECT).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of the graceful disconnect when a VU ends.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Events kept for a later `wait_for` (only events some `wait_for` of the
/// group names, only while the VU runs steps); older ones are dropped.
pub const RETAIN_CAP: usize = 16;

/// What a local VU is: see [`super::layout`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct VuSpec {
    pub local: usize,
    pub global: u64,
    pub group: u16,
    pub retire: Retire,
    /// Intended start (open model): the first step's latency counts from it.
    pub origin: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
}

enum Waited<T> {
    Done(T),
    /// An event some `wait_for` may want was kept.
    Event,
    Halted,
    /// The socket ended (already recorded).
    Lost,
}

/// The socket, and the connected gauge that follows it.
struct Conn {
    socket: Socket,
    ctx: Arc<RunCtx>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.ctx.recorder.gauge_connected(-1);
    }
}

struct Vu {
    ctx: Arc<RunCtx>,
    /// The run's recorder, tagged with the group's tags.
    rec: Recorder,
    spec: VuSpec,
    rng: Rng,
    conn: Option<Conn>,
    /// Namespace and transport of the last `connect`, for `reconnect`.
    endpoint: Option<Box<(String, Transport)>>,
    /// Rooms subscribed on the current connection (for `resubscribe`).
    rooms: Vec<String>,
    vars: driver::profile::Vars,
    retained: VecDeque<(String, Value)>,
    retaining: bool,
    /// Start of the last `connect`, until the first `subscribe` answers.
    sub_pending: Option<Instant>,
    /// When `token:expired` arrived, until the token is renewed.
    expired_at: Option<Instant>,
    /// The access and refresh tokens of the last renewal (they replace the
    /// token source's).
    renewed: Option<Box<(String, Option<String>)>>,
}

/// Runs one VU to its end; `true` when it ended by itself (not cut by a
/// hard stop).
pub(crate) async fn run(ctx: Arc<RunCtx>, spec: VuSpec) -> bool {
    let rec = ctx
        .recorder
        .tagged(ctx.group_tags[spec.group as usize].clone());
    rec.count(names::VUS_STARTED, 1);
    let mut vu = Vu {
        rec: rec.clone(),
        rng: Rng::for_vu(ctx.seed, spec.global),
        retaining: ctx.interest[spec.group as usize].any(),
        ctx: ctx.clone(),
        spec,
        conn: None,
        endpoint: None,
        rooms: Vec::new(),
        vars: Default::default(),
        retained: VecDeque::new(),
        sub_pending: None,
        expired_at: None,
        renewed: None,
    };
    vu.draw_rows(true);
    let steps = &ctx.scenario.groups[spec.group as usize].steps;
    let flow = vu.run_steps(steps).await;
    if flow == Flow::Next && vu.conn.is_some() && !ctx.halt.is_set() {
        vu.idle().await;
    }
    vu.close().await;
    let finished = !ctx.halt.is_set();
    if finished {
        rec.count(names::VUS_FINISHED, 1);
    }
    finished
}

async fn next_item(conn: &mut Option<Conn>) -> Option<Incoming> {
    match conn {
        Some(c) => c.socket.next().await,
        None => std::future::pending().await,
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn disconnect_name(reason: Option<&DisconnectReason>) -> &'static str {
    match reason {
        Some(DisconnectReason::ServerDisconnect) => "server",
        Some(DisconnectReason::ClientDisconnect) => "client",
        Some(DisconnectReason::TransportClose) => "transport_close",
        Some(DisconnectReason::PingTimeout) => "ping_timeout",
        Some(DisconnectReason::TransportError(_)) => "transport_error",
        None => "unknown",
    }
}

impl Vu {
    fn count(&self, name: &str) {
        self.rec.count(name, 1);
    }

    /// Stop at the next step boundary: hard stop, or the schedule retired
    /// this VU. An arrival is load offered inside its phase: it makes its
    /// first measured step (timed from its intended start) even when a
    /// late generator starts it after the phase ended; retirement applies
    /// from there.
    fn should_stop(&self) -> bool {
        self.ctx.halt.is_set()
            || (self.spec.origin.is_none() && self.ctx.is_retired(self.spec.retire))
    }

    /// When the latency of a measured step starts: the intended start for
    /// the first step of an open-model VU, else now.
    fn start_time(&self) -> Instant {
        self.spec.origin.unwrap_or_else(Instant::now)
    }

    /// Keeps a failed check for the report while fewer than the
    /// scenario's `keep_mismatches` are kept.
    fn mismatch(&self, step: &str, event: &str, expected: &Value, got: &Value) {
        let limit = self.ctx.scenario.keep_mismatches as usize;
        let mut kept = self
            .ctx
            .mismatches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if kept.len() < limit {
            kept.push(Mismatch {
                at_ms: unix_ms(),
                vu: self.spec.global,
                group: self.ctx.scenario.groups[self.spec.group as usize]
                    .name
                    .clone(),
                step: step.to_owned(),
                event: event.to_owned(),
                expected: Mismatch::text(expected),
                got: Mismatch::text(got),
            });
        }
    }

    /// Takes each feeder's row into the VU's variables: every feeder when
    /// the VU starts, the `round-robin` and `random` ones again at each
    /// iteration of a `loop`.
    fn draw_rows(&mut self, start: bool) {
        if self.ctx.scenario.feeders.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        for (f, next) in ctx.scenario.feeders.iter().zip(&ctx.feeder_next) {
            let n = f.rows.len() as u64;
            let row = match f.pick {
                Pick::PerVu if start => self.spec.global % n,
                Pick::PerVu => continue,
                Pick::RoundRobin => next.fetch_add(1, Ordering::Relaxed) % n,
                Pick::Random => self.rng.below(n),
            };
            for (name, v) in f.columns.iter().zip(&f.rows[row as usize]) {
                self.vars.insert(name.clone(), v.clone());
            }
        }
    }

    /// The VU's access token: the last renewed one, else its source's.
    fn token(&self) -> &str {
        match &self.renewed {
            Some(r) => &r.0,
            None => &self.ctx.creds[self.spec.local].token,
        }
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        let cred = &self.ctx.creds[self.spec.local];
        let builtin = match name {
            "vu" => Some(json!(self.spec.global)),
            "runId" => Some(json!(self.ctx.run_id)),
            "nowMs" => Some(json!(unix_ms())),
            "shard" => Some(json!(self.ctx.shard)),
            "token" if !self.token().is_empty() => Some(json!(self.token())),
            "userId" => cred.user_id.as_ref().map(|u| json!(u)),
            _ => None,
        };
        builtin.or_else(|| self.ctx.run_vars.get(name).cloned())
    }

    fn expand(&self, v: &Value) -> Option<Value> {
        match vars::expand_with(v, |n| self.lookup(n)) {
            Ok(v) => Some(v),
            Err(_) => {
                self.count(&names::error(code::TEMPLATE));
                None
            }
        }
    }

    fn text(&self, s: &str) -> Option<String> {
        match vars::expand_text(s, |n| self.lookup(n)) {
            Ok(v) => Some(v),
            Err(_) => {
                self.count(&names::error(code::TEMPLATE));
                None
            }
        }
    }

    /// The profile's `action` called against the target with `vars` (the
    /// run's base variables beneath them): a boxed future for
    /// [`Vu::wait`], which races it against a halt or a lost connection.
    fn driver_call(&self, action: String, vars: driver::profile::Vars) -> DriverCall {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            driver::call(
                &ctx.http,
                &ctx.target,
                &ctx.profile,
                &ctx.base_vars,
                &action,
                &vars,
            )
            .await
        })
    }

    /// Every variable a driver action may use (run, built-ins, the VU's).
    fn scope_all(&self) -> driver::profile::Vars {
        let mut all = (*self.ctx.run_vars).clone();
        let cred = &self.ctx.creds[self.spec.local];
        all.insert("vu".into(), json!(self.spec.global));
        all.insert("runId".into(), json!(self.ctx.run_id));
        all.insert("nowMs".into(), json!(unix_ms()));
        all.insert("shard".into(), json!(self.ctx.shard));
        if !self.token().is_empty() {
            all.insert("token".into(), json!(self.token()));
        }
        if let Some(u) = &cred.user_id {
            all.insert("userId".into(), json!(u));
        }
        all.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }

    /// Waits for `fut` while reading the socket (every item is recorded as
    /// it arrives) and watching the hard stop. With `wake_on_event`, also
    /// returns after an event was kept for `wait_for`.
    async fn wait<F: Future>(&mut self, fut: F, wake_on_event: bool) -> Waited<F::Output> {
        let mut fut = std::pin::pin!(fut);
        loop {
            let item = {
                let halt = self.ctx.halt.wait();
                let conn = &mut self.conn;
                tokio::select! {
                    biased;
                    () = halt => return Waited::Halted,
                    out = &mut fut => return Waited::Done(out),
                    item = next_item(conn) => item,
                }
            };
            match item {
                Some(Incoming::Event(ev)) => {
                    if self.on_event(ev) && wake_on_event {
                        return Waited::Event;
                    }
                }
                Some(Incoming::Invalid { .. }) => self.count(&names::error(code::INVALID_FRAME)),
                Some(Incoming::Disconnected { reason }) => {
                    self.lost(Some(&reason));
                    return Waited::Lost;
                }
                None => {
                    self.lost(None);
                    return Waited::Lost;
                }
            }
        }
    }

    /// Records a received event; returns whether it was kept for a
    /// `wait_for` or is a `token:expired` to handle.
    fn on_event(&mut self, ev: Event) -> bool {
        let rec = &self.rec;
        let first = ev.args.into_iter().next().unwrap_or(Value::Null);
        // When the frame was read, on the same clock as `sentAtUs`.
        let read_at = unix_us().saturating_sub(micros(ev.received_at.elapsed()));
        let stamp = first.get(STAMP).and_then(Value::as_u64);
        record_received(
            rec,
            self.ctx.event_metrics.name_of(&ev.name),
            stamp,
            read_at,
        );
        if ev.name == event::ERROR {
            let code = first
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or(code::UNKNOWN);
            rec.count(&names::error(code), 1);
        }
        // Handled at the next step, in a `wait_for` or while idle: wake them.
        let expired = ev.name == event::TOKEN_EXPIRED;
        if expired {
            self.expired_at.get_or_insert_with(Instant::now);
        }
        if self.retaining && self.ctx.interest[self.spec.group as usize].wants(&ev.name) {
            if self.retained.len() >= RETAIN_CAP {
                self.retained.pop_front();
            }
            self.retained.push_back((ev.name, first));
            return true;
        }
        expired
    }

    /// The socket ended without this VU asking.
    fn lost(&mut self, reason: Option<&DisconnectReason>) {
        self.count(&names::disconnects(disconnect_name(reason)));
        if !matches!(reason, Some(DisconnectReason::ClientDisconnect)) {
            self.ctx.suspect();
        }
        self.conn = None;
    }

    /// After a send or an ack failed because the socket is gone: read up to
    /// the final `Disconnected` so its reason is recorded.
    async fn settle_lost(&mut self) {
        if let Waited::Done(()) = self
            .wait(tokio::time::sleep(Duration::from_secs(1)), false)
            .await
        {
            self.lost(None);
        }
    }

    fn run_steps<'a>(
        &'a mut self,
        steps: &'a [Step],
    ) -> Pin<Box<dyn Future<Output = Flow> + Send + 'a>> {
        Box::pin(async move {
            for step in steps {
                if self.should_stop() || self.renew_if_expired().await == Flow::Stop {
                    return Flow::Stop;
                }
                let flow = self.step(step).await;
                if !matches!(step, Step::Set { .. }) {
                    self.spec.origin = None;
                }
                if flow == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Flow::Next
        })
    }

    async fn step(&mut self, step: &Step) -> Flow {
        match step {
            Step::Connect {
                namespace,
                transport,
            } => {
                let Some(ns) = self.text(namespace) else {
                    return Flow::Next;
                };
                self.conn = None;
                self.rooms.clear();
                self.endpoint = Some(Box::new((ns, *transport)));
                let t0 = self.start_time();
                match self.connect().await {
                    Ok(()) => {
                        self.rec.latency(names::CONNECT, micros(t0.elapsed()));
                        self.sub_pending = Some(t0);
                        Flow::Next
                    }
                    Err(flow) => flow,
                }
            }
            Step::Subscribe { room } => {
                let Some(room) = self.text(room) else {
                    return Flow::Next;
                };
                let t0 = self.start_time();
                match self.subscribe(room, t0).await {
                    Ok(_) => Flow::Next,
                    Err(flow) => flow,
                }
            }
            Step::Emit {
                event,
                data,
                metric,
            } => {
                let (Some(event), Some(data)) = (self.text(event), self.expand(data)) else {
                    return Flow::Next;
                };
                let Some(conn) = &self.conn else {
                    self.count(&names::error(code::NOT_CONNECTED));
                    return Flow::Next;
                };
                if conn.socket.emit(&event, data).is_err() {
                    self.settle_lost().await;
                    return Flow::Stop;
                }
                self.count(&names::sent(metric.as_deref().unwrap_or(&event)));
                Flow::Next
            }
            Step::EmitAck {
                event,
                data,
                expect,
                timeout,
                save,
                metric,
            } => {
                let (Some(event), Some(data)) = (self.text(event), self.expand(data)) else {
                    return Flow::Next;
                };
                let expect = match expect {
                    Some(e) => match self.expand(e) {
                        Some(e) => Some(e),
                        None => return Flow::Next,
                    },
                    None => None,
                };
                let metric = metric.clone().unwrap_or_else(|| names::ack(&event));
                let data_room = data
                    .get("roomId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let t0 = self.start_time();
                match self.emit_ack(&event, data, *timeout, &metric, t0).await {
                    Err(flow) => flow,
                    Ok(None) => Flow::Next,
                    Ok(Some(first)) => {
                        let failed = first.get("success").and_then(Value::as_bool) == Some(false);
                        match &expect {
                            Some(e) if subset(e, &first) => {}
                            Some(e) => {
                                self.count(&names::error(code::EXPECT));
                                self.mismatch(Mismatch::EMIT_ACK, &event, e, &first);
                                if failed {
                                    self.count_ack_error(&first);
                                }
                            }
                            None if failed => self.count_ack_error(&first),
                            None => {}
                        }
                        if event == "room:unsubscribe" && !failed {
                            // Not re-subscribed by a later `reconnect`.
                            if let Some(room) = data_room.as_ref() {
                                self.rooms.retain(|r| r != room);
                            }
                        }
                        self.save(save, &first);
                        Flow::Next
                    }
                }
            }
            Step::WaitFor {
                event,
                matching,
                timeout,
                save,
                ..
            } => {
                let Some(event) = self.text(event) else {
                    return Flow::Next;
                };
                let matching = match matching {
                    Some(m) => match self.expand(m) {
                        Some(m) => Some(m),
                        None => return Flow::Next,
                    },
                    None => None,
                };
                self.wait_for(&event, matching.as_ref(), *timeout, save)
                    .await
            }
            Step::Think(t) => {
                let d = think_duration(t, &mut self.rng);
                let until = self.start_time() + d;
                let (ctx, retire) = (self.ctx.clone(), self.spec.retire);
                let nap = async move {
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = ctx.retired(retire) => {}
                    }
                };
                match self.wait(nap, false).await {
                    Waited::Done(()) | Waited::Event => Flow::Next,
                    Waited::Halted | Waited::Lost => Flow::Stop,
                }
            }
            Step::Loop { count, steps } => {
                let Some(n) = self.expand(&Value::String(count.clone())) else {
                    return Flow::Next;
                };
                let Some(n) = as_count(&n) else {
                    self.count(&names::error(code::TEMPLATE));
                    return Flow::Next;
                };
                for _ in 0..n {
                    self.draw_rows(false);
                    if self.should_stop() || self.run_steps(steps).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Flow::Next
            }
            Step::Choice { options } => {
                let total: u64 = options.iter().map(|(w, _)| u64::from(*w)).sum();
                if total == 0 {
                    return Flow::Next;
                }
                let mut pick = self.rng.below(total);
                for (w, steps) in options {
                    let w = u64::from(*w);
                    if pick < w {
                        return self.run_steps(steps).await;
                    }
                    pick -= w;
                }
                Flow::Next
            }
            Step::Disconnect => {
                if let Some(conn) = self.conn.take() {
                    let handle = conn.socket.handle();
                    drop(conn);
                    let _ = self.wait(handle.disconnect(), false).await;
                    self.count(&names::disconnects("client"));
                }
                Flow::Next
            }
            Step::Reconnect { resubscribe } => {
                if self.endpoint.is_none() {
                    self.count(&names::error(code::NOT_CONNECTED));
                    return Flow::Next;
                }
                let t0 = self.start_time();
                if let Err(flow) = self.reconnect(*resubscribe).await {
                    return flow;
                }
                self.rec.latency(names::RECONNECT, micros(t0.elapsed()));
                self.count(names::RECONNECTS);
                Flow::Next
            }
            Step::Http {
                action,
                with,
                save,
                stamp,
                ..
            } => self.http(action, with, save, *stamp).await,
            Step::Set { vars } => {
                for (k, v) in vars {
                    if let Some(x) = self.expand(v) {
                        self.vars.insert(k.clone(), x);
                    }
                }
                Flow::Next
            }
        }
    }

    /// Drops the connection (it closes in the background) and opens a new
    /// one to the same endpoint, subscribing again to the VU's rooms with
    /// `resubscribe`.
    async fn reconnect(&mut self, resubscribe: bool) -> Result<(), Flow> {
        self.conn = None;
        self.connect().await?;
        let rooms = std::mem::take(&mut self.rooms);
        if resubscribe {
            for room in rooms {
                self.subscribe(room, Instant::now()).await?;
            }
        }
        Ok(())
    }

    /// After `token:expired` (the protocol's Token Refresh): trades the
    /// refresh token for a new access token through the profile's
    /// `refresh_token` action, reconnects with it and resubscribes to the
    /// VU's rooms. Counted in `token_refreshes` (time in `token_refresh`)
    /// or `token_refresh_failures`; a failure leaves the connection to the
    /// server, which ends it after its grace period.
    async fn renew_if_expired(&mut self) -> Flow {
        let Some(t0) = self.expired_at.take() else {
            return Flow::Next;
        };
        let refresh = match &self.renewed {
            Some(r) => r.1.clone(),
            None => self.ctx.creds[self.spec.local].refresh_token.clone(),
        };
        let Some(refresh) = refresh else {
            self.count(names::TOKEN_REFRESH_FAILURES);
            return Flow::Next;
        };
        let mut vars = self.scope_all();
        vars.insert("refreshToken".into(), json!(refresh));
        let call = self.driver_call(driver::Action::RefreshToken.as_str().to_owned(), vars);
        let extracted = match self.wait(call, false).await {
            Waited::Done(Ok((_, _, extracted))) => extracted,
            Waited::Done(Err(_)) | Waited::Event => {
                self.count(names::TOKEN_REFRESH_FAILURES);
                return Flow::Next;
            }
            Waited::Halted | Waited::Lost => return Flow::Stop,
        };
        let Some(Value::String(token)) = extracted.get("token") else {
            self.count(names::TOKEN_REFRESH_FAILURES);
            return Flow::Next;
        };
        let next = extracted
            .get("refreshToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.renewed = Some(Box::new((token.clone(), next)));
        if let Err(flow) = self.reconnect(true).await {
            self.count(names::TOKEN_REFRESH_FAILURES);
            return flow;
        }
        self.rec.latency(names::TOKEN_REFRESH, micros(t0.elapsed()));
        self.count(names::TOKEN_REFRESHES);
        Flow::Next
    }

    /// Opens the socket of `self.endpoint` (a failure is counted and ends
    /// the VU).
    async fn connect(&mut self) -> Result<(), Flow> {
        // Frames larger than the buffer are still read whole (in more
        // reads); idle VUs are what a load generator holds most of.
        const WS_READ_BUFFER: usize = 1024;
        let Some(endpoint) = self.endpoint.as_deref() else {
            return Err(Flow::Next);
        };
        let (ns, transport) = (endpoint.0.clone(), endpoint.1);
        let cred = &self.ctx.creds[self.spec.local];
        let mut who = driver::profile::Vars::new();
        who.insert("token".into(), json!(self.token()));
        if let Some(id) = &cred.user_id {
            who.insert("userId".into(), json!(id));
        }
        let Ok(auth) = self.ctx.handshake.auth(&who, &self.ctx.base_vars) else {
            // The template expanded for a sample user before the run; what
            // fails here is a `${userId}` this user's credentials lack.
            self.count(names::CONNECT_FAILURES);
            return Err(Flow::Stop);
        };
        let mut config = self.ctx.handshake.apply(
            ClientConfig::new(self.ctx.target.clone())
                .with_path(self.ctx.socket_path.clone())
                .with_namespace(ns)
                .with_auth(auth)
                .with_transport(client_transport(transport))
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_ws_read_buffer_size(WS_READ_BUFFER)
                .with_event_hook(self.event_hook()),
        );
        if let Some(ip) = self.ctx.local_addr {
            config = config.with_local_addr(ip);
        }
        // Boxed: the connect machinery is big and only lives while connecting.
        match self.wait(Box::pin(sioclient::connect(config)), false).await {
            Waited::Done(Ok(socket)) => {
                self.ctx.recorder.gauge_connected(1);
                self.conn = Some(Conn {
                    socket,
                    ctx: self.ctx.clone(),
                });
                Ok(())
            }
            Waited::Done(Err(e)) => {
                self.count(names::CONNECT_FAILURES);
                if !matches!(e, ConnectError::Rejected { .. } | ConnectError::Config(_)) {
                    self.ctx.suspect();
                }
                Err(Flow::Stop)
            }
            _ => Err(Flow::Stop),
        }
    }

    /// Records, in the connection task, the events this VU only counts and
    /// times: neither `error` (its code is counted) nor one a `wait_for` of
    /// the group names. Those come to [`Vu::on_event`] as before.
    fn event_hook(&self) -> EventHook {
        let ctx = self.ctx.clone();
        let rec = self.rec.clone();
        let group = usize::from(self.spec.group);
        EventHook::new(move |ev| {
            if ev.name == event::ERROR
                || ev.name == event::TOKEN_EXPIRED
                || ctx.interest[group].wants(&ev.name)
            {
                return false;
            }
            record_received(
                &rec,
                ctx.event_metrics.name_of(&ev.name),
                stamp_in(ev.payload),
                unix_us(),
            );
            true
        })
    }

    /// `room:subscribe` with ack: `ack.room:subscribe`, and
    /// `connect_to_subscribed` for the first success after a `connect`.
    async fn subscribe(&mut self, room: String, t0: Instant) -> Result<bool, Flow> {
        let data = json!({ "roomId": room });
        match self
            .emit_ack(
                event::ROOM_SUBSCRIBE,
                data,
                DEFAULT_ACK_TIMEOUT,
                &names::ack(event::ROOM_SUBSCRIBE),
                t0,
            )
            .await?
        {
            Some(first) if first.get("success").and_then(Value::as_bool) != Some(false) => {
                if let Some(start) = self.sub_pending.take() {
                    self.rec
                        .latency(names::CONNECT_TO_SUBSCRIBED, micros(start.elapsed()));
                }
                if !self.rooms.contains(&room) {
                    self.rooms.push(room);
                }
                Ok(true)
            }
            Some(first) => {
                self.count_ack_error(&first);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Sends `event` with an ack id and waits for the answer: records the
    /// latency into `metric` and returns the ack's first argument; `None`
    /// after a timeout (`errors.timeout`) or without a socket.
    async fn emit_ack(
        &mut self,
        event: &str,
        data: Value,
        timeout: Duration,
        metric: &str,
        t0: Instant,
    ) -> Result<Option<Value>, Flow> {
        let Some(conn) = &self.conn else {
            self.count(&names::error(code::NOT_CONNECTED));
            return Ok(None);
        };
        let handle = conn.socket.handle();
        let name = event.to_owned();
        self.count(&names::sent(event));
        let ack = async move { handle.emit_with_ack(&name, data, timeout).await };
        match self.wait(ack, false).await {
            Waited::Done(Ok(args)) => {
                self.rec.latency(metric, micros(t0.elapsed()));
                Ok(Some(args.into_iter().next().unwrap_or(Value::Null)))
            }
            Waited::Done(Err(AckError::Timeout)) => {
                self.count(&names::error(code::TIMEOUT));
                Ok(None)
            }
            Waited::Done(Err(AckError::Disconnected)) => {
                self.settle_lost().await;
                Err(Flow::Stop)
            }
            Waited::Event | Waited::Halted | Waited::Lost => Err(Flow::Stop),
        }
    }

    fn count_ack_error(&self, first: &Value) {
        let code = first
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or(code::UNKNOWN);
        self.count(&names::error(code));
    }

    /// Saves `var -> JSON pointer` from `from`; a missing pointer counts
    /// `errors.save`.
    fn save(&mut self, save: &std::collections::BTreeMap<String, String>, from: &Value) {
        for (var, pointer) in save {
            match from.pointer(pointer) {
                Some(v) => {
                    self.vars.insert(var.clone(), v.clone());
                }
                None => self.count(&names::error(code::SAVE)),
            }
        }
    }

    fn take_retained(&mut self, event: &str, matching: Option<&Value>) -> Option<Value> {
        let i = self
            .retained
            .iter()
            .position(|(name, first)| name == event && matching.is_none_or(|m| subset(m, first)))?;
        self.retained.remove(i).map(|(_, first)| first)
    }

    async fn wait_for(
        &mut self,
        event: &str,
        matching: Option<&Value>,
        timeout: Duration,
        save: &std::collections::BTreeMap<String, String>,
    ) -> Flow {
        let deadline = Instant::now() + timeout;
        loop {
            if self.renew_if_expired().await == Flow::Stop {
                return Flow::Stop;
            }
            if let Some(first) = self.take_retained(event, matching) {
                self.save(save, &first);
                return Flow::Next;
            }
            if self.conn.is_none() {
                self.count(&names::error(code::NOT_CONNECTED));
                return Flow::Next;
            }
            let (ctx, retire) = (self.ctx.clone(), self.spec.retire);
            let until = async move {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline.into()) => true,
                    () = ctx.retired(retire) => false,
                }
            };
            match self.wait(until, true).await {
                Waited::Event => continue,
                Waited::Done(true) => {
                    self.count(&names::error(code::TIMEOUT));
                    // Events of the name came, none matched: show the last.
                    if let Some(m) = matching
                        && let Some((_, got)) = self.retained.iter().rev().find(|(n, _)| n == event)
                    {
                        self.mismatch(Mismatch::WAIT_FOR, event, m, got);
                    }
                    return Flow::Next;
                }
                // Retired: the schedule wants this VU gone; not a timeout.
                Waited::Done(false) | Waited::Halted | Waited::Lost => return Flow::Stop,
            }
        }
    }

    async fn http(
        &mut self,
        action: &str,
        with: &std::collections::BTreeMap<String, Value>,
        save: &[String],
        stamp: bool,
    ) -> Flow {
        let mut scope = self.scope_all();
        for (k, v) in with {
            let Some(x) = self.expand(v) else {
                return Flow::Next;
            };
            scope.insert(k.clone(), x);
        }
        if stamp {
            let now = json!(unix_us());
            match scope.get_mut("data") {
                Some(Value::Object(m)) => {
                    m.insert(STAMP.into(), now);
                }
                Some(Value::Null) | None => {
                    scope.insert("data".into(), json!({ STAMP: now }));
                }
                Some(_) => self.count(&names::error(code::STAMP)),
            }
        }
        let t0 = self.start_time();
        let call = self.driver_call(action.to_owned(), scope);
        match self.wait(call, false).await {
            Waited::Done(Ok((_, _, extracted))) => {
                self.rec.latency(&names::http(action), micros(t0.elapsed()));
                for var in save {
                    match extracted.get(var) {
                        Some(v) => {
                            self.vars.insert(var.clone(), v.clone());
                        }
                        None => self.count(&names::error(code::SAVE)),
                    }
                }
                Flow::Next
            }
            Waited::Done(Err(e)) => {
                if let driver::DriverError::Status { .. } = e {
                    self.rec.latency(&names::http(action), micros(t0.elapsed()));
                }
                self.count(&driver_error_counter(&e));
                if e.is_transport() {
                    self.ctx.suspect();
                }
                Flow::Next
            }
            Waited::Event | Waited::Halted | Waited::Lost => Flow::Stop,
        }
    }

    /// After the steps: stay connected (reading) until the schedule
    /// retires this VU.
    async fn idle(&mut self) {
        self.retaining = false;
        self.retained = VecDeque::new();
        loop {
            let (ctx, retire) = (self.ctx.clone(), self.spec.retire);
            match self
                .wait(async move { ctx.retired(retire).await }, true)
                .await
            {
                // Only a `token:expired` wakes an idle VU (nothing is
                // retained). Boxed: an idle VU's future stays small.
                Waited::Event if Box::pin(self.renew_if_expired()).await == Flow::Next => {}
                _ => return,
            }
        }
    }

    /// Ends the socket: gracefully (bounded) unless the run is stopping
    /// hard, then it closes in the background.
    async fn close(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.ctx.halt.is_set() {
            return;
        }
        let handle = conn.socket.handle();
        drop(conn);
        let halt = self.ctx.halt.wait();
        tokio::select! {
            () = halt => {}
            _ = tokio::time::timeout(CLOSE_TIMEOUT, handle.disconnect()) => {}
        }
        self.count(&names::disconnects("client"));
    }
}

/// A driver action's call in flight (see [`Vu::driver_call`]).
type DriverCall = Pin<
    Box<
        dyn Future<Output = Result<(u16, Value, driver::profile::Vars), driver::DriverError>>
            + Send,
    >,
>;

/// The fan-out stamp: Unix µs when the message was sent.
const STAMP: &str = "sentAtUs";

/// What every received event adds: `received.<name>`, and
/// `fanout.<name>` (`read_at - stamp`, both Unix µs) when its first
/// argument carries a stamp; `name` is the event's, or the `metric` the
/// scenario gives it ([`crate::scenario::EventMetrics`]).
fn record_received(rec: &Recorder, name: &str, stamp: Option<u64>, read_at: u64) {
    rec.count_of(names::RECEIVED, name, 1);
    if let Some(sent) = stamp
        && read_at >= sent
    {
        rec.latency_of(names::FANOUT, name, read_at - sent);
    }
}

/// `sentAtUs` of the first argument of an EVENT payload
/// (`["name",{"sentAtUs":N,..},..]`), as `first.get(STAMP)?.as_u64()` would
/// read it, without building the arguments.
fn stamp_in(payload: &str) -> Option<u64> {
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// The first argument's stamp; anything but an object fails (no stamp).
    struct Stamp(Option<u64>);
    impl<'de> serde::Deserialize<'de> for Stamp {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct IsStamp(bool);
            impl<'de> serde::Deserialize<'de> for IsStamp {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    struct V;
                    impl Visitor<'_> for V {
                        type Value = IsStamp;
                        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                            f.write_str("a key")
                        }
                        fn visit_str<E: de::Error>(self, v: &str) -> Result<IsStamp, E> {
                            Ok(IsStamp(v == STAMP))
                        }
                    }
                    d.deserialize_str(V)
                }
            }
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Stamp;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Stamp, A::Error> {
                    // Like `serde_json::Map`, the last of duplicate keys wins.
                    let mut stamp = None;
                    while let Some(IsStamp(is)) = map.next_key()? {
                        if is {
                            stamp = map.next_value::<Value>()?.as_u64();
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(Stamp(stamp))
                }
            }
            d.deserialize_map(V)
        }
    }

    struct FirstArg(Option<u64>);
    impl<'de> serde::Deserialize<'de> for FirstArg {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = FirstArg;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an event array")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstArg, A::Error> {
                    seq.next_element::<IgnoredAny>()?;
                    let stamp = seq.next_element::<Stamp>()?.and_then(|s| s.0);
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(FirstArg(stamp))
                }
            }
            d.deserialize_seq(V)
        }
    }

    // Most events carry no stamp: a substring check skips the parse.
    if !payload.contains(STAMP) {
        return None;
    }
    serde_json::from_str::<FirstArg>(payload).ok()?.0
}

/// The counter a failed driver action adds to: `errors.<CODE>` with the
/// REST error code of the answer, else `errors.http_<status>`;
/// `errors.timeout`, `errors.http_transport`, `errors.template`,
/// `errors.missing_action`.
fn driver_error_counter(e: &driver::DriverError) -> String {
    match e.kind() {
        FailureKind::MissingAction => names::error(code::MISSING_ACTION),
        FailureKind::Template => names::error(code::TEMPLATE),
        FailureKind::Timeout => names::error(code::TIMEOUT),
        FailureKind::Transport => names::error(code::HTTP_TRANSPORT),
        FailureKind::Rest(rest) => names::error(rest),
        FailureKind::Status(status) => names::http_status_error(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_like_the_first_argument() {
        let cases = [
            (r#"["t",{"seq":1,"sentAtUs":42}]"#, Some(42)),
            (
                r#"["t",{"sentAtUs":1,"x":{"sentAtUs":7},"sentAtUs":2}]"#,
                Some(2),
            ),
            (r#"["t",{"sentAtUs":-1}]"#, None),
            (r#"["t",{"sentAtUs":"42"}]"#, None),
            (r#"["t",{"sentAtUs":1.5}]"#, None),
            (r#"["t","sentAtUs"]"#, None),
            (r#"["t",["sentAtUs",1]]"#, None),
            (r#"["t",{"a":1},{"sentAtUs":3}]"#, None),
            (r#"["t"]"#, None),
            (r#"["t",{"seq":1}]"#, None),
        ];
        for (payload, want) in cases {
            let args: Vec<Value> = serde_json::from_str(payload).expect(payload);
            let first = args.get(1).cloned().unwrap_or(Value::Null);
            assert_eq!(first.get(STAMP).and_then(Value::as_u64), want, "{payload}");
            assert_eq!(stamp_in(payload), want, "{payload}");
        }
    }

    #[test]
    fn received_events_count_and_time() {
        let rec = Recorder::with_shards(1);
        record_received(&rec, "t", Some(100), 150);
        record_received(&rec, "t", None, 150);
        // A stamp from the future (clocks of two hosts) is not a latency.
        record_received(&rec, "t", Some(200), 150);
        let s = rec.snapshot();
        assert_eq!(s.counters["received.t"], 3);
        assert_eq!(s.histograms["fanout.t"].len(), 1);
        assert_eq!(s.histograms["fanout.t"].max(), 50);
    }
}
