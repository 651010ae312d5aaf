//! TOML text → [`Scenario`], keeping the position of every value so that
//! each error names its line and column.
//!
//! This module reads the document (vars, set-up, tokens, groups, phases);
//! [`ctx`] holds the parser's state and its value readers, [`steps`] one
//! parse function per step kind.

mod ctx;
mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::feeder::{self, Feeder, Pick};
use super::metric_names::KnownMetrics;
use super::validate;
use super::{
    Checked, DEFAULT_GRACE, DEFAULT_KEEP_MISMATCHES, Group, GroupSize, MAX_KEEP_MISMATCHES,
    MAX_TAG_LEN, MAX_TAGS, Phase, Scenario, ScenarioError, SetupAction, Step, TokenSource,
    fnv1a_hex,
};

type V<'i> = Spanned<DeValue<'i>>;

use ctx::ActionUse;
pub(super) use ctx::{Ctx, Scope, did_you_mean};
use steps::parse_step;

/// Step kinds, each with the keys its table may have (the kind key first).
pub(super) const STEP_KINDS: &[(&str, &[&str])] = &[
    ("connect", &["connect", "transport"]),
    ("subscribe", &["subscribe"]),
    ("emit", &["emit", "data", "metric"]),
    (
        "emit_ack",
        &["emit_ack", "data", "expect", "timeout", "save", "metric"],
    ),
    (
        "wait_for",
        &["wait_for", "matching", "timeout", "save", "metric"],
    ),
    ("think", &["think"]),
    ("loop", &["loop", "steps"]),
    ("choice", &["choice"]),
    ("disconnect", &["disconnect"]),
    ("reconnect", &["reconnect", "resubscribe"]),
    ("http", &["http", "with", "save", "stamp", "metric"]),
    ("set", &["set"]),
];

/// Phase kinds, each with the keys its table may have.
const PHASE_KINDS: &[(&str, &[&str])] = &[
    ("ramp", &["ramp", "from", "over"]),
    ("hold", &["hold"]),
    ("arrival", &["arrival", "from", "over"]),
    ("ramp_down", &["ramp_down"]),
];

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "max_duration",
    "thresholds",
    "keep_mismatches",
    "max_vus",
    "vars",
    "setup",
    "tokens",
    "feeders",
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

/// The span of the whole document when a required key is missing.
const TOP: Range<usize> = 0..0;

pub(super) fn parse(
    text: &str,
    path: &Path,
    var_args: &[(String, String)],
) -> Result<Checked, ScenarioError> {
    let file = path.display().to_string();
    let mut ctx = Ctx::new(text, file.clone());
    ctx.overrides = var_args.iter().map(|(k, _)| k.clone()).collect();
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
    let (feeders, feeder_spans) = doc
        .get("feeders")
        .map(|v| parse_feeders(&mut ctx, v, path))
        .unwrap_or_default();

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
    let max_vus = doc.get("max_vus").and_then(|v| {
        let n = ctx.u32_min(v, "max_vus", 1)?;
        if !phases.iter().any(|p| matches!(p, Phase::Arrival { .. })) {
            ctx.warn(
                &v.span(),
                "max_vus caps the VUs of arrival phases, and there is none",
            );
        }
        Some(n)
    });
    let peak = super::overrides::peak_clients(&phases, max_vus);
    if !phases.is_empty() && peak == 0 {
        ctx.err(
            &phases_span,
            "the phases never start a client: ramp to more than 0 or add an arrival phase",
        );
    }

    for (f, span) in feeders.iter().zip(&feeder_spans) {
        if f.pick == Pick::PerVu && f.rows.len() < peak as usize {
            ctx.warn(
                span,
                format!(
                    "{} has {} rows for up to {peak} clients: per-vu wraps around (VU i gets row i mod {})",
                    f.file.display(),
                    f.rows.len(),
                    f.rows.len()
                ),
            );
        }
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

    let keep_mismatches = match doc.get("keep_mismatches") {
        Some(v) => ctx
            .integer(v, "keep_mismatches")
            .and_then(|n| {
                if (0..=i128::from(MAX_KEEP_MISMATCHES)).contains(&n) {
                    Some(n as u32)
                } else {
                    ctx.err(
                        &v.span(),
                        format!(
                            "keep_mismatches must be between 0 and {MAX_KEEP_MISMATCHES}, not {n}"
                        ),
                    );
                    None
                }
            })
            .unwrap_or(DEFAULT_KEEP_MISMATCHES),
        None => DEFAULT_KEEP_MISMATCHES,
    };

    // thresholds
    let mut thresholds = Vec::new();
    if let Some(v) = doc.get("thresholds")
        && let Some(items) = ctx.array(v, "thresholds")
    {
        let known = KnownMetrics::of(&groups);
        for x in items {
            if let Some(s) = ctx.string(x, "threshold") {
                if let Err(e) = validate::check_threshold(&s, &known) {
                    ctx.err(&x.span(), format!("threshold {s:?}: {e}"));
                }
                thresholds.push(s);
            }
        }
    }

    validate::resolve(&mut ctx);
    let overrides = validate::overrides(&mut ctx, var_args);

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
            overrides,
            setup,
            tokens,
            feeders,
            groups,
            phases,
            max_duration,
            thresholds,
            max_vus,
            keep_mismatches,
        },
        warnings,
    })
}

fn parse_tokens(ctx: &mut Ctx<'_>, v: Option<&V<'_>>, path: &Path) -> TokenSource {
    let default = TokenSource::Driver {
        join_room: None,
        role: "participant".into(),
        ttl: None,
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
            ctx.check_keys(
                t,
                &["source", "join_room", "role", "ttl"],
                "tokens (driver)",
            );
            let ttl = t.get("ttl").and_then(|v| {
                let d = ctx.positive_duration(v, "tokens.ttl")?;
                if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
                    ctx.err(&v.span(), "tokens.ttl is whole seconds, at least 1s");
                    return None;
                }
                Some(d)
            });
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
            TokenSource::Driver {
                join_room,
                role,
                ttl,
            }
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

/// `[[feeders]]`: each file is read now (bounded), its variable names
/// checked and recorded for the groups' templates.
fn parse_feeders(ctx: &mut Ctx<'_>, v: &V<'_>, path: &Path) -> (Vec<Feeder>, Vec<Range<usize>>) {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    let Some(items) = ctx.array(v, "feeders") else {
        return (out, spans);
    };
    for (i, item) in items.iter().enumerate() {
        let what = format!("feeders[{i}]");
        let Some(t) = ctx.table(item, &what) else {
            continue;
        };
        ctx.check_keys(t, &["file", "pick"], &what);
        let pick = match t.get("pick") {
            None => Pick::PerVu,
            Some(p) => {
                let Some(name) = ctx.string(p, &format!("{what}.pick")) else {
                    continue;
                };
                match Pick::parse(&name) {
                    Some(pick) => pick,
                    None => {
                        ctx.err(
                            &p.span(),
                            format!(
                                "{what}.pick `{name}`{}: expected {}",
                                did_you_mean(&name, Pick::NAMES),
                                Pick::NAMES.join(", ")
                            ),
                        );
                        continue;
                    }
                }
            }
        };
        let Some(fv) = t.get("file") else {
            ctx.err(
                &item.span(),
                format!("{what}: missing `file` (a .csv or .json file)"),
            );
            continue;
        };
        let Some(name) = ctx.string(fv, &format!("{what}.file")) else {
            continue;
        };
        let file = match path.parent() {
            Some(dir) if !Path::new(&name).is_absolute() => dir.join(&name),
            _ => Path::new(&name).to_path_buf(),
        };
        let (columns, rows) = match feeder::read(&file) {
            Ok(x) => x,
            Err(e) => {
                ctx.err(&fv.span(), format!("{what}.file {}: {e}", file.display()));
                continue;
            }
        };
        let mut ok = true;
        for c in &columns {
            if !ctx.var_name(c, &fv.span(), &format!("{what}.file {}", file.display())) {
                ok = false;
            } else if ctx.token_vars.contains(c) || !ctx.feeder_vars.insert(c.clone()) {
                ctx.err(
                    &fv.span(),
                    format!(
                        "{what}.file {}: variable `{c}` is already given by the tokens or another feeder",
                        file.display()
                    ),
                );
                ok = false;
            }
        }
        if ok {
            spans.push(fv.span());
            out.push(Feeder {
                file,
                pick,
                columns,
                rows,
            });
        }
    }
    (out, spans)
}

fn parse_group(ctx: &mut Ctx<'_>, item: &V<'_>, i: usize) -> Option<Group> {
    let what = format!("groups[{i}]");
    let t = ctx.table(item, &what)?;
    ctx.check_keys(t, &["name", "count", "weight", "steps", "tags"], "a group");
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
    let tags = t
        .get("tags")
        .map(|v| parse_tags(ctx, v, &what))
        .unwrap_or_default();
    Some(Group {
        name,
        size,
        steps,
        tags,
    })
}

/// `tags = { KEY = "VALUE", ... }`: names and values that fit in a metric
/// name (`[KEY=VALUE]NAME`) and a Prometheus label.
fn parse_tags(ctx: &mut Ctx<'_>, v: &V<'_>, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(t) = ctx.table(v, &format!("{what}: tags")) else {
        return out;
    };
    if t.len() > MAX_TAGS {
        ctx.err(
            &v.span(),
            format!("{what}: {} tags, at most {MAX_TAGS}", t.len()),
        );
        return out;
    }
    let fits = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.len() <= MAX_TAG_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    };
    for (k, x) in t.iter() {
        let key = k.get_ref().to_string();
        if !fits(&key, &[]) || key.starts_with(|c: char| c.is_ascii_digit()) {
            ctx.err(
                &k.span(),
                format!("{what}: tag `{key}`: a tag name is ASCII letters, digits and _ (not first a digit), at most {MAX_TAG_LEN} bytes"),
            );
            continue;
        }
        let Some(value) = ctx.string(x, &format!("{what}: tag {key}")) else {
            continue;
        };
        if !fits(&value, &['-', '.']) {
            ctx.err(
                &x.span(),
                format!("{what}: tag {key} = {value:?}: a tag value is ASCII letters, digits, _, - and ., at most {MAX_TAG_LEN} bytes"),
            );
            continue;
        }
        out.insert(key, value);
    }
    out
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
            let from = match t.get("from") {
                Some(f) => ctx.number(f, "arrival.from (new clients per second)")?,
                None => rate,
            };
            for (x, v) in [(rate, kv), (from, t.get("from").unwrap_or(kv))] {
                if !(x.is_finite() && x >= 0.0) {
                    ctx.err(
                        &v.span(),
                        "arrival: a rate (new clients per second) is a number of at least 0",
                    );
                    return None;
                }
            }
            if rate == 0.0 && from == 0.0 {
                ctx.err(
                    &kv.span(),
                    "arrival: the rate (new clients per second) must be more than 0 (at the start, `from`, or the end)",
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
                from_per_sec: from,
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
