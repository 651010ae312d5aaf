//! TOML text → [`Scenario`], keeping the position of every value so that
//! each error names its line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::parse_duration;
use super::template::template_vars;
use super::validate;
use super::{
    BUILTIN_VARS, Checked, DEFAULT_ACK_TIMEOUT, DEFAULT_GRACE, DEFAULT_WAIT_TIMEOUT, Diagnostic,
    Group, GroupSize, Phase, Scenario, ScenarioError, SetupAction, Step, Think, TokenSource,
    Transport, fnv1a_hex,
};

type V<'i> = Spanned<DeValue<'i>>;

/// Step kinds, each with the keys its table may have (the kind key first).
pub(super) const STEP_KINDS: &[(&str, &[&str])] = &[
    ("connect", &["connect", "transport"]),
    ("subscribe", &["subscribe"]),
    ("emit", &["emit", "data"]),
    (
        "emit_ack",
        &["emit_ack", "data", "expect", "timeout", "save", "metric"],
    ),
    ("wait_for", &["wait_for", "matching", "timeout", "save"]),
    ("think", &["think"]),
    ("loop", &["loop", "steps"]),
    ("choice", &["choice"]),
    ("disconnect", &["disconnect"]),
    ("reconnect", &["reconnect", "resubscribe"]),
    ("http", &["http", "with", "save", "stamp"]),
    ("set", &["set"]),
];

/// Phase kinds, each with the keys its table may have.
const PHASE_KINDS: &[(&str, &[&str])] = &[
    ("ramp", &["ramp", "from", "over"]),
    ("hold", &["hold"]),
    ("arrival", &["arrival", "over"]),
    ("ramp_down", &["ramp_down"]),
];

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "max_duration",
    "thresholds",
    "vars",
    "setup",
    "tokens",
    "groups",
    "phases",
];

/// Socket.IO's own event names: never sent or awaited as events.
const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The largest literal loop count.
pub(super) const MAX_LOOP: u64 = 1_000_000;

/// Where a template is evaluated: decides which variables exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// A scenario var: expanded once per run with `runId`, `nowMs`,
    /// `shard` and the environment.
    Vars,
    /// The i-th set-up action: scenario vars, earlier set-up saves.
    Setup(usize),
    /// The token source: scenario vars, every set-up save.
    Tokens,
    /// A step of the i-th group: also the token variables and everything
    /// the group's steps save.
    Group(usize),
}

/// A placeholder without a default, to resolve once everything is parsed.
#[derive(Debug)]
pub(super) struct VarUse {
    pub span: Range<usize>,
    pub name: String,
    pub scope: Scope,
}

/// A driver action named by the scenario, for the checks against the
/// reference profile.
#[derive(Debug)]
pub(super) struct ActionUse {
    pub span: Range<usize>,
    pub action: String,
    pub with_keys: BTreeSet<String>,
    pub save: Vec<(String, Range<usize>)>,
    pub scope: Scope,
}

pub(super) struct Ctx<'t> {
    text: &'t str,
    file: String,
    line_starts: Vec<usize>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub uses: Vec<VarUse>,
    pub actions: Vec<ActionUse>,
    scope: Scope,
    /// Scenario `[vars]` names.
    pub vars: BTreeSet<String>,
    /// Per set-up action, the names it saves.
    pub setup_saves: Vec<Vec<String>>,
    /// Per group, every name its steps save or set.
    pub group_saves: Vec<BTreeSet<String>>,
    /// Names the token source provides.
    pub token_vars: BTreeSet<String>,
}

impl<'t> Ctx<'t> {
    fn new(text: &'t str, file: String) -> Ctx<'t> {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Ctx {
            text,
            file,
            line_starts,
            errors: Vec::new(),
            warnings: Vec::new(),
            uses: Vec::new(),
            actions: Vec::new(),
            scope: Scope::Tokens,
            vars: BTreeSet::new(),
            setup_saves: Vec::new(),
            group_saves: Vec::new(),
            token_vars: BTreeSet::new(),
        }
    }

    fn diag(&self, offset: usize, message: String) -> Diagnostic {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start)
            + 1;
        Diagnostic {
            file: self.file.clone(),
            line: line + 1,
            col,
            message,
        }
    }

    pub(super) fn err(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diag(span.start, message.into());
        self.errors.push(d);
    }

    pub(super) fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diag(span.start, format!("warning: {}", message.into()));
        self.warnings.push(d);
    }

    // ---- typed access -------------------------------------------------

    fn check_keys(&mut self, t: &DeTable<'_>, allowed: &[&str], what: &str) {
        for k in t.keys() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let hint = did_you_mean(k.get_ref(), allowed);
                self.err(
                    &k.span(),
                    format!(
                        "unknown key `{}` in {what}{hint} (allowed: {})",
                        k.get_ref(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn string(&mut self, v: &V<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be a string, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string that is a template evaluated in the current scope.
    fn template(&mut self, v: &V<'_>, what: &str) -> Option<String> {
        let s = self.string(v, what)?;
        self.check_template(&s, &v.span());
        Some(s)
    }

    fn check_template(&mut self, s: &str, span: &Range<usize>) {
        match template_vars(s) {
            Ok(ps) => {
                for p in ps {
                    if !p.has_default {
                        self.uses.push(VarUse {
                            span: span.clone(),
                            name: p.name,
                            scope: self.scope,
                        });
                    }
                }
            }
            Err(e) => self.err(span, format!("bad template: {e}")),
        }
    }

    fn duration(&mut self, v: &V<'_>, what: &str) -> Option<Duration> {
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err(&v.span(), format!("{what}: {e}"));
                    None
                }
            },
            DeValue::Integer(_) | DeValue::Float(_) => {
                self.err(
                    &v.span(),
                    format!("{what}: a duration is a string with a unit, e.g. \"5s\" or \"250ms\""),
                );
                None
            }
            other => {
                self.err(
                    &v.span(),
                    format!(
                        "{what} must be a duration string like \"5s\", not {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn positive_duration(&mut self, v: &V<'_>, what: &str) -> Option<Duration> {
        let d = self.duration(v, what)?;
        if d.is_zero() {
            self.err(&v.span(), format!("{what} must be longer than 0s"));
            return None;
        }
        Some(d)
    }

    fn integer(&mut self, v: &V<'_>, what: &str) -> Option<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.err(&v.span(), format!("{what}: integer out of range"));
                    None
                }
            },
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be an integer, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn u32_min(&mut self, v: &V<'_>, what: &str, min: u32) -> Option<u32> {
        let n = self.integer(v, what)?;
        if n < i128::from(min) || n > i128::from(u32::MAX) {
            self.err(
                &v.span(),
                format!("{what} must be between {min} and {}, not {n}", u32::MAX),
            );
            return None;
        }
        Some(n as u32)
    }

    fn number(&mut self, v: &V<'_>, what: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(_) => self.integer(v, what).map(|n| n as f64),
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    self.err(&v.span(), format!("{what}: bad number {}", f.as_str()));
                    None
                }
            },
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be a number, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &V<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be true or false, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, v: &'a V<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be a table, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn array<'a, 'i>(&mut self, v: &'a V<'i>, what: &str) -> Option<&'a [V<'i>]> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            other => {
                self.err(
                    &v.span(),
                    format!("{what} must be an array, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A variable name as saved or set: usable in `${...}`, not a built-in.
    fn var_name(&mut self, name: &str, span: &Range<usize>, what: &str) -> bool {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.err(
                span,
                format!("{what}: variable name `{name}` must be ASCII letters, digits and _"),
            );
            return false;
        }
        if BUILTIN_VARS.contains(&name) {
            self.err(
                span,
                format!("{what}: `{name}` is a built-in variable and cannot be assigned"),
            );
            return false;
        }
        true
    }

    /// A TOML value as JSON; with `templates`, every string is checked as
    /// a template in the current scope.
    fn json(&mut self, v: &V<'_>, templates: bool) -> Value {
        match v.get_ref() {
            DeValue::String(s) => {
                if templates {
                    self.check_template(s, &v.span());
                }
                Value::String(s.to_string())
            }
            DeValue::Integer(_) => match self.integer(v, "value") {
                Some(n) => {
                    if let Ok(i) = i64::try_from(n) {
                        Value::from(i)
                    } else if let Ok(u) = u64::try_from(n) {
                        Value::from(u)
                    } else {
                        self.err(&v.span(), "integer out of the JSON range");
                        Value::Null
                    }
                }
                None => Value::Null,
            },
            DeValue::Float(_) => match self.number(v, "value") {
                Some(x) if x.is_finite() => Value::from(x),
                Some(_) => {
                    self.err(&v.span(), "inf and nan cannot be sent as JSON");
                    Value::Null
                }
                None => Value::Null,
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(a) => Value::Array(a.iter().map(|x| self.json(x, templates)).collect()),
            DeValue::Table(t) => {
                let mut m = serde_json::Map::new();
                for (k, x) in t.iter() {
                    m.insert(k.get_ref().to_string(), self.json(x, templates));
                }
                Value::Object(m)
            }
        }
    }

    /// A table of variable → JSON value (`with`, `set`).
    fn json_table(&mut self, v: &V<'_>, what: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        if let Some(t) = self.table(v, what) {
            for (k, x) in t.iter() {
                let val = self.json(x, true);
                out.insert(k.get_ref().to_string(), val);
            }
        }
        out
    }

    /// `save = { var = "/json/pointer" }`.
    fn pointer_map(&mut self, v: &V<'_>, what: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(t) = self.table(v, what) else {
            return out;
        };
        for (k, x) in t.iter() {
            let name = k.get_ref().to_string();
            if !self.var_name(&name, &k.span(), what) {
                continue;
            }
            if let Some(p) = self.string(x, &format!("{what}.{name}")) {
                if !(p.is_empty() || p.starts_with('/')) {
                    self.err(
                        &x.span(),
                        format!("{what}.{name}: a JSON pointer is \"\" or starts with '/', e.g. \"/rank\""),
                    );
                }
                out.insert(name, p);
            }
        }
        out
    }

    /// `save = ["var", ...]`.
    fn name_list(&mut self, v: &V<'_>, what: &str) -> Vec<(String, Range<usize>)> {
        let mut out = Vec::new();
        if let Some(items) = self.array(v, what) {
            for x in items {
                if let Some(s) = self.string(x, what)
                    && self.var_name(&s, &x.span(), what)
                {
                    out.push((s, x.span()));
                }
            }
        }
        out
    }

    fn event_name(&mut self, v: &V<'_>, what: &str) -> Option<String> {
        let e = self.string(v, what)?;
        if e.is_empty() {
            self.err(&v.span(), format!("{what}: empty event name"));
        } else if e.contains("${") {
            self.check_template(&e, &v.span());
        } else if RESERVED_EVENTS.contains(&e.as_str()) {
            self.err(
                &v.span(),
                format!("{what}: `{e}` is Socket.IO's own event, not a protocol event"),
            );
        }
        Some(e)
    }
}

/// `` (did you mean `x`?)`` when a near name exists.
pub(super) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let best = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2 || (d <= 3 && word.len() > 6) => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The span of the whole document when a required key is missing.
const TOP: Range<usize> = 0..0;

pub(super) fn parse(text: &str, path: &Path) -> Result<Checked, ScenarioError> {
    let file = path.display().to_string();
    let mut ctx = Ctx::new(text, file.clone());
    let doc = match DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_owned();
            ctx.err(&span, format!("invalid TOML: {msg}"));
            return Err(ScenarioError { errors: ctx.errors });
        }
    };
    let doc = doc.get_ref();
    ctx.check_keys(doc, TOP_KEYS, "the scenario");

    let name = match doc.get("name") {
        Some(v) => ctx.string(v, "name").unwrap_or_default(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into()),
    };
    if name.trim().is_empty() {
        let span = doc.get("name").map(|v| v.span()).unwrap_or(TOP);
        ctx.err(&span, "name must not be empty");
    }
    let description = doc
        .get("description")
        .and_then(|v| ctx.string(v, "description"))
        .unwrap_or_default();

    // [vars]
    let mut vars = BTreeMap::new();
    if let Some(v) = doc.get("vars")
        && let Some(t) = ctx.table(v, "vars")
    {
        for (k, x) in t.iter() {
            let name = k.get_ref().to_string();
            if !ctx.var_name(&name, &k.span(), "vars") {
                continue;
            }
            ctx.scope = Scope::Vars;
            let val = ctx.json(x, true);
            ctx.vars.insert(name.clone());
            vars.insert(name, val);
        }
    }

    // [[setup]]
    let mut setup = Vec::new();
    if let Some(v) = doc.get("setup")
        && let Some(items) = ctx.array(v, "setup")
    {
        for (i, item) in items.iter().enumerate() {
            ctx.scope = Scope::Setup(i);
            let what = format!("setup[{i}]");
            let Some(t) = ctx.table(item, &what) else {
                ctx.setup_saves.push(Vec::new());
                continue;
            };
            ctx.check_keys(t, &["action", "with", "save"], &what);
            let action = match t.get("action") {
                Some(a) => ctx.string(a, &format!("{what}.action")),
                None => {
                    ctx.err(&item.span(), format!("{what}: missing `action`"));
                    None
                }
            };
            let with = t
                .get("with")
                .map(|w| ctx.json_table(w, &format!("{what}.with")))
                .unwrap_or_default();
            let save = t
                .get("save")
                .map(|s| ctx.name_list(s, &format!("{what}.save")))
                .unwrap_or_default();
            ctx.setup_saves
                .push(save.iter().map(|(n, _)| n.clone()).collect());
            if let Some(action) = action {
                ctx.actions.push(ActionUse {
                    span: t.get("action").map(|a| a.span()).unwrap_or(item.span()),
                    action: action.clone(),
                    with_keys: with.keys().cloned().collect(),
                    save: save.clone(),
                    scope: Scope::Setup(i),
                });
                setup.push(SetupAction {
                    action,
                    with,
                    save: save.into_iter().map(|(n, _)| n).collect(),
                });
            }
        }
    }

    // [tokens]
    ctx.scope = Scope::Tokens;
    let tokens = parse_tokens(&mut ctx, doc.get("tokens"), path);

    // [[groups]]
    let mut groups = Vec::new();
    let mut group_spans = Vec::new();
    match doc.get("groups") {
        None => ctx.err(
            &TOP,
            "no groups: add at least one [[groups]] with steps (see scenarios/README.md)",
        ),
        Some(v) => {
            if let Some(items) = ctx.array(v, "groups") {
                if items.is_empty() {
                    ctx.err(&v.span(), "groups is empty: add at least one group");
                }
                let mut names = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    ctx.scope = Scope::Group(i);
                    ctx.group_saves.push(BTreeSet::new());
                    if let Some(g) = parse_group(&mut ctx, item, i) {
                        if !names.insert(g.name.clone()) {
                            let span = item
                                .get_ref()
                                .get("name")
                                .map(|n| n.span())
                                .unwrap_or(item.span());
                            ctx.err(&span, format!("duplicate group name `{}`", g.name));
                        }
                        group_spans.push(item);
                        groups.push(g);
                    }
                }
            }
        }
    }

    // [[phases]]
    let mut phases = Vec::new();
    let mut phases_span = TOP;
    match doc.get("phases") {
        None => ctx.err(
            &TOP,
            "no phases: add e.g. phases = [{ ramp = 100, over = \"10s\" }, { hold = \"1m\" }]",
        ),
        Some(v) => {
            phases_span = v.span();
            if let Some(items) = ctx.array(v, "phases") {
                if items.is_empty() {
                    ctx.err(&v.span(), "phases is empty: add at least one phase");
                }
                let mut level = 0u32;
                for (i, item) in items.iter().enumerate() {
                    if let Some(p) = parse_phase(&mut ctx, item, i, level) {
                        level = match &p {
                            Phase::Ramp { to, .. } => *to,
                            Phase::RampDown { .. } => 0,
                            Phase::Hold { .. } | Phase::Arrival { .. } => level,
                        };
                        phases.push(p);
                    }
                }
            }
        }
    }
    let peak = super::overrides::peak_clients(&phases);
    if !phases.is_empty() && peak == 0 {
        ctx.err(
            &phases_span,
            "the phases never start a client: ramp to more than 0 or add an arrival phase",
        );
    }

    // Group sizes against the peak.
    let fixed: u64 = groups
        .iter()
        .map(|g| match g.size {
            GroupSize::Count(n) => u64::from(n),
            GroupSize::Weight(_) => 0,
        })
        .sum();
    let has_weight = groups
        .iter()
        .any(|g| matches!(g.size, GroupSize::Weight(_)));
    if peak > 0 && !groups.is_empty() {
        let first_count = groups
            .iter()
            .zip(&group_spans)
            .find(|(g, _)| matches!(g.size, GroupSize::Count(_)))
            .map(|(_, item)| {
                item.get_ref()
                    .get("count")
                    .map(|c| c.span())
                    .unwrap_or(item.span())
            });
        if fixed > u64::from(peak) {
            ctx.err(
                &first_count.unwrap_or(TOP),
                format!("the count groups need {fixed} clients but the phases peak at {peak}"),
            );
        } else if has_weight && fixed >= u64::from(peak) {
            ctx.err(
                &first_count.unwrap_or(TOP),
                format!(
                    "the count groups take all {peak} clients of the peak: none left for the weight groups"
                ),
            );
        }
    }

    // max_duration
    let phases_total: Duration = phases.iter().map(Phase::duration).sum();
    let max_duration = match doc.get("max_duration") {
        Some(v) => match ctx.positive_duration(v, "max_duration") {
            Some(d) => {
                if d < phases_total {
                    ctx.warn(
                        &v.span(),
                        format!(
                            "max_duration {} is shorter than the phases ({}): the run is cut before they end",
                            super::format_duration(d),
                            super::format_duration(phases_total)
                        ),
                    );
                }
                d
            }
            None => phases_total + DEFAULT_GRACE,
        },
        None => phases_total + DEFAULT_GRACE,
    };

    // thresholds
    let mut thresholds = Vec::new();
    if let Some(v) = doc.get("thresholds")
        && let Some(items) = ctx.array(v, "thresholds")
    {
        for x in items {
            if let Some(s) = ctx.string(x, "threshold") {
                if let Err(e) = validate::check_threshold(&s) {
                    ctx.err(&x.span(), format!("threshold {s:?}: {e}"));
                }
                thresholds.push(s);
            }
        }
    }

    validate::resolve(&mut ctx);

    if !ctx.errors.is_empty() {
        let mut errors = ctx.errors;
        errors.sort_by_key(|d| (d.line, d.col));
        return Err(ScenarioError { errors });
    }
    let mut warnings = ctx.warnings;
    warnings.sort_by_key(|d| (d.line, d.col));
    Ok(Checked {
        scenario: Scenario {
            name,
            description,
            source_hash: fnv1a_hex(text.as_bytes()),
            vars,
            setup,
            tokens,
            groups,
            phases,
            max_duration,
            thresholds,
        },
        warnings,
    })
}

fn parse_tokens(ctx: &mut Ctx<'_>, v: Option<&V<'_>>, path: &Path) -> TokenSource {
    let default = TokenSource::Driver {
        join_room: None,
        role: "participant".into(),
    };
    let Some(v) = v else {
        ctx.token_vars = ["token", "userId"].map(String::from).into();
        return default;
    };
    let Some(t) = ctx.table(v, "tokens") else {
        return default;
    };
    let source = match t.get("source") {
        Some(s) => ctx.string(s, "tokens.source").unwrap_or_default(),
        None if t.contains_key("path") => "csv".into(),
        None => "driver".into(),
    };
    match source.as_str() {
        "driver" => {
            ctx.check_keys(t, &["source", "join_room", "role"], "tokens (driver)");
            let join_room = t
                .get("join_room")
                .and_then(|j| ctx.template(j, "tokens.join_room"));
            let role = t
                .get("role")
                .and_then(|r| ctx.string(r, "tokens.role"))
                .unwrap_or_else(|| "participant".into());
            if role.is_empty() {
                ctx.err(
                    &t.get("role").map(|r| r.span()).unwrap_or(v.span()),
                    "tokens.role is empty",
                );
            } else if join_room.is_some() && role != "participant" && role != "moderator" {
                ctx.warn(
                    &t.get("role").map(|r| r.span()).unwrap_or(v.span()),
                    format!(
                        "tokens.role `{role}`: the reference server knows participant and moderator"
                    ),
                );
            } else if join_room.is_none() && t.contains_key("role") {
                ctx.warn(
                    &t.get("role").map(|r| r.span()).unwrap_or(v.span()),
                    "tokens.role has no effect without join_room",
                );
            }
            ctx.token_vars = ["token", "userId"].map(String::from).into();
            TokenSource::Driver { join_room, role }
        }
        "csv" => {
            ctx.check_keys(t, &["source", "path"], "tokens (csv)");
            ctx.token_vars = ["token", "userId"].map(String::from).into();
            let Some(pv) = t.get("path") else {
                ctx.err(&v.span(), "tokens: source \"csv\" needs `path`");
                return default;
            };
            let Some(p) = ctx.string(pv, "tokens.path") else {
                return default;
            };
            let resolved = match path.parent() {
                Some(dir) if !Path::new(&p).is_absolute() => dir.join(&p),
                _ => Path::new(&p).to_path_buf(),
            };
            if !resolved.is_file() {
                ctx.warn(
                    &pv.span(),
                    format!("token file {} does not exist (yet)", resolved.display()),
                );
            }
            TokenSource::Csv { path: resolved }
        }
        other => {
            let span = t.get("source").map(|s| s.span()).unwrap_or(v.span());
            ctx.err(
                &span,
                format!("tokens.source `{other}`: expected \"driver\" or \"csv\""),
            );
            default
        }
    }
}

fn parse_group(ctx: &mut Ctx<'_>, item: &V<'_>, i: usize) -> Option<Group> {
    let what = format!("groups[{i}]");
    let t = ctx.table(item, &what)?;
    ctx.check_keys(t, &["name", "count", "weight", "steps"], "a group");
    let name = match t.get("name") {
        Some(n) => ctx.string(n, &format!("{what}.name"))?,
        None => format!("group{}", i + 1),
    };
    if name.trim().is_empty() {
        ctx.err(
            &t.get("name").map(|n| n.span()).unwrap_or(item.span()),
            format!("{what}.name is empty"),
        );
    }
    let what = format!("group `{name}`");
    let size = match (t.get("count"), t.get("weight")) {
        (Some(_), Some(w)) => {
            ctx.err(
                &w.span(),
                format!("{what}: give either `count` (fixed clients) or `weight` (share of the rest), not both"),
            );
            GroupSize::Weight(1)
        }
        (Some(c), None) => match ctx.integer(c, &format!("{what}: count")) {
            Some(n) if n >= 1 && n <= i128::from(u32::MAX) => GroupSize::Count(n as u32),
            Some(n) => {
                ctx.err(
                    &c.span(),
                    format!("{what}: count must be at least 1, not {n}"),
                );
                GroupSize::Count(1)
            }
            None => GroupSize::Count(1),
        },
        (None, Some(w)) => match ctx.integer(w, &format!("{what}: weight")) {
            Some(n) if n >= 1 && n <= i128::from(u32::MAX) => GroupSize::Weight(n as u32),
            Some(n) => {
                ctx.err(
                    &w.span(),
                    format!("{what}: weight must be at least 1, not {n}"),
                );
                GroupSize::Weight(1)
            }
            None => GroupSize::Weight(1),
        },
        (None, None) => GroupSize::Weight(1),
    };
    let steps = match t.get("steps") {
        None => {
            ctx.err(&item.span(), format!("{what} has no steps"));
            Vec::new()
        }
        Some(s) => {
            let steps = parse_steps(ctx, s, &what);
            if steps.is_empty() && ctx.array_len(s) == Some(0) {
                ctx.err(&s.span(), format!("{what}: steps is empty"));
            }
            check_connected(ctx, s, &steps, &what);
            steps
        }
    };
    Some(Group { name, size, steps })
}

impl Ctx<'_> {
    fn array_len(&self, v: &V<'_>) -> Option<usize> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a.len()),
            _ => None,
        }
    }

    fn saves(&mut self, name: &str) {
        if let Scope::Group(i) = self.scope
            && let Some(set) = self.group_saves.get_mut(i)
        {
            set.insert(name.to_owned());
        }
    }
}

/// Socket steps need a `connect` before them (in file order).
fn check_connected(ctx: &mut Ctx<'_>, v: &V<'_>, steps: &[Step], what: &str) {
    fn first_socket_step(steps: &[Step], connected: &mut bool) -> Option<Vec<usize>> {
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Connect { .. } => *connected = true,
                Step::Subscribe { .. }
                | Step::Emit { .. }
                | Step::EmitAck { .. }
                | Step::WaitFor { .. }
                | Step::Disconnect
                | Step::Reconnect { .. }
                    if !*connected =>
                {
                    return Some(vec![i]);
                }
                Step::Loop { steps, .. } => {
                    if let Some(mut p) = first_socket_step(steps, connected) {
                        p.insert(0, i);
                        return Some(p);
                    }
                }
                Step::Choice { options } => {
                    let before = *connected;
                    let mut all = true;
                    for (k, (_, body)) in options.iter().enumerate() {
                        let mut c = before;
                        if let Some(mut p) = first_socket_step(body, &mut c) {
                            p.insert(0, k);
                            p.insert(0, i);
                            return Some(p);
                        }
                        all &= c;
                    }
                    *connected = before || all;
                }
                _ => {}
            }
        }
        None
    }
    let mut connected = false;
    if let Some(path) = first_socket_step(steps, &mut connected) {
        // Find the span of the offending step by following the path.
        let mut cur = v;
        let mut span = v.span();
        let mut idx = 0;
        while idx < path.len() {
            let DeValue::Array(a) = cur.get_ref() else {
                break;
            };
            let Some(item) = a.get(path[idx]) else { break };
            span = item.span();
            idx += 1;
            if idx >= path.len() {
                break;
            }
            // Descend: loop → steps; choice → option → steps.
            let DeValue::Table(t) = item.get_ref() else {
                break;
            };
            if let Some(s) = t.get("steps") {
                cur = s;
            } else if let Some(c) = t.get("choice") {
                let DeValue::Array(opts) = c.get_ref() else {
                    break;
                };
                let Some(opt) = opts.get(path[idx]) else {
                    break;
                };
                idx += 1;
                let DeValue::Table(ot) = opt.get_ref() else {
                    break;
                };
                let Some(s) = ot.get("steps") else { break };
                cur = s;
            } else {
                break;
            }
        }
        ctx.err(
            &span,
            format!(
                "{what}: this step needs a connection; put a {{ connect = \"/\" }} step before it"
            ),
        );
    }
}

fn parse_steps(ctx: &mut Ctx<'_>, v: &V<'_>, what: &str) -> Vec<Step> {
    let mut out = Vec::new();
    if let Some(items) = ctx.array(v, &format!("{what}: steps")) {
        for item in items {
            if let Some(s) = parse_step(ctx, item, what) {
                out.push(s);
            }
        }
    }
    out
}

/// The one kind key of the step or phase `item` (its table `t`; `kinds`:
/// each kind's name and the keys it takes), with its value. Reports an
/// empty table (at `item`, as `{what}: empty {noun}`), an unknown kind (at
/// the first key as written, with a suggestion), a second kind, and keys
/// the kind does not take; `None` when there is not exactly one kind.
fn one_kind<'t, 'i>(
    ctx: &mut Ctx<'_>,
    item: &V<'_>,
    t: &'t DeTable<'i>,
    what: &str,
    kinds: &[(&str, &[&str])],
    noun: &str,
    split_hint: &str,
) -> Option<(String, &'t V<'i>)> {
    let kind_names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
    let mut found: Vec<_> = t
        .iter()
        .filter(|(k, _)| kind_names.contains(&k.get_ref().as_ref()))
        .collect();
    found.sort_by_key(|(k, _)| k.span().start);
    let (kind_key, kv) = match found.as_slice() {
        [one] => *one,
        [] => {
            match t.iter().min_by_key(|(k, _)| k.span().start) {
                Some((k, _)) => ctx.err(
                    &k.span(),
                    format!(
                        "unknown {noun} kind `{}`{} (kinds: {})",
                        k.get_ref(),
                        did_you_mean(k.get_ref(), &kind_names),
                        kind_names.join(", ")
                    ),
                ),
                None => ctx.err(
                    &item.span(),
                    format!(
                        "{what}: empty {noun}: name its kind ({})",
                        kind_names.join(", ")
                    ),
                ),
            }
            return None;
        }
        [a, b, ..] => {
            ctx.err(
                &b.0.span(),
                format!(
                    "a {noun} has one kind, this one has `{}` and `{}`{split_hint}",
                    a.0.get_ref(),
                    b.0.get_ref()
                ),
            );
            return None;
        }
    };
    let kind = kind_key.get_ref().to_string();
    let allowed = kinds
        .iter()
        .find(|(n, _)| *n == kind)
        .map(|(_, keys)| *keys)
        .unwrap_or(&[]);
    ctx.check_keys(t, allowed, &format!("a {kind} {noun}"));
    Some((kind, kv))
}

fn parse_step(ctx: &mut Ctx<'_>, item: &V<'_>, what: &str) -> Option<Step> {
    let DeValue::Table(t) = item.get_ref() else {
        ctx.err(
            &item.span(),
            format!(
                "{what}: a step is a table such as {{ think = \"1s\" }}, not {}",
                item.get_ref().type_str()
            ),
        );
        return None;
    };
    let (kind, kv) = one_kind(
        ctx,
        item,
        t,
        what,
        STEP_KINDS,
        "step",
        ": split it into two steps",
    )?;
    let w = format!("{kind} step");
    let step = match kind.as_str() {
        "connect" => {
            let namespace = ctx.template(kv, &w)?;
            if !namespace.starts_with('/') {
                ctx.err(
                    &kv.span(),
                    format!("{w}: a namespace starts with '/' (\"/\" or \"/rooms/${{roomId}}\")"),
                );
            }
            let transport = match t.get("transport") {
                None => Transport::WebSocket,
                Some(tv) => match ctx.string(tv, "transport").as_deref() {
                    Some("websocket") => Transport::WebSocket,
                    Some("polling") => Transport::Polling,
                    Some(other) => {
                        ctx.err(
                            &tv.span(),
                            format!("transport `{other}`: expected \"websocket\" or \"polling\""),
                        );
                        Transport::WebSocket
                    }
                    None => Transport::WebSocket,
                },
            };
            Step::Connect {
                namespace,
                transport,
            }
        }
        "subscribe" => {
            let room = ctx.template(kv, &w)?;
            if room.is_empty() {
                ctx.err(&kv.span(), "subscribe: empty room id");
            }
            Step::Subscribe { room }
        }
        "emit" => {
            let event = ctx.event_name(kv, &w)?;
            let data = t
                .get("data")
                .map(|d| ctx.json(d, true))
                .unwrap_or_else(|| Value::Object(Default::default()));
            Step::Emit { event, data }
        }
        "emit_ack" => {
            let event = ctx.event_name(kv, &w)?;
            let data = t
                .get("data")
                .map(|d| ctx.json(d, true))
                .unwrap_or_else(|| Value::Object(Default::default()));
            let expect = t.get("expect").map(|e| ctx.json(e, true));
            let timeout = match t.get("timeout") {
                Some(x) => ctx.positive_duration(x, "timeout")?,
                None => DEFAULT_ACK_TIMEOUT,
            };
            let save = t
                .get("save")
                .map(|s| ctx.pointer_map(s, "save"))
                .unwrap_or_default();
            for n in save.keys() {
                ctx.saves(n);
            }
            let metric = match t.get("metric") {
                Some(m) => {
                    let m_s = ctx.string(m, "metric")?;
                    if m_s.is_empty() || m_s.chars().any(char::is_whitespace) {
                        ctx.err(
                            &m.span(),
                            "metric: a name without spaces, e.g. \"ack.answer\"",
                        );
                    }
                    Some(m_s)
                }
                None => None,
            };
            Step::EmitAck {
                event,
                data,
                expect,
                timeout,
                save,
                metric,
            }
        }
        "wait_for" => {
            let event = ctx.event_name(kv, &w)?;
            let matching = t.get("matching").map(|e| ctx.json(e, true));
            let timeout = match t.get("timeout") {
                Some(x) => ctx.positive_duration(x, "timeout")?,
                None => DEFAULT_WAIT_TIMEOUT,
            };
            let save = t
                .get("save")
                .map(|s| ctx.pointer_map(s, "save"))
                .unwrap_or_default();
            for n in save.keys() {
                ctx.saves(n);
            }
            Step::WaitFor {
                event,
                matching,
                timeout,
                save,
            }
        }
        "think" => Step::Think(parse_think(ctx, kv)?),
        "loop" => {
            let count = match kv.get_ref() {
                DeValue::Integer(_) => {
                    let n = ctx.integer(kv, "loop")?;
                    if n < 0 || n > i128::from(MAX_LOOP) {
                        ctx.err(
                            &kv.span(),
                            format!("loop count must be between 0 and {MAX_LOOP}, not {n}"),
                        );
                    }
                    n.to_string()
                }
                DeValue::String(s) => {
                    let s = s.to_string();
                    ctx.check_template(&s, &kv.span());
                    if !s.contains("${") {
                        match s.trim().parse::<u64>() {
                            Ok(n) if n <= MAX_LOOP => {}
                            _ => ctx.err(
                                &kv.span(),
                                format!("loop count {s:?} is not a number from 0 to {MAX_LOOP}"),
                            ),
                        }
                    }
                    s
                }
                other => {
                    ctx.err(
                        &kv.span(),
                        format!(
                            "loop count must be an integer or a template such as \"${{questions}}\", not {}",
                            other.type_str()
                        ),
                    );
                    return None;
                }
            };
            let Some(sv) = t.get("steps") else {
                ctx.err(&kv.span(), "loop: missing `steps`");
                return None;
            };
            let steps = parse_steps(ctx, sv, "loop");
            if ctx.array_len(sv) == Some(0) {
                ctx.err(&sv.span(), "loop: steps is empty");
            }
            Step::Loop { count, steps }
        }
        "choice" => {
            let items = ctx.array(kv, "choice")?;
            if items.is_empty() {
                ctx.err(
                    &kv.span(),
                    "choice: give at least one option { weight = N, steps = [...] }",
                );
            }
            let mut options = Vec::new();
            for (k, opt) in items.iter().enumerate() {
                let ow = format!("choice option {}", k + 1);
                let Some(ot) = ctx.table(opt, &ow) else {
                    continue;
                };
                ctx.check_keys(ot, &["weight", "steps"], &ow);
                let weight = match ot.get("weight") {
                    Some(x) => ctx.u32_min(x, &format!("{ow}: weight"), 1).unwrap_or(1),
                    None => 1,
                };
                let steps = match ot.get("steps") {
                    Some(s) => parse_steps(ctx, s, &ow),
                    None => {
                        ctx.err(
                            &opt.span(),
                            format!("{ow}: missing `steps` (use [] for nothing)"),
                        );
                        Vec::new()
                    }
                };
                options.push((weight, steps));
            }
            Step::Choice { options }
        }
        "disconnect" => {
            if ctx.boolean(kv, "disconnect")? {
                Step::Disconnect
            } else {
                ctx.err(
                    &kv.span(),
                    "disconnect = false does nothing: remove the step",
                );
                return None;
            }
        }
        "reconnect" => {
            if !ctx.boolean(kv, "reconnect")? {
                ctx.err(
                    &kv.span(),
                    "reconnect = false does nothing: remove the step",
                );
                return None;
            }
            let resubscribe = match t.get("resubscribe") {
                Some(r) => ctx.boolean(r, "resubscribe").unwrap_or(true),
                None => true,
            };
            Step::Reconnect { resubscribe }
        }
        "http" => {
            let action = ctx.string(kv, "http")?;
            if action.is_empty() {
                ctx.err(&kv.span(), "http: empty action name");
            }
            let with = t
                .get("with")
                .map(|x| ctx.json_table(x, "with"))
                .unwrap_or_default();
            let save = t
                .get("save")
                .map(|s| ctx.name_list(s, "save"))
                .unwrap_or_default();
            for (n, _) in &save {
                ctx.saves(n);
            }
            let stamp = match t.get("stamp") {
                Some(s) => ctx.boolean(s, "stamp").unwrap_or(false),
                None => false,
            };
            if stamp
                && let Some(d) = t.get("with").and_then(|x| match x.get_ref() {
                    DeValue::Table(wt) => wt.get("data"),
                    _ => None,
                })
                && !matches!(d.get_ref(), DeValue::Table(_))
            {
                ctx.err(
                    &d.span(),
                    "stamp = true adds `sentAtUs` to with.data, which must then be a table",
                );
            }
            ctx.actions.push(ActionUse {
                span: kv.span(),
                action: action.clone(),
                with_keys: with.keys().cloned().collect(),
                save: save.clone(),
                scope: ctx.scope,
            });
            Step::Http {
                action,
                with,
                save: save.into_iter().map(|(n, _)| n).collect(),
                stamp,
            }
        }
        "set" => {
            let tv = ctx.table(kv, "set")?;
            let mut vars = BTreeMap::new();
            for (k, x) in tv.iter() {
                let name = k.get_ref().to_string();
                if !ctx.var_name(&name, &k.span(), "set") {
                    continue;
                }
                let val = ctx.json(x, true);
                ctx.saves(&name);
                vars.insert(name, val);
            }
            if vars.is_empty() && tv.is_empty() {
                ctx.err(&kv.span(), "set: give at least one variable");
            }
            Step::Set { vars }
        }
        _ => unreachable!("every kind of STEP_KINDS is handled"),
    };
    Some(step)
}

fn parse_think(ctx: &mut Ctx<'_>, v: &V<'_>) -> Option<Think> {
    match v.get_ref() {
        DeValue::Table(t) => {
            ctx.check_keys(t, &["min", "max", "mean"], "think");
            match (t.get("min"), t.get("max"), t.get("mean")) {
                (Some(a), Some(b), None) => {
                    let lo = ctx.duration(a, "think.min")?;
                    let hi = ctx.duration(b, "think.max")?;
                    if lo > hi {
                        ctx.err(&b.span(), "think: max is less than min");
                        return None;
                    }
                    Some(Think::Uniform(lo, hi))
                }
                (None, None, Some(m)) => Some(Think::Exponential {
                    mean: ctx.positive_duration(m, "think.mean")?,
                }),
                _ => {
                    ctx.err(
                        &v.span(),
                        "think: a duration (\"2s\"), { min = \"1s\", max = \"3s\" } (uniform) or { mean = \"2s\" } (exponential)",
                    );
                    None
                }
            }
        }
        _ => Some(Think::Fixed(ctx.duration(v, "think")?)),
    }
}

fn parse_phase(ctx: &mut Ctx<'_>, item: &V<'_>, i: usize, level: u32) -> Option<Phase> {
    let what = format!("phases[{i}]");
    let t = ctx.table(item, &what)?;
    let (kind, kv) = one_kind(ctx, item, t, &what, PHASE_KINDS, "phase", "")?;
    match kind.as_str() {
        "ramp" => {
            let to = ctx.u32_min(kv, "ramp (target clients)", 0)?;
            let from = match t.get("from") {
                Some(f) => ctx.u32_min(f, "ramp.from", 0)?,
                None => level,
            };
            let Some(ov) = t.get("over") else {
                ctx.err(
                    &kv.span(),
                    "ramp: missing `over` (e.g. over = \"30s\"; \"0s\" for all at once)",
                );
                return None;
            };
            let over = ctx.duration(ov, "ramp.over")?;
            Some(Phase::Ramp { from, to, over })
        }
        "hold" => {
            let duration = ctx.positive_duration(kv, "hold")?;
            if level == 0 {
                ctx.warn(
                    &kv.span(),
                    "hold at 0 clients: nothing runs during this phase",
                );
            }
            Some(Phase::Hold { duration })
        }
        "arrival" => {
            let rate = ctx.number(kv, "arrival (new clients per second)")?;
            if !(rate.is_finite() && rate > 0.0) {
                ctx.err(
                    &kv.span(),
                    "arrival: the rate (new clients per second) must be more than 0",
                );
                return None;
            }
            let Some(ov) = t.get("over") else {
                ctx.err(&kv.span(), "arrival: missing `over` (e.g. over = \"1m\")");
                return None;
            };
            let duration = ctx.positive_duration(ov, "arrival.over")?;
            Some(Phase::Arrival {
                rate_per_sec: rate,
                duration,
            })
        }
        "ramp_down" => {
            let over = ctx.duration(kv, "ramp_down")?;
            Some(Phase::RampDown { over })
        }
        _ => unreachable!("every kind of PHASE_KINDS is handled"),
    }
}
