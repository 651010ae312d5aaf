//! End-to-end tests of the `loadgen` command line: `validate`, exit codes
//! (target down, thresholds), worker processes, and a target that dies in
//! the middle of a run (through the library API, with the reference server
//! in-process).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::common::{ASK_TWICE, Members, write};

/// A short run: 6 clients subscribe to a room made in set-up, ask who is
/// online twice, a second apart.
fn tiny() -> String {
    Members {
        name: "tiny",
        description: "a few clients, a few seconds",
        room: "tiny",
        steps: ASK_TWICE,
        clients: 6,
        hold: "1500ms",
    }
    .toml()
}

/// Like [`tiny`], but members keep asking for a minute.
fn long() -> String {
    Members {
        name: "long",
        description: "clients that keep going",
        room: "long",
        steps: r#"  { loop = 120, steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" } },
      { think = "500ms" },
  ] },
"#,
        clients: 6,
        hold: "60s",
    }
    .toml()
}

fn loadgen(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(args).stdin(Stdio::null());
    let out = cmd.output().expect("loadgen runs");
    eprintln!(
        "$ loadgen {}\n--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `loadgen run FILE --quiet --out OUT ARGS...`
fn run_quiet(file: &Path, out: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    loadgen(&all)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report in `dir`, checked against the committed schema.
fn report(dir: &Path) -> Value {
    crate::common::checked_report(dir).1
}

#[test]
fn validate_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out = loadgen(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("6 clients at peak"), "{stdout}");
}

#[test]
fn validate_rejects_a_bad_file_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", &tiny());
    let bad_text = tiny().replace("{ think = \"1s\" }", "{ thinkk = \"1s\" }");
    let bad = write(dir.path(), "bad.toml", &bad_text);
    let line = bad_text.lines().position(|l| l.contains("thinkk")).unwrap() + 1;
    let out = loadgen(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bad.toml:{line}:")),
        "the error names line {line}: {err}"
    );
    assert!(err.contains("thinkk"), "{err}");
}

#[test]
fn a_bad_threshold_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--threshold",
        "connect.p98 < 5ms",
        "--target",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("connect.p98 < 5ms"),
        "{}",
        stderr(&out)
    );
}

/// The threshold traps of the old grammar, at run time: a misspelt
/// metric (counted as 0, so it passed) and a bare latency number (read
/// as µs) are usage errors before anything connects.
#[test]
fn threshold_traps_are_usage_errors_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    for (expr, part) in [
        (
            "errors.timout.count < 1",
            "unknown metric `errors.timout` (did you mean `errors.timeout`?)",
        ),
        (
            "ack.presence:get_onlin.p99 < 1s",
            "(did you mean `ack.presence:get_online`?)",
        ),
        ("connect.p99 < 250", "needs a time unit: us, ms or s"),
    ] {
        let out = loadgen(&[
            "run",
            file.to_str().unwrap(),
            "--threshold",
            expr,
            "--target",
            "http://127.0.0.1:9",
        ]);
        assert_eq!(out.status.code(), Some(2), "{expr}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(expr) && err.contains(part), "{expr}: {err}");
        assert!(
            !err.contains("unreachable"),
            "checked before the target: {err}"
        );
    }
    // `loadgen validate` says the same about a scenario's own threshold.
    let bad = write(
        dir.path(),
        "bad.toml",
        &tiny().replacen(
            "[[setup]]",
            "thresholds = [\"errors.timout.count < 1\"]\n\n[[setup]]",
            1,
        ),
    );
    let out = loadgen(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("(did you mean `errors.timeout`?)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn target_down_at_start_exits_3_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out_dir = dir.path().join("out");
    let t0 = Instant::now();
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let err = stderr(&out);
    assert!(err.contains("target unreachable"), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!out_dir.exists(), "no report without a run");
}

#[test]
fn thresholds_pass_and_breach() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let pass = dir.path().join("pass");
    let out = run_quiet(
        &file,
        &pass,
        &[
            "--threshold",
            "connect.count >= 6",
            "--threshold",
            "ack.presence:get_online.p99 < 10s",
            "--threshold",
            "errors.timeout.count < 1",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("started the reference server in-process"),
        "{}",
        stderr(&out)
    );
    let r = report(&pass);
    assert_eq!(r["complete"], true);
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 3);
    assert!(
        r["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true)
    );
    let summary = std::fs::read_to_string(pass.join("summary.txt")).unwrap();
    assert!(summary.contains("PASS connect.count >= 6"), "{summary}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ack.presence:get_online"));
    let csv = std::fs::read_to_string(pass.join("series.csv")).unwrap();
    assert!(
        csv.starts_with("t,connected,sent,received,errors,p99_us,cpu_ms\n"),
        "{csv}"
    );

    let breach = dir.path().join("breach");
    let out = run_quiet(
        &file,
        &breach,
        &[
            "--threshold",
            "connect.p99 < 1us",
            "--threshold",
            "connect.count >= 6",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let r = report(&breach);
    assert_eq!(r["complete"], true);
    assert_eq!(r["thresholds"][0]["passed"], false);
    assert_eq!(r["thresholds"][1]["passed"], true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL connect.p99 < 1us"), "{stdout}");
}

/// CI outputs of a run with a breached threshold: `--junit` has one
/// testcase per threshold (the breach a `<failure>`), `--summary-md`
/// appends the Markdown summary, `--label` and the tool version (with its
/// git revision) are in report.json and the summary; `--version` shows
/// the same version.
#[test]
fn junit_step_summary_label_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out_dir = dir.path().join("out");
    let junit = dir.path().join("loadgen.xml");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "conformance went first\n").unwrap();
    let out = run_quiet(
        &file,
        &out_dir,
        &[
            "--threshold",
            "connect.p99 < 1us",
            "--threshold",
            "errors.count < 1",
            "--junit",
            junit.to_str().unwrap(),
            "--summary-md",
            summary.to_str().unwrap(),
            "--label",
            "release <1.2>",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out_dir);
    assert_eq!(r["version"], 3);
    assert_eq!(r["label"], "release <1.2>");
    let tool = r["tool"].as_str().unwrap().to_owned();
    let version = loadgen(&["--version"]);
    let printed = String::from_utf8_lossy(&version.stdout);
    clidoc::testing::assert_version_names_a_revision(
        &printed,
        "loadgen",
        env!("CARGO_PKG_VERSION"),
    );
    let printed = printed.trim();
    assert_eq!(printed, tool, "--version and the report agree");
    assert!(
        tool.starts_with(&format!("loadgen {}", env!("CARGO_PKG_VERSION"))),
        "{tool}"
    );
    // This test runs from a git checkout: the revision is there.
    assert!(tool.contains(" (git "), "{tool}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testcase classname=\"loadgen tiny\" name=\"connect.p99 &lt; 1us\">\n      <failure"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"errors.count &lt; 1\"></testcase>"),
        "{xml}"
    );
    assert!(xml.contains("value=\"release &lt;1.2&gt;\""), "{xml}");

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("conformance went first\n### loadgen: tiny — ❌ 1 of 2 thresholds breached"),
        "{md}"
    );
    assert!(md.contains("| `connect.p99 < 1us` |"), "{md}");
    assert!(md.contains("| `errors.count < 1` | 0 | pass |"), "{md}");
    assert!(
        md.contains(&format!("label: release <1.2>, tool: {tool}")),
        "{md}"
    );
}

/// `${shard}` is the `--shard` index (from 0) in every process of the
/// shard, with or without `--workers`: each member asks `${shard}` times.
#[test]
fn shard_variable_is_the_shard_index_in_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let text = Members {
        name: "shard-var",
        description: "members ask ${shard} times",
        room: "shard-var",
        steps: r#"  { loop = "${shard}", steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
  ] },
"#,
        clients: 6,
        hold: "1500ms",
    }
    .toml();
    let file = write(dir.path(), "shard.toml", &text);
    for workers in ["1", "2"] {
        let out_dir = dir.path().join(format!("out-{workers}"));
        let out = run_quiet(&file, &out_dir, &["--shard", "3/3", "--workers", workers]);
        assert_eq!(out.status.code(), Some(0), "--workers {workers}");
        let r = report(&out_dir);
        assert_eq!(r["shard"]["index"], 3);
        assert_eq!(r["counters"]["vus_started"], 2, "shard 3 of 3 of 6 clients");
        assert_eq!(
            r["counters"]["sent.presence:get_online"], 4,
            "2 members asking ${{shard}} = 2 times each, --workers {workers}"
        );
    }
}

/// `--start-at`: two shards started apart start their load together, at
/// the time given, and their merge spans the earliest start to the
/// latest end with the series on one clock.
#[test]
fn shards_start_together_and_merge_on_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let when = protocol::timestamp::format(SystemTime::now() + Duration::from_secs(10));
    let at = protocol::timestamp::parse_utc(&when).unwrap();
    let spawn = |shard: &str| {
        let out = dir.path().join(shard.replace('/', "-of-"));
        let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["run", file.to_str().unwrap(), "--quiet", "--out"])
            .arg(&out)
            .args(["--shard", shard, "--start-at", &when])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("loadgen runs");
        (child, out)
    };
    let (first, out1) = spawn("1/2");
    // The second shard is started later: --start-at makes up for it.
    std::thread::sleep(Duration::from_millis(1500));
    let (second, out2) = spawn("2/2");
    let mut parts = Vec::new();
    for (child, out) in [(first, out1), (second, out2)] {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let r = report(&out);
        let text = std::fs::read_to_string(out.join("report.json")).unwrap();
        parts.push(formats::report::RunReport::from_json(&text).unwrap());
        let started = protocol::timestamp::parse_utc(r["startedAt"].as_str().unwrap()).unwrap();
        // The timer is the monotonic clock's: a few ms either way.
        let late = (started + Duration::from_millis(20))
            .duration_since(at)
            .unwrap_or_else(|e| panic!("started {:?} before --start-at", e.duration()));
        assert!(
            late < Duration::from_secs(1),
            "started {late:?} after --start-at"
        );
    }
    let merged = formats::report::RunReport::merge(&parts).unwrap();
    let ms = |s: &str| {
        protocol::timestamp::parse_utc(s)
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let start = parts.iter().map(|p| ms(&p.started_at)).min().unwrap();
    let end = parts.iter().map(|p| ms(&p.ended_at)).max().unwrap();
    assert_eq!(merged.duration_ms, end - start);
    assert_eq!(
        merged.started_at,
        protocol::timestamp::format(SystemTime::UNIX_EPOCH + Duration::from_millis(start))
    );
    // Together: both shards' clients are in the same seconds (more than
    // one shard's 3 connected at the end of one second; a busy machine may
    // spread the 6 connects over two).
    assert_eq!(merged.counters["vus_started"], 6);
    let peak = merged.series.iter().map(|s| s.connected).max().unwrap();
    assert!(
        peak > 3,
        "both shards' clients connected in one second: {:?}",
        merged.series
    );
}

/// The number of sockets a reference server accepted on `/` so far, from
/// its `/metrics`.
async fn root_connects(server: &server::Embedded) -> u64 {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.url()))
        .bearer_auth(server.admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("platform_socket_connects_total{") && l.contains("root"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `--worker-targets A,B`: two nodes on one database (a cluster without a
/// load balancer); the set-up runs against --target, worker 0 connects to
/// A and worker 1 to B, three clients each; the report merges both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_targets_spread_the_workers_over_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/shared.db", dir.path().display());
    let a = server::Embedded::start_with(|c| c.database_url = db.clone())
        .await
        .unwrap();
    let b = server::Embedded::start_with(|c| c.database_url = db.clone())
        .await
        .unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out_dir = dir.path().join("out");
    // The run blocks on the child process: off the runtime the nodes use.
    let (a_url, targets) = (a.url(), format!("{},{}", a.url(), b.url()));
    let (file2, out2) = (file.clone(), out_dir.clone());
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "--target",
            &a_url,
            "--workers",
            "2",
            "--worker-targets",
            &targets,
        ];
        run_quiet(&file2, &out2, &args)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(
        (r["workers"].as_u64(), r["clients"].as_u64()),
        (Some(2), Some(6))
    );
    assert_eq!(r["histograms"]["ack.presence:get_online"]["count"], 12);
    assert_eq!((root_connects(&a).await, root_connects(&b).await), (3, 3));
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    // One process has one target: a usage error.
    let one = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "--workers",
        "1",
        "--worker-targets",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(one.status.code(), Some(2), "{}", stderr(&one));
    assert!(
        stderr(&one).contains("--worker-targets needs --workers 2 or more"),
        "{}",
        stderr(&one)
    );
}

#[test]
fn two_workers_merge_their_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let out_dir = dir.path().join("out");
    let out = run_quiet(&file, &out_dir, &["--workers", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let r = report(&out_dir);
    assert_eq!(r["workers"], 2);
    assert_eq!(r["clients"], 6);
    assert_eq!(r["complete"], true);
    // Every client of both workers: the merged counts are the sums.
    assert_eq!(r["counters"]["vus_started"], 6);
    assert_eq!(r["histograms"]["connect"]["count"], 6);
    assert_eq!(r["histograms"]["ack.presence:get_online"]["count"], 12);
    assert_eq!(r["counters"]["sent.presence:get_online"], 12);
    // The stored histogram is the merged one.
    let h = formats::histogram::decode_histogram(
        r["histograms"]["ack.presence:get_online"]["hdr"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(h.len(), 12);
    let sent: u64 = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sent"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sent, 18,
        "the series adds up to the counters (6 subscribes + 12 acks)"
    );
}

#[test]
fn interrupted_workers_still_write_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    // A tagged group: its copies are served with a `tag` label.
    let tagged = long().replace("weight = 1\n", "weight = 1\ntags = { region = \"eu\" }\n");
    assert_ne!(tagged, long());
    let file = write(dir.path(), "long.toml", &tagged);
    let out_dir = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--workers",
            "2",
            "--metrics-listen",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(&out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load runs (the workers' set-up takes a moment; the
    // parent serves the merge of its workers' metrics), then SIGINT the
    // parent only: it tells its workers to stop.
    let (addr, _, _stderr) = live_metrics_address(&mut child);
    let sent = "loadgen_sent_total{scenario=\"long\",event=\"presence:get_online\"}";
    let acks = |tag: &str| {
        format!(
            "loadgen_latency_seconds_count{{scenario=\"long\",{tag}metric=\"ack.presence:get_online\"}}"
        )
    };
    let (total, eu) = (acks(""), acks("tag=\"region=eu\","));
    let m = scrape_until(&addr, "both workers' acks, tagged and not", |m| {
        m.get(sent).copied().unwrap_or(0.0) > 0.0
            && m.get(&total).copied().unwrap_or(0.0) > 0.0
            && m.get("loadgen_clients_connected{scenario=\"long\"}") == Some(&6.0)
    });
    // Every client is in the tagged group: the copy is the whole.
    assert!(m[&eu] > 0.0, "{m:#?}");
    assert!(
        m.keys().any(|k| k.starts_with(
            "loadgen_latency_seconds_bucket{scenario=\"long\",tag=\"region=eu\",metric=\"connect\","
        )),
        "{m:#?}"
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "loadgen hangs after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(4));
    let r = report(&out_dir);
    assert_eq!(r["complete"], false);
    assert_eq!(r["abortReason"], "interrupted");
    assert_eq!(r["workers"], 2);
    assert!(r["histograms"]["connect"]["count"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_killed_mid_run_writes_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "long.toml", &long());
    let (server, opts, out_dir) = crate::common::against_reference_server(dir.path(), &file).await;
    let run = tokio::spawn(loadgen::run_with_stop(
        opts,
        loadgen::engine::StopSignal::new(),
    ));

    // Let the load start (every client connected: a busy machine may take
    // more than the few seconds this takes alone), then take the target
    // away.
    let deadline = Instant::now() + Duration::from_secs(30);
    while root_connects(&server).await < 6 {
        assert!(Instant::now() < deadline, "the load never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await.unwrap();
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(45), run)
        .await
        .expect("loadgen stops by itself once the target is gone")
        .unwrap()
        .unwrap();
    eprintln!("stopped {:?} after the shutdown", t0.elapsed());
    assert_eq!(outcome.exit_code(), loadgen::EXIT_ABORTED);
    let r = report(&out_dir);
    assert_eq!(r["complete"], false);
    let reason = r["abortReason"].as_str().unwrap();
    assert!(reason.contains("target lost"), "{reason}");
    assert!(r["histograms"]["connect"]["count"].as_u64().unwrap() > 0);
    assert!(!outcome.report.complete);
}

/// One HTTP/1.1 GET over a plain socket: the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).expect("the metrics listener accepts");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn parse_exposition(body: &str) -> std::collections::BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                series.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("{l}")),
            )
        })
        .collect()
}

/// Reads `child`'s stderr (piped) on a thread until it announces
/// `loadgen: live metrics at http://ADDR/metrics`; the address, the lines
/// so far, and the channel of the lines after it.
fn live_metrics_address(
    child: &mut std::process::Child,
) -> (String, Vec<String>, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no metrics address; stderr so far:\n{lines:?}"));
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("loadgen: live metrics at http://") {
            return (rest.trim_end_matches("/metrics").to_owned(), lines, rx);
        }
    }
}

/// Scrapes `addr` until `ready` holds of the exposition (bounded: 30 s,
/// 250 ms apart: a busy machine may take a while to start the load).
fn scrape_until(
    addr: &str,
    what: &str,
    ready: impl Fn(&std::collections::BTreeMap<String, f64>) -> bool,
) -> std::collections::BTreeMap<String, f64> {
    for _ in 0..120 {
        let m = parse_exposition(&http_get(addr, "/metrics"));
        if ready(&m) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the exposition never showed {what} within 30 s");
}

/// A run with `--metrics-listen` is scraped twice mid-run over real HTTP:
/// the gauges show the clients, the counters and the latency histogram
/// move between scrapes; stderr (not a terminal) gets plain progress
/// lines every `--progress-interval`.
#[test]
fn live_metrics_are_scraped_mid_run_and_progress_lines_reach_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "long.toml", &long());
    let out_dir = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--duration",
            "8s",
            "--metrics-listen",
            "127.0.0.1:0",
            "--progress-interval",
            "1s",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, mut lines, rx) = live_metrics_address(&mut child);
    let sent = "loadgen_sent_total{scenario=\"long\",event=\"presence:get_online\"}";
    let acks =
        "loadgen_latency_seconds_count{scenario=\"long\",metric=\"ack.presence:get_online\"}";
    let connected = "loadgen_clients_connected{scenario=\"long\"}";
    // First scrape once the load has sent and been answered.
    let first = scrape_until(&addr, "messages sent and acked", |m| {
        m.get(sent).copied().unwrap_or(0.0) > 0.0 && m.get(acks).copied().unwrap_or(0.0) > 0.0
    });
    std::thread::sleep(Duration::from_millis(2500));
    let second = parse_exposition(&http_get(&addr, "/metrics"));
    assert!(
        second[sent] > first[sent],
        "{} -> {}",
        first[sent],
        second[sent]
    );
    assert!(
        second[acks] > first[acks],
        "{} -> {}",
        first[acks],
        second[acks]
    );
    assert_eq!(second[connected], 6.0);
    assert_eq!(second["loadgen_clients_target{scenario=\"long\"}"], 6.0);
    assert!(
        second
            .keys()
            .any(|k| k.starts_with("loadgen_phase{scenario=\"long\",phase=\"phase ")),
        "{second:?}"
    );
    let inf = "loadgen_latency_seconds_bucket{scenario=\"long\",metric=\"ack.presence:get_online\",le=\"+Inf\"}";
    assert_eq!(second[inf], second[acks]);

    let status = child.wait().unwrap();
    // The reader thread ends with the child's stderr.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    let progress: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("[ 0m") && l.contains("clients "))
        .collect();
    assert!(progress.len() >= 4, "{lines:#?}");
    // The listener is gone with the run.
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

/// The tool commands of a text: lines starting with `conformance `,
/// `loadgen ` or `reports ` (after indentation), with their `\`
/// continuation lines, whitespace collapsed.
fn tool_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        let continues = line.ends_with('\\');
        let body = line.trim_end_matches('\\').trim();
        match &mut current {
            Some(c) => {
                c.push(' ');
                c.push_str(body);
            }
            None if ["conformance ", "loadgen ", "reports "]
                .iter()
                .any(|t| body.starts_with(t)) =>
            {
                current = Some(body.to_owned());
            }
            None => continue,
        }
        if !continues && let Some(c) = current.take() {
            out.push(c.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out
}

/// The GitHub Actions workflow runs the commands the README documents.
#[test]
fn the_ci_workflow_runs_the_commands_the_readme_documents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workflow = std::fs::read_to_string(root.join(".github/workflows/ci-load.yml")).unwrap();
    let readme = tool_commands(&std::fs::read_to_string(root.join("README.md")).unwrap());
    let commands = tool_commands(&workflow);
    assert_eq!(commands.len(), 3, "{commands:#?}");
    for c in &commands {
        assert!(readme.contains(c), "not in the README: {c}");
    }
    // The loadgen command parses, flags and thresholds alike.
    let load = commands.iter().find(|c| c.starts_with("loadgen ")).unwrap();
    let words = shell_words(load);
    let opts = <loadgen::Opts as clap::Parser>::try_parse_from(&words)
        .unwrap_or_else(|e| panic!("{load}: {e}"));
    let loadgen::Command::Run(run) = opts.command else {
        panic!("{load}: not `loadgen run`")
    };
    for t in &run.thresholds {
        formats::threshold::Threshold::parse(t).unwrap();
    }
    assert!(run.junit.is_some() && run.summary_md.is_some() && run.label.is_some());

    // Each run is the whole quiz: quiz-burst's host waits 15 s, then opens
    // a question every 12 s; the ramp and the holds, as fitted into
    // --duration, last at least that long (a 60 s run of the default five
    // questions, 75 s, cut the last ones).
    assert_eq!(run.scenario, Path::new("scenarios/quiz-burst.toml"));
    let scenario = loadgen::scenario::load(&root.join(&run.scenario), &run.vars)
        .unwrap()
        .with_overrides(run.clients, run.duration);
    let questions = scenario
        .overrides
        .get("questions")
        .unwrap_or(&scenario.vars["questions"]);
    let questions: u64 = match questions {
        Value::Number(n) => n.as_u64().unwrap(),
        // `${QUIZ_QUESTIONS:-5}`: the default (the workflow sets no
        // QUIZ_QUESTIONS).
        Value::String(s) => s
            .trim_end_matches('}')
            .rsplit(":-")
            .next()
            .unwrap()
            .parse()
            .unwrap(),
        v => panic!("questions = {v}"),
    };
    let before_ramp_down: Duration = scenario
        .phases
        .iter()
        .filter(|p| !matches!(p, loadgen::scenario::Phase::RampDown { .. }))
        .map(loadgen::scenario::Phase::duration)
        .sum();
    assert!(
        before_ramp_down >= Duration::from_secs(15 + 12 * questions),
        "{load}: {questions} questions take {} s, the load lasts {before_ramp_down:?}",
        15 + 12 * questions
    );

    // The comparison is judged against the run-to-run spread: three runs
    // per side (the loop around the loadgen command), `--base` and `--new`.
    assert!(workflow.contains("for i in 1 2 3; do"), "{workflow}");
    let compare = commands.iter().find(|c| c.starts_with("reports ")).unwrap();
    let words = shell_words(compare);
    assert!(
        words.iter().any(|w| w == "--base") && words.iter().any(|w| w == "--new"),
        "{compare}"
    );
    assert!(
        <reports::Opts as clap::Parser>::try_parse_from(&words).is_ok(),
        "{compare}"
    );
}

/// Splits a shell command line on spaces, keeping quoted text whole.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    words.push(word);
    words
}

/// What the collector stand-in received: the JSON bodies POSTed to
/// `/v1/metrics`.
type Received = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// A stand-in for an OpenTelemetry collector: OTLP/HTTP JSON on
/// `POST /v1/metrics`, on an ephemeral loopback port.
async fn collector() -> (String, Received, tokio::task::JoinHandle<()>) {
    use axum::routing::post;
    let received: Received = Default::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/metrics",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                assert_eq!(headers["content-type"], "application/json");
                store
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, received, task)
}

/// The data points of metric `name` in an OTLP request, whichever kind.
fn otlp_points<'a>(req: &'a Value, name: &str) -> Vec<&'a Value> {
    let metrics = &req["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    metrics
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == name)
        .flat_map(|m| {
            ["gauge", "sum", "histogram"]
                .iter()
                .filter_map(|k| m[*k]["dataPoints"].as_array())
                .flatten()
        })
        .collect()
}

/// `--otlp-endpoint`: a real run pushes OTLP/HTTP JSON to a collector
/// stand-in during the run and once at the end; the counters and the
/// latency histogram grow from push to push and the last push matches the
/// report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_pushes_reach_a_collector_during_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "long.toml", &long());
    let (url, received, task) = collector().await;
    let (server, mut opts, out) = crate::common::against_reference_server(dir.path(), &file).await;
    opts.duration = Some(Duration::from_secs(5));
    opts.otlp_endpoint = Some(url);
    opts.otlp_interval = Duration::from_secs(1);
    let outcome = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .unwrap();
    server.stop().await.unwrap();
    task.abort();
    assert_eq!(outcome.exit_code(), loadgen::EXIT_OK);
    let reqs = received.lock().unwrap().clone();
    assert!(reqs.len() >= 4, "{} pushes", reqs.len());
    let first = &reqs[0];
    assert_eq!(
        first["resourceMetrics"][0]["resource"]["attributes"][0],
        serde_json::json!({"key": "service.name", "value": {"stringValue": "loadgen"}})
    );
    let sent = |req: &Value| -> u64 {
        otlp_points(req, "loadgen.sent")
            .iter()
            .map(|p| p["asInt"].as_str().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let acks = |req: &Value| -> u64 {
        otlp_points(req, "loadgen.latency")
            .iter()
            .find(|p| {
                p["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["value"]["stringValue"] == "ack.presence:get_online")
            })
            .map_or(0, |p| p["count"].as_str().unwrap().parse().unwrap())
    };
    let last = reqs.last().unwrap();
    let mid = &reqs[reqs.len() / 2];
    assert!(
        sent(mid) > 0 && sent(last) > sent(mid),
        "{} -> {}",
        sent(mid),
        sent(last)
    );
    assert!(acks(last) > acks(mid), "{} -> {}", acks(mid), acks(last));
    // The last push is the final state: the report's numbers.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        Some(acks(last)),
        report["histograms"]["ack.presence:get_online"]["count"].as_u64()
    );
    // Histogram points: bucket counts add up to the count.
    for p in otlp_points(last, "loadgen.latency") {
        let total: u64 = p["bucketCounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total.to_string(), p["count"].as_str().unwrap(), "{p}");
        assert_eq!(
            p["bucketCounts"].as_array().unwrap().len(),
            p["explicitBounds"].as_array().unwrap().len() + 1
        );
    }
}

/// The README shows `loadgen run`'s real `--help`.
#[test]
fn the_readme_shows_the_real_help() {
    let out = loadgen(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    clidoc::testing::assert_help_in_readme(&String::from_utf8_lossy(&out.stdout));
}
