//! Renderers: one line per case for people, JUnit XML; the JSON records
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

fn esc(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(esc("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;&#x1;");
    }
}
