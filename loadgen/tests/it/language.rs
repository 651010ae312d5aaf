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
