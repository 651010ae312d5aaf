//! reports: reads loadgen run reports and conformance results, merges
//! shards exactly, compares a baseline with a new run (exit 1 on a
//! regression), and renders text, Markdown, JSON, CSV and one
//! self-contained HTML file (see the README, "Reports").
//!
//! The file formats are [`formats`]' (one definition, written by loadgen and
//! the conformance runner): read here through the report's JSON Schema and
//! the Rust types. This crate depends on nothing else of the workspace.

pub mod cli;
pub mod compare;
pub mod csv_out;
pub mod fmt;
pub mod html;
pub mod merge;
pub mod model;
pub mod render;
pub mod svg;
pub mod thresholds;

pub use cli::{Error, Opts, Outcome, run};

/// The version `--version` prints and reports carry: the package version
/// and, in a git checkout, the revision (`0.1.0 (git 0123456789ab)`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("GIT_REVISION_SUFFIX"));
