//! The conformance runner's results (`conformance run --json FILE`): one
//! definition that the runner writes through and `reports` reads.
//!
//! Readers are lenient where the runner always writes a field: a missing
//! description, requirement, duration, summary or transcript reads as
//! empty, so that a hand-trimmed result still compares.
//!
//! Version 2 added the verdict levels: the run's `level` (`spec` or
//! `reference`), the `deviation` verdict, each case's `deviations` and the
//! `decision` a failure rests on. A version 1 file reads as a
//! reference-level run without deviations (what the runner then did).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Version of the result format; bumped on any incompatible change.
pub const RESULT_VERSION: u32 = 2;

/// Which requirements can fail a case (`conformance run --level`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Only the protocol text's requirements fail; a mismatch with one of
    /// the reference server's decisions (protocol notes N1, N2, …) is a
    /// deviation, reported, not failing.
    Spec,
    /// The decisions bind too: a deviation fails the case. Results
    /// written before levels existed read as this level.
    #[default]
    Reference,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Spec => "spec",
            Level::Reference => "reference",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "spec" => Ok(Level::Spec),
            "reference" => Ok(Level::Reference),
            _ => Err("must be `spec` or `reference`".to_owned()),
        }
    }
}

/// The whole run, as `--json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Format version of this file ([`RESULT_VERSION`]).
    pub version: u32,
    /// `conformance <version>`, with the git revision when known.
    #[serde(default)]
    pub tool: String,
    /// The run's `--label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub strict: bool,
    /// The verdict level of the run (version 1 files: `reference`).
    #[serde(default)]
    pub level: Level,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub summary: Summary,
    pub cases: Vec<CaseRecord>,
}

/// How many cases ended with each verdict, how many executed, and why the
/// others were skipped.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub non_strict: usize,
    pub skipped: usize,
    pub errors: usize,
    pub xfail: usize,
    pub xpass: usize,
    /// Cases that met the protocol text but not a reference decision
    /// (spec level only; they do not fail the run).
    pub deviations: usize,
    /// Cases that ran (every verdict but skip).
    pub executed: usize,
    /// `executed` in percent of the selected cases (0 when none was).
    pub coverage: f64,
    /// The coverage the run required (`conformance run
    /// --require-coverage`); below it, or with nothing executed, the run
    /// fails.
    pub required_coverage: f64,
    /// The skipped cases grouped by reason, largest group first; filled
    /// by the runner, which knows the reasons (a case skipped for several
    /// missing driver actions is in the group of each).
    pub skips: Vec<SkipGroup>,
}

/// Skipped cases that share one reason (e.g. the same missing driver
/// actions).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkipGroup {
    pub reason: String,
    /// Case ids, sorted.
    pub cases: Vec<String>,
}

impl Summary {
    pub fn of(cases: &[CaseRecord]) -> Summary {
        let mut s = Summary::default();
        for c in cases {
            match c.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::NonStrict => s.non_strict += 1,
                Verdict::Skip => s.skipped += 1,
                Verdict::Error => s.errors += 1,
                Verdict::Xfail => s.xfail += 1,
                Verdict::Xpass => s.xpass += 1,
                Verdict::Deviation => s.deviations += 1,
            }
        }
        s.executed = cases.len() - s.skipped;
        if !cases.is_empty() {
            s.coverage = s.executed as f64 * 100.0 / cases.len() as f64;
        }
        s
    }

    /// `N passed, N failed, N skipped` plus the other counts when non-zero.
    /// Non-strict cases count as passed here (they are allowed), XPASS as
    /// failed (it fails the run); deviations are counted apart.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed, {} skipped",
            self.passed + self.non_strict,
            self.failed + self.xpass,
            self.skipped
        );
        for (n, what) in [
            (self.deviations, "deviations from reference decisions"),
            (self.non_strict, "non-strict"),
            (self.errors, "errors"),
            (self.xfail, "expected failures"),
            (self.xpass, "unexpected passes"),
        ] {
            if n > 0 {
                let _ = write!(line, ", {n} {what}");
            }
        }
        line
    }
}

/// The verdict of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Allowed but not recommended (e.g. extra fields); a failure with
    /// `--strict`.
    NonStrict,
    Skip,
    Error,
    /// A failure listed in `--known-failing`.
    Xfail,
    /// A case listed in `--known-failing` that passed: fails the run.
    Xpass,
    /// The protocol text's requirements held, but a reference decision
    /// (N#) did not: reported at `--level spec`, not a failure.
    Deviation,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Skip => "SKIP",
            Verdict::Error => "ERROR",
            Verdict::Xfail => "XFAIL",
            Verdict::Xpass => "XPASS",
            Verdict::Deviation => "DEVIATION",
        }
    }

    /// Whether the requirement was seen not to hold (`FAIL`, and `XFAIL`:
    /// a failure listed as known).
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Xfail)
    }

    /// Whether the requirement was seen to hold (`PASS`, `NON-STRICT`,
    /// `XPASS`). A `DEVIATION` is neither this nor a failure: the text
    /// held, one of our decisions did not.
    pub fn is_pass(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::NonStrict | Verdict::Xpass)
    }
}

/// One exchanged frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireLine {
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// Which connection of the case (`c1`, `c2`, ...), or `http`.
    pub conn: String,
    /// `>` sent by the runner, `<` received.
    pub dir: &'static str,
    pub text: String,
}

/// [`WireLine`] as read, before its direction is checked.
#[derive(Deserialize)]
struct RawWireLine {
    at_ms: u64,
    conn: String,
    dir: String,
    text: String,
}

// By hand: a derived impl would borrow `dir` from the input for 'static.
impl<'de> Deserialize<'de> for WireLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<WireLine, D::Error> {
        let raw = RawWireLine::deserialize(d)?;
        let dir = match raw.dir.as_str() {
            ">" => ">",
            "<" => "<",
            other => {
                return Err(serde::de::Error::custom(format!(
                    "frame direction `{other}`: expected `>` or `<`"
                )));
            }
        };
        Ok(WireLine {
            at_ms: raw.at_ms,
            conn: raw.conn,
            dir,
            text: raw.text,
        })
    }
}

/// A check that rests on a reference decision and did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    /// The decision, `N1`..`N17` (docs/protocol-notes.md).
    pub decision: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}; actual {}",
            self.decision, self.expected, self.actual
        )
    }
}

/// What a case produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub requirement: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_errors: Vec<String>,
    /// Skip reason, error message, or the non-strict findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The checks resting on reference decisions that did not hold, in
    /// the order they were seen (at either level).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deviations: Vec<Deviation>,
    /// For a `FAIL` at `--level reference` caused by a decision: which
    /// (`N9`); absent when the protocol text itself failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default)]
    pub transcript: Vec<WireLine>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let s = Summary {
            passed: 3,
            failed: 1,
            skipped: 2,
            non_strict: 1,
            ..Summary::default()
        };
        assert_eq!(s.line(), "4 passed, 1 failed, 2 skipped, 1 non-strict");
    }

    #[test]
    fn a_record_has_its_wire_form() {
        let text = r#"{"id":"rooms.subscribe.ack","description":"d","requirement":"r","verdict":"non-strict","duration_ms":12,"reason":"extra field","transcript":[{"at_ms":3,"conn":"c1","dir":">","text":"42[\"x\"]"}]}"#;
        let rec = CaseRecord {
            id: "rooms.subscribe.ack".into(),
            description: "d".into(),
            requirement: "r".into(),
            verdict: Verdict::NonStrict,
            duration_ms: 12,
            expected: None,
            actual: None,
            schema_errors: Vec::new(),
            reason: Some("extra field".into()),
            notes: Vec::new(),
            deviations: Vec::new(),
            decision: None,
            transcript: vec![WireLine {
                at_ms: 3,
                conn: "c1".into(),
                dir: ">",
                text: "42[\"x\"]".into(),
            }],
        };
        assert_eq!(serde_json::to_string(&rec).unwrap(), text);
        assert_eq!(serde_json::from_str::<CaseRecord>(text).unwrap(), rec);
        let bad = text.replace(r#""dir":">""#, r#""dir":"?""#);
        assert!(serde_json::from_str::<CaseRecord>(&bad).is_err());
    }

    #[test]
    fn a_trimmed_result_reads() {
        let r: RunReport = serde_json::from_str(
            r#"{"version":1,"tool":"conformance 0.1.0","cases":[{"id":"a","verdict":"xpass"}]}"#,
        )
        .unwrap();
        assert_eq!(r.cases[0].verdict, Verdict::Xpass);
        assert_eq!(r.summary, Summary::default());
        assert!(Verdict::Xpass.is_pass() && Verdict::Xfail.is_failure());
        assert!(!Verdict::Skip.is_pass() && !Verdict::Skip.is_failure());
        // A version 1 result is a reference-level run.
        assert_eq!(r.level, Level::Reference);
    }

    #[test]
    fn a_deviation_reads_back() {
        let text = r#"{"id":"errors.permission_denied.ack","verdict":"deviation","deviations":[{"decision":"N9","expected":"no `error` event","actual":"error"}]}"#;
        let rec: CaseRecord = serde_json::from_str(text).unwrap();
        assert_eq!(rec.verdict, Verdict::Deviation);
        assert_eq!(rec.verdict.label(), "DEVIATION");
        assert!(!rec.verdict.is_pass() && !rec.verdict.is_failure());
        assert_eq!(
            rec.deviations[0].to_string(),
            "N9: expected no `error` event; actual error"
        );
        let s = Summary::of(&[rec]);
        assert_eq!(s.deviations, 1);
        assert_eq!(
            s.line(),
            "0 passed, 0 failed, 0 skipped, 1 deviations from reference decisions"
        );
        assert_eq!("spec".parse::<Level>(), Ok(Level::Spec));
        assert!("strict".parse::<Level>().is_err());
    }
}
