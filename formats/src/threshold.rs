//! One statistic vocabulary ([`Stat`]) and one grammar for the two kinds
//! of limits the tools put on a run report's metrics:
//!
//! * a pass/fail [`Threshold`], `METRIC.STAT OP VALUE` (loadgen's
//!   `--threshold` and a scenario's `thresholds`, re-evaluated by
//!   `reports merge`), e.g. `ack.quiz:answer_submit.p99 < 100ms`;
//! * a comparison [`ChangeRule`], `[METRIC.]STAT CHANGE` (`reports
//!   compare`), e.g. `p99 +10%`: how much a stat may move between a
//!   baseline and a new run.
//!
//! Both read `METRIC.STAT` the same way ([`parse_selector`]): the STAT is
//! the longest known stat name the text ends with, after a dot, so metric
//! names may hold dots and colons (`ack.room:subscribe.p99.9`). STAT names:
//! `count`, `rate` (per second of load), `min`, `max`, `mean`, `p50`,
//! `p90`, `p95`, `p99`, `p99.9` (also written `p999`), `p99.99` (also
//! `p9999`), `error-rate` (errors per operation, in percent; run-wide).
//! Stats print in their canonical form ([`Stat::name`]). Values carry
//! their unit: `us` (or `µs`), `ms`, `s` on latencies (required), `%` on a
//! `count`, `/s` on a `rate` (optional).

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsSnapshot;
use crate::names;

/// A statistic of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    Count,
    Rate,
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    P9999,
    Max,
    ErrorRate,
}

/// What a stat measures (its unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// Microseconds.
    Latency,
    /// Per second of load.
    Rate,
    /// A number of samples.
    Count,
    /// Percent of operations.
    ErrorRate,
}

impl Stat {
    /// Every stat, in display order.
    pub const ALL: [Stat; 12] = [
        Stat::Count,
        Stat::Rate,
        Stat::Min,
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::P9999,
        Stat::Max,
        Stat::ErrorRate,
    ];

    /// The canonical name (`p99.9`).
    pub fn name(self) -> &'static str {
        self.spellings()[0]
    }

    /// Every way to write the stat, the canonical one first.
    fn spellings(self) -> &'static [&'static str] {
        match self {
            Stat::Count => &["count"],
            Stat::Rate => &["rate"],
            Stat::Min => &["min"],
            Stat::Mean => &["mean"],
            Stat::P50 => &["p50"],
            Stat::P90 => &["p90"],
            Stat::P95 => &["p95"],
            Stat::P99 => &["p99"],
            Stat::P999 => &["p99.9", "p999"],
            Stat::P9999 => &["p99.99", "p9999"],
            Stat::Max => &["max"],
            Stat::ErrorRate => &["error-rate"],
        }
    }

    pub fn kind(self) -> StatKind {
        match self {
            Stat::Count => StatKind::Count,
            Stat::Rate => StatKind::Rate,
            Stat::ErrorRate => StatKind::ErrorRate,
            _ => StatKind::Latency,
        }
    }

    /// Whether the stat is a latency (µs).
    pub fn is_time(self) -> bool {
        self.kind() == StatKind::Latency
    }

    /// The quantile of a percentile stat.
    pub fn quantile(self) -> Option<f64> {
        Some(match self {
            Stat::P50 => 0.50,
            Stat::P90 => 0.90,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
            Stat::P999 => 0.999,
            Stat::P9999 => 0.9999,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The stat names for messages: `count, rate, …, p99.9 (or p999), …`.
fn vocabulary() -> String {
    Stat::ALL
        .iter()
        .map(|s| match s.spellings() {
            [one] => (*one).to_owned(),
            [name, rest @ ..] => format!("{name} (or {})", rest.join(", ")),
            [] => unreachable!("every stat has a name"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `METRIC.STAT` or a bare `STAT`: the longest stat spelling the
/// text ends with, after a dot (the metric may be empty: the caller says
/// whether that is allowed). The error is the message `unknown STAT `…`:
/// expected …`.
pub fn parse_selector(selector: &str) -> Result<(Option<&str>, Stat), String> {
    let mut spellings: Vec<(&str, Stat)> = Stat::ALL
        .iter()
        .flat_map(|s| s.spellings().iter().map(move |a| (*a, *s)))
        .collect();
    spellings.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
    if let Some((_, stat)) = spellings.iter().find(|(a, _)| selector == *a) {
        return Ok((None, *stat));
    }
    for (spelling, stat) in spellings {
        if let Some(metric) = selector
            .strip_suffix(spelling)
            .and_then(|m| m.strip_suffix('.'))
        {
            return Ok((Some(metric), stat));
        }
    }
    let stat = selector.rsplit('.').next().unwrap_or(selector);
    Err(format!("unknown STAT `{stat}`: expected {}", vocabulary()))
}

/// µs per unit of a time unit (`us`, `µs`, `ms`, `s`).
fn time_unit(unit: &str) -> Option<f64> {
    match unit {
        "us" | "µs" => Some(1.0),
        "ms" => Some(1e3),
        "s" => Some(1e6),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Pass/fail thresholds
// ---------------------------------------------------------------------------

/// A threshold or rule that does not parse; names the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold `{expr}`: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// A pass/fail condition on the final metrics: `METRIC.STAT OP VALUE`.
///
/// * `METRIC`: a histogram name (`ack.quiz:answer_submit`), a counter
///   name (`errors.timeout`) or the aggregate `errors` (every
///   `errors.<CODE>` counter plus `connect_failures`, as in the error
///   rate). Histograms take every stat but `error-rate`; counters `count`
///   and `rate`. A metric that was never recorded has count 0 and rate 0;
///   its latency stats have no value and fail. Whether the name is one the
///   run can record is for the caller to check (loadgen checks it against
///   the scenario).
/// * `OP`: `<`, `<=`, `>`, `>=`.
/// * `VALUE`: a number and its unit: a time unit (`us`, `ms`, `s`) for
///   latency stats, required; for `count` no unit or `%`: the count as a
///   percentage of the virtual users started (`vus_started`), e.g.
///   `connect_failures.count < 1%`; for `rate` no unit or `/s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    pub metric: String,
    pub stat: Stat,
    pub op: Op,
    /// The limit: µs for latency stats, a percentage when `percent`.
    pub value: f64,
    /// `count` compared as a percentage of `vus_started`.
    pub percent: bool,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// The expression as written.
    pub expr: String,
    /// The measured value (µs for latencies, a count, or per second for
    /// rates); absent when the metric has no samples.
    pub actual: Option<f64>,
    pub passed: bool,
}

impl Threshold {
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        let err = |reason: &str| ThresholdError {
            expr: expr.to_owned(),
            reason: reason.to_owned(),
        };
        let (at, op, op_len) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|tok| expr.find(tok).map(|i| (i, *tok, tok.len())))
            .ok_or_else(|| err("expected `METRIC.STAT OP VALUE` with OP one of < <= > >="))?;
        let op = match op {
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            _ => Op::Gt,
        };
        let left = expr[..at].trim();
        let right = expr[at + op_len..].trim();
        if right.starts_with(['<', '>', '=']) {
            return Err(err("OP must be one of < <= > >="));
        }
        if !left.contains('.') {
            return Err(err(
                "expected METRIC.STAT before the operator, e.g. `connect.p99`",
            ));
        }
        let (metric, stat) = parse_selector(left).map_err(|e| err(&e))?;
        let metric = metric.unwrap_or_default();
        if metric.is_empty() || metric.contains(char::is_whitespace) {
            return Err(err("the metric name is empty or contains spaces"));
        }
        if stat == Stat::ErrorRate {
            return Err(err(
                "error-rate is run-wide and for comparisons (`reports compare`); \
                 limit `errors.<CODE>.count` or `connect_failures.count` instead",
            ));
        }
        let split = right
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
            .unwrap_or(right.len());
        // `e` may start no unit we know, so it belongs to the number.
        let (number, unit) = right.split_at(split);
        let number: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                err(&format!(
                    "VALUE `{right}` is not a number with an optional unit"
                ))
            })?;
        let unit = unit.trim();
        let mut percent = false;
        let value = match (unit, stat.is_time()) {
            // A bare number once meant µs: `connect.p99 < 250` read as
            // 250 µs where 250 ms was meant.
            ("", true) => {
                return Err(err(&format!(
                    "VALUE `{right}` needs a time unit: us, ms or s (e.g. `{number}ms`)"
                )));
            }
            (unit, true) if time_unit(unit).is_some() => number * time_unit(unit).expect("checked"),
            ("", false) => number,
            ("/s", false) if stat == Stat::Rate => number,
            ("%", false) if stat == Stat::Count => {
                percent = true;
                number
            }
            ("%", _) => return Err(err("`%` applies to `count` only (percent of vus_started)")),
            (unit, false) if time_unit(unit).is_some() => {
                return Err(err(
                    "a time unit needs a latency STAT (min, max, mean, pNN)",
                ));
            }
            _ => {
                return Err(err(&format!(
                    "unknown unit `{unit}`: expected us, ms or s (latency), % (count) or /s (rate)"
                )));
            }
        };
        Ok(Threshold {
            expr: expr.to_owned(),
            metric: metric.to_owned(),
            stat,
            op,
            value,
            percent,
        })
    }

    /// The measured value of the threshold's stat; `None` when a latency
    /// stat has no samples (or a percentage has no virtual users).
    pub fn actual(&self, snap: &MetricsSnapshot, duration_secs: f64) -> Option<f64> {
        if let Some((tag, metric)) = names::split_tag(&self.metric) {
            let own = Threshold {
                metric: metric.to_owned(),
                ..self.clone()
            };
            return own.actual(&snap.tag_view(tag), duration_secs);
        }
        let hist = snap.histograms.get(&self.metric).filter(|h| !h.is_empty());
        let count = || -> f64 {
            match snap.histograms.get(&self.metric) {
                Some(h) => h.len() as f64,
                None if self.metric == names::ERRORS_TOTAL => snap.errors() as f64,
                None => snap.counter(&self.metric) as f64,
            }
        };
        match self.stat {
            Stat::Count if self.percent => {
                let vus = snap.counter(names::VUS_STARTED);
                (vus > 0).then(|| count() * 100.0 / vus as f64)
            }
            Stat::Count => Some(count()),
            Stat::Rate => Some(count() / duration_secs.max(1e-3)),
            Stat::Min => hist.map(|h| h.min() as f64),
            Stat::Max => hist.map(|h| h.max() as f64),
            Stat::Mean => hist.map(|h| h.mean()),
            Stat::ErrorRate => None,
            q => hist.map(|h| h.value_at_quantile(q.quantile().expect("a percentile")) as f64),
        }
    }

    /// Evaluates against the final metrics of a load that lasted
    /// `duration_secs`.
    pub fn evaluate(&self, snap: &MetricsSnapshot, duration_secs: f64) -> ThresholdResult {
        let actual = self.actual(snap, duration_secs);
        ThresholdResult {
            expr: self.expr.clone(),
            actual,
            passed: actual.is_some_and(|a| self.op.holds(a, self.value)),
        }
    }
}

/// Parses every expression, failing on the first bad one.
pub fn parse_all<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Threshold>, ThresholdError> {
    exprs.iter().map(|e| Threshold::parse(e.as_ref())).collect()
}

// ---------------------------------------------------------------------------
// Comparison rules
// ---------------------------------------------------------------------------

/// How much a stat may move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Percent of the baseline's value.
    Percent(f64),
    /// Microseconds (latency stats).
    Micros(f64),
    /// Per second (`rate`).
    PerSec(f64),
    /// Percentage points (`error-rate`).
    Points(f64),
}

/// How much a stat may move between a baseline and a new run before it is
/// called worse: `[METRIC.]STAT CHANGE`, e.g. `p99 +10%`,
/// `ack.room:subscribe.p99 +5ms`, `error-rate +0.1pp`, `rate -10%`,
/// `p50 off`.
///
/// * `METRIC`: a histogram name; without it the rule applies to every
///   histogram. `error-rate` is run-wide and takes no metric; `count` is
///   shown, never judged.
/// * `CHANGE`: an optional sign, a number and a unit. The sign is the bad
///   direction: `+` an increase is worse, `-` a decrease is worse; without
///   it, increases are worse, except for `rate`. Units: `%` (relative to
///   the baseline), a time unit for latencies, `/s` for `rate`, `pp`
///   (percentage points) for `error-rate`. `off` removes the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRule {
    /// The rule as written.
    pub text: String,
    /// The histogram it is limited to; `None`: every one.
    pub metric: Option<String>,
    pub stat: Stat,
    /// `true`: an increase is the bad direction.
    pub up_is_bad: bool,
    /// `None`: `off`.
    pub limit: Option<Limit>,
}

const RULE_GRAMMAR: &str = "expected `[METRIC.]STAT CHANGE`, e.g. `p99 +10%`, `ack.room:subscribe.p99 +5ms`, `error-rate +0.1pp`, `rate -10%`, `p50 off`";

/// Whether an increase is worse when a rule gives no sign.
fn up_is_bad_by_default(stat: Stat) -> bool {
    stat != Stat::Rate
}

fn rule_units(stat: Stat) -> &'static str {
    match stat.kind() {
        StatKind::Latency => "%, us, ms or s",
        StatKind::Rate => "% or /s",
        StatKind::ErrorRate => "pp (percentage points)",
        StatKind::Count => "none",
    }
}

impl ChangeRule {
    pub fn parse(text: &str) -> Result<ChangeRule, ThresholdError> {
        let err = |reason: String| ThresholdError {
            expr: text.to_owned(),
            reason,
        };
        let mut words = text.split_whitespace();
        let (Some(selector), Some(change), None) = (words.next(), words.next(), words.next())
        else {
            return Err(err(RULE_GRAMMAR.to_owned()));
        };
        let (metric, stat) =
            parse_selector(selector).map_err(|e| err(format!("{e} ({RULE_GRAMMAR})")))?;
        if metric == Some("") {
            return Err(err(format!("the metric name is empty ({RULE_GRAMMAR})")));
        }
        if stat == Stat::ErrorRate && metric.is_some() {
            return Err(err(
                "error-rate is run-wide: write `error-rate +0.1pp` without a metric".to_owned(),
            ));
        }
        if stat == Stat::Count {
            return Err(err(
                "count is shown, never judged: limit `rate` instead".to_owned()
            ));
        }
        let metric = metric.map(str::to_owned);
        if change == "off" {
            return Ok(ChangeRule {
                text: text.to_owned(),
                metric,
                stat,
                up_is_bad: up_is_bad_by_default(stat),
                limit: None,
            });
        }
        let (up_is_bad, rest) = match change.as_bytes().first() {
            Some(b'+') => (true, &change[1..]),
            Some(b'-') => (false, &change[1..]),
            _ => (up_is_bad_by_default(stat), change),
        };
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, unit) = rest.split_at(split);
        let number: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| err(format!("CHANGE `{change}` is not a number with a unit")))?;
        let limit = match (stat.kind(), unit) {
            (_, "") => {
                return Err(err(format!(
                    "CHANGE `{change}` needs a unit: {}",
                    rule_units(stat)
                )));
            }
            (StatKind::ErrorRate, "pp") => Limit::Points(number),
            (StatKind::ErrorRate, "%") => {
                return Err(err(
                    "error-rate changes are in percentage points: `error-rate +0.1pp`".to_owned(),
                ));
            }
            (StatKind::Latency | StatKind::Rate, "%") => Limit::Percent(number),
            (StatKind::Latency, unit) if time_unit(unit).is_some() => {
                Limit::Micros(number * time_unit(unit).expect("checked"))
            }
            (StatKind::Rate, "/s") => Limit::PerSec(number),
            (_, unit) => {
                return Err(err(format!(
                    "unit `{unit}` does not fit {}: {}",
                    stat.name(),
                    rule_units(stat)
                )));
            }
        };
        Ok(ChangeRule {
            text: text.to_owned(),
            metric,
            stat,
            up_is_bad,
            limit: Some(limit),
        })
    }

    /// The rule in canonical form (`p99 +10%`, `x.p99.9 +1.00s`).
    pub fn canonical(&self) -> String {
        let selector = match &self.metric {
            Some(m) => format!("{m}.{}", self.stat.name()),
            None => self.stat.name().to_owned(),
        };
        let sign = if self.up_is_bad { "+" } else { "-" };
        let change = match self.limit {
            None => "off".to_owned(),
            Some(Limit::Percent(v)) => format!("{sign}{v}%"),
            Some(Limit::Micros(v)) => format!("{sign}{}", crate::report::fmt_us_f(v)),
            Some(Limit::PerSec(v)) => format!("{sign}{v}/s"),
            Some(Limit::Points(v)) => format!("{sign}{v}pp"),
        };
        format!("{selector} {change}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    #[test]
    fn one_vocabulary_both_spellings_one_canonical_form() {
        for (text, stat) in [
            ("p999", Stat::P999),
            ("p99.9", Stat::P999),
            ("p9999", Stat::P9999),
            ("p99.99", Stat::P9999),
            ("error-rate", Stat::ErrorRate),
            ("count", Stat::Count),
            ("min", Stat::Min),
        ] {
            assert_eq!(parse_selector(text), Ok((None, stat)), "{text}");
        }
        assert_eq!(
            parse_selector("ack.room:subscribe.p99.9"),
            Ok((Some("ack.room:subscribe"), Stat::P999))
        );
        assert_eq!(
            parse_selector("fanout.bench:tick.p999"),
            Ok((Some("fanout.bench:tick"), Stat::P999))
        );
        assert_eq!(
            parse_selector("sent.x.rate"),
            Ok((Some("sent.x"), Stat::Rate))
        );
        assert_eq!(parse_selector(".p99"), Ok((Some(""), Stat::P99)));
        let e = parse_selector("connect.p98").unwrap_err();
        assert!(
            e.starts_with("unknown STAT `p98`: expected count, rate, min"),
            "{e}"
        );
        assert!(e.contains("p99.9 (or p999)"), "{e}");
        assert_eq!(Stat::P999.to_string(), "p99.9");
        assert_eq!(
            Threshold::parse("x.p999 < 1s").unwrap().stat,
            ChangeRule::parse("x.p99.9 +1s").unwrap().stat
        );
    }

    /// The threshold grammar, one row per input: what it parses to, or
    /// the part of the error message it must show.
    #[test]
    fn threshold_grammar_table() {
        type Row = (
            &'static str,
            Result<(&'static str, Stat, Op, f64, bool), &'static str>,
        );
        let rows: &[Row] = &[
            (
                "ack.quiz:answer_submit.p99 < 100ms",
                Ok((
                    "ack.quiz:answer_submit",
                    Stat::P99,
                    Op::Lt,
                    100_000.0,
                    false,
                )),
            ),
            (
                "errors.timeout.count<=0",
                Ok(("errors.timeout", Stat::Count, Op::Le, 0.0, false)),
            ),
            (
                "connect.p999 >= 1.5s",
                Ok(("connect", Stat::P999, Op::Ge, 1_500_000.0, false)),
            ),
            (
                "connect.p99.9 >= 1.5s",
                Ok(("connect", Stat::P999, Op::Ge, 1_500_000.0, false)),
            ),
            (
                "connect.p99.99 < 2s",
                Ok(("connect", Stat::P9999, Op::Lt, 2_000_000.0, false)),
            ),
            (
                "connect.max > 250",
                Err("VALUE `250` needs a time unit: us, ms or s (e.g. `250ms`)"),
            ),
            ("connect.p99 < 0", Err("needs a time unit")),
            (
                "errors.count < 1",
                Ok(("errors", Stat::Count, Op::Lt, 1.0, false)),
            ),
            (
                "errors.rate < 0.5/s",
                Ok(("errors", Stat::Rate, Op::Lt, 0.5, false)),
            ),
            ("errors.count < 1/s", Err("unknown unit `/s`")),
            (
                "connect.min > 250µs",
                Ok(("connect", Stat::Min, Op::Gt, 250.0, false)),
            ),
            (
                "connect_failures.count < 1%",
                Ok(("connect_failures", Stat::Count, Op::Lt, 1.0, true)),
            ),
            (
                "sent.x.rate >= 9.5",
                Ok(("sent.x", Stat::Rate, Op::Ge, 9.5, false)),
            ),
            ("connect.p99", Err("expected `METRIC.STAT OP VALUE`")),
            (
                "connect < 5ms",
                Err("expected METRIC.STAT before the operator"),
            ),
            ("connect.p98 < 5ms", Err("unknown STAT `p98`")),
            ("connect.p99 < fast", Err("is not a number")),
            ("connect.p99 < 5 parsecs", Err("unknown unit `parsecs`")),
            (
                "connect.count < 5ms",
                Err("a time unit needs a latency STAT"),
            ),
            ("connect.p99 < 5%", Err("`%` applies to `count` only")),
            (
                "connect_failures.rate < 1%",
                Err("`%` applies to `count` only"),
            ),
            ("connect.p99 <= = 5", Err("OP must be one of")),
            (".p99 < 5", Err("the metric name is empty")),
            ("x.error-rate < 1", Err("error-rate is run-wide")),
        ];
        for (text, want) in rows {
            match (Threshold::parse(text), want) {
                (Ok(t), Ok((metric, stat, op, value, percent))) => assert_eq!(
                    (t.metric.as_str(), t.stat, t.op, t.value, t.percent),
                    (*metric, *stat, *op, *value, *percent),
                    "{text}"
                ),
                (Err(e), Err(part)) => {
                    let e = e.to_string();
                    assert!(e.contains(text) && e.contains(part), "{text}: {e}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// The comparison-rule grammar, one row per input.
    #[test]
    fn change_rule_grammar_table() {
        type Row = (
            &'static str,
            Result<(Option<&'static str>, Stat, bool, Option<Limit>), &'static str>,
        );
        let rows: &[Row] = &[
            (
                "p99 +10%",
                Ok((None, Stat::P99, true, Some(Limit::Percent(10.0)))),
            ),
            (
                "ack.room:subscribe.p99.9 5ms",
                Ok((
                    Some("ack.room:subscribe"),
                    Stat::P999,
                    true,
                    Some(Limit::Micros(5000.0)),
                )),
            ),
            (
                "x.p999 +1s",
                Ok((Some("x"), Stat::P999, true, Some(Limit::Micros(1e6)))),
            ),
            (
                "rate 10%",
                Ok((None, Stat::Rate, false, Some(Limit::Percent(10.0)))),
            ),
            (
                "rate -5/s",
                Ok((None, Stat::Rate, false, Some(Limit::PerSec(5.0)))),
            ),
            (
                "error-rate +0.1pp",
                Ok((None, Stat::ErrorRate, true, Some(Limit::Points(0.1)))),
            ),
            (
                "connect.p50 off",
                Ok((Some("connect"), Stat::P50, true, None)),
            ),
            (
                "min +1ms",
                Ok((None, Stat::Min, true, Some(Limit::Micros(1000.0)))),
            ),
            ("p99", Err("expected `[METRIC.]STAT CHANGE`")),
            ("p99 +10% extra", Err("expected `[METRIC.]STAT CHANGE`")),
            ("p98 +10%", Err("unknown STAT `p98`")),
            ("p99 +10", Err("needs a unit")),
            ("p99 +10pp", Err("does not fit p99")),
            ("error-rate +1%", Err("percentage points")),
            ("x.error-rate +1pp", Err("run-wide")),
            ("rate +1ms", Err("does not fit rate")),
            ("p99 +fast", Err("is not a number")),
            ("count +10%", Err("never judged")),
            (".p99 +1%", Err("the metric name is empty")),
        ];
        for (text, want) in rows {
            match (ChangeRule::parse(text), want) {
                (Ok(r), Ok((metric, stat, up, limit))) => assert_eq!(
                    (r.metric.as_deref(), r.stat, r.up_is_bad, r.limit),
                    (*metric, *stat, *up, *limit),
                    "{text}"
                ),
                (Err(e), Err(part)) => {
                    let e = e.to_string();
                    assert!(e.contains(text) && e.contains(part), "{text}: {e}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            ChangeRule::parse("x.p999 +1s").unwrap().canonical(),
            "x.p99.9 +1.00s"
        );
        assert_eq!(
            ChangeRule::parse("rate 10%").unwrap().canonical(),
            "rate -10%"
        );
    }

    #[test]
    fn evaluates() {
        let mut snap = MetricsSnapshot::default();
        let mut h = new_histogram();
        for v in 1..=100 {
            h.record(v * 1000).unwrap();
        }
        snap.histograms.insert("ack.a".into(), h);
        snap.counters.insert("vus_started".into(), 200);
        snap.counters.insert("connect_failures".into(), 1);
        let check = |e: &str| Threshold::parse(e).unwrap().evaluate(&snap, 10.0);
        assert!(check("ack.a.p99 < 100ms").passed);
        assert!(!check("ack.a.p50 < 10ms").passed);
        assert!(check("ack.a.count >= 100").passed);
        assert_eq!(check("ack.a.rate > 9").actual, Some(10.0));
        assert_eq!(check("ack.a.min > 0us").actual, Some(1000.0));
        assert!(check("connect_failures.count < 1%").passed);
        assert_eq!(check("connect_failures.count < 1%").actual, Some(0.5));
        assert!(check("errors.timeout.count < 1").passed);
        // The aggregate: every error code plus the connect failures.
        let mut snap = snap.clone();
        snap.counters.insert("errors.timeout".into(), 2);
        snap.counters.insert("errors.ROOM_NOT_FOUND".into(), 3);
        let check = |e: &str| Threshold::parse(e).unwrap().evaluate(&snap, 10.0);
        assert_eq!(check("errors.count < 1").actual, Some(6.0));
        assert!(!check("errors.count < 1").passed);
        assert_eq!(check("errors.rate < 1/s").actual, Some(0.6));
        // A tag's own metrics and aggregates ([KEY=VALUE]NAME copies).
        let mut tagged = snap.clone();
        tagged.counters.insert("[region=eu]vus_started".into(), 10);
        tagged
            .counters
            .insert("[region=eu]errors.timeout".into(), 1);
        tagged
            .counters
            .insert("[region=eu]connect_failures".into(), 1);
        let check = |e: &str| Threshold::parse(e).unwrap().evaluate(&tagged, 10.0);
        assert_eq!(check("[region=eu]errors.count < 1").actual, Some(2.0));
        assert_eq!(
            check("errors.count < 1").actual,
            Some(6.0),
            "copies not summed"
        );
        assert_eq!(
            check("[region=eu]connect_failures.count < 5%").actual,
            Some(10.0)
        );
        assert_eq!(
            check("[region=eu]ack.a.p99 < 1s").actual,
            None,
            "no samples"
        );
        let missing = check("ack.b.p99 < 1s");
        assert_eq!((missing.actual, missing.passed), (None, false));
    }
}
