//! The scenario language end to end, against the in-process reference
//! server: `--var` values reaching every worker, and their errors.

use std::process::{Command, Output, Stdio};

use formats::names;

use crate::common::{Members, write};

fn loadgen(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("loadgen runs");
    eprintln!(
        "$ loadgen {}\n--- exit {:?}\n--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Members ask `${times:-1}` times, in a room whose name comes from a
/// `[vars]` entry `--var` replaces.
fn asking() -> String {
    Members {
        name: "var-flag",
        description: "members ask ${times:-1} times",
        room: "var-flag",
        steps: r#"  { loop = "${times:-1}", steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
  ] },
"#,
        clients: 4,
        hold: "1s",
    }
    .toml()
}

#[test]
fn var_flags_reach_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "var.toml", &asking());
    let out_dir = dir.path().join("out");
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
        "--workers",
        "2",
        "--var",
        "times=3",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r = crate::common::checked_report(&out_dir).1;
    assert_eq!(r["counters"]["vus_started"], 4);
    assert_eq!(
        r["counters"]["sent.presence:get_online"], 12,
        "4 members asking --var times=3 times each"
    );
    let expect_errors = names::error(names::code::EXPECT);
    assert!(r["counters"][&expect_errors].is_null(), "{r}");
}

#[test]
fn var_flag_errors_name_the_flag_and_a_near_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "var.toml", &asking());
    let f = file.to_str().unwrap();
    let out = loadgen(&["validate", f, "--var", "tmies=3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--var tmies: the scenario reads no variable `tmies` (did you mean `times`?)"),
        "{err}"
    );
    // roomId is saved by the set-up: a --var would be hidden, so refused,
    // by `run` too, before anything starts.
    let out = loadgen(&["run", f, "--quiet", "--var", "roomId=r1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--var roomId: `roomId` is assigned by the run"),
        "{err}"
    );
    let out = loadgen(&["validate", f, "--var", "times=2"]);
    assert_eq!(out.status.code(), Some(0));
    let out = loadgen(&["validate", f, "--var", "times"]);
    assert_eq!(out.status.code(), Some(2), "K=V is required");
}

/// `loadgen run FILE --quiet --out DIR/out ARGS...` that must pass; the
/// report's counters.
fn counters(file: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out_dir = dir.join("out");
    let mut all = vec![
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = loadgen(&all);
    assert_eq!(out.status.code(), Some(0));
    crate::common::checked_report(&out_dir).1["counters"].clone()
}

/// per-vu: VU i gets row i (the VU numbers are the run's, so two workers
/// split the rows as one process would).
#[test]
fn a_csv_feeder_gives_each_vu_its_row() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "times.csv", "times\n1\n2\n3\n");
    let text = Members {
        name: "feeder-per-vu",
        description: "VU i asks row i times",
        room: "feeder-per-vu",
        steps: r#"  { loop = "${times}", steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
  ] },
"#,
        clients: 3,
        hold: "1s",
    }
    .toml()
        + "\n[[feeders]]\nfile = \"times.csv\"\n";
    let file = write(dir.path(), "feeder.toml", &text);
    let c = counters(&file, dir.path(), &["--workers", "2"]);
    assert_eq!(c["vus_started"], 3);
    assert_eq!(c["sent.presence:get_online"], 6, "1 + 2 + 3 asks: {c}");
}

/// round-robin and random draw a row when the VU starts and at each
/// iteration of a `loop`: the event sent comes from the row.
#[test]
fn a_json_feeder_draws_rows_per_iteration() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "events.json",
        r#"[{"ev": "presence:get_online"}, {"ev": "room:unsubscribe"}]"#,
    );
    let toml = |pick: &str, times: u32| {
        Members {
            name: "feeder-draws",
            description: "one VU emits the row's event",
            room: "feeder-draws",
            steps: &format!(
                "  {{ loop = {times}, steps = [{{ emit = \"${{ev}}\", data = {{ roomId = \"${{roomId}}\" }} }}] }},\n"
            ),
            clients: 1,
            hold: "1s",
        }
        .toml()
            + &format!("\n[[feeders]]\nfile = \"events.json\"\npick = \"{pick}\"\n")
    };
    let file = write(dir.path(), "rr.toml", &toml("round-robin", 4));
    let c = counters(&file, dir.path(), &[]);
    // Row 0 at the start, then rows 1, 0, 1, 0 for the four iterations.
    assert_eq!(c["sent.presence:get_online"], 2, "{c}");
    assert_eq!(c["sent.room:unsubscribe"], 2, "{c}");

    let file = write(dir.path(), "random.toml", &toml("random", 40));
    let c = counters(&file, dir.path(), &["--seed", "7"]);
    let a = c["sent.presence:get_online"].as_u64().unwrap_or(0);
    let b = c["sent.room:unsubscribe"].as_u64().unwrap_or(0);
    assert_eq!(a + b, 40, "{c}");
    assert!(a > 0 && b > 0, "both rows drawn in 40 random picks: {c}");
}

/// A failed `expect` and a `wait_for` that saw only other payloads are
/// kept with what arrived, the earliest `keep_mismatches` of all workers.
#[test]
fn the_first_mismatches_are_kept_with_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let text = Members {
        name: "mismatches",
        description: "expectations that fail",
        room: "mismatches",
        steps: r#"  { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = false } },
  { wait_for = "presence:user_online", matching = { userId = "nobody" }, timeout = "3s" },
"#,
        clients: 3,
        hold: "5s",
    }
    .toml()
    .replace("description =", "keep_mismatches = 5\ndescription =");
    let file = write(dir.path(), "mismatch.toml", &text);
    let c = counters(&file, dir.path(), &["--workers", "2"]);
    assert_eq!(c[names::error(names::code::EXPECT)], 3, "{c}");
    let (_, r) = crate::common::checked_report(&dir.path().join("out"));
    let kept = r["mismatches"].as_array().expect("mismatches kept");
    assert_eq!(kept.len(), 5, "{kept:#?}");
    let at: Vec<u64> = kept.iter().map(|m| m["atMs"].as_u64().unwrap()).collect();
    assert!(at.is_sorted(), "earliest first: {at:?}");
    let acks: Vec<_> = kept.iter().filter(|m| m["step"] == "emit_ack").collect();
    assert_eq!(acks.len(), 3, "every failed expect came first: {kept:#?}");
    for m in &acks {
        assert_eq!(m["event"], "presence:get_online");
        assert_eq!(m["group"], "members");
        assert_eq!(m["expected"], r#"{"success":false}"#);
        assert!(
            m["got"].as_str().unwrap().contains(r#""success":true"#),
            "{m}"
        );
    }
    // The first two members saw later members come online, not `nobody`.
    let waits: Vec<_> = kept.iter().filter(|m| m["step"] == "wait_for").collect();
    assert_eq!(waits.len(), 2, "{kept:#?}");
    for m in &waits {
        assert_eq!(m["event"], "presence:user_online");
        assert_eq!(m["expected"], r#"{"userId":"nobody"}"#);
        assert!(m["got"].as_str().unwrap().contains(r#""userId":"#), "{m}");
    }
    let summary = std::fs::read_to_string(dir.path().join("out/summary.txt")).unwrap();
    assert!(summary.contains("first mismatches (5)"), "{summary}");
    assert!(
        summary.contains(r#"emit_ack presence:get_online: expected {"success":false}, got {"#),
        "{summary}"
    );
}

/// An arrival phase ramping 0 → 20/s over 2 s (20 arrivals) of VUs that
/// stay 1.5 s, without and with a cap on the running arrival VUs.
fn ramping(max_vus: &str) -> String {
    format!(
        r#"
name = "ramping-arrivals"
{max_vus}
thresholds = ["connect_failures.count < 1"]

[[groups]]
name = "visitors"
steps = [{{ connect = "/" }}, {{ think = "1500ms" }}]

[[phases]]
arrival = 20
from = 0
over = "2s"
"#
    )
}

#[test]
fn ramping_arrivals_start_every_vu_and_a_cap_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ramp.toml", &ramping(""));
    let c = counters(&file, dir.path(), &[]);
    assert_eq!(c["vus_started"], 20, "{c}");
    assert!(c[names::ARRIVALS_DROPPED].is_null(), "{c}");

    // At most 4 arrival VUs at once, each alive 1.5 s: of 20 arrivals in
    // 2 s, some must be dropped, and every arrival is either.
    let file = write(dir.path(), "capped.toml", &ramping("max_vus = 4"));
    let out_dir = dir.path().join("capped");
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let c = crate::common::checked_report(&out_dir).1["counters"].clone();
    let started = c["vus_started"].as_u64().unwrap();
    let dropped = c[names::ARRIVALS_DROPPED].as_u64().unwrap_or(0);
    assert_eq!(started + dropped, 20, "{c}");
    assert!(started >= 4 && dropped >= 8, "4 at a time for 2 s: {c}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("warning: {dropped} arrivals dropped: max_vus (4)")),
        "{err}"
    );
    // And a threshold can gate it.
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.path().join("gated").to_str().unwrap(),
        "--threshold",
        "arrivals_dropped.count < 1",
    ]);
    assert_eq!(out.status.code(), Some(1), "the threshold is breached");
}

/// Tagged groups: every metric of their VUs also under `[KEY=VALUE]NAME`,
/// which thresholds select; the run-wide sums do not count the copies.
#[test]
fn group_tags_split_metrics_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "tags"
thresholds = [
  "[region=eu]ack.presence:get_online.count >= 4",
  "[region=eu]errors.count < 1",
  "[region=us]vus_started.count >= 2",
  "sent.room:subscribe.count >= 4",
]

[[setup]]
action = "create_room"
with = { name = "tags ${runId}" }
save = ["roomId"]

[[groups]]
name = "eu"
tags = { region = "eu" }
steps = [
  { connect = "/" },
  { subscribe = "${roomId}" },
  { loop = 2, steps = [{ emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } }] },
]

[[groups]]
name = "us"
tags = { region = "us" }
steps = [{ connect = "/" }, { subscribe = "${roomId}" }, { think = "300ms" }]

[[phases]]
ramp = 4
over = "300ms"

[[phases]]
hold = "1s"
"#;
    let file = write(dir.path(), "tags.toml", text);
    let out_dir = dir.path().join("out");
    let out = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "every threshold passes");
    let (_, r) = crate::common::checked_report(&out_dir);
    let c = &r["counters"];
    assert_eq!(c["vus_started"], 4);
    assert_eq!(c["[region=eu]vus_started"], 2);
    assert_eq!(c["[region=us]vus_started"], 2);
    assert_eq!(c["sent.room:subscribe"], 4);
    assert_eq!(c["[region=eu]sent.room:subscribe"], 2);
    assert_eq!(r["histograms"]["ack.presence:get_online"]["count"], 4);
    assert_eq!(
        r["histograms"]["[region=eu]ack.presence:get_online"]["count"],
        4
    );
    assert!(r["histograms"]["[region=us]ack.presence:get_online"].is_null());
    let t = r["thresholds"].as_array().unwrap();
    assert_eq!(t.len(), 4);
    assert!(t.iter().all(|t| t["passed"] == true), "{t:#?}");
    assert_eq!(t[2]["actual"], 2.0, "the tag's own vus_started");
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    assert!(
        summary.contains("[region=eu]ack.presence:get_online"),
        "{summary}"
    );
}

/// Tokens that live 2 s: the server sends `token:expired`; busy VUs (at
/// their next step) and idle ones (right away) refresh through the
/// target, reconnect with the new token and resubscribe.
#[test]
fn expired_tokens_are_refreshed_and_the_vus_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "token-refresh"
thresholds = ["token_refresh_failures.count < 1", "token_refresh.p99 < 5s"]

[[setup]]
action = "create_room"
with = { name = "refresh ${runId}" }
save = ["roomId"]

[tokens]
ttl = "2s"

[[groups]]
name = "busy"
steps = [
  { connect = "/" },
  { subscribe = "${roomId}" },
  { loop = 10, steps = [
      { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
      { think = "400ms" },
  ] },
]

[[groups]]
name = "idle"
steps = [{ connect = "/" }, { subscribe = "${roomId}" }]

[[phases]]
ramp = 4
over = "300ms"

[[phases]]
hold = "6s"
"#;
    let file = write(dir.path(), "refresh.toml", text);
    let c = counters(&file, dir.path(), &[]);
    assert_eq!(c["vus_started"], 4);
    assert_eq!(c[names::TOKEN_REFRESHES], 4, "every VU renewed: {c}");
    assert!(c[names::TOKEN_REFRESH_FAILURES].is_null(), "{c}");
    // A reconnection with the expired token would be refused.
    assert!(c[names::CONNECT_FAILURES].is_null(), "{c}");
    assert_eq!(c["sent.room:subscribe"], 8, "each VU resubscribed: {c}");
    assert_eq!(c["received.token:expired"], 4, "{c}");
    assert_eq!(c["sent.presence:get_online"], 20, "{c}");
    // An ack racing the expiry may fail; the VUs go on with the new token.
    let failed = c[names::error(names::code::EXPECT)].as_u64().unwrap_or(0);
    assert!(failed <= 2, "{c}");
    let (_, r) = crate::common::checked_report(&dir.path().join("out"));
    assert_eq!(r["histograms"][names::TOKEN_REFRESH]["count"], 4);
}

/// A refresh the target refuses is counted, and the VU keeps its
/// connection until the server's grace period ends it.
#[test]
fn a_refused_refresh_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    // The reference profile with a refresh route the server does not have
    // (the route of a foreign deployment is its profile's action).
    let profile = include_str!("../../../driver/profiles/reference.toml").replace(
        "path = \"/api/auth/refresh\"",
        "path = \"/api/auth/no-such-route\"",
    );
    assert!(profile.contains("no-such-route"));
    let profile = write(dir.path(), "profile.toml", &profile);
    let text = r#"
name = "refresh-refused"

# 2 s: both VUs connect before their tokens expire, also on a busy machine
# (a 1 s token once expired before a connect: a connect failure instead).
[tokens]
ttl = "2s"

[[groups]]
steps = [{ connect = "/" }]

[[phases]]
ramp = 2
over = "0s"

[[phases]]
hold = "4s"
"#;
    let file = write(dir.path(), "refused.toml", text);
    let c = counters(&file, dir.path(), &["--profile", profile.to_str().unwrap()]);
    assert_eq!(c[names::TOKEN_REFRESH_FAILURES], 2, "{c}");
    assert!(c[names::TOKEN_REFRESHES].is_null(), "{c}");
}
