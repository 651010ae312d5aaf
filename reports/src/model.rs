//! Loading an input file: which kind it is (a loadgen run report or a
//! conformance result), which format version, and its data.
//!
//! A loadgen report is checked in this order, each step with its own clear
//! error: JSON; kind; `version` (readable versions: [`LOADGEN_VERSIONS`]);
//! the report's JSON Schema ([`formats::schema`], the contract); the Rust
//! types of [`formats::report`]; every histogram decoded, its count
//! matching its summary. A conformance result is read into
//! [`formats::conformance`]'s types.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;

use formats::conformance::{RESULT_VERSION, RunReport as ConformanceResult};
use formats::histogram::decode_histogram;
use formats::metrics::MetricsSnapshot;
use formats::report::{REPORT_VERSION, RunReport};
use serde_json::Value;

/// Versions of the loadgen report this build reads. Version 1 is the first
/// versioned format; when loadgen bumps [`REPORT_VERSION`], the older
/// versions that can still be read are converted in [`read_loadgen`] (and
/// listed here), the others get an error that says why.
pub const LOADGEN_VERSIONS: RangeInclusive<u32> = 1..=REPORT_VERSION;

/// Versions of the conformance `--json` result this build reads.
pub const CONFORMANCE_VERSIONS: RangeInclusive<u32> = 1..=RESULT_VERSION;

/// An input that cannot be used; the message names the file. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    pub path: String,
    pub message: String,
}

impl InputError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A file given on the command line.
#[derive(Debug, Clone)]
pub enum Input {
    Load(Box<LoadRun>),
    Conformance(Box<ConformanceRun>),
}

impl Input {
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Load(_) => "a loadgen run report",
            Input::Conformance(_) => "a conformance result",
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Input::Load(r) => &r.path,
            Input::Conformance(r) => &r.path,
        }
    }
}

/// A loadgen run report with its histograms decoded.
#[derive(Debug, Clone)]
pub struct LoadRun {
    /// The file it was read from (for messages).
    pub path: String,
    pub report: RunReport,
    /// Every histogram of `report.histograms`, decoded exactly, and the
    /// counters.
    pub metrics: MetricsSnapshot,
}

/// A conformance result and the file it came from.
#[derive(Debug, Clone)]
pub struct ConformanceRun {
    pub path: String,
    pub result: ConformanceResult,
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Input, InputError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
    parse(&name, &text)
}

/// Reads a loadgen run report from `path`; another kind is an error.
pub fn load_run(path: &Path) -> Result<LoadRun, InputError> {
    match load(path)? {
        Input::Load(r) => Ok(*r),
        other => Err(InputError::new(
            other.path(),
            format!(
                "is {}; this command takes a loadgen run report (report.json)",
                other.kind()
            ),
        )),
    }
}

/// Parses `text` (named `name` in messages).
pub fn parse(name: &str, text: &str) -> Result<Input, InputError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InputError::new(name, format!("not valid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(InputError::new(
            name,
            "expected a JSON object: a loadgen report.json or a conformance --json result",
        ));
    };
    let tool = obj.get("tool").and_then(Value::as_str).unwrap_or("");
    if tool.starts_with("conformance") || (tool.is_empty() && obj.contains_key("cases")) {
        read_conformance(name, value).map(|r| Input::Conformance(Box::new(r)))
    } else if tool.starts_with("loadgen") || obj.contains_key("histograms") {
        read_loadgen(name, value).map(|r| Input::Load(Box::new(r)))
    } else {
        Err(InputError::new(
            name,
            "neither a loadgen run report (`tool: \"loadgen …\"`, `histograms`, `counters`, `series`) \
             nor a conformance result (`tool: \"conformance …\"`, `cases`)",
        ))
    }
}

fn version_of(
    name: &str,
    value: &Value,
    what: &str,
    readable: &RangeInclusive<u32>,
) -> Result<u32, InputError> {
    match value.get("version") {
        None => Err(InputError::new(
            name,
            format!(
                "{what} without a `version` field: written before the format was versioned, \
                 or not such a file at all; this reports reads versions {}",
                versions(readable)
            ),
        )),
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                InputError::new(
                    name,
                    format!("{what}: `version` is {v}, expected a whole number"),
                )
            }),
    }
}

fn versions(r: &RangeInclusive<u32>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("{} to {}", r.start(), r.end())
    }
}

fn unsupported(name: &str, what: &str, found: u32, readable: &RangeInclusive<u32>) -> InputError {
    let why = if found > *readable.end() {
        "it was written by a newer release; use `reports` from that release (or newer)"
    } else {
        "that format is older than the oldest one this release can read; \
         re-run the tool, or use `reports` from the release that wrote it"
    };
    InputError::new(
        name,
        format!(
            "{what} version {found} is not supported (this reports reads version {}): {why}",
            versions(readable)
        ),
    )
}

/// Checks and reads a loadgen report (see the module documentation).
pub fn read_loadgen(name: &str, mut value: Value) -> Result<LoadRun, InputError> {
    const WHAT: &str = "loadgen run report";
    let version = version_of(name, &value, WHAT, &LOADGEN_VERSIONS)?;
    // One arm per readable version; an older one is converted to the
    // current types here. Version 2 added the optional `label`, version 3
    // the optional `generator` and `cpuMs`: an older report is a version 3
    // report without them.
    if version < REPORT_VERSION {
        value["version"] = Value::from(REPORT_VERSION);
    }
    let report: RunReport = match version {
        1..=REPORT_VERSION => {
            check_schema(name, &value)?;
            serde_json::from_value(value).map_err(|e| {
                InputError::new(name, format!("does not match the report types: {e}"))
            })?
        }
        found => return Err(unsupported(name, WHAT, found, &LOADGEN_VERSIONS)),
    };
    let mut histograms = BTreeMap::new();
    for (metric, summary) in &report.histograms {
        let h = decode_histogram(&summary.hdr)
            .map_err(|e| InputError::new(name, format!("histogram `{metric}`: {e}")))?;
        if h.len() != summary.count {
            return Err(InputError::new(
                name,
                format!(
                    "histogram `{metric}`: `count` says {} but its HDR data holds {} samples",
                    summary.count,
                    h.len()
                ),
            ));
        }
        histograms.insert(metric.clone(), h);
    }
    let metrics = MetricsSnapshot {
        histograms,
        counters: report.counters.clone(),
        connected: report.series.last().map_or(0, |s| s.connected),
    };
    Ok(LoadRun {
        path: name.to_owned(),
        report,
        metrics,
    })
}

/// Validates against the report's JSON Schema; lists the first errors
/// with their JSON pointers.
fn check_schema(name: &str, value: &Value) -> Result<(), InputError> {
    let errors: Vec<String> = formats::schema::report_errors(value)
        .iter()
        .map(|e| format!("  {e}"))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let shown = errors.len().min(8);
    let mut message = format!(
        "not a valid loadgen run report ({} schema error{}):\n{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        errors[..shown].join("\n")
    );
    if errors.len() > shown {
        message.push_str(&format!("\n  … and {} more", errors.len() - shown));
    }
    Err(InputError::new(name, message))
}

/// Checks and reads a conformance result.
pub fn read_conformance(name: &str, value: Value) -> Result<ConformanceRun, InputError> {
    const WHAT: &str = "conformance result";
    let version = version_of(name, &value, WHAT, &CONFORMANCE_VERSIONS)?;
    if !CONFORMANCE_VERSIONS.contains(&version) {
        return Err(unsupported(name, WHAT, version, &CONFORMANCE_VERSIONS));
    }
    let result: ConformanceResult = serde_json::from_value(value)
        .map_err(|e| InputError::new(name, format!("not a valid conformance result: {e}")))?;
    Ok(ConformanceRun {
        path: name.to_owned(),
        result,
    })
}

impl LoadRun {
    /// Load duration in seconds (the denominator of every rate).
    pub fn secs(&self) -> f64 {
        self.report.duration_secs()
    }

    /// Errors: every `errors.*` counter plus `connect_failures` (as in the
    /// report's series).
    pub fn errors(&self) -> u64 {
        self.metrics.errors()
    }

    /// Operations that could fail ([`MetricsSnapshot::attempts`]).
    pub fn attempts(&self) -> u64 {
        self.metrics.attempts()
    }

    /// Errors as a percentage of [`LoadRun::attempts`]; `None` without
    /// attempts.
    pub fn error_rate_pct(&self) -> Option<f64> {
        self.metrics.error_rate_pct()
    }

    /// Non-zero error counters by code (`errors.` stripped), then
    /// `connect_failures`.
    pub fn errors_by_code(&self) -> Vec<(String, u64)> {
        self.metrics.errors_by_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart() {
        let e = parse("x.json", "[1]").unwrap_err();
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = parse("x.json", "{\"a\":1}").unwrap_err();
        assert!(e.to_string().contains("neither a loadgen"), "{e}");
        let e = parse("x.json", "{\"tool\":\"loadgen 0.1\"}").unwrap_err();
        assert!(e.to_string().contains("without a `version`"), "{e}");
        assert!(e.to_string().contains("reads versions 1"), "{e}");
        let c = parse(
            "c.json",
            r#"{"version":1,"tool":"conformance 0.1.0","cases":[{"id":"a","verdict":"non-strict"}]}"#,
        )
        .unwrap();
        assert!(matches!(c, Input::Conformance(_)));
    }

    #[test]
    fn versions_are_explained() {
        let e = parse("x.json", r#"{"version":99,"tool":"loadgen 9"}"#).unwrap_err();
        assert!(e.to_string().contains("newer release"), "{e}");
        let e = parse("x.json", r#"{"version":0,"tool":"loadgen 0"}"#).unwrap_err();
        assert!(e.to_string().contains("older than the oldest"), "{e}");
        let e = parse("x.json", r#"{"version":"1","tool":"loadgen 0"}"#).unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
    }
}
