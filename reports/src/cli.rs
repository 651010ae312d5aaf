//! The command line ([`Opts`]: `show`, `merge`, `compare`, `html`, `csv`)
//! and [`run`], which carries a command out.
//!
//! Exit codes: 0 ok; 1 a regression (`compare`: a metric worse, or new
//! conformance failures); 2 usage, or an input that cannot be read or is
//! invalid (or an output that cannot be written). Output to a closed pipe
//! (`reports show x.json | head`) is not an error.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compare::{LoadComparison, compare_conformance, compare_load};
use crate::model::{self, Input, InputError, LoadRun};
use crate::thresholds::{DEFAULT_MIN_SAMPLES, Rules, ThresholdError, ThresholdFile};
use crate::{csv_out, html, merge, render};

/// Exit code: a regression or new failures.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit code: usage, unreadable or invalid input.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "reports",
    version = crate::VERSION,
    about = "Show, merge, compare and render loadgen run reports (and compare conformance results)",
    long_about = "Show, merge, compare and render loadgen run reports (report.json), and compare \
conformance results (conformance run --json FILE).\n\n\
Exit codes: 0 ok; 1 regression (compare: a metric worse, or new conformance failures); \
2 usage, unreadable or invalid input."
)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a run's summary: per metric count, rate, p50, p90, p99, p99.9, max; errors by code (a conformance result: its failing cases)
    Show {
        /// A loadgen report.json or a conformance --json result
        #[arg(value_name = "RUN.json")]
        file: PathBuf,
    },
    /// Merge the reports of shards that ran one load together: histograms added exactly, counters summed, series aligned by wall-clock second, duration from the earliest start to the latest end
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
    /// Compare a baseline with a new run (or several runs of each): stats side by side with deltas and a verdict per metric; exit 1 on a regression
    #[command(after_help = COMPARE_HELP)]
    Compare {
        /// The baseline: a loadgen report.json, or a conformance result
        #[arg(value_name = "BASE.json", required_unless_present = "base_runs", conflicts_with_all = ["base_runs", "new_runs"])]
        base: Option<PathBuf>,
        /// The new run, of the same kind
        #[arg(value_name = "NEW.json", required_unless_present = "base_runs")]
        new: Option<PathBuf>,
        /// Several baseline runs (loadgen reports of one build; a shell
        /// glob works): with at least 3 per side, changes are judged
        /// against the run-to-run spread
        #[arg(long = "base", value_name = "BASE.json", num_args = 1.., requires = "new_runs")]
        base_runs: Vec<PathBuf>,
        /// Several new runs (of the build under test)
        #[arg(long = "new", visible_alias = "head", value_name = "NEW.json", num_args = 1.., requires = "base_runs")]
        new_runs: Vec<PathBuf>,
        #[command(flatten)]
        rules: RuleArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write the output to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also append the Markdown rendering to FILE, e.g.
        /// "$GITHUB_STEP_SUMMARY"
        #[arg(long, value_name = "FILE")]
        summary_md: Option<PathBuf>,
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
    /// Hidden: `completions SHELL`, `man --out DIR`.
    #[command(flatten)]
    Docs(clidoc::DocCommand),
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
The generator's own metrics (generator.*) are judged only by rules that name them.
A rule's METRIC must be a histogram of the runs (either side): an unknown one is an error (exit 2).
Noise guard: a metric with fewer than --min-samples samples in any run (default 100) is
\"insufficient data\", never a regression; and a change beyond its threshold counts only when it is
also beyond noise. With at least 3 runs per side (--base A B C --new D E F): Welch's t-test
(95%, two-sided) on the per-run values of the stat (the run-to-run spread); the values shown are
the means of the runs'. With fewer: each side's runs are pooled and the two 95% confidence
intervals of the stat must not overlap (percentiles: distribution-free, from the histograms' order
statistics; mean, rate and error rate too; not max) -- within-run noise only, as a warning says.
Conformance results: lists new failures (exit 1) and fixed cases.";

#[derive(Debug, Args)]
pub struct RuleArgs {
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
    /// The rules and the minimum samples, checked against the runs they
    /// will judge (both sides): a rule naming a metric no run recorded is
    /// an error.
    fn resolve(&self, runs: &[&LoadRun]) -> Result<(Rules, u64), String> {
        let file = match &self.thresholds {
            Some(p) => ThresholdFile::load(p)?,
            None => ThresholdFile::default(),
        };
        let located =
            |e: ThresholdError| match (&self.thresholds, file.thresholds.contains(&e.expr)) {
                (Some(p), true) => format!("{}: {e}", p.display()),
                _ => e.to_string(),
            };
        let rules = Rules::new(&file.thresholds, &self.threshold).map_err(located)?;
        let histograms = runs
            .iter()
            .flat_map(|r| r.metrics.histograms.keys())
            .map(String::as_str)
            .collect();
        let counters = runs
            .iter()
            .flat_map(|r| r.metrics.counters.keys())
            .map(String::as_str)
            .collect();
        rules
            .check_metrics(&histograms, &counters)
            .map_err(located)?;
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
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// What a command found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// `compare`: a metric is worse, or there are new conformance failures.
    pub regression: bool,
}

impl Outcome {
    /// 1 on a regression, else 0.
    pub fn exit_code(self) -> u8 {
        if self.regression { EXIT_REGRESSION } else { 0 }
    }
}

const DONE: Outcome = Outcome { regression: false };

/// Why a command failed: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input that cannot be read or used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Anything else the user can fix: thresholds, mixed inputs, an output
    /// that cannot be written, reports that do not merge.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        EXIT_USAGE
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// Writes `text` to `out`, or to stdout; a closed stdout (the reader of a
/// pipe is gone) is not an error.
fn write_out(out: Option<&Path>, text: &str) -> Result<(), Error> {
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(usage(format!("stdout: {e}")))
                }
                _ => Ok(()),
            }
        }
        Some(p) => std::fs::write(p, text)
            .map_err(|e| usage(format!("{}: cannot write: {e}", p.display()))),
    }
}

/// Runs the command. Output goes to stdout (or `--out`), warnings to
/// stderr.
pub fn run(opts: Opts) -> Result<Outcome, Error> {
    match opts.command {
        Command::Show { file } => {
            let text = match model::load(&file)? {
                Input::Load(run) => render::show_load(&run),
                Input::Conformance(run) => render::show_conformance(&run),
            };
            write_out(None, &text)?;
            Ok(DONE)
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
            Ok(DONE)
        }
        Command::Compare {
            base,
            new,
            base_runs,
            new_runs,
            rules,
            format,
            out,
            summary_md,
        } => {
            if let (Some(base), Some(new)) = (base, new) {
                let (b, n) = (model::load(&base)?, model::load(&new)?);
                return compare_two(b, n, &rules, format, out.as_deref(), summary_md.as_deref());
            }
            let load_all = |files: &[PathBuf]| {
                files
                    .iter()
                    .map(|f| model::load_run(f))
                    .collect::<Result<Vec<_>, _>>()
            };
            let (b, n) = (load_all(&base_runs)?, load_all(&new_runs)?);
            let all: Vec<&LoadRun> = b.iter().chain(&n).collect();
            let (rules, min) = rules.resolve(&all).map_err(usage)?;
            let c = compare_load(&b, &n, &rules, min);
            emit_load_comparison(&c, format, out.as_deref(), summary_md.as_deref())
        }
        Command::Html {
            file,
            baseline,
            out,
            rules,
        } => {
            let run = model::load_run(&file)?;
            let base = baseline.as_deref().map(model::load_run).transpose()?;
            let all: Vec<&LoadRun> = std::iter::once(&run).chain(&base).collect();
            let (rules, min) = rules.resolve(&all).map_err(usage)?;
            let cmp = base.as_ref().map(|b| {
                compare_load(
                    std::slice::from_ref(b),
                    std::slice::from_ref(&run),
                    &rules,
                    min,
                )
            });
            write_out(Some(&out), &html::report(&run, base.as_ref(), cmp.as_ref()))?;
            eprintln!("reports: wrote {}", out.display());
            Ok(DONE)
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
            Ok(DONE)
        }
        Command::Docs(d) => {
            use clap::CommandFactory as _;
            clidoc::run(Opts::command(), &d, &mut std::io::stdout().lock())
                .map_err(|e| usage(format!("writing completions or man pages: {e}")))?;
            Ok(DONE)
        }
    }
}

/// `compare BASE.json NEW.json`: two loadgen runs, or two conformance
/// results.
fn compare_two(
    b: Input,
    n: Input,
    rules: &RuleArgs,
    format: Format,
    out: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<Outcome, Error> {
    match (&b, &n) {
        (Input::Load(b), Input::Load(n)) => {
            let (rules, min) = rules.resolve(&[b.as_ref(), n.as_ref()]).map_err(usage)?;
            let c = compare_load(
                std::slice::from_ref(b.as_ref()),
                std::slice::from_ref(n.as_ref()),
                &rules,
                min,
            );
            emit_load_comparison(&c, format, out, summary_md)
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
            emit(
                &text,
                || render::compare_conformance_markdown(&c),
                out,
                summary_md,
            )?;
            Ok(Outcome {
                regression: c.regression,
            })
        }
        _ => Err(usage(format!(
            "{} is {} but {} is {}: compare takes two of the same kind",
            b.path(),
            b.kind(),
            n.path(),
            n.kind()
        ))),
    }
}

fn emit_load_comparison(
    c: &LoadComparison,
    format: Format,
    out: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<Outcome, Error> {
    let text = match format {
        Format::Text => render::compare_load_text(c),
        Format::Markdown => render::compare_load_markdown(c),
        Format::Json => json(c),
    };
    emit(&text, || render::compare_load_markdown(c), out, summary_md)?;
    Ok(Outcome {
        regression: c.regression,
    })
}

/// Writes a comparison to `out` (or stdout) and appends its Markdown to
/// `summary_md`.
fn emit(
    text: &str,
    markdown: impl FnOnce() -> String,
    out: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<(), Error> {
    write_out(out, text)?;
    if let Some(path) = summary_md {
        formats::ci::append(path, &markdown())
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
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
        Opts::command().debug_assert();
    }

    #[test]
    fn completions_and_man_pages_mention_every_subcommand() {
        let cmd = Opts::command();
        assert_eq!(
            clidoc::visible_subcommands(&cmd),
            ["show", "merge", "compare", "html", "csv"]
        );
        assert_eq!(clidoc::missing_mentions(&cmd), Vec::<String>::new());
        let compare = cmd.find_subcommand("compare").unwrap().clone();
        assert_eq!(clidoc::missing_mentions(&compare), Vec::<String>::new());
    }
}
