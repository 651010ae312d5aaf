//! The command line: [`Opts`] (clap derive) and its commands. Parsing
//! only; [`crate::run()`] carries a command out.

// The doc comments below are clap's `--help` text (URLs and `<placeholders>`
// as people read them), not rustdoc prose.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use formats::report::ShardInfo;

use crate::scenario;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  the run completed and every threshold passed
  1  a threshold was breached
  2  usage error: bad flags, invalid scenario, profile or threshold
  3  target unreachable, or set-up failed (no report)
  4  run aborted (target lost mid-run, Ctrl-C, a worker failed): a partial report is written
  5  with --fail-on-generator-bound: the results are generator-bound (the generator, not the
     target, limited them; see the summary's WARNING)";

/// Runs simulated Socket.IO clients through a scenario against a target
/// and reports latency, throughput and errors.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version = crate::VERSION, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the `run` variant costs nothing,
// and boxing it would only make every caller unwrap it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (without --target: against an in-process reference
    /// server with a temporary database).
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunOpts),
    /// Check scenario files without running them (exit 2 on the first
    /// invalid one; errors as FILE:LINE:COL: message).
    Validate(ValidateOpts),
    /// Run one worker's share of a run (started by `run --workers`).
    #[command(hide = true)]
    Worker(WorkerOpts),
    /// Hidden: `completions SHELL`, `man --out DIR`.
    #[command(flatten)]
    Docs(clidoc::DocCommand),
}

#[derive(Debug, Clone, Args)]
pub struct RunOpts {
    /// Scenario file (TOML; see scenarios/README.md).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Base URL of the target, e.g. https://staging.example.com
    /// (default: the profile's URL, else an in-process reference server).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Target profile (TOML): Socket.IO path, variables, driver actions
    /// (default: the reference server's REST API).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Set the scenario variable K to V (repeatable): wins over `[vars]`,
    /// the environment and ${K:-default}; V is JSON when it parses as
    /// JSON (5, true), else text. K must be a variable the scenario reads.
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Peak concurrent clients: scales every ramp level and arrival rate.
    #[arg(long, value_name = "N")]
    pub clients: Option<u32>,
    /// Run length: the phases are fitted into D (e.g. 30s, 5m), which also
    /// bounds the run.
    #[arg(long, value_name = "D", value_parser = parse_duration_arg)]
    pub duration: Option<Duration>,
    /// Output folder for report.json, series.csv and summary.txt
    /// [default: ./loadgen-out/<scenario>-<timestamp>/]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Pass/fail condition `METRIC.STAT OP VALUE`, e.g.
    /// 'ack.quiz:answer_submit.p99 < 100ms' (repeatable; added to the
    /// scenario's thresholds).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// A label for this run (a release, a commit, a CI job), kept in
    /// report.json and shown by `reports show/compare/html`.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// Also write the thresholds as JUnit XML to FILE (one testcase per
    /// threshold; an incomplete run adds one that errs).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary to FILE (verdict, thresholds,
    /// latencies, errors), e.g. "$GITHUB_STEP_SUMMARY" (appended to).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// No progress line; only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// When stderr is not a terminal (a CI log), print the progress line
    /// every D (e.g. 10s, 1m).
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration_arg)]
    pub progress_interval: Duration,
    /// Serve live metrics in the Prometheus text format at
    /// http://ADDR/metrics during the run, e.g. 127.0.0.1:9464 (port 0:
    /// any free port; the address is printed on stderr).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Push live metrics to an OpenTelemetry collector: OTLP/HTTP with
    /// the JSON encoding to URL/v1/metrics, e.g. http://127.0.0.1:4318
    /// (every --otlp-interval, and once at the end).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How often to push to --otlp-endpoint.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration_arg)]
    pub otlp_interval: Duration,
    /// Worker processes [default: one per 15,000 clients].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=250))]
    pub workers: Option<u32>,
    /// Worker k connects to URL k modulo the list instead of --target (the
    /// nodes of a cluster with no load balancer in front); the set-up still
    /// runs against --target. Comma-separated.
    #[arg(long, value_name = "URL,...", value_delimiter = ',', requires_all = ["target", "workers"])]
    pub worker_targets: Vec<String>,
    /// Run share I of N of the load (shards on several machines, 1-based,
    /// e.g. 2/3); each shard runs the set-up itself.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardInfo>,
    /// Exit 5 when the results are generator-bound: the generator's CPU at
    /// or above 90% of its cores in 3 seconds or more of the load, the p90
    /// of its timer lag at 50ms or more, or the p90 of its threads' wait for
    /// a CPU at 30ms per 100ms or more (the summary warns either way).
    #[arg(long)]
    pub fail_on_generator_bound: bool,
    /// Start the load (after the set-up) at this wall-clock time, so that
    /// shards on several machines start together: RFC 3339 UTC
    /// (2026-01-15T10:00:00Z) or +D from now (+30s, +2m); at most 24 h
    /// ahead. Each shard's series is then aligned by wall-clock second.
    #[arg(long, value_name = "WHEN", value_parser = parse_start_at)]
    pub start_at: Option<StartAt>,
    /// Seed of every random choice (think times, `choice` steps)
    /// [default: random].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Boxed: the largest of the options, kept off the enum's size.
    #[command(flatten)]
    pub handshake: Box<driver::handshake::HandshakeArgs>,
}

impl RunOpts {
    /// Options for `loadgen run SCENARIO` with every default.
    pub fn new(scenario: impl Into<PathBuf>) -> RunOpts {
        RunOpts {
            scenario: scenario.into(),
            target: None,
            profile: None,
            vars: Vec::new(),
            clients: None,
            duration: None,
            out: None,
            thresholds: Vec::new(),
            label: None,
            junit: None,
            summary_md: None,
            quiet: false,
            progress_interval: crate::engine::DEFAULT_PROGRESS_INTERVAL,
            metrics_listen: None,
            otlp_endpoint: None,
            otlp_interval: crate::engine::DEFAULT_PROGRESS_INTERVAL,
            workers: None,
            worker_targets: Vec::new(),
            shard: None,
            fail_on_generator_bound: false,
            start_at: None,
            seed: None,
            handshake: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ValidateOpts {
    /// Scenario files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Check with the scenario variable K set to V (repeatable), as
    /// `run --var` would.
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerOpts {
    /// The worker's plan (JSON, written by the parent).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Where to write the partial report (JSON).
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    let d = scenario::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// `K=V`: K a variable name (ASCII letters, digits, `_`), V any text.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected K=V (e.g. questions=10), got `{s}`"))?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{k}` is not a variable name (ASCII letters, digits and _)"
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `--start-at`: when the load starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt {
    pub at: SystemTime,
}

/// The furthest ahead `--start-at` may be: every wait is bounded.
pub const START_AT_MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// `+D` (from now) or an RFC 3339 UTC time, at most
/// [`START_AT_MAX_AHEAD`] ahead; a time in the past is refused.
pub fn parse_start_at(s: &str) -> Result<StartAt, String> {
    let now = SystemTime::now();
    let at = match s.strip_prefix('+') {
        Some(d) => now + scenario::parse_duration(d)?,
        None => protocol::timestamp::parse_utc(s).ok_or_else(|| {
            format!("expected +D (e.g. +30s) or an RFC 3339 UTC time (e.g. 2026-01-15T10:00:00Z), got `{s}`")
        })?,
    };
    match at.duration_since(now) {
        Err(_) => Err(format!(
            "`{s}` has passed (now is {})",
            protocol::timestamp::format(now)
        )),
        Ok(ahead) if ahead > START_AT_MAX_AHEAD => Err(format!("`{s}` is more than 24 h ahead")),
        Ok(_) => Ok(StartAt { at }),
    }
}

/// `I/N`, 1 <= I <= N.
pub fn parse_shard(s: &str) -> Result<ShardInfo, String> {
    let bad = || format!("expected I/N with 1 <= I <= N (e.g. 2/3), got `{s}`");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: u32 = i.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || count == 0 || index > count {
        return Err(bad());
    }
    Ok(ShardInfo { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        assert_eq!(parse_shard("2/3"), Ok(ShardInfo { index: 2, count: 3 }));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn vars_parse() {
        assert_eq!(parse_var("n=5"), Ok(("n".into(), "5".into())));
        assert_eq!(parse_var("s=a=b"), Ok(("s".into(), "a=b".into())));
        assert_eq!(parse_var("e="), Ok(("e".into(), String::new())));
        assert!(parse_var("n").is_err());
        assert!(parse_var("=5").is_err());
        assert!(parse_var("a-b=5").is_err());
    }

    #[test]
    fn start_times_parse() {
        let now = SystemTime::now();
        let at = parse_start_at("+30s").unwrap().at;
        let ahead = at.duration_since(now).unwrap();
        assert!((29..=31).contains(&ahead.as_secs()), "{ahead:?}");
        let later = now + Duration::from_secs(3600);
        let text = protocol::timestamp::format(later);
        let at = parse_start_at(&text).unwrap().at;
        assert_eq!(protocol::timestamp::format(at), text);
        assert!(
            parse_start_at("2020-01-01T00:00:00Z")
                .unwrap_err()
                .contains("passed")
        );
        assert!(parse_start_at("+25h").unwrap_err().contains("24 h"));
        assert!(parse_start_at("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Opts::command().debug_assert();
    }

    #[test]
    fn completions_and_man_pages_mention_every_subcommand() {
        use clap::CommandFactory as _;
        let cmd = Opts::command();
        assert_eq!(clidoc::visible_subcommands(&cmd), ["run", "validate"]);
        assert_eq!(clidoc::missing_mentions(&cmd), Vec::<String>::new());
        let run = cmd.find_subcommand("run").unwrap().clone();
        assert_eq!(clidoc::missing_mentions(&run), Vec::<String>::new());
    }
}
