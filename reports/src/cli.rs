//! The command line: `show`, `merge`, `compare`, `html`, `csv`.
//!
//! Exit codes: 0 ok; 1 a regression (`compare`: a metric worse, or new
//! conformance failures); 2 usage, or an input that cannot be read or is
//! invalid (or an output that cannot be written).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compare::{compare_conformance, compare_load};
use crate::model::{self, Input, InputError};
use crate::thresholds::{DEFAULT_MIN_SAMPLES, Rules, ThresholdFile};
use crate::{csv_out, html, merge, render};

/// Exit code: a regression or new failures.
pub const EXIT_REGRESSION: i32 = 1;
/// Exit code: usage, unreadable or invalid input.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "reports",
    version,
    about = "Show, merge, compare and render loadgen run reports (and compare conformance results)",
    long_about = "Show, merge, compare and render loadgen run reports (report.json), and compare \
conformance results (conformance run --json FILE).\n\n\
Exit codes: 0 ok; 1 regression (compare: a metric worse, or new conformance failures); \
2 usage, unreadable or invalid input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a run's summary: per metric count, rate, p50, p90, p99, p99.9, max; errors by code (a conformance result: its failing cases)
    Show {
        /// A loadgen report.json or a conformance --json result
        #[arg(value_name = "RUN.json")]
        file: PathBuf,
    },
    /// Merge the reports of shards that ran one load together: histograms added exactly, counters summed, series aligned by second
    Merge {
        /// The shards' reports
        #[arg(value_name = "REPORT.json", required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged report
        #[arg(short, long, value_name = "ALL.json")]
        out: PathBuf,
        /// Merge reports of different scenarios (name or file hash) anyway
        #[arg(long)]
        force: bool,
    },
    /// Compare a baseline with a new run: stats side by side with deltas and a verdict per metric; exit 1 on a regression
    #[command(after_help = COMPARE_HELP)]
    Compare {
        /// The baseline: a loadgen report.json, or a conformance result
        #[arg(value_name = "BASE.json")]
        base: PathBuf,
        /// The new run, of the same kind
        #[arg(value_name = "NEW.json")]
        new: PathBuf,
        #[command(flatten)]
        rules: RuleArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the output to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write one self-contained HTML report (opens offline): percentile spectra, time series, summary table
    Html {
        /// The run's report.json
        #[arg(value_name = "RUN.json")]
        file: PathBuf,
        /// A baseline report to overlay and compare with
        #[arg(long, value_name = "BASE.json")]
        baseline: Option<PathBuf>,
        /// Where to write the HTML file
        #[arg(short, long, value_name = "report.html")]
        out: PathBuf,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Print the percentiles as CSV for spreadsheets (one row per metric, µs)
    Csv {
        /// The run's report.json
        #[arg(value_name = "RUN.json")]
        file: PathBuf,
        /// Write to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The whole percentile distribution instead (metric,percentile,value_us,count,inverted)
        #[arg(long)]
        spectrum: bool,
    },
}

const COMPARE_HELP: &str = "\
Thresholds: `[METRIC.]STAT CHANGE`; STAT one of p50 p90 p95 p99 p99.9 p99.99 max mean rate error-rate;
CHANGE a signed limit (the sign is the bad direction): `p99 +10%`, `p99 +2ms`, `rate -10%`,
`error-rate +0.1pp`, `ack.room:subscribe.p99 +5%`, `p90 off`. A stat is worse when it moved the
bad way by more than every limit that applies (`p99 +10%` with `p99 +1ms`: 10% and at least 1 ms).
Defaults: p50 +10%, p90 +10%, p99 +10%, error-rate +0.1pp. --thresholds FILE (TOML):
  min_samples = 200
  thresholds = [\"p99 +10%\", \"error-rate +0.1pp\"]
Rules naming a metric win over general ones; flags win over the file, the file over the defaults.
Noise guard: a metric with fewer than --min-samples samples in either run (default 100) is
\"insufficient data\", never a regression; and a change beyond its threshold counts only when it is
also beyond noise: the two runs' 95% confidence intervals of the stat do not overlap (percentiles:
distribution-free, from each histogram's order statistics; mean, rate and error rate too; not max).
Conformance results: lists new failures (exit 1) and fixed cases.";

#[derive(Debug, Args)]
struct RuleArgs {
    /// A comparison threshold, e.g. 'p99 +10%', 'error-rate +0.1pp' (repeatable)
    #[arg(long = "threshold", value_name = "RULE")]
    threshold: Vec<String>,
    /// A TOML file with `thresholds = [...]` and optionally `min_samples`
    #[arg(long = "thresholds", value_name = "FILE")]
    thresholds: Option<PathBuf>,
    /// Samples each run needs before a metric is judged [default: 100]
    #[arg(long, value_name = "N")]
    min_samples: Option<u64>,
}

impl RuleArgs {
    fn resolve(&self) -> Result<(Rules, u64), String> {
        let file = match &self.thresholds {
            Some(p) => ThresholdFile::load(p)?,
            None => ThresholdFile::default(),
        };
        let rules = Rules::new(&file.thresholds, &self.threshold).map_err(|e| {
            match (&self.thresholds, file.thresholds.contains(&e.text)) {
                (Some(p), true) => format!("{}: {e}", p.display()),
                _ => e.to_string(),
            }
        })?;
        let min = self
            .min_samples
            .or(file.min_samples)
            .unwrap_or(DEFAULT_MIN_SAMPLES);
        Ok((rules, min))
    }

    fn given(&self) -> bool {
        !self.threshold.is_empty() || self.thresholds.is_some() || self.min_samples.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

/// An error and its exit code.
struct Failure {
    code: i32,
    message: String,
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        usage(e.to_string())
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: message.into(),
    }
}

/// Runs the command line `args` (program name first); returns the exit
/// code. Output goes to stdout, messages to stderr.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    match execute(cli.command) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("reports: error: {}", f.message);
            f.code
        }
    }
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), Failure> {
    match out {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(p) => std::fs::write(p, text)
            .map_err(|e| usage(format!("{}: cannot write: {e}", p.display()))),
    }
}

fn execute(command: Command) -> Result<i32, Failure> {
    match command {
        Command::Show { file } => {
            let text = match model::load(&file)? {
                Input::Load(run) => render::show_load(&run),
                Input::Conformance(run) => render::show_conformance(&run),
            };
            write_out(None, &text)?;
            Ok(0)
        }
        Command::Merge { files, out, force } => {
            let runs = files
                .iter()
                .map(|f| model::load_run(f))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = merge::merge(&runs, force).map_err(|e| usage(e.to_string()))?;
            for w in &merged.warnings {
                eprintln!("reports: warning: {w}");
            }
            write_out(Some(&out), &merged.report.to_json())?;
            let r = &merged.report;
            eprintln!(
                "reports: merged {} report{} into {}: scenario {}, {} clients, {} workers, {:.1} s{}",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" },
                out.display(),
                r.scenario.name,
                r.clients,
                r.workers,
                r.duration_secs(),
                if r.complete { "" } else { ", INCOMPLETE" }
            );
            Ok(0)
        }
        Command::Compare {
            base,
            new,
            rules,
            format,
            out,
        } => {
            let (b, n) = (model::load(&base)?, model::load(&new)?);
            let (text, regression) = match (&b, &n) {
                (Input::Load(b), Input::Load(n)) => {
                    let (rules, min) = rules.resolve().map_err(usage)?;
                    let c = compare_load(b, n, &rules, min);
                    let text = match format {
                        Format::Text => render::compare_load_text(&c),
                        Format::Markdown => render::compare_load_markdown(&c),
                        Format::Json => json(&c),
                    };
                    (text, c.regression)
                }
                (Input::Conformance(b), Input::Conformance(n)) => {
                    if rules.given() {
                        eprintln!(
                            "reports: warning: thresholds apply to loadgen reports; ignored for conformance results"
                        );
                    }
                    let c = compare_conformance(b, n);
                    let text = match format {
                        Format::Text => render::compare_conformance_text(&c),
                        Format::Markdown => render::compare_conformance_markdown(&c),
                        Format::Json => json(&c),
                    };
                    (text, c.regression)
                }
                _ => {
                    return Err(usage(format!(
                        "{} is {} but {} is {}: compare takes two of the same kind",
                        b.path(),
                        b.kind(),
                        n.path(),
                        n.kind()
                    )));
                }
            };
            write_out(out.as_deref(), &text)?;
            Ok(if regression { EXIT_REGRESSION } else { 0 })
        }
        Command::Html {
            file,
            baseline,
            out,
            rules,
        } => {
            let run = model::load_run(&file)?;
            let base = baseline.as_deref().map(model::load_run).transpose()?;
            let (rules, min) = rules.resolve().map_err(usage)?;
            let cmp = base.as_ref().map(|b| compare_load(b, &run, &rules, min));
            write_out(Some(&out), &html::report(&run, base.as_ref(), cmp.as_ref()))?;
            eprintln!("reports: wrote {}", out.display());
            Ok(0)
        }
        Command::Csv {
            file,
            out,
            spectrum,
        } => {
            let run = model::load_run(&file)?;
            let text = if spectrum {
                csv_out::spectrum(&run)
            } else {
                csv_out::percentiles(&run)
            }
            .map_err(|e| usage(format!("CSV: {e}")))?;
            write_out(out.as_deref(), &text)?;
            Ok(0)
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("a comparison serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
