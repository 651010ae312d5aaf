//! loadgen: thousands of simulated Socket.IO clients running scripted
//! scenarios against a target, with honest latency (see README).
//!
//! The binary is glue: [`Opts`] is the command line ([`cli`]), [`run()`]
//! carries a command out and returns an [`Outcome`] or an [`Error`], each
//! with the documented exit code. Tests drive [`run_with_stop`] directly.
//!
//! * [`run`](mod@run): a run — scenario ([`scenario`]), thresholds
//!   ([`formats::threshold`]), target (`target`), engine ([`engine`]),
//!   report;
//! * `workers`: runs of several processes and their wire protocol;
//! * [`metrics`]: the recorder; what a report holds is [`formats`]';
//! * [`live`]: the Prometheus exposition of `--metrics-listen`;
//! * [`report`]: the files of the output folder;
//! * [`watch`]: the generator's watch on its own CPU and lag.

pub mod cli;
pub mod engine;
pub mod error;
pub mod live;
pub mod metrics;
pub mod report;
pub mod run;
pub mod scenario;
pub mod watch;
mod workers;

pub use cli::{Command, Opts, RunOpts, ValidateOpts, WorkerOpts};
pub use error::{
    EXIT_ABORTED, EXIT_GENERATOR_BOUND, EXIT_OK, EXIT_TARGET, EXIT_THRESHOLD, EXIT_USAGE, Error,
};
pub use run::{CLIENTS_PER_WORKER, Outcome, RunOutcome, run, run_with_stop};

/// The version `--version` prints and reports carry: the package version
/// and, in a git checkout, the revision (`0.1.0 (git 0123456789ab)`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("GIT_REVISION_SUFFIX"));
