//! Reading inputs: versions, schema errors, unreadable files; `show` and
//! `csv` on a hand-made report.

use crate::common::{Spec, report, reports, samples, write};
use serde_json::{Value, json};

fn loadgen_json() -> Value {
    let r = report(&Spec {
        histograms: vec![("ack.chat:send", samples(1, 1000))],
        counters: vec![("sent.chat:send", 1000), ("errors.timeout", 3)],
        ..Spec::default()
    });
    serde_json::from_str(&r.to_json()).unwrap()
}

fn show(dir: &std::path::Path, value: &Value) -> crate::common::Out {
    let f = dir.join("x.json");
    std::fs::write(&f, serde_json::to_string(value).unwrap()).unwrap();
    let out = reports(["show".as_ref(), f.as_os_str()]);
    // compare says the same as show.
    let cmp = reports(["compare".as_ref(), f.as_os_str(), f.as_os_str()]);
    assert_eq!(cmp.code, out.code, "{cmp:?}");
    assert_eq!(cmp.stderr, out.stderr);
    out
}

#[test]
fn older_and_unknown_versions_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = loadgen_json();

    // Versions 1 (no `label`) and 2 (no `generator`) still read,
    // converted to version 3.
    v["version"] = json!(1);
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 0, "{out:?}");
    v["version"] = json!(2);
    v["label"] = json!("release 1.2");
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("label: release 1.2, tool: loadgen 0.1.0"),
        "{}",
        out.stdout
    );

    v["version"] = json!(3);
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 0, "{out:?}");

    v["version"] = json!(4);
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(
            "x.json: loadgen run report version 4 is not supported (this reports reads version 1 to 3): \
             it was written by a newer release; use `reports` from that release (or newer)"
        ),
        "{}",
        out.stderr
    );

    v["version"] = json!(0);
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("version 0 is not supported (this reports reads version 1 to 3): that format is older than the oldest one this release can read"),
        "{}",
        out.stderr
    );

    v.as_object_mut().unwrap().remove("version");
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "loadgen run report without a `version` field: written before the format was versioned"
        ),
        "{}",
        out.stderr
    );

    let conf = json!({"version": 7, "tool": "conformance 9.0.0", "cases": []});
    let out = show(dir.path(), &conf);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("conformance result version 7 is not supported"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_reports_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = loadgen_json();
    v["histograms"]["ack.chat:send"]["p99Us"] = json!(-5);
    v["clients"] = json!("many");
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("not a valid loadgen run report (2 schema errors)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("at /histograms/ack.chat:send/p99Us: must be >=0, but got -5"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("at /clients:"), "{}", out.stderr);

    let mut v = loadgen_json();
    v["histograms"]["ack.chat:send"]["hdr"] = json!("aGVsbG8=");
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("histogram `ack.chat:send`: histogram is not a valid HDR"),
        "{}",
        out.stderr
    );

    let mut v = loadgen_json();
    v["histograms"]["ack.chat:send"]["count"] = json!(999);
    let out = show(dir.path(), &v);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`count` says 999 but its HDR data holds 1000 samples"),
        "{}",
        out.stderr
    );

    let f = dir.path().join("broken.json");
    std::fs::write(&f, "{\"version\": 1,").unwrap();
    let out = reports(["show".as_ref(), f.as_os_str()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("broken.json: not valid JSON"),
        "{}",
        out.stderr
    );

    let out = reports(["show", "/nonexistent/run.json"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("/nonexistent/run.json: cannot read"),
        "{}",
        out.stderr
    );

    let out = show(dir.path(), &json!({"hello": "world"}));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("neither a loadgen run report"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage() {
    let out = reports(["--help"]);
    assert_eq!(out.code, 0);
    for cmd in ["show", "merge", "compare", "html", "csv"] {
        assert!(out.stdout.contains(cmd), "{}", out.stdout);
    }
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    let out = reports(["compare", "--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("error-rate +0.1pp") && out.stdout.contains("--min-samples"));
    let out = reports(["frobnicate"]);
    assert_eq!(out.code, 2);
    let out = reports(["merge", "a.json"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--out"), "{}", out.stderr);
    let out = reports(["compare", "only-one.json"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("<NEW.json>"), "{}", out.stderr);
    // The library entry point answers the same, without a process.
    use clap::Parser as _;
    let opts = reports::Opts::try_parse_from(["reports", "show", "missing.json"]).unwrap();
    let e = reports::run(opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().starts_with("missing.json: cannot read"),
        "{e}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = report(&Spec {
        histograms: vec![("ack.chat:send", samples(9, 20_000))],
        ..Spec::default()
    });
    let file = write(dir.path(), "run", &r);
    // `reports csv --spectrum RUN | head -c 0`: the reader is gone before
    // the output (well over a pipe's buffer) is written.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reports"))
        .args(["csv", "--spectrum"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn show_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let values = samples(5, 1000);
    let r = report(&Spec {
        histograms: vec![
            ("ack.chat:send", values.clone()),
            ("connect", samples(6, 100)),
        ],
        counters: vec![
            ("sent.chat:send", 1000),
            ("errors.timeout", 3),
            ("errors.RATE_LIMIT_EXCEEDED", 2),
            ("connect_failures", 1),
        ],
        ..Spec::default()
    });
    let f = write(dir.path(), "run", &r);
    let out = reports(["show".as_ref(), f.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = &out.stdout;
    assert!(
        s.contains("latency") && s.contains("p99.9") && s.contains("rate/s"),
        "{s}"
    );
    let line = s.lines().find(|l| l.starts_with("ack.chat:send")).unwrap();
    assert!(line.contains("1000") && line.contains("100.0"), "{line}");
    assert!(s.contains("errors by code (5)"), "{s}");
    assert!(s.contains("RATE_LIMIT_EXCEEDED"), "{s}");
    assert!(s.contains("1,101 operations, 6 errors (0.54%)"), "{s}");

    let out = reports(["csv".as_ref(), f.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut rd = csv::Reader::from_reader(out.stdout.as_bytes());
    let headers = rd.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        reports::csv_out::COLUMNS
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let h = crate::common::hist(&values);
    let col = |name: &str| headers.iter().position(|c| c == name).unwrap();
    assert_eq!(&rows[0][0], "ack.chat:send");
    assert_eq!(&rows[0][col("count")], "1000");
    assert_eq!(&rows[0][col("rate_per_s")], "100.000");
    assert_eq!(
        rows[0][col("p99_us")],
        h.value_at_quantile(0.99).to_string()
    );
    assert_eq!(rows[0][col("max_us")], h.max().to_string());

    let file = dir.path().join("spectrum.csv");
    let out = reports([
        "csv".as_ref(),
        f.as_os_str(),
        "--spectrum".as_ref(),
        "-o".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("metric,percentile,value_us,count,inverted\n"));
    let last = text
        .lines()
        .rfind(|l| l.starts_with("ack.chat:send,"))
        .unwrap();
    assert!(last.starts_with("ack.chat:send,100.000000,"), "{last}");
    assert!(last.contains(&format!(",{},1000,", h.max())), "{last}");
}

/// `--version`: the package version and the git revision the binary was
/// built from (the `tool` field reports carry), as loadgen prints.
#[test]
fn version_names_the_git_revision() {
    let out = reports(["--version"]);
    assert_eq!(out.code, 0, "{out:?}");
    clidoc::testing::assert_version_names_a_revision(
        &out.stdout,
        "reports",
        env!("CARGO_PKG_VERSION"),
    );
}
