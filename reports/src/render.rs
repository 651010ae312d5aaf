//! Text and Markdown: `reports show` and `reports compare`.

use std::fmt::Write as _;

use crate::compare::{
    CaseChange, ConformanceComparison, LoadComparison, MetricRow, StatRow, Verdict,
};
use crate::fmt;
use crate::model::{ConformanceRun, LoadRun};

/// `reports show` of a loadgen run: where and when, then loadgen's summary
/// (per metric count, rate, p50, p90, p99, p99.9, max; counters; errors by
/// code; thresholds).
pub fn show_load(run: &LoadRun) -> String {
    let r = &run.report;
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", run.path, r.tool);
    let _ = writeln!(
        out,
        "scenario {} ({}, hash {}); started {}, ended {}",
        r.scenario.name, r.scenario.file, r.scenario.hash, r.started_at, r.ended_at
    );
    let _ = writeln!(
        out,
        "machine {} ({}, {} cpus){}",
        r.machine.hostname,
        r.machine.os,
        r.machine.cpus,
        r.shard
            .map(|s| format!("; shard {}/{}", s.index, s.count))
            .unwrap_or_default()
    );
    let errors = run.errors();
    let _ = writeln!(
        out,
        "{} operations, {} errors ({})",
        fmt::count(run.attempts()),
        fmt::count(errors),
        run.error_rate_pct()
            .map_or_else(|| "-".to_owned(), fmt::pct)
    );
    out.push('\n');
    out.push_str(&r.summary_text());
    out
}

/// `reports show` of a conformance result.
pub fn show_conformance(run: &ConformanceRun) -> String {
    let r = &run.result;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}{}) against {}, started {}, {:.1} s, level {}{}",
        run.path,
        r.label
            .as_ref()
            .map(|l| format!("label `{l}`, "))
            .unwrap_or_default(),
        r.tool,
        r.target,
        r.started_at,
        r.duration_ms as f64 / 1000.0,
        r.level.as_str(),
        if r.strict { ", strict" } else { "" }
    );
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in &r.cases {
        *by.entry(c.verdict.label()).or_default() += 1;
    }
    let counts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(out, "{} cases: {}", r.cases.len(), counts.join(", "));
    for c in r.cases.iter().filter(|c| !c.verdict.is_pass()) {
        let _ = writeln!(
            out,
            "  {:<10} {:<46} {}",
            c.verdict.label(),
            c.id,
            c.description
        );
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "             reason: {reason}");
        }
        if let (Some(e), Some(a)) = (&c.expected, &c.actual) {
            let _ = writeln!(
                out,
                "             expected: {e}\n             actual:   {a}"
            );
        }
        if let Some(d) = &c.decision {
            let _ = writeln!(out, "             decision: {d}");
        }
        for d in &c.deviations {
            let _ = writeln!(out, "             deviates from {d}");
        }
    }
    out
}

/// A stat's value in its unit.
pub fn value(row: &StatRow, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".to_owned();
    };
    match row.unit {
        "us" => fmt::duration_f(v),
        "per-second" => fmt::rate(v),
        "percent" => fmt::pct(v),
        _ => fmt::count(v.round().max(0.0) as u64),
    }
}

/// A stat's change: `+1.2ms (+8.3%)`, `+0.02pp`.
pub fn delta(row: &StatRow) -> String {
    let Some(d) = row.delta else {
        return String::new();
    };
    let rel = row
        .delta_pct
        .map(|p| format!(" ({})", fmt::percent_delta(p)))
        .unwrap_or_default();
    match row.unit {
        "us" => format!("{}{rel}", fmt::duration_delta(d)),
        "per-second" => format!("{d:+.1}/s{rel}"),
        "percent" => {
            if d == 0.0 {
                "±0pp".to_owned()
            } else {
                format!("{d:+.2}pp")
            }
        }
        _ => {
            if d == 0.0 {
                "±0".to_owned()
            } else {
                format!(
                    "{}{}{rel}",
                    if d > 0.0 { "+" } else { "-" },
                    fmt::count(d.abs() as u64)
                )
            }
        }
    }
}

fn verdict_line(c: &LoadComparison) -> String {
    let k = &c.counts;
    let mut parts = Vec::new();
    for (n, what) in [
        (k.worse, "worse"),
        (k.better, "better"),
        (k.same, "same"),
        (k.insufficient_data, "insufficient data"),
        (k.not_judged, "not judged"),
        (k.only_in_base, "only in base"),
        (k.only_in_new, "only in new"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{} metric{}: {}",
        c.metrics.len(),
        if c.metrics.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// `reports compare --format text` of two loadgen runs.
pub fn compare_load_text(c: &LoadComparison) -> String {
    let mut out = String::new();
    for (which, runs) in [("base", &c.base_runs), ("new", &c.new_runs)] {
        for r in runs.iter() {
            let _ = writeln!(out, "{which}: {} ({})", r.file, r.describe());
        }
    }
    let _ = writeln!(out, "noise: {}", c.method.describe());
    let _ = writeln!(
        out,
        "thresholds: {}; at least {} samples per metric",
        c.thresholds.join(", "),
        c.min_samples
    );
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for m in &c.metrics {
        out.push('\n');
        metric_text(&mut out, m);
    }
    if !c.errors_by_code.is_empty() {
        let _ = writeln!(out, "\nerrors by code          base        new");
        for e in &c.errors_by_code {
            let _ = writeln!(
                out,
                "  {:<18} {:>8} {:>10}",
                e.code,
                fmt::count(e.base),
                fmt::count(e.new)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} => {}",
        verdict_line(c),
        if c.regression {
            "REGRESSION"
        } else {
            "no regression"
        }
    );
    out
}

fn metric_text(out: &mut String, m: &MetricRow) {
    let _ = writeln!(
        out,
        "{:<24} {:>11} {:>11}  {:<22} verdict",
        m.name, "base", "new", "delta"
    );
    for s in &m.stats {
        let mut verdict = match s.verdict {
            Verdict::NotJudged => String::new(),
            v => v.label().to_owned(),
        };
        if let Some(note) = &s.note {
            let _ = write!(verdict, ": {note}");
        } else if !s.thresholds.is_empty() {
            let _ = write!(verdict, " ({})", s.thresholds.join(" and "));
        }
        let line = format!(
            "  {:<22} {:>11} {:>11}  {:<22} {}",
            s.stat,
            value(s, s.base),
            value(s, s.new),
            delta(s),
            verdict
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "  => {}", m.verdict.label().to_lowercase());
}

/// `reports compare --format markdown` of two loadgen runs: a summary
/// table fit for a pull-request comment, details folded.
pub fn compare_load_markdown(c: &LoadComparison) -> String {
    let mut out = String::new();
    let head = if c.regression {
        format!(
            "❌ **Regression**: {} metric{} worse",
            c.counts.worse,
            if c.counts.worse == 1 { "" } else { "s" }
        )
    } else {
        "✅ **No regression**".to_owned()
    };
    let _ = writeln!(out, "### Load test comparison: {head}\n");
    if c.base_runs.len() == 1 && c.new_runs.len() == 1 {
        let _ = writeln!(
            out,
            "Baseline `{}` ({}) → new `{}` ({}).\n",
            md_code(&c.base.file),
            md_esc(&c.base.describe()),
            md_code(&c.new.file),
            md_esc(&c.new.describe())
        );
    } else {
        let files = |runs: &[crate::compare::RunInfo]| {
            runs.iter()
                .map(|r| format!("`{}`", md_code(&r.file)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "Baseline: {} run{} ({}; {}) → new: {} run{} ({}).\n",
            c.base_runs.len(),
            if c.base_runs.len() == 1 { "" } else { "s" },
            files(&c.base_runs),
            md_esc(&c.base.describe()),
            c.new_runs.len(),
            if c.new_runs.len() == 1 { "" } else { "s" },
            files(&c.new_runs),
        );
    }
    let _ = writeln!(out, "Noise: {}.\n", md_esc(c.method.describe()));
    for w in &c.warnings {
        let _ = writeln!(out, "> ⚠️ {}\n", md_esc(w));
    }
    let _ = writeln!(
        out,
        "| metric | samples | rate | p50 | p90 | p99 | p99.9 | max | verdict |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|---|");
    for m in c
        .metrics
        .iter()
        .filter(|m| m.name != crate::compare::ERRORS)
    {
        let cell = |name: &str| -> String {
            m.stats
                .iter()
                .find(|s| s.stat == name)
                .map(md_cell)
                .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} {} |",
            md_code(&m.name),
            samples_cell(m),
            cell("rate"),
            cell("p50"),
            cell("p90"),
            cell("p99"),
            cell("p99.9"),
            cell("max"),
            m.verdict.emoji(),
            m.verdict.label().to_lowercase()
        );
    }
    if let Some(e) = c.metrics.iter().find(|m| m.name == crate::compare::ERRORS) {
        let _ = writeln!(out, "\n| errors | base | new | change | verdict |");
        let _ = writeln!(out, "|---|--:|--:|--:|---|");
        for s in &e.stats {
            let verdict = match s.verdict {
                Verdict::NotJudged => String::new(),
                v => format!("{} {}", v.emoji(), v.label().to_lowercase()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {verdict} |",
                s.stat,
                value(s, s.base),
                value(s, s.new),
                delta(s),
            );
        }
        for code in &c.errors_by_code {
            let d = code.new as i64 - code.base as i64;
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | |",
                md_code(&code.code),
                fmt::count(code.base),
                fmt::count(code.new),
                if d == 0 {
                    "±0".to_owned()
                } else {
                    format!("{d:+}")
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} · thresholds: {} · at least {} samples per metric; a change counts only beyond its threshold and outside noise (95% intervals)\n",
        verdict_line(c),
        c.thresholds
            .iter()
            .map(|t| format!("`{}`", md_code(t)))
            .collect::<Vec<_>>()
            .join(", "),
        c.min_samples,
    );
    let _ = writeln!(out, "<details><summary>Every stat</summary>\n");
    let _ = writeln!(out, "```text\n{}```", compare_load_text(c));
    let _ = writeln!(out, "\n</details>");
    out
}

fn samples_cell(m: &MetricRow) -> String {
    m.stats
        .iter()
        .find(|s| s.stat == "count")
        .map(|s| {
            if m.verdict == Verdict::OnlyInBase || m.verdict == Verdict::OnlyInNew {
                format!("{} → {}", value(s, s.base), value(s, s.new))
            } else {
                value(s, s.new)
            }
        })
        .unwrap_or_default()
}

fn md_cell(s: &StatRow) -> String {
    let mut cell = match (s.base, s.new) {
        (Some(_), Some(_)) => {
            let rel = s
                .delta_pct
                .map(fmt::percent_delta)
                .unwrap_or_else(|| delta(s));
            format!("{} → {} ({rel})", value(s, s.base), value(s, s.new))
        }
        _ => format!("{} → {}", value(s, s.base), value(s, s.new)),
    };
    match s.verdict {
        Verdict::Worse => cell = format!("**{cell}** 🔴"),
        Verdict::Better => cell.push_str(" 🟢"),
        Verdict::InsufficientData => cell.push_str(" ❔"),
        _ => {}
    }
    cell
}

/// Backticks cannot be escaped inside a code span: replaced.
fn md_code(s: &str) -> String {
    s.replace('`', "'").replace('|', "\\|")
}

fn md_esc(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '|' | '*' | '_' | '[' | ']' | '<' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn case_line(c: &CaseChange) -> String {
    let label = |v: Option<formats::conformance::Verdict>| v.map_or("absent", |v| v.label());
    format!(
        "{:<10} {:<46} (was {}) {}",
        label(c.new),
        c.id,
        label(c.base),
        c.description
    )
}

/// `reports compare --format text` of two conformance results.
pub fn compare_conformance_text(c: &ConformanceComparison) -> String {
    let mut out = String::new();
    for (which, i) in [("base", &c.base), ("new: ", &c.new)] {
        let _ = writeln!(
            out,
            "{which:<5} {} ({}{} against {}, {} cases, {} failing)",
            i.file,
            i.label
                .as_ref()
                .map(|l| format!("label `{l}`, "))
                .unwrap_or_default(),
            i.tool,
            i.target,
            i.cases,
            i.failures
        );
    }
    let sections: [(&str, &[CaseChange]); 3] = [
        ("new failures", &c.new_failures),
        ("fixed", &c.fixed),
        ("other changes", &c.other_changes),
    ];
    for (title, list) in sections {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", list.len());
        for ch in list {
            let _ = writeln!(out, "  {}", case_line(ch).trim_end());
            if let Some(d) = &ch.detail {
                let _ = writeln!(out, "             {d}");
            }
        }
    }
    if !c.still_failing.is_empty() {
        let _ = writeln!(
            out,
            "\nstill failing ({}): {}",
            c.still_failing.len(),
            c.still_failing.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n{} new failure{}, {} fixed, {} still failing => {}",
        c.new_failures.len(),
        if c.new_failures.len() == 1 { "" } else { "s" },
        c.fixed.len(),
        c.still_failing.len(),
        if c.regression {
            "REGRESSION"
        } else {
            "no regression"
        }
    );
    out
}

/// `reports compare --format markdown` of two conformance results.
pub fn compare_conformance_markdown(c: &ConformanceComparison) -> String {
    let mut out = String::new();
    let head = if c.regression {
        format!(
            "❌ **{} new failure{}**",
            c.new_failures.len(),
            if c.new_failures.len() == 1 { "" } else { "s" }
        )
    } else {
        "✅ **No new failure**".to_owned()
    };
    let _ = writeln!(out, "### Conformance comparison: {head}\n");
    let _ = writeln!(
        out,
        "Baseline `{}` ({} cases, {} failing) → new `{}` ({} cases, {} failing) against {}.\n",
        md_code(&c.base.file),
        c.base.cases,
        c.base.failures,
        md_code(&c.new.file),
        c.new.cases,
        c.new.failures,
        md_esc(&c.new.target)
    );
    let sections: [(&str, &str, &[CaseChange]); 3] = [
        ("🔴", "New failures", &c.new_failures),
        ("🟢", "Fixed", &c.fixed),
        ("➖", "Other changes", &c.other_changes),
    ];
    for (emoji, title, list) in sections {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{emoji} **{title}** ({})\n", list.len());
        let _ = writeln!(out, "| case | was | now | detail |");
        let _ = writeln!(out, "|---|---|---|---|");
        for ch in list {
            let label =
                |v: Option<formats::conformance::Verdict>| v.map_or("absent", |v| v.label());
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                md_code(&ch.id),
                label(ch.base),
                label(ch.new),
                md_esc(ch.detail.as_deref().unwrap_or(&ch.description)).replace('\n', " ")
            );
        }
        out.push('\n');
    }
    if !c.still_failing.is_empty() {
        let _ = writeln!(
            out,
            "Still failing ({}): {}",
            c.still_failing.len(),
            c.still_failing
                .iter()
                .map(|id| format!("`{}`", md_code(id)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}
