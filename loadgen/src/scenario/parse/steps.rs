//! Steps: [`parse_step`] finds the step's one kind, then hands its table
//! to the parse function of that kind (one function per kind, in the
//! order of [`STEP_KINDS`]).

use std::collections::BTreeMap;

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::ctx::{ActionUse, Ctx};
use super::{MAX_LOOP, STEP_KINDS, V, one_kind, parse_steps};
use crate::scenario::{DEFAULT_ACK_TIMEOUT, DEFAULT_WAIT_TIMEOUT, Step, Think, Transport};

/// One step: a table with exactly one kind key.
pub(super) fn parse_step(ctx: &mut Ctx<'_>, item: &V<'_>, what: &str) -> Option<Step> {
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
    match kind.as_str() {
        "connect" => connect(ctx, t, kv, &w),
        "subscribe" => subscribe(ctx, kv, &w),
        "emit" => emit(ctx, t, kv, &w),
        "emit_ack" => emit_ack(ctx, t, kv, &w),
        "wait_for" => wait_for(ctx, t, kv, &w),
        "think" => parse_think(ctx, kv).map(Step::Think),
        "loop" => repeat(ctx, t, kv),
        "choice" => choice(ctx, kv),
        "disconnect" => disconnect(ctx, kv),
        "reconnect" => reconnect(ctx, t, kv),
        "http" => http(ctx, t, kv),
        "set" => set(ctx, kv),
        _ => unreachable!("every kind of STEP_KINDS is handled"),
    }
}

/// `{ connect = "/ns", transport = "websocket" | "polling" }`.
fn connect(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>, w: &str) -> Option<Step> {
    let namespace = ctx.template(kv, w)?;
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
    Some(Step::Connect {
        namespace,
        transport,
    })
}

/// `{ subscribe = "${roomId}" }`.
fn subscribe(ctx: &mut Ctx<'_>, kv: &V<'_>, w: &str) -> Option<Step> {
    let room = ctx.template(kv, w)?;
    if room.is_empty() {
        ctx.err(&kv.span(), "subscribe: empty room id");
    }
    Some(Step::Subscribe { room })
}

/// The `data` of an emit: a template, `{}` when absent.
fn data(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> Value {
    t.get("data")
        .map(|d| ctx.json(d, true))
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// A `save` table of `name = "/json/pointer"`, each name recorded as
/// saved by the step's group.
fn save_pointers(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> BTreeMap<String, String> {
    let save = t
        .get("save")
        .map(|s| ctx.pointer_map(s, "save"))
        .unwrap_or_default();
    for n in save.keys() {
        ctx.saves(n);
    }
    save
}

/// `{ emit = "event", data = {...}, metric }`.
fn emit(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>, w: &str) -> Option<Step> {
    let event = ctx.event_name(kv, w)?;
    let data = data(ctx, t);
    let metric = metric(ctx, t, "unsubscribe")?;
    Some(Step::Emit {
        event,
        data,
        metric,
    })
}

/// `{ emit_ack = "event", data, expect, timeout, save, metric }`.
fn emit_ack(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>, w: &str) -> Option<Step> {
    let event = ctx.event_name(kv, w)?;
    let data = data(ctx, t);
    let expect = t.get("expect").map(|e| ctx.json(e, true));
    let timeout = match t.get("timeout") {
        Some(x) => ctx.positive_duration(x, "timeout")?,
        None => DEFAULT_ACK_TIMEOUT,
    };
    let save = save_pointers(ctx, t);
    let metric = metric(ctx, t, "ack.answer")?;
    Some(Step::EmitAck {
        event,
        data,
        expect,
        timeout,
        save,
        metric,
    })
}

/// `{ wait_for = "event", matching, timeout, save, metric }`.
fn wait_for(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>, w: &str) -> Option<Step> {
    let event = ctx.event_name(kv, w)?;
    let matching = t.get("matching").map(|e| ctx.json(e, true));
    let timeout = match t.get("timeout") {
        Some(x) => ctx.positive_duration(x, "timeout")?,
        None => DEFAULT_WAIT_TIMEOUT,
    };
    let save = save_pointers(ctx, t);
    let metric = metric(ctx, t, "tick")?;
    Some(Step::WaitFor {
        event,
        matching,
        timeout,
        save,
        metric,
    })
}

/// The step's `metric` (absent: `Some(None)`), a name without spaces;
/// `None` when it is not a string (reported).
fn metric(ctx: &mut Ctx<'_>, t: &DeTable<'_>, example: &str) -> Option<Option<String>> {
    let Some(m) = t.get("metric") else {
        return Some(None);
    };
    let name = ctx.string(m, "metric")?;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        ctx.err(
            &m.span(),
            format!("metric: a name without spaces, e.g. \"{example}\""),
        );
    }
    Some(Some(name))
}

/// `{ loop = N | "${template}", steps = [...] }`.
fn repeat(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>) -> Option<Step> {
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
    Some(Step::Loop { count, steps })
}

/// `{ choice = [{ weight = N, steps = [...] }, ...] }`.
fn choice(ctx: &mut Ctx<'_>, kv: &V<'_>) -> Option<Step> {
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
    Some(Step::Choice { options })
}

/// `{ disconnect = true }`.
fn disconnect(ctx: &mut Ctx<'_>, kv: &V<'_>) -> Option<Step> {
    if ctx.boolean(kv, "disconnect")? {
        Some(Step::Disconnect)
    } else {
        ctx.err(
            &kv.span(),
            "disconnect = false does nothing: remove the step",
        );
        None
    }
}

/// `{ reconnect = true, resubscribe = true }`.
fn reconnect(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>) -> Option<Step> {
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
    Some(Step::Reconnect { resubscribe })
}

/// `{ http = "action", with = {...}, save = [...], stamp = bool, metric }`.
fn http(ctx: &mut Ctx<'_>, t: &DeTable<'_>, kv: &V<'_>) -> Option<Step> {
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
    let metric = metric(ctx, t, "stage:tick")?;
    if let Some(m) = t.get("metric")
        && !(stamp && matches!(with.get("event"), Some(Value::String(_))))
    {
        ctx.err(
            &m.span(),
            "metric on an http step names the fan-out of its stamped event: it needs stamp = true and with.event",
        );
    }
    ctx.actions.push(ActionUse {
        span: kv.span(),
        action: action.clone(),
        with_keys: with.keys().cloned().collect(),
        save: save.clone(),
        scope: ctx.scope,
    });
    Some(Step::Http {
        action,
        with,
        save: save.into_iter().map(|(n, _)| n).collect(),
        stamp,
        metric,
    })
}

/// `{ set = { name = value, ... } }`.
fn set(ctx: &mut Ctx<'_>, kv: &V<'_>) -> Option<Step> {
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
    Some(Step::Set { vars })
}

/// A think time: a duration, or `{ min, max }` / `{ mean }` (random).
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
