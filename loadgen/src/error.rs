//! Why a loadgen command failed, each variant mapped to the exit code the
//! README documents ([`Error::exit_code`]): 2 for what the user can fix in
//! the command line, scenario or profile; 3 when the target cannot be used
//! (unreachable, set-up failed) or nothing could run; 4 when the run was
//! cut short. Outcomes that are not errors (0, 1, 4 with a partial
//! report, 5 for a generator-bound run) are [`crate::Outcome`]s.

use std::path::PathBuf;

use driver::target::TargetError;

use crate::engine::AbortReason;

/// Exit code: the run completed and every threshold passed.
pub const EXIT_OK: u8 = 0;
/// Exit code: a threshold was breached.
pub const EXIT_THRESHOLD: u8 = 1;
/// Exit code: bad flags, an invalid scenario, profile or threshold.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the target is unreachable, or set-up failed.
pub const EXIT_TARGET: u8 = 3;
/// Exit code: the run was aborted (target lost mid-run, Ctrl-C, a worker
/// failed); a partial report was written.
pub const EXIT_ABORTED: u8 = 4;
/// Exit code: with `--fail-on-generator-bound`, the results are
/// generator-bound ([`formats::report::GeneratorReport`]).
pub const EXIT_GENERATOR_BOUND: u8 = 5;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid scenario or threshold, ready to print
    /// (`FILE:LINE:COL: message`, `--threshold: ...`).
    #[error("{0}")]
    Scenario(String),
    /// `--clients`, `--duration` or `--shard` do not fit the scenario.
    #[error("{0}")]
    Overrides(String),
    /// The target profile cannot be read or its `[vars]` expanded.
    #[error("{0}")]
    Profile(String),
    #[error("cannot create the output folder {}: {source}", path.display())]
    OutDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No usable target: a bad URL, none given without an in-process
    /// server, or that server did not start.
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The engine stopped before the load started (set-up, tokens, the
    /// target's handshake, a file of the scenario), or was interrupted
    /// during the set-up of a multi-process run.
    #[error("{0}")]
    BeforeLoad(AbortReason),
    /// A file or process the run needs locally (temporary folder, worker
    /// plan, the executable, a child process).
    #[error("{what}: {source}")]
    Local {
        what: String,
        source: std::io::Error,
    },
    /// No worker left a report: `code` is the first documented exit code a
    /// worker gave (else 3).
    #[error("{message}")]
    Workers { code: u8, message: String },
    #[error("merging reports: {0}")]
    Merge(formats::report::ReportError),
    /// `loadgen worker`: its plan cannot be read.
    #[error("worker plan {}: {message}", path.display())]
    WorkerPlan { path: PathBuf, message: String },
    /// `completions` / `man`: the output cannot be written.
    #[error("writing completions or man pages: {0}")]
    Docs(std::io::Error),
    /// `loadgen worker`: its report cannot be written.
    #[error("worker {index}: cannot write {}: {source}", path.display())]
    WorkerReport {
        index: u32,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario(_)
            | Error::Overrides(_)
            | Error::Profile(_)
            | Error::OutDir { .. }
            | Error::Target(TargetError::BadUrl(_) | TargetError::NoTarget)
            | Error::WorkerPlan { .. }
            | Error::Docs(_) => EXIT_USAGE,
            Error::Target(TargetError::Embedded(_))
            | Error::Unreachable(_)
            | Error::Local { .. } => EXIT_TARGET,
            Error::BeforeLoad(reason) => reason.exit_code() as u8,
            Error::Workers { code, .. } => *code,
            Error::Merge(_) | Error::WorkerReport { .. } => EXIT_ABORTED,
        }
    }

    pub(crate) fn local(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Local {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_documented_code() {
        let io = || std::io::Error::other("x");
        for (e, code) in [
            (Error::Scenario("s.toml:1:1: bad".into()), 2),
            (Error::Target(TargetError::NoTarget), 2),
            (Error::Target(TargetError::BadUrl("x".into())), 2),
            (Error::Target(TargetError::Embedded("x".into())), 3),
            (Error::Unreachable("refused".into()), 3),
            (Error::local("starting worker 0", io()), 3),
            (Error::BeforeLoad(AbortReason::SetupFailed("x".into())), 3),
            (Error::BeforeLoad(AbortReason::Scenario("x".into())), 2),
            (Error::BeforeLoad(AbortReason::Interrupted), 4),
            (
                Error::Workers {
                    code: 3,
                    message: "every worker failed".into(),
                },
                3,
            ),
            (Error::Merge(formats::report::ReportError::Empty), 4),
        ] {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }
}
