//! What the modules share: a conformance run from command-line arguments,
//! the check that every case passed, and the harness of the
//! fault-injection suite (a reference server with its own temporary
//! database, a rewriting proxy in front of it, and a run against the
//! proxy).

pub mod proxy;
pub mod sio;

use std::time::{Duration, Instant};

use clap::Parser as _;
use conformance::Opts;
use conformance::case::Verdict;
use conformance::output::RunReport;
use tokio::sync::Semaphore;

pub use proxy::{Fault, HttpResponse, Proxy};

/// Runs the conformance binary with `env` off the async runtime; returns
/// the exit code, stdout and stderr.
pub async fn conformance(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out =
        tokio::task::spawn_blocking(move || cmd.output().expect("run the conformance binary"))
            .await
            .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// altserver's shipped target profile.
pub const ALT_PROFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../altserver/profile.toml");

/// The environment [`ALT_PROFILE`] reads: `alt`'s admin address, its admin
/// key and its token secret.
pub fn alt_env(alt: &server::testing::altserver::AltServer) -> [(&'static str, &str); 3] {
    use server::testing::altserver::{ADMIN_KEY, JWT_SECRET};
    [
        ("ALTSERVER_ADMIN_URL", alt.admin.as_str()),
        ("ALTSERVER_ADMIN_KEY", ADMIN_KEY),
        ("ALTSERVER_JWT_SECRET", JWT_SECRET),
    ]
}

/// `conformance run ARGS...` in-process: its report, or why it gave none.
pub async fn run_args(args: &[&str]) -> Result<RunReport, conformance::Error> {
    let argv = ["conformance", "run"].iter().chain(args);
    let outcome = conformance::run(Opts::parse_from(argv)).await?;
    Ok(outcome.into_report().expect("a run command"))
}

/// Fails with every case that did not pass (verdict, reason, expected,
/// actual, schema errors, notes); `what` names the run.
pub fn assert_every_case_passed(report: &RunReport, what: &str) {
    let not_passed: Vec<String> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| {
            format!(
                "{} {:?}: {} / expected {:?} / actual {:?} / schema {:?} / notes {:?}",
                c.id,
                c.verdict,
                c.reason.clone().unwrap_or_default(),
                c.expected,
                c.actual,
                c.schema_errors,
                c.notes
            )
        })
        .collect();
    assert!(
        not_passed.is_empty(),
        "cases not passing {what}:\n{}",
        not_passed.join("\n")
    );
    assert_eq!(report.cases.len(), conformance::cases::all().len());
    assert_eq!(
        conformance::exit_code(&report.summary),
        conformance::EXIT_OK
    );
}

/// Fault runs at once (the harness runs tests on parallel threads; 2 cores).
static SLOTS: Semaphore = Semaphore::const_new(2);

/// Bound of one whole conformance run.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A fault scenario.
pub struct Scenario {
    pub name: &'static str,
    pub fault: Fault,
    /// Changes to the reference server's configuration.
    pub config: fn(&mut server::Config),
    /// `--run` globs (empty: every case).
    pub run: &'static [&'static str],
    /// Extra flags (`--strict`, `--timeout`, ...).
    pub flags: &'static [&'static str],
    /// `--level`: `reference` unless set, so that a fault breaking one of
    /// our decisions fails its case.
    pub level: &'static str,
}

impl Scenario {
    pub fn new(name: &'static str, fault: Fault, run: &'static [&'static str]) -> Scenario {
        Scenario {
            name,
            fault,
            config: |_| {},
            run,
            flags: &[],
            level: "reference",
        }
    }

    pub fn level(mut self, level: &'static str) -> Scenario {
        self.level = level;
        self
    }

    pub fn flags(mut self, flags: &'static [&'static str]) -> Scenario {
        self.flags = flags;
        self
    }

    pub fn config(mut self, f: fn(&mut server::Config)) -> Scenario {
        self.config = f;
        self
    }
}

/// What a run gave.
pub struct Outcome {
    pub name: &'static str,
    pub report: RunReport,
    pub exit: u8,
}

impl Outcome {
    pub fn verdict(&self, id: &str) -> Verdict {
        self.report
            .cases
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("[{}] case {id} was not run; ran: {}", self.name, self.ids()))
            .verdict
    }

    fn ids(&self) -> String {
        self.report
            .cases
            .iter()
            .map(|c| format!("{}={}", c.id, c.verdict.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The run passed (exit 0) and each of `ids` deviated from a reference
    /// decision, naming `decision`.
    pub fn assert_deviated(&self, ids: &[&str], decision: &str) {
        assert_eq!(
            self.exit,
            conformance::EXIT_OK,
            "[{}] exit code; verdicts: {}",
            self.name,
            self.ids()
        );
        for id in ids {
            let c = self.report.cases.iter().find(|c| c.id == *id).unwrap();
            assert_eq!(
                c.verdict,
                Verdict::Deviation,
                "[{}] {id} must deviate; verdicts: {}",
                self.name,
                self.ids()
            );
            assert!(
                c.deviations.iter().any(|d| d.decision == decision),
                "[{}] {id} names {decision}: {:?}",
                self.name,
                c.deviations
            );
        }
    }

    /// The run failed (exit 1) and each of `ids` failed.
    pub fn assert_caught(&self, ids: &[&str]) {
        assert_eq!(
            self.exit,
            conformance::EXIT_FAILURES,
            "[{}] exit code; verdicts: {}",
            self.name,
            self.ids()
        );
        for id in ids {
            assert_eq!(
                self.verdict(id),
                Verdict::Fail,
                "[{}] {id} must fail; verdicts: {}",
                self.name,
                self.ids()
            );
        }
    }

    /// Each of `ids` passed (sections the fault does not touch).
    pub fn assert_pass(&self, ids: &[&str]) {
        for id in ids {
            assert!(
                matches!(self.verdict(id), Verdict::Pass | Verdict::NonStrict),
                "[{}] {id} must pass; verdicts: {}",
                self.name,
                self.ids()
            );
        }
    }

    /// Every case matching one of `globs` passed.
    pub fn assert_section_passes(&self, globs: &[&str]) {
        let mut any = false;
        for c in &self.report.cases {
            if globs
                .iter()
                .any(|g| conformance::case::glob_match(g, &c.id))
            {
                any = true;
                assert!(
                    matches!(c.verdict, Verdict::Pass | Verdict::NonStrict),
                    "[{}] {} must pass (untouched section); verdicts: {}",
                    self.name,
                    c.id,
                    self.ids()
                );
            }
        }
        assert!(any, "[{}] no case matches {globs:?}", self.name);
    }

    /// The run passed (exit 0), nothing failed or errored.
    pub fn assert_conformant(&self) {
        assert_eq!(
            self.exit,
            conformance::EXIT_OK,
            "[{}] exit code; verdicts: {}",
            self.name,
            self.ids()
        );
        let s = &self.report.summary;
        assert_eq!(
            s.failed + s.errors + s.xpass,
            0,
            "[{}] {}",
            self.name,
            self.ids()
        );
    }
}

/// Starts the server and the proxy, runs the conformance through the proxy,
/// stops both, and returns what the run gave.
pub async fn run(s: Scenario) -> Outcome {
    let _slot = SLOTS.acquire().await.expect("semaphore open");
    let started = Instant::now();
    let server = server::Embedded::start_with(s.config)
        .await
        .expect("start the reference server");
    let proxy = Proxy::start(&server.url(), s.fault).await;

    let url = proxy.url();
    let mut args: Vec<&str> = vec!["--target", &url, "--level", s.level];
    for g in s.run {
        args.extend(["--run", g]);
    }
    args.extend(s.flags);
    let result = tokio::time::timeout(RUN_LIMIT, run_args(&args)).await;

    proxy.stop();
    let _ = server.stop().await;

    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("[{}] no verdicts (exit {}): {e}", s.name, e.exit_code()),
        Err(_) => panic!("[{}] the run took longer than {RUN_LIMIT:?}", s.name),
    };
    let exit = conformance::exit_code(&report.summary);
    let elapsed = started.elapsed();
    let failed: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error | Verdict::Xpass))
        .map(|c| c.id.as_str())
        .collect();
    eprintln!(
        "fault {:<34} exit {exit} {:>6} ms  {}; not passed: [{}]",
        s.name,
        elapsed.as_millis(),
        report.summary.line(),
        failed.join(", ")
    );
    Outcome {
        name: s.name,
        report,
        exit,
    }
}
