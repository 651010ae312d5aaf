//! Multi-process runs: the parent runs the scenario's set-up once, then
//! starts `loadgen worker --plan FILE --report FILE` children (the same
//! executable), each running share k of the load with the set-up's
//! variables, bound to source address 127.0.0.(k+2) when the target is on
//! loopback (one address per worker: each gets its own ~28k ephemeral
//! ports).
//!
//! The wire protocol between them: the plan is a JSON [`WorkerPlan`]; a
//! child prints one JSON [`LiveLine`] per second on stdout (its cumulative
//! metrics, whole: the parent's progress line and live metrics are their
//! exact merge), stops when its stdin says
//! `stop` or closes, and writes its partial report (with whole histograms)
//! to the report file; the parent merges them exactly
//! ([`RunReport::merge`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driver::handshake::{Handshake, HandshakeArgs};
use driver::identity::Identity;
use driver::profile::{Profile, Vars};
use formats::histogram::{decode_histogram, encode_histogram};
use formats::metrics::MetricsSnapshot;
use formats::report::{RunReport, ShardInfo};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::cli::WorkerOpts;
use crate::engine::{self, AbortReason, Progress, StopSignal};
use crate::error::{EXIT_TARGET, Error};
use crate::run::{Outcome, engine_plan, run_local};
use crate::scenario::Scenario;

/// What every process of a run shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkerPlan {
    pub scenario: Scenario,
    /// The scenario file as given (for the report).
    pub scenario_file: String,
    pub target: String,
    /// `--worker-targets`: worker k's target is entry k modulo the list
    /// (the parent's plan only; each worker's plan has its own `target`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_targets: Vec<String>,
    pub profile: Option<PathBuf>,
    pub share_index: u32,
    pub share_count: u32,
    pub setup_vars: Option<Vars>,
    pub local_addr: Option<IpAddr>,
    pub run_id: String,
    pub seed: u64,
    pub shard: Option<ShardInfo>,
    /// Peak clients of this share.
    pub clients: u32,
    /// The handshake flags (the profile's `[handshake]` is in the file).
    pub handshake: HandshakeArgs,
    /// `--start-at`, resolved to a wall-clock time once by the parent.
    pub start_at: Option<std::time::SystemTime>,
}

/// Clients of share `index` of `count` when the whole has `peak`: the
/// slots `j < peak` with `j % count == index`.
pub(crate) fn share_of(peak: u32, index: u32, count: u32) -> u32 {
    if peak > index {
        (peak - index - 1) / count.max(1) + 1
    } else {
        0
    }
}

/// The cumulative metrics a worker prints once per second: its whole
/// snapshot, histograms encoded as in the report (a few kB a second).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct LiveLine {
    connected: i64,
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, String>,
}

impl LiveLine {
    /// The snapshot again; a histogram that does not decode is left out
    /// (the report, written at the end, still has it).
    fn into_snapshot(self) -> MetricsSnapshot {
        MetricsSnapshot {
            connected: self.connected,
            counters: self.counters,
            histograms: self
                .histograms
                .into_iter()
                .filter_map(|(name, hdr)| Some((name, decode_histogram(&hdr).ok()?)))
                .collect(),
        }
    }
}

pub(crate) fn live_line(snap: &MetricsSnapshot) -> String {
    let line = LiveLine {
        connected: snap.connected,
        counters: snap.counters.clone(),
        histograms: snap
            .histograms
            .iter()
            .map(|(name, h)| (name.clone(), encode_histogram(h)))
            .collect(),
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
/// Fails when nothing ran.
pub(crate) async fn run_workers(
    base: WorkerPlan,
    workers: u32,
    profile: Profile,
    base_vars: Vars,
    (handshake, identity): (Arc<Handshake>, Arc<Identity>),
    progress: Progress,
    stop: StopSignal,
) -> Result<(RunReport, MetricsSnapshot), Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::local("cannot find the loadgen executable", e))?;
    let dir = tempfile::tempdir().map_err(|e| Error::local("creating a temporary folder", e))?;

    // The set-up runs once here; every worker gets its variables (one world).
    let profile = Arc::new(profile);
    let setup_plan = engine_plan(
        &base,
        profile.clone(),
        base_vars.clone(),
        handshake.clone(),
        identity,
    );
    let http = engine::http_client(None, &handshake);
    let setup_vars = tokio::select! {
        () = stop.stopped() => return Err(Error::BeforeLoad(AbortReason::Interrupted)),
        r = engine::setup(&setup_plan, &http) => r.map_err(Error::BeforeLoad)?,
    };

    // With --shard, the shard's load is this shard's share of the scenario,
    // split again among the workers (the shard is one world).
    let mut scenario = base.scenario.clone();
    if base.share_count > 1 {
        scenario = scenario
            .try_with_overrides(Some(base.clients.max(1)), None)
            .map_err(|e| Error::Overrides(format!("--shard: {e}")))?;
    }
    let peak = scenario.peak_clients();
    eprintln!(
        "loadgen: {workers} worker processes, {} clients each at most",
        peak.div_ceil(workers)
    );

    let mut children = Vec::new();
    let (live_tx, mut live_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, MetricsSnapshot)>();
    for k in 0..workers {
        let target = match base.worker_targets.len() {
            0 => base.target.clone(),
            n => base.worker_targets[k as usize % n].clone(),
        };
        let plan = WorkerPlan {
            scenario: scenario.clone(),
            share_index: k,
            share_count: workers,
            setup_vars: Some(setup_vars.clone()),
            local_addr: worker_local_addr(&target, k),
            clients: share_of(peak, k, workers),
            target,
            worker_targets: Vec::new(),
            ..base.clone()
        };
        let plan_path = dir.path().join(format!("plan-{k}.json"));
        let report = dir.path().join(format!("report-{k}.json"));
        std::fs::write(&plan_path, serde_json::to_vec(&plan).expect("serializes"))
            .map_err(|e| Error::local(format!("writing {}", plan_path.display()), e))?;
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
                return Err(Error::local(format!("starting worker {k}"), e));
            }
        };
        let stdin = proc.stdin.take();
        if let Some(out) = proc.stdout.take() {
            let tx = live_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(l) = serde_json::from_str::<LiveLine>(&line) {
                        let _ = tx.send((k, l.into_snapshot()));
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
    let progress = Some(progress);
    if let Some(p) = &progress {
        p.set_phase(format!("{workers} workers"));
    }
    let deadline = Instant::now() + scenario.max_duration + Duration::from_secs(1800);
    let mut latest: BTreeMap<u32, MetricsSnapshot> = BTreeMap::new();
    // Their merge, redone only when a worker sent a new line (once a second
    // each; the progress ticks four times a second).
    let mut merged = MetricsSnapshot::default();
    let mut changed = false;
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
                changed = true;
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
                    if std::mem::take(&mut changed) {
                        merged = live_snapshot(&latest);
                    }
                    p.update(&merged);
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
        let message = abort.unwrap_or_else(|| "every worker failed".into());
        return Err(Error::Workers { code, message });
    }
    let mut merged = RunReport::merge(&parts).map_err(Error::Merge)?;
    // Each worker kept its own first ones: the earliest of them.
    merged
        .mismatches
        .truncate(base.scenario.keep_mismatches as usize);
    merged.clients = peak;
    merged.shard = base.shard;
    if !failures.is_empty() || abort.is_some() {
        // The parent's reason first: the workers only saw its `stop`.
        merged.complete = false;
        merged.abort_reason = abort
            .or_else(|| failures.first().map(|f| f.2.clone()))
            .or(merged.abort_reason);
    }
    let snapshot = merged.snapshot().map_err(Error::Merge)?;
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

/// The workers' latest snapshots merged, for the progress line and the
/// live metrics.
fn live_snapshot(latest: &BTreeMap<u32, MetricsSnapshot>) -> MetricsSnapshot {
    let mut snap = MetricsSnapshot::default();
    for s in latest.values() {
        snap.merge(s);
    }
    snap
}

/// `loadgen worker`: runs one share, writes its report.
pub(crate) async fn worker(opts: &WorkerOpts) -> Result<Outcome, Error> {
    let plan: WorkerPlan = std::fs::read(&opts.plan)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|message| Error::WorkerPlan {
            path: opts.plan.clone(),
            message,
        })?;
    let profile = match &plan.profile {
        Some(p) => Profile::load(&p.display().to_string()).map_err(|e| Error::WorkerPlan {
            path: opts.plan.clone(),
            message: e.to_string(),
        })?,
        None => Profile::reference(),
    };
    let base_vars = profile.base_vars().unwrap_or_default();
    let handshake =
        Handshake::resolve(&profile.handshake, &plan.handshake, &base_vars).map_err(|e| {
            Error::WorkerPlan {
                path: opts.plan.clone(),
                message: e.to_string(),
            }
        })?;
    let identity =
        Identity::resolve(&profile.identity, &base_vars).map_err(|e| Error::WorkerPlan {
            path: opts.plan.clone(),
            message: e.to_string(),
        })?;
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
    let run_plan = engine_plan(
        &plan,
        Arc::new(profile),
        base_vars,
        Arc::new(handshake),
        Arc::new(identity),
    );
    let result = run_local(&plan, run_plan, stop, None, Some(tx)).await;
    let _ = printer.join();
    let (report, _) = result.map_err(Error::BeforeLoad)?;
    let tmp = opts.report.with_extension("tmp");
    std::fs::write(&tmp, report.to_json())
        .and_then(|()| std::fs::rename(&tmp, &opts.report))
        .map_err(|source| Error::WorkerReport {
            index: plan.share_index,
            path: opts.report.clone(),
            source,
        })?;
    Ok(Outcome::Worker {
        complete: report.complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::names;

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
    fn loopback_targets_get_a_source_address() {
        assert_eq!(
            worker_local_addr("http://127.0.0.1:3000", 0),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(worker_local_addr("https://example.com", 0), None);
    }

    #[test]
    fn live_lines_carry_whole_snapshots_that_merge_exactly() {
        let text =
            r#"{"connected":3,"counters":{"generator.cpu_ms":40,"sent.x":10},"histograms":{}}"#;
        let line: LiveLine = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&line).unwrap(), text);
        let one = line.into_snapshot();
        assert_eq!((one.connected, one.counter("sent.x")), (3, 10));
        // Two workers: every counter and histogram (tagged copies too).
        let worker = |us: u64| {
            let mut s = MetricsSnapshot {
                connected: 2,
                ..MetricsSnapshot::default()
            };
            let mut h = formats::histogram::new_histogram();
            h.record(us).unwrap();
            s.histograms
                .insert(names::tagged("region", "eu", "ack.x"), h);
            s.counters.insert(names::sent("x"), 5);
            let line: LiveLine = serde_json::from_str(&live_line(&s)).unwrap();
            line.into_snapshot()
        };
        let snap = live_snapshot(&BTreeMap::from([(0, worker(1000)), (1, worker(3000))]));
        assert_eq!((snap.connected, snap.counter("sent.x")), (4, 10));
        let h = &snap.histograms["[region=eu]ack.x"];
        assert_eq!((h.len(), h.min(), h.max() / 1000), (2, 1000, 3));
    }
}
