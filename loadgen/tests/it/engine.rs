//! The engine against the reference server started in-process (port 0,
//! temporary SQLite database): phases, steps, metrics, failures.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::metrics::MetricsSnapshot;
use loadgen::engine::{self, AbortReason, EngineOutcome, Progress, RunPlan, StopSignal};
use loadgen::metrics::Recorder;
use loadgen::scenario::{
    self, Group, GroupSize, Phase, Scenario, SetupAction, Step, Think, TokenSource, Transport,
};
use serde_json::{Value, json};

const MS: fn(u64) -> Duration = Duration::from_millis;

struct Target {
    server: Option<server::Embedded>,
    url: String,
}

async fn start() -> Target {
    let server = server::Embedded::start()
        .await
        .expect("start the reference server");
    Target {
        url: server.url(),
        server: Some(server),
    }
}

impl Target {
    async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("server shutdown");
        }
    }
}

fn group(name: &str, size: GroupSize, steps: Vec<Step>) -> Group {
    Group {
        name: name.into(),
        size,
        steps,
        tags: BTreeMap::new(),
    }
}

fn scenario(groups: Vec<Group>, phases: Vec<Phase>) -> Scenario {
    let total: Duration = phases.iter().map(Phase::duration).sum();
    Scenario {
        name: "engine-test".into(),
        description: String::new(),
        source_hash: String::new(),
        vars: BTreeMap::new(),
        overrides: BTreeMap::new(),
        setup: vec![],
        tokens: TokenSource::Driver {
            join_room: None,
            role: "participant".into(),
            ttl: None,
        },
        feeders: vec![],
        groups,
        phases,
        max_duration: total + Duration::from_secs(20),
        thresholds: vec![],
        max_vus: None,
        keep_mismatches: 10,
    }
}

fn with_room(mut s: Scenario) -> Scenario {
    s.setup.push(SetupAction {
        action: "create_room".into(),
        with: [("name".to_owned(), json!("engine ${runId}"))].into(),
        save: vec!["roomId".into()],
    });
    s
}

fn connect() -> Step {
    Step::Connect {
        namespace: "/".into(),
        transport: Transport::WebSocket,
    }
}

fn subscribe() -> Step {
    Step::Subscribe {
        room: "${roomId}".into(),
    }
}

fn get_online(metric: Option<&str>) -> Step {
    Step::EmitAck {
        event: "presence:get_online".into(),
        data: json!({"roomId": "${roomId}"}),
        expect: Some(json!({"success": true})),
        timeout: Duration::from_secs(5),
        save: BTreeMap::new(),
        metric: metric.map(str::to_owned),
    }
}

fn ramp(to: u32, over: Duration) -> Phase {
    Phase::Ramp { from: 0, to, over }
}

fn hold(d: Duration) -> Phase {
    Phase::Hold { duration: d }
}

/// Runs the scenario to its end (bounded) and returns the outcome and the
/// metrics.
async fn run(t: &Target, s: Scenario) -> (EngineOutcome, MetricsSnapshot) {
    let rec = Recorder::new();
    let limit = s.max_duration + Duration::from_secs(30);
    let plan = RunPlan::new(s, t.url.clone());
    let outcome = tokio::time::timeout(
        limit,
        engine::run(
            plan,
            rec.clone(),
            StopSignal::new(),
            Some(Progress::hidden(0)),
        ),
    )
    .await
    .expect("the run ends by itself");
    (outcome, rec.snapshot())
}

fn counter(s: &MetricsSnapshot, name: &str) -> u64 {
    s.counters.get(name).copied().unwrap_or(0)
}

fn hist_count(s: &MetricsSnapshot, name: &str) -> u64 {
    s.histograms.get(name).map_or(0, |h| h.len())
}

/// Every `errors.*` counter and `connect_failures` that is not 0.
fn errors(s: &MetricsSnapshot) -> Vec<(String, u64)> {
    s.counters
        .iter()
        .filter(|(k, n)| (k.starts_with("errors.") || *k == "connect_failures") && **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

fn assert_complete(o: &EngineOutcome, s: &MetricsSnapshot) {
    assert!(o.complete, "aborted: {:?}", o.abort_reason);
    assert!(!o.hit_max_duration, "hit max_duration");
    assert_eq!(
        errors(s),
        vec![],
        "unexpected errors; counters: {:?}",
        s.counters
    );
    assert_eq!(s.connected, 0, "every socket closed at the end");
}

/// Samples the recorder every 20 ms while `fut` runs.
async fn sampled<F: Future>(
    rec: &Recorder,
    fut: F,
) -> (F::Output, Vec<(Instant, MetricsSnapshot)>) {
    let mut samples = Vec::new();
    let mut fut = std::pin::pin!(fut);
    let mut tick = tokio::time::interval(MS(20));
    loop {
        tokio::select! {
            out = &mut fut => return (out, samples),
            _ = tick.tick() => samples.push((Instant::now(), rec.snapshot())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_reaches_the_target_count_gradually() {
    let t = start().await;
    let s = scenario(
        vec![group("users", GroupSize::Weight(1), vec![connect()])],
        vec![ramp(20, MS(1000)), hold(MS(1000))],
    );
    let rec = Recorder::new();
    let plan = RunPlan::new(s, t.url.clone());
    let run = engine::run(plan, rec.clone(), StopSignal::new(), None);
    let (o, samples) = sampled(&rec, run).await;
    let snap = rec.snapshot();
    assert_complete(&o, &snap);
    assert_eq!((o.vus_started, o.vus_finished), (20, 20));
    assert_eq!(counter(&snap, "vus_started"), 20);
    assert_eq!(counter(&snap, "vus_finished"), 20);
    assert_eq!(hist_count(&snap, "connect"), 20);
    assert_eq!(counter(&snap, "disconnects.client"), 20);
    let max = samples.iter().map(|(_, s)| s.connected).max().unwrap();
    assert_eq!(max, 20, "the ramp reaches 20 connected");
    // Gradual: half-way through the ramp about half are connected.
    let first = samples
        .iter()
        .find(|(_, s)| counter(s, "vus_started") > 0)
        .expect("VUs started")
        .0;
    let mid = samples
        .iter()
        .find(|(at, _)| *at >= first + MS(500))
        .expect("a sample half-way");
    let started = counter(&mid.1, "vus_started");
    assert!((6..=15).contains(&started), "{started} started half-way");
    // Connected VUs stay during the hold.
    let in_hold = samples
        .iter()
        .filter(|(at, _)| *at >= first + MS(1300) && *at <= first + MS(1800))
        .map(|(_, s)| s.connected)
        .min()
        .unwrap();
    assert_eq!(in_hold, 20);
}

/// Arrivals due inside their phase are offered load: each connects even
/// when it starts after the phase ended (here 20 arrivals in 5 ms, so most
/// VU tasks first run after the phase is over; before, those retired
/// without a step and the run lost them silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_due_in_their_phase_run_even_when_started_late() {
    let t = start().await;
    let s = scenario(
        vec![group("arrivals", GroupSize::Weight(1), vec![connect()])],
        vec![Phase::Arrival {
            rate_per_sec: 4000.0,
            from_per_sec: 4000.0,
            duration: MS(5),
        }],
    );
    let rec = Recorder::new();
    let run = engine::run(
        RunPlan::new(s, t.url.clone()),
        rec.clone(),
        StopSignal::new(),
        None,
    );
    let o = run.await;
    let snap = rec.snapshot();
    assert_complete(&o, &snap);
    assert_eq!(o.vus_started, 20);
    assert_eq!(hist_count(&snap, "connect"), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_starts_vus_at_the_intended_rate() {
    let t = start().await;
    let s = scenario(
        vec![group("arrivals", GroupSize::Weight(1), vec![connect()])],
        vec![Phase::Arrival {
            rate_per_sec: 20.0,
            from_per_sec: 20.0,
            duration: MS(2000),
        }],
    );
    let rec = Recorder::new();
    let plan = RunPlan::new(s, t.url.clone());
    let run = engine::run(plan, rec.clone(), StopSignal::new(), None);
    let (o, samples) = sampled(&rec, run).await;
    let snap = rec.snapshot();
    assert_complete(&o, &snap);
    assert_eq!(o.vus_started, 40);
    assert_eq!(hist_count(&snap, "connect"), 40);
    let first = samples
        .iter()
        .find(|(_, s)| counter(s, "vus_started") > 0)
        .expect("VUs started")
        .0;
    // Arrivals at 0, 50, 100 ... ms: within the first second, 20 (+-3
    // for sampling).
    let at_1s = samples
        .iter()
        .find(|(at, _)| *at >= first + MS(1000))
        .map(|(_, s)| counter(s, "vus_started"))
        .unwrap();
    assert!(
        (18..=24).contains(&at_1s),
        "{at_1s} started in the first second"
    );
    // Arrival VUs stay connected until the end of their phase.
    let peak = samples.iter().map(|(_, s)| s.connected).max().unwrap();
    assert!(peak >= 36, "peak connected {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_metrics_are_recorded_with_the_right_counts() {
    let t = start().await;
    let steps = vec![
        connect(),
        subscribe(),
        Step::Loop {
            count: "5".into(),
            steps: vec![get_online(None)],
        },
    ];
    let s = with_room(scenario(
        vec![group("users", GroupSize::Weight(1), steps)],
        vec![ramp(4, Duration::ZERO), hold(MS(1500))],
    ));
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    assert_eq!(hist_count(&snap, "ack.presence:get_online"), 20);
    assert_eq!(counter(&snap, "sent.presence:get_online"), 20);
    assert_eq!(hist_count(&snap, "ack.room:subscribe"), 4);
    assert_eq!(counter(&snap, "sent.room:subscribe"), 4);
    assert_eq!(hist_count(&snap, "connect_to_subscribed"), 4);
    assert_eq!(counter(&snap, "received.room:subscribed"), 4);
    let h = &snap.histograms["ack.presence:get_online"];
    assert!(h.max() < 2_000_000, "an ack took {} µs", h.max());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_acks_count_their_error_code_and_expectations() {
    let t = start().await;
    let steps = vec![
        connect(),
        // Unknown room: ROOM_NOT_FOUND in the ack.
        Step::EmitAck {
            event: "room:subscribe".into(),
            data: json!({"roomId": "room_nope"}),
            expect: None,
            timeout: Duration::from_secs(5),
            save: BTreeMap::new(),
            metric: Some("bad".into()),
        },
        // A failure that was expected is not an error.
        Step::EmitAck {
            event: "room:subscribe".into(),
            data: json!({"roomId": "room_nope"}),
            expect: Some(json!({"success": false, "error": {"code": "ROOM_NOT_FOUND"}})),
            timeout: Duration::from_secs(5),
            save: BTreeMap::new(),
            metric: Some("expected_failure".into()),
        },
        // A success that does not match: errors.expect.
        Step::EmitAck {
            event: "presence:get_online".into(),
            data: json!({"roomId": "${roomId}"}),
            expect: Some(json!({"count": 99})),
            timeout: Duration::from_secs(5),
            save: [
                ("n".to_owned(), "/count".to_owned()),
                ("x".to_owned(), "/nope".to_owned()),
            ]
            .into(),
            metric: None,
        },
    ];
    let s = with_room(scenario(
        vec![group("users", GroupSize::Weight(1), steps)],
        vec![ramp(3, Duration::ZERO), hold(MS(1000))],
    ));
    let (o, snap) = run(&t, s).await;
    assert!(o.complete);
    assert_eq!(hist_count(&snap, "bad"), 3);
    assert_eq!(hist_count(&snap, "expected_failure"), 3);
    assert_eq!(counter(&snap, "errors.ROOM_NOT_FOUND"), 3);
    assert_eq!(counter(&snap, "errors.expect"), 3);
    assert_eq!(
        counter(&snap, "errors.save"),
        3,
        "the missing /nope pointer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_matches_saves_and_times_out() {
    let t = start().await;
    let steps = vec![
        connect(),
        subscribe(),
        // `room:subscribed` arrives around the subscribe ack: kept for this step.
        Step::WaitFor {
            event: "room:subscribed".into(),
            matching: Some(json!({"roomId": "${roomId}"})),
            timeout: Duration::from_secs(5),
            save: [("subRoom".to_owned(), "/roomId".to_owned())].into(),
            metric: None,
        },
        Step::WaitFor {
            event: "room:subscribed".into(),
            matching: Some(json!({"roomId": "room_other"})),
            timeout: MS(300),
            save: BTreeMap::new(),
            metric: None,
        },
        // The saved variable names the room.
        Step::EmitAck {
            event: "presence:get_online".into(),
            data: json!({"roomId": "${subRoom}"}),
            expect: Some(json!({"success": true})),
            timeout: Duration::from_secs(5),
            save: BTreeMap::new(),
            metric: Some("check".into()),
        },
    ];
    let s = with_room(scenario(
        vec![group("users", GroupSize::Weight(1), steps)],
        vec![ramp(3, Duration::ZERO), hold(MS(1500))],
    ));
    let (o, snap) = run(&t, s).await;
    assert!(o.complete, "{:?}", o.abort_reason);
    assert_eq!(counter(&snap, "errors.timeout"), 3, "{:?}", snap.counters);
    assert_eq!(hist_count(&snap, "check"), 3);
    assert_eq!(counter(&snap, "errors.expect"), 0);
    assert_eq!(errors(&snap).len(), 1, "{:?}", errors(&snap));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn think_times_stay_within_their_bounds() {
    let t = start().await;
    // connect_to_subscribed = the think + one subscribe ack.
    let between = |think: Think| vec![connect(), Step::Think(think), subscribe()];
    let s = with_room(scenario(
        vec![
            group(
                "fixed",
                GroupSize::Weight(1),
                between(Think::Fixed(MS(2000))),
            ),
            group(
                "uniform",
                GroupSize::Weight(1),
                between(Think::Uniform(MS(1600), MS(2400))),
            ),
            group(
                "exponential",
                GroupSize::Weight(1),
                between(Think::Exponential { mean: MS(20) }),
            ),
        ],
        vec![ramp(15, Duration::ZERO), hold(MS(4000))],
    ));
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    let h = &snap.histograms["connect_to_subscribed"];
    assert_eq!(h.len(), 15);
    let values: Vec<u64> = h
        .iter_recorded()
        .flat_map(|v| std::iter::repeat_n(v.value_iterated_to(), v.count_at_value() as usize))
        .collect();
    // The thinks are far apart (at most 200 ms against at least 1.6 s) so
    // that a slow subscribe ack on a busy machine cannot move one group
    // into the other; the slack is for that ack (a CI run beside the other
    // test binaries saw acks of 0.5-0.7 s).
    let slack = 1_000_000;
    let split = 1_200_000;
    // Fixed and uniform: at least 1.6 s, at most 2.4 s + slack.
    let long: Vec<u64> = values.iter().copied().filter(|v| *v >= split).collect();
    assert_eq!(long.len(), 10, "{values:?}");
    assert!(
        long.iter()
            .all(|v| (1_600_000..=2_400_000 + slack).contains(v)),
        "{values:?}"
    );
    // Exponential (mean 20 ms, cut at 10 × mean): the five short ones.
    let short: Vec<u64> = values.iter().copied().filter(|v| *v < split).collect();
    assert_eq!(short.len(), 5, "{values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_choice_set_and_reconnect() {
    let t = start().await;
    let steps = vec![
        Step::Set {
            vars: [("room".to_owned(), json!("${roomId}"))].into(),
        },
        connect(),
        Step::Subscribe {
            room: "${room}".into(),
        },
        Step::Loop {
            count: "${rounds}".into(),
            steps: vec![Step::Choice {
                options: vec![
                    (1, vec![get_online(Some("left"))]),
                    (1, vec![get_online(Some("right"))]),
                ],
            }],
        },
        Step::Reconnect { resubscribe: true },
        get_online(Some("after")),
    ];
    let mut s = with_room(scenario(
        vec![group("users", GroupSize::Weight(1), steps)],
        vec![ramp(4, Duration::ZERO), hold(MS(2000))],
    ));
    s.vars.insert("rounds".into(), json!(10));
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    let (left, right) = (hist_count(&snap, "left"), hist_count(&snap, "right"));
    assert_eq!(left + right, 40);
    assert!(left > 0 && right > 0, "both options chosen: {left}/{right}");
    assert_eq!(hist_count(&snap, "reconnect"), 4);
    assert_eq!(counter(&snap, "reconnects"), 4);
    assert_eq!(
        hist_count(&snap, "connect"),
        4,
        "reconnect has its own metric"
    );
    assert_eq!(hist_count(&snap, "ack.room:subscribe"), 8, "re-subscribed");
    assert_eq!(hist_count(&snap, "after"), 4);
}

/// A host publishes one stamped `lgfan:tick` to 5 players waiting for
/// `wait_for` (with its `metric`).
async fn stamped_fanout(wait_for: &str, metric: Option<&str>) -> MetricsSnapshot {
    let t = start().await;
    let players = vec![
        connect(),
        subscribe(),
        Step::WaitFor {
            event: wait_for.into(),
            matching: Some(json!({"n": 1})),
            timeout: Duration::from_secs(5),
            save: BTreeMap::new(),
            metric: metric.map(str::to_owned),
        },
    ];
    let host = vec![
        Step::Think(Think::Fixed(MS(700))),
        Step::Http {
            action: "publish_app_event".into(),
            with: [
                ("event".to_owned(), json!("lgfan:tick")),
                ("data".to_owned(), json!({"n": 1})),
            ]
            .into(),
            save: vec![],
            stamp: true,
            metric: None,
        },
    ];
    let mut s = with_room(scenario(
        vec![
            group("host", GroupSize::Count(1), host),
            group("players", GroupSize::Weight(1), players),
        ],
        vec![ramp(6, Duration::ZERO), hold(MS(2000))],
    ));
    s.vars.insert("appId".into(), json!("lgfan"));
    s.setup.push(SetupAction {
        action: "create_app".into(),
        with: [("permissions".to_owned(), json!(["realtime:publish"]))].into(),
        save: vec!["appToken".into()],
    });
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    assert_eq!(hist_count(&snap, "http.publish_app_event"), 1);
    snap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_latency_for_stamped_http_events() {
    let snap = stamped_fanout("lgfan:tick", None).await;
    assert_eq!(counter(&snap, "received.lgfan:tick"), 5);
    let h = &snap.histograms["fanout.lgfan:tick"];
    assert_eq!(h.len(), 5);
    assert!(h.max() < 1_000_000, "fan-out took {} µs", h.max());
}

/// `metric` on `wait_for`: the events its (template) event matches are
/// recorded under that name, not their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_metric_names_the_received_events() {
    let snap = stamped_fanout("${appId}:tick", Some("tick")).await;
    assert_eq!(counter(&snap, "received.tick"), 5);
    assert_eq!(snap.histograms["fanout.tick"].len(), 5);
    let own: Vec<&String> = snap
        .histograms
        .keys()
        .chain(snap.counters.keys())
        .filter(|n| n.contains("lgfan"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_mid_run_aborts_without_hanging() {
    let mut t = start().await;
    let s = with_room(scenario(
        vec![group(
            "users",
            GroupSize::Weight(1),
            vec![connect(), subscribe()],
        )],
        vec![ramp(10, Duration::ZERO), hold(Duration::from_secs(60))],
    ));
    let rec = Recorder::new();
    let plan = RunPlan::new(s, t.url.clone());
    let handle = tokio::spawn(engine::run(plan, rec.clone(), StopSignal::new(), None));
    let ready = Instant::now();
    while rec.snapshot().connected < 10 {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "VUs never connected"
        );
        tokio::time::sleep(MS(50)).await;
    }
    let killed = Instant::now();
    t.stop().await;
    let o = tokio::time::timeout(Duration::from_secs(20), handle)
        .await
        .expect("the run ends soon after the server is gone")
        .expect("engine task");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took {:?}",
        killed.elapsed()
    );
    assert!(!o.complete);
    assert!(
        matches!(o.abort_reason, Some(AbortReason::TargetLost(_))),
        "{:?}",
        o.abort_reason
    );
    assert_eq!(o.abort_reason.as_ref().unwrap().exit_code(), 4);
    let snap = rec.snapshot();
    let disconnects: u64 = snap
        .counters
        .iter()
        .filter(|(k, _)| k.starts_with("disconnects."))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(disconnects, 10, "{:?}", snap.counters);
    assert_eq!(snap.connected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_interrupts_promptly() {
    let t = start().await;
    let s = scenario(
        vec![group("users", GroupSize::Weight(1), vec![connect()])],
        vec![ramp(5, Duration::ZERO), hold(Duration::from_secs(60))],
    );
    let rec = Recorder::new();
    let stop = StopSignal::new();
    let plan = RunPlan::new(s, t.url.clone());
    let handle = tokio::spawn(engine::run(plan, rec.clone(), stop.clone(), None));
    let ready = Instant::now();
    while rec.snapshot().connected < 5 {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "VUs never connected"
        );
        tokio::time::sleep(MS(20)).await;
    }
    let asked = Instant::now();
    stop.stop();
    let o = tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("stops promptly")
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(o.abort_reason, Some(AbortReason::Interrupted));
    assert_eq!(o.vus_started, 5);
    assert_eq!(o.vus_finished, 0, "cut by the stop");
    // Sockets close in the background.
    let closing = Instant::now();
    while rec.snapshot().connected != 0 {
        assert!(closing.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(MS(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_fails_before_the_load() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = scenario(
        vec![group("users", GroupSize::Weight(1), vec![connect()])],
        vec![ramp(2, Duration::ZERO)],
    );
    let plan = RunPlan::new(s, format!("http://127.0.0.1:{port}"));
    let o = tokio::time::timeout(
        Duration::from_secs(15),
        engine::run(plan, Recorder::new(), StopSignal::new(), None),
    )
    .await
    .unwrap();
    let reason = o.abort_reason.expect("aborted");
    assert!(
        matches!(reason, AbortReason::TargetUnreachable(_)),
        "{reason}"
    );
    assert_eq!(reason.exit_code(), 3);
    assert_eq!(o.vus_started, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_setup_action_is_a_setup_failure() {
    let t = start().await;
    let mut s = scenario(
        vec![group("users", GroupSize::Weight(1), vec![connect()])],
        vec![ramp(2, Duration::ZERO)],
    );
    s.setup.push(SetupAction {
        action: "update_room".into(),
        with: [
            ("roomId".to_owned(), json!("room_missing")),
            ("patch".to_owned(), json!({"name": "x"})),
        ]
        .into(),
        save: vec![],
    });
    let (o, _) = run(&t, s).await;
    let reason = o.abort_reason.expect("aborted");
    assert!(matches!(reason, AbortReason::SetupFailed(_)), "{reason}");
    assert!(reason.to_string().contains("404"), "{reason}");
    assert_eq!(reason.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_duration_bounds_the_run() {
    let t = start().await;
    let mut s = scenario(
        vec![group("users", GroupSize::Weight(1), vec![connect()])],
        vec![ramp(3, Duration::ZERO), hold(Duration::from_secs(60))],
    );
    s.max_duration = MS(1500);
    let started = Instant::now();
    let (o, snap) = run(&t, s).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(o.complete, "reaching max_duration is not an abort");
    assert!(o.hit_max_duration);
    assert!(o.load_duration < MS(1500) + engine::HALT_GRACE);
    assert_eq!(hist_count(&snap, "connect"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_tokens_and_polling() {
    let t = start().await;
    // Three users with tokens, made over REST.
    let http = reqwest::Client::new();
    let mut rows = String::from("token,userId\n");
    for i in 0..3 {
        let user: Value = http
            .post(format!("{}/api/users", t.url))
            .bearer_auth("dev-admin-token")
            .json(&json!({"name": format!("csv {i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = user["id"].as_str().unwrap().to_owned();
        let tok: Value = http
            .post(format!("{}/api/auth/token", t.url))
            .bearer_auth("dev-admin-token")
            .json(&json!({"userId": id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rows.push_str(&format!("{},{id}\n", tok["accessToken"].as_str().unwrap()));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.csv");
    std::fs::write(&path, rows).unwrap();
    let steps = vec![
        Step::Connect {
            namespace: "/".into(),
            transport: Transport::Polling,
        },
        // `userId` comes from the file.
        Step::Http {
            action: "create_notification".into(),
            with: [("title".to_owned(), json!("hi ${vu}"))].into(),
            save: vec!["notificationId".into()],
            stamp: true,
            metric: None,
        },
        Step::WaitFor {
            event: "notification:received".into(),
            matching: Some(json!({"id": "${notificationId}"})),
            timeout: Duration::from_secs(5),
            save: BTreeMap::new(),
            metric: None,
        },
    ];
    let mut s = scenario(
        vec![group("users", GroupSize::Weight(1), steps)],
        // Held long enough for three polling round trips on a busy machine.
        vec![ramp(3, Duration::ZERO), hold(MS(4000))],
    );
    s.tokens = TokenSource::Csv { path };
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    assert_eq!(hist_count(&snap, "connect"), 3);
    assert_eq!(hist_count(&snap, "http.create_notification"), 3);
    assert_eq!(counter(&snap, "received.notification:received"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_split_one_world() {
    let t = start().await;
    let host = vec![connect(), subscribe()];
    let players = vec![connect(), subscribe()];
    let s = with_room(scenario(
        vec![
            group("host", GroupSize::Count(1), host),
            group("players", GroupSize::Weight(1), players),
        ],
        // Held long enough for every subscribe on a busy machine.
        vec![ramp(9, MS(300)), hold(MS(3000))],
    ));
    // The parent runs the set-up once and hands the variables over.
    let parent = RunPlan::new(s.clone(), t.url.clone());
    let vars = engine::setup(&parent, &engine::http_client(None, &Default::default()))
        .await
        .expect("set-up");
    assert!(vars.contains_key("roomId"));
    let rec = Recorder::new();
    let mut runs = Vec::new();
    for share in 0..2 {
        let mut plan = parent.clone();
        plan.scenario = Arc::new(s.clone());
        plan.share_index = share;
        plan.share_count = 2;
        plan.setup_vars = Some(vars.clone());
        runs.push(tokio::spawn(engine::run(
            plan,
            rec.clone(),
            StopSignal::new(),
            None,
        )));
    }
    let mut started = Vec::new();
    for r in runs {
        let o = r.await.unwrap();
        assert!(o.complete, "{:?}", o.abort_reason);
        started.push(o.vus_started);
    }
    assert_eq!(started, vec![5, 4], "slots 0,2,4,6,8 and 1,3,5,7");
    let snap = rec.snapshot();
    assert_eq!(errors(&snap), vec![]);
    assert_eq!(hist_count(&snap, "connect_to_subscribed"), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_from_toml_runs() {
    let t = start().await;
    let text = r#"
name = "toml"

[[setup]]
action = "create_room"
with = { name = "toml ${runId}" }
save = ["roomId"]

[[groups]]
name = "users"
weight = 1
steps = [
  { connect = "/" },
  { subscribe = "${roomId}" },
  { loop = 3, steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
      { think = { min = "10ms", max = "20ms" } },
  ] },
  { emit = "room:unsubscribe", data = { roomId = "${roomId}" }, metric = "leave" },
]

[[phases]]
ramp = 5
over = "200ms"

[[phases]]
hold = "1s"

[[phases]]
ramp_down = "200ms"
"#;
    let s = scenario::parse(text, Path::new("toml.toml")).expect("the scenario parses");
    let (o, snap) = run(&t, s).await;
    assert_complete(&o, &snap);
    assert_eq!(hist_count(&snap, "ack.presence:get_online"), 15);
    assert_eq!(counter(&snap, "sent.presence:get_online"), 15);
    // `metric` names what `emit` sends.
    assert_eq!(counter(&snap, "sent.leave"), 5);
    assert_eq!(counter(&snap, "sent.room:unsubscribe"), 0);
    assert_eq!(o.vus_finished, 5);
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Memory per idle connected VU, against a server in another process (so
/// its memory is not counted):
/// `LOADGEN_MEM_TARGET=http://127.0.0.1:PORT LOADGEN_MEM_VUS=5000 cargo test
/// --release -p loadgen --test engine -- --ignored memory --nocapture`
/// (optional: `LOADGEN_MEM_RAMP_S`, default 5; `LOADGEN_MEM_SUBSCRIBE=1`).
/// Measured: 7.75 KiB per connected VU at 5000 (the client alone is ~7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LOADGEN_MEM_TARGET (an external server); prints a measurement"]
async fn memory_per_idle_vu() {
    let Ok(url) = std::env::var("LOADGEN_MEM_TARGET") else {
        eprintln!("set LOADGEN_MEM_TARGET to a running server's URL");
        return;
    };
    let n: u32 = std::env::var("LOADGEN_MEM_VUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let ramp_over = Duration::from_secs(
        std::env::var("LOADGEN_MEM_RAMP_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
    );
    // LOADGEN_MEM_SUBSCRIBE=1: also subscribe to one room (every join then
    // fans out presence events to everyone: traffic, not idle).
    let mut steps = vec![connect()];
    if std::env::var("LOADGEN_MEM_SUBSCRIBE").is_ok_and(|v| v == "1") {
        steps.push(subscribe());
    }
    let s = with_room(scenario(
        vec![group("idle", GroupSize::Weight(1), steps)],
        vec![ramp(n, ramp_over), hold(Duration::from_secs(600))],
    ));
    let rec = Recorder::new();
    let stop = StopSignal::new();
    let handle = tokio::spawn(engine::run(
        RunPlan::new(s, url),
        rec.clone(),
        stop.clone(),
        None,
    ));
    // Baseline: set-up done, the first VU started.
    while counter(&rec.snapshot(), "vus_started") == 0 {
        tokio::time::sleep(MS(2)).await;
    }
    let base = rss_bytes();
    let waited = Instant::now();
    while rec.snapshot().connected < i64::from(n) {
        let snap = rec.snapshot();
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "{} of {n} connected: {:?}",
            snap.connected,
            snap.counters
        );
        tokio::time::sleep(MS(100)).await;
    }
    // Let every connect's transient state go.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let full = rss_bytes();
    let per_vu = (full.saturating_sub(base)) as f64 / f64::from(n);
    eprintln!(
        "{n} idle connected VUs: RSS {:.1} MiB -> {:.1} MiB = {:.2} KiB per VU",
        base as f64 / 1048576.0,
        full as f64 / 1048576.0,
        per_vu / 1024.0
    );
    stop.stop();
    let o = handle.await.unwrap();
    assert_eq!(o.abort_reason, Some(AbortReason::Interrupted));
}
