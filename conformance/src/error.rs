//! Why a conformance run produced no verdicts, and the exit code of each
//! reason (2: usage, 3: target); the verdicts' own exit codes (0, 1, 3)
//! come from the run's summary ([`crate::Outcome::exit_code`]).

use std::path::PathBuf;

use driver::profile::ProfileError;
use driver::target::TargetError;
use driver::template::TemplateError;

use crate::{EXIT_TARGET, EXIT_USAGE};

/// Why `conformance run` could not produce verdicts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile cannot be read or is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The handshake settings (profile `[handshake]`, flags) are unusable.
    #[error(transparent)]
    Handshake(#[from] driver::handshake::HandshakeError),
    /// The profile's `[identity]` is unusable.
    #[error(transparent)]
    Identity(#[from] driver::identity::IdentityError),
    /// A `[vars]` entry of the profile does not expand.
    #[error("profile [vars]: {0}")]
    ProfileVars(#[source] TemplateError),
    /// The `--known-failing` file cannot be read.
    #[error("reading {}: {source}", path.display())]
    KnownFailingRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--known-failing` file names a case that does not exist.
    #[error("{}: unknown case id {id}", path.display())]
    UnknownCaseId { path: PathBuf, id: String },
    /// `--run` / `--skip` leave no case.
    #[error("no case matches --run/--skip")]
    NoCaseSelected,
    /// No usable target: a bad URL, none given without an in-process
    /// server, or that server did not start.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// `profile check` without `--target` or a profile `url`.
    #[error("no target: give --target URL (or `url` in the profile's [target])")]
    NoCheckTarget,
    /// `completions` / `man`: the output cannot be written.
    #[error("writing completions or man pages: {0}")]
    Docs(std::io::Error),
    /// `--json` / `--junit` cannot be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The HTTP client of the driver cannot be built (TLS set-up).
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// No Engine.IO server answers at the target (the probe's error names
    /// the URL it tried).
    #[error("target unreachable: {source}")]
    Unreachable {
        target: String,
        source: sioclient::ProbeError,
    },
}

impl Error {
    /// The documented exit code: 2 for usage and profile errors, 3 when
    /// the target cannot be reached or set up.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Profile(_)
            | Error::ProfileVars(_)
            | Error::Handshake(_)
            | Error::Identity(_)
            | Error::KnownFailingRead { .. }
            | Error::UnknownCaseId { .. }
            | Error::NoCaseSelected
            | Error::Target(TargetError::BadUrl(_) | TargetError::NoTarget)
            | Error::NoCheckTarget
            | Error::Write { .. }
            | Error::Docs(_) => EXIT_USAGE,
            Error::Target(TargetError::Embedded(_))
            | Error::HttpClient(_)
            | Error::Unreachable { .. } => EXIT_TARGET,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_target_errors_exit_3() {
        let no_target = Error::from(TargetError::NoTarget);
        assert_eq!(no_target.exit_code(), EXIT_USAGE);
        assert!(no_target.to_string().contains("--target"));
        assert_eq!(
            Error::from(TargetError::BadUrl("x".into())).exit_code(),
            EXIT_USAGE
        );
        assert_eq!(Error::NoCaseSelected.exit_code(), EXIT_USAGE);
        let unreachable = Error::Unreachable {
            target: "http://127.0.0.1:9".into(),
            source: sioclient::ProbeError::Timeout {
                url: "http://127.0.0.1:9/socket.io/?EIO=4&transport=polling".into(),
                timeout: std::time::Duration::from_secs(2),
            },
        };
        assert_eq!(unreachable.exit_code(), EXIT_TARGET);
        assert!(
            unreachable
                .to_string()
                .starts_with("target unreachable: no answer from http://127.0.0.1:9/")
        );
        assert_eq!(
            Error::from(TargetError::Embedded("x".into())).exit_code(),
            EXIT_TARGET
        );
    }
}
