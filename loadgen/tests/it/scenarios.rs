//! Every shipped scenario (`/scenarios/*.toml`) runs at a small size against
//! the in-process reference server (no `--target`) through the binary, and
//! its report shows the work was done without unexpected errors.
//!
//! The runs mostly wait (ramps, think times), so the first test to need one
//! starts all of them at once ([`launch`]) and each test then checks its
//! own: the file takes about as long as the longest run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const CLIENTS: u32 = 20;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

/// The outcome of one `loadgen run`.
struct Run {
    code: Option<i32>,
    report: Value,
    stderr: String,
    stdout: String,
    _out: tempfile::TempDir,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- counters\n{}\n--- histogram counts\n{}",
            self.code,
            self.stdout,
            self.stderr,
            serde_json::to_string_pretty(&self.report["counters"]).unwrap_or_default(),
            self.histogram_counts()
        )
    }

    fn histogram_counts(&self) -> String {
        self.report["histograms"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}: {}", v["count"]))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    fn counter(&self, name: &str) -> u64 {
        self.report["counters"][name].as_u64().unwrap_or(0)
    }

    fn hist_count(&self, name: &str) -> u64 {
        self.report["histograms"][name]["count"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Sum of the counts of every histogram whose name starts with `prefix`.
    fn hist_count_prefix(&self, prefix: &str) -> u64 {
        self.report["histograms"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v["count"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Every non-zero `errors.*` counter.
    fn errors(&self) -> Vec<(String, u64)> {
        self.report["counters"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| k.starts_with("errors.") && v.as_u64().unwrap_or(0) > 0)
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn assert_ok(&self) {
        assert_eq!(self.code, Some(0), "{}", self.context());
        assert_eq!(
            self.report["complete"],
            Value::Bool(true),
            "{}",
            self.context()
        );
        assert_eq!(self.report["clients"], CLIENTS, "{}", self.context());
        assert!(
            self.errors().is_empty(),
            "unexpected errors {:?}\n{}",
            self.errors(),
            self.context()
        );
        assert_eq!(self.counter("connect_failures"), 0, "{}", self.context());
        // Every threshold of the scenario was evaluated and passed.
        for t in self.report["thresholds"].as_array().into_iter().flatten() {
            assert_eq!(t["passed"], Value::Bool(true), "{t}\n{}", self.context());
        }
    }
}

/// `loadgen run <scenario> --clients 20 --duration <secs>s` against the
/// in-process reference server, bounded by a watchdog. `name` is the
/// file's stem, with `#<n>` after it for another run of the same file.
fn run(name: &str, duration_secs: u64, env: &[(&str, &str)]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg("run")
        .arg(scenario(name.split('#').next().unwrap_or(name)))
        .args(["--clients", &CLIENTS.to_string()])
        .args(["--duration", &format!("{duration_secs}s")])
        .arg("--out")
        .arg(out.path())
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start loadgen");
    // Drain the pipes while waiting.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).ok();
        s
    });
    // The run bounds itself by --duration; set-up, start and the report
    // get a generous minute on top on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(duration_secs + 90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    let Some(status) = status else {
        panic!(
            "loadgen run {name} did not stop by itself\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    };
    let report_path = out.path().join("report.json");
    let report = match std::fs::read_to_string(&report_path) {
        Ok(t) => serde_json::from_str(&t).expect("report.json is JSON"),
        Err(e) => panic!(
            "no report at {} ({e}); exit {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            report_path.display(),
            status.code()
        ),
    };
    Run {
        code: status.code(),
        report,
        stderr,
        stdout,
        _out: out,
    }
}

/// A shipped scenario's run: name, `--duration` in seconds, environment.
type RunSpec = (&'static str, u64, &'static [(&'static str, &'static str)]);

const RUNS: &[RunSpec] = &[
    // 2 questions instead of 5: the host starts at 15 s, one every 12 s.
    ("quiz-burst", 45, &[("QUIZ_QUESTIONS", "2")]),
    // The host draws the first two prizes at ~17 s and ~23 s.
    ("lottery-draw", 26, &[]),
    ("presence-churn", 30, &[]),
    ("app-events", 30, &[]),
    // A second run, to compare its metric names with the first's.
    ("app-events#2", 30, &[]),
    // The operator gives the signal at ~15 s.
    ("reconnect-storm", 25, &[]),
];

type Pending = Mutex<Option<JoinHandle<Run>>>;

/// Starts every run of [`RUNS`] on first use.
fn launch() -> &'static BTreeMap<&'static str, Pending> {
    static RUNNING: OnceLock<BTreeMap<&'static str, Pending>> = OnceLock::new();
    RUNNING.get_or_init(|| {
        RUNS.iter()
            .map(|&(name, secs, env)| {
                let h = std::thread::spawn(move || run(name, secs, env));
                (name, Mutex::new(Some(h)))
            })
            .collect()
    })
}

/// The finished run of a shipped scenario.
fn finished(name: &str) -> Run {
    let handle = launch()[name]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("each run is checked once");
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn quiz_burst() {
    let r = finished("quiz-burst");
    r.assert_ok();
    let players = u64::from(CLIENTS) - 1;
    assert_eq!(
        r.hist_count("ack.quiz:answer_submit"),
        players * 2,
        "every player answers every question\n{}",
        r.context()
    );
    assert_eq!(
        r.counter("sent.quiz:answer_submit"),
        players * 2,
        "{}",
        r.context()
    );
    assert_eq!(
        r.counter("received.quiz:question_published"),
        players * 2,
        "{}",
        r.context()
    );
    assert_eq!(r.hist_count("http.publish_question"), 2, "{}", r.context());
    assert_eq!(
        r.hist_count("connect_to_subscribed"),
        players,
        "{}",
        r.context()
    );
}

#[test]
fn lottery_draw() {
    let r = finished("lottery-draw");
    r.assert_ok();
    let participants = u64::from(CLIENTS) - 1;
    assert!(r.hist_count("http.draw_winner") >= 1, "{}", r.context());
    // Two winners per draw among 20 users, at most one of them the host
    // (not connected): at least one personal notification arrived.
    assert!(
        r.counter("received.notification:received") >= 1,
        "{}",
        r.context()
    );
    // Every connected participant saw every winner of a draw.
    assert!(
        r.counter("received.winner:selected") >= 2 * participants,
        "{}",
        r.context()
    );
    assert!(
        r.counter("received.prize:created") >= participants,
        "{}",
        r.context()
    );
    assert_eq!(
        r.hist_count("ack.presence:get_online"),
        participants,
        "{}",
        r.context()
    );
}

#[test]
fn presence_churn() {
    let r = finished("presence-churn");
    r.assert_ok();
    assert!(
        r.counter("received.presence:user_online") > 0,
        "{}",
        r.context()
    );
    assert!(
        r.counter("received.presence:user_offline") > 0,
        "{}",
        r.context()
    );
    // Everybody subscribed at least once (churners again after leaving).
    assert!(
        r.hist_count("ack.room:subscribe") >= u64::from(CLIENTS),
        "{}",
        r.context()
    );
    // Watchers asked once each; churners once per stay.
    assert!(
        r.hist_count("ack.presence:get_online") >= 18,
        "{}",
        r.context()
    );
}

#[test]
fn app_events() {
    let r = finished("app-events");
    r.assert_ok();
    // 10 stages publish stamped events; 10 audience VUs watch them.
    assert!(
        r.hist_count("http.publish_app_event") > 0,
        "{}",
        r.context()
    );
    // Every stage's `<app>:tick` is recorded under the step's `metric`.
    assert!(
        r.hist_count("fanout.stage:tick") > 0,
        "fan-out latency recorded\n{}",
        r.context()
    );
    assert_eq!(
        r.hist_count_prefix("fanout."),
        r.hist_count("fanout.stage:tick"),
        "{}",
        r.context()
    );
    assert_eq!(
        r.counter("errors.RATE_LIMIT_EXCEEDED"),
        0,
        "{}",
        r.context()
    );

    // Another run (new app ids) records under the same names: nothing is
    // named after a run, so `reports compare` of the two finds every metric.
    // (Whether an audience member sees another come or go in the lobby is
    // timing: the presence counters are left out.)
    let again = finished("app-events#2");
    again.assert_ok();
    let names = |r: &Run| -> Vec<String> {
        ["histograms", "counters"]
            .iter()
            .flat_map(|k| r.report[k].as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .filter(|n| !n.starts_with("received.presence:"))
            .collect()
    };
    assert_eq!(
        names(&r),
        names(&again),
        "\n--- first\n{}\n--- second\n{}",
        r.context(),
        again.context()
    );
    for n in names(&r) {
        assert!(
            !n.contains(":tick") || n.ends_with(".stage:tick"),
            "{n} is named after the run"
        );
    }
}

#[test]
fn reconnect_storm() {
    let r = finished("reconnect-storm");
    r.assert_ok();
    assert_eq!(
        r.hist_count("reconnect"),
        u64::from(CLIENTS),
        "every client reconnected once\n{}",
        r.context()
    );
    assert_eq!(
        r.counter("reconnects"),
        u64::from(CLIENTS),
        "{}",
        r.context()
    );
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    // Each gates connect failures and errors (the aggregate).
    for f in &files {
        let s = loadgen::scenario::load(f, &[]).unwrap();
        for metric in ["connect_failures", "errors"] {
            assert!(
                s.thresholds
                    .iter()
                    .any(|t| { formats::threshold::Threshold::parse(t).unwrap().metric == metric }),
                "{}: no threshold on {metric}",
                f.display()
            );
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[[groups]]\nsteps = [\n  { connect = \"/\" },\n  { wait = \"room:updated\" },\n]\n[[phases]]\nramp = 1\nover = \"1s\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("validate")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{}:4:5: unknown step kind `wait`", f.display())),
        "{text}"
    );
}
