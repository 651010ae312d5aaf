//! loadgen: thousands of simulated Socket.IO clients running scripted
//! scenarios against a target, with honest latency (see README).
//!
//! The binary's commands are [`Opts`]; [`main_exit`] runs one and maps the
//! outcome to the documented exit code; [`run`] is `loadgen run` as a
//! library call (tests drive it directly).
//!
//! A run: load and check the scenario ([`scenario`]), parse the thresholds
//! ([`threshold`]), pick the target (`--target`, the profile's URL, or an
//! in-process reference server with a temporary database), check that it
//! answers an Engine.IO handshake, then run the load ([`engine`]) in this
//! process or in `--workers` child processes, record ([`metrics`]) and
//! write the report ([`report`]) into `--out DIR`.
//!
//! Workers: the parent runs the scenario's set-up once, then starts
//! `loadgen worker --plan FILE --report FILE` children (the same binary),
//! each running share k of the load with the set-up's variables, bound to
//! source address 127.0.0.(k+2) when the target is on loopback. A child
//! prints one JSON line per second on stdout (its cumulative totals, for
//! the parent's progress line), stops when its stdin says `stop` or closes,
//! and writes its partial report (with whole histograms) to the report
//! file; the parent merges them exactly.

pub mod engine;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod threshold;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Parser, Subcommand};
use driver::profile::{Profile, Vars};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use engine::{AbortReason, EngineOutcome, Progress, RunPlan, StopSignal};
use metrics::{MetricsSnapshot, Recorder, Sampler, SecondSample};
use report::{Machine, REPORT_VERSION, RunReport, ScenarioMeta, ShardInfo};
use scenario::Scenario;
use threshold::Threshold;

/// Exit code: the run completed and every threshold passed.
pub const EXIT_OK: u8 = 0;
/// Exit code: a threshold was breached.
pub const EXIT_THRESHOLD: u8 = 1;
/// Exit code: bad flags, an invalid scenario, profile or threshold.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the target is unreachable, or set-up failed.
pub const EXIT_TARGET: u8 = 3;
/// Exit code: the run was aborted (target lost mid-run, Ctrl-C, a worker
/// failed); a partial report was written.
pub const EXIT_ABORTED: u8 = 4;

/// Clients per worker process when `--workers` is not given: one process
/// holds ~19,000 sockets (20,000 open files), with room to spare.
pub const CLIENTS_PER_WORKER: u32 = 15_000;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  the run completed and every threshold passed
  1  a threshold was breached
  2  usage error: bad flags, invalid scenario, profile or threshold
  3  target unreachable, or set-up failed (no report)
  4  run aborted (target lost mid-run, Ctrl-C, a worker failed): a partial report is written";

/// Runs simulated Socket.IO clients through a scenario against a target
/// and reports latency, throughput and errors.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

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
    /// No progress line; only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker processes [default: one per 15,000 clients].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=250))]
    pub workers: Option<u32>,
    /// Run share I of N of the load (shards on several machines, 1-based,
    /// e.g. 2/3); each shard runs the set-up itself.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardInfo>,
    /// Seed of every random choice (think times, `choice` steps)
    /// [default: random].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl RunOpts {
    /// Options for `loadgen run SCENARIO` with every default.
    pub fn new(scenario: impl Into<PathBuf>) -> RunOpts {
        RunOpts {
            scenario: scenario.into(),
            target: None,
            profile: None,
            clients: None,
            duration: None,
            out: None,
            thresholds: Vec::new(),
            quiet: false,
            workers: None,
            shard: None,
            seed: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ValidateOpts {
    /// Scenario files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
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

/// Runs the command and maps the outcome to the documented exit code.
pub async fn main_exit(opts: Opts) -> ExitCode {
    let code = match opts.command {
        Command::Run(r) => run(r).await.code,
        Command::Validate(v) => validate(&v),
        Command::Worker(w) => worker(&w).await,
    };
    ExitCode::from(code)
}

// ---------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------

/// `loadgen validate FILE...`: prints one line per file (and its warnings);
/// [`EXIT_USAGE`] when any file is invalid.
pub fn validate(opts: &ValidateOpts) -> u8 {
    let mut code = EXIT_OK;
    for path in &opts.files {
        match load_scenario(path, &[]) {
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
                code = EXIT_USAGE;
            }
        }
    }
    code
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Loads a scenario (warnings to stderr) and parses its thresholds and
/// `extra` ones; errors are ready to print (`FILE:LINE:COL: message`).
fn load_scenario(path: &Path, extra: &[String]) -> Result<(Scenario, Vec<Threshold>), String> {
    let scenario = scenario::load(path).map_err(|e| e.to_string())?;
    let mut thresholds = Vec::new();
    for expr in &scenario.thresholds {
        let t = Threshold::parse(expr).map_err(|e| {
            let at = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| locate(&text, expr))
                .map(|(l, c)| format!(":{l}:{c}"))
                .unwrap_or_default();
            format!("{}{at}: {e}", path.display())
        })?;
        thresholds.push(t);
    }
    for expr in extra {
        thresholds.push(Threshold::parse(expr).map_err(|e| format!("--threshold: {e}"))?);
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

// ---------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------

/// What `loadgen run` did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code.
    pub code: u8,
    /// The report, when the load started (complete or partial).
    pub report: Option<RunReport>,
    /// Where the report was written.
    pub out_dir: Option<PathBuf>,
}

impl Outcome {
    fn failed(code: u8, msg: impl std::fmt::Display) -> Outcome {
        eprintln!("loadgen: {msg}");
        Outcome {
            code,
            report: None,
            out_dir: None,
        }
    }
}

/// What every process of a run shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerPlan {
    scenario: Scenario,
    /// The scenario file as given (for the report).
    scenario_file: String,
    target: String,
    profile: Option<PathBuf>,
    share_index: u32,
    share_count: u32,
    setup_vars: Option<Vars>,
    local_addr: Option<IpAddr>,
    run_id: String,
    seed: u64,
    shard: Option<ShardInfo>,
    /// Peak clients of this share.
    clients: u32,
}

/// `loadgen run`, with Ctrl-C handled (stop, partial report, exit 4).
pub async fn run(opts: RunOpts) -> Outcome {
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

/// [`run`] stopped by `stop` instead of Ctrl-C.
pub async fn run_with_stop(opts: RunOpts, stop: StopSignal) -> Outcome {
    // Scenario, thresholds, overrides, profile: exit 2.
    let (scenario, thresholds) = match load_scenario(&opts.scenario, &opts.thresholds) {
        Ok(x) => x,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    let scenario = match scenario.try_with_overrides(opts.clients, opts.duration) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    let profile = match &opts.profile {
        Some(p) => match Profile::load(&p.display().to_string()) {
            Ok(p) => p,
            Err(e) => return Outcome::failed(EXIT_USAGE, e),
        },
        None => Profile::reference(),
    };
    let base_vars = match profile.base_vars() {
        Ok(v) => v,
        Err(e) => return Outcome::failed(EXIT_USAGE, format!("profile [vars]: {e}")),
    };
    if let Some(t) = &opts.target
        && !reqwest::Url::parse(t).is_ok_and(|u| u.has_host())
    {
        return Outcome::failed(EXIT_USAGE, format!("--target `{t}` is not a URL"));
    }
    let out_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario.name));
    let created_out_dir = !out_dir.exists();
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        return Outcome::failed(
            EXIT_USAGE,
            format!("cannot create the output folder {}: {e}", out_dir.display()),
        );
    }

    // The target: given, pinned by the profile, or an in-process server.
    let mut embedded = None;
    let target = match opts.target.clone().or(profile.target.url.clone()) {
        Some(t) => t.trim_end_matches('/').to_owned(),
        None => match server::Embedded::start().await {
            Ok(running) => {
                let url = running.url();
                eprintln!(
                    "loadgen: no --target given: started the reference server in-process at {url} (temporary database)"
                );
                embedded = Some(running);
                url
            }
            Err(e) => {
                return Outcome::failed(
                    EXIT_TARGET,
                    format!("starting the in-process reference server: {e:#}"),
                );
            }
        },
    };
    let outcome = run_against(
        &opts,
        scenario,
        thresholds,
        profile,
        base_vars,
        target,
        out_dir.clone(),
        stop,
    )
    .await;
    if let Some(running) = embedded {
        let _ = running.stop().await;
    }
    if outcome.report.is_none() && created_out_dir {
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

/// Clients of share `index` of `count` when the whole has `peak`: the
/// slots `j < peak` with `j % count == index`.
fn share_of(peak: u32, index: u32, count: u32) -> u32 {
    if peak > index {
        (peak - index - 1) / count.max(1) + 1
    } else {
        0
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_against(
    opts: &RunOpts,
    scenario: Scenario,
    thresholds: Vec<Threshold>,
    profile: Profile,
    base_vars: Vars,
    target: String,
    out_dir: PathBuf,
    stop: StopSignal,
) -> Outcome {
    // Reachability first: exit 3 with a clear message, before any worker.
    let http = engine::http_client(None);
    if let Err(e) = engine::check_target(&http, &target, &profile.target.socket_path).await {
        return Outcome::failed(EXIT_TARGET, format!("target unreachable: {e}"));
    }

    let shard = opts.shard;
    let (shard_index, shard_count) = shard.map_or((0, 1), |s| (s.index - 1, s.count));
    let peak = scenario.peak_clients();
    let shard_clients = share_of(peak, shard_index, shard_count);
    let workers = opts
        .workers
        .unwrap_or_else(|| shard_clients.div_ceil(CLIENTS_PER_WORKER))
        .max(1);
    let seed = opts.seed.unwrap_or_else(random_seed);
    let run_id = engine::new_run_id();
    let base = WorkerPlan {
        scenario,
        scenario_file: opts.scenario.display().to_string(),
        target: target.clone(),
        profile: opts.profile.clone(),
        share_index: shard_index,
        share_count: shard_count,
        setup_vars: None,
        local_addr: None,
        run_id,
        seed,
        shard,
        clients: shard_clients,
    };

    let (mut report, snapshot) = if workers == 1 {
        let progress = (!opts.quiet).then(|| Progress::new(shard_clients));
        let plan = engine_plan(&base, Arc::new(profile), base_vars);
        match run_local(&base, plan, stop, progress, None).await {
            Ok(x) => x,
            Err(reason) => return Outcome::failed(reason.exit_code() as u8, reason),
        }
    } else {
        match run_workers(base, workers, profile, base_vars, opts.quiet, stop).await {
            Ok(x) => x,
            Err((code, msg)) => return Outcome::failed(code, msg),
        }
    };

    report.thresholds = threshold::evaluate_all(&thresholds, &snapshot, report.duration_secs());
    let mut code = if !report.complete {
        EXIT_ABORTED
    } else if report.thresholds.iter().any(|t| !t.passed) {
        EXIT_THRESHOLD
    } else {
        EXIT_OK
    };
    let summary = report.summary_text();
    print!("{summary}");
    match report.write_to(&out_dir) {
        Ok(()) => eprintln!(
            "loadgen: report written to {}",
            out_dir.join("report.json").display()
        ),
        Err(e) => {
            eprintln!(
                "loadgen: cannot write the report into {}: {e}",
                out_dir.display()
            );
            if code == EXIT_OK {
                code = EXIT_USAGE;
            }
        }
    }
    Outcome {
        code,
        report: Some(report),
        out_dir: Some(out_dir),
    }
}

fn random_seed() -> u64 {
    rand::random()
}

fn engine_plan(p: &WorkerPlan, profile: Arc<Profile>, base_vars: Vars) -> RunPlan {
    RunPlan {
        scenario: Arc::new(p.scenario.clone()),
        target: p.target.clone(),
        profile,
        base_vars,
        share_index: p.share_index,
        share_count: p.share_count,
        shard: p.shard.map_or(0, |s| s.index - 1),
        setup_vars: p.setup_vars.clone(),
        local_addr: p.local_addr,
        run_id: p.run_id.clone(),
        seed: p.seed,
    }
}

/// Runs the engine in this process while sampling the series; on a
/// before-load abort returns its reason. `live`, when given, gets a JSON
/// line of cumulative totals every second (worker → parent).
async fn run_local(
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
    let outcome = engine::run(plan, recorder.clone(), stop, progress).await;
    done.stop();
    let samples = sampler.await.unwrap_or_default();
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
            let _ = tx.send(live_line(&snap));
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
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
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
    };
    report.set_metrics(snapshot);
    if outcome.hit_max_duration {
        eprintln!(
            "loadgen: the load reached its maximum duration ({}) with virtual users still busy; they were stopped",
            scenario::format_duration(meta.scenario.max_duration)
        );
    }
    report
}

// ---------------------------------------------------------------------------
// workers
// ---------------------------------------------------------------------------

/// The cumulative totals a worker prints once per second.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LiveLine {
    connected: i64,
    sent: u64,
    received: u64,
    errors: u64,
    /// The main latency histogram (name, encoded), for the p99.
    main: Option<(String, String)>,
}

fn live_line(snap: &MetricsSnapshot) -> String {
    let line = LiveLine {
        connected: snap.connected,
        sent: snap.sent(),
        received: snap.received(),
        errors: snap.errors(),
        main: snap
            .main_latency()
            .map(|n| (n.to_owned(), report::encode_histogram(&snap.histograms[n]))),
    };
    serde_json::to_string(&line).expect("serializes")
}

/// Source address of worker `k` when the target is on loopback: one
/// address per worker, so each gets its own ~28k ephemeral ports.
fn worker_local_addr(target: &str, k: u32) -> Option<IpAddr> {
    let url = reqwest::Url::parse(target).ok()?;
    let host = url.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback || k + 2 > 254 {
        return None;
    }
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, (k + 2) as u8));
    // 127.0.0.0/8 is all loopback on Linux; elsewhere only 127.0.0.1 may be.
    std::net::TcpListener::bind((ip, 0)).ok().map(|_| ip)
}

struct Child {
    k: u32,
    proc: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    report: PathBuf,
}

/// Runs the load in `workers` child processes and merges their reports.
/// `Err((code, message))` when nothing ran.
async fn run_workers(
    base: WorkerPlan,
    workers: u32,
    profile: Profile,
    base_vars: Vars,
    quiet: bool,
    stop: StopSignal,
) -> Result<(RunReport, MetricsSnapshot), (u8, String)> {
    let exe = std::env::current_exe().map_err(|e| {
        (
            EXIT_TARGET,
            format!("cannot find the loadgen executable: {e}"),
        )
    })?;
    let dir = tempfile::tempdir()
        .map_err(|e| (EXIT_TARGET, format!("creating a temporary folder: {e}")))?;

    // The set-up runs once here; every worker gets its variables (one world).
    let profile = Arc::new(profile);
    let setup_plan = engine_plan(&base, profile.clone(), base_vars.clone());
    let http = engine::http_client(None);
    let setup_vars = tokio::select! {
        () = stop.stopped() => return Err((EXIT_ABORTED, "interrupted during set-up".into())),
        r = engine::setup(&setup_plan, &http) => r.map_err(|e| (e.exit_code() as u8, e.to_string()))?,
    };

    // With --shard, the shard's load is this shard's share of the scenario,
    // split again among the workers (the shard is one world).
    let mut scenario = base.scenario.clone();
    if base.share_count > 1 {
        scenario = scenario
            .try_with_overrides(Some(base.clients.max(1)), None)
            .map_err(|e| (EXIT_USAGE, format!("--shard: {e}")))?;
    }
    let peak = scenario.peak_clients();
    eprintln!(
        "loadgen: {workers} worker processes, {} clients each at most",
        peak.div_ceil(workers)
    );

    let mut children = Vec::new();
    let (live_tx, mut live_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, LiveLine)>();
    for k in 0..workers {
        let plan = WorkerPlan {
            scenario: scenario.clone(),
            share_index: k,
            share_count: workers,
            setup_vars: Some(setup_vars.clone()),
            local_addr: worker_local_addr(&base.target, k),
            clients: share_of(peak, k, workers),
            ..base.clone()
        };
        let plan_path = dir.path().join(format!("plan-{k}.json"));
        let report = dir.path().join(format!("report-{k}.json"));
        std::fs::write(&plan_path, serde_json::to_vec(&plan).expect("serializes"))
            .map_err(|e| (EXIT_TARGET, format!("writing {}: {e}", plan_path.display())))?;
        let spawned = tokio::process::Command::new(&exe)
            .arg("worker")
            .arg("--plan")
            .arg(&plan_path)
            .arg("--report")
            .arg(&report)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn();
        let mut proc = match spawned {
            Ok(p) => p,
            Err(e) => {
                stop_children(&mut children).await;
                return Err((EXIT_TARGET, format!("starting worker {k}: {e}")));
            }
        };
        let stdin = proc.stdin.take();
        if let Some(out) = proc.stdout.take() {
            let tx = live_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(l) = serde_json::from_str::<LiveLine>(&line) {
                        let _ = tx.send((k, l));
                    }
                }
            });
        }
        children.push(Child {
            k,
            proc,
            stdin,
            report,
        });
    }
    drop(live_tx);

    // Progress from the workers' lines; stop on Ctrl-C, a failed worker,
    // or the deadline (the workers bound themselves; this is a backstop).
    let progress = (!quiet).then(|| Progress::new(peak));
    if let Some(p) = &progress {
        p.set_phase(format!("{workers} workers"));
    }
    let deadline = Instant::now() + scenario.max_duration + Duration::from_secs(1800);
    let mut latest: BTreeMap<u32, LiveLine> = BTreeMap::new();
    let mut exited: BTreeMap<u32, Option<i32>> = BTreeMap::new();
    let mut abort: Option<String> = None;
    let mut stopping_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while exited.len() < children.len() {
        tokio::select! {
            () = stop.stopped(), if stopping_since.is_none() => {
                abort.get_or_insert_with(|| AbortReason::Interrupted.to_string());
                send_stop(&mut children).await;
                stopping_since = Some(Instant::now());
            }
            Some((k, line)) = live_rx.recv() => {
                latest.insert(k, line);
            }
            _ = tick.tick() => {
                let mut failed = None;
                for c in &mut children {
                    if exited.contains_key(&c.k) {
                        continue;
                    }
                    if let Ok(Some(status)) = c.proc.try_wait() {
                        exited.insert(c.k, status.code());
                        if !status.success() && !c.report.exists() {
                            failed.get_or_insert(format!("worker {} failed ({status})", c.k));
                        }
                    }
                }
                if let Some(p) = &progress {
                    p.update(&live_snapshot(&latest));
                }
                let now = Instant::now();
                let why = failed.or_else(|| (now > deadline).then(|| "the workers ran past their deadline".to_owned()));
                if let Some(why) = why && stopping_since.is_none() {
                    abort.get_or_insert(why);
                    send_stop(&mut children).await;
                    stopping_since = Some(now);
                }
                // Once stopping, every worker gets a bounded time to write
                // its report; then the rest are killed.
                if stopping_since.is_some_and(|t| now > t + engine::HALT_GRACE + Duration::from_secs(20)) {
                    for c in &mut children {
                        if let std::collections::btree_map::Entry::Vacant(e) = exited.entry(c.k) {
                            let _ = c.proc.kill().await;
                            e.insert(c.proc.wait().await.ok().and_then(|s| s.code()));
                        }
                    }
                }
            }
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }

    let mut parts = Vec::new();
    let mut failures = Vec::new();
    for c in &children {
        match std::fs::read_to_string(&c.report)
            .map_err(|e| e.to_string())
            .and_then(|t| RunReport::from_json(&t).map_err(|e| e.to_string()))
        {
            Ok(r) => parts.push(r),
            Err(e) => failures.push((
                c.k,
                exited.get(&c.k).copied().flatten(),
                format!("worker {} left no report ({e})", c.k),
            )),
        }
    }
    if parts.is_empty() {
        let code = failures
            .iter()
            .find_map(|(_, c, _)| c.filter(|c| (2..=4).contains(c)))
            .unwrap_or(i32::from(EXIT_TARGET)) as u8;
        let msg = abort.unwrap_or_else(|| "every worker failed".into());
        return Err((code, msg));
    }
    let mut merged =
        RunReport::merge(&parts).map_err(|e| (EXIT_ABORTED, format!("merging reports: {e}")))?;
    merged.clients = peak;
    merged.shard = base.shard;
    if !failures.is_empty() || abort.is_some() {
        // The parent's reason first: the workers only saw its `stop`.
        merged.complete = false;
        merged.abort_reason = abort
            .or_else(|| failures.first().map(|f| f.2.clone()))
            .or(merged.abort_reason);
    }
    let snapshot = merged
        .snapshot()
        .map_err(|e| (EXIT_ABORTED, format!("reading worker histograms: {e}")))?;
    Ok((merged, snapshot))
}

async fn send_stop(children: &mut [Child]) {
    for c in children {
        if let Some(mut s) = c.stdin.take() {
            let _ = s.write_all(b"stop\n").await;
        }
    }
}

async fn stop_children(children: &mut [Child]) {
    send_stop(children).await;
    for c in children {
        if tokio::time::timeout(Duration::from_secs(10), c.proc.wait())
            .await
            .is_err()
        {
            let _ = c.proc.kill().await;
        }
    }
}

/// The workers' latest totals as a snapshot for the progress line.
fn live_snapshot(latest: &BTreeMap<u32, LiveLine>) -> MetricsSnapshot {
    let mut snap = MetricsSnapshot::default();
    let mut add = |k: &str, n: u64| *snap.counters.entry(k.to_owned()).or_default() += n;
    for l in latest.values() {
        add("sent.*", l.sent);
        add("received.*", l.received);
        add("errors.*", l.errors);
    }
    for l in latest.values() {
        snap.connected += l.connected;
        if let Some((name, hdr)) = &l.main
            && let Ok(h) = report::decode_histogram(hdr)
        {
            let mut one = MetricsSnapshot::default();
            one.histograms.insert(name.clone(), h);
            snap.merge(&one);
        }
    }
    snap
}

/// `loadgen worker`: runs one share, writes its report; the exit code as
/// for `run` (without thresholds).
async fn worker(opts: &WorkerOpts) -> u8 {
    let plan: WorkerPlan = match std::fs::read(&opts.plan)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen worker: plan {}: {e}", opts.plan.display());
            return EXIT_USAGE;
        }
    };
    let profile = match &plan.profile {
        Some(p) => match Profile::load(&p.display().to_string()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("loadgen worker: {e}");
                return EXIT_USAGE;
            }
        },
        None => Profile::reference(),
    };
    let base_vars = profile.base_vars().unwrap_or_default();
    let stop = StopSignal::new();
    // Stop on `stop` from the parent, on stdin closing (the parent is
    // gone), or on Ctrl-C.
    {
        let stop = stop.clone();
        // A plain thread: a blocking read must not hold up the runtime's exit.
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() != "stop" => continue,
                    _ => break,
                }
            }
            stop.stop();
        });
    }
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.stop();
            }
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = std::thread::spawn(move || {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        while let Some(line) = rx.blocking_recv() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    let run_plan = engine_plan(&plan, Arc::new(profile), base_vars);
    let result = run_local(&plan, run_plan, stop, None, Some(tx)).await;
    let _ = printer.join();
    match result {
        Ok((report, _)) => {
            let tmp = opts.report.with_extension("tmp");
            if let Err(e) = std::fs::write(&tmp, report.to_json())
                .and_then(|()| std::fs::rename(&tmp, &opts.report))
            {
                eprintln!(
                    "loadgen worker {}: cannot write {}: {e}",
                    plan.share_index,
                    opts.report.display()
                );
                return EXIT_ABORTED;
            }
            if report.complete {
                EXIT_OK
            } else {
                EXIT_ABORTED
            }
        }
        Err(reason) => {
            eprintln!("loadgen worker {}: {reason}", plan.share_index);
            reason.exit_code() as u8
        }
    }
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
    fn shares_cover_the_peak() {
        for peak in [0, 1, 7, 100] {
            for n in 1..5 {
                let total: u32 = (0..n).map(|i| share_of(peak, i, n)).sum();
                assert_eq!(total, peak);
            }
        }
    }

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

    #[test]
    fn loopback_targets_get_a_source_address() {
        assert_eq!(
            worker_local_addr("http://127.0.0.1:3000", 0),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(worker_local_addr("https://example.com", 0), None);
    }
}
