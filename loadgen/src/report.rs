//! The run report: versioned JSON (`report.json`, schema in
//! `loadgen/schema/report.schema.json`), the per-second series as CSV
//! (`series.csv`) and a text summary (`summary.txt`, also printed).
//!
//! Every histogram is stored whole, as the base64 of its HDR V2 deflate
//! serialization (`hdr`), next to its summary numbers: reports of workers
//! and shards merge exactly ([`RunReport::merge`], [`decode_histogram`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::metrics::{MetricsSnapshot, SecondSample, merge_series};

/// Version of the report format; bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 1;

/// Why a report or a histogram could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HDR V2 serialization: {0}")]
    Hdr(String),
    #[error("report version {found} is not supported (this loadgen reads {REPORT_VERSION})")]
    Version { found: u32 },
    #[error("report is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no report to merge")]
    Empty,
}

/// A run's report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// `loadgen <version>`.
    pub tool: String,
    /// Base URL of the target.
    pub target: String,
    pub scenario: ScenarioMeta,
    /// When the load started / ended (ISO 8601 UTC).
    pub started_at: String,
    pub ended_at: String,
    /// Length of the load in milliseconds (the denominator of every rate).
    pub duration_ms: u64,
    /// The machine that ran the load (the parent's, for worker processes).
    pub machine: Machine,
    /// Which share of the load this report covers, with `--shard I/N`.
    pub shard: Option<ShardInfo>,
    /// Worker processes that ran the load (1: the load ran in-process).
    pub workers: u32,
    /// Peak concurrent virtual users of this process/shard.
    pub clients: u32,
    /// False when the run was cut short (target died, Ctrl-C, a worker
    /// failed); `abortReason` says why.
    pub complete: bool,
    pub abort_reason: Option<String>,
    /// Latency histograms by metric name (µs).
    pub histograms: BTreeMap<String, HistogramSummary>,
    pub counters: BTreeMap<String, u64>,
    /// One sample per second of load.
    pub series: Vec<SecondSample>,
    pub thresholds: Vec<ThresholdResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioMeta {
    pub name: String,
    /// The scenario file as given on the command line.
    pub file: String,
    /// FNV-1a 64 of the file's bytes, hex.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub hostname: String,
    pub os: String,
    pub cpus: u32,
}

impl Machine {
    /// This machine.
    pub fn current() -> Machine {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            hostname,
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardInfo {
    /// 0-based index of the shard.
    pub index: u32,
    pub count: u32,
}

/// A latency histogram: summary numbers (µs) and the whole histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistogramSummary {
    pub count: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// Base64 (standard alphabet, padded) of the HDR histogram's V2 deflate
    /// serialization: [`decode_histogram`] reads it back exactly.
    pub hdr: String,
}

impl HistogramSummary {
    pub fn of(h: &Histogram<u64>) -> HistogramSummary {
        HistogramSummary {
            count: h.len(),
            min_us: h.min(),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            hdr: encode_histogram(h),
        }
    }
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

/// Base64 of the V2 deflate serialization of `h`.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads back a histogram written by [`encode_histogram`] (the `hdr` field
/// of a report), exactly.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, ReportError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| ReportError::Hdr(format!("{e:?}")))
}

impl RunReport {
    /// Reads a report from JSON, checking its version.
    pub fn from_json(text: &str) -> Result<RunReport, ReportError> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let found = v.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != REPORT_VERSION {
            return Err(ReportError::Version { found });
        }
        Ok(serde_json::from_value(v)?)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes") + "\n"
    }

    /// Fills `histograms` and `counters` from a snapshot.
    pub fn set_metrics(&mut self, snap: &MetricsSnapshot) {
        self.histograms = snap
            .histograms
            .iter()
            .map(|(k, h)| (k.clone(), HistogramSummary::of(h)))
            .collect();
        self.counters = snap.counters.clone();
    }

    /// The report's metrics as a snapshot (histograms decoded exactly; the
    /// connected gauge from the last second of the series).
    pub fn snapshot(&self) -> Result<MetricsSnapshot, ReportError> {
        let mut histograms = BTreeMap::new();
        for (k, s) in &self.histograms {
            histograms.insert(k.clone(), decode_histogram(&s.hdr)?);
        }
        Ok(MetricsSnapshot {
            histograms,
            counters: self.counters.clone(),
            connected: self.series.last().map_or(0, |s| s.connected),
        })
    }

    /// Merges the reports of processes that ran parts of the same load at
    /// the same time (workers, or shards on several machines): histograms
    /// merge exactly, counters and clients add up, the series add up second
    /// by second, the times span all parts, `complete` only if every part
    /// is. Metadata (tool, target, scenario, machine, shard) comes from the
    /// first part; `workers` adds up; thresholds are left empty (evaluate
    /// them on the merged metrics).
    pub fn merge(parts: &[RunReport]) -> Result<RunReport, ReportError> {
        let first = parts.first().ok_or(ReportError::Empty)?;
        let mut snap = MetricsSnapshot::default();
        for p in parts {
            let mut s = p.snapshot()?;
            s.connected = 0;
            snap.merge(&s);
        }
        let mut merged = first.clone();
        merged.started_at = parts
            .iter()
            .map(|p| p.started_at.clone())
            .min()
            .unwrap_or_default();
        merged.ended_at = parts
            .iter()
            .map(|p| p.ended_at.clone())
            .max()
            .unwrap_or_default();
        merged.duration_ms = parts.iter().map(|p| p.duration_ms).max().unwrap_or(0);
        merged.workers = parts.iter().map(|p| p.workers).sum();
        merged.clients = parts.iter().map(|p| p.clients).sum();
        merged.complete = parts.iter().all(|p| p.complete);
        merged.abort_reason = parts.iter().find_map(|p| p.abort_reason.clone());
        merged.series = merge_series(&parts.iter().map(|p| p.series.clone()).collect::<Vec<_>>());
        merged.thresholds = Vec::new();
        // Re-encoded: the summary numbers describe the merged histograms.
        merged.set_metrics(&snap);
        Ok(merged)
    }

    /// Load duration in seconds (at least 1 ms, so rates stay finite).
    pub fn duration_secs(&self) -> f64 {
        self.duration_ms.max(1) as f64 / 1000.0
    }

    /// Writes `report.json`, `series.csv` and `summary.txt` into `dir`
    /// (created if missing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), self.to_json())?;
        std::fs::write(dir.join("series.csv"), series_csv(&self.series)?)?;
        std::fs::write(dir.join("summary.txt"), self.summary_text())?;
        Ok(())
    }

    /// The text summary: per histogram count, rate, p50, p90, p99, p99.9,
    /// max; counters; errors by code; thresholds.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        let secs = self.duration_secs();
        let state = if self.complete {
            "complete".to_owned()
        } else {
            format!(
                "INCOMPLETE: {}",
                self.abort_reason.as_deref().unwrap_or("aborted")
            )
        };
        let shard = self
            .shard
            .map(|s| format!(", shard {}/{}", s.index, s.count))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "loadgen: {} against {}: {} clients, {} worker{}{shard}, {:.1} s, {state}",
            self.scenario.name,
            self.target,
            self.clients,
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            secs,
        );
        if self.histograms.is_empty() {
            let _ = writeln!(out, "\nno latency recorded");
        } else {
            let width = self
                .histograms
                .keys()
                .map(|k| k.chars().count())
                .max()
                .unwrap_or(0)
                .max("latency".len());
            let _ = writeln!(
                out,
                "\n{:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency", "count", "rate/s", "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, h) in &self.histograms {
                let _ = writeln!(
                    out,
                    "{name:<width$} {:>9} {:>9.1} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    h.count,
                    h.count as f64 / secs,
                    fmt_us(h.p50_us),
                    fmt_us(h.p90_us),
                    fmt_us(h.p99_us),
                    fmt_us(h.p999_us),
                    fmt_us(h.max_us),
                );
            }
        }
        let (errors, counters): (Vec<_>, Vec<_>) = self
            .counters
            .iter()
            .partition(|(k, _)| k.starts_with("errors."));
        if !counters.is_empty() {
            let width = counters
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            let _ = writeln!(out, "\ncounters");
            for (name, n) in counters {
                let _ = writeln!(out, "  {name:<width$} {n:>10} {:>10.1}/s", *n as f64 / secs);
            }
        }
        let total: u64 = errors.iter().map(|(_, n)| **n).sum();
        if total == 0 {
            let _ = writeln!(out, "\nerrors: none");
        } else {
            let _ = writeln!(out, "\nerrors by code ({total})");
            let width = errors.iter().map(|(k, _)| k.len() - 7).max().unwrap_or(0);
            for (name, n) in errors.iter().filter(|(_, n)| **n > 0) {
                let _ = writeln!(out, "  {:<width$} {n:>10}", &name["errors.".len()..]);
            }
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(out, "\nthresholds");
            for t in &self.thresholds {
                let actual = match t.actual {
                    Some(v) => format_actual(&t.expr, v),
                    None => "no samples".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "  {} {} (actual: {actual})",
                    if t.passed { "PASS" } else { "FAIL" },
                    t.expr
                );
            }
        }
        out
    }
}

/// How a threshold's actual value reads: a duration for latency stats.
fn format_actual(expr: &str, v: f64) -> String {
    let is_time = crate::threshold::Threshold::parse(expr)
        .map(|t| t.stat.is_time())
        .unwrap_or(false);
    if is_time {
        fmt_us(v.round() as u64)
    } else if v.fract() == 0.0 {
        format!("{v}")
    } else {
        format!("{v:.2}")
    }
}

/// `850µs`, `12.3ms`, `4.56s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// The series as CSV: `t,connected,sent,received,errors,p99_us` (an empty
/// `p99_us` when the second had no sample).
pub fn series_csv(series: &[SecondSample]) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["t", "connected", "sent", "received", "errors", "p99_us"])
        .map_err(std::io::Error::other)?;
    for s in series {
        w.write_record([
            s.t.to_string(),
            s.connected.to_string(),
            s.sent.to_string(),
            s.received.to_string(),
            s.errors.to_string(),
            s.p99_us.map(|v| v.to_string()).unwrap_or_default(),
        ])
        .map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(String::from_utf8(bytes).expect("CSV of numbers is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn histogram_round_trips() {
        let mut h = new_histogram();
        for v in [1, 2, 3, 1000, 65_432, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
    }

    #[test]
    fn bad_histogram_is_an_error() {
        assert!(decode_histogram("!!!").is_err());
        assert!(decode_histogram("aGVsbG8=").is_err());
    }

    #[test]
    fn durations_format() {
        assert_eq!(fmt_us(850), "850µs");
        assert_eq!(fmt_us(12_345), "12.3ms");
        assert_eq!(fmt_us(4_560_000), "4.56s");
    }

    #[test]
    fn csv_has_header_and_empty_p99() {
        let csv = series_csv(&[SecondSample {
            t: 1,
            connected: 2,
            sent: 3,
            received: 4,
            errors: 0,
            p99_us: None,
        }])
        .unwrap();
        assert_eq!(csv, "t,connected,sent,received,errors,p99_us\n1,2,3,4,0,\n");
    }
}
