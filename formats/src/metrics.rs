//! A run's metrics at one moment ([`MetricsSnapshot`]: histograms by
//! name, counters, the connected gauge) and the rows of its per-second
//! series ([`SecondSample`]). loadgen's recorder produces snapshots; a
//! report holds one ([`crate::report::RunReport::snapshot`]); thresholds
//! are evaluated on one.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::histogram::merge_histogram;
use crate::names;

/// Every metric of a recorder (or of several, merged) at one moment.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub histograms: BTreeMap<String, Histogram<u64>>,
    pub counters: BTreeMap<String, u64>,
    pub connected: i64,
}

/// Adds `h` into the histogram `name` of `into` (created if missing).
pub fn add_histogram(into: &mut BTreeMap<String, Histogram<u64>>, name: &str, h: &Histogram<u64>) {
    match into.get_mut(name) {
        Some(mine) => merge_histogram(mine, h),
        None => {
            into.insert(name.to_owned(), h.clone());
        }
    }
}

impl MetricsSnapshot {
    /// Adds `other` in: histograms merged exactly, counters and the
    /// connected gauge summed.
    pub fn merge(&mut self, other: &MetricsSnapshot) {
        for (name, h) in &other.histograms {
            add_histogram(&mut self.histograms, name, h);
        }
        for (name, n) in &other.counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
        self.connected += other.connected;
    }

    /// The metrics of one tag (`[KEY=VALUE]`, see [`names::tagged`]),
    /// under their untagged names: what a threshold on a tagged metric
    /// reads, so that aggregates (`errors`, `count < N%` of
    /// `vus_started`) are the tag's own.
    pub fn tag_view(&self, prefix: &str) -> MetricsSnapshot {
        let strip = |k: &String| k.strip_prefix(prefix).map(str::to_owned);
        MetricsSnapshot {
            histograms: self
                .histograms
                .iter()
                .filter_map(|(k, h)| Some((strip(k)?, h.clone())))
                .collect(),
            counters: self
                .counters
                .iter()
                .filter_map(|(k, n)| Some((strip(k)?, *n)))
                .collect(),
            connected: 0,
        }
    }

    /// The counter `name` (0 when never counted).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// The sum of the counters named `prefix*`.
    pub fn sum_prefix(&self, prefix: &str) -> u64 {
        self.counters
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Messages sent (every `sent.*` counter).
    pub fn sent(&self) -> u64 {
        self.sum_prefix(names::SENT)
    }

    /// Messages received (every `received.*` counter).
    pub fn received(&self) -> u64 {
        self.sum_prefix(names::RECEIVED)
    }

    /// Errors: every `errors.*` counter plus `connect_failures`.
    pub fn errors(&self) -> u64 {
        self.sum_prefix(names::ERRORS) + self.counter(names::CONNECT_FAILURES)
    }

    /// Operations that could fail: messages sent (`sent.*`), connection
    /// attempts (`connect` and `reconnect` samples plus `connect_failures`)
    /// and HTTP calls (`http.*` samples).
    pub fn attempts(&self) -> u64 {
        let hist = |name: &str| self.histograms.get(name).map_or(0, Histogram::len);
        let http: u64 = self
            .histograms
            .iter()
            .filter(|(k, _)| k.starts_with(names::HTTP))
            .map(|(_, h)| h.len())
            .sum();
        self.sent()
            + hist(names::CONNECT)
            + hist(names::RECONNECT)
            + self.counter(names::CONNECT_FAILURES)
            + http
    }

    /// [`MetricsSnapshot::errors`] as a percentage of
    /// [`MetricsSnapshot::attempts`]; `None` without attempts.
    pub fn error_rate_pct(&self) -> Option<f64> {
        let attempts = self.attempts();
        (attempts > 0).then(|| self.errors() as f64 * 100.0 / attempts as f64)
    }

    /// Non-zero error counters by code (`errors.` stripped), then
    /// `connect_failures`.
    pub fn errors_by_code(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .counters
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(k, n)| names::error_code(k).map(|code| (code.to_owned(), *n)))
            .collect();
        let failures = self.counter(names::CONNECT_FAILURES);
        if failures > 0 {
            out.push((names::CONNECT_FAILURES.to_owned(), failures));
        }
        out
    }

    /// The histogram progress and the series follow: the first `ack.*`
    /// histogram, else the first `fanout.*`, else `connect`.
    pub fn main_latency(&self) -> Option<&str> {
        let first = |prefix: &str| {
            self.histograms
                .keys()
                .find(|k| k.starts_with(prefix))
                .map(String::as_str)
        };
        first(names::ACK)
            .or_else(|| first(names::FANOUT))
            .or_else(|| {
                self.histograms
                    .get_key_value(names::CONNECT)
                    .map(|(k, _)| k.as_str())
            })
    }
}

/// One second of the run's time series (a row of `series.csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondSample {
    /// Seconds since the start of the load (1 = the first second).
    pub t: u64,
    /// Clients connected at the end of the second.
    pub connected: i64,
    /// Messages sent during the second.
    pub sent: u64,
    /// Messages received during the second.
    pub received: u64,
    /// Errors during the second (`errors.*` and `connect_failures`).
    pub errors: u64,
    /// p99 of the main latency over the second (µs), when it has samples.
    pub p99_us: Option<u64>,
    /// CPU milliseconds the generator used during the second (version 3;
    /// absent where the process CPU cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
}

/// Merges the series of several workers second by second: connected,
/// sent, received, errors and CPU add up; the p99 is the largest of the
/// workers' (an upper bound: exact per-second percentiles would need every
/// worker's per-second histograms).
pub fn merge_series(parts: &[Vec<SecondSample>]) -> Vec<SecondSample> {
    let mut by_t: BTreeMap<u64, SecondSample> = BTreeMap::new();
    for part in parts {
        for s in part {
            let e = by_t.entry(s.t).or_insert_with(|| SecondSample {
                t: s.t,
                connected: 0,
                sent: 0,
                received: 0,
                errors: 0,
                p99_us: None,
                cpu_ms: None,
            });
            e.connected += s.connected;
            if let Some(ms) = s.cpu_ms {
                *e.cpu_ms.get_or_insert(0) += ms;
            }
            e.sent += s.sent;
            e.received += s.received;
            e.errors += s.errors;
            e.p99_us = e.p99_us.max(s.p99_us);
        }
    }
    by_t.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = MetricsSnapshot::default();
        a.histograms.insert("m".into(), hist(&[10]));
        a.counters.insert("c".into(), 1);
        a.connected = 1;
        let mut b = MetricsSnapshot::default();
        b.histograms.insert("m".into(), hist(&[20]));
        b.histograms.insert("n".into(), hist(&[30]));
        b.counters.insert("c".into(), 2);
        b.connected = 2;
        a.merge(&b);
        assert_eq!(a.histograms["m"].len(), 2);
        assert_eq!(a.histograms["n"].len(), 1);
        assert_eq!(a.counters["c"], 3);
        assert_eq!(a.connected, 3);
    }

    #[test]
    fn errors_attempts_and_main_latency() {
        let mut s = MetricsSnapshot::default();
        for (k, n) in [
            ("sent.a", 90),
            ("errors.timeout", 3),
            ("errors.RATE_LIMIT_EXCEEDED", 0),
            ("connect_failures", 2),
        ] {
            s.counters.insert(k.into(), n);
        }
        s.histograms.insert("connect".into(), hist(&[1; 8]));
        s.histograms
            .insert("http.create_room".into(), hist(&[1; 2]));
        assert_eq!(s.errors(), 5);
        assert_eq!(s.attempts(), 90 + 8 + 2 + 2);
        assert_eq!(s.error_rate_pct(), Some(5.0 * 100.0 / 102.0));
        assert_eq!(
            s.errors_by_code(),
            [
                ("timeout".to_owned(), 3),
                ("connect_failures".to_owned(), 2)
            ]
        );
        assert_eq!(s.main_latency(), Some("connect"));
        s.histograms.insert("fanout.b".into(), hist(&[1]));
        assert_eq!(s.main_latency(), Some("fanout.b"));
        s.histograms.insert("ack.c".into(), hist(&[1]));
        assert_eq!(s.main_latency(), Some("ack.c"));
        assert_eq!(MetricsSnapshot::default().error_rate_pct(), None);
    }

    #[test]
    fn series_merge_by_second() {
        let s = |t, c, p| SecondSample {
            t,
            connected: c,
            sent: 1,
            received: 2,
            errors: 0,
            p99_us: p,
            cpu_ms: Some(t * 10),
        };
        let merged = merge_series(&[
            vec![s(1, 2, Some(10)), s(2, 3, None)],
            vec![s(1, 1, Some(30))],
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].connected, 3);
        assert_eq!(merged[0].sent, 2);
        assert_eq!(merged[0].p99_us, Some(30));
        assert_eq!(merged[1].p99_us, None);
        assert_eq!((merged[0].cpu_ms, merged[1].cpu_ms), (Some(20), Some(20)));
    }

    #[test]
    fn a_series_row_has_its_wire_form() {
        let row = SecondSample {
            t: 3,
            connected: 5,
            sent: 7,
            received: 11,
            errors: 1,
            p99_us: None,
            cpu_ms: Some(850),
        };
        let text =
            r#"{"t":3,"connected":5,"sent":7,"received":11,"errors":1,"p99Us":null,"cpuMs":850}"#;
        assert_eq!(serde_json::to_string(&row).unwrap(), text);
        assert_eq!(serde_json::from_str::<SecondSample>(text).unwrap(), row);
        // Version 2 rows have no CPU.
        let v2 = r#"{"t":3,"connected":5,"sent":7,"received":11,"errors":1,"p99Us":null}"#;
        assert_eq!(
            serde_json::from_str::<SecondSample>(v2).unwrap().cpu_ms,
            None
        );
    }
}
