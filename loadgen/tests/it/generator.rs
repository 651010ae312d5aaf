//! The generator watches itself: a run whose generator is forced to be
//! late (a task that holds the runtime's only worker thread for 150 ms at a
//! time, as a generator with too much to do would) says so in its summary
//! and report, and fails with `--fail-on-generator-bound`; a small run on
//! a generator with time to spare does not.

use std::time::{Duration, Instant};

use crate::common::{ASK_TWICE, Members, write};

/// A few members holding for `hold`.
fn small(hold: &'static str) -> String {
    Members {
        name: "generator watch",
        description: "a few members asking who is online",
        room: "watch",
        steps: ASK_TWICE,
        clients: 3,
        hold,
    }
    .toml()
}

/// Runs [`small`] against an in-process reference server with
/// `--fail-on-generator-bound` and a threshold on the generator's own lag
/// (its metrics are metrics like any other); returns the outcome, the
/// summary text and the report.
async fn run_small(hold: &'static str) -> (loadgen::RunOutcome, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "small.toml", &small(hold));
    let (server, mut opts, out) = crate::common::against_reference_server(dir.path(), &file).await;
    opts.fail_on_generator_bound = true;
    opts.thresholds = vec!["generator.timer_lag.count > 5".into()];
    let outcome = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .unwrap();
    server.stop().await.unwrap();
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
    let (_, report) = crate::common::checked_report(&out);
    (outcome, summary, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_is_not_generator_bound() {
    let (outcome, summary, report) = run_small("2s").await;
    let g = &report["generator"];
    assert_eq!(g["bound"], serde_json::json!([]), "{summary}");
    assert!(g["cpuSeconds"].as_f64().is_some(), "{g}");
    assert!(g["timerLagP99Us"].as_u64().is_some(), "{g}");
    assert!(
        report["series"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cpuMs"].is_u64()),
        "every second has its CPU"
    );
    assert!(summary.contains("\ngenerator: "), "{summary}");
    assert!(!summary.contains("WARNING"), "{summary}");
    assert!(
        summary.contains("PASS generator.timer_lag.count > 5"),
        "{summary}"
    );
    assert_eq!(outcome.exit_code(), loadgen::EXIT_OK, "{summary}");
}

/// One worker thread, and a task on it that spins for 150 ms between
/// yields: every timer, socket read and start waits for it, whatever the
/// machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_run_on_a_starved_generator_says_so_and_fails_with_the_flag() {
    let hog = tokio::spawn(async {
        // Bounded: the run takes a few seconds; 60 s is far beyond it.
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            let until = Instant::now() + Duration::from_millis(150);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            tokio::task::yield_now().await;
        }
    });
    // Held long enough that the starved timer still ticks the 20 times
    // the lag is judged on (about 160 ms apart here: 19 ticks in a 3 s run).
    let (outcome, summary, report) = run_small("6s").await;
    hog.abort();
    let bound = report["generator"]["bound"].as_array().unwrap();
    assert!(
        bound
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("timer lag p90 ")),
        "{summary}"
    );
    assert!(
        summary.contains("\nWARNING: the results are generator-bound: "),
        "{summary}"
    );
    assert!(report["complete"].as_bool().unwrap(), "{summary}");
    assert_eq!(
        outcome.exit_code(),
        loadgen::EXIT_GENERATOR_BOUND,
        "{summary}"
    );
    // Without the flag the same run only warns.
    let mut lenient = outcome;
    lenient.fail_on_generator_bound = false;
    assert_eq!(lenient.exit_code(), loadgen::EXIT_OK);
}

/// A busy loop pinned to one core; stopped (SIGTERM, which `timeout`
/// passes on) when dropped, and by `timeout` itself after 120 s whatever
/// happens to the test.
struct BusyLoop(std::process::Child);

impl BusyLoop {
    fn on_core_0() -> BusyLoop {
        let child = std::process::Command::new("taskset")
            .args(["-c", "0", "timeout", "-s", "KILL", "120"])
            .args(["sh", "-c", "while :; do :; done"])
            .spawn()
            .expect("taskset and timeout (util-linux, coreutils) run a busy loop");
        BusyLoop(child)
    }
}

impl Drop for BusyLoop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// The generator pinned to one core (`taskset -c 0`, the reference server
/// in-process with it) beside a busy loop pinned to the same core: it gets
/// the core about half the time and waits for it about as long as it runs.
/// Its timer still fires in time (the scheduler favours a thread that
/// wakes), so the lag alone would miss it; the run-queue wait does not.
#[test]
fn a_generator_sharing_its_core_with_a_busy_loop_says_so() {
    assert!(
        std::path::Path::new("/proc/thread-self/schedstat").exists(),
        "the run-queue wait is read from /proc/thread-self/schedstat (Linux)"
    );
    let dir = tempfile::tempdir().unwrap();
    let busy = Members {
        name: "sharing a core",
        description: "members asking who is online, 20 times a second each",
        room: "busy",
        steps: r#"  { loop = 200, steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" } },
      { think = "50ms" },
  ] },
"#,
        clients: 100,
        hold: "6s",
    };
    let file = write(dir.path(), "busy.toml", &busy.toml());
    let out_dir = dir.path().join("out");
    let _busy_loop = BusyLoop::on_core_0();
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_loadgen"), "run"])
        .arg(&file)
        .args(["--quiet", "--fail-on-generator-bound", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    drop(_busy_loop);
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(loadgen::EXIT_GENERATOR_BOUND as i32),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains("its threads waited for a CPU p90 "),
        "{summary}"
    );
    let (_, report) = crate::common::checked_report(&out_dir);
    let g = &report["generator"];
    assert_eq!(g["cores"], 1, "{g}");
    assert!(
        g["runWaitP90Us"].as_u64().unwrap() >= formats::report::RUN_WAIT_BOUND_US,
        "{g}"
    );
}
