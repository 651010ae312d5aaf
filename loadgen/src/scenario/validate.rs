//! Checks that need the whole scenario: every `${name}` is defined
//! somewhere it can be seen, driver actions against the reference profile
//! (warnings only: another `--profile` may have them), thresholds (syntax
//! and metric names).

use std::collections::BTreeSet;

use driver::profile::Profile;

use super::BUILTIN_VARS;
use super::metric_names::KnownMetrics;
use super::parse::{Ctx, Scope, did_you_mean};

/// The names visible in a scope (without the environment).
fn known(ctx: &Ctx<'_>, scope: Scope, profile_vars: &BTreeSet<String>) -> BTreeSet<String> {
    if scope == Scope::Vars {
        return ["runId", "nowMs", "shard"].map(String::from).into();
    }
    let mut k: BTreeSet<String> = ctx.vars.clone();
    k.extend(profile_vars.iter().cloned());
    match scope {
        Scope::Vars => {}
        Scope::Setup(i) => {
            k.extend(
                BUILTIN_VARS
                    .iter()
                    .filter(|b| **b != "vu")
                    .map(|b| b.to_string()),
            );
            for s in ctx.setup_saves.iter().take(i) {
                k.extend(s.iter().cloned());
            }
        }
        Scope::Tokens => {
            k.extend(BUILTIN_VARS.iter().map(|b| b.to_string()));
            for s in &ctx.setup_saves {
                k.extend(s.iter().cloned());
            }
        }
        Scope::Group(g) => {
            k.extend(BUILTIN_VARS.iter().map(|b| b.to_string()));
            for s in &ctx.setup_saves {
                k.extend(s.iter().cloned());
            }
            k.extend(ctx.token_vars.iter().cloned());
            k.extend(ctx.feeder_vars.iter().cloned());
            if let Some(s) = ctx.group_saves.get(g) {
                k.extend(s.iter().cloned());
            }
        }
    }
    k
}

fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::Vars => "scenario vars may use only runId, nowMs, shard and environment variables",
        Scope::Setup(_) => {
            "not a scenario var, a built-in (runId, nowMs, shard), a name saved by an earlier set-up action, nor an environment variable"
        }
        Scope::Tokens => {
            "not a scenario var, a built-in, a name saved by the set-up, nor an environment variable"
        }
        Scope::Group(_) => {
            "not a scenario var, a built-in (vu, runId, nowMs, shard), a set-up save, a token or feeder variable, a name saved or set by this group's steps, nor an environment variable"
        }
    }
}

/// Resolves every placeholder and checks every driver action.
pub(super) fn resolve(ctx: &mut Ctx<'_>) {
    let reference = Profile::reference();
    let profile_vars: BTreeSet<String> = reference.vars.keys().cloned().collect();

    let uses = std::mem::take(&mut ctx.uses);
    for u in &uses {
        if std::env::var_os(&u.name).is_some() || ctx.overrides.contains(&u.name) {
            continue;
        }
        let k = known(ctx, u.scope, &profile_vars);
        if k.contains(&u.name) {
            continue;
        }
        let names: Vec<&str> = k.iter().map(String::as_str).collect();
        let hint = did_you_mean(&u.name, &names);
        let extra = match (u.scope, u.name.as_str()) {
            (Scope::Setup(_), "vu") => " (`vu` exists only in the steps of a group)".to_owned(),
            (Scope::Setup(_), _) if ctx.setup_saves.iter().flatten().any(|s| *s == u.name) => {
                " (it is saved by a later set-up action)".to_owned()
            }
            _ => String::new(),
        };
        let msg = format!(
            "unknown variable `${{{}}}`{hint}{extra}: {}",
            u.name,
            scope_words(u.scope)
        );
        ctx.err(&u.span, msg);
    }

    let actions = std::mem::take(&mut ctx.actions);
    for a in &actions {
        let Some(def) = reference.actions.get(&a.action) else {
            let names: Vec<&str> = reference.actions.keys().map(String::as_str).collect();
            let hint = did_you_mean(&a.action, &names);
            ctx.warn(
                &a.span,
                format!(
                    "action `{}` is not in the reference profile{hint}: it must be in the --profile the run uses",
                    a.action
                ),
            );
            continue;
        };
        // Variables the action's templates need (its steps', less what
        // earlier steps extract).
        let needed = reference.inputs(&a.action).unwrap_or_default();
        let k = known(ctx, a.scope, &profile_vars);
        let missing: Vec<String> = needed
            .into_iter()
            .filter(|n| {
                !a.with_keys.contains(n)
                    && !k.contains(n)
                    && !ctx.overrides.contains(n)
                    && std::env::var_os(n).is_none()
            })
            .collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|m| format!("${{{m}}}")).collect();
            ctx.warn(
                &a.span,
                format!(
                    "action `{}` of the reference profile uses {} which nothing provides here: add it to `with`",
                    a.action,
                    list.join(", ")
                ),
            );
        }
        for (name, span) in &a.save {
            let extracts = def.outputs();
            if !extracts.contains(&name.as_str()) {
                let what = if extracts.is_empty() {
                    "nothing".to_owned()
                } else {
                    extracts.join(", ")
                };
                ctx.warn(
                    span,
                    format!(
                        "action `{}` of the reference profile does not extract `{name}` (it extracts {what})",
                        a.action
                    ),
                );
            }
        }
    }
}

/// Checks the `--var` names (the scenario must read each, and not assign
/// it itself) and turns the values into JSON. Errors name the flag, since
/// they are about the command line, not a line of the file.
pub(super) fn overrides(
    ctx: &mut Ctx<'_>,
    vars: &[(String, String)],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    let mut readable: BTreeSet<&str> = ctx.vars.iter().map(String::as_str).collect();
    readable.extend(ctx.mentioned.iter().map(String::as_str));
    let assigned: BTreeSet<&str> = ctx
        .setup_saves
        .iter()
        .flatten()
        .chain(ctx.group_saves.iter().flatten())
        .chain(ctx.token_vars.iter())
        .chain(ctx.feeder_vars.iter())
        .map(String::as_str)
        .chain(BUILTIN_VARS.iter().copied())
        .collect();
    let mut errors = Vec::new();
    for (k, v) in vars {
        if assigned.contains(k.as_str()) {
            errors.push(format!(
                "--var {k}: `{k}` is assigned by the run itself (a built-in, a token variable or a save/set of the scenario), so a value from the command line would be hidden"
            ));
        } else if !readable.contains(k.as_str()) {
            let names: Vec<&str> = readable.difference(&assigned).copied().collect();
            let list = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            errors.push(format!(
                "--var {k}: the scenario reads no variable `{k}`{} (it reads: {list})",
                did_you_mean(k, &names)
            ));
        } else {
            let value =
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
            out.insert(k.clone(), value);
        }
    }
    for e in errors {
        ctx.errors.push(crate::scenario::Diagnostic {
            file: ctx.file.clone(),
            line: 0,
            col: 0,
            message: e,
        });
    }
    out
}

/// Checks a threshold with the run's own parser (`threshold.rs`), and
/// that its metric is one the scenario records.
pub fn check_threshold(expr: &str, known: &KnownMetrics) -> Result<(), String> {
    let t = formats::threshold::Threshold::parse(expr).map_err(|e| e.reason)?;
    known.check(&t.metric)
}
