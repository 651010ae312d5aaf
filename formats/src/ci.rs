//! What CI systems read, written from a run report: JUnit XML with one
//! testcase per threshold (`loadgen run --junit FILE`) and a Markdown
//! summary fit for `$GITHUB_STEP_SUMMARY` (`--summary-md FILE`, the one
//! flag name of every tool), plus the escaping both need, shared with the
//! conformance runner's renderers.

use std::fmt::Write as _;

use crate::names;
use crate::report::{RunReport, fmt_us, fmt_us_f};
use crate::threshold::{Threshold, ThresholdResult};

/// Appends `text` to `path` (created if absent): `$GITHUB_STEP_SUMMARY`
/// collects the summaries of every step of a job.
pub fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Text for XML content and attributes; control characters as references.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {
                let _ = write!(o, "&#x{:x};", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// Text for a Markdown table cell: `|` escaped, newlines as spaces.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A threshold's measured value in its unit (`51.0ms`, `3`, `0.5/s`,
/// `2.0%`), `no samples` when it has none.
pub fn threshold_actual(t: &ThresholdResult) -> String {
    let Some(a) = t.actual else {
        return "no samples".to_owned();
    };
    match Threshold::parse(&t.expr) {
        Ok(th) if th.stat.is_time() => fmt_us_f(a),
        Ok(th) if th.percent => format!("{a:.2}%"),
        Ok(th) if th.stat == crate::threshold::Stat::Rate => format!("{a:.2}/s"),
        _ if a.fract() == 0.0 => format!("{a:.0}"),
        _ => format!("{a:.2}"),
    }
}

/// JUnit XML: one testsuite named after the scenario, one testcase per
/// threshold (a breach is a `<failure>` with the measured value); an
/// incomplete run adds a testcase `run complete` that errs.
pub fn thresholds_junit(r: &RunReport) -> String {
    let failures = r.thresholds.iter().filter(|t| !t.passed).count();
    let errors = usize::from(!r.complete);
    let tests = r.thresholds.len() + errors;
    let secs = r.duration_ms as f64 / 1000.0;
    let name = xml_escape(&format!("loadgen {}", r.scenario.name));
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"loadgen\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">"
    );
    let _ = writeln!(
        x,
        "    <properties>\n      <property name=\"target\" value=\"{}\"/>\n      <property name=\"tool\" value=\"{}\"/>{}\n    </properties>",
        xml_escape(&r.target),
        xml_escape(&r.tool),
        r.label
            .as_ref()
            .map(|l| format!(
                "\n      <property name=\"label\" value=\"{}\"/>",
                xml_escape(l)
            ))
            .unwrap_or_default()
    );
    for t in &r.thresholds {
        let _ = write!(
            x,
            "    <testcase classname=\"{name}\" name=\"{}\">",
            xml_escape(&t.expr)
        );
        if !t.passed {
            let msg = format!("actual: {}", threshold_actual(t));
            let _ = write!(
                x,
                "\n      <failure message=\"{}\" type=\"threshold\">{} breached ({})</failure>\n    ",
                xml_escape(&msg),
                xml_escape(&t.expr),
                xml_escape(&msg)
            );
        }
        x.push_str("</testcase>\n");
    }
    if !r.complete {
        let _ = writeln!(
            x,
            "    <testcase classname=\"{name}\" name=\"run complete\">\n      <error message=\"{}\"/>\n    </testcase>",
            xml_escape(r.abort_reason.as_deref().unwrap_or("aborted"))
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// The Markdown summary of a run: verdict line, label and tool,
/// thresholds, latencies, errors by code.
pub fn load_markdown(r: &RunReport) -> String {
    let mut o = String::new();
    let breached = r.thresholds.iter().filter(|t| !t.passed).count();
    let verdict = if !r.complete {
        format!(
            "❌ incomplete: {}",
            r.abort_reason.as_deref().unwrap_or("aborted")
        )
    } else if breached > 0 {
        format!(
            "❌ {breached} of {} thresholds breached",
            r.thresholds.len()
        )
    } else {
        format!("✅ {} thresholds passed", r.thresholds.len())
    };
    let _ = writeln!(
        o,
        "### loadgen: {} — {verdict}\n",
        md_cell(&r.scenario.name)
    );
    let _ = writeln!(
        o,
        "{} clients against `{}`, {:.1} s, {} worker{}; {}\n",
        r.clients,
        md_cell(&r.target),
        r.duration_secs(),
        r.workers,
        if r.workers == 1 { "" } else { "s" },
        md_cell(&r.provenance())
    );
    if let Some(w) = r.generator.as_ref().and_then(|g| g.warning()) {
        let _ = writeln!(o, "> ⚠️ {}\n", md_cell(&w));
    }
    if !r.thresholds.is_empty() {
        o.push_str("| threshold | actual | result |\n|---|---|---|\n");
        for t in &r.thresholds {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} |",
                md_cell(&t.expr),
                threshold_actual(t),
                if t.passed { "pass" } else { "**FAIL**" }
            );
        }
        o.push('\n');
    }
    if !r.histograms.is_empty() {
        o.push_str(
            "| latency | count | p50 | p90 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|--:|--:|\n",
        );
        for (name, h) in &r.histograms {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                md_cell(name),
                h.count,
                fmt_us(h.p50_us),
                fmt_us(h.p90_us),
                fmt_us(h.p99_us),
                fmt_us(h.p999_us),
                fmt_us(h.max_us)
            );
        }
        o.push('\n');
    }
    let mut errors: Vec<(&str, u64)> = r
        .counters
        .iter()
        .filter_map(|(k, n)| names::error_code(k).map(|c| (c, *n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let failures = r
        .counters
        .get(names::CONNECT_FAILURES)
        .copied()
        .unwrap_or(0);
    if failures > 0 {
        errors.push((names::CONNECT_FAILURES, failures));
    }
    if errors.is_empty() {
        o.push_str("Errors: none.\n");
    } else {
        o.push_str("| error | count |\n|---|--:|\n");
        for (code, n) in errors {
            let _ = writeln!(o, "| `{}` | {n} |", md_cell(code));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn escapes() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#x1;"
        );
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn junit_has_one_testcase_per_threshold_and_markdown_a_row() {
        let mut r = sample(&[1000, 2000, 3000], 2);
        r.label = Some("release 1.2 <rc1>".into());
        r.thresholds = vec![
            ThresholdResult {
                expr: "ack.x.p99 < 1ms".into(),
                actual: Some(3000.0),
                passed: false,
            },
            ThresholdResult {
                expr: "errors.count < 1".into(),
                actual: Some(0.0),
                passed: true,
            },
        ];
        let x = thresholds_junit(&r);
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(
            x.contains("name=\"ack.x.p99 &lt; 1ms\">\n      <failure message=\"actual: 3.0ms\""),
            "{x}"
        );
        assert!(
            x.contains(
                "<testcase classname=\"loadgen t\" name=\"errors.count &lt; 1\"></testcase>"
            ),
            "{x}"
        );
        assert!(
            x.contains("name=\"label\" value=\"release 1.2 &lt;rc1&gt;\""),
            "{x}"
        );
        let md = load_markdown(&r);
        assert!(md.contains("❌ 1 of 2 thresholds breached"), "{md}");
        assert!(
            md.contains("| `ack.x.p99 < 1ms` | 3.0ms | **FAIL** |"),
            "{md}"
        );
        assert!(md.contains("| `errors.count < 1` | 0 | pass |"), "{md}");
        assert!(!md.contains("generator-bound"), "{md}");
        if let Some(g) = r.generator.as_mut() {
            g.bound = vec!["timer lag p90 80.1ms (bound 50.0ms)".into()];
        }
        let md = load_markdown(&r);
        assert!(
            md.contains("> ⚠️ WARNING: the results are generator-bound: timer lag p90 80.1ms"),
            "{md}"
        );
        assert!(
            md.contains("label: release 1.2 <rc1>, tool: loadgen test"),
            "{md}"
        );
        r.complete = false;
        let x = thresholds_junit(&r);
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{x}");
    }
}
