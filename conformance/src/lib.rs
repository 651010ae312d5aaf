//! The conformance runner: every documented event, payload, ack, error code
//! and rule of the protocol, checked against any target.
//!
//! A case ([`case::Case`]) has a stable id tied to its protocol section, a
//! requirement, and the driver actions it needs; the target profile
//! ([`profile`]) says how to cause each domain change on the target. The
//! runner selects cases (`--run`/`--skip` globs), runs them `--jobs` at a
//! time with every wait bounded, and renders verdicts ([`output`]).
//!
//! Exit codes: 0 conformant, 1 failures, 2 usage or profile error,
//! 3 target unreachable or set-up failed.

pub mod case;
pub mod cases;
pub mod ctx;
pub mod output;
/// Target profiles, from the shared `driver` crate.
pub use driver::profile;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use case::{CASE_LIMIT, Case, CaseRecord, Failure, Verdict};
use ctx::{Ctx, Settings};
use output::{RunReport, Summary};
use profile::Profile;

/// Exit code: every selected case passed (or was allowed).
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one failure (or an expected failure that passed).
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: bad flags, unreadable or invalid profile.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the target is unreachable, or set-up failed.
pub const EXIT_TARGET: u8 = 3;

/// Checks a deployment against the platform's real-time protocol.
#[derive(Debug, Parser)]
#[command(name = "conformance", version, about, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the cases against a target (without --target: an in-process
    /// reference server with a temporary database).
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
    /// Base URL of the target, e.g. https://staging.example.com.
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
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Cases run at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
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
    /// Print every frame, timestamped, as it passes.
    #[arg(long)]
    pub trace: bool,
    /// Print details (requirement, frames) for every case, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs the command and maps the outcome to the documented exit code.
pub async fn main_exit(opts: Opts) -> ExitCode {
    match opts.command {
        Command::List(l) => {
            list(&l);
            ExitCode::from(EXIT_OK)
        }
        Command::Run(r) => match run(r).await {
            Ok(report) => ExitCode::from(exit_code(&report.summary)),
            Err(RunError::Usage(e)) => {
                eprintln!("conformance: {e:#}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(RunError::Target(e)) => {
                eprintln!("conformance: {e:#}");
                ExitCode::from(EXIT_TARGET)
            }
        },
    }
}

/// The exit code of a finished run.
pub fn exit_code(s: &Summary) -> u8 {
    if s.failed > 0 || s.xpass > 0 {
        EXIT_FAILURES
    } else if s.errors > 0 {
        EXIT_TARGET
    } else {
        EXIT_OK
    }
}

/// Why a run could not produce verdicts.
#[derive(Debug)]
pub enum RunError {
    Usage(anyhow::Error),
    Target(anyhow::Error),
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
pub async fn run(opts: RunOpts) -> Result<RunReport, RunError> {
    let usage = RunError::Usage;
    if opts.jobs == 0 {
        return Err(usage(anyhow::anyhow!("--jobs must be at least 1")));
    }
    if !(opts.timeout > 0.0 && opts.timeout <= 600.0) {
        return Err(usage(anyhow::anyhow!(
            "--timeout must be in (0, 600] seconds"
        )));
    }
    let profile = match &opts.profile {
        Some(p) => Profile::load(&p.display().to_string()).map_err(|e| usage(e.into()))?,
        None => Profile::reference(),
    };
    for name in profile.unknown_actions() {
        eprintln!(
            "conformance: warning: profile action `{name}` is not a driver action any case calls; it is ignored (`conformance list --verbose` shows each case's actions)"
        );
    }
    let base_vars = profile
        .base_vars()
        .map_err(|e| usage(anyhow::anyhow!("profile [vars]: {e}")))?;
    let known_failing = match &opts.known_failing {
        Some(path) => read_known_failing(path).map_err(usage)?,
        None => BTreeSet::new(),
    };
    let cases = selected(&opts.run, &opts.skip);
    if cases.is_empty() {
        return Err(usage(anyhow::anyhow!("no case matches --run/--skip")));
    }

    // The target: given, pinned by the profile, or an in-process server.
    let mut embedded = None;
    let target = match opts.target.clone().or(profile.target.url.clone()) {
        Some(t) => t.trim_end_matches('/').to_owned(),
        None => {
            let running = server::Embedded::start()
                .await
                .context("starting the in-process reference server")
                .map_err(RunError::Target)?;
            let url = running.url();
            eprintln!(
                "conformance: no --target given: started the reference server in-process at {url} (temporary database)"
            );
            embedded = Some(running);
            url
        }
    };

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(opts.timeout))
        .build()
        .context("building the HTTP client")
        .map_err(RunError::Target)?;
    check_reachable(
        &target,
        &profile.target.socket_path,
        Duration::from_secs_f64(opts.timeout),
    )
    .await
    .map_err(RunError::Target)?;

    let settings = Settings {
        target: target.clone(),
        profile: Arc::new(profile),
        base_vars: Arc::new(base_vars),
        wait: Duration::from_secs_f64(opts.timeout),
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
    let summary = Summary::of(&records);
    println!("{}", summary.line());
    let report = RunReport {
        version: 1,
        tool: format!("conformance {}", env!("CARGO_PKG_VERSION")),
        target,
        strict: opts.strict,
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        summary,
        cases: records,
    };
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))
            .map_err(usage)?;
    }
    if let Some(path) = &opts.junit {
        std::fs::write(path, output::junit(&report))
            .with_context(|| format!("writing {}", path.display()))
            .map_err(usage)?;
    }
    if let Some(running) = embedded {
        let _ = running.stop().await;
    }
    Ok(report)
}

fn read_known_failing(path: &PathBuf) -> anyhow::Result<BTreeSet<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ids: BTreeSet<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let known: BTreeSet<&str> = cases::all().iter().map(|c| c.id).collect();
    if let Some(unknown) = ids.iter().find(|id| !known.contains(id.as_str())) {
        anyhow::bail!("{}: unknown case id {unknown}", path.display());
    }
    Ok(ids)
}

/// An Engine.IO polling handshake ([`sioclient::probe`]), bounded by
/// `--timeout`: the cheapest proof that a Socket.IO server answers at the
/// target.
async fn check_reachable(target: &str, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let config = sioclient::ClientConfig::new(target)
        .with_path(path)
        .with_transport(sioclient::Transport::Polling)
        .with_connect_timeout(timeout);
    sioclient::probe(&config)
        .await
        .with_context(|| format!("target unreachable: {target}"))?;
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
    let missing: Vec<&str> = case
        .needs
        .iter()
        .filter(|a| cx.settings.profile.action(**a).is_none())
        .map(|a| a.as_str())
        .collect();
    let result = if missing.is_empty() {
        match tokio::time::timeout(CASE_LIMIT, (case.run)(&mut cx)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::fail(
                format!("case finished within {CASE_LIMIT:?}"),
                "still running".to_owned(),
            )),
        }
    } else {
        Err(Failure::Skip(format!(
            "driver action{} {} not in the target profile",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )))
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
