//! Real reports: two short loadgen runs committed as fixtures
//! (`fixtures/README.md` says how they were made: `scenarios/app-events.toml`,
//! 20 clients, 10 s each, seeds 1 and 2), then every `reports` command on
//! them.

use std::path::{Path, PathBuf};

use crate::common::reports;
use reports::model;

/// A committed report of a real loadgen run, copied into `dir` (merge and
/// HTML write next to their inputs).
fn fixture(dir: &Path, seed: u64) -> PathBuf {
    let name = format!("app-events-seed{seed}.report.json");
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(&name);
    let to = dir.join(&name);
    std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    to
}

#[test]
fn reports_on_real_loadgen_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture(dir.path(), 1);
    let b = fixture(dir.path(), 2);
    let s = |p: &Path| p.as_os_str().to_owned();

    // Read through every check: schema, types, histograms.
    let run_a = model::load_run(&a).unwrap_or_else(|e| panic!("{e}"));
    let run_b = model::load_run(&b).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !run_a.metrics.histograms.is_empty(),
        "the run recorded latencies"
    );
    assert!(run_a.attempts() > 0);

    let out = reports([s(Path::new("show")), s(&a)]);
    assert_eq!(out.code, 0, "{out:?}");
    for name in run_a.metrics.histograms.keys() {
        assert!(
            out.stdout.contains(name.as_str()),
            "{name} in {}",
            out.stdout
        );
    }

    // Compare: a verdict either way, never a usage error.
    for format in ["text", "markdown", "json"] {
        let out = reports([
            s(Path::new("compare")),
            s(&a),
            s(&b),
            "--format".into(),
            format.into(),
        ]);
        assert!(out.code == 0 || out.code == 1, "{format}: {out:?}");
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(v["regression"], out.code == 1);
            let names: Vec<&str> = v["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap())
                .collect();
            for name in run_a
                .metrics
                .histograms
                .keys()
                .chain(run_b.metrics.histograms.keys())
            {
                assert!(names.contains(&name.as_str()), "{name} compared");
            }
        }
    }
    // A run against itself: no regression.
    let out = reports([s(Path::new("compare")), s(&a), s(&a)]);
    assert_eq!(out.code, 0, "{out:?}");

    // Merge both runs (same scenario file): counts add up exactly.
    let all = dir.path().join("all.json");
    let out = reports([s(Path::new("merge")), s(&a), s(&b), "-o".into(), s(&all)]);
    assert_eq!(out.code, 0, "{out:?}");
    let merged = model::load_run(&all).unwrap_or_else(|e| panic!("{e}"));
    for (name, h) in &merged.metrics.histograms {
        let expect = run_a.metrics.histograms.get(name).map_or(0, |h| h.len())
            + run_b.metrics.histograms.get(name).map_or(0, |h| h.len());
        assert_eq!(h.len(), expect, "{name}");
    }

    // CSV and HTML.
    let out = reports([s(Path::new("csv")), s(&a)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().count(),
        run_a.metrics.histograms.len() + 1
    );
    let page = dir.path().join("report.html");
    let out = reports([
        s(Path::new("html")),
        s(&b),
        "--baseline".into(),
        s(&a),
        "-o".into(),
        s(&page),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.matches("<svg").count() >= run_b.metrics.histograms.len() + 4);
}
