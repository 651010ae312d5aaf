//! The conformance runner: every documented event, payload, ack, error code
//! and rule of the protocol, checked against any target.
//!
//! A case ([`case::Case`]) has a stable id tied to its protocol section, a
//! requirement, and the driver actions it needs; the target profile
//! ([`profile`]) says how to cause each domain change on the target. The
//! runner selects cases (`--run`/`--skip` globs), runs them `--jobs` at a
//! time with every wait bounded, and renders verdicts ([`output`]).
//!
//! The binary is [`Opts`] and [`run`]; exit codes: 0 conformant,
//! 1 failures, 2 usage or profile error ([`Error`]), 3 target unreachable
//! or set-up failed, 4 too few cases executed (none, or fewer than
//! `--require-coverage`). Without a target the runner starts the reference
//! server in-process ([`embedded`], cargo feature `embedded`).

pub mod case;
pub mod cases;
pub mod ctx;
pub mod embedded;
mod error;
pub mod output;
/// Target profiles, from the shared `driver` crate.
pub use driver::profile;
pub use error::Error;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use case::{CASE_LIMIT, Case, CaseRecord, Failure, Verdict};
use ctx::{Ctx, Settings};
use output::{RunReport, Summary};
use profile::Profile;

/// The version `--version` prints and reports carry: the package version
/// and, in a git checkout, the revision (`0.1.0 (git 0123456789ab)`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("GIT_REVISION_SUFFIX"));

/// Exit code: every selected case passed (or was allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one failure (or an expected failure that passed).
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: bad flags, unreadable or invalid profile.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the target is unreachable, or set-up failed.
pub const EXIT_TARGET: u8 = 3;
/// Exit code: no selected case executed (all skipped), or fewer than
/// `--require-coverage` percent did.
pub const EXIT_COVERAGE: u8 = 4;

/// Checks a deployment against the platform's real-time protocol.
#[derive(Debug, Parser)]
#[command(name = "conformance", version = VERSION, about, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the cases against a target (without --target: an in-process
    /// reference server with a temporary database, in builds with the
    /// default `embedded` feature).
    Run(RunOpts),
    /// List the cases: id, needed driver actions, description.
    List(ListOpts),
}

#[derive(Debug, Args)]
pub struct ListOpts {
    /// Only cases whose id matches one of these globs (`*`, `?`).
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Leave out cases whose id matches one of these globs.
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Also print each case's requirement.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct RunOpts {
    /// Base URL of the target, e.g. `https://staging.example.com`.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Target profile (TOML): socket path, variables, driver actions.
    /// Default: the reference server's REST API.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Only cases whose id matches one of these globs (`*`, `?`).
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Leave out cases whose id matches one of these globs.
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Seconds any single wait may take before it fails its case.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Cases run at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Treat non-strict findings (allowed but not recommended, e.g. extra
    /// fields) as failures.
    #[arg(long)]
    pub strict: bool,
    /// File of case ids (one per line, `#` comments) expected to fail:
    /// their failures become XFAIL, and one that passes fails the run.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Write per-case records with timings and wire transcripts as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML (case id as test name; failures and errors apart).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary to FILE (verdict counts, failing
    /// cases), e.g. "$GITHUB_STEP_SUMMARY" (appended to).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// A label for this run (a release, a commit, a CI job), kept in the
    /// --json result and shown by `reports`.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// Fail the run (exit 4) when fewer than PCT percent of the selected
    /// cases executed (were not skipped). The default, 100, makes a case
    /// that cannot run (a driver action missing from the profile) fail the
    /// run; lower it for a profile that drives only part of the protocol.
    /// A run where none executed fails whatever PCT.
    #[arg(long, value_name = "PCT", default_value_t = 100.0, value_parser = parse_coverage)]
    pub require_coverage: f64,
    /// Print every frame, timestamped, as it passes.
    #[arg(long)]
    pub trace: bool,
    /// Print details (requirement, frames) for every case, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--jobs`: at least 1.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".to_owned()),
    }
}

/// `--timeout`: seconds in (0, 600].
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 600.0 => Ok(secs),
        _ => Err("must be a number of seconds in (0, 600]".to_owned()),
    }
}

/// `--require-coverage`: a percentage in [0, 100].
fn parse_coverage(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(pct) if (0.0..=100.0).contains(&pct) => Ok(pct),
        _ => Err("must be a percentage in [0, 100]".to_owned()),
    }
}

/// What a command did.
#[derive(Debug)]
pub enum Outcome {
    /// `list` printed the cases.
    Listed,
    /// `run` produced verdicts.
    Ran(Box<RunReport>),
}

impl Outcome {
    /// The documented exit code: 0, or for a run 1 on failures, 3 when
    /// a case's set-up failed, 4 when too few cases executed ([`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Listed => EXIT_OK,
            Outcome::Ran(report) => exit_code(&report.summary),
        }
    }

    /// The run's report (`None` for `list`).
    pub fn into_report(self) -> Option<RunReport> {
        match self {
            Outcome::Ran(report) => Some(*report),
            Outcome::Listed => None,
        }
    }
}

/// Runs the command.
pub async fn run(opts: Opts) -> Result<Outcome, Error> {
    match opts.command {
        Command::List(l) => {
            list(&l);
            Ok(Outcome::Listed)
        }
        Command::Run(r) => Ok(Outcome::Ran(Box::new(run_cases(r).await?))),
    }
}

/// The exit code of a finished run: failures first, then set-up
/// errors, then coverage.
pub fn exit_code(s: &Summary) -> u8 {
    if s.failed > 0 || s.xpass > 0 {
        EXIT_FAILURES
    } else if s.errors > 0 {
        EXIT_TARGET
    } else if coverage_shortfall(s).is_some() {
        EXIT_COVERAGE
    } else {
        EXIT_OK
    }
}

/// Why the run executed too little, if it did: nothing at all (whatever
/// `--require-coverage`), or less than it asks.
pub fn coverage_shortfall(s: &Summary) -> Option<String> {
    let selected = s.executed + s.skipped;
    if s.executed == 0 {
        Some(format!(
            "no selected case executed ({selected} skipped): a run that checks nothing is not a pass"
        ))
    } else if s.coverage < s.required_coverage {
        Some(format!(
            "{} of {selected} selected cases executed ({:.1}%), below --require-coverage {}",
            s.executed, s.coverage, s.required_coverage
        ))
    } else {
        None
    }
}

fn selected(run: &[String], skip: &[String]) -> Vec<&'static Case> {
    cases::all()
        .iter()
        .filter(|c| run.is_empty() || run.iter().any(|g| case::glob_match(g, c.id)))
        .filter(|c| !skip.iter().any(|g| case::glob_match(g, c.id)))
        .collect()
}

fn list(opts: &ListOpts) {
    for c in selected(&opts.run, &opts.skip) {
        println!("{:<46} {}", c.id, c.description);
        if opts.verbose {
            println!("{:<46} requirement: {}", "", c.requirement);
            if !c.needs.is_empty() {
                let needs: Vec<&str> = c.needs.iter().map(|a| a.as_str()).collect();
                println!("{:<46} driver: {}", "", needs.join(", "));
            }
        }
    }
}

/// Runs the selected cases and prints the results; the report is also
/// what `--json` writes.
async fn run_cases(opts: RunOpts) -> Result<RunReport, Error> {
    let profile = match &opts.profile {
        Some(p) => Profile::load(&p.display().to_string())?,
        None => Profile::reference(),
    };
    for name in profile.unknown_actions() {
        eprintln!(
            "conformance: warning: profile action `{name}` is not a driver action any case calls; it is ignored (`conformance list --verbose` shows each case's actions)"
        );
    }
    let base_vars = profile.base_vars().map_err(Error::ProfileVars)?;
    let known_failing = match &opts.known_failing {
        Some(path) => read_known_failing(path)?,
        None => BTreeSet::new(),
    };
    let cases = selected(&opts.run, &opts.skip);
    if cases.is_empty() {
        return Err(Error::NoCaseSelected);
    }

    // The target: given, pinned by the profile, or an in-process server.
    let mut embedded = None;
    let target = match opts.target.clone().or(profile.target.url.clone()) {
        Some(t) => t.trim_end_matches('/').to_owned(),
        None => {
            let running = embedded::start().await?;
            let url = running.url();
            eprintln!(
                "conformance: no --target given: started the reference server in-process at {url} (temporary database)"
            );
            embedded = Some(running);
            url
        }
    };

    let wait = Duration::from_secs_f64(opts.timeout);
    let http = reqwest::Client::builder()
        .timeout(wait)
        .build()
        .map_err(Error::HttpClient)?;
    check_reachable(&target, &profile.target.socket_path, wait).await?;

    let settings = Settings {
        target: target.clone(),
        profile: Arc::new(profile),
        base_vars: Arc::new(base_vars),
        wait,
        strict: opts.strict,
        http,
        trace: opts.trace,
    };
    let started_at = protocol::timestamp::now();
    let started = Instant::now();
    println!("conformance: {} cases against {target}", cases.len());
    let mut records: Vec<CaseRecord> = futures_util::stream::iter(cases)
        .map(|c| run_case(c, settings.clone(), &known_failing))
        .buffer_unordered(opts.jobs)
        .inspect(|r| println!("{}", output::human_line(r, opts.verbose)))
        .collect()
        .await;
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let mut summary = Summary::of(&records);
    summary.required_coverage = opts.require_coverage;
    summary.skips = skip_groups(&records, &settings.profile);
    if let Some(text) = output::skip_summary(&summary, &records) {
        print!("{text}");
    }
    println!("{}", summary.line());
    if let Some(why) = coverage_shortfall(&summary) {
        eprintln!("conformance: {why}");
    }
    let report = RunReport {
        version: 1,
        tool: format!("conformance {VERSION}"),
        label: opts.label.clone(),
        target,
        strict: opts.strict,
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        summary,
        cases: records,
    };
    if let Some(running) = embedded {
        embedded::stop(running).await;
    }
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        write(path, text + "\n")?;
    }
    if let Some(path) = &opts.junit {
        write(path, output::junit(&report))?;
    }
    if let Some(path) = &opts.summary_md {
        formats::ci::append(path, &output::markdown(&report)).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(report)
}

/// The skipped cases grouped by reason: one group per driver action
/// missing from the profile (the cases it costs, so a case lacking two
/// actions is in both groups), the other skips by their reason.
fn skip_groups(records: &[CaseRecord], profile: &Profile) -> Vec<output::SkipGroup> {
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in records.iter().filter(|r| r.verdict == Verdict::Skip) {
        let missing = missing_actions(cases::all().iter().find(|c| c.id == r.id), profile);
        let reasons = if missing.is_empty() {
            vec![r.reason.clone().unwrap_or_else(|| "no reason given".into())]
        } else {
            missing.iter().map(|a| missing_reason(&[a])).collect()
        };
        for reason in reasons {
            groups.entry(reason).or_default().push(r.id.clone());
        }
    }
    let mut out: Vec<output::SkipGroup> = groups
        .into_iter()
        .map(|(reason, cases)| output::SkipGroup { reason, cases })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.cases.len()));
    out
}

/// The driver actions `case` needs that `profile` lacks (none for an
/// unknown case).
fn missing_actions(case: Option<&Case>, profile: &Profile) -> Vec<&'static str> {
    case.map_or(&[][..], |c| c.needs)
        .iter()
        .filter(|a| profile.action(**a).is_none())
        .map(|a| a.as_str())
        .collect()
}

/// The skip reason of a case that lacks `missing` driver actions.
fn missing_reason(missing: &[&str]) -> String {
    format!(
        "needs driver action{} `{}` (missing from the target profile)",
        if missing.len() > 1 { "s" } else { "" },
        missing.join("`, `")
    )
}

fn write(path: &Path, text: String) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

fn read_known_failing(path: &Path) -> Result<BTreeSet<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::KnownFailingRead {
        path: path.to_owned(),
        source,
    })?;
    let ids: BTreeSet<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let known: BTreeSet<&str> = cases::all().iter().map(|c| c.id).collect();
    if let Some(unknown) = ids.iter().find(|id| !known.contains(id.as_str())) {
        return Err(Error::UnknownCaseId {
            path: path.to_owned(),
            id: unknown.clone(),
        });
    }
    Ok(ids)
}

/// An Engine.IO polling handshake ([`sioclient::probe`]), bounded by
/// `--timeout`: the cheapest proof that a Socket.IO server answers at the
/// target.
async fn check_reachable(target: &str, path: &str, timeout: Duration) -> Result<(), Error> {
    let config = sioclient::ClientConfig::new(target)
        .with_path(path)
        .with_transport(sioclient::Transport::Polling)
        .with_connect_timeout(timeout);
    sioclient::probe(&config)
        .await
        .map_err(|source| Error::Unreachable {
            target: target.to_owned(),
            source,
        })?;
    Ok(())
}

async fn run_case(
    case: &'static Case,
    settings: Settings,
    known_failing: &BTreeSet<String>,
) -> CaseRecord {
    let strict = settings.strict;
    let mut cx = Ctx::new(settings, case);
    let started = Instant::now();
    let missing = missing_actions(Some(case), &cx.settings.profile);
    let result = if missing.is_empty() {
        match tokio::time::timeout(CASE_LIMIT, (case.run)(&mut cx)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::fail(
                format!("case finished within {CASE_LIMIT:?}"),
                "still running".to_owned(),
            )),
        }
    } else {
        Err(Failure::Skip(missing_reason(&missing)))
    };
    // Let frame taps deliver what is in flight.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut rec = CaseRecord {
        id: case.id.to_owned(),
        description: case.description.to_owned(),
        requirement: case.requirement.to_owned(),
        verdict: Verdict::Pass,
        duration_ms: started.elapsed().as_millis() as u64,
        expected: None,
        actual: None,
        schema_errors: Vec::new(),
        reason: None,
        notes: std::mem::take(&mut cx.notes),
        transcript: cx.take_transcript(),
    };
    match result {
        Ok(()) if !rec.notes.is_empty() => {
            rec.verdict = if strict {
                Verdict::Fail
            } else {
                Verdict::NonStrict
            };
            rec.reason = Some(format!("{} non-strict finding(s)", rec.notes.len()));
        }
        Ok(()) => {}
        Err(Failure::Fail {
            expected,
            actual,
            schema_errors,
        }) => {
            rec.verdict = Verdict::Fail;
            rec.expected = Some(cx.redact(&expected));
            rec.actual = Some(cx.redact(&actual));
            rec.schema_errors = schema_errors.iter().map(|e| cx.redact(e)).collect();
        }
        Err(Failure::Skip(reason)) => {
            rec.verdict = Verdict::Skip;
            rec.reason = Some(reason);
        }
        Err(Failure::Error(reason)) => {
            rec.verdict = Verdict::Error;
            rec.reason = Some(cx.redact(&reason));
        }
    }
    if known_failing.contains(case.id) {
        rec.verdict = match rec.verdict {
            Verdict::Fail => Verdict::Xfail,
            Verdict::Pass | Verdict::NonStrict => {
                rec.reason = Some("listed in --known-failing but passed".into());
                Verdict::Xpass
            }
            other => other,
        };
    }
    rec
}
