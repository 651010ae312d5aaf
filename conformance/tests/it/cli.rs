//! The binary's contract: subcommands, exit codes, errors.

use std::process::Command;

fn conformance(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
        .expect("run the conformance binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_prints_every_case_and_filters_by_glob() {
    let (code, out, _) = conformance(&["list"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), conformance::cases::all().len());
    assert!(out.contains("connection.auth.invalid_token"));
    let (code, out, _) = conformance(&[
        "list",
        "--run",
        "connection.auth.*",
        "--skip",
        "*.missing_token",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.lines().all(|l| l.starts_with("connection.auth.")),
        "{out}"
    );
    assert!(!out.contains("missing_token"));
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = conformance(&["run", "--profile", "/nonexistent/profile.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read profile"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[actions.x]\nmethod = 'GET'\npath = 'no-slash'\n").unwrap();
    let (code, _, err) = conformance(&["run", "--profile", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("path must start with '/'"), "{err}");

    let (code, _, err) = conformance(&["run", "--run", "no.such.case*"]);
    assert_eq!(code, 2, "{err}");

    let (code, _, err) = conformance(&["run", "--jobs", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--jobs"), "{err}");
    let (code, _, err) = conformance(&["run", "--timeout", "601"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--timeout"), "{err}");

    let known = dir.path().join("known.txt");
    std::fs::write(&known, "no.such.case\n").unwrap();
    let (code, _, err) = conformance(&["run", "--known-failing", known.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown case id"), "{err}");

    let (code, _, _) = conformance(&["run", "--bogus-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn a_profile_action_no_case_calls_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("typo.toml");
    let text = format!(
        "{}\n[actions.create_rooom]\nmethod = 'POST'\npath = '/api/rooms'\n",
        driver::profile::REFERENCE
    );
    std::fs::write(&profile, text).unwrap();
    let (code, out, err) = conformance(&[
        "run",
        "--profile",
        profile.to_str().unwrap(),
        "--run",
        "connection.auth.invalid_token",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "warning: profile action `create_rooom` is not a driver action any case calls"
        ),
        "{err}"
    );
}

#[test]
fn unreachable_target_exits_3() {
    // Port 9 on loopback: nothing listens there.
    let (code, _, err) = conformance(&["run", "--target", "http://127.0.0.1:9", "--timeout", "2"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn known_failing_turns_a_pass_into_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known.txt");
    std::fs::write(
        &known,
        "# passes against the reference server\nconnection.websocket\n",
    )
    .unwrap();
    let (code, out, err) = conformance(&[
        "run",
        "--run",
        "connection.websocket",
        "--known-failing",
        known.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("XPASS"), "{out}");
    assert!(
        err.contains("started the reference server in-process"),
        "{err}"
    );
}

#[test]
fn a_passing_selection_exits_0_with_the_summary_line() {
    let (code, out, err) = conformance(&[
        "run",
        "--run",
        "connection.auth.invalid_token",
        "--run",
        "connection.auth.expired_token",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let summary = out.lines().last().unwrap();
    assert!(summary.ends_with("0 failed, 0 skipped"), "{summary}");
}
