//! Merging the reports of shards (or workers) that ran parts of one load at
//! the same time into one report, exactly.
//!
//! The arithmetic is the report format's ([`RunReport::merge`]): histograms added
//! bucket by bucket (merged percentiles are those of one histogram that
//! recorded every sample), counters and clients summed, series aligned by
//! wall-clock second and summed (the per-second p99 is the largest of the
//! parts'), the times and the duration spanning every part. On top of it this
//! module refuses parts of different scenarios (name or file hash) unless
//! forced, clears `shard` when the parts are every shard of one run (1 to N), and
//! evaluates the parts' thresholds again on the merged metrics.

use std::collections::BTreeSet;

use formats::report::RunReport;
use formats::threshold::Threshold;

use crate::model::LoadRun;

/// Why reports were not merged. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Names both files and scenarios.
    #[error("{0}: refusing to merge reports of different scenarios (--force merges them anyway)")]
    DifferentScenarios(String),
    #[error("{0}")]
    Report(String),
}

/// The merged report and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Merged {
    pub report: RunReport,
    pub warnings: Vec<String>,
}

/// Merges `runs` (see the module documentation).
pub fn merge(runs: &[LoadRun], force: bool) -> Result<Merged, MergeError> {
    let first = runs.first().ok_or(MergeError::Empty)?;
    let mut warnings = Vec::new();
    for other in &runs[1..] {
        let (a, b) = (&first.report.scenario, &other.report.scenario);
        if a.name != b.name || a.hash != b.hash {
            let err = MergeError::DifferentScenarios(format!(
                "{} is scenario `{}` (hash {}) but {} is scenario `{}` (hash {})",
                first.path, a.name, a.hash, other.path, b.name, b.hash
            ));
            if !force {
                return Err(err);
            }
            warnings.push(format!(
                "merging different scenarios (--force): {other} is `{}` ({}), the merged report keeps `{}` ({}) of {}",
                b.name,
                b.hash,
                a.name,
                a.hash,
                first.path,
                other = other.path
            ));
        }
        if other.report.target != first.report.target {
            warnings.push(format!(
                "{} ran against {}, {} against {}",
                first.path, first.report.target, other.path, other.report.target
            ));
        }
    }
    for r in runs.iter().filter(|r| !r.report.complete) {
        warnings.push(format!(
            "{} is incomplete ({}): so is the merged report",
            r.path,
            r.report.abort_reason.as_deref().unwrap_or("aborted")
        ));
    }

    let parts: Vec<RunReport> = runs.iter().map(|r| r.report.clone()).collect();
    let mut merged = RunReport::merge(&parts).map_err(|e| MergeError::Report(e.to_string()))?;

    // Shards (1-based, as in `--shard I/N`): the merged report covers the
    // whole run when the parts are shards 1..=N of one N, each once.
    let shards: Vec<_> = runs.iter().filter_map(|r| r.report.shard).collect();
    if !shards.is_empty() {
        let count = shards[0].count;
        let indexes: BTreeSet<u32> = shards.iter().map(|s| s.index).collect();
        let same_count = shards.iter().all(|s| s.count == count);
        if shards.len() != indexes.len() {
            warnings.push(
                "the same shard index appears more than once: were the same reports given twice?"
                    .to_owned(),
            );
        }
        if same_count
            && shards.len() == runs.len()
            && indexes.len() == shards.len()
            && indexes == (1..=count).collect()
        {
            merged.shard = None;
        } else if same_count && shards.len() == runs.len() {
            let missing: Vec<String> = (1..=count)
                .filter(|i| !indexes.contains(i))
                .map(|i| i.to_string())
                .collect();
            if !missing.is_empty() {
                warnings.push(format!(
                    "shard{} {} of {count} missing: the merged report covers part of the load",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ));
            }
        }
    }

    // Thresholds: the parts' expressions, evaluated on the merged metrics.
    let mut seen = BTreeSet::new();
    let exprs: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.report.thresholds.iter().map(|t| t.expr.as_str()))
        .filter(|e| seen.insert(*e))
        .collect();
    if !exprs.is_empty() {
        let snap = merged
            .snapshot()
            .map_err(|e| MergeError::Report(e.to_string()))?;
        let secs = merged.duration_secs();
        for expr in exprs {
            match Threshold::parse(expr) {
                Ok(t) => merged.thresholds.push(t.evaluate(&snap, secs)),
                Err(e) => warnings.push(format!("threshold dropped: {e}")),
            }
        }
    }
    Ok(Merged {
        report: merged,
        warnings,
    })
}
