//! The whole suite against the reference server: every case passes, none is
//! skipped or in error, and the outputs are well-formed.

use crate::common::{assert_every_case_passed, run_args};

/// At `--level reference` the decisions bind: the reference server keeps
/// every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_the_reference_server_at_reference_level() {
    let report = run_args(&["--level", "reference"])
        .await
        .expect("the run completes");
    assert_eq!(report.level, conformance::case::Level::Reference);
    assert_every_case_passed(&report, "against the reference server, level reference");
}

/// The default level, `spec`: every case passes, with no deviation either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_the_reference_server() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let junit = dir.path().join("result.xml");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let report = run_args(&[
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--summary-md",
        summary.to_str().unwrap(),
        "--label",
        "ci run 7",
    ])
    .await
    .expect("the run completes");
    assert_eq!(report.level, conformance::case::Level::Spec);
    assert_every_case_passed(&report, "against the reference server");
    eprintln!(
        "suite: {} cases in {} ms",
        report.cases.len(),
        report.duration_ms
    );

    // --json: per-case records with timings and transcripts.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["version"], formats::conformance::RESULT_VERSION);
    assert_eq!(doc["level"], "spec");
    assert_eq!(doc["label"], "ci run 7");
    let tool = doc["tool"].as_str().unwrap();
    assert!(
        tool.starts_with(&format!("conformance {}", env!("CARGO_PKG_VERSION"))),
        "{tool}"
    );

    // --summary-md: appended to what the file held.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### conformance: `http://127.0.0.1:"),
        "{md}"
    );
    assert!(
        md.contains(&format!("— ✅ {} passed, 0 failed", report.cases.len())),
        "{md}"
    );
    assert!(md.contains("label: ci run 7, tool: conformance "), "{md}");
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
    if let Some(at) = text.find("eyJ") {
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(300)
            .map_or(0, |(i, _)| i);
        let to = text[at..]
            .char_indices()
            .nth(80)
            .map_or(text.len(), |(i, _)| at + i);
        panic!("a JWT leaked into --json: …{}…", &text[from..to]);
    }
}
