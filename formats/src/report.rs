//! The run report: versioned JSON (`report.json`, JSON Schema in
//! [`crate::schema`]) that loadgen writes, its workers exchange and
//! `reports` reads.
//!
//! Every histogram is stored whole, as the base64 of its HDR V2 deflate
//! serialization (`hdr`, [`crate::histogram`]), next to its summary
//! numbers: reports of workers and shards merge exactly
//! ([`RunReport::merge`]).
//!
//! Version 3 added the `generator` section ([`GeneratorReport`]): the
//! generator's CPU and lag, and whether the results are generator-bound
//! ([`GeneratorReport::assess`] states the rule), plus `cpuMs` per second
//! of the series.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::histogram::{DecodeError, decode_histogram, encode_histogram};
use crate::metrics::{MetricsSnapshot, SecondSample, merge_series};
use crate::names;
use crate::threshold::{Threshold, ThresholdResult};

/// Version of the report format; bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 3;

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Histogram(#[from] DecodeError),
    #[error("report version {found} is not supported (this loadgen reads 1 to {REPORT_VERSION})")]
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
    /// `loadgen <version>` (with the git revision it was built from, when
    /// known: `loadgen 0.1.0 (git 0123456789ab)`).
    pub tool: String,
    /// The run's `--label` (version 2; absent when none was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
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
    /// The first failed `expect` / `matching` checks with what arrived
    /// (earliest first; at most the run's `--keep-mismatches`, each
    /// worker or shard keeping its own first ones). Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// The generator's watch on itself (version 3; absent in older
    /// reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorReport>,
}

/// Longest `expected` / `got` text of a [`Mismatch`], in bytes.
pub const MISMATCH_TEXT_MAX: usize = 512;

/// A failed check of an `emit_ack`'s `expect` or a `wait_for`'s
/// `matching`, with what arrived instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// When it was found, Unix milliseconds.
    pub at_ms: u64,
    /// The virtual user's number and group.
    pub vu: u64,
    pub group: String,
    /// `emit_ack` (the ack did not match `expect`) or `wait_for` (the
    /// step timed out while events of its name arrived that did not match
    /// `matching`; `got` is the last of them).
    pub step: String,
    pub event: String,
    /// The expected subset and the first argument that arrived, as
    /// compact JSON cut to [`MISMATCH_TEXT_MAX`] bytes (`…` marks a cut).
    pub expected: String,
    pub got: String,
}

impl Mismatch {
    /// [`step`](Self::step) of a failed `expect`.
    pub const EMIT_ACK: &'static str = "emit_ack";
    /// [`step`](Self::step) of a `wait_for` that saw only other payloads.
    pub const WAIT_FOR: &'static str = "wait_for";

    /// `v` as compact JSON of at most [`MISMATCH_TEXT_MAX`] bytes.
    pub fn text(v: &serde_json::Value) -> String {
        let mut s = v.to_string();
        if s.len() > MISMATCH_TEXT_MAX {
            let mut end = MISMATCH_TEXT_MAX - '…'.len_utf8();
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        s
    }
}

/// CPU share of the cores available at or above which a second counts as
/// saturated.
pub const SATURATED_PCT: f64 = 90.0;
/// Saturated seconds from which a run is generator-bound.
pub const SATURATED_SECONDS_BOUND: u64 = 3;
/// Timer lag p90 (µs) from which a run is generator-bound.
pub const LAG_BOUND_US: u64 = 50_000;
/// Timer ticks (100 ms each) below which the lag is not judged: a p90 of
/// a handful of samples is one stall, not a trend.
pub const LAG_MIN_SAMPLES: u64 = 20;
/// Run-queue wait p90 (µs per 100 ms tick) from which a run is
/// generator-bound: its threads waited for a CPU 30 % of the time.
pub const RUN_WAIT_BOUND_US: u64 = 30_000;

/// The generator's watch on itself over the load: its CPU (from the
/// series' `cpuMs`), its lag (the `generator.*` histograms) and the
/// verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorReport {
    /// Cores available to the generator (CPU affinity and cgroup quota
    /// included: `taskset -c 0` makes it 1); summed over the machines of
    /// merged shards.
    pub cores: u32,
    /// CPU seconds (user + system) the generator used during the load;
    /// absent where its CPU cannot be read.
    pub cpu_seconds: Option<f64>,
    /// Mean CPU over the load, percent of all `cores`.
    pub cpu_mean_pct: Option<f64>,
    /// The busiest second's CPU, percent of all `cores`.
    pub cpu_peak_pct: Option<f64>,
    /// Seconds of load at or above [`SATURATED_PCT`] of the cores.
    pub saturated_seconds: u64,
    /// p90 and p99 of `generator.timer_lag` (µs).
    pub timer_lag_p90_us: Option<u64>,
    pub timer_lag_p99_us: Option<u64>,
    /// p99 of `generator.start_lag` (µs).
    pub start_lag_p99_us: Option<u64>,
    /// p90 of `generator.run_wait` (µs per 100 ms); absent in reports
    /// written before it was measured, null where it cannot be read.
    #[serde(default)]
    pub run_wait_p90_us: Option<u64>,
    /// Why the results are generator-bound, one reason each; empty when
    /// they are not.
    pub bound: Vec<String>,
}

impl GeneratorReport {
    /// The generator's figures of `report`, on `cores` cores, and the
    /// verdict: the results are generator-bound when the generator's CPU
    /// was at or above [`SATURATED_PCT`] of its cores in at least
    /// [`SATURATED_SECONDS_BOUND`] seconds of the load, or when the p90 of
    /// its timer lag (over at least [`LAG_MIN_SAMPLES`] ticks) reached
    /// [`LAG_BOUND_US`]: one tick in ten that late means its tasks, socket
    /// reads among them, wait that long for a thread again and again (a
    /// healthy generator fires its timers within a millisecond or two; a
    /// single stall on a shared machine only moves the p99), or when the
    /// p90 of its threads' run-queue wait (as many ticks) reached
    /// [`RUN_WAIT_BOUND_US`] per 100 ms: threads that wait for a CPU almost
    /// a third of the time read their sockets late over and over, even when
    /// the timer, which the scheduler favours on waking, fires in time.
    /// The start lag is reported, not judged: starts wait in the same run
    /// queues as the timer.
    pub fn assess(report: &RunReport, cores: u32) -> GeneratorReport {
        let cores = cores.max(1);
        let cpu: Vec<u64> = report.series.iter().filter_map(|s| s.cpu_ms).collect();
        let pct = |ms: f64, secs: f64| ms / 10.0 / secs / f64::from(cores);
        let known = !cpu.is_empty();
        let cpu_ms: u64 = cpu.iter().sum();
        let saturated_seconds = cpu
            .iter()
            .filter(|ms| pct(**ms as f64, 1.0) >= SATURATED_PCT)
            .count() as u64;
        let timer = report.histograms.get(names::GENERATOR_TIMER_LAG);
        let timer_lag_p90_us = timer.map(|h| h.p90_us);
        let timer_lag_p99_us = timer.map(|h| h.p99_us);
        let start_lag_p99_us = report
            .histograms
            .get(names::GENERATOR_START_LAG)
            .map(|h| h.p99_us);
        let wait = report.histograms.get(names::GENERATOR_RUN_WAIT);
        let run_wait_p90_us = wait.map(|h| h.p90_us);
        let mut bound = Vec::new();
        if saturated_seconds >= SATURATED_SECONDS_BOUND {
            bound.push(format!(
                "CPU at or above {SATURATED_PCT}% of its {cores} core{} in {saturated_seconds} s of the load",
                if cores == 1 { "" } else { "s" }
            ));
        }
        // The two probes of the generator's delays, judged alike: their
        // p90 over enough ticks against a bound.
        let probes = [
            (timer, LAG_BOUND_US, "timer lag p90 {p90} (bound {bound})"),
            (
                wait,
                RUN_WAIT_BOUND_US,
                "its threads waited for a CPU p90 {p90} of every 100 ms (bound {bound}): \
                 another process or too few cores",
            ),
        ];
        for (h, limit, reason) in probes {
            if let Some(h) = h
                && h.count >= LAG_MIN_SAMPLES
                && h.p90_us >= limit
            {
                bound.push(
                    reason
                        .replace("{p90}", &fmt_us(h.p90_us))
                        .replace("{bound}", &fmt_us(limit)),
                );
            }
        }
        let round = |x: f64| (x * 10.0).round() / 10.0;
        GeneratorReport {
            cores,
            cpu_seconds: known.then(|| cpu_ms as f64 / 1000.0),
            cpu_mean_pct: known.then(|| round(pct(cpu_ms as f64, report.duration_secs()))),
            cpu_peak_pct: cpu.iter().max().map(|ms| round(pct(*ms as f64, 1.0))),
            saturated_seconds,
            timer_lag_p90_us,
            timer_lag_p99_us,
            start_lag_p99_us,
            run_wait_p90_us,
            bound,
        }
    }

    /// Whether the results are generator-bound.
    pub fn is_bound(&self) -> bool {
        !self.bound.is_empty()
    }

    /// One line of figures: `generator: 2 cores, CPU 12.3 s (mean 41%,
    /// peak 97% of 2 cores; 0 s saturated), timer lag p90 1.1ms p99 1.2ms,
    /// start lag p99 850µs`.
    pub fn line(&self) -> String {
        let cores = format!(
            "{} core{}",
            self.cores,
            if self.cores == 1 { "" } else { "s" }
        );
        let mut out = format!("generator: {cores}");
        match (self.cpu_seconds, self.cpu_mean_pct, self.cpu_peak_pct) {
            (Some(secs), Some(mean), Some(peak)) => {
                let _ = write!(
                    out,
                    ", CPU {secs:.1} s (mean {mean}%, peak {peak}% of {cores}; {} s saturated)",
                    self.saturated_seconds
                );
            }
            _ => out.push_str(", CPU not measured"),
        }
        if let (Some(p90), Some(p99)) = (self.timer_lag_p90_us, self.timer_lag_p99_us) {
            let _ = write!(out, ", timer lag p90 {} p99 {}", fmt_us(p90), fmt_us(p99));
        }
        if let Some(us) = self.start_lag_p99_us {
            let _ = write!(out, ", start lag p99 {}", fmt_us(us));
        }
        if let Some(us) = self.run_wait_p90_us {
            let _ = write!(out, ", run-queue wait p90 {} per 100ms", fmt_us(us));
        }
        out
    }

    /// The summary's warning when the results are generator-bound.
    pub fn warning(&self) -> Option<String> {
        self.is_bound().then(|| {
            format!(
                "WARNING: the results are generator-bound: {}. The latencies include the \
                 generator's own delays: give it more cores (--workers, or --shard on more \
                 machines) or less load.",
                self.bound.join("; ")
            )
        })
    }
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

impl RunReport {
    /// Reads a report from JSON, checking its version. Older versions
    /// read as the current one without what they lack (version 1 has no
    /// `label`, version 2 no `generator` nor `cpuMs`).
    pub fn from_json(text: &str) -> Result<RunReport, ReportError> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let found = v.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if !(1..=REPORT_VERSION).contains(&found) {
            return Err(ReportError::Version { found });
        }
        let mut report: RunReport = serde_json::from_value(v)?;
        report.version = REPORT_VERSION;
        Ok(report)
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

    /// Evaluates `thresholds` on `snap` (this report's metrics, decoded
    /// once by the caller) and keeps the results in `thresholds`.
    pub fn evaluate(&mut self, thresholds: &[Threshold], snap: &MetricsSnapshot) {
        let secs = self.duration_secs();
        self.thresholds = thresholds.iter().map(|t| t.evaluate(snap, secs)).collect();
    }

    /// Merges the reports of processes that ran parts of the same load at
    /// the same time (workers, or shards on several machines): histograms
    /// merge exactly, counters and clients add up, the series add up by
    /// wall-clock second (each part's seconds shifted by its start's offset
    /// from the earliest start), the times and the duration span all parts
    /// (earliest start to latest end), `complete` only if every part is.
    /// Metadata (tool, target, scenario, machine, shard) comes from the
    /// first part; `workers` adds up; thresholds are left empty (evaluate
    /// them on the merged metrics). Parts whose times do not parse (not
    /// RFC 3339) fall back to the longest part and unshifted series.
    pub fn merge(parts: &[RunReport]) -> Result<RunReport, ReportError> {
        let first = parts.first().ok_or(ReportError::Empty)?;
        let mut snap = MetricsSnapshot::default();
        for p in parts {
            let mut s = p.snapshot()?;
            s.connected = 0;
            snap.merge(&s);
        }
        let mut merged = first.clone();
        let times: Option<Vec<(i128, i128)>> = parts
            .iter()
            .map(|p| Some((unix_ms(&p.started_at)?, unix_ms(&p.ended_at)?)))
            .collect();
        let series: Vec<Vec<SecondSample>>;
        match times {
            Some(times) => {
                let (start, start_i) = (0..parts.len())
                    .map(|i| (times[i].0, i))
                    .min()
                    .expect("a part");
                let (end, end_i) = (0..parts.len())
                    .map(|i| (times[i].1, i))
                    .max()
                    .expect("a part");
                merged.started_at = parts[start_i].started_at.clone();
                merged.ended_at = parts[end_i].ended_at.clone();
                merged.duration_ms = (end - start).max(0) as u64;
                series = parts
                    .iter()
                    .zip(&times)
                    .map(|(p, (s, _))| shift_series(&p.series, s - start))
                    .collect();
            }
            None => {
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
                series = parts.iter().map(|p| p.series.clone()).collect();
            }
        }
        merged.workers = parts.iter().map(|p| p.workers).sum();
        merged.clients = parts.iter().map(|p| p.clients).sum();
        merged.complete = parts.iter().all(|p| p.complete);
        merged.abort_reason = parts.iter().find_map(|p| p.abort_reason.clone());
        merged.series = merge_series(&series);
        merged.thresholds = Vec::new();
        merged.mismatches = parts.iter().flat_map(|p| p.mismatches.clone()).collect();
        merged.mismatches.sort_by_key(|m| m.at_ms);
        // A label the parts do not share is no label of the whole.
        if parts.iter().any(|p| p.label != first.label) {
            merged.label = None;
        }
        // Re-encoded: the summary numbers describe the merged histograms.
        merged.set_metrics(&snap);
        if parts.iter().any(|p| p.generator.is_some()) {
            // Workers share their machine's cores; shards add theirs.
            let mut machines: BTreeMap<&str, u32> = BTreeMap::new();
            for p in parts {
                let cores = p.generator.as_ref().map_or(p.machine.cpus, |g| g.cores);
                machines.insert(&p.machine.hostname, cores);
            }
            let cores = machines.values().sum();
            merged.generator = Some(GeneratorReport::assess(&merged, cores));
        }
        Ok(merged)
    }

    /// `label: …, tool: …` (the label only when there is one).
    pub fn provenance(&self) -> String {
        match &self.label {
            Some(l) => format!("label: {l}, tool: {}", self.tool),
            None => format!("tool: {}", self.tool),
        }
    }

    /// Load duration in seconds (at least 1 ms, so rates stay finite).
    pub fn duration_secs(&self) -> f64 {
        self.duration_ms.max(1) as f64 / 1000.0
    }

    /// The text summary (loadgen prints it and writes `summary.txt`;
    /// `reports show` prints it): per histogram count, rate, p50, p90,
    /// p99, p99.9, max; counters; errors by code; thresholds.
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
        let _ = writeln!(out, "{}", self.provenance());
        if let Some(g) = &self.generator {
            let _ = writeln!(out, "{}", g.line());
            if let Some(w) = g.warning() {
                let _ = writeln!(out, "\n{w}");
            }
        }
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
            .partition(|(k, _)| names::error_code(k).is_some());
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
            let width = errors
                .iter()
                .map(|(k, _)| k.len() - names::ERRORS.len())
                .max()
                .unwrap_or(0);
            for (name, n) in errors.iter().filter(|(_, n)| **n > 0) {
                let _ = writeln!(out, "  {:<width$} {n:>10}", &name[names::ERRORS.len()..]);
            }
        }
        if !self.mismatches.is_empty() {
            let _ = writeln!(out, "\nfirst mismatches ({})", self.mismatches.len());
            for m in &self.mismatches {
                let _ = writeln!(
                    out,
                    "  vu {} ({}) {} {}: expected {}, got {}",
                    m.vu, m.group, m.step, m.event, m.expected, m.got
                );
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

/// Unix milliseconds of an RFC 3339 time.
fn unix_ms(s: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() / 1_000_000)
}

/// A part's series on the merged clock: the part started `offset_ms`
/// after the earliest part, so its second `t` (ending `t` s after its own
/// start) is the merged second it overlaps most, the one whose end is
/// nearest: round(offset + t). Shards started together a few ms apart
/// share their seconds (a ceiling would move the later one's every second
/// to the next, and their clients would never add up).
fn shift_series(series: &[SecondSample], offset_ms: i128) -> Vec<SecondSample> {
    let offset_ms = offset_ms.max(0) as u64;
    let mut out: Vec<SecondSample> = Vec::with_capacity(series.len());
    for s in series {
        let mut t = ((offset_ms + s.t * 1000 + 500) / 1000).max(1);
        // Two samples of one part never share a second.
        if let Some(prev) = out.last() {
            t = t.max(prev.t + 1);
        }
        out.push(SecondSample { t, ..s.clone() });
    }
    out
}

/// How a threshold's actual value reads: a duration for latency stats.
fn format_actual(expr: &str, v: f64) -> String {
    let is_time = Threshold::parse(expr)
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

/// [`fmt_us`] of a fractional number of µs (a mean, a limit): `12.5µs`
/// below 1 ms, `∞` for infinity.
pub fn fmt_us_f(us: f64) -> String {
    if us.is_infinite() {
        "∞".to_owned()
    } else if us < 1_000.0 && us.fract() != 0.0 {
        format!("{us:.1}µs")
    } else {
        fmt_us(us.round().max(0.0) as u64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    /// A small report of `seconds` with `values` in `ack.x` (tests here and
    /// in the schema module).
    pub(crate) fn sample(values: &[u64], seconds: u64) -> RunReport {
        let mut snap = MetricsSnapshot::default();
        let mut h = new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        snap.histograms.insert("ack.x".into(), h);
        snap.counters.insert("sent.x".into(), values.len() as u64);
        let mut r = RunReport {
            version: REPORT_VERSION,
            tool: "loadgen test".into(),
            label: None,
            target: "http://127.0.0.1:1".into(),
            scenario: ScenarioMeta {
                name: "t".into(),
                file: "t.toml".into(),
                hash: "0123456789abcdef".into(),
            },
            started_at: "2025-01-01T00:00:00.000Z".into(),
            ended_at: format!("2025-01-01T00:00:0{seconds}.000Z"),
            duration_ms: seconds * 1000,
            machine: Machine {
                hostname: "h".into(),
                os: "linux-x86_64".into(),
                cpus: 2,
            },
            shard: None,
            workers: 1,
            clients: 5,
            complete: true,
            abort_reason: None,
            histograms: BTreeMap::new(),
            counters: BTreeMap::new(),
            series: (1..=seconds)
                .map(|t| SecondSample {
                    t,
                    connected: 5,
                    sent: 1,
                    received: 2,
                    errors: 0,
                    p99_us: Some(10),
                    cpu_ms: Some(100),
                })
                .collect(),
            thresholds: Vec::new(),
            mismatches: Vec::new(),
            generator: None,
        };
        r.set_metrics(&snap);
        r.generator = Some(GeneratorReport::assess(&r, 2));
        r
    }

    #[test]
    fn a_busy_or_late_generator_is_bound_and_says_why() {
        let mut r = sample(&[1000], 4);
        let g = r.generator.clone().unwrap();
        assert!(!g.is_bound(), "{g:?}");
        assert_eq!(g.cpu_seconds, Some(0.4));
        assert_eq!((g.cpu_mean_pct, g.cpu_peak_pct), (Some(5.0), Some(5.0)));
        assert!(!r.summary_text().contains("WARNING"));

        // 1.9 of 2 cores in 3 seconds: saturated (95% >= 90%).
        for s in r.series.iter_mut().take(3) {
            s.cpu_ms = Some(1900);
        }
        let g = GeneratorReport::assess(&r, 2);
        assert_eq!(g.saturated_seconds, 3);
        assert_eq!(g.cpu_peak_pct, Some(95.0));
        assert_eq!(g.bound.len(), 1, "{g:?}");
        // The same CPU on 4 cores is not saturated.
        assert!(!GeneratorReport::assess(&r, 4).is_bound());

        let mut late = sample(&[1000], 4);
        let mut snap = late.snapshot().unwrap();
        // One stall in 30 ticks moves the p99, not the p90.
        let mut h = new_histogram();
        h.record_n(900, 29).unwrap();
        h.record(80_000).unwrap();
        snap.histograms
            .insert(names::GENERATOR_TIMER_LAG.into(), h.clone());
        late.set_metrics(&snap);
        assert!(!GeneratorReport::assess(&late, 2).is_bound());
        // Four in 30: one tick in ten at 80 ms.
        h.record_n(80_000, 3).unwrap();
        snap.histograms.insert(names::GENERATOR_TIMER_LAG.into(), h);
        late.set_metrics(&snap);
        late.generator = Some(GeneratorReport::assess(&late, 2));
        let text = late.summary_text();
        assert!(
            text.contains(
                "\nWARNING: the results are generator-bound: timer lag p90 80.1ms (bound 50.0ms)."
            ),
            "{text}"
        );
        assert!(
            text.contains(", timer lag p90 80.1ms p99 80.1ms\n"),
            "{text}"
        );
        // Threads kept waiting for a CPU: a third of every tick, in most.
        let mut waiting = sample(&[1000], 4);
        let mut snap = waiting.snapshot().unwrap();
        let mut h = new_histogram();
        h.record_n(20_000, 25).unwrap();
        snap.histograms
            .insert(names::GENERATOR_RUN_WAIT.into(), h.clone());
        waiting.set_metrics(&snap);
        let g = GeneratorReport::assess(&waiting, 1);
        assert!(!g.is_bound(), "20 ms of 100: not bound {g:?}");
        assert_eq!(g.run_wait_p90_us.map(|us| us / 1000), Some(20));
        h.record_n(45_000, 25).unwrap();
        snap.histograms.insert(names::GENERATOR_RUN_WAIT.into(), h);
        waiting.set_metrics(&snap);
        let g = GeneratorReport::assess(&waiting, 1);
        assert_eq!(g.bound.len(), 1, "{g:?}");
        assert!(
            g.bound[0].starts_with("its threads waited for a CPU p90 45."),
            "{g:?}"
        );
        assert!(
            g.line().ends_with(", run-queue wait p90 45.0ms per 100ms"),
            "{}",
            g.line()
        );
        // Too few ticks to judge.
        let mut short = sample(&[1000], 1);
        let mut h = new_histogram();
        h.record_n(80_000, 10).unwrap();
        let mut snap = short.snapshot().unwrap();
        snap.histograms.insert(names::GENERATOR_TIMER_LAG.into(), h);
        short.set_metrics(&snap);
        assert!(!GeneratorReport::assess(&short, 2).is_bound());
    }

    #[test]
    fn durations_format() {
        assert_eq!(fmt_us(850), "850µs");
        assert_eq!(fmt_us(12_345), "12.3ms");
        assert_eq!(fmt_us(4_560_000), "4.56s");
        assert_eq!(fmt_us_f(12.5), "12.5µs");
        assert_eq!(fmt_us_f(1500.0), "1.5ms");
        assert_eq!(fmt_us_f(f64::INFINITY), "∞");
    }

    #[test]
    fn json_round_trips_and_versions_are_checked() {
        let r = sample(&[1, 2, 3], 2);
        let back = RunReport::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let newer = r.to_json().replace("\"version\": 3", "\"version\": 4");
        assert!(matches!(
            RunReport::from_json(&newer),
            Err(ReportError::Version { found: 4 })
        ));
        // Version 2 (no `generator`, no `cpuMs`) reads as version 3.
        let mut v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        v["version"] = 2.into();
        v.as_object_mut().unwrap().remove("generator");
        for s in v["series"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("cpuMs");
        }
        let old = RunReport::from_json(&v.to_string()).unwrap();
        assert_eq!(
            (old.version, old.generator, old.series[0].cpu_ms),
            (3, None, None)
        );
    }

    pub(crate) fn mismatch(at_ms: u64, got: &str) -> Mismatch {
        Mismatch {
            at_ms,
            vu: at_ms,
            group: "g".into(),
            step: Mismatch::EMIT_ACK.into(),
            event: "x".into(),
            expected: r#"{"ok":true}"#.into(),
            got: got.into(),
        }
    }

    #[test]
    fn mismatches_are_cut_merged_in_time_order_and_shown() {
        let long = serde_json::json!({ "s": "é".repeat(MISMATCH_TEXT_MAX) });
        let t = Mismatch::text(&long);
        assert!(
            t.len() <= MISMATCH_TEXT_MAX && t.ends_with('…'),
            "{}",
            t.len()
        );
        assert_eq!(Mismatch::text(&serde_json::json!({"a": 1})), r#"{"a":1}"#);

        let mut a = sample(&[1], 1);
        a.mismatches = vec![mismatch(5, "a5"), mismatch(9, "a9")];
        let mut b = sample(&[2], 1);
        b.mismatches = vec![mismatch(7, "b7")];
        let m = RunReport::merge(&[a, b]).unwrap();
        let got: Vec<&str> = m.mismatches.iter().map(|m| m.got.as_str()).collect();
        assert_eq!(got, ["a5", "b7", "a9"]);
        let text = m.summary_text();
        assert!(text.contains("first mismatches (3)"), "{text}");
        assert!(
            text.contains(r#"vu 7 (g) emit_ack x: expected {"ok":true}, got b7"#),
            "{text}"
        );
        // Kept in the JSON only when there are some.
        assert!(m.to_json().contains("\"mismatches\""));
        assert!(!sample(&[1], 1).to_json().contains("mismatches"));
    }

    #[test]
    fn merge_is_exact_and_spans_the_parts() {
        let a = sample(&[10, 20, 30], 3);
        let mut b = sample(&[40, 50], 5);
        b.complete = false;
        b.abort_reason = Some("target lost".into());
        let m = RunReport::merge(&[a.clone(), b.clone()]).unwrap();
        let h = m.snapshot().unwrap().histograms.remove("ack.x").unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(m.histograms["ack.x"].count, 5);
        assert_eq!(m.counters["sent.x"], 5);
        assert_eq!((m.workers, m.clients, m.duration_ms), (2, 10, 5000));
        assert_eq!(m.ended_at, b.ended_at);
        assert_eq!(m.series[0].connected, 10);
        assert!(!m.complete);
        assert_eq!(m.abort_reason.as_deref(), Some("target lost"));
        // Two workers on one 2-core machine: their CPU adds up per second.
        let g = m.generator.unwrap();
        assert_eq!((g.cores, g.cpu_peak_pct), (2, Some(10.0)));
        assert!(matches!(RunReport::merge(&[]), Err(ReportError::Empty)));
    }

    #[test]
    fn shards_align_on_the_wall_clock() {
        // Shard a ran 10:00:00.000–10:00:03.000, shard b 10:00:02.500–
        // 10:00:07.500: the whole spans 7.5 s, and b's first second (ending
        // 10:00:03.500) is the merged fourth.
        let mut a = sample(&[10, 20, 30], 3);
        a.started_at = "2025-01-01T10:00:00.000Z".into();
        a.ended_at = "2025-01-01T10:00:03.000Z".into();
        let mut b = sample(&[40, 50], 5);
        b.started_at = "2025-01-01T10:00:02.500Z".into();
        b.ended_at = "2025-01-01T10:00:07.500Z".into();
        for parts in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
            let m = RunReport::merge(&parts).unwrap();
            assert_eq!(m.duration_ms, 7500);
            assert_eq!(m.started_at, a.started_at);
            assert_eq!(m.ended_at, b.ended_at);
            let ts: Vec<(u64, i64)> = m.series.iter().map(|s| (s.t, s.connected)).collect();
            assert_eq!(
                ts,
                vec![
                    (1, 5),
                    (2, 5),
                    (3, 5),
                    (4, 5),
                    (5, 5),
                    (6, 5),
                    (7, 5),
                    (8, 5)
                ]
            );
        }
        // Both at once: the second shard's seconds add onto the first's,
        // also when it started a few ms later.
        let m = RunReport::merge(&[a.clone(), a.clone()]).unwrap();
        assert_eq!(m.duration_ms, 3000);
        assert_eq!(m.series.len(), 3);
        assert_eq!(m.series[0].connected, 10);
        let mut late = a.clone();
        late.started_at = "2025-01-01T10:00:00.004Z".into();
        late.ended_at = "2025-01-01T10:00:03.004Z".into();
        let m = RunReport::merge(&[a.clone(), late]).unwrap();
        let ts: Vec<(u64, i64)> = m.series.iter().map(|s| (s.t, s.connected)).collect();
        assert_eq!(ts, vec![(1, 10), (2, 10), (3, 10)]);
        // Unparseable times: the longest part, series as they are.
        let mut c = sample(&[1], 2);
        c.started_at = "yesterday".into();
        let m = RunReport::merge(&[a, c]).unwrap();
        assert_eq!(m.duration_ms, 3000);
        assert_eq!(m.series[0].connected, 10);
    }

    #[test]
    fn thresholds_evaluate_on_the_report() {
        let mut r = sample(&[1000; 10], 2);
        let ts = crate::threshold::parse_all(&["ack.x.p99 < 2ms", "sent.x.rate > 10"]).unwrap();
        let snap = r.snapshot().unwrap();
        r.evaluate(&ts, &snap);
        assert!(r.thresholds[0].passed);
        assert_eq!(r.thresholds[1].actual, Some(5.0));
        assert!(!r.thresholds[1].passed);
    }

    #[test]
    fn threshold_actuals_read_by_kind() {
        assert_eq!(format_actual("connect.p99 < 1s", 12_345.0), "12.3ms");
        assert_eq!(format_actual("connect.p99.9 < 1s", 850.0), "850µs");
        assert_eq!(format_actual("sent.x.count > 1", 7.0), "7");
        assert_eq!(format_actual("sent.x.rate > 1", 2.5), "2.50");
    }

    #[test]
    fn summary_reads_like_loadgen_prints_it() {
        let mut r = sample(&[1000, 2000, 3000], 2);
        r.counters.insert("errors.timeout".into(), 2);
        let ts = crate::threshold::parse_all(&["ack.x.p99 < 2ms"]).unwrap();
        let snap = r.snapshot().unwrap();
        r.evaluate(&ts, &snap);
        let text = r.summary_text();
        assert!(
            text.starts_with(
                "loadgen: t against http://127.0.0.1:1: 5 clients, 1 worker, 2.0 s, complete\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nack.x"), "{text}");
        assert!(
            text.contains("\nerrors by code (2)\n  timeout          2\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  FAIL ack.x.p99 < 2ms (actual: 3.0ms)\n"),
            "{text}"
        );
    }
}
