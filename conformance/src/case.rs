//! A conformance case, its verdicts and its record.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::ctx::Ctx;

/// One check of one protocol requirement.
#[derive(Clone, Copy)]
pub struct Case {
    /// Stable id tied to the protocol section, e.g. `rooms.subscribe.ack`.
    pub id: &'static str,
    /// One line.
    pub description: &'static str,
    /// The requirement checked, in the protocol's terms.
    pub requirement: &'static str,
    /// Driver actions the case needs; a case whose action is missing from
    /// the profile is skipped with that reason. The list is checked: a case
    /// that calls an action not in it ends in `ERROR` ([`crate::ctx::Ctx`]
    /// refuses the call), and the reference run proves none does.
    pub needs: &'static [driver::Action],
    pub run: for<'a> fn(&'a mut Ctx) -> BoxFuture<'a, Result<(), Failure>>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Declares a case from an `async fn(&mut Ctx) -> Result<(), Failure>`;
/// the needs are [`driver::Action`] variants (`[CreateUser, MintToken]`).
#[macro_export]
macro_rules! case {
    ($id:literal, $desc:literal, $req:literal, [$($need:ident),* $(,)?], $f:path) => {
        $crate::case::Case {
            id: $id,
            description: $desc,
            requirement: $req,
            needs: &[$(::driver::Action::$need),*],
            run: |cx| Box::pin($f(cx)),
        }
    };
}

/// Where the requirement of a check comes from. Only the protocol text
/// can fail a case at `--level spec`; a check resting on one of our
/// decisions (docs/protocol-notes.md, N1, N2, …, where the text is silent)
/// is a deviation there, and fails only at `--level reference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The protocol text: a section or a short quote; empty for "the
    /// case's requirement", which cites the text.
    Spec(&'static str),
    /// A reference decision, `N1`..`N17`.
    Decision(&'static str),
}

/// Why a case did not pass.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The target broke the requirement.
    Fail {
        expected: String,
        actual: String,
        /// `pointer: message` for every schema error.
        schema_errors: Vec<String>,
        source: Source,
    },
    /// The case could not run (missing driver action, static role absent).
    Skip(String),
    /// Runner or target set-up trouble, not a verdict on the requirement.
    Error(String),
}

impl Failure {
    /// A failed check of the protocol text (the case's requirement).
    pub fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Failure {
        Failure::Fail {
            expected: expected.into(),
            actual: actual.into(),
            schema_errors: Vec::new(),
            source: Source::Spec(""),
        }
    }

    /// The same failure, resting on `decision` (`N9`) instead of the text.
    /// A failure that already rests on a decision keeps it (the inner
    /// check knows best); skips and errors are no verdict and stay.
    pub fn per(self, decision: &'static str) -> Failure {
        match self {
            Failure::Fail {
                expected,
                actual,
                schema_errors,
                source: Source::Spec(_),
            } => Failure::Fail {
                expected,
                actual,
                schema_errors,
                source: Source::Decision(decision),
            },
            other => other,
        }
    }
}

/// [`Failure::per`] on a check's result: `cx.ensure(..).per("N10")?` ends
/// the case there (a deviation at spec level, a failure at reference
/// level); [`crate::ctx::Ctx::decided`] records it and lets the case go on.
pub trait Per {
    #[must_use]
    fn per(self, decision: &'static str) -> Self;
}

impl<T> Per for Result<T, Failure> {
    fn per(self, decision: &'static str) -> Self {
        self.map_err(|f| f.per(decision))
    }
}

// The record of a case is the conformance result format, defined once in
// `formats` (the runner writes it, `reports` reads it).
pub use formats::conformance::{CaseRecord, Deviation, Level, Verdict, WireLine};

/// Glob with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Upper bound of one case, whatever its waits.
pub const CASE_LIMIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("rooms.*", "rooms.subscribe.ack"));
        assert!(glob_match("*.ack", "rooms.subscribe.ack"));
        assert!(glob_match(
            "errors.rate_limit_exceeded",
            "errors.rate_limit_exceeded"
        ));
        assert!(glob_match("r?oms.*", "rooms.x"));
        assert!(!glob_match("rooms.*", "prizes.created"));
        assert!(!glob_match("rooms", "rooms.subscribe"));
    }
}
