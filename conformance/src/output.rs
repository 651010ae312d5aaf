//! Renderers: one line per case for people, JUnit XML, the Markdown
//! summary (`--summary-md`); the JSON records
//! are [`formats::conformance`].

use std::fmt::Write as _;

use crate::case::{CaseRecord, Verdict};

// The `--json` file is the conformance result format, defined once in
// `formats` (this runner writes it, `reports` reads it).
pub use formats::conformance::{RunReport, SkipGroup, Summary};

/// One line per case; details under failures.
pub fn human_line(c: &CaseRecord, verbose: bool) -> String {
    let mut out = format!(
        "{:<10} {:<46} {:>6} ms  {}",
        c.verdict.label(),
        c.id,
        c.duration_ms,
        c.description
    );
    let detailed = matches!(c.verdict, Verdict::Fail | Verdict::Error | Verdict::Xpass) || verbose;
    if let Some(r) = &c.reason {
        let _ = write!(out, "\n           reason: {r}");
    }
    if detailed {
        if let Some(e) = &c.expected {
            let _ = write!(out, "\n           expected: {e}");
        }
        if let Some(a) = &c.actual {
            let _ = write!(out, "\n           actual:   {a}");
        }
        for e in &c.schema_errors {
            let _ = write!(out, "\n           schema:   {e}");
        }
        if !c.transcript.is_empty() && c.verdict != Verdict::Error {
            let _ = write!(out, "\n           frames:");
            for w in &c.transcript {
                let _ = write!(
                    out,
                    "\n             +{:>5}ms {:<4} {} {}",
                    w.at_ms, w.conn, w.dir, w.text
                );
            }
        }
    }
    if let Some(d) = &c.decision {
        let _ = write!(
            out,
            "\n           decision: {d} (binding at --level reference)"
        );
    }
    // Never dropped: every deviation is shown, whatever the verdict.
    for d in &c.deviations {
        let _ = write!(out, "\n           deviates from {d}");
    }
    for n in &c.notes {
        if c.verdict == Verdict::NonStrict || verbose {
            let _ = write!(out, "\n           note: {n}");
        }
    }
    out
}

/// The skipped cases grouped by reason, for the end of the text output
/// (`None` when nothing was skipped), so that a user sees at once which
/// profile actions to add. A family of ids (`rooms.*`) stands for its
/// cases when every case of it in this run shares the reason.
pub fn skip_summary(s: &Summary, records: &[CaseRecord]) -> Option<String> {
    if s.skips.is_empty() {
        return None;
    }
    let family = |id: &str| id.split('.').next().unwrap_or(id).to_owned();
    let mut out = format!(
        "skipped, by reason ({} of {} selected cases executed, {:.1}%):\n",
        s.executed,
        s.executed + s.skipped,
        s.coverage
    );
    for g in &s.skips {
        let mut shown: Vec<String> = Vec::new();
        for id in &g.cases {
            let fam = family(id);
            let in_run = records.iter().filter(|r| family(&r.id) == fam).count();
            let in_group = g.cases.iter().filter(|c| family(c) == fam).count();
            let item = if in_run == in_group && in_run > 1 {
                format!("{fam}.*")
            } else {
                id.clone()
            };
            if !shown.contains(&item) {
                shown.push(item);
            }
        }
        let n = g.cases.len();
        let _ = writeln!(
            out,
            "  {n} case{}: {}\n      {}",
            if n == 1 { "" } else { "s" },
            g.reason,
            shown.join(", ")
        );
    }
    Some(out)
}

/// JUnit XML: one testsuite, a testcase per case named by its id;
/// failures and errors kept apart; skips as `<skipped>`. A deviation is a
/// passing testcase (it does not fail the run) with a `deviation` property
/// per decision and the details in `<system-out>`; a failure that rests on
/// a decision (`--level reference`) names it in its message (`[N9] ...`).
pub fn junit(report: &RunReport) -> String {
    let s = &report.summary;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        report.cases.len(),
        s.failed + s.xpass,
        s.errors,
        s.skipped,
        report.duration_ms as f64 / 1000.0
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        esc(&report.target),
        report.cases.len(),
        s.failed + s.xpass,
        s.errors,
        s.skipped,
        report.duration_ms as f64 / 1000.0
    );
    for c in &report.cases {
        let class = c.id.split('.').next().unwrap_or("conformance");
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            esc(class),
            esc(&c.id),
            c.duration_ms as f64 / 1000.0
        );
        if !c.deviations.is_empty() {
            x.push_str("\n      <properties>");
            for d in &c.deviations {
                let _ = write!(
                    x,
                    "\n        <property name=\"deviation\" value=\"{}\"/>",
                    esc(&d.to_string())
                );
            }
            x.push_str("\n      </properties>");
        }
        let detail = || {
            let mut d = String::new();
            if let Some(e) = &c.expected {
                let _ = writeln!(d, "expected: {e}");
            }
            if let Some(a) = &c.actual {
                let _ = writeln!(d, "actual:   {a}");
            }
            for e in &c.schema_errors {
                let _ = writeln!(d, "schema:   {e}");
            }
            for w in &c.transcript {
                let _ = writeln!(d, "+{}ms {} {} {}", w.at_ms, w.conn, w.dir, w.text);
            }
            d
        };
        match c.verdict {
            Verdict::Fail | Verdict::Xpass => {
                let mut msg = c.expected.clone().or(c.reason.clone()).unwrap_or_default();
                if let Some(d) = &c.decision {
                    msg = format!("[{d}] {msg}");
                }
                let _ = write!(
                    x,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                    esc(&msg),
                    c.verdict.label(),
                    esc(&detail())
                );
            }
            Verdict::Error => {
                let _ = write!(
                    x,
                    "\n      <error message=\"{}\">{}</error>\n    ",
                    esc(c.reason.as_deref().unwrap_or("error")),
                    esc(&detail())
                );
            }
            Verdict::Skip | Verdict::Xfail => {
                let _ = write!(
                    x,
                    "\n      <skipped message=\"{}\"/>\n    ",
                    esc(&format!(
                        "{}: {}",
                        c.verdict.label(),
                        c.reason.as_deref().unwrap_or("")
                    ))
                );
            }
            Verdict::NonStrict => {
                let _ = write!(
                    x,
                    "\n      <system-out>{}</system-out>\n    ",
                    esc(&c.notes.join("\n"))
                );
            }
            Verdict::Deviation => {
                let mut out = format!("DEVIATION: {}\n", c.reason.as_deref().unwrap_or(""));
                for d in &c.deviations {
                    let _ = writeln!(out, "deviates from {d}");
                }
                let _ = write!(x, "\n      <system-out>{}</system-out>\n    ", esc(&out));
            }
            Verdict::Pass => {}
        }
        x.push_str("</testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

use formats::ci::{md_cell, xml_escape as esc};

/// The Markdown summary (`--summary-md`, e.g. `$GITHUB_STEP_SUMMARY`):
/// verdict, counts, then the cases that failed or erred with what was
/// expected and what came (the first 50).
pub fn markdown(report: &RunReport) -> String {
    const SHOWN: usize = 50;
    let s = &report.summary;
    let bad = s.failed + s.xpass + s.errors;
    let mark = if bad == 0 { "✅" } else { "❌" };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### conformance: `{}` — {mark} {}\n",
        md_cell(&report.target),
        md_cell(&s.line())
    );
    let label = report
        .label
        .as_ref()
        .map(|l| format!("label: {}, ", md_cell(l)))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "{} cases, level {}, {:.0} % executed, {:.1} s; {label}tool: {}\n",
        report.cases.len(),
        report.level.as_str(),
        s.coverage,
        report.duration_ms as f64 / 1000.0,
        md_cell(&report.tool)
    );
    let failing: Vec<&CaseRecord> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Xpass | Verdict::Error))
        .collect();
    if !failing.is_empty() {
        o.push_str("| case | verdict | expected | actual |\n|---|---|---|---|\n");
        for c in failing.iter().take(SHOWN) {
            let expected = c.expected.as_deref().or(c.reason.as_deref()).unwrap_or("");
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} |",
                md_cell(&c.id),
                c.verdict.label(),
                md_cell(expected),
                md_cell(c.actual.as_deref().unwrap_or(""))
            );
        }
        if failing.len() > SHOWN {
            let _ = writeln!(o, "\n… and {} more.", failing.len() - SHOWN);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_lists_the_failing_cases() {
        let case = |id: &str, verdict| CaseRecord {
            id: id.into(),
            description: String::new(),
            requirement: String::new(),
            verdict,
            duration_ms: 3,
            expected: (verdict == Verdict::Fail).then(|| "ack {ok:true}".into()),
            actual: (verdict == Verdict::Fail).then(|| "ack {ok:false} | x".into()),
            schema_errors: vec![],
            reason: None,
            notes: vec![],
            transcript: vec![],
            decision: None,
            deviations: vec![],
        };
        let cases = vec![
            case("rooms.a", Verdict::Pass),
            case("rooms.b", Verdict::Fail),
        ];
        let report = RunReport {
            version: formats::conformance::RESULT_VERSION,
            level: formats::conformance::Level::Spec,
            tool: "conformance 0.1.0 (git abc)".into(),
            label: Some("v1.2".into()),
            target: "http://t".into(),
            strict: false,
            started_at: String::new(),
            duration_ms: 1500,
            summary: Summary::of(&cases),
            cases,
        };
        let md = markdown(&report);
        assert!(
            md.starts_with("### conformance: `http://t` — ❌ 1 passed, 1 failed"),
            "{md}"
        );
        assert!(
            md.contains("2 cases, level spec, 100 % executed, 1.5 s; label: v1.2, tool: conformance 0.1.0 (git abc)"),
            "{md}"
        );
        assert!(
            md.contains("| `rooms.b` | FAIL | ack {ok:true} | ack {ok:false} \\| x |"),
            "{md}"
        );
        assert!(!md.contains("rooms.a"), "{md}");
    }
}
