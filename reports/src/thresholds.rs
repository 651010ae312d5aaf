//! Comparison thresholds: how much a statistic may change between the
//! baseline and the new run before the metric is called worse (or better).
//!
//! Grammar: `[METRIC.]STAT CHANGE`, e.g. `p99 +10%`, `ack.room:subscribe.p99 +5ms`,
//! `error-rate +0.1pp`, `rate -10%`, `p50 off`.
//!
//! * `METRIC`: a histogram name; without it the rule applies to every
//!   histogram. `error-rate` is run-wide and takes no metric.
//! * `STAT`: `p50`, `p90`, `p95`, `p99`, `p99.9` (or `p999`), `p99.99` (or
//!   `p9999`), `max`, `mean`, `rate` (samples per second of load),
//!   `error-rate` (errors per operation, in percent).
//! * `CHANGE`: an optional sign, a number and a unit. The sign is the bad
//!   direction: `+` an increase is worse, `-` a decrease is worse; without
//!   it, increases are worse, except for `rate`. Units: `%` (relative to the
//!   baseline), `us`/`µs`, `ms`, `s` for latencies, `/s` for `rate`, `pp`
//!   (percentage points) for `error-rate`. `off` removes the rule.
//!
//! A stat is *worse* when it moved in the bad direction by more than every
//! limit that applies to it (so `p99 +10%` and `p99 +1ms` together mean "by
//! 10 % and at least 1 ms"), *better* when it moved the other way by as
//! much, otherwise *same*.
//!
//! Rules come in three layers: the defaults ([`DEFAULT_THRESHOLDS`]), a
//! TOML file, then flags. For a metric and a stat, rules naming the metric
//! win over rules for every metric; among those, the highest layer that
//! has any wins (all its rules apply).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// Thresholds used when neither file nor flag says otherwise.
pub const DEFAULT_THRESHOLDS: &[&str] = &["p50 +10%", "p90 +10%", "p99 +10%", "error-rate +0.1pp"];

/// Minimum samples per metric (in each run) before it is judged.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

/// A statistic that can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    Count,
    Rate,
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
    pub const ALL: [Stat; 11] = [
        Stat::Count,
        Stat::Rate,
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

    /// What a histogram's comparison always shows.
    pub const SHOWN: [Stat; 7] = [
        Stat::Count,
        Stat::Rate,
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Rate => "rate",
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p99.9",
            Stat::P9999 => "p99.99",
            Stat::Max => "max",
            Stat::ErrorRate => "error-rate",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Stat::Count => &[],
            Stat::Rate => &["rate"],
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

    /// Whether an increase is worse when the rule gives no sign.
    fn up_is_bad_by_default(self) -> bool {
        self != Stat::Rate
    }
}

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

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
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

/// A rule that does not parse; names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold `{text}`: {reason}")]
pub struct RuleError {
    pub text: String,
    pub reason: String,
}

const GRAMMAR: &str = "expected `[METRIC.]STAT CHANGE`, e.g. `p99 +10%`, `ack.room:subscribe.p99 +5ms`, `error-rate +0.1pp`, `rate -10%`, `p50 off`";

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let err = |reason: String| RuleError {
            text: text.to_owned(),
            reason,
        };
        let mut words = text.split_whitespace();
        let (Some(selector), Some(change), None) = (words.next(), words.next(), words.next())
        else {
            return Err(err(GRAMMAR.to_owned()));
        };
        let (metric, stat) = parse_selector(selector).ok_or_else(|| {
            err(format!(
                "unknown STAT in `{selector}`: expected p50, p90, p95, p99, p99.9, p99.99, max, mean, rate or error-rate ({GRAMMAR})"
            ))
        })?;
        if stat == Stat::ErrorRate && metric.is_some() {
            return Err(err(
                "error-rate is run-wide: write `error-rate +0.1pp` without a metric".to_owned(),
            ));
        }
        if change == "off" {
            return Ok(Rule {
                text: text.to_owned(),
                metric,
                stat,
                up_is_bad: stat.up_is_bad_by_default(),
                limit: None,
            });
        }
        let (up_is_bad, rest) = match change.as_bytes().first() {
            Some(b'+') => (true, &change[1..]),
            Some(b'-') => (false, &change[1..]),
            _ => (stat.up_is_bad_by_default(), change),
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
                    units(stat)
                )));
            }
            (StatKind::ErrorRate, "pp") => Limit::Points(number),
            (StatKind::ErrorRate, "%") => {
                return Err(err(
                    "error-rate changes are in percentage points: `error-rate +0.1pp`".to_owned(),
                ));
            }
            (StatKind::Latency | StatKind::Rate, "%") => Limit::Percent(number),
            (StatKind::Latency, "us" | "µs") => Limit::Micros(number),
            (StatKind::Latency, "ms") => Limit::Micros(number * 1e3),
            (StatKind::Latency, "s") => Limit::Micros(number * 1e6),
            (StatKind::Rate, "/s") => Limit::PerSec(number),
            (_, unit) => {
                return Err(err(format!(
                    "unit `{unit}` does not fit {}: {}",
                    stat.name(),
                    units(stat)
                )));
            }
        };
        Ok(Rule {
            text: text.to_owned(),
            metric,
            stat,
            up_is_bad,
            limit: Some(limit),
        })
    }

    /// The rule in canonical form (`p99 +10%`).
    pub fn canonical(&self) -> String {
        let selector = match &self.metric {
            Some(m) => format!("{m}.{}", self.stat.name()),
            None => self.stat.name().to_owned(),
        };
        let sign = if self.up_is_bad { "+" } else { "-" };
        let change = match self.limit {
            None => "off".to_owned(),
            Some(Limit::Percent(v)) => format!("{sign}{v}%"),
            Some(Limit::Micros(v)) => format!("{sign}{}", crate::fmt::duration_f(v)),
            Some(Limit::PerSec(v)) => format!("{sign}{v}/s"),
            Some(Limit::Points(v)) => format!("{sign}{v}pp"),
        };
        format!("{selector} {change}")
    }
}

fn units(stat: Stat) -> &'static str {
    match stat.kind() {
        StatKind::Latency => "%, us, ms or s",
        StatKind::Rate => "% or /s",
        StatKind::ErrorRate => "pp (percentage points)",
        StatKind::Count => "none",
    }
}

fn parse_selector(selector: &str) -> Option<(Option<String>, Stat)> {
    let mut candidates: Vec<(&str, Stat)> = Stat::ALL
        .iter()
        .flat_map(|s| s.aliases().iter().map(move |a| (*a, *s)))
        .collect();
    candidates.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
    for (alias, stat) in &candidates {
        if selector == *alias {
            return Some((None, *stat));
        }
    }
    for (alias, stat) in candidates {
        if let Some(metric) = selector
            .strip_suffix(alias)
            .and_then(|m| m.strip_suffix('.'))
            .filter(|m| !m.is_empty())
        {
            return Some((Some(metric.to_owned()), stat));
        }
    }
    None
}

/// A thresholds file (`--thresholds FILE`):
///
/// ```toml
/// min_samples = 200
/// thresholds = ["p99 +10%", "p99 +1ms", "error-rate +0.1pp", "connect.p50 off"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFile {
    pub min_samples: Option<u64>,
    #[serde(default)]
    pub thresholds: Vec<String>,
}

impl ThresholdFile {
    pub fn load(path: &Path) -> Result<ThresholdFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The rules of every layer.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Defaults, file, flags.
    layers: [Vec<Rule>; 3],
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new::<&str, &str>(&[], &[]).expect("the defaults parse")
    }
}

impl Rules {
    /// The defaults, then `file`, then `flags`.
    pub fn new<A: AsRef<str>, B: AsRef<str>>(file: &[A], flags: &[B]) -> Result<Rules, RuleError> {
        let parse = |v: Vec<&str>| {
            v.into_iter()
                .map(Rule::parse)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Rules {
            layers: [
                parse(DEFAULT_THRESHOLDS.to_vec())?,
                parse(file.iter().map(AsRef::as_ref).collect())?,
                parse(flags.iter().map(AsRef::as_ref).collect())?,
            ],
        })
    }

    /// The rules that apply to `stat` of `metric` (empty: not judged).
    pub fn resolve(&self, metric: &str, stat: Stat) -> Vec<&Rule> {
        let specific = |r: &&Rule| r.stat == stat && r.metric.as_deref() == Some(metric);
        let general = |r: &&Rule| r.stat == stat && r.metric.is_none();
        let pick = |f: &dyn Fn(&&Rule) -> bool| -> Option<Vec<&Rule>> {
            self.layers.iter().rev().find_map(|layer| {
                let found: Vec<&Rule> = layer.iter().filter(f).collect();
                (!found.is_empty()).then_some(found)
            })
        };
        pick(&specific)
            .or_else(|| pick(&general))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.limit.is_some())
            .collect()
    }

    /// Stats that some rule judges for `metric`, besides [`Stat::SHOWN`].
    pub fn extra_stats(&self, metric: &str) -> BTreeSet<Stat> {
        Stat::ALL
            .into_iter()
            .filter(|s| {
                *s != Stat::ErrorRate
                    && !Stat::SHOWN.contains(s)
                    && !self.resolve(metric, *s).is_empty()
            })
            .collect()
    }

    /// The metrics that rules name.
    pub fn named_metrics(&self) -> BTreeSet<&str> {
        self.layers
            .iter()
            .flatten()
            .filter_map(|r| r.metric.as_deref())
            .collect()
    }

    /// Every rule in force, canonical, for the record: each layer's rules
    /// that a higher layer does not replace.
    pub fn effective(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for r in layer {
                let replaced = self.layers[i + 1..]
                    .iter()
                    .flatten()
                    .any(|h| h.stat == r.stat && h.metric == r.metric);
                if !replaced && r.limit.is_some() {
                    out.push(r.canonical());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let r = Rule::parse("p99 +10%").unwrap();
        assert_eq!(
            (r.metric, r.stat, r.up_is_bad, r.limit),
            (None, Stat::P99, true, Some(Limit::Percent(10.0)))
        );
        let r = Rule::parse("ack.room:subscribe.p99.9 5ms").unwrap();
        assert_eq!(r.metric.as_deref(), Some("ack.room:subscribe"));
        assert_eq!((r.stat, r.limit), (Stat::P999, Some(Limit::Micros(5000.0))));
        let r = Rule::parse("rate 10%").unwrap();
        assert!(!r.up_is_bad);
        let r = Rule::parse("error-rate +0.1pp").unwrap();
        assert_eq!(r.limit, Some(Limit::Points(0.1)));
        let r = Rule::parse("connect.p50 off").unwrap();
        assert_eq!(r.limit, None);
        assert_eq!(
            Rule::parse("x.p999 +1s").unwrap().canonical(),
            "x.p99.9 +1.00s"
        );
    }

    #[test]
    fn errors_name_the_rule() {
        for bad in [
            "p99",
            "p99 +10% extra",
            "p98 +10%",
            "p99 +10",
            "p99 +10pp",
            "error-rate +1%",
            "x.error-rate +1pp",
            "rate +1ms",
            "p99 +fast",
        ] {
            let e = Rule::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn layers_and_specificity() {
        let rules = Rules::new(&["a.p99 +20%", "p90 off"], &["p99 +5%", "p99 +1ms"]).unwrap();
        let texts = |m: &str, s: Stat| -> Vec<String> {
            rules.resolve(m, s).iter().map(|r| r.text.clone()).collect()
        };
        assert_eq!(texts("a", Stat::P99), ["a.p99 +20%"]);
        assert_eq!(texts("b", Stat::P99), ["p99 +5%", "p99 +1ms"]);
        assert!(texts("b", Stat::P90).is_empty());
        assert_eq!(texts("b", Stat::P50), ["p50 +10%"]);
        assert!(rules.effective().contains(&"p50 +10%".to_owned()));
        assert!(!rules.effective().contains(&"p99 +10%".to_owned()));
    }
}
