//! The whole suite against the reference server: every case passes, none is
//! skipped or in error, and the outputs are well-formed.

use clap::Parser;
use conformance::case::Verdict;
use conformance::{Command, Opts, run};

fn run_opts(args: &[&str]) -> conformance::RunOpts {
    let mut all = vec!["conformance", "run"];
    all.extend_from_slice(args);
    match Opts::parse_from(all).command {
        Command::Run(r) => r,
        Command::List(_) => unreachable!("parsed a run"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_the_reference_server() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let junit = dir.path().join("result.xml");
    let report = run(run_opts(&[
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]))
    .await
    .expect("the run completes");

    let not_passed: Vec<String> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| {
            format!(
                "{} {:?}: {} / expected {:?} / actual {:?} / schema {:?} / notes {:?}",
                c.id,
                c.verdict,
                c.reason.clone().unwrap_or_default(),
                c.expected,
                c.actual,
                c.schema_errors,
                c.notes
            )
        })
        .collect();
    assert!(
        not_passed.is_empty(),
        "cases not passing:\n{}",
        not_passed.join("\n")
    );
    assert_eq!(report.cases.len(), conformance::cases::all().len());
    assert_eq!(
        conformance::exit_code(&report.summary),
        conformance::EXIT_OK
    );
    eprintln!(
        "suite: {} cases in {} ms",
        report.cases.len(),
        report.duration_ms
    );

    // --json: per-case records with timings and transcripts.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), report.cases.len());
    assert!(
        cases
            .iter()
            .all(|c| c["duration_ms"].is_u64() && c["transcript"].is_array())
    );
    assert!(
        cases
            .iter()
            .any(|c| !c["transcript"].as_array().unwrap().is_empty()),
        "no transcript recorded"
    );

    // --junit: one testcase per case, named by id.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"));
    for c in &report.cases {
        assert!(
            xml.contains(&format!("name=\"{}\"", c.id)),
            "{} missing from JUnit",
            c.id
        );
    }
    assert!(!xml.contains("<failure"), "no failure expected in JUnit");

    // Secrets never appear: the operator token, and no JWT in transcripts.
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        !text.contains(server::config::DEV_ADMIN_TOKEN),
        "admin token leaked into --json"
    );
    assert!(!text.contains("eyJ"), "a JWT leaked into --json");
}
