//! `reports compare` on loadgen reports: a regression is flagged, noise is
//! not, thresholds come from flags or a file.

use std::path::{Path, PathBuf};

use crate::common::{Out, Spec, report, reports, samples, write};
use serde_json::Value;

const METRIC: &str = "ack.room:subscribe";

fn run_with(dir: &Path, name: &str, values: Vec<u64>, errors: u64) -> PathBuf {
    run_with_connect(dir, name, values, errors, 99)
}

/// With 100 `connect` samples drawn with `connect_seed`.
fn run_with_connect(
    dir: &Path,
    name: &str,
    values: Vec<u64>,
    errors: u64,
    connect_seed: u64,
) -> PathBuf {
    let spec = Spec {
        histograms: vec![(METRIC, values), ("connect", samples(connect_seed, 100))],
        counters: vec![
            ("sent.room:subscribe", 10_000),
            ("errors.timeout", errors),
            ("vus_started", 100),
        ],
        ..Spec::default()
    };
    write(dir, name, &report(&spec))
}

/// `values` with everything at or above the 98th percentile made 50 %
/// slower: p50 and p90 unchanged, p99 +50 %.
fn slower_tail(values: &[u64]) -> Vec<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let cut = sorted[sorted.len() * 98 / 100];
    values
        .iter()
        .map(|v| if *v >= cut { v * 3 / 2 } else { *v })
        .collect()
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["compare".as_ref(), base.as_os_str(), new.as_os_str()];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    reports(args)
}

fn json(base: &Path, new: &Path, extra: &[&str]) -> (i32, Value) {
    let mut extra = extra.to_vec();
    extra.extend(["--format", "json"]);
    let out = compare(base, new, &extra);
    let v = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.code, v)
}

fn metric<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {v:#}"))
}

fn stat<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stat"] == name)
        .unwrap_or_else(|| panic!("no stat {name} in {m:#}"))
}

#[test]
fn p99_fifty_percent_slower_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let values = samples(1, 10_000);
    let base = run_with(dir.path(), "base", values.clone(), 0);
    let new = run_with(dir.path(), "new", slower_tail(&values), 0);

    let (code, v) = json(&base, &new, &[]);
    assert_eq!(code, 1);
    assert_eq!(v["regression"], true);
    let m = metric(&v, METRIC);
    assert_eq!(m["verdict"], "worse");
    let p99 = stat(m, "p99");
    assert_eq!(p99["verdict"], "worse");
    let pct = p99["deltaPct"].as_f64().unwrap();
    assert!((45.0..55.0).contains(&pct), "p99 moved {pct}%");
    assert_eq!(stat(m, "p50")["verdict"], "same");
    assert_eq!(stat(m, "p90")["verdict"], "same");
    assert_eq!(stat(m, "p50")["delta"], 0.0);
    // 10,000 samples: p99.9 is not judged by default (no threshold).
    assert_eq!(stat(m, "p99.9")["verdict"], "not-judged");
    // `connect` has 100 samples, the same in both: judged, the same.
    let c = metric(&v, "connect");
    assert_eq!(stat(c, "p50")["verdict"], "same");
    assert_eq!(stat(c, "p99")["verdict"], "same");
    assert_eq!(v["counts"]["worse"], 1);

    // Text: side by side, the verdict, the exit code.
    let out = compare(&base, &new, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("WORSE (p99 +10%)"), "{}", out.stdout);
    assert!(out.stdout.contains("=> REGRESSION"), "{}", out.stdout);
    let p99_line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("p99 "))
        .unwrap();
    assert!(p99_line.contains('%'), "{p99_line}");

    // Markdown for a PR comment.
    let out = compare(&base, &new, &["--format", "markdown"]);
    assert_eq!(out.code, 1);
    let md = &out.stdout;
    assert!(
        md.starts_with("### Load test comparison: ❌ **Regression**: 1 metric worse"),
        "{md}"
    );
    assert!(md.contains("| metric | samples | rate | p50 | p90 | p99 | p99.9 | max | verdict |"));
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| `{METRIC}`")))
        .unwrap();
    assert!(row.contains("🔴 worse") && row.contains("**"), "{row}");
    assert!(md.contains("<details>") && md.contains("</details>"));

    // A looser threshold from a flag: no regression.
    let (code, v) = json(&base, &new, &["--threshold", "p99 +60%"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(stat(metric(&v, METRIC), "p99")["verdict"], "same");
    // The same from a file, limited to the metric.
    let file = dir.path().join("thresholds.toml");
    std::fs::write(
        &file,
        format!("min_samples = 50\nthresholds = [\"{METRIC}.p99 +60%\"]\n"),
    )
    .unwrap();
    let (code, v) = json(&base, &new, &["--thresholds", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["minSamples"], 50);
    // With a floor: +50% but also more than 1 s: same.
    let (code, _) = json(
        &base,
        &new,
        &["--threshold", "p99 +10%", "--threshold", "p99 +1s"],
    );
    assert_eq!(code, 0);
    // The other way round it is better.
    let (code, v) = json(&new, &base, &[]);
    assert_eq!(code, 0);
    assert_eq!(metric(&v, METRIC)["verdict"], "better");
}

#[test]
fn the_same_distribution_resampled_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 2..6 {
        let base = run_with_connect(
            dir.path(),
            &format!("base{seed}"),
            samples(seed, 10_000),
            1,
            seed + 200,
        );
        let new = run_with_connect(
            dir.path(),
            &format!("new{seed}"),
            samples(seed + 100, 10_000),
            2,
            seed + 300,
        );
        let (code, v) = json(&base, &new, &[]);
        assert_eq!(code, 0, "seed {seed}: {v:#}");
        let m = metric(&v, METRIC);
        assert_eq!(m["verdict"], "same", "seed {seed}: {m:#}");
        for s in ["p50", "p90", "p99"] {
            assert_eq!(stat(m, s)["verdict"], "same", "seed {seed} {s}");
        }
        assert_eq!(metric(&v, "errors")["verdict"], "same");
        // 100 samples resampled: p99 moves a lot, but within noise.
        let c = metric(&v, "connect");
        assert_eq!(c["verdict"], "same", "seed {seed}: {c:#}");
        let out = compare(&base, &new, &[]);
        assert!(out.stdout.contains("=> no regression"), "{}", out.stdout);
    }
}

#[test]
fn tiny_counts_are_insufficient_data_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let values = samples(3, 20);
    let base = run_with(dir.path(), "base", values.clone(), 0);
    let new = run_with(dir.path(), "new", values.iter().map(|v| v * 3).collect(), 0);
    let (code, v) = json(&base, &new, &[]);
    assert_eq!(code, 0, "{v:#}");
    let m = metric(&v, METRIC);
    assert_eq!(m["verdict"], "insufficient-data");
    let p50 = stat(m, "p50");
    assert_eq!(p50["verdict"], "insufficient-data");
    assert!(
        p50["note"].as_str().unwrap().contains("base 20, new 20"),
        "{p50}"
    );
    assert!(
        p50["deltaPct"].as_f64().unwrap() > 150.0,
        "the delta is still shown"
    );
    assert_eq!(v["counts"]["insufficientData"], 1, "{v:#}");
    let out = compare(&base, &new, &[]);
    assert!(out.stdout.contains("insufficient data"), "{}", out.stdout);
    // Lowering the guard makes it judged.
    let (code, v) = json(&base, &new, &["--min-samples", "10"]);
    assert_eq!(code, 1);
    assert_eq!(stat(metric(&v, METRIC), "p50")["verdict"], "worse");
}

#[test]
fn more_errors_are_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let values = samples(4, 10_000);
    let base = run_with(dir.path(), "base", values.clone(), 2);
    let new = run_with(dir.path(), "new", values, 80);
    let (code, v) = json(&base, &new, &[]);
    assert_eq!(code, 1, "{v:#}");
    let e = metric(&v, "errors");
    assert_eq!(e["verdict"], "worse");
    let rate = stat(e, "error-rate");
    assert_eq!(rate["unit"], "percent");
    // 10,000 sent + 100 connects: 2 → 80 errors is +0.77pp.
    let d = rate["delta"].as_f64().unwrap();
    assert!((0.7..0.8).contains(&d), "{rate}");
    assert_eq!(v["errorsByCode"][0]["code"], "timeout");
    assert_eq!(v["errorsByCode"][0]["new"], 80);
    let out = compare(&base, &new, &["--format", "markdown"]);
    assert!(out.stdout.contains("| error-rate |"), "{}", out.stdout);
    assert!(
        out.stdout.contains("| `timeout` | 2 | 80 | +78 | |"),
        "{}",
        out.stdout
    );
    // Only more than 1pp is worse: same.
    let (code, _) = json(&base, &new, &["--threshold", "error-rate +1pp"]);
    assert_eq!(code, 0);
}

#[test]
fn bad_thresholds_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = run_with(dir.path(), "base", samples(1, 100), 0);
    for (args, needle) in [
        (
            vec!["--threshold", "p99 10"],
            "invalid threshold `p99 10`: CHANGE `10` needs a unit",
        ),
        (vec!["--threshold", "p98 +10%"], "unknown STAT"),
        (vec!["--threshold", "error-rate +1%"], "percentage points"),
        (vec!["--format", "yaml"], "invalid value 'yaml'"),
        (
            vec!["--thresholds", "/nonexistent.toml"],
            "/nonexistent.toml: cannot read",
        ),
    ] {
        let out = compare(&base, &base, &args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "threshold = [\"p99 +10%\"]\n").unwrap();
    let out = compare(&base, &base, &["--thresholds", file.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown field `threshold`"),
        "{}",
        out.stderr
    );
    std::fs::write(&file, "thresholds = [\"p99 +10\"]\n").unwrap();
    let out = compare(&base, &base, &["--thresholds", file.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("t.toml: invalid threshold `p99 +10`"),
        "{}",
        out.stderr
    );
}

#[test]
fn warnings_for_changed_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let base = run_with(dir.path(), "base", samples(1, 500), 0);
    let other = report(&Spec {
        hash: "aaaaaaaaaaaaaaaa",
        histograms: vec![(METRIC, samples(2, 500)), ("reconnect", samples(3, 200))],
        ..Spec::default()
    });
    let new = write(dir.path(), "new", &other);
    // A rule may name a metric that only one side recorded.
    let (code, v) = json(&base, &new, &["--threshold", "reconnect.p99 +1%"]);
    assert_eq!(code, 0, "{v:#}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("changed between the runs"), "{warnings}");
    assert_eq!(metric(&v, "reconnect")["verdict"], "only-in-new");
    assert_eq!(metric(&v, "connect")["verdict"], "only-in-base");
}

/// A rule naming a metric that neither side recorded would never be
/// judged, and the comparison would pass on it: it is a usage error with
/// a did-you-mean, from a flag or a file, in every form of `compare` and
/// in `html --baseline`.
#[test]
fn rules_naming_unrecorded_metrics_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: u64| {
        let spec = Spec {
            histograms: vec![
                ("fanout.stage:tick", samples(seed, 500)),
                ("connect", samples(seed + 1, 100)),
            ],
            counters: vec![("sent.stage:tick", 500), ("vus_started", 100)],
            ..Spec::default()
        };
        write(dir.path(), name, &report(&spec))
    };
    let (base, new) = (run("base", 1), run("new", 2));
    let hint = "invalid threshold `fanout.stage:tik.p99 +5ms`: unknown metric `fanout.stage:tik` \
                (did you mean `fanout.stage:tick`?): neither side's reports recorded it; their \
                histograms: connect, fanout.stage:tick";
    let out = compare(&base, &new, &["--threshold", "fanout.stage:tik.p99 +5ms"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(hint), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // The correct name is accepted.
    let out = compare(&base, &new, &["--threshold", "fanout.stage:tick.p99 +5ms"]);
    assert_ne!(out.code, 2, "{out:?}");

    // From a file: the message names it.
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "thresholds = [\"fanout.stage:tik.p99 +5ms\"]\n").unwrap();
    let out = compare(&base, &new, &["--thresholds", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!("t.toml: {hint}")),
        "{}",
        out.stderr
    );

    // A counter: said so.
    let out = compare(&base, &new, &["--threshold", "sent.stage:tick.rate -10%"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`sent.stage:tick` is a counter"),
        "{}",
        out.stderr
    );

    // Several runs per side.
    let b2 = run("base2", 3);
    let n2 = run("new2", 4);
    let out = reports([
        "compare".as_ref(),
        "--base".as_ref(),
        base.as_os_str(),
        b2.as_os_str(),
        "--new".as_ref(),
        new.as_os_str(),
        n2.as_os_str(),
        "--threshold".as_ref(),
        "fanout.stage:tik.p99 +5ms".as_ref(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(hint), "{}", out.stderr);

    // html --baseline takes the same rules.
    let html = dir.path().join("r.html");
    let out = reports([
        "html".as_ref(),
        new.as_os_str(),
        "--baseline".as_ref(),
        base.as_os_str(),
        "-o".as_ref(),
        html.as_os_str(),
        "--threshold".as_ref(),
        "fanout.stage:tik.p99 +5ms".as_ref(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(hint), "{}", out.stderr);
    assert!(!html.exists());
}

/// Labels and tools are shown on both sides; `--summary-md` appends the
/// Markdown rendering whatever `--format` prints; `html` shows the label.
#[test]
fn labels_show_and_the_step_summary_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = |name: &str, label: &str| {
        let mut r = report(&Spec {
            histograms: vec![(METRIC, samples(7, 2000))],
            ..Spec::default()
        });
        r.label = Some(label.to_owned());
        r.tool = "loadgen 0.1.0 (git 0123456789ab)".to_owned();
        write(dir.path(), name, &r)
    };
    let base = labelled("base.json", "v1.1");
    let new = labelled("new.json", "v1.2 <rc>");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier\n").unwrap();
    let out = compare(&base, &new, &["--summary-md", summary.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("label `v1.1`, scenario `chat`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("loadgen 0.1.0 (git 0123456789ab)"),
        "{}",
        out.stdout
    );
    // One line per side, each `<side>: <file> (<what>)`.
    for (side, file) in [("base", &base), ("new", &new)] {
        let line = format!("{side}: {} (", file.display());
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&line)),
            "{line}\n{}",
            out.stdout
        );
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier\n### Load test comparison: ✅ **No regression**"),
        "{md}"
    );
    assert!(md.contains("label `v1.2 <rc>`"), "{md}");

    let html = dir.path().join("r.html");
    let out = reports([
        "html".as_ref(),
        new.as_os_str(),
        "-o".as_ref(),
        html.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("<b>v1.2 &lt;rc&gt;</b> · loadgen 0.1.0 (git 0123456789ab)"),
        "no label in the HTML"
    );
}

/// A run whose latencies are `samples(seed)` scaled by `factor`: the
/// run-to-run spread of a real build (a busy machine, a cold cache).
fn scaled_run(dir: &Path, name: &str, seed: u64, factor: f64) -> PathBuf {
    let values = samples(seed, 5000)
        .into_iter()
        .map(|v| (v as f64 * factor) as u64)
        .collect();
    run_with(dir, name, values, 0)
}

fn runs(dir: &Path, side: &str, factors: &[f64]) -> Vec<PathBuf> {
    factors
        .iter()
        .enumerate()
        .map(|(i, f)| scaled_run(dir, &format!("{side}{i}"), 100 + i as u64, *f))
        .collect()
}

/// `compare --base B... --new N... --format json`.
fn compare_sets(base: &[PathBuf], new: &[PathBuf]) -> (i32, Value) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["compare".as_ref(), "--base".as_ref()];
    args.extend(base.iter().map(|p| p.as_os_str()));
    args.push("--new".as_ref());
    args.extend(new.iter().map(|p| p.as_os_str()));
    args.extend(["--format", "json"].map(std::ffi::OsStr::new));
    let out = reports(args);
    let v = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.code, v)
}

#[test]
fn several_runs_per_side_are_judged_against_the_run_to_run_spread() {
    let dir = tempfile::tempdir().unwrap();
    // The same build: runs differ by up to ±15 % from one to the next.
    let base = runs(dir.path(), "base", &[0.85, 1.0, 1.15]);
    let same = runs(dir.path(), "same", &[1.12, 0.9, 1.05]);

    // One run per side: 5000 samples each make the within-run intervals
    // narrow, and the +32 % between two runs of one build is "worse".
    let (code, v) = json(&base[0], &same[0], &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["method"], "within-run");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("no run-to-run noise estimate")),
        "{v}"
    );

    // Three runs per side: the means are within the threshold.
    let (code, v) = compare_sets(&base, &same);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["method"], "run-to-run");
    assert_eq!(v["baseRuns"].as_array().unwrap().len(), 3);
    let p50 = stat(metric(&v, METRIC), "p50");
    assert_eq!(p50["baseRuns"].as_array().unwrap().len(), 3, "{p50}");
    let runs_mean = p50["baseRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    assert!((p50["base"].as_f64().unwrap() - runs_mean).abs() < 1e-6);

    // Beyond the threshold (+22 %) but within the runs' spread: same, with
    // a note saying why.
    let wide = runs(dir.path(), "wide", &[0.7, 1.0, 1.3]);
    let wider = runs(dir.path(), "wider", &[0.95, 1.25, 1.45]);
    let (code, v) = compare_sets(&wide, &wider);
    assert_eq!(code, 0, "{v}");
    let p50 = stat(metric(&v, METRIC), "p50");
    assert_eq!(p50["verdict"], "same", "{p50}");
    assert!(
        p50["note"]
            .as_str()
            .unwrap()
            .contains("within run-to-run noise"),
        "{p50}"
    );

    // A real slowdown (+30 %, every run) is flagged.
    let slow = runs(dir.path(), "slow", &[1.28, 1.3, 1.33]);
    let tight = runs(dir.path(), "tight", &[0.98, 1.0, 1.02]);
    let (code, v) = compare_sets(&tight, &slow);
    assert_eq!(code, 1, "{v}");
    assert_eq!(stat(metric(&v, METRIC), "p50")["verdict"], "worse");
    let out = reports(
        ["compare", "--base"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain(tight.iter().map(|p| p.as_os_str()))
            .chain(["--head".as_ref()])
            .chain(slow.iter().map(|p| p.as_os_str())),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("noise: run-to-run"), "{}", out.stdout);
    assert!(out.stdout.contains("REGRESSION"), "{}", out.stdout);
}

#[test]
fn sets_and_pairs_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let a = runs(dir.path(), "a", &[1.0]);
    let out = reports([
        "compare".as_ref(),
        a[0].as_os_str(),
        a[0].as_os_str(),
        "--base".as_ref(),
        a[0].as_os_str(),
        "--new".as_ref(),
        a[0].as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = reports(["compare".as_ref(), "--base".as_ref(), a[0].as_os_str()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--new"), "{out:?}");
    // Two per side: pooled, with the warning.
    let b = runs(dir.path(), "b", &[1.0, 1.01]);
    let (code, v) = compare_sets(&b, &b);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["method"], "within-run");
}
