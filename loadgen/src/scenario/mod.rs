//! The scenario format: what virtual users do, how many run when, and what
//! the run must achieve. Scenario files are TOML (1.1: multi-line inline
//! tables are allowed); the format is documented in `scenarios/README.md`.
//!
//! [`parse`] turns a file's text into a [`Scenario`], checking everything
//! that can be checked without a target; every error points at the line and
//! column of the offending value (`FILE:LINE:COL: message`).
//! [`Scenario::with_overrides`] applies `--clients` and `--duration`.

mod duration;
pub mod feeder;
mod metric_names;
mod overrides;
mod parse;
mod template;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use duration::{format_duration, parse_duration};
pub use metric_names::{EventMetrics, KnownMetrics};
pub use template::{expand_json, template_vars};

/// Variables every template may use without declaring them.
pub const BUILTIN_VARS: &[&str] = &["vu", "runId", "nowMs", "shard"];

/// Time added to the sum of the phases to get the default `max_duration`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Default `timeout` of `emit_ack` steps.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `timeout` of `wait_for` steps.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// FNV-1a 64 of the file bytes, 16 lowercase hex digits.
    pub source_hash: String,
    pub vars: BTreeMap<String, Value>,
    /// `--var K=V` values: they win over `vars`, the environment and
    /// `${K:-default}` everywhere (scenario vars, set-up, steps).
    #[serde(default)]
    pub overrides: BTreeMap<String, Value>,
    /// Driver actions run once per run before load (per shard).
    pub setup: Vec<SetupAction>,
    pub tokens: TokenSource,
    /// Rows of variables for the virtual users (`[[feeders]]`).
    #[serde(default)]
    pub feeders: Vec<feeder::Feeder>,
    pub groups: Vec<Group>,
    pub phases: Vec<Phase>,
    /// Hard bound of the run (default: sum of phases + 30 s grace);
    /// `--duration` overrides.
    pub max_duration: Duration,
    /// Raw expressions, parsed by `threshold.rs`.
    pub thresholds: Vec<String>,
    /// Most VUs of the `arrival` phases running at once (`max_vus`); an
    /// arrival due while that many run is dropped and counted
    /// (`arrivals_dropped`). `None`: no cap.
    #[serde(default)]
    pub max_vus: Option<u32>,
    /// How many failed `expect` / `matching` checks the report keeps with
    /// what arrived (`keep_mismatches`).
    #[serde(default = "default_keep_mismatches")]
    pub keep_mismatches: u32,
}

/// Default `keep_mismatches`.
pub const DEFAULT_KEEP_MISMATCHES: u32 = 10;
/// Largest `keep_mismatches`.
pub const MAX_KEEP_MISMATCHES: u32 = 1000;

fn default_keep_mismatches() -> u32 {
    DEFAULT_KEEP_MISMATCHES
}

/// One driver action of the set-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupAction {
    /// Action name in the target profile.
    pub action: String,
    /// Variables for the action's templates; strings are templates.
    pub with: BTreeMap<String, Value>,
    /// Variables extracted by the action that the run keeps (visible to
    /// later set-up actions and to every virtual user).
    pub save: Vec<String>,
}

/// Where virtual users get their access tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TokenSource {
    /// One user per virtual user, created through the profile
    /// (`create_user`, `mint_token`, and `add_participant` when `join_room`
    /// is set).
    Driver {
        /// Room to join (template, e.g. `"${roomId}"`): the user is also
        /// added as a participant with `role`.
        join_room: Option<String>,
        role: String,
        /// Lifetime of the minted or signed access tokens (`ttl`; default
        /// max(1 h, `max_duration` + 10 min)).
        #[serde(default)]
        ttl: Option<Duration>,
    },
    /// Tokens read from a CSV file, columns `token[,userId[,refreshToken]]`,
    /// an optional header row naming them.
    Csv {
        /// Resolved against the scenario file's folder at parse time.
        path: PathBuf,
    },
}

/// A kind of virtual user: how many and what they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub size: GroupSize,
    pub steps: Vec<Step>,
    /// `tags = { KEY = "VALUE" }`: every metric of the group's VUs is also
    /// recorded as `[KEY=VALUE]NAME`, per tag.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Most tags of one group.
pub const MAX_TAGS: usize = 8;
/// Longest tag key or value, in bytes.
pub const MAX_TAG_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupSize {
    /// A fixed number of virtual users (e.g. 1 host).
    Count(u32),
    /// A share of the clients left after the `Count` groups.
    Weight(u32),
}

/// One stretch of the load schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Concurrent virtual users, linear from `from` to `to`.
    Ramp { from: u32, to: u32, over: Duration },
    /// Keep the current count.
    Hold { duration: Duration },
    /// Open model: new virtual users at intended times; latency from the
    /// intended start. The rate goes linearly from `from_per_sec` to
    /// `rate_per_sec` over the phase (equal: a constant rate).
    Arrival {
        rate_per_sec: f64,
        from_per_sec: f64,
        duration: Duration,
    },
    /// To 0: virtual users stop after their current step.
    RampDown { over: Duration },
}

impl Phase {
    /// How many VUs an `Arrival` phase starts (0 for other phases): one at
    /// the phase start, then one each time the integral of the rate
    /// passes a whole number, while before the phase end.
    pub fn arrivals(&self) -> u64 {
        let Phase::Arrival {
            rate_per_sec,
            from_per_sec,
            duration,
        } = self
        else {
            return 0;
        };
        let n = (rate_per_sec + from_per_sec) / 2.0 * duration.as_secs_f64();
        if n.is_finite() && n > 0.0 {
            // Float noise absorbed: 2.5/s over 2 s is 5 arrivals, not 6.
            (n - 1e-9).ceil().max(0.0) as u64
        } else {
            0
        }
    }

    /// When arrival `j` (from 0) of an `Arrival` phase is due, from the
    /// phase start: where the integral of the rate reaches `j`.
    pub fn arrival_offset(&self, j: u64) -> Duration {
        let Phase::Arrival {
            rate_per_sec,
            from_per_sec,
            duration,
        } = self
        else {
            return Duration::ZERO;
        };
        let (a, b, t) = (*from_per_sec, *rate_per_sec, duration.as_secs_f64());
        let j = j as f64;
        // a·x + (b−a)·x²/(2t) = j, solved in the form that stays exact
        // when b = a (no division by b − a) and for a falling rate.
        let k = (b - a) / (2.0 * t);
        let disc = (a * a + 4.0 * k * j).max(0.0);
        let denom = a + disc.sqrt();
        let x = if denom > 0.0 { 2.0 * j / denom } else { 0.0 };
        Duration::from_secs_f64(x.clamp(0.0, t))
    }

    /// How long the phase lasts.
    pub fn duration(&self) -> Duration {
        match self {
            Phase::Ramp { over, .. } | Phase::RampDown { over } => *over,
            Phase::Hold { duration } | Phase::Arrival { duration, .. } => *duration,
        }
    }
}

/// One thing a virtual user does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    Connect {
        /// Template.
        namespace: String,
        transport: Transport,
    },
    /// `room:subscribe` with ack; the first one measures
    /// `connect_to_subscribed`. `room` is a template.
    Subscribe {
        room: String,
    },
    Emit {
        event: String,
        data: Value,
        /// The name it is counted under (`sent.<metric>`) instead of its
        /// event's.
        metric: Option<String>,
    },
    EmitAck {
        event: String,
        data: Value,
        /// Subset match against the ack's first argument.
        expect: Option<Value>,
        timeout: Duration,
        /// Variable → JSON pointer into the ack.
        save: BTreeMap<String, String>,
        /// Histogram name instead of `ack.<event>`.
        metric: Option<String>,
    },
    WaitFor {
        event: String,
        /// Subset match against the event's first argument.
        matching: Option<Value>,
        timeout: Duration,
        /// Variable → JSON pointer into the event's first argument.
        save: BTreeMap<String, String>,
        /// The name events matching `event` are recorded under
        /// (`received.<metric>`, `fanout.<metric>`) instead of their own.
        metric: Option<String>,
    },
    Think(Think),
    Loop {
        /// Template evaluating to a number (a literal count is kept as its
        /// decimal text).
        count: String,
        steps: Vec<Step>,
    },
    Choice {
        options: Vec<(u32, Vec<Step>)>,
    },
    Disconnect,
    /// Drop the connection and reconnect; measures `reconnect`.
    Reconnect {
        resubscribe: bool,
    },
    Http {
        action: String,
        with: BTreeMap<String, Value>,
        save: Vec<String>,
        /// Add `sentAtUs` to the request's `data` for fan-out latency.
        stamp: bool,
        /// With `stamp`: the name its `with.event` is recorded under by
        /// the receivers (`received.<metric>`, `fanout.<metric>`).
        metric: Option<String>,
    },
    /// Per-VU variables; values are templates.
    Set {
        vars: BTreeMap<String, Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Think {
    Fixed(Duration),
    Uniform(Duration, Duration),
    Exponential { mean: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    WebSocket,
    Polling,
}

/// One message about a scenario file, at a position in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the message is about the file as a whole.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

/// Why a scenario cannot be used: every error found, in file order, one
/// per line as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// Never empty.
    pub errors: Vec<Diagnostic>,
}

impl ScenarioError {
    pub(crate) fn single(file: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            errors: vec![Diagnostic {
                file: file.to_owned(),
                line: 0,
                col: 0,
                message: message.into(),
            }],
        }
    }

    /// The first error.
    pub fn first(&self) -> &Diagnostic {
        &self.errors[0]
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// A scenario and the warnings found while checking it (things that may
/// be fine on another target, such as an action the reference profile does
/// not have). Each warning's message starts with `warning: `.
#[derive(Debug, Clone)]
pub struct Checked {
    pub scenario: Scenario,
    pub warnings: Vec<Diagnostic>,
}

/// `--var K=V` pairs, in command-line order (a later K wins).
pub type VarOverrides = [(String, String)];

/// Parses and validates a scenario; `path` names the file in messages and
/// anchors relative paths (the CSV token file).
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    parse_checked(text, path, &[]).map(|c| c.scenario)
}

/// [`parse`] with `--var` values, also returning the warnings. Each K
/// must be a variable the scenario reads (a `[vars]` name or a
/// `${K}` / `${K:-default}` anywhere) and not one the run assigns itself
/// (a built-in, a token variable, a set-up or step save); V is taken as
/// JSON when it parses as JSON (`5`, `true`, `{"a":1}`), else as text, the
/// rule of a `:-default`.
pub fn parse_checked(
    text: &str,
    path: &Path,
    vars: &VarOverrides,
) -> Result<Checked, ScenarioError> {
    parse::parse(text, path, vars)
}

/// Reads, parses and validates a scenario file with `--var` values.
/// Warnings go to stderr.
pub fn load(path: &Path, vars: &VarOverrides) -> Result<Scenario, ScenarioError> {
    let checked = load_checked(path, vars)?;
    for w in &checked.warnings {
        eprintln!("{w}");
    }
    Ok(checked.scenario)
}

/// [`load`] without printing: the warnings are returned.
pub fn load_checked(path: &Path, vars: &VarOverrides) -> Result<Checked, ScenarioError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ScenarioError::single(&path.display().to_string(), format!("cannot read: {e}"))
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ScenarioError::single(&path.display().to_string(), "not UTF-8 text"))?;
    parse_checked(&text, path, vars)
}

/// FNV-1a, 64 bits, as 16 lowercase hex digits.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:016x}")
}

impl Scenario {
    /// Applies `--clients N` and `--duration D`.
    ///
    /// `--clients`: every `Ramp` level and `Arrival` rate is scaled by
    /// N / [`peak_clients`](Self::peak_clients), so the peak becomes N; the
    /// `Count` groups keep their sizes and the `Weight` groups share the
    /// rest. Check [`check_clients`](Self::check_clients) first: `Count`
    /// groups must leave room.
    ///
    /// `--duration`: `max_duration` becomes D, and the phases are fitted
    /// into D: the `Hold` phases are stretched or cut (in proportion to
    /// their lengths) so the phases add up to D; when the other phases
    /// alone are longer than D, the holds go and the rest are shortened in
    /// proportion.
    pub fn with_overrides(self, clients: Option<u32>, duration: Option<Duration>) -> Scenario {
        overrides::apply(self, clients, duration)
    }

    /// [`with_overrides`](Self::with_overrides) after
    /// [`check_clients`](Self::check_clients).
    pub fn try_with_overrides(
        self,
        clients: Option<u32>,
        duration: Option<Duration>,
    ) -> Result<Scenario, String> {
        if let Some(n) = clients {
            self.check_clients(n)?;
        }
        if duration == Some(Duration::ZERO) {
            return Err("--duration must be more than 0".into());
        }
        Ok(self.with_overrides(clients, duration))
    }

    /// Whether the scenario can run with `clients` at its peak: at least
    /// one, the `Count` groups fit, and the `Weight` groups get at least
    /// one client.
    pub fn check_clients(&self, clients: u32) -> Result<(), String> {
        overrides::check_clients(self, clients)
    }

    /// The most virtual users alive at once: the highest `Ramp` level, or
    /// the level plus every arrival of an `Arrival` phase, at most
    /// `max_vus` of them (an upper bound: arrivals that finish early free
    /// their slot).
    pub fn peak_clients(&self) -> u32 {
        overrides::peak_clients(&self.phases, self.max_vus)
    }

    /// Sum of the `Count` groups' sizes.
    pub fn fixed_clients(&self) -> u32 {
        self.groups
            .iter()
            .map(|g| match g.size {
                GroupSize::Count(n) => n,
                GroupSize::Weight(_) => 0,
            })
            .sum()
    }

    /// The metric names the scenario can record (for thresholds).
    pub fn known_metrics(&self) -> KnownMetrics {
        KnownMetrics::of(&self.groups)
    }

    /// Sum of the phases' durations.
    pub fn phases_duration(&self) -> Duration {
        self.phases.iter().map(Phase::duration).sum()
    }

    /// How many of `clients` virtual users each group gets: `Count` groups
    /// their count (in file order, as far as clients go), the rest split
    /// among `Weight` groups in proportion to their weights (largest
    /// remainders first, ties to the earlier group).
    pub fn group_sizes(&self, clients: u32) -> Vec<u32> {
        overrides::group_sizes(&self.groups, clients)
    }
}
