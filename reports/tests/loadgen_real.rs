//! Real reports: two short loadgen runs (library API, in-process reference
//! server, `scenarios/app-events.toml`, 20 clients, 10 s each), then every
//! `reports` command on them.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::reports;
use loadgen::engine::StopSignal;
use loadgen::{RunOpts, run_with_stop};
use reports::model;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// One run of loadgen; returns its report.json.
async fn loadgen_run(out: &Path, seed: u64) -> PathBuf {
    let mut opts = RunOpts::new(workspace().join("scenarios/app-events.toml"));
    opts.clients = Some(20);
    opts.duration = Some(Duration::from_secs(10));
    opts.out = Some(out.to_owned());
    opts.quiet = true;
    opts.seed = Some(seed);
    let outcome = run_with_stop(opts, StopSignal::new()).await;
    // 0: thresholds passed, 1: one breached; both write a complete report.
    assert!(outcome.code <= 1, "loadgen exited {}", outcome.code);
    assert!(outcome.report.is_some_and(|r| r.complete));
    out.join("report.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_on_real_loadgen_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = loadgen_run(&dir.path().join("a"), 1).await;
    let b = loadgen_run(&dir.path().join("b"), 2).await;
    let s = |p: &Path| p.as_os_str().to_owned();

    // Read through every check: schema, types, histograms.
    let run_a = model::load_run(&a).unwrap_or_else(|e| panic!("{e}"));
    let run_b = model::load_run(&b).unwrap_or_else(|e| panic!("{e}"));
    assert!(!run_a.histograms.is_empty(), "the run recorded latencies");
    assert!(run_a.attempts() > 0);

    let out = reports([s(Path::new("show")), s(&a)]);
    assert_eq!(out.code, 0, "{out:?}");
    for name in run_a.histograms.keys() {
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
            for name in run_a.histograms.keys().chain(run_b.histograms.keys()) {
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
    for (name, h) in &merged.histograms {
        let expect = run_a.histograms.get(name).map_or(0, |h| h.len())
            + run_b.histograms.get(name).map_or(0, |h| h.len());
        assert_eq!(h.len(), expect, "{name}");
    }

    // CSV and HTML.
    let out = reports([s(Path::new("csv")), s(&a)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), run_a.histograms.len() + 1);
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
    assert!(html.matches("<svg").count() >= run_b.histograms.len() + 4);
}
