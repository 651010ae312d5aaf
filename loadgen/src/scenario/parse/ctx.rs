//! The parser's state ([`Ctx`]): the text and its line starts (for
//! `FILE:LINE:COL` positions), the diagnostics so far, the variables each
//! scope defines and uses; and the readers of TOML values that report a
//! wrong type or a bad value at its position.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::{RESERVED_EVENTS, V};
use crate::scenario::duration::parse_duration;
use crate::scenario::template::template_vars;
use crate::scenario::{BUILTIN_VARS, Diagnostic};

/// Where a template is evaluated: decides which variables exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
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
pub(crate) struct VarUse {
    pub span: Range<usize>,
    pub name: String,
    pub scope: Scope,
}

/// A driver action named by the scenario, for the checks against the
/// reference profile.
#[derive(Debug)]
pub(crate) struct ActionUse {
    pub span: Range<usize>,
    pub action: String,
    pub with_keys: BTreeSet<String>,
    pub save: Vec<(String, Range<usize>)>,
    pub scope: Scope,
}

pub(crate) struct Ctx<'t> {
    pub(crate) text: &'t str,
    pub(crate) file: String,
    pub(crate) line_starts: Vec<usize>,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) uses: Vec<VarUse>,
    pub(crate) actions: Vec<ActionUse>,
    pub(crate) scope: Scope,
    /// Scenario `[vars]` names.
    pub(crate) vars: BTreeSet<String>,
    /// Per set-up action, the names it saves.
    pub(crate) setup_saves: Vec<Vec<String>>,
    /// Per group, every name its steps save or set.
    pub(crate) group_saves: Vec<BTreeSet<String>>,
    /// Names the token source provides.
    pub(crate) token_vars: BTreeSet<String>,
    /// Names the feeders provide (per VU, like the token variables).
    pub(crate) feeder_vars: BTreeSet<String>,
    /// Every name a placeholder reads, with a default or not (what
    /// `--var` may set).
    pub(crate) mentioned: BTreeSet<String>,
    /// `--var` names: like environment variables, they satisfy every
    /// placeholder.
    pub(crate) overrides: BTreeSet<String>,
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(text: &'t str, file: String) -> Ctx<'t> {
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
            feeder_vars: BTreeSet::new(),
            mentioned: BTreeSet::new(),
            overrides: BTreeSet::new(),
        }
    }

    pub(crate) fn diag(&self, offset: usize, message: String) -> Diagnostic {
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

    pub(crate) fn err(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diag(span.start, message.into());
        self.errors.push(d);
    }

    pub(crate) fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diag(span.start, format!("warning: {}", message.into()));
        self.warnings.push(d);
    }

    // ---- typed access -------------------------------------------------

    pub(crate) fn check_keys(&mut self, t: &DeTable<'_>, allowed: &[&str], what: &str) {
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

    pub(crate) fn string(&mut self, v: &V<'_>, what: &str) -> Option<String> {
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
    pub(crate) fn template(&mut self, v: &V<'_>, what: &str) -> Option<String> {
        let s = self.string(v, what)?;
        self.check_template(&s, &v.span());
        Some(s)
    }

    pub(crate) fn check_template(&mut self, s: &str, span: &Range<usize>) {
        match template_vars(s) {
            Ok(ps) => {
                for p in ps {
                    self.mentioned.insert(p.name.clone());
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

    pub(crate) fn duration(&mut self, v: &V<'_>, what: &str) -> Option<Duration> {
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

    pub(crate) fn positive_duration(&mut self, v: &V<'_>, what: &str) -> Option<Duration> {
        let d = self.duration(v, what)?;
        if d.is_zero() {
            self.err(&v.span(), format!("{what} must be longer than 0s"));
            return None;
        }
        Some(d)
    }

    pub(crate) fn integer(&mut self, v: &V<'_>, what: &str) -> Option<i128> {
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

    pub(crate) fn u32_min(&mut self, v: &V<'_>, what: &str, min: u32) -> Option<u32> {
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

    pub(crate) fn number(&mut self, v: &V<'_>, what: &str) -> Option<f64> {
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

    pub(crate) fn boolean(&mut self, v: &V<'_>, what: &str) -> Option<bool> {
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

    pub(crate) fn table<'a, 'i>(&mut self, v: &'a V<'i>, what: &str) -> Option<&'a DeTable<'i>> {
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

    pub(crate) fn array<'a, 'i>(&mut self, v: &'a V<'i>, what: &str) -> Option<&'a [V<'i>]> {
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
    pub(crate) fn var_name(&mut self, name: &str, span: &Range<usize>, what: &str) -> bool {
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
    pub(crate) fn json(&mut self, v: &V<'_>, templates: bool) -> Value {
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
    pub(crate) fn json_table(&mut self, v: &V<'_>, what: &str) -> BTreeMap<String, Value> {
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
    pub(crate) fn pointer_map(&mut self, v: &V<'_>, what: &str) -> BTreeMap<String, String> {
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
    pub(crate) fn name_list(&mut self, v: &V<'_>, what: &str) -> Vec<(String, Range<usize>)> {
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

    pub(crate) fn event_name(&mut self, v: &V<'_>, what: &str) -> Option<String> {
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

/// `` (did you mean `x`?)`` when a near name exists (one implementation
/// for every tool, in `formats`).
pub(crate) use formats::hint::did_you_mean;

impl Ctx<'_> {
    pub(crate) fn array_len(&self, v: &V<'_>) -> Option<usize> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a.len()),
            _ => None,
        }
    }

    pub(crate) fn saves(&mut self, name: &str) {
        if let Scope::Group(i) = self.scope
            && let Some(set) = self.group_saves.get_mut(i)
        {
            set.insert(name.to_owned());
        }
    }
}
