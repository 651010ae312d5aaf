//! `reports csv`: percentiles for spreadsheets.

use crate::model::LoadRun;
use crate::svg::nines;

/// Columns of the summary CSV (one row per histogram, latencies in µs).
pub const COLUMNS: [&str; 12] = [
    "metric",
    "count",
    "rate_per_s",
    "min_us",
    "mean_us",
    "p50_us",
    "p90_us",
    "p95_us",
    "p99_us",
    "p999_us",
    "p9999_us",
    "max_us",
];

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String, String> {
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// One row per histogram: count, rate and the percentiles (µs).
pub fn percentiles(run: &LoadRun) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(|e| e.to_string())?;
    for (name, h) in &run.metrics.histograms {
        let q = |q: f64| {
            if h.is_empty() {
                String::new()
            } else {
                h.value_at_quantile(q).to_string()
            }
        };
        let opt = |v: u64| {
            if h.is_empty() {
                String::new()
            } else {
                v.to_string()
            }
        };
        w.write_record([
            name.clone(),
            h.len().to_string(),
            format!("{:.3}", h.len() as f64 / run.secs()),
            opt(h.min()),
            if h.is_empty() {
                String::new()
            } else {
                format!("{:.1}", h.mean())
            },
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99),
            q(0.999),
            q(0.9999),
            opt(h.max()),
        ])
        .map_err(|e| e.to_string())?;
    }
    finish(w)
}

/// The whole percentile distribution of every histogram, HdrHistogram
/// style (`--spectrum`): `metric,percentile,value_us,count,inverted`,
/// with `inverted` = 1/(1 − percentile/100), the x of a log plot.
pub fn spectrum(run: &LoadRun) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["metric", "percentile", "value_us", "count", "inverted"])
        .map_err(|e| e.to_string())?;
    for (name, h) in &run.metrics.histograms {
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            let inverted = if q >= 1.0 {
                String::new()
            } else {
                format!("{:.2}", 10f64.powf(nines(q)))
            };
            w.write_record([
                name.clone(),
                format!("{:.6}", q * 100.0),
                h.highest_equivalent(v.value_iterated_to()).to_string(),
                h.count_between(0, v.value_iterated_to()).to_string(),
                inverted,
            ])
            .map_err(|e| e.to_string())?;
        }
    }
    finish(w)
}
