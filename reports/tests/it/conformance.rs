//! `reports compare` (and `show`) on two conformance results, written with
//! the result format's types (`formats::conformance`, what the conformance
//! runner writes through): new failures and fixed cases.

use std::path::{Path, PathBuf};

use crate::common::reports;
use formats::conformance::{CaseRecord, RunReport, Summary, Verdict};

fn case(id: &str, verdict: Verdict) -> CaseRecord {
    let failed = matches!(verdict, Verdict::Fail | Verdict::Xfail);
    CaseRecord {
        id: id.to_owned(),
        description: format!("checks {id}"),
        requirement: "the protocol says so".to_owned(),
        verdict,
        duration_ms: 12,
        expected: failed.then(|| "ack {success:true}".to_owned()),
        actual: failed.then(|| "ack {success:false}".to_owned()),
        schema_errors: Vec::new(),
        reason: (verdict == Verdict::Skip).then(|| "action missing from the profile".to_owned()),
        notes: Vec::new(),
        deviations: Vec::new(),
        decision: None,
        transcript: Vec::new(),
    }
}

fn write(dir: &Path, name: &str, cases: Vec<CaseRecord>) -> PathBuf {
    let report = RunReport {
        version: 1,
        tool: "conformance 0.1.0".to_owned(),
        label: Some(format!("run {name}")),
        target: "http://127.0.0.1:3000".to_owned(),
        strict: false,
        level: Default::default(),
        started_at: "2025-06-01T12:00:00Z".to_owned(),
        duration_ms: 3000,
        summary: Summary::of(&cases),
        cases,
    };
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap() + "\n").unwrap();
    path
}

#[test]
fn lists_new_failures_and_fixed_cases() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        dir.path(),
        "base.json",
        vec![
            case("rooms.subscribe.ack", Verdict::Pass),
            case("prizes.created.payload", Verdict::Fail),
            case("quiz.ranking", Verdict::Fail),
            case("presence.offline", Verdict::Pass),
            case("connection.polling", Verdict::NonStrict),
            case("rules.timestamps.iso_recent", Verdict::Pass),
            case("winners.selected.payload", Verdict::Xfail),
        ],
    );
    let new = write(
        dir.path(),
        "new.json",
        vec![
            case("rooms.subscribe.ack", Verdict::Fail),
            case("prizes.created.payload", Verdict::Pass),
            case("quiz.ranking", Verdict::Fail),
            case("presence.offline", Verdict::Skip),
            case("connection.polling", Verdict::Pass),
            case("rules.timestamps.iso_recent", Verdict::Xfail),
            case("winners.selected.payload", Verdict::Xpass),
            case("apps.custom.delivered", Verdict::Fail),
        ],
    );
    let out = reports(["compare".as_ref(), base.as_os_str(), new.as_os_str()]);
    assert_eq!(out.code, 1, "{out:?}");
    let text = &out.stdout;
    // The label and the tool of each side.
    assert!(
        text.contains("new.json (label `run new.json`, conformance 0.1.0 against"),
        "{text}"
    );
    let section = |title: &str| -> Vec<String> {
        let start = text
            .find(&format!("\n{title} ("))
            .unwrap_or_else(|| panic!("no section {title}: {text}"));
        text[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter(|l| !l.starts_with("      "))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        section("new failures"),
        [
            "apps.custom.delivered",
            "rooms.subscribe.ack",
            "rules.timestamps.iso_recent"
        ]
    );
    assert_eq!(
        section("fixed"),
        ["prizes.created.payload", "winners.selected.payload"]
    );
    assert_eq!(section("other changes"), ["presence.offline"]);
    assert!(text.contains("still failing (1): quiz.ranking"), "{text}");
    assert!(text.contains("(was PASS)"), "{text}");
    assert!(text.contains("(was absent)"), "{text}");
    assert!(
        text.contains("expected ack {success:true}; actual ack {success:false}"),
        "{text}"
    );
    assert!(
        text.contains("3 new failures, 2 fixed, 1 still failing => REGRESSION"),
        "{text}"
    );

    let out = reports([
        "compare".as_ref(),
        base.as_os_str(),
        new.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(out.code, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["kind"], "conformance");
    assert_eq!(v["newFailures"][1]["id"], "rooms.subscribe.ack");
    assert_eq!(v["newFailures"][1]["base"], "pass");
    assert_eq!(v["newFailures"][1]["new"], "fail");
    assert_eq!(v["newFailures"][0]["base"], serde_json::Value::Null);
    assert_eq!(v["fixed"][0]["id"], "prizes.created.payload");

    let out = reports([
        "compare".as_ref(),
        base.as_os_str(),
        new.as_os_str(),
        "--format".as_ref(),
        "markdown".as_ref(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("### Conformance comparison: ❌ **3 new failures**"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("| `rooms.subscribe.ack` | PASS | FAIL |"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("🟢 **Fixed** (2)"), "{}", out.stdout);

    // The other way round: the failures are fixed, and there are new ones.
    let out = reports(["compare".as_ref(), new.as_os_str(), base.as_os_str()]);
    assert_eq!(out.code, 1);
    // Against itself: nothing new.
    let out = reports(["compare".as_ref(), new.as_os_str(), new.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("0 new failures, 0 fixed, 4 still failing => no regression"),
        "{}",
        out.stdout
    );
}

#[test]
fn fixes_only_exit_zero_and_show_lists_failures() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        dir.path(),
        "base.json",
        vec![case("a.one", Verdict::Fail), case("b.two", Verdict::Pass)],
    );
    let new = write(
        dir.path(),
        "new.json",
        vec![case("a.one", Verdict::Pass), case("b.two", Verdict::Pass)],
    );
    let out = reports(["compare".as_ref(), base.as_os_str(), new.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("fixed (1):"), "{}", out.stdout);

    let out = reports(["show".as_ref(), base.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("2 cases: 1 FAIL, 1 PASS"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("FAIL       a.one"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("(label `run base.json`, conformance 0.1.0)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_conformance_result_and_a_load_report_do_not_compare() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "c.json", vec![case("a", Verdict::Pass)]);
    let spec = crate::common::Spec {
        histograms: vec![("connect", crate::common::samples(1, 10))],
        ..crate::common::Spec::default()
    };
    let l = crate::common::write(dir.path(), "load", &crate::common::report(&spec));
    let out = reports(["compare".as_ref(), c.as_os_str(), l.as_os_str()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("is a conformance result but")
            && out
                .stderr
                .contains("is a loadgen run report: compare takes two of the same kind"),
        "{}",
        out.stderr
    );
}

/// A spec-level result: `show` prints the level and each deviation with its
/// decision; `compare` does not count a deviation as a failure.
#[test]
fn deviations_are_shown_and_are_no_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut deviated = case("errors.permission_denied.event", Verdict::Deviation);
    deviated.reason = Some("deviates from reference decision N9".to_owned());
    deviated.deviations = vec![formats::conformance::Deviation {
        decision: "N9".to_owned(),
        expected: "error.details.event".to_owned(),
        actual: "{\"action\":\"room:subscribe\"}".to_owned(),
    }];
    let base = write(
        dir.path(),
        "base.json",
        vec![case("errors.permission_denied.event", Verdict::Pass)],
    );
    let new = write(dir.path(), "new.json", vec![deviated]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&new).unwrap()).unwrap();
    doc["version"] = serde_json::json!(2);
    doc["level"] = serde_json::json!("spec");
    std::fs::write(&new, doc.to_string()).unwrap();

    let out = reports(["show".as_ref(), new.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    for want in [
        "level spec",
        "1 DEVIATION",
        "DEVIATION  errors.permission_denied.event",
        "deviates from N9: expected error.details.event; actual {\"action\":\"room:subscribe\"}",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    let out = reports(["compare".as_ref(), base.as_os_str(), new.as_os_str()]);
    assert_eq!(out.code, 0, "no failure, no regression: {out:?}");
    assert!(out.stdout.contains("(was PASS)"), "{}", out.stdout);
}
