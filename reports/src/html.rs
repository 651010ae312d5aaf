//! `reports html`: one self-contained HTML file that opens offline. No
//! script, no font, no image file: the style is inline, every chart is an
//! inline SVG drawn in Rust ([`crate::svg`]), and a Content-Security-Policy
//! forbids loading anything at all.

use std::fmt::Write as _;

use crate::compare::{LoadComparison, MetricRow, Verdict};
use crate::fmt::{count, duration, esc, pct, rate};
use crate::model::LoadRun;
use crate::render;
use crate::svg::{self, Fmt, Line};

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       margin: 24px auto; max-width: 1160px; padding: 0 16px; color: #202124; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 22px 0 6px; border-bottom: 1px solid #dadce0; padding-bottom: 4px; }
.sub { color: #5f6368; margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.ok { background: #e6f4ea; color: #137333; } .bad { background: #fce8e6; color: #a50e0e; }
.meta { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 14px; margin: 8px 0; }
.meta dt { color: #5f6368; } .meta dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e8eaed; text-align: right; white-space: nowrap; }
th { background: #f1f3f4; font-weight: 600; } th:first-child, td:first-child { text-align: left; }
td.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
.d { display: block; font-size: 11px; color: #5f6368; }
.worse { color: #a50e0e; font-weight: 600; } .better { color: #137333; } .insufficient { color: #80868b; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px; }
svg.chart { border: 1px solid #e8eaed; border-radius: 6px; background: #fff; }
svg .bg { fill: #fff; } svg .frame { stroke: #bdc1c6; }
svg .grid { stroke: #e8eaed; stroke-width: 1; }
svg text { font: 11px system-ui, "DejaVu Sans", Arial, sans-serif; fill: #5f6368; }
svg .title { font-size: 13px; font-weight: 600; fill: #202124; }
svg .axis-label { font-size: 11px; fill: #3c4043; } svg .empty { font-size: 14px; fill: #80868b; }
.note { color: #5f6368; font-size: 12px; }
"#;

/// The HTML report of `run`, with `base` overlaid when given, and the
/// comparison's verdicts (computed with the same rules as `compare`).
pub fn report(run: &LoadRun, base: Option<&LoadRun>, cmp: Option<&LoadComparison>) -> String {
    let r = &run.report;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>{} — load report</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        esc(&r.scenario.name)
    );

    // Heading and verdict.
    let _ = writeln!(
        out,
        "<h1>Load report: {}</h1>\n<p class=\"sub\">{}{} against {} · {} clients · {:.1} s · {}</p>",
        esc(&r.scenario.name),
        r.label
            .as_ref()
            .map(|l| format!("<b>{}</b> · ", esc(l)))
            .unwrap_or_default(),
        esc(&r.tool),
        esc(&r.target),
        r.clients,
        run.secs(),
        if r.complete {
            "<span class=\"badge ok\">complete</span>".to_owned()
        } else {
            format!(
                "<span class=\"badge bad\">incomplete: {}</span>",
                esc(r.abort_reason.as_deref().unwrap_or("aborted"))
            )
        }
    );
    if let Some(c) = cmp {
        let _ = writeln!(
            out,
            "<p>Compared with the baseline <b>{}</b>: {}</p>",
            esc(&c.base.file),
            if c.regression {
                format!(
                    "<span class=\"badge bad\">regression: {} metric{} worse</span>",
                    c.counts.worse,
                    if c.counts.worse == 1 { "" } else { "s" }
                )
            } else {
                "<span class=\"badge ok\">no regression</span>".to_owned()
            }
        );
        for w in &c.warnings {
            let _ = writeln!(out, "<p class=\"note\">⚠ {}</p>", esc(w));
        }
    }

    if let Some(g) = &r.generator {
        if let Some(w) = g.warning() {
            let _ = writeln!(
                out,
                "<p><span class=\"badge bad\">generator-bound</span> {}</p>",
                esc(&w)
            );
        }
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&g.line()));
    }
    meta(&mut out, run, base);
    summary_table(&mut out, run, cmp);

    // Percentile spectra.
    let _ = writeln!(
        out,
        "<h2>Latency by percentile</h2>\n<p class=\"note\">x: percentile on a log scale (each step one more nine), y: latency; {}dots mark p50, p90, p99 and p99.9 (hover for values).</p>\n<div class=\"charts\">",
        if base.is_some() {
            "solid: this run, dashed: the baseline; "
        } else {
            ""
        }
    );
    let mut names: Vec<&String> = run.metrics.histograms.keys().collect();
    if let Some(b) = base {
        for k in b.metrics.histograms.keys() {
            if !names.contains(&k) {
                names.push(k);
            }
        }
        names.sort();
    }
    for (i, name) in names.iter().enumerate() {
        out.push_str(&svg::spectrum(
            &format!("spectrum-{i}"),
            name,
            run.metrics.histograms.get(*name),
            base.and_then(|b| b.metrics.histograms.get(*name)),
        ));
        out.push('\n');
    }
    if names.is_empty() {
        out.push_str("<p>No latency recorded.</p>");
    }
    out.push_str("</div>\n");

    // Time series.
    let _ = writeln!(
        out,
        "<h2>Over time</h2>\n<p class=\"note\">One point per second of load{}.</p>\n<div class=\"charts\">",
        if base.is_some() {
            "; dashed: the baseline"
        } else {
            ""
        }
    );
    for chart in series_charts(run, base) {
        out.push_str(&chart);
        out.push('\n');
    }
    out.push_str("</div>\n");
    errors_table(&mut out, run, base);
    thresholds_table(&mut out, run);
    let _ = writeln!(
        out,
        "<p class=\"note\">Written by reports {} from {}.</p>\n</body>\n</html>",
        crate::VERSION,
        esc(&run.path)
    );
    out
}

fn meta(out: &mut String, run: &LoadRun, base: Option<&LoadRun>) {
    let r = &run.report;
    let mut rows: Vec<(&str, String)> = vec![
        ("file", run.path.clone()),
        (
            "scenario",
            format!(
                "{} ({}, hash {})",
                r.scenario.name, r.scenario.file, r.scenario.hash
            ),
        ),
        ("started", r.started_at.clone()),
        ("ended", r.ended_at.clone()),
        (
            "machine",
            format!(
                "{} ({}, {} cpus)",
                r.machine.hostname, r.machine.os, r.machine.cpus
            ),
        ),
        (
            "workers",
            format!(
                "{}{}",
                r.workers,
                r.shard
                    .map(|s| format!(" · shard {}/{}", s.index, s.count))
                    .unwrap_or_default()
            ),
        ),
        (
            "operations",
            format!(
                "{} · {} errors ({})",
                count(run.attempts()),
                count(run.errors()),
                run.error_rate_pct().map_or_else(|| "-".to_owned(), pct)
            ),
        ),
    ];
    if let Some(b) = base {
        rows.push((
            "baseline",
            format!(
                "{} ({}, started {}, {:.1} s, {} clients)",
                b.path,
                b.report.scenario.name,
                b.report.started_at,
                b.secs(),
                b.report.clients
            ),
        ));
    }
    out.push_str("<dl class=\"meta\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    out.push_str("</dl>\n");
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Worse => "worse",
        Verdict::Better => "better",
        Verdict::InsufficientData => "insufficient",
        _ => "",
    }
}

fn summary_table(out: &mut String, run: &LoadRun, cmp: Option<&LoadComparison>) {
    out.push_str("<h2>Summary</h2>\n<table class=\"summary\">\n<tr><th>metric</th><th>count</th><th>rate</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>");
    if cmp.is_some() {
        out.push_str("<th>verdict</th>");
    }
    out.push_str("</tr>\n");
    match cmp {
        None => {
            for (name, h) in &run.metrics.histograms {
                let q = |q: f64| {
                    if h.is_empty() {
                        "-".to_owned()
                    } else {
                        duration(h.value_at_quantile(q))
                    }
                };
                let _ = writeln!(
                    out,
                    "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(name),
                    count(h.len()),
                    rate(h.len() as f64 / run.secs()),
                    q(0.5),
                    q(0.9),
                    q(0.99),
                    q(0.999),
                    if h.is_empty() {
                        "-".to_owned()
                    } else {
                        duration(h.max())
                    }
                );
            }
        }
        Some(c) => {
            for m in c
                .metrics
                .iter()
                .filter(|m| m.name != crate::compare::ERRORS)
            {
                compared_row(out, m);
            }
        }
    }
    out.push_str("</table>\n");
    if let Some(c) = cmp {
        let _ = writeln!(
            out,
            "<p class=\"note\">Each cell: this run, then the change from the baseline (hover for both values). Thresholds: {}; at least {} samples per metric; a change counts only beyond its threshold and outside noise (the 95% intervals of the two runs do not overlap).</p>",
            esc(&c.thresholds.join(", ")),
            c.min_samples
        );
    }
}

fn compared_row(out: &mut String, m: &MetricRow) {
    let _ = write!(out, "<tr><td class=\"name\">{}</td>", esc(&m.name));
    for stat in ["count", "rate", "p50", "p90", "p99", "p99.9", "max"] {
        let Some(s) = m.stats.iter().find(|s| s.stat == stat) else {
            out.push_str("<td>-</td>");
            continue;
        };
        let shown = if s.new.is_some() { s.new } else { s.base };
        let mut title = format!(
            "baseline {} → {}",
            render::value(s, s.base),
            render::value(s, s.new)
        );
        if let Some(n) = &s.note {
            let _ = write!(title, "; {n}");
        }
        let _ = write!(
            out,
            "<td class=\"{}\" title=\"{}\">{}<span class=\"d\">{}</span></td>",
            verdict_class(s.verdict),
            esc(&title),
            esc(&render::value(s, shown)),
            esc(&render::delta(s))
        );
    }
    let _ = writeln!(
        out,
        "<td class=\"{}\">{}</td></tr>",
        verdict_class(m.verdict),
        esc(m.verdict.label())
    );
}

fn errors_table(out: &mut String, run: &LoadRun, base: Option<&LoadRun>) {
    let mut codes: std::collections::BTreeMap<String, (Option<u64>, u64)> = Default::default();
    for (code, n) in run.errors_by_code() {
        codes.entry(code).or_default().1 = n;
    }
    if let Some(b) = base {
        for (code, n) in b.errors_by_code() {
            codes.entry(code).or_default().0 = Some(n);
        }
    }
    out.push_str("<h2>Errors by code</h2>\n");
    if codes.is_empty() {
        out.push_str("<p>No errors.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<table class=\"errors\"><tr><th>code</th><th>count</th><th>per second</th>{}</tr>",
        if base.is_some() {
            "<th>baseline</th>"
        } else {
            ""
        }
    );
    for (code, (b, n)) in codes {
        let _ = write!(
            out,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td>",
            esc(&code),
            count(n),
            rate(n as f64 / run.secs())
        );
        if base.is_some() {
            let _ = write!(out, "<td>{}</td>", count(b.unwrap_or(0)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn thresholds_table(out: &mut String, run: &LoadRun) {
    let t = &run.report.thresholds;
    if t.is_empty() {
        return;
    }
    out.push_str("<h2>Thresholds of the run</h2>\n<table><tr><th>threshold</th><th>actual</th><th>result</th></tr>\n");
    for th in t {
        let _ = writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&th.expr),
            th.actual
                .map_or_else(|| "no samples".to_owned(), |v| format!("{v:.1}")),
            if th.passed { "better" } else { "worse" },
            if th.passed { "pass" } else { "FAIL" }
        );
    }
    out.push_str("</table>\n");
}

fn series_charts(run: &LoadRun, base: Option<&LoadRun>) -> Vec<String> {
    type Pick = fn(&formats::metrics::SecondSample) -> Option<f64>;
    let line = |r: &LoadRun, label: &str, color: &'static str, dashed: bool, pick: Pick| Line {
        label: label.to_owned(),
        color,
        dashed,
        points: r
            .report
            .series
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.t as f64, v)))
            .collect(),
        marks: Vec::new(),
    };
    let connected: Pick = |s| Some(s.connected.max(0) as f64);
    let sent: Pick = |s| Some(s.sent as f64);
    let received: Pick = |s| Some(s.received as f64);
    let errors: Pick = |s| Some(s.errors as f64);
    let p99: Pick = |s| s.p99_us.map(|v| v as f64);
    // Percent of one core.
    let cpu: Pick = |s| s.cpu_ms.map(|ms| ms as f64 / 10.0);

    let with_base = |lines: &mut Vec<Line>, label: &str, color: &'static str, pick: Pick| {
        if let Some(b) = base {
            lines.push(line(b, label, color, true, pick));
        }
    };
    let mut charts = Vec::new();

    let mut l = vec![line(run, "connected", svg::NEW, false, connected)];
    with_base(&mut l, "baseline", svg::BASE, connected);
    charts.push(svg::series(
        "series-connected",
        "Connected clients",
        "clients",
        &l,
        Fmt::Number,
    ));

    let mut l = vec![
        line(run, "sent", svg::NEW, false, sent),
        line(run, "received", svg::RECEIVED, false, received),
    ];
    with_base(&mut l, "base sent", svg::NEW, sent);
    with_base(&mut l, "base received", svg::RECEIVED, received);
    charts.push(svg::series(
        "series-messages",
        "Messages per second",
        "messages/s",
        &l,
        Fmt::Number,
    ));

    let mut l = vec![line(run, "errors", svg::ERRORS, false, errors)];
    with_base(&mut l, "baseline", svg::BASE, errors);
    charts.push(svg::series(
        "series-errors",
        "Errors per second",
        "errors/s",
        &l,
        Fmt::Number,
    ));

    let mut l = vec![line(run, "p99", svg::NEW, false, p99)];
    with_base(&mut l, "baseline", svg::BASE, p99);
    charts.push(svg::series(
        "series-p99",
        "p99 of the main latency, per second",
        "latency",
        &l,
        Fmt::Micros,
    ));

    if run.report.series.iter().any(|s| s.cpu_ms.is_some()) {
        let mut l = vec![line(run, "generator CPU", svg::NEW, false, cpu)];
        with_base(&mut l, "baseline", svg::BASE, cpu);
        charts.push(svg::series(
            "series-generator-cpu",
            "Generator CPU, percent of one core",
            "% of a core",
            &l,
            Fmt::Number,
        ));
    }
    charts
}
