//! `reports html`: one self-contained file, opened in headless Chromium
//! (Debian package `chromium`, which `.ci/run` installs): the charts'
//! SVG elements are in the rendered DOM, the console stays silent (no
//! error, no blocked load), and a screenshot is kept under `target/`
//! (`target/reports-screenshot.png`, with the HTML next to it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Spec, report, reports, reports_in, samples, write};

const CHROMIUM: &str = "/usr/bin/chromium";

/// `target/` of this build (integration tests get `target/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_owned()
}

/// Runs Chromium headless on `page` with `mode` (`--dump-dom` or
/// `--screenshot=…`); returns (stdout, stderr). Bounded by 120 s.
fn chromium(page: &Path, mode: &str, profile: &Path) -> (String, String) {
    let url = format!("file://{}", page.display());
    let out_path = profile.join("stdout");
    let err_path = profile.join("stderr");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.join("profile").display()),
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2050",
            "--hide-scrollbars",
            mode,
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stdout = std::fs::read_to_string(&out_path).unwrap();
            let stderr = std::fs::read_to_string(&err_path).unwrap();
            assert!(
                status.success(),
                "chromium {mode} failed ({status}):\n{stderr}"
            );
            return (stdout, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {mode} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Console output of the page: errors, uncaught exceptions, loads the
/// Content-Security-Policy blocked. The page has no script, so any console
/// line is a problem.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
                || l.contains("net::ERR_")
        })
        .collect()
}

fn runs(dir: &Path) -> (PathBuf, PathBuf) {
    let tail = |values: Vec<u64>| -> Vec<u64> {
        values
            .into_iter()
            .map(|v| if v > 4000 { v * 3 / 2 } else { v })
            .collect()
    };
    let base = report(&Spec {
        scenario: "room-chat",
        histograms: vec![
            ("ack.room:subscribe", samples(1, 20_000)),
            ("connect", samples(2, 1_000)),
            ("fanout.chat:message", samples(3, 50_000)),
            ("http.create_room", samples(4, 40)),
        ],
        counters: vec![
            ("sent.room:subscribe", 20_000),
            ("received.chat:message", 50_000),
            ("errors.timeout", 4),
            ("vus_started", 1_000),
        ],
        clients: 1_000,
        seconds: 30,
        ..Spec::default()
    });
    let new = report(&Spec {
        scenario: "room-chat",
        histograms: vec![
            ("ack.room:subscribe", tail(samples(11, 20_000))),
            ("connect", samples(12, 1_000)),
            ("fanout.chat:message", samples(13, 50_000)),
            ("http.create_room", samples(14, 40)),
        ],
        counters: vec![
            ("sent.room:subscribe", 20_000),
            ("received.chat:message", 50_000),
            ("errors.timeout", 9),
            ("errors.RATE_LIMIT_EXCEEDED", 3),
            ("vus_started", 1_000),
        ],
        clients: 1_000,
        seconds: 30,
        phase: 1,
        ..Spec::default()
    });
    (write(dir, "base", &base), write(dir, "new", &new))
}

#[test]
fn html_report_renders_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test opens the HTML report in headless Chromium. \
         Install the Debian package: `apt-get install -y chromium` (.ci/run installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path());
    let page = target_dir().join("reports-report.html");
    // Relative paths: the page names the files as given.
    let out = reports_in(
        dir.path(),
        [
            "html".as_ref(),
            "new/report.json".as_ref(),
            "--baseline".as_ref(),
            "base/report.json".as_ref(),
            "-o".as_ref(),
            page.as_os_str(),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: nothing to fetch, everything inline.
    for forbidden in [
        "<script", "src=", "<link", "@import", "url(", "<iframe", "<object",
    ] {
        assert!(!html.contains(forbidden), "the HTML contains `{forbidden}`");
    }
    assert!(html.contains("Content-Security-Policy"));
    // 4 spectra (one per metric) and 4 time series.
    assert_eq!(html.matches("<svg").count(), 8);
    assert!(
        html.contains("regression: 1 metric worse"),
        "the comparison is shown"
    );

    // Rendered: the charts are in the DOM, with their lines.
    let (dom, stderr) = chromium(&page, "--dump-dom", dir.path());
    let problems = console_problems(&stderr);
    assert!(
        problems.is_empty(),
        "console output:\n{}",
        problems.join("\n")
    );
    assert_eq!(dom.matches("<svg").count(), 8, "SVG charts in the DOM");
    for id in [
        "spectrum-0",
        "spectrum-3",
        "series-connected",
        "series-messages",
        "series-errors",
        "series-p99",
    ] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "chart {id} missing");
    }
    // Each spectrum: the run and the baseline; each series chart: lines.
    assert!(dom.matches("<path class=\"line\"").count() >= 8 + 4 * 2);
    assert!(dom.contains("99.99%"), "the percentile axis reaches 99.99%");
    assert!(dom.contains("<table class=\"summary\">"));

    // The screenshot: a test artefact under target/.
    let png = target_dir().join("reports-screenshot.png");
    let _ = std::fs::remove_file(&png);
    let (_, stderr) = chromium(
        &page,
        &format!("--screenshot={}", png.display()),
        dir.path(),
    );
    let problems = console_problems(&stderr);
    assert!(
        problems.is_empty(),
        "console output:\n{}",
        problems.join("\n")
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 30_000,
        "the screenshot has content ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}

#[test]
fn html_without_baseline_and_with_empty_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let r = report(&Spec {
        histograms: vec![("connect", Vec::new()), ("ack.x", samples(1, 5))],
        seconds: 0,
        ..Spec::default()
    });
    let run = write(dir.path(), "run", &r);
    let page = dir.path().join("r.html");
    let out = reports([
        "html".as_ref(),
        run.as_os_str(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("no samples"));
    assert!(
        !html.contains("NaN") && !html.contains("inf\"") && !html.contains("inf,"),
        "no broken numbers"
    );
    assert_eq!(html.matches("<svg").count(), 6);
}

/// A loadgen report whose generator was the bottleneck: `show` and `html`
/// both say so, and the page charts the generator's CPU.
#[test]
fn a_generator_bound_run_is_flagged_in_show_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = report(&Spec {
        histograms: vec![("ack.x", samples(1, 50))],
        seconds: 4,
        ..Spec::default()
    });
    for s in &mut r.series {
        s.cpu_ms = Some(1950);
    }
    r.generator = Some(formats::report::GeneratorReport::assess(&r, 2));
    let run = write(dir.path(), "run", &r);
    let shown = reports(["show".as_ref(), run.as_os_str()]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.contains(
            "WARNING: the results are generator-bound: CPU at or above 90% of its 2 cores in 4 s of the load"
        ),
        "{}",
        shown.stdout
    );
    let page = dir.path().join("r.html");
    let out = reports([
        "html".as_ref(),
        run.as_os_str(),
        "-o".as_ref(),
        page.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<span class=\"badge bad\">generator-bound</span> WARNING"),
        "{html}"
    );
    assert!(html.contains("peak 97.5% of 2 cores"), "generator line");
    assert!(html.contains("series-generator-cpu"), "CPU chart");
}
