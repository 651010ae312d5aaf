//! Comparison thresholds: how much a statistic may change between the
//! baseline and the new run before the metric is called worse (or better).
//!
//! One rule is a [`ChangeRule`] (`[METRIC.]STAT CHANGE`, e.g. `p99 +10%`;
//! the grammar and the STAT vocabulary are [`formats::threshold`]'s, shared
//! with loadgen's pass/fail thresholds). A stat is *worse* when it moved in
//! the bad direction by more than every limit that applies to it (so
//! `p99 +10%` and `p99 +1ms` together mean "by 10 % and at least 1 ms"),
//! *better* when it moved the other way by as much, otherwise *same*.
//!
//! Rules come in three layers: the defaults ([`DEFAULT_THRESHOLDS`]), a
//! TOML file, then flags. For a metric and a stat, rules naming the metric
//! win over rules for every metric; among those, the highest layer that
//! has any wins (all its rules apply).

use std::collections::BTreeSet;
use std::path::Path;

pub use formats::threshold::{ChangeRule, Limit, Stat, StatKind, ThresholdError};
use serde::Deserialize;

/// Thresholds used when neither file nor flag says otherwise.
pub const DEFAULT_THRESHOLDS: &[&str] = &["p50 +10%", "p90 +10%", "p99 +10%", "error-rate +0.1pp"];

/// Minimum samples per metric (in each run) before it is judged.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

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
    layers: [Vec<ChangeRule>; 3],
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new::<&str, &str>(&[], &[]).expect("the defaults parse")
    }
}

impl Rules {
    /// The defaults, then `file`, then `flags`.
    pub fn new<A: AsRef<str>, B: AsRef<str>>(
        file: &[A],
        flags: &[B],
    ) -> Result<Rules, ThresholdError> {
        let parse = |v: Vec<&str>| {
            v.into_iter()
                .map(ChangeRule::parse)
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
    /// The generator's own metrics (`generator.*`: its timer and start
    /// lag) are judged only by rules that name them: they measure the
    /// machine the load ran on, not the target, and the run's
    /// generator-bound verdict already speaks for them.
    pub fn resolve(&self, metric: &str, stat: Stat) -> Vec<&ChangeRule> {
        let specific = |r: &&ChangeRule| r.stat == stat && r.metric.as_deref() == Some(metric);
        let general = |r: &&ChangeRule| r.stat == stat && r.metric.is_none();
        let pick = |f: &dyn Fn(&&ChangeRule) -> bool| -> Option<Vec<&ChangeRule>> {
            self.layers.iter().rev().find_map(|layer| {
                let found: Vec<&ChangeRule> = layer.iter().filter(f).collect();
                (!found.is_empty()).then_some(found)
            })
        };
        let generator = metric.starts_with(formats::names::GENERATOR);
        pick(&specific)
            .or_else(|| (!generator).then(|| pick(&general)).flatten())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.limit.is_some())
            .collect()
    }

    /// Stats that some rule judges for `metric`, besides [`SHOWN`].
    pub fn extra_stats(&self, metric: &str) -> BTreeSet<Stat> {
        Stat::ALL
            .into_iter()
            .filter(|s| {
                *s != Stat::ErrorRate && !SHOWN.contains(s) && !self.resolve(metric, *s).is_empty()
            })
            .collect()
    }

    /// Checks that every rule naming a metric (from the file or the flags)
    /// names a histogram that some run recorded, on either side
    /// (`histograms`); `counters` are the runs' counters, for a message
    /// that says why a counter cannot be judged. The error names the first
    /// rule that does not, with a did-you-mean when a histogram's name is
    /// near (a misspelt metric would otherwise never be judged, and the
    /// comparison would pass on it silently).
    pub fn check_metrics(
        &self,
        histograms: &BTreeSet<&str>,
        counters: &BTreeSet<&str>,
    ) -> Result<(), ThresholdError> {
        let known: Vec<&str> = histograms.iter().copied().collect();
        for rule in self.layers[1..].iter().flatten() {
            let Some(metric) = rule.metric.as_deref() else {
                continue;
            };
            if histograms.contains(metric) {
                continue;
            }
            let reason = if counters.contains(metric) {
                format!(
                    "`{metric}` is a counter: comparison rules judge histograms (latencies, \
                     and their `rate`); errors are judged run-wide by `error-rate`"
                )
            } else {
                format!(
                    "unknown metric `{metric}`{}: neither side's reports recorded it; their \
                     histograms: {}",
                    formats::hint::did_you_mean(metric, &known),
                    list(&known)
                )
            };
            return Err(ThresholdError {
                expr: rule.text.clone(),
                reason,
            });
        }
        Ok(())
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

/// Names for a message: all of them up to 20, else the first 20 and how
/// many more.
fn list(names: &[&str]) -> String {
    const MAX: usize = 20;
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut out = names[..names.len().min(MAX)].join(", ");
    if names.len() > MAX {
        out.push_str(&format!(" and {} more", names.len() - MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The generator's own lag: only by a rule that names it.
        assert!(texts("generator.timer_lag", Stat::P99).is_empty());
        let named = Rules::new::<&str, &str>(&[], &["generator.timer_lag.p99 +5ms"]).unwrap();
        assert_eq!(named.resolve("generator.timer_lag", Stat::P99).len(), 1);
    }

    #[test]
    fn rules_must_name_recorded_histograms() {
        let histograms: BTreeSet<&str> = ["connect", "fanout.stage:tick"].into();
        let counters: BTreeSet<&str> = ["sent.stage:tick", "errors.timeout"].into();
        let check = |file: &[&str], flags: &[&str]| {
            Rules::new(file, flags)
                .unwrap()
                .check_metrics(&histograms, &counters)
        };
        assert_eq!(check(&[], &["p99 +5%", "error-rate +1pp"]), Ok(()));
        assert_eq!(
            check(&["connect.p50 off"], &["fanout.stage:tick.p99 +5ms"]),
            Ok(())
        );
        let e = check(&[], &["fanout.stage:tik.p99 +5ms"]).unwrap_err();
        assert_eq!(e.expr, "fanout.stage:tik.p99 +5ms");
        assert!(
            e.to_string().contains(
                "unknown metric `fanout.stage:tik` (did you mean `fanout.stage:tick`?): neither \
                 side's reports recorded it; their histograms: connect, fanout.stage:tick"
            ),
            "{e}"
        );
        let e = check(&["conect.p50 off"], &[]).unwrap_err();
        assert!(e.to_string().contains("(did you mean `connect`?)"), "{e}");
        let e = check(&[], &["zzz.p99 +1ms"]).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = check(&[], &["sent.stage:tick.rate -10%"]).unwrap_err();
        assert!(e.to_string().contains("is a counter"), "{e}");
    }
}
