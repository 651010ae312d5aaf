//! The files of a run's output folder: `report.json` (the run report,
//! [`formats::report::RunReport`], schema in [`formats::schema`]), the
//! per-second series as CSV (`series.csv`) and the text summary
//! (`summary.txt`, [`RunReport::summary_text`], also printed).

use std::path::Path;

use formats::metrics::SecondSample;
use formats::report::RunReport;

/// Writes `report.json`, `series.csv` and `summary.txt` into `dir`
/// (created if missing).
pub fn write_to(report: &RunReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), report.to_json())?;
    std::fs::write(dir.join("series.csv"), series_csv(&report.series)?)?;
    std::fs::write(dir.join("summary.txt"), report.summary_text())?;
    Ok(())
}

/// The series as CSV: `t,connected,sent,received,errors,p99_us,cpu_ms`
/// (an empty `p99_us` when the second had no sample, an empty `cpu_ms`
/// where the generator's CPU is not measured).
pub fn series_csv(series: &[SecondSample]) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "t",
        "connected",
        "sent",
        "received",
        "errors",
        "p99_us",
        "cpu_ms",
    ])
    .map_err(std::io::Error::other)?;
    for s in series {
        w.write_record([
            s.t.to_string(),
            s.connected.to_string(),
            s.sent.to_string(),
            s.received.to_string(),
            s.errors.to_string(),
            s.p99_us.map(|v| v.to_string()).unwrap_or_default(),
            s.cpu_ms.map(|v| v.to_string()).unwrap_or_default(),
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
            cpu_ms: Some(120),
        }])
        .unwrap();
        assert_eq!(
            csv,
            "t,connected,sent,received,errors,p99_us,cpu_ms\n1,2,3,4,0,,120\n"
        );
    }
}
