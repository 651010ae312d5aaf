//! formats: what the tools write and read, as data.
//!
//! `loadgen` writes run reports, `conformance` writes results, `reports`
//! reads both. Their one definition lives here, in a crate with no async
//! runtime, no HTTP and no server, so that a reader of the files (and a CI
//! image that only renders them) links none of that:
//!
//! * [`report`]: the run report (`report.json`), its merge across workers
//!   and shards, and the duration format of every summary ([`fmt_us`]);
//! * [`histogram`]: the latency histogram's bounds and codec (base64 of
//!   the HDR V2 deflate serialization), exact both ways;
//! * [`metrics`]: a run's metrics at one moment (histograms, counters) and
//!   the per-second series rows;
//! * [`names`]: the metric names (`ack.<event>`, `errors.<code>`, ...);
//! * [`hint`]: did-you-mean hints for misspelt names;
//! * [`threshold`]: one statistic vocabulary ([`threshold::Stat`]) and one
//!   grammar for pass/fail limits (`ack.x.p99 < 100ms`) and comparison
//!   rules (`p99 +10%`);
//! * [`schema`]: the run report's JSON Schema (the contract) and, with
//!   the `validate` feature, its validation;
//! * [`conformance`]: the conformance runner's results (`--json`);
//! * [`ci`]: JUnit XML and the Markdown step summary of a run report.
//!
//! Dependencies point here: `loadgen` → `formats` ← `reports`, and
//! `conformance` → `formats`.

pub mod ci;
pub mod conformance;
pub mod hint;
pub mod histogram;
pub mod metrics;
pub mod names;
pub mod report;
pub mod schema;
pub mod threshold;

pub use report::{fmt_us, fmt_us_f};
