//! The metric names a scenario can record, so that a threshold on a
//! misspelt or absent metric is an error (with a did-you-mean) instead of
//! a count of 0 that passes (`errors.timout.count < 1`).
//!
//! The names come from [`formats::names`]: the fixed ones (the
//! generator's own `generator.*` among them), the aggregate
//! `errors`, `disconnects.<reason>`, `errors.<CODE>` for loadgen's own
//! codes, the protocol's codes and `http_<status>`, and per step:
//! `sent.`/`ack.` of what a group emits (or the step's `metric`),
//! `received.`/`fanout.` of what it waits for, what the protocol's server
//! sends and what a stamped `http` step publishes (its `with.event`),
//! `http.<action>`. A `${var}` in an event name matches any text.
//!
//! A REST or protocol code in capitals the list does not know is
//! accepted (a deployment may send its own, e.g. `errors.NOT_FOUND`)
//! unless it is a near miss of a known one.

use formats::names::{self, code};
use protocol::error::ErrorCode;
use protocol::event;
use serde_json::Value;

use super::parse::did_you_mean;
use super::{Group, Step};

/// Events the protocol's server sends to clients (each may be received
/// and, when stamped, give a fan-out latency).
const SERVER_EVENTS: &[&str] = &[
    event::ROOM_SUBSCRIBED,
    event::ROOM_UNSUBSCRIBED,
    event::ROOM_UPDATED,
    event::ROOM_STATUS_CHANGED,
    event::ROOM_DELETED,
    event::PARTICIPANT_JOINED,
    event::PARTICIPANT_LEFT,
    event::PARTICIPANT_UPDATED,
    event::PRIZE_CREATED,
    event::PRIZE_UPDATED,
    event::PRIZE_DELETED,
    event::WINNER_SELECTED,
    event::WINNER_REMOVED,
    event::QUIZ_QUESTION_PUBLISHED,
    event::QUIZ_ANSWER_RESULT,
    event::NOTIFICATION_RECEIVED,
    event::PRESENCE_USER_ONLINE,
    event::PRESENCE_USER_OFFLINE,
    event::ERROR,
    event::TOKEN_EXPIRED,
];

/// The metric names (templates: `${var}` matches any text) a scenario
/// can record.
#[derive(Debug, Clone)]
pub struct KnownMetrics {
    names: Vec<String>,
}

impl KnownMetrics {
    /// Everything `groups` can record, untagged.
    fn untagged<'g>(groups: impl Iterator<Item = &'g Group>) -> Vec<String> {
        let mut names: Vec<String> = [
            names::CONNECT,
            names::CONNECT_TO_SUBSCRIBED,
            names::RECONNECT,
            names::RECONNECTS,
            names::CONNECT_FAILURES,
            names::VUS_STARTED,
            names::VUS_FINISHED,
            names::ARRIVALS_DROPPED,
            names::TOKEN_REFRESHES,
            names::TOKEN_REFRESH_FAILURES,
            names::TOKEN_REFRESH,
            names::ERRORS_TOTAL,
            names::GENERATOR_TIMER_LAG,
            names::GENERATOR_START_LAG,
            names::GENERATOR_RUN_WAIT,
            names::GENERATOR_CPU_MS,
        ]
        .map(String::from)
        .into();
        names.extend(
            names::DISCONNECT_REASONS
                .iter()
                .map(|r| names::disconnects(r)),
        );
        names.extend(code::ALL.iter().map(|c| names::error(c)));
        names.extend(ErrorCode::ALL.iter().map(|c| names::error(c.as_str())));
        names.push(names::error("http_${status}"));
        let mut received: Vec<String> = SERVER_EVENTS.iter().map(|e| e.to_string()).collect();
        for g in groups {
            collect(&g.steps, &mut names, &mut received);
        }
        for e in received {
            names.push(names::received(&e));
            names.push(names::fanout(&e));
        }
        names
    }

    /// Everything `groups` can record: every name, and for each tag its
    /// `[KEY=VALUE]` copy of every name the groups with that tag record.
    pub fn of(groups: &[Group]) -> KnownMetrics {
        let mut names = Self::untagged(groups.iter());
        let tags: std::collections::BTreeSet<(&String, &String)> =
            groups.iter().flat_map(|g| g.tags.iter()).collect();
        for (k, v) in tags {
            let tagged = groups.iter().filter(|g| g.tags.get(k) == Some(v));
            names.extend(
                Self::untagged(tagged)
                    .iter()
                    .map(|n| names::tagged(k, v, n)),
            );
        }
        names.sort_unstable();
        names.dedup();
        KnownMetrics { names }
    }

    /// Every name, sorted (templates: `${var}` stands for any text).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Ok when the run can record `metric`; else the message, with a
    /// did-you-mean when a known name is close.
    pub fn check(&self, metric: &str) -> Result<(), String> {
        if self.names.iter().any(|n| matches_template(n, metric)) {
            return Ok(());
        }
        let candidates: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let hint = did_you_mean(metric, &candidates);
        if let Some(c) = names::error_code(metric)
            && is_capital_code(c)
            && hint.is_empty()
        {
            return Ok(());
        }
        Err(format!(
            "unknown metric `{metric}`{hint}: this scenario records {}",
            self.summary()
        ))
    }

    /// The names for a message: the fixed ones and the scenario's own,
    /// without the protocol's long lists.
    fn summary(&self) -> String {
        let shown: Vec<&str> = self
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                !(names::split_tag(n).is_some()
                    || n.starts_with(names::DISCONNECTS)
                    || n.starts_with(names::ERRORS)
                    || ((n.starts_with(names::RECEIVED) || n.starts_with(names::FANOUT))
                        && SERVER_EVENTS.iter().any(|e| n.ends_with(e))))
            })
            .collect();
        format!(
            "{}, errors.<CODE>, disconnects.<REASON>, received.<EVENT> and fanout.<EVENT>{} (see scenarios/README.md)",
            shown.join(", "),
            if self.names.iter().any(|n| names::split_tag(n).is_some()) {
                ", each also as [KEY=VALUE]NAME for the tags of the groups that record it"
            } else {
                ""
            }
        )
    }
}

/// Which name a received event is recorded under (`received.<name>`,
/// `fanout.<name>`): the `metric` of the first `wait_for` or stamped `http`
/// step whose event (a template: `${var}` matches any text) it matches,
/// else its own. So `fanout.lg1765000000v3:tick` of one run and
/// `fanout.lg1765000999v3:tick` of the next are both `fanout.stage:tick`.
///
/// [`EventMetrics::name_of`] runs for every event received, in the
/// connection task: the templates are split once, and it does not
/// allocate.
#[derive(Debug, Clone, Default)]
pub struct EventMetrics {
    /// (event template's literal pieces, metric), in file order.
    aliases: Vec<(Vec<String>, String)>,
}

impl EventMetrics {
    pub fn of(groups: &[Group]) -> EventMetrics {
        fn walk(steps: &[Step], out: &mut Vec<(String, String)>) {
            for s in steps {
                match s {
                    Step::WaitFor {
                        event,
                        metric: Some(m),
                        ..
                    } => out.push((event.clone(), m.clone())),
                    Step::Http {
                        with,
                        stamp: true,
                        metric: Some(m),
                        ..
                    } => {
                        if let Some(Value::String(e)) = with.get("event") {
                            out.push((e.clone(), m.clone()));
                        }
                    }
                    Step::Loop { steps, .. } => walk(steps, out),
                    Step::Choice { options } => {
                        for (_, steps) in options {
                            walk(steps, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut aliases = Vec::new();
        for g in groups {
            walk(&g.steps, &mut aliases);
        }
        let aliases = aliases
            .into_iter()
            .map(|(t, m)| {
                let pieces = template_pieces(&t).into_iter().map(String::from);
                (pieces.collect(), m)
            })
            .collect();
        EventMetrics { aliases }
    }

    /// The name `event` is recorded under.
    pub fn name_of<'a>(&'a self, event: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(pieces, _)| matches_pieces(pieces, event))
            .map_or(event, |(_, m)| m.as_str())
    }
}

/// `RATE_LIMIT_EXCEEDED`: the form of the protocol's and REST codes.
fn is_capital_code(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
}

fn collect(steps: &[Step], names: &mut Vec<String>, received: &mut Vec<String>) {
    for s in steps {
        match s {
            Step::Subscribe { .. } => {
                names.push(names::sent(event::ROOM_SUBSCRIBE));
                names.push(names::ack(event::ROOM_SUBSCRIBE));
            }
            Step::Emit { event, metric, .. } => {
                names.push(names::sent(metric.as_deref().unwrap_or(event)));
            }
            Step::EmitAck { event, metric, .. } => {
                names.push(names::sent(event));
                names.push(metric.clone().unwrap_or_else(|| names::ack(event)));
            }
            Step::WaitFor { event, metric, .. } => {
                received.push(metric.clone().unwrap_or_else(|| event.clone()));
            }
            Step::Http {
                action,
                with,
                stamp,
                metric,
                ..
            } => {
                names.push(names::http(action));
                if *stamp && let Some(Value::String(e)) = with.get("event") {
                    received.push(metric.clone().unwrap_or_else(|| e.clone()));
                }
            }
            Step::Loop { steps, .. } => collect(steps, names, received),
            Step::Choice { options } => {
                for (_, steps) in options {
                    collect(steps, names, received);
                }
            }
            Step::Connect { .. }
            | Step::Think(_)
            | Step::Disconnect
            | Step::Reconnect { .. }
            | Step::Set { .. } => {}
        }
    }
}

/// Whether `name` is `template` with each `${...}` standing for any text.
fn matches_template(template: &str, name: &str) -> bool {
    matches_pieces(&template_pieces(template), name)
}

/// The literal text around the `${...}` of a template (one piece when it
/// has none).
fn template_pieces(template: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("${") {
        pieces.push(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => rest = &rest[open + close + 1..],
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    pieces.push(rest);
    pieces
}

/// Whether `name` is made of `pieces` ([`template_pieces`]) with any text
/// between them.
fn matches_pieces<S: AsRef<str>>(pieces: &[S], name: &str) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.len() == 1 && pieces[0].as_ref() == name;
    };
    let Some(mut tail) = name.strip_prefix(first.as_ref()) else {
        return false;
    };
    for p in middle {
        let p = p.as_ref();
        match tail.find(p) {
            Some(i) => tail = &tail[i + p.len()..],
            None => return false,
        }
    }
    let last = last.as_ref();
    tail.len() >= last.len() && tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_any_text_in_place_of_a_variable() {
        assert!(matches_template("fanout.${app}:tick", "fanout.bench:tick"));
        assert!(matches_template("fanout.${app}:tick", "fanout.lg1v2:tick"));
        assert!(!matches_template("fanout.${app}:tick", "fanout.bench:tock"));
        assert!(matches_template("a${x}b${y}c", "aXXbYYc"));
        assert!(!matches_template("a${x}b${y}c", "aXXYYc"));
        assert!(matches_template("connect", "connect"));
        assert!(!matches_template("connect", "connects"));
        assert!(matches_template("errors.http_${status}", "errors.http_503"));
    }
}
