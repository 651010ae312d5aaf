//! Pass/fail thresholds on the final metrics (`--threshold EXPR` and the
//! scenario's `thresholds`); a breach makes the run exit 1.
//!
//! Grammar: `METRIC.STAT OP VALUE`
//!
//! * `METRIC`: a histogram name (`ack.quiz:answer_submit`) or a counter
//!   name (`errors.timeout`); it may contain dots: the STAT is what follows
//!   the last one.
//! * `STAT`: for histograms `count`, `rate` (per second of load), `min`,
//!   `max`, `mean`, `p50`, `p90`, `p95`, `p99`, `p999`; for counters
//!   `count` or `rate`. A metric that was never recorded has count 0 and
//!   rate 0; its latency stats have no value and fail.
//! * `OP`: `<`, `<=`, `>`, `>=`.
//! * `VALUE`: a number with an optional unit: `us` (or `µs`), `ms`, `s` for
//!   latency stats (a bare number is µs); `%` for a counter's `count`: the
//!   count as a percentage of the virtual users started (`vus_started`),
//!   e.g. `connect_failures.count < 1%`; no unit for `count` and `rate`.

use crate::metrics::MetricsSnapshot;
use crate::report::ThresholdResult;

/// A threshold that does not parse; names the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold `{expr}`: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Count,
    Rate,
    Min,
    Max,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
}

impl Stat {
    fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "count" => Stat::Count,
            "rate" => Stat::Rate,
            "min" => Stat::Min,
            "max" => Stat::Max,
            "mean" => Stat::Mean,
            "p50" => Stat::P50,
            "p90" => Stat::P90,
            "p95" => Stat::P95,
            "p99" => Stat::P99,
            "p999" => Stat::P999,
            _ => return None,
        })
    }

    /// Whether the stat is a latency (µs).
    pub fn is_time(self) -> bool {
        !matches!(self, Stat::Count | Stat::Rate)
    }

    fn quantile(self) -> Option<f64> {
        Some(match self {
            Stat::P50 => 0.50,
            Stat::P90 => 0.90,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
            Stat::P999 => 0.999,
            _ => return None,
        })
    }
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

/// A parsed threshold.
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
        let (metric, stat) = left
            .rsplit_once('.')
            .ok_or_else(|| err("expected METRIC.STAT before the operator, e.g. `connect.p99`"))?;
        if metric.is_empty() || metric.contains(char::is_whitespace) {
            return Err(err("the metric name is empty or contains spaces"));
        }
        let stat = Stat::parse(stat).ok_or_else(|| {
            err(&format!(
                "unknown STAT `{stat}`: expected count, rate, min, max, mean, p50, p90, p95, p99 or p999"
            ))
        })?;
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
            ("" | "us" | "µs", true) => number,
            ("ms", true) => number * 1e3,
            ("s", true) => number * 1e6,
            ("", false) => number,
            ("%", false) if stat == Stat::Count => {
                percent = true;
                number
            }
            ("%", _) => return Err(err("`%` applies to `count` only (percent of vus_started)")),
            ("us" | "µs" | "ms" | "s", false) => {
                return Err(err(
                    "a time unit needs a latency STAT (min, max, mean, pNN)",
                ));
            }
            _ => {
                return Err(err(&format!(
                    "unknown unit `{unit}`: expected us, ms, s or %"
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
        let hist = snap.histograms.get(&self.metric).filter(|h| !h.is_empty());
        let count = || -> f64 {
            match snap.histograms.get(&self.metric) {
                Some(h) => h.len() as f64,
                None => snap.counters.get(&self.metric).copied().unwrap_or(0) as f64,
            }
        };
        match self.stat {
            Stat::Count if self.percent => {
                let vus = snap.counters.get("vus_started").copied().unwrap_or(0);
                (vus > 0).then(|| count() * 100.0 / vus as f64)
            }
            Stat::Count => Some(count()),
            Stat::Rate => Some(count() / duration_secs.max(1e-3)),
            Stat::Min => hist.map(|h| h.min() as f64),
            Stat::Max => hist.map(|h| h.max() as f64),
            Stat::Mean => hist.map(|h| h.mean()),
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

/// Evaluates every threshold.
pub fn evaluate_all(
    thresholds: &[Threshold],
    snap: &MetricsSnapshot,
    duration_secs: f64,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| t.evaluate(snap, duration_secs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    #[test]
    fn parses_the_grammar() {
        let t = Threshold::parse("ack.quiz:answer_submit.p99 < 100ms").unwrap();
        assert_eq!(t.metric, "ack.quiz:answer_submit");
        assert_eq!(t.stat, Stat::P99);
        assert_eq!(t.op, Op::Lt);
        assert_eq!(t.value, 100_000.0);
        let t = Threshold::parse("errors.timeout.count<=0").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.stat, t.op, t.value),
            ("errors.timeout", Stat::Count, Op::Le, 0.0)
        );
        let t = Threshold::parse("connect.p999 >= 1.5s").unwrap();
        assert_eq!((t.op, t.value), (Op::Ge, 1_500_000.0));
        let t = Threshold::parse("connect.max > 250").unwrap();
        assert_eq!(t.value, 250.0);
        let t = Threshold::parse("connect_failures.count < 1%").unwrap();
        assert!(t.percent);
        let t = Threshold::parse("sent.x.rate >= 9.5").unwrap();
        assert_eq!(t.stat, Stat::Rate);
    }

    #[test]
    fn errors_name_the_expression() {
        for bad in [
            "connect.p99",
            "connect < 5ms",
            "connect.p98 < 5ms",
            "connect.p99 < fast",
            "connect.p99 < 5 parsecs",
            "connect.count < 5ms",
            "connect.p99 < 5%",
            "connect.p99 <= = 5",
            ".p99 < 5",
        ] {
            let e = Threshold::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn evaluates() {
        let r = Recorder::new();
        for v in 1..=100 {
            r.latency("ack.a", v * 1000);
        }
        r.count("vus_started", 200);
        r.count("connect_failures", 1);
        let snap = r.snapshot();
        let check = |e: &str| Threshold::parse(e).unwrap().evaluate(&snap, 10.0);
        assert!(check("ack.a.p99 < 100ms").passed);
        assert!(!check("ack.a.p50 < 10ms").passed);
        assert!(check("ack.a.count >= 100").passed);
        assert_eq!(check("ack.a.rate > 9").actual, Some(10.0));
        assert!(check("connect_failures.count < 1%").passed);
        assert_eq!(check("connect_failures.count < 1%").actual, Some(0.5));
        assert!(check("errors.timeout.count < 1").passed);
        let missing = check("ack.b.p99 < 1s");
        assert_eq!((missing.actual, missing.passed), (None, false));
    }
}
