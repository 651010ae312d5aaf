//! A run: load and check the scenario and its thresholds, pick the target
//! (`target`), check that it answers an Engine.IO handshake, run
//! the load ([`crate::engine`]) in this process or in worker processes
//! (`workers`), evaluate the thresholds on the final metrics and
//! write the report ([`crate::report`]) into `--out DIR`. Also `loadgen
//! validate`, which shares the scenario loading.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use driver::handshake::Handshake;
use driver::identity::Identity;
use driver::profile::{Profile, Vars};
use formats::metrics::{MetricsSnapshot, SecondSample};
use formats::names;
use formats::report::{GeneratorReport, Machine, REPORT_VERSION, RunReport, ScenarioMeta};
use formats::threshold::Threshold;

use crate::cli::{Command, Opts, RunOpts, ValidateOpts};
use crate::engine::{self, AbortReason, EngineOutcome, Progress, RunPlan, StopSignal};
use crate::error::{
    EXIT_ABORTED, EXIT_GENERATOR_BOUND, EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, Error,
};
use crate::live::LiveMetrics;
use crate::metrics::{Recorder, Sampler};
use crate::scenario::{self, Scenario, Step};
use crate::workers::{self, WorkerPlan};

/// Clients per worker process when `--workers` is not given: one process
/// holds ~19,000 sockets (20,000 open files), with room to spare.
pub const CLIENTS_PER_WORKER: u32 = 15_000;

/// What a command did (its errors are [`Error`]s).
#[derive(Debug)]
pub enum Outcome {
    Run(Box<RunOutcome>),
    /// `validate`: how many files were invalid (each already reported).
    Validate {
        invalid: usize,
    },
    /// `worker`: whether its share ran to the end (its report is written).
    Worker {
        complete: bool,
    },
    /// `completions` or `man`: written.
    Docs,
}

impl Outcome {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Run(r) => r.exit_code(),
            Outcome::Validate { invalid: 0 } => EXIT_OK,
            Outcome::Validate { .. } => EXIT_USAGE,
            Outcome::Worker { complete: true } => EXIT_OK,
            Outcome::Worker { complete: false } => EXIT_ABORTED,
            Outcome::Docs => EXIT_OK,
        }
    }
}

/// What `loadgen run` did once the load started (complete or partial).
#[derive(Debug)]
pub struct RunOutcome {
    pub report: RunReport,
    /// Where the report was written (or was to be).
    pub out_dir: PathBuf,
    /// The report could not be written (the message was printed).
    pub write_failed: bool,
    /// `--fail-on-generator-bound` was given.
    pub fail_on_generator_bound: bool,
}

impl RunOutcome {
    /// 4 when the run was cut short, 5 when it was generator-bound and
    /// `--fail-on-generator-bound` was given (its thresholds measured the
    /// generator as much as the target), 1 when a threshold was breached,
    /// 2 when the report could not be written, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.report.complete {
            EXIT_ABORTED
        } else if self.fail_on_generator_bound && self.generator_bound() {
            EXIT_GENERATOR_BOUND
        } else if self.report.thresholds.iter().any(|t| !t.passed) {
            EXIT_THRESHOLD
        } else if self.write_failed {
            EXIT_USAGE
        } else {
            EXIT_OK
        }
    }
}

impl RunOutcome {
    /// Whether the report says the results are generator-bound.
    pub fn generator_bound(&self) -> bool {
        self.report
            .generator
            .as_ref()
            .is_some_and(GeneratorReport::is_bound)
    }
}

/// Runs the command.
pub async fn run(opts: Opts) -> Result<Outcome, Error> {
    match opts.command {
        Command::Run(r) => run_interruptible(r)
            .await
            .map(|r| Outcome::Run(Box::new(r))),
        Command::Validate(v) => Ok(validate(&v)),
        Command::Worker(w) => workers::worker(&w).await,
        Command::Docs(d) => {
            use clap::CommandFactory as _;
            clidoc::run(Opts::command(), &d, &mut std::io::stdout().lock()).map_err(Error::Docs)?;
            Ok(Outcome::Docs)
        }
    }
}

/// `loadgen validate FILE...`: prints one line per file (and its
/// warnings), each invalid file's errors on stderr.
pub fn validate(opts: &ValidateOpts) -> Outcome {
    let mut invalid = 0;
    for path in &opts.files {
        match load_scenario(path, &opts.vars, &[]) {
            Ok((s, _)) => println!(
                "{}: ok: `{}`, {} group{}, {} phase{}, {} clients at peak, at most {}",
                path.display(),
                s.name,
                s.groups.len(),
                plural(s.groups.len()),
                s.phases.len(),
                plural(s.phases.len()),
                s.peak_clients(),
                scenario::format_duration(s.max_duration),
            ),
            Err(e) => {
                eprintln!("{e}");
                invalid += 1;
            }
        }
    }
    Outcome::Validate { invalid }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Loads a scenario with the `--var` values (warnings to stderr) and parses its thresholds and
/// `extra` ones; errors are ready to print (`FILE:LINE:COL: message`).
fn load_scenario(
    path: &Path,
    vars: &scenario::VarOverrides,
    extra: &[String],
) -> Result<(Scenario, Vec<Threshold>), Error> {
    let scenario = scenario::load(path, vars).map_err(|e| Error::Scenario(e.to_string()))?;
    let mut thresholds = Vec::new();
    for expr in &scenario.thresholds {
        let t = Threshold::parse(expr).map_err(|e| {
            let at = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| locate(&text, expr))
                .map(|(l, c)| format!(":{l}:{c}"))
                .unwrap_or_default();
            Error::Scenario(format!("{}{at}: {e}", path.display()))
        })?;
        thresholds.push(t);
    }
    let known = scenario.known_metrics();
    for expr in extra {
        let t = Threshold::parse(expr).map_err(|e| Error::Scenario(format!("--threshold: {e}")))?;
        known.check(&t.metric).map_err(|reason| {
            Error::Scenario(format!("--threshold: invalid threshold `{expr}`: {reason}"))
        })?;
        thresholds.push(t);
    }
    Ok((scenario, thresholds))
}

/// 1-based line and column of the first occurrence of `needle`.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let line = text[..at].matches('\n').count() + 1;
    let col = text[..at]
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        + 1;
    Some((line, col))
}

/// `loadgen run`, with Ctrl-C handled (stop, partial report, exit 4).
pub async fn run_interruptible(opts: RunOpts) -> Result<RunOutcome, Error> {
    let stop = StopSignal::new();
    let ctrl_c = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "loadgen: interrupted: stopping (a partial report will be written; Ctrl-C again to quit at once)"
                );
                stop.stop();
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("loadgen: interrupted twice: quitting without a report");
                    std::process::exit(i32::from(EXIT_ABORTED));
                }
            }
        })
    };
    let outcome = run_with_stop(opts, stop).await;
    ctrl_c.abort();
    outcome
}

/// [`run_interruptible`] stopped by `stop` instead of Ctrl-C.
pub async fn run_with_stop(opts: RunOpts, stop: StopSignal) -> Result<RunOutcome, Error> {
    // Scenario, thresholds, overrides, profile: exit 2.
    let (scenario, thresholds) = load_scenario(&opts.scenario, &opts.vars, &opts.thresholds)?;
    let scenario = scenario
        .try_with_overrides(opts.clients, opts.duration)
        .map_err(|e| Error::Overrides(e.to_string()))?;
    let profile = match &opts.profile {
        Some(p) => {
            Profile::load(&p.display().to_string()).map_err(|e| Error::Profile(e.to_string()))?
        }
        None => Profile::reference(),
    };
    let base_vars = profile
        .base_vars()
        .map_err(|e| Error::Profile(format!("profile [vars]: {e}")))?;
    let handshake = Handshake::resolve(&profile.handshake, &opts.handshake, &base_vars)
        .map_err(|e| Error::Profile(e.to_string()))?;
    let identity = Identity::resolve(&profile.identity, &base_vars)
        .map_err(|e| Error::Profile(e.to_string()))?;
    if let Some(t) = scenario_transport_refused(&scenario, &handshake) {
        return Err(Error::Profile(format!(
            "the scenario connects over {t}, which the handshake's transports exclude"
        )));
    }
    let sample: Vars = [("token", "t"), ("userId", "u")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::json!(v)))
        .collect();
    handshake
        .auth(&sample, &base_vars)
        .map_err(|e| Error::Profile(format!("handshake auth: {e}")))?;
    if let Some(warning) = handshake.insecure_warning() {
        eprintln!("loadgen: {warning}");
    }
    if let Some(t) = &opts.target {
        driver::target::check_url(t)?;
    }
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario.name));
    let created_out_dir = !out_dir.exists();
    std::fs::create_dir_all(&out_dir).map_err(|source| Error::OutDir {
        path: out_dir.clone(),
        source,
    })?;

    let given = opts.target.clone().or(profile.target.url.clone());
    let outcome = match driver::target::Target::choose(given, "loadgen").await {
        Ok(target) => {
            let url = target.url().to_owned();
            let run = Run {
                opts: &opts,
                scenario,
                thresholds,
                profile,
                base_vars,
                handshake: Arc::new(handshake),
                identity: Arc::new(identity),
                target: url,
                out_dir: out_dir.clone(),
            };
            let outcome = run.against(stop).await;
            target.stop().await;
            outcome
        }
        Err(e) => Err(e.into()),
    };
    if outcome.is_err() && created_out_dir {
        // Nothing was written: leave no empty folder behind.
        let _ = std::fs::remove_dir(&out_dir);
    }
    outcome
}

fn default_out_dir(name: &str) -> PathBuf {
    let stamp: String = protocol::timestamp::now()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("loadgen-out").join(format!("{safe}-{stamp}Z"))
}

/// A run whose inputs are checked and whose target is chosen.
struct Run<'a> {
    opts: &'a RunOpts,
    scenario: Scenario,
    thresholds: Vec<Threshold>,
    profile: Profile,
    base_vars: Vars,
    handshake: Arc<Handshake>,
    identity: Arc<Identity>,
    target: String,
    out_dir: PathBuf,
}

impl Run<'_> {
    async fn against(self, stop: StopSignal) -> Result<RunOutcome, Error> {
        let Run {
            opts,
            scenario,
            thresholds,
            profile,
            base_vars,
            handshake,
            identity,
            target,
            out_dir,
        } = self;
        // (clap makes --worker-targets require --workers.)
        if !opts.worker_targets.is_empty() && opts.workers.is_some_and(|n| n < 2) {
            return Err(Error::Overrides(
                "--worker-targets needs --workers 2 or more: one process has one target".into(),
            ));
        }
        // Reachability first (every worker target too): exit 3 with a
        // clear message, before any worker.
        let http = engine::http_client(None, &handshake);
        for url in std::iter::once(&target).chain(&opts.worker_targets) {
            engine::check_target(&http, url, &profile.target.socket_path, &handshake, None)
                .await
                .map_err(Error::Unreachable)?;
        }

        let shard = opts.shard;
        let (shard_index, shard_count) = shard.map_or((0, 1), |s| (s.index - 1, s.count));
        let peak = scenario.peak_clients();
        let shard_clients = workers::share_of(peak, shard_index, shard_count);
        let worker_count = opts
            .workers
            .unwrap_or_else(|| shard_clients.div_ceil(CLIENTS_PER_WORKER))
            .max(1);
        let max_vus = scenario.max_vus;
        let base = WorkerPlan {
            scenario,
            scenario_file: opts.scenario.display().to_string(),
            target,
            worker_targets: opts.worker_targets.clone(),
            profile: opts.profile.clone(),
            share_index: shard_index,
            share_count: shard_count,
            setup_vars: None,
            local_addr: None,
            run_id: engine::new_run_id(),
            seed: opts.seed.unwrap_or_else(rand::random),
            shard,
            clients: shard_clients,
            handshake: (*opts.handshake).clone(),
            start_at: opts.start_at.map(|s| s.at),
        };

        let live = (opts.metrics_listen.is_some() || opts.otlp_endpoint.is_some())
            .then(|| LiveMetrics::new(&base.scenario.name, shard_clients));
        let server = match (opts.metrics_listen, &live) {
            (Some(addr), Some(live)) => {
                let (bound, task) = crate::live::serve(addr, live.clone())
                    .await
                    .map_err(|e| Error::local(format!("--metrics-listen {addr}"), e))?;
                eprintln!("loadgen: live metrics at http://{bound}/metrics");
                Some(task)
            }
            _ => None,
        };
        let otlp_done = StopSignal::new();
        let otlp = match (&opts.otlp_endpoint, &live) {
            (Some(url), Some(live)) => Some(tokio::spawn(crate::live::export_otlp(
                url.clone(),
                live.clone(),
                opts.otlp_interval,
                otlp_done.clone(),
            ))),
            _ => None,
        };
        let progress = Progress::for_run(
            shard_clients,
            opts.quiet,
            opts.progress_interval,
            live.clone(),
        );
        let outcome = if worker_count == 1 {
            let plan = engine_plan(&base, Arc::new(profile), base_vars, handshake, identity);
            run_local(&base, plan, stop, Some(progress), None)
                .await
                .map_err(Error::BeforeLoad)
        } else {
            workers::run_workers(
                base,
                worker_count,
                profile,
                base_vars,
                (handshake, identity),
                progress,
                stop,
            )
            .await
        };
        if let (Ok((_, snapshot)), Some(live)) = (&outcome, &live) {
            live.publish(snapshot, "done");
        }
        otlp_done.stop();
        if let Some(task) = otlp {
            // The final push is bounded by the client's timeout.
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(task) = server {
            task.abort();
        }
        let (mut report, snapshot) = outcome?;

        report.label = opts.label.clone();
        report.evaluate(&thresholds, &snapshot);
        print!("{}", report.summary_text());
        if let Some(&dropped) = report.counters.get(names::ARRIVALS_DROPPED)
            && dropped > 0
        {
            eprintln!(
                "loadgen: warning: {dropped} arrivals dropped: max_vus ({}) arrival VUs were already running; the offered load was lower than the phases ask (gate it with `{}.count < 1`)",
                max_vus.unwrap_or(0),
                names::ARRIVALS_DROPPED
            );
        }
        let mut write_failed = match crate::report::write_to(&report, &out_dir) {
            Ok(()) => {
                eprintln!(
                    "loadgen: report written to {}",
                    out_dir.join("report.json").display()
                );
                false
            }
            Err(e) => {
                eprintln!(
                    "loadgen: cannot write the report into {}: {e}",
                    out_dir.display()
                );
                true
            }
        };
        let junit = opts
            .junit
            .as_ref()
            .map(|p| (p, std::fs::write(p, formats::ci::thresholds_junit(&report))));
        // The step summary collects every step's: appended to.
        let summary = opts.summary_md.as_ref().map(|p| {
            (
                p,
                formats::ci::append(p, &formats::ci::load_markdown(&report)),
            )
        });
        for (path, written) in junit.into_iter().chain(summary) {
            if let Err(e) = written {
                eprintln!("loadgen: cannot write {}: {e}", path.display());
                write_failed = true;
            }
        }
        Ok(RunOutcome {
            report,
            out_dir,
            write_failed,
            fail_on_generator_bound: opts.fail_on_generator_bound,
        })
    }
}

/// The first transport of a `connect` step that `handshake` excludes.
fn scenario_transport_refused(scenario: &Scenario, handshake: &Handshake) -> Option<String> {
    fn walk(steps: &[Step], handshake: &Handshake) -> Option<String> {
        steps.iter().find_map(|step| match step {
            Step::Connect { transport, .. } => {
                let t = engine::client_transport(*transport);
                (!handshake.allows(t)).then(|| t.to_string())
            }
            Step::Loop { steps, .. } => walk(steps, handshake),
            Step::Choice { options } => options.iter().find_map(|(_, s)| walk(s, handshake)),
            _ => None,
        })
    }
    scenario
        .groups
        .iter()
        .find_map(|g| walk(&g.steps, handshake))
}

/// The engine's plan for a process running `p`.
pub(crate) fn engine_plan(
    p: &WorkerPlan,
    profile: Arc<Profile>,
    base_vars: Vars,
    handshake: Arc<Handshake>,
    identity: Arc<Identity>,
) -> RunPlan {
    RunPlan {
        identity,
        scenario: Arc::new(p.scenario.clone()),
        target: p.target.clone(),
        profile,
        base_vars,
        handshake,
        share_index: p.share_index,
        share_count: p.share_count,
        shard: p.shard.map_or(0, |s| s.index - 1),
        setup_vars: p.setup_vars.clone(),
        local_addr: p.local_addr,
        run_id: p.run_id.clone(),
        seed: p.seed,
        start_at: p.start_at,
    }
}

/// Runs the engine in this process while sampling the series; on a
/// before-load abort returns its reason. `live`, when given, gets a JSON
/// line of cumulative totals every second (worker → parent).
pub(crate) async fn run_local(
    meta: &WorkerPlan,
    plan: RunPlan,
    stop: StopSignal,
    progress: Option<Progress>,
    live: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Result<(RunReport, MetricsSnapshot), AbortReason> {
    let started = SystemTime::now();
    let recorder = Recorder::new();
    let done = StopSignal::new();
    let sampler = tokio::spawn(sample_series(recorder.clone(), done.clone(), live));
    let watch = tokio::spawn(crate::watch::watch(recorder.clone(), done.clone()));
    let outcome = engine::run(plan, recorder.clone(), stop, progress).await;
    done.stop();
    let samples = sampler.await.unwrap_or_default();
    let _ = watch.await;
    if let Some(reason) = &outcome.abort_reason
        && reason.before_load()
    {
        return Err(reason.clone());
    }
    let snapshot = recorder.snapshot();
    let series = trim_series(samples, outcome.load_started_at);
    let report = local_report(meta, &outcome, &snapshot, series, started);
    Ok((report, snapshot))
}

/// One snapshot per second into a [`Sampler`], until `done`; returns each
/// sample with the wall-clock time it was taken (the last one when `done`
/// fires covers the partial last second).
async fn sample_series(
    recorder: Recorder,
    done: StopSignal,
    live: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Vec<(SystemTime, SecondSample)> {
    let mut sampler = Sampler::new();
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut t = 0;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            () = done.stopped() => true,
        };
        t += 1;
        let snap = recorder.snapshot();
        if let Some(tx) = &live {
            let _ = tx.send(workers::live_line(&snap));
        }
        out.push((SystemTime::now(), sampler.sample(t, snap)));
        if last {
            return out;
        }
    }
}

/// Keeps the samples taken after the load started, numbered by the second
/// of load they end in (1 = the first).
fn trim_series(
    samples: Vec<(SystemTime, SecondSample)>,
    load_started_at: Option<SystemTime>,
) -> Vec<SecondSample> {
    let Some(t0) = load_started_at else {
        return Vec::new();
    };
    let mut out: Vec<SecondSample> = Vec::new();
    for (at, mut s) in samples {
        let Ok(since) = at.duration_since(t0) else {
            continue;
        };
        let mut t = since.as_secs_f64().ceil().max(1.0) as u64;
        if let Some(prev) = out.last() {
            t = t.max(prev.t + 1);
        }
        s.t = t;
        out.push(s);
    }
    out
}

fn local_report(
    meta: &WorkerPlan,
    outcome: &EngineOutcome,
    snapshot: &MetricsSnapshot,
    series: Vec<SecondSample>,
    started: SystemTime,
) -> RunReport {
    let start = outcome.load_started_at.unwrap_or(started);
    let mut report = RunReport {
        version: REPORT_VERSION,
        tool: format!("loadgen {}", crate::VERSION),
        label: None,
        target: meta.target.clone(),
        scenario: ScenarioMeta {
            name: meta.scenario.name.clone(),
            file: meta.scenario_file.clone(),
            hash: meta.scenario.source_hash.clone(),
        },
        started_at: protocol::timestamp::format(start),
        ended_at: protocol::timestamp::format(start + outcome.load_duration),
        duration_ms: outcome.load_duration.as_millis() as u64,
        machine: Machine::current(),
        shard: meta.shard,
        workers: 1,
        clients: meta.clients,
        complete: outcome.complete,
        abort_reason: outcome.abort_reason.as_ref().map(|r| r.to_string()),
        histograms: BTreeMap::new(),
        counters: BTreeMap::new(),
        series,
        thresholds: Vec::new(),
        mismatches: outcome.mismatches.clone(),
        generator: None,
    };
    report.set_metrics(snapshot);
    report.generator = Some(GeneratorReport::assess(&report, report.machine.cpus));
    if outcome.hit_max_duration {
        eprintln!(
            "loadgen: the load reached its maximum duration ({}) with virtual users still busy; they were stopped",
            scenario::format_duration(meta.scenario.max_duration)
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_line_and_column() {
        assert_eq!(locate("a\nb = \"x\"\n", "\"x\""), Some((2, 5)));
    }

    #[test]
    fn series_trimmed_to_the_load() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let s = |t| SecondSample {
            t,
            connected: 0,
            sent: 0,
            received: 0,
            errors: 0,
            p99_us: None,
            cpu_ms: None,
        };
        let samples = vec![
            (t0 - Duration::from_millis(300), s(1)),
            (t0 + Duration::from_millis(700), s(2)),
            (t0 + Duration::from_millis(1700), s(3)),
            (t0 + Duration::from_millis(1900), s(4)),
        ];
        let ts: Vec<u64> = trim_series(samples, Some(t0)).iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![1, 2, 3]);
    }
}
