//! The files of a run's output folder: `report.json` (the run report,
//! [`formats::report::RunReport`], schema in [`formats::schema`]), the
//! per-second series as CSV (`series.csv`) and a text summary
//! (`summary.txt`, also printed).

use std::fmt::Write as _;
use std::path::Path;

use formats::fmt_us;
use formats::metrics::SecondSample;
use formats::names;
use formats::report::RunReport;
use formats::threshold::Threshold;

/// Writes `report.json`, `series.csv` and `summary.txt` into `dir`
/// (created if missing).
pub fn write_to(report: &RunReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), report.to_json())?;
    std::fs::write(dir.join("series.csv"), series_csv(&report.series)?)?;
    std::fs::write(dir.join("summary.txt"), summary_text(report))?;
    Ok(())
}

/// The text summary: per histogram count, rate, p50, p90, p99, p99.9,
/// max; counters; errors by code; thresholds.
pub fn summary_text(report: &RunReport) -> String {
    let mut out = String::new();
    let secs = report.duration_secs();
    let state = if report.complete {
        "complete".to_owned()
    } else {
        format!(
            "INCOMPLETE: {}",
            report.abort_reason.as_deref().unwrap_or("aborted")
        )
    };
    let shard = report
        .shard
        .map(|s| format!(", shard {}/{}", s.index, s.count))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "loadgen: {} against {}: {} clients, {} worker{}{shard}, {:.1} s, {state}",
        report.scenario.name,
        report.target,
        report.clients,
        report.workers,
        if report.workers == 1 { "" } else { "s" },
        secs,
    );
    if report.histograms.is_empty() {
        let _ = writeln!(out, "\nno latency recorded");
    } else {
        let width = report
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
        for (name, h) in &report.histograms {
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
    let (errors, counters): (Vec<_>, Vec<_>) = report
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
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "\nthresholds");
        for t in &report.thresholds {
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

    #[test]
    fn threshold_actuals_read_by_kind() {
        assert_eq!(format_actual("connect.p99 < 1s", 12_345.0), "12.3ms");
        assert_eq!(format_actual("connect.p99.9 < 1s", 850.0), "850µs");
        assert_eq!(format_actual("sent.x.count > 1", 7.0), "7");
        assert_eq!(format_actual("sent.x.rate > 1", 2.5), "2.50");
    }
}
