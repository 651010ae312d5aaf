//! The engine: runs a scenario's virtual users (VUs) against a target,
//! phase by phase, and records what they see into a [`Recorder`].
//!
//! # Calling it (owner C)
//!
//! ```no_run
//! # async fn demo(scenario: loadgen::scenario::Scenario) {
//! use loadgen::engine::{self, Progress, RunPlan, StopSignal};
//! use loadgen::metrics::Recorder;
//!
//! let plan = RunPlan::new(scenario, "http://127.0.0.1:3000");
//! let recorder = Recorder::new();
//! let stop = StopSignal::new();           // stop.stop() on Ctrl-C
//! let progress = Some(Progress::new(plan.scenario.peak_clients()));
//! let outcome = engine::run(plan, recorder.clone(), stop, progress).await;
//! match &outcome.abort_reason {
//!     None => { /* complete: report, thresholds */ }
//!     Some(r) => std::process::exit(r.exit_code()),  // 2, 3 or 4; still write the partial report for 4
//! }
//! # }
//! ```
//!
//! [`run`] never hangs: before the load it checks the target (an
//! Engine.IO handshake), runs the scenario's `setup` actions and gets the
//! tokens; then it runs the phases; the load is bounded by the scenario's
//! `max_duration` (counted from the start of the load, after set-up), and
//! every wait inside is bounded too. A [`StopSignal`] stops it within about
//! a second.
//!
//! # Phases
//!
//! The *closed model* phases drive one number, the wanted count of
//! concurrent VUs ("level"):
//! * `Ramp { from, to, over }`: the level jumps to `from`, then moves
//!   linearly to `to`: VU slot `j` (0-based) starts at
//!   `over * (j - from) / (to - from)` into the phase, so starts are evenly
//!   spaced from the phase start and all `to` have started by its end. A
//!   ramp to a lower level retires the highest slots first, evenly spaced
//!   the same way.
//! * `Hold { duration }`: keeps the level.
//! * `RampDown { over }`: from the current level to 0, like a ramp.
//!
//! The *open model* phase `Arrival { rate_per_sec, duration }` starts a new
//! VU every `1 / rate` s from the phase start (arrival `j` at `j / rate`,
//! while that is before the phase end), whatever the VUs already running do.
//! A VU's intended start is its arrival time: its first step's latency (the
//! `connect` histogram, or an ack, an HTTP call) is measured from the
//! intended start, and its first `think` ends at intended start + think, so
//! a stalled generator or server shows up instead of being hidden
//! (coordinated omission). Arrival VUs belong to their phase and retire
//! when it ends; the closed-model level is left unchanged by an `Arrival`
//! phase.
//!
//! # A VU's life
//!
//! A VU runs its group's steps once, in order. When the steps end and the
//! VU still has a socket, it stays connected (reading every event, so
//! fan-out keeps being measured) until the schedule retires it. Retiring
//! (a lower ramp level, `RampDown`, the end of its `Arrival` phase, the end
//! of the last phase) is soft: the VU stops **after its current step** —
//! a `loop` starts no new iteration, a `think` or a `wait_for` is cut short
//! (not counted as a timeout), an ack or HTTP call in flight completes —
//! then disconnects gracefully. A VU ends early when its connection is lost
//! (counted in `disconnects.<reason>`) or a connect fails
//! (`connect_failures`); it is not restarted. A hard stop (the
//! [`StopSignal`], the target lost, `max_duration` reached) interrupts
//! every VU at once.
//!
//! # Steps and metrics
//!
//! Histograms (µs): `connect`; `connect_to_subscribed` (from the start of a
//! `connect` to the first successful `subscribe` ack on that connection);
//! `ack.<event>` or the step's `metric` (every answered ack, failed or
//! not; `subscribe` records `ack.room:subscribe`); `fanout.<event>` (for
//! every received event whose first argument has `sentAtUs`: the time the
//! frame was read minus `sentAtUs`, both on this machine's wall clock —
//! generators on several machines need synchronized clocks); `reconnect`
//! (drop, connect, and re-subscribe when `resubscribe`); `http.<action>`
//! (every answered call).
//!
//! Counters: `sent.<event>`, `received.<event>` (every event, read as it
//! arrives, so memory stays flat), `errors.<CODE>` (a failed ack's
//! `error.code`, an `error` event's `code`, a REST error body's
//! `error.code`, else `errors.http_<status>`), `errors.timeout` (ack,
//! `wait_for`, HTTP), `errors.expect` (an ack not matching `expect`),
//! `errors.save` (a `save` pointer not found), `errors.template`,
//! `errors.not_connected` (a socket step without a socket),
//! `errors.http_transport`, `errors.invalid_frame`, `connect_failures`,
//! `disconnects.<reason>` (`client` for the VU's own disconnects, `server`,
//! `transport_close`, `transport_error`, `ping_timeout`), `reconnects`,
//! `vus_started`, `vus_finished` (VUs that ended by themselves, not cut by
//! a hard stop). The `connected` gauge follows every socket.
//!
//! `expect` and `matching` are subset matches (objects: the listed keys,
//! recursively; arrays: element-wise, same length; numbers by value).
//! A `wait_for` also takes a matching event that arrived while the VU was
//! busy with an earlier step (the last [`vu::RETAIN_CAP`] such events of
//! the names the group's `wait_for` steps use are kept, while steps run).
//! `stamp = true` on `http` adds `sentAtUs` (Unix µs) to the `data`
//! variable (an object, created when absent).
//!
//! # Variables
//!
//! See [`vars`]: VU-saved, built-ins (`vu` = the VU's number across the
//! whole run, `runId`, `nowMs`, `shard`, `token`, `userId`), set-up saved,
//! scenario `vars`, then the environment.
//!
//! # Tokens (set-up time, not load)
//!
//! `Driver`: per VU `create_user` (name `lg <runId> vu<N>`), `mint_token`
//! (`ttlSeconds` = max(1 h, `max_duration` + 10 min)) and, with
//! `join_room`, `add_participant` (`roomId`, `userId`, `role`), 32 requests
//! in flight. `Csv`: rows `token[,userId]`; VU number `N` gets row
//! `N % rows`.
//!
//! # Shares (workers and shards)
//!
//! A process runs share `share_index` of `share_count`: closed-model slot
//! `j` and arrival `a` (numbered across the run) belong to it when
//! `j % share_count == share_index` (resp. `a % share_count`), so every
//! share ramps in step and runs an even part of every group. VU numbers
//! (`${vu}`) are unique across shares.
//! * With [`RunPlan::setup_vars`] `None` (each share runs the set-up
//!   itself — `--shard` on several machines), every share is its own world
//!   with its own rooms: it runs every `Count` group in full (with N shares
//!   there are N hosts) and the `Weight` groups share the rest of its VUs.
//! * With `Some(vars)` (a parent ran [`setup`] once and handed the saved
//!   variables to its workers — `--workers`), all shares are one world: a
//!   `Count` group runs once in the whole run (in the share that owns its
//!   VU numbers, share 0 for the first ones).
//!
//! # Target lost
//!
//! A lost connection, a failed connect or HTTP transport error makes the
//! engine probe the target (an Engine.IO handshake, [`sioclient::probe`],
//! as before the run); three failed probes in a row (~1–6 s) stop the run
//! with [`AbortReason::TargetLost`].

mod layout;
mod progress;
mod schedule;
mod tokens;
pub mod vars;
pub mod vu;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use driver::handshake::Handshake;
use driver::identity::Identity;
use driver::profile::{Profile, Vars};
use formats::report::Mismatch;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::metrics::Recorder;
use crate::scenario::{Scenario, Step, TokenSource};
use layout::{Layout, NO_GROUP};
use schedule::{Interrupt, Scheduler};

pub use driver::{DriverError, call};
pub use progress::{DEFAULT_PROGRESS_INTERVAL, Progress};
pub use tokens::SETUP_CONCURRENCY;

/// After a hard stop, how long VUs get to end before their tasks are
/// aborted.
pub const HALT_GRACE: Duration = Duration::from_secs(3);
/// Bound of the target check before the run.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one probe of a target suspected lost mid-run.
const MONITOR_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The scenario, after `with_overrides`.
    pub scenario: Arc<Scenario>,
    /// Base URL of the target (REST and Socket.IO), e.g. `http://127.0.0.1:3000`.
    pub target: String,
    /// The target profile (driver actions and the Socket.IO path).
    pub profile: Arc<Profile>,
    /// The profile's `[vars]`, expanded (`Profile::base_vars`).
    pub base_vars: Vars,
    /// This process's share: see "Shares" in the module documentation.
    pub share_index: u32,
    /// Number of shares of the whole run (1: everything here).
    pub share_count: u32,
    /// The `--shard` index, from 0 (`${shard}`): the share with `--shard`
    /// alone, and the same for every worker of a shard with `--workers`.
    pub shard: u32,
    /// The set-up's saved variables when the set-up already ran elsewhere
    /// (a parent process, with [`setup`]); `None`: run it here.
    pub setup_vars: Option<Vars>,
    /// Local address for every client socket and driver request.
    pub local_addr: Option<IpAddr>,
    /// Unique per run (`${runId}`; user names).
    pub run_id: String,
    /// Seeds every random choice (think times, `choice`) per VU.
    pub seed: u64,
    /// How every client connects (auth object, headers, query, TLS).
    pub handshake: Arc<Handshake>,
    /// Where `source = "driver"` users and tokens come from.
    pub identity: Arc<Identity>,
    /// `--start-at`: the load (not the set-up) starts at this wall-clock
    /// time, so that shards on several machines start together; at once
    /// when it has passed.
    pub start_at: Option<SystemTime>,
}

impl RunPlan {
    /// A plan for the whole run in this process, with the built-in
    /// reference profile, no set-up variables, a fresh run id and seed 0.
    pub fn new(scenario: Scenario, target: impl Into<String>) -> RunPlan {
        let profile = Profile::reference();
        let base_vars = profile.base_vars().unwrap_or_default();
        RunPlan {
            scenario: Arc::new(scenario),
            target: target.into(),
            profile: Arc::new(profile),
            base_vars,
            share_index: 0,
            share_count: 1,
            shard: 0,
            setup_vars: None,
            local_addr: None,
            run_id: new_run_id(),
            seed: 0,
            handshake: Arc::default(),
            identity: Arc::default(),
            start_at: None,
        }
    }
}

/// A run id from the clock and a process counter: `[a-z0-9]`, unique
/// enough for user names on a shared target.
pub fn new_run_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}{:04x}{seq:x}",
        now.as_secs() % 0xff_ffff,
        (now.subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

/// Why a run did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// Something in the scenario or its files that only shows when running
    /// (an unreadable token file). Exit 2.
    Scenario(String),
    /// No Engine.IO handshake at the target before the run. Exit 3.
    TargetUnreachable(String),
    /// A set-up action or token acquisition failed. Exit 3.
    SetupFailed(String),
    /// The target stopped answering during the load. Exit 4.
    TargetLost(String),
    /// The [`StopSignal`] fired (Ctrl-C). Exit 4.
    Interrupted,
}

impl AbortReason {
    /// The process exit code the README documents for this reason.
    pub fn exit_code(&self) -> i32 {
        match self {
            AbortReason::Scenario(_) => 2,
            AbortReason::TargetUnreachable(_) | AbortReason::SetupFailed(_) => 3,
            AbortReason::TargetLost(_) | AbortReason::Interrupted => 4,
        }
    }

    /// Whether the load never started (nothing worth a report).
    pub fn before_load(&self) -> bool {
        matches!(
            self,
            AbortReason::Scenario(_)
                | AbortReason::TargetUnreachable(_)
                | AbortReason::SetupFailed(_)
        )
    }
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbortReason::Scenario(m) => write!(f, "scenario error: {m}"),
            AbortReason::TargetUnreachable(m) => write!(f, "target unreachable: {m}"),
            AbortReason::SetupFailed(m) => write!(f, "set-up failed: {m}"),
            AbortReason::TargetLost(m) => write!(f, "target lost during the run: {m}"),
            AbortReason::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct EngineOutcome {
    /// No abort: every phase ran (possibly cut at `max_duration`, see
    /// [`hit_max_duration`](Self::hit_max_duration)).
    pub complete: bool,
    pub abort_reason: Option<AbortReason>,
    /// The load reached `max_duration` with VUs still busy; they were cut.
    /// Not an abort.
    pub hit_max_duration: bool,
    pub vus_started: u64,
    /// VUs that ended by themselves (not cut by a hard stop).
    pub vus_finished: u64,
    /// Target check, set-up actions and tokens.
    pub setup_duration: Duration,
    /// From the start of the first phase to the end of the last VU.
    pub load_duration: Duration,
    /// Wall-clock start of the load (after set-up); `None` when it never
    /// started.
    pub load_started_at: Option<SystemTime>,
    /// The set-up's saved variables (what [`setup`] returned).
    pub setup_vars: Vars,
    /// The first failed checks (at most the scenario's `keep_mismatches`).
    pub mismatches: Vec<Mismatch>,
}

impl EngineOutcome {
    fn before_load(reason: AbortReason, setup: Duration) -> EngineOutcome {
        EngineOutcome {
            complete: false,
            abort_reason: Some(reason),
            hit_max_duration: false,
            vus_started: 0,
            vus_finished: 0,
            setup_duration: setup,
            load_duration: Duration::ZERO,
            load_started_at: None,
            setup_vars: Vars::new(),
            mismatches: Vec::new(),
        }
    }
}

/// A cancellation signal (tokio-util free): cheap to clone; `stop()` from
/// anywhere (a Ctrl-C handler), every clone sees it.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<Flag>);

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Asks the run to stop (idempotent).
    pub fn stop(&self) {
        self.0.set();
    }

    pub fn is_stopped(&self) -> bool {
        self.0.is_set()
    }

    /// Resolves once [`stop`](Self::stop) was called.
    pub async fn stopped(&self) {
        self.0.wait().await
    }
}

/// A one-way flag with wake-ups.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    set: AtomicBool,
    notify: Notify,
}

impl Flag {
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self) {
        self.set.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// What retires a VU: its closed-model slot (and the generation of the
/// slot, in case a later ramp restarts it) or the end of its `Arrival`
/// phase.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retire {
    Slot { k: u32, generation: u32 },
    Arrival(usize),
}

#[derive(Debug, Default)]
pub(crate) struct Slot {
    generation: AtomicU32,
    notify: Notify,
}

/// Event names a group's `wait_for` steps wait for.
#[derive(Debug)]
pub(crate) enum Interest {
    Names(Vec<String>),
    /// A `wait_for` names its event with a per-VU variable.
    All,
}

impl Interest {
    fn of(steps: &[Step], vars: &Vars) -> Interest {
        let mut names = Vec::new();
        if collect_interest(steps, vars, &mut names) {
            Interest::All
        } else {
            Interest::Names(names)
        }
    }

    pub(crate) fn any(&self) -> bool {
        match self {
            Interest::Names(n) => !n.is_empty(),
            Interest::All => true,
        }
    }

    pub(crate) fn wants(&self, event: &str) -> bool {
        match self {
            Interest::Names(n) => n.iter().any(|x| x == event),
            Interest::All => true,
        }
    }
}

/// Returns `true` when some event name cannot be known before the run.
fn collect_interest(steps: &[Step], vars: &Vars, out: &mut Vec<String>) -> bool {
    let mut all = false;
    for s in steps {
        match s {
            Step::WaitFor { event, .. } => {
                match vars::expand_text(event, |n| vars.get(n).cloned()) {
                    Ok(name) if !vars::is_template(&name) => {
                        if !out.contains(&name) {
                            out.push(name);
                        }
                    }
                    _ => all = true,
                }
            }
            Step::Loop { steps, .. } => all |= collect_interest(steps, vars, out),
            Step::Choice { options } => {
                for (_, steps) in options {
                    all |= collect_interest(steps, vars, out);
                }
            }
            _ => {}
        }
    }
    all
}

/// What every VU of a run shares.
pub(crate) struct RunCtx {
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) target: String,
    pub(crate) socket_path: String,
    pub(crate) handshake: Arc<Handshake>,
    pub(crate) profile: Arc<Profile>,
    pub(crate) base_vars: Arc<Vars>,
    /// Scenario vars overlaid by the set-up's saved variables.
    pub(crate) run_vars: Arc<Vars>,
    pub(crate) run_id: String,
    pub(crate) shard: u32,
    pub(crate) seed: u64,
    pub(crate) local_addr: Option<IpAddr>,
    pub(crate) http: reqwest::Client,
    pub(crate) recorder: Recorder,
    pub(crate) creds: Vec<tokens::Cred>,
    pub(crate) interest: Vec<Interest>,
    /// Per feeder, the next row of a `round-robin` pick (unbounded; taken
    /// modulo the rows).
    pub(crate) feeder_next: Box<[AtomicU64]>,
    /// Per group, the `[KEY=VALUE]` prefixes of its tags (what its VUs'
    /// recorders also record under).
    pub(crate) group_tags: Vec<Arc<[String]>>,
    /// The first failed checks, up to the scenario's `keep_mismatches`.
    pub(crate) mismatches: Mutex<Vec<Mismatch>>,
    /// The names received events are recorded under.
    pub(crate) event_metrics: crate::scenario::EventMetrics,
    slots: Box<[Slot]>,
    want: AtomicU32,
    arrival_over: Box<[Flag]>,
    pub(crate) halt: Flag,
    abort: Mutex<Option<AbortReason>>,
    suspect: Notify,
}

impl RunCtx {
    pub(crate) fn is_retired(&self, r: Retire) -> bool {
        match r {
            Retire::Slot { k, generation } => {
                k >= self.want.load(Ordering::Acquire)
                    || self.slots[k as usize].generation.load(Ordering::Acquire) != generation
            }
            Retire::Arrival(p) => self.arrival_over[p].is_set(),
        }
    }

    /// Resolves once the schedule retires `r`.
    pub(crate) async fn retired(&self, r: Retire) {
        let notify = match r {
            Retire::Slot { k, .. } => &self.slots[k as usize].notify,
            Retire::Arrival(p) => &self.arrival_over[p].notify,
        };
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_retired(r) {
                return;
            }
            notified.await;
        }
    }

    /// Something suggests the target is gone: have it probed.
    pub(crate) fn suspect(&self) {
        self.suspect.notify_one();
    }

    /// Hard stop; `reason` (the first one wins) makes the run incomplete.
    fn halt(&self, reason: Option<AbortReason>) {
        if let Some(r) = reason {
            let mut abort = self.abort.lock().unwrap_or_else(|p| p.into_inner());
            if abort.is_none() {
                *abort = Some(r);
            }
        }
        self.halt.set();
    }

    fn abort_reason(&self) -> Option<AbortReason> {
        self.abort.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The HTTP client the engine uses for driver calls (bound to
/// `local_addr`, trusting what the handshake's TLS settings say).
pub fn http_client(local_addr: Option<IpAddr>, handshake: &Handshake) -> reqwest::Client {
    handshake
        .http_builder(reqwest::Client::builder())
        .connect_timeout(Duration::from_secs(5))
        .timeout(driver::REQUEST_TIMEOUT)
        .local_address(local_addr)
        .pool_max_idle_per_host(SETUP_CONCURRENCY)
        .build()
        .unwrap_or_default()
}

/// Checks that the target answers an Engine.IO handshake (long-polling,
/// else WebSocket, at the profile's Socket.IO path) within
/// [`PREFLIGHT_TIMEOUT`].
pub async fn check_target(
    http: &reqwest::Client,
    target: &str,
    socket_path: &str,
    handshake: &Handshake,
    local_addr: Option<IpAddr>,
) -> Result<(), String> {
    probe(
        http,
        target,
        socket_path,
        handshake,
        local_addr,
        PREFLIGHT_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())
}

/// One [`sioclient::probe`] of the target, shaped by the handshake;
/// polling goes through `http` (which carries the engine's local address
/// and TLS trust).
async fn probe(
    http: &reqwest::Client,
    target: &str,
    socket_path: &str,
    handshake: &Handshake,
    local_addr: Option<IpAddr>,
    timeout: Duration,
) -> Result<(), sioclient::ProbeError> {
    let mut config = handshake.apply(
        sioclient::ClientConfig::new(target)
            .with_path(socket_path)
            .with_transport(handshake.probe_transport())
            .with_connect_timeout(timeout),
    );
    config.local_addr = local_addr;
    config.http_client = Some(http.clone());
    sioclient::probe(&config).await.map(drop)
}

/// The client transport of a scenario's `connect` step.
pub(crate) fn client_transport(t: crate::scenario::Transport) -> sioclient::Transport {
    match t {
        crate::scenario::Transport::WebSocket => sioclient::Transport::WebSocket,
        crate::scenario::Transport::Polling => sioclient::Transport::Polling,
    }
}

fn run_builtins(plan: &RunPlan) -> Vars {
    let mut b = Vars::new();
    b.insert("runId".into(), json!(plan.run_id));
    b.insert("shard".into(), json!(plan.shard));
    b.insert("nowMs".into(), json!(vars::unix_ms()));
    b
}

/// Runs the scenario's `setup` actions once (in order; each sees the
/// scenario vars, the run built-ins and what earlier actions saved) and
/// returns the saved variables. A failed action, or a `save` name its
/// action did not extract, is [`AbortReason::SetupFailed`].
pub async fn setup(plan: &RunPlan, http: &reqwest::Client) -> Result<Vars, AbortReason> {
    let builtins = run_builtins(plan);
    let scenario_vars = vars::expand_scenario_vars(&plan.scenario, &builtins);
    let mut saved = Vars::new();
    for (i, a) in plan.scenario.setup.iter().enumerate() {
        let fail = |m: String| AbortReason::SetupFailed(format!("setup[{i}] {}: {m}", a.action));
        let mut scope = scenario_vars.clone();
        scope.extend(builtins.clone());
        scope.insert("nowMs".into(), json!(vars::unix_ms()));
        scope.extend(saved.clone());
        for (k, v) in &a.with {
            let x = vars::expand_with(v, |n| scope.get(n).cloned()).map_err(fail)?;
            scope.insert(k.clone(), x);
        }
        let (_, _, extracted) = call(
            http,
            &plan.target,
            &plan.profile,
            &plan.base_vars,
            &a.action,
            &scope,
        )
        .await
        .map_err(|e| AbortReason::SetupFailed(format!("setup[{i}]: {e}")))?;
        for name in &a.save {
            match extracted.get(name) {
                Some(v) => {
                    saved.insert(name.clone(), v.clone());
                }
                None => {
                    return Err(fail(format!(
                        "the answer has no `{name}` (the action's `extract` must provide it)"
                    )));
                }
            }
        }
    }
    Ok(saved)
}

/// Runs the plan: target check, set-up, tokens, then the phases (see the
/// module documentation). Records into `recorder`; `progress`, when given,
/// is updated once per second and cleared at the end.
pub async fn run(
    plan: RunPlan,
    recorder: Recorder,
    stop: StopSignal,
    progress: Option<Progress>,
) -> EngineOutcome {
    let setup_started = Instant::now();
    let progress = progress.map(Arc::new);
    let outcome = run_inner(plan, recorder, stop, progress.clone(), setup_started).await;
    if let Some(p) = &progress {
        p.finish();
    }
    outcome
}

async fn run_inner(
    plan: RunPlan,
    recorder: Recorder,
    stop: StopSignal,
    progress: Option<Arc<Progress>>,
    setup_started: Instant,
) -> EngineOutcome {
    let fail = |r: AbortReason| EngineOutcome::before_load(r, setup_started.elapsed());
    let scenario = plan.scenario.clone();
    let layout = Layout::new(
        &scenario,
        plan.share_index,
        plan.share_count,
        plan.setup_vars.is_some(),
    );
    let wanted: Vec<Option<u64>> = layout
        .vus
        .iter()
        .map(|v| (v.group != NO_GROUP).then_some(v.global))
        .collect();
    if let Some(p) = &progress {
        p.set_phase("set-up");
    }

    // Everything before the load races the stop signal.
    let before_load = async {
        let csv_creds = match &scenario.tokens {
            TokenSource::Csv { path } => {
                Some(tokens::from_csv(path, &wanted).map_err(AbortReason::Scenario)?)
            }
            TokenSource::Driver { .. } => None,
        };
        let http = http_client(plan.local_addr, &plan.handshake);
        check_target(
            &http,
            &plan.target,
            &plan.profile.target.socket_path,
            &plan.handshake,
            plan.local_addr,
        )
        .await
        .map_err(AbortReason::TargetUnreachable)?;
        let saved = match &plan.setup_vars {
            Some(v) => v.clone(),
            None => setup(&plan, &http).await?,
        };
        let mut run_vars = vars::expand_scenario_vars(&scenario, &run_builtins(&plan));
        run_vars.extend(saved.clone());
        let run_vars = Arc::new(run_vars);
        let creds = match (csv_creds, &scenario.tokens) {
            (Some(c), _) => c,
            (
                None,
                TokenSource::Driver {
                    join_room,
                    role,
                    ttl,
                },
            ) => {
                let ttl = ttl.map_or_else(
                    || {
                        scenario
                            .max_duration
                            .as_secs()
                            .saturating_add(600)
                            .max(3600)
                    },
                    |d| d.as_secs(),
                );
                tokens::from_driver(
                    tokens::DriverTokens {
                        identity: plan.identity.clone(),
                        http: http.clone(),
                        target: plan.target.clone(),
                        profile: plan.profile.clone(),
                        base_vars: Arc::new(plan.base_vars.clone()),
                        run_vars: run_vars.clone(),
                        run_id: plan.run_id.clone(),
                        join_room: join_room.clone(),
                        role: role.clone(),
                        ttl_secs: ttl,
                    },
                    wanted.clone(),
                )
                .await
                .map_err(|e| AbortReason::SetupFailed(format!("tokens: {e}")))?
            }
            (None, TokenSource::Csv { .. }) => unreachable!("CSV tokens were read above"),
        };
        Ok::<_, AbortReason>((http, saved, run_vars, creds))
    };
    let (http, saved, run_vars, creds) = tokio::select! {
        biased;
        () = stop.stopped() => return fail(AbortReason::Interrupted),
        r = before_load => match r {
            Ok(x) => x,
            Err(reason) => return fail(reason),
        },
    };
    let setup_duration = setup_started.elapsed();
    if let Some(at) = plan.start_at {
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => tokio::select! {
                biased;
                () = stop.stopped() => return fail(AbortReason::Interrupted),
                () = tokio::time::sleep(wait) => {}
            },
            Err(late) => eprintln!(
                "loadgen: --start-at passed {:.1} s before the set-up ended; the load starts now",
                late.duration().as_secs_f64()
            ),
        }
    }

    let interest = scenario
        .groups
        .iter()
        .map(|g| Interest::of(&g.steps, &run_vars))
        .collect();
    let ctx = Arc::new(RunCtx {
        scenario: scenario.clone(),
        target: plan.target.clone(),
        socket_path: plan.profile.target.socket_path.clone(),
        handshake: plan.handshake.clone(),
        profile: plan.profile.clone(),
        base_vars: Arc::new(plan.base_vars.clone()),
        run_vars,
        run_id: plan.run_id.clone(),
        shard: plan.shard,
        seed: plan.seed,
        local_addr: plan.local_addr,
        http,
        recorder: recorder.clone(),
        creds,
        interest,
        // Each process starts at its first VU's number, so that the
        // workers and shards of a run do not all begin with row 0.
        feeder_next: {
            let first = wanted.iter().flatten().min().copied().unwrap_or(0);
            scenario
                .feeders
                .iter()
                .map(|_| AtomicU64::new(first))
                .collect()
        },
        group_tags: scenario
            .groups
            .iter()
            .map(|g| {
                g.tags
                    .iter()
                    .map(|(k, v)| formats::names::tag_prefix(k, v))
                    .collect()
            })
            .collect(),
        mismatches: Mutex::new(Vec::new()),
        event_metrics: crate::scenario::EventMetrics::of(&scenario.groups),
        slots: (0..layout.closed_local())
            .map(|_| Slot::default())
            .collect(),
        want: AtomicU32::new(0),
        arrival_over: scenario.phases.iter().map(|_| Flag::default()).collect(),
        halt: Flag::default(),
        abort: Mutex::new(None),
        suspect: Notify::new(),
    });

    let mut helpers = JoinSet::new();
    {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        helpers.spawn(async move {
            tokio::select! {
                () = stop.stopped() => ctx.halt(Some(AbortReason::Interrupted)),
                () = ctx.halt.wait() => {}
            }
        });
    }
    helpers.spawn(monitor(ctx.clone()));
    if let Some(p) = &progress {
        let (ctx, p) = (ctx.clone(), p.clone());
        helpers.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => p.update(&ctx.recorder.snapshot()),
                    () = ctx.halt.wait() => return,
                }
            }
        });
    }

    let load_started_at = SystemTime::now();
    let t0 = Instant::now();
    let mut sched = Scheduler::new(ctx.clone(), layout, t0 + scenario.max_duration, progress);
    let mut hit_max_duration = false;
    let ended = match sched.phases(t0).await {
        Ok(()) => {
            sched.end_load();
            sched.drain().await
        }
        Err(e) => Err(e),
    };
    match ended {
        Ok(()) => {}
        Err(Interrupt::Deadline) => {
            hit_max_duration = true;
            ctx.halt(None);
            sched.drain_hard().await;
        }
        Err(Interrupt::Halt) => sched.drain_hard().await,
    }
    let load_duration = t0.elapsed();
    // Stop the helpers (forwarder, monitor, progress).
    ctx.halt.set();
    helpers.abort_all();
    while helpers.join_next().await.is_some() {}

    let abort_reason = ctx.abort_reason();
    EngineOutcome {
        complete: abort_reason.is_none(),
        abort_reason,
        hit_max_duration,
        vus_started: sched.started,
        vus_finished: sched.finished,
        setup_duration,
        load_duration,
        load_started_at: Some(load_started_at),
        setup_vars: saved,
        mismatches: std::mem::take(&mut *ctx.mismatches.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// Probes the target whenever a VU suspects it is gone; three failed
/// probes in a row stop the run.
async fn monitor(ctx: Arc<RunCtx>) {
    // A fresh connection per probe: a pooled one may outlive the target.
    let probe_client = ctx
        .handshake
        .http_builder(reqwest::Client::builder())
        .pool_max_idle_per_host(0)
        .local_address(ctx.local_addr)
        .build()
        .unwrap_or_default();
    loop {
        tokio::select! {
            () = ctx.suspect.notified() => {}
            () = ctx.halt.wait() => return,
        }
        let mut failures = 0;
        loop {
            let err = match probe(
                &probe_client,
                &ctx.target,
                &ctx.socket_path,
                &ctx.handshake,
                ctx.local_addr,
                MONITOR_PROBE_TIMEOUT,
            )
            .await
            {
                Ok(()) => break,
                Err(e) => e.to_string(),
            };
            failures += 1;
            if failures >= 3 {
                ctx.halt(Some(AbortReason::TargetLost(format!(
                    "{} stopped answering: {err}",
                    ctx.target
                ))));
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
                () = ctx.halt.wait() => return,
            }
        }
        // Coalesce a burst of suspicions into one probe.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = ctx.halt.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Group, GroupSize, Phase};

    /// A context with one group and no target, for size checks.
    fn ctx() -> Arc<RunCtx> {
        let scenario = Scenario {
            name: "t".into(),
            description: String::new(),
            source_hash: String::new(),
            vars: Default::default(),
            overrides: Default::default(),
            setup: vec![],
            tokens: TokenSource::Driver {
                join_room: None,
                role: "participant".into(),
                ttl: None,
            },
            feeders: vec![],
            groups: vec![Group {
                name: "g".into(),
                size: GroupSize::Weight(1),
                steps: vec![],
                tags: Default::default(),
            }],
            phases: vec![Phase::Hold {
                duration: Duration::from_secs(1),
            }],
            max_duration: Duration::from_secs(1),
            thresholds: vec![],
            max_vus: None,
            keep_mismatches: 0,
        };
        let profile = Profile::reference();
        Arc::new(RunCtx {
            scenario: Arc::new(scenario),
            target: "http://127.0.0.1:9".into(),
            socket_path: "/socket.io/".into(),
            handshake: Arc::default(),
            profile: Arc::new(profile),
            base_vars: Arc::default(),
            run_vars: Arc::default(),
            run_id: "r".into(),
            shard: 0,
            seed: 0,
            local_addr: None,
            http: reqwest::Client::new(),
            recorder: Recorder::new(),
            creds: vec![tokens::Cred::default()],
            interest: vec![Interest::Names(vec![])],
            feeder_next: Box::new([]),
            group_tags: vec![Arc::new([])],
            mismatches: Mutex::new(Vec::new()),
            event_metrics: Default::default(),
            slots: vec![Slot::default()].into(),
            want: AtomicU32::new(1),
            arrival_over: vec![Flag::default()].into(),
            halt: Flag::default(),
            abort: Mutex::new(None),
            suspect: Notify::new(),
        })
    }

    /// What a VU task holds for its whole life besides its socket: the
    /// step machinery is boxed and freed when the steps end, so an idle VU
    /// keeps only this future (the socket is ~7 KiB on its own).
    #[test]
    fn vu_task_stays_small() {
        let spec = vu::VuSpec {
            local: 0,
            global: 0,
            group: 0,
            retire: Retire::Slot {
                k: 0,
                generation: 1,
            },
            origin: None,
        };
        let fut = vu::run(ctx(), spec);
        let size = size_of_val(&fut);
        eprintln!("VU task future: {size} bytes");
        assert!(size <= 1536, "the VU future grew to {size} bytes");
    }

    #[test]
    fn interest_names_the_wait_for_events() {
        use crate::scenario::Step;
        let wait = |event: &str| Step::WaitFor {
            event: event.into(),
            matching: None,
            timeout: Duration::from_secs(1),
            save: Default::default(),
            metric: None,
        };
        let mut vars = Vars::new();
        vars.insert("app".into(), json!("lg"));
        let steps = vec![
            wait("a:x"),
            Step::Loop {
                count: "2".into(),
                steps: vec![wait("${app}:tick")],
            },
        ];
        let i = Interest::of(&steps, &vars);
        assert!(i.wants("a:x") && i.wants("lg:tick") && !i.wants("b"));
        let i = Interest::of(&[wait("${vu}:x")], &vars);
        assert!(i.wants("anything"), "a per-VU name keeps everything");
        assert!(!Interest::of(&[], &vars).any());
    }
}
