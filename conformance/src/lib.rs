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
//! server in-process ([`driver::target`], cargo feature `embedded`).

pub mod case;
pub mod cases;
pub mod check;
pub mod coverage;
pub mod ctx;
pub mod duplicates;
mod error;
pub mod output;
pub mod teardown;
/// Target profiles, from the shared `driver` crate.
pub use driver::profile;
pub use error::Error;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use driver::target::Target;
use futures_util::StreamExt;

use case::{CASE_LIMIT, Case, CaseRecord, Failure, Level, Source, Verdict};
use ctx::{Ctx, Settings};
use driver::handshake::Handshake;
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
    /// Work with target profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Hidden: `completions SHELL`, `man --out DIR`.
    #[command(flatten)]
    Docs(clidoc::DocCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Call each driver action of a profile once against a target (a user,
    /// a room, ... then their deletes) and report per action OK, missing,
    /// FAILED (with status and body), not run or provided by the identity,
    /// and the cases each missing or failing action costs. Exit 1 when a
    /// defined action fails.
    Check(CheckOpts),
}

#[derive(Debug, Args)]
pub struct CheckOpts {
    /// The profile (TOML) to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Base URL of the target (default: the profile's `url`).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Print JSON instead: the selected cases, and the coverage matrix
    /// (every requirement of the protocol text with the cases that check
    /// it and how strictly, or why none does).
    #[arg(long)]
    pub json: bool,
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
    /// Which requirements can fail a case. `spec`: only the protocol
    /// text's; a check resting on one of the reference server's decisions
    /// (docs/protocol-notes.md, N1, N2, …) that does not hold is reported as
    /// DEVIATION, naming the decision, and does not fail the run.
    /// `reference`: the decisions bind too (the reference server's own CI).
    #[arg(long, value_name = "LEVEL", default_value = "spec", value_parser = parse_level)]
    pub level: Level,
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
    /// Leave what the run created on the target (by default it is deleted
    /// at the end through the profile's `delete_room`, `delete_app` and
    /// `delete_user`, where it has them).
    #[arg(long)]
    pub no_teardown: bool,
    /// Print every frame, timestamped, as it passes.
    #[arg(long)]
    pub trace: bool,
    /// Print details (requirement, frames) for every case, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
    /// Boxed: the largest of the options, kept off the enum's size.
    #[command(flatten)]
    pub handshake: Box<driver::handshake::HandshakeArgs>,
}

/// `--level`: `spec` or `reference`.
fn parse_level(text: &str) -> Result<Level, String> {
    text.parse()
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
    /// `profile check` checked every action.
    Checked(Box<check::CheckReport>),
    /// `completions` or `man`: written.
    Docs,
}

impl Outcome {
    /// The documented exit code: 0, or for a run 1 on failures, 3 when
    /// a case's set-up failed, 4 when too few cases executed ([`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Listed | Outcome::Docs => EXIT_OK,
            Outcome::Ran(report) => exit_code(&report.summary),
            Outcome::Checked(report) if report.failed() => EXIT_FAILURES,
            Outcome::Checked(_) => EXIT_OK,
        }
    }

    /// The run's report (`None` for `list`).
    pub fn into_report(self) -> Option<RunReport> {
        match self {
            Outcome::Ran(report) => Some(*report),
            Outcome::Listed | Outcome::Checked(_) | Outcome::Docs => None,
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
        Command::Profile(ProfileCommand::Check(c)) => {
            Ok(Outcome::Checked(Box::new(check_profile(c).await?)))
        }
        Command::Docs(d) => {
            use clap::CommandFactory as _;
            clidoc::run(Opts::command(), &d, &mut std::io::stdout().lock()).map_err(Error::Docs)?;
            Ok(Outcome::Docs)
        }
    }
}

/// `profile check`: prints the report (text or JSON) and returns it.
async fn check_profile(opts: CheckOpts) -> Result<check::CheckReport, Error> {
    let name = opts.file.display().to_string();
    let profile = Profile::load(&name)?;
    let target = opts
        .target
        .clone()
        .or(profile.target.url.clone())
        .ok_or(Error::NoCheckTarget)?;
    driver::target::check_url(&target)?;
    let target = target.trim_end_matches('/').to_owned();
    let wait = Duration::from_secs_f64(opts.timeout);
    let http = reqwest::Client::builder()
        .timeout(wait)
        .build()
        .map_err(Error::HttpClient)?;
    let report = check::check(&profile, &name, &target, &http, wait).await?;
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report.text());
    }
    Ok(report)
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
    if opts.json {
        let listing = coverage::Listing::of(&selected(&opts.run, &opts.skip));
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).expect("the listing serializes")
        );
        return;
    }
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
    let handshake = Handshake::resolve(&profile.handshake, &opts.handshake, &base_vars)?;
    let identity = driver::identity::Identity::resolve(&profile.identity, &base_vars)?;
    if let Some(warning) = handshake.insecure_warning() {
        eprintln!("conformance: {warning}");
    }
    let known_failing = match &opts.known_failing {
        Some(path) => read_known_failing(path)?,
        None => BTreeSet::new(),
    };
    let cases = selected(&opts.run, &opts.skip);
    if cases.is_empty() {
        return Err(Error::NoCaseSelected);
    }

    // The target: given, pinned by the profile, or an in-process server.
    let chosen = Target::choose(
        opts.target.clone().or(profile.target.url.clone()),
        "conformance",
    )
    .await?;
    let target = chosen.url().to_owned();

    let wait = Duration::from_secs_f64(opts.timeout);
    let http = handshake
        .http_builder(reqwest::Client::builder().timeout(wait))
        .build()
        .map_err(Error::HttpClient)?;
    check_reachable(&target, &profile.target.socket_path, &handshake, wait).await?;

    let settings = Settings {
        target: target.clone(),
        profile: Arc::new(profile),
        base_vars: Arc::new(base_vars),
        wait,
        strict: opts.strict,
        http,
        trace: opts.trace,
        created: Arc::default(),
        handshake: Arc::new(handshake),
        identity: Arc::new(identity),
    };
    let started_at = protocol::timestamp::now();
    let started = Instant::now();
    println!(
        "conformance: {} cases against {target} (level {})",
        cases.len(),
        opts.level.as_str()
    );
    let mut records: Vec<CaseRecord> = futures_util::stream::iter(cases)
        .map(|c| run_case(c, settings.clone(), opts.level, &known_failing))
        .buffer_unordered(opts.jobs)
        .inspect(|r| println!("{}", output::human_line(r, opts.verbose)))
        .collect()
        .await;
    records.sort_by(|a, b| a.id.cmp(&b.id));
    // What the cases created goes before the summary, which stays last.
    if opts.no_teardown {
        if !settings.created.is_empty() {
            println!(
                "teardown: skipped (--no-teardown), {} created things left on the target",
                settings.created.len()
            );
        }
    } else {
        println!("{}", teardown::run(&settings, opts.jobs).await.line());
    }
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
        version: formats::conformance::RESULT_VERSION,
        tool: format!("conformance {VERSION}"),
        label: opts.label.clone(),
        target,
        strict: opts.strict,
        level: opts.level,
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        summary,
        cases: records,
    };
    chosen.stop().await;
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

/// The driver actions `case` needs that `profile` lacks and its identity
/// neither stands in for nor refuses (a refusal is its own skip reason;
/// none for an unknown case).
fn missing_actions(case: Option<&Case>, profile: &Profile) -> Vec<&'static str> {
    let identity = &profile.identity;
    case.map_or(&[][..], |c| c.needs)
        .iter()
        .filter(|a| profile.action(**a).is_none())
        .filter(|a| !identity.provides(**a) && identity.refuses(**a).is_none())
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

/// An Engine.IO handshake ([`sioclient::probe`]: polling, else WebSocket),
/// shaped by the run's handshake and bounded by `--timeout`: the cheapest
/// proof that a Socket.IO server answers at the target.
async fn check_reachable(
    target: &str,
    path: &str,
    handshake: &Handshake,
    timeout: Duration,
) -> Result<(), Error> {
    let config = handshake.apply(
        sioclient::ClientConfig::new(target)
            .with_path(path)
            .with_transport(handshake.probe_transport())
            .with_connect_timeout(timeout),
    );
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
    level: Level,
    known_failing: &BTreeSet<String>,
) -> CaseRecord {
    let strict = settings.strict;
    let mut cx = Ctx::new(settings, case);
    let started = Instant::now();
    let missing = missing_actions(Some(case), &cx.settings.profile);
    let refused = case
        .needs
        .iter()
        .find_map(|a| cx.settings.profile.identity.refuses(*a));
    let result = if let Some(why) = refused {
        Err(Failure::Skip(why.to_owned()))
    } else if missing.is_empty() {
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
    // A decision check that ended the case is a deviation like the ones
    // it recorded on the way ([`Ctx::decided`]).
    let result = match result {
        Err(
            f @ Failure::Fail {
                source: Source::Decision(decision),
                ..
            },
        ) => cx.decided(decision, Err(f)),
        other => other,
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
        deviations: std::mem::take(&mut cx.deviations)
            .into_iter()
            .map(|d| case::Deviation {
                expected: cx.redact(&d.expected),
                actual: cx.redact(&d.actual),
                ..d
            })
            .collect(),
        decision: None,
        transcript: cx.take_transcript(),
    };
    // Wherever a case waited for events, none may have come twice. The
    // text tells clients to ignore duplicates, so it allows them: sending
    // each event once is our decision (N6), a deviation at spec level.
    if let Some((conn, frame)) = duplicates::first_duplicate(&rec.transcript) {
        rec.deviations.push(case::Deviation {
            decision: "N6".into(),
            expected: "every event delivered once to each connection".into(),
            actual: cx.redact(&format!("{conn} received this event twice: {frame}")),
        });
    }
    match result {
        // The text held; a decision did not (with --strict, non-strict
        // findings fail the case first).
        Ok(()) if !rec.deviations.is_empty() && (!strict || rec.notes.is_empty()) => {
            let first = &rec.deviations[0];
            if level == Level::Reference {
                rec.verdict = Verdict::Fail;
                rec.expected = Some(first.expected.clone());
                rec.actual = Some(first.actual.clone());
                rec.decision = Some(first.decision.clone());
            } else {
                rec.verdict = Verdict::Deviation;
            }
            let mut named: Vec<&str> = rec.deviations.iter().map(|d| d.decision.as_str()).collect();
            named.sort_unstable();
            named.dedup();
            rec.reason = Some(format!(
                "deviates from reference decision{} {} (docs/protocol-notes.md); the protocol text's requirements held",
                if named.len() > 1 { "s" } else { "" },
                named.join(", ")
            ));
        }
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
            ..
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn completions_and_man_pages_mention_every_subcommand() {
        let cmd = Opts::command();
        cmd.clone().debug_assert();
        assert_eq!(
            clidoc::visible_subcommands(&cmd),
            ["run", "list", "profile"]
        );
        assert_eq!(clidoc::missing_mentions(&cmd), Vec::<String>::new());
        for sub in ["run", "profile"] {
            let sub = cmd.find_subcommand(sub).unwrap().clone();
            assert_eq!(clidoc::missing_mentions(&sub), Vec::<String>::new());
        }
    }
}
