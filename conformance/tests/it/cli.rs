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

/// `list --json`: the cases and the coverage matrix, every requirement
/// checked by a listed case or carrying the reason why not.
#[test]
fn list_json_has_the_cases_and_the_coverage_matrix() {
    let (code, out, err) = conformance(&["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), conformance::cases::all().len());
    let ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let matrix = doc["coverage"].as_array().unwrap();
    assert_eq!(doc["requirements"], matrix.len());
    for r in matrix {
        let checks = r["checks"].as_array().unwrap();
        assert!(
            checks
                .iter()
                .all(|c| ids.contains(&c["case"].as_str().unwrap())
                    && ["exact", "shape", "decision"].contains(&c["strictness"].as_str().unwrap())),
            "{r}"
        );
        assert!(!checks.is_empty() || r["unchecked"].is_string(), "{r}");
    }
    let room_updated = matrix
        .iter()
        .find(|r| r["id"] == "payload:room:updated")
        .unwrap();
    assert_eq!(room_updated["checks"][0]["case"], "rooms.updated.payload");
    // Selection narrows the cases, not the matrix.
    let (_, out, _) = conformance(&["list", "--json", "--run", "rooms.*"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["cases"].as_array().unwrap().len() < cases.len());
    assert_eq!(doc["coverage"].as_array().unwrap().len(), matrix.len());
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

/// A profile with no driver action at all.
fn empty_profile(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "# no actions\n").unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_run_where_nothing_executed_exits_4_with_the_skips_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let (code, out, err) = conformance(&[
        "run",
        "--profile",
        &empty_profile(&dir),
        "--run",
        "rooms.*",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("no selected case executed"), "{err}");
    let rooms = conformance::cases::all()
        .iter()
        .filter(|c| c.id.starts_with("rooms."))
        .count();
    assert!(
        out.contains(&format!(
            "skipped, by reason (0 of {rooms} selected cases executed, 0.0%):"
        )),
        "{out}"
    );
    // Every rooms case needs a room: one group names the action and
    // stands for the whole family.
    assert!(
        out.contains(&format!(
            "  {rooms} cases: needs driver action `create_room` (missing from the target profile)\n      rooms.*\n"
        )),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with(&format!("{rooms} skipped")),
        "{out}"
    );

    let report: formats::conformance::RunReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &report.summary;
    assert_eq!((s.executed, s.skipped, s.coverage), (0, rooms, 0.0));
    let group = s
        .skips
        .iter()
        .find(|g| g.reason.contains("`create_room`"))
        .expect("a create_room group");
    assert_eq!(group.cases.len(), rooms);
    assert!(group.cases.iter().all(|id| id.starts_with("rooms.")));
}

#[test]
fn require_coverage_fails_a_run_that_executed_less() {
    let dir = tempfile::tempdir().unwrap();
    let empty = empty_profile(&dir);
    let auth = conformance::cases::all()
        .iter()
        .filter(|c| c.id.starts_with("connection.auth."))
        .collect::<Vec<_>>();
    let runnable = auth.iter().filter(|c| c.needs.is_empty()).count();
    assert!(
        runnable > 0 && runnable * 2 < auth.len(),
        "the selection must run under half its cases without actions"
    );

    // The reference profile has every action: all of them execute.
    let (code, out, err) = conformance(&[
        "run",
        "--run",
        "connection.auth.*",
        "--require-coverage",
        "50",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("skipped, by reason"), "{out}");

    // Without actions, only the cases that need none execute: under 50 %.
    let (code, out, err) = conformance(&[
        "run",
        "--profile",
        &empty,
        "--run",
        "connection.auth.*",
        "--require-coverage",
        "50",
    ]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{runnable} of {} selected cases executed",
            auth.len()
        )) && err.contains("below --require-coverage 50"),
        "{err}"
    );
    assert!(
        out.contains("needs driver action `mint_token` (missing from the target profile)"),
        "{out}"
    );

    // By default every selected case must execute: the same run fails...
    let (code, out, err) = conformance(&["run", "--profile", &empty, "--run", "connection.auth.*"]);
    assert_eq!(code, 4, "{out}{err}");
    // ...unless the user accepts a partial run: what executed passed.
    let (code, out, err) = conformance(&[
        "run",
        "--profile",
        &empty,
        "--run",
        "connection.auth.*",
        "--require-coverage",
        "0",
    ]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, _, err) = conformance(&["run", "--require-coverage", "101"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--require-coverage"), "{err}");
}

#[test]
fn a_single_case_that_runs_meets_full_coverage() {
    let (code, out, err) = conformance(&[
        "run",
        "--run",
        "connection.auth.invalid_token",
        "--require-coverage",
        "100",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().last().unwrap().starts_with("1 passed"), "{out}");
}

/// `--version`: the package version and the git revision the binary was
/// built from (the `tool` field of `--json` results), as loadgen prints.
#[test]
fn version_names_the_git_revision() {
    let (code, out, err) = conformance(&["--version"]);
    assert_eq!(code, 0, "{err}");
    clidoc::testing::assert_version_names_a_revision(
        &out,
        "conformance",
        env!("CARGO_PKG_VERSION"),
    );
}

/// The README shows each subcommand's real `--help`.
#[test]
fn the_readme_shows_the_real_help() {
    for sub in [&["list"][..], &["run"], &["profile", "check"]] {
        let mut args = sub.to_vec();
        args.push("--help");
        let (code, out, err) = conformance(&args);
        assert_eq!(code, 0, "{err}");
        clidoc::testing::assert_help_in_readme(&out);
    }
}
