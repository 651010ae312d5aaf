//! The report: histograms serialize and merge exactly, real output of a
//! real run matches the committed JSON Schema, and recording is cheap.

use std::time::{Duration, Instant};

use crate::common::{ASK_TWICE, Members, schema_errors, write};
use formats::histogram::{decode_histogram, encode_histogram, new_histogram};
use formats::metrics::MetricsSnapshot;
use formats::report::{RunReport, ShardInfo};
use loadgen::metrics::Recorder;
use serde_json::Value;

/// A deterministic spread of latencies (xorshift), 1 µs .. ~100 s.
fn values(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Log-uniform-ish: a random magnitude, then a random mantissa.
            let mag = 1 + (x % 8);
            1 + (x >> 8) % 10u64.pow(mag as u32)
        })
        .collect()
}

#[test]
fn merging_serialized_histograms_equals_recording_everything_in_one() {
    let (a_vals, b_vals) = (values(7, 50_000), values(11, 30_000));
    let (mut a, mut b, mut all) = (new_histogram(), new_histogram(), new_histogram());
    for v in &a_vals {
        a.record(*v).unwrap();
        all.record(*v).unwrap();
    }
    for v in &b_vals {
        b.record(*v).unwrap();
        all.record(*v).unwrap();
    }
    let mut merged = decode_histogram(&encode_histogram(&a)).unwrap();
    merged
        .add(decode_histogram(&encode_histogram(&b)).unwrap())
        .unwrap();
    assert_eq!(merged, all);
    assert_eq!(merged.len(), 80_000);
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q));
    }
}

fn report_of(snap: &MetricsSnapshot, series_t: u64) -> RunReport {
    let text = format!(
        r#"{{
  "version": 2, "tool": "loadgen test", "target": "http://127.0.0.1:1",
  "scenario": {{"name": "t", "file": "t.toml", "hash": "0123456789abcdef"}},
  "startedAt": "2025-01-01T00:00:0{series_t}.000Z", "endedAt": "2025-01-01T00:00:09.000Z",
  "durationMs": 4000, "machine": {{"hostname": "h", "os": "linux-x86_64", "cpus": 2}},
  "shard": null, "workers": 1, "clients": 5, "complete": true, "abortReason": null,
  "histograms": {{}}, "counters": {{}},
  "series": [{{"t": {series_t}, "connected": 5, "sent": 3, "received": 4, "errors": 0, "p99Us": 10}}],
  "thresholds": []
}}"#
    );
    let mut r = RunReport::from_json(&text).unwrap();
    r.set_metrics(snap);
    r
}

#[test]
fn merging_reports_is_exact() {
    let (ra, rb, rall) = (Recorder::new(), Recorder::new(), Recorder::new());
    for v in values(3, 20_000) {
        ra.latency("ack.x", v);
        rall.latency("ack.x", v);
    }
    for v in values(5, 10_000) {
        rb.latency("ack.x", v);
        rb.latency("fanout.y", v);
        rall.latency("ack.x", v);
        rall.latency("fanout.y", v);
    }
    ra.count("sent.x", 2);
    rb.count("sent.x", 3);
    let a = report_of(&ra.snapshot(), 1);
    let mut b = report_of(&rb.snapshot(), 1);
    b.complete = false;
    b.abort_reason = Some("interrupted".into());
    let merged = RunReport::merge(&[a, b]).unwrap();
    let all = rall.snapshot();
    assert_eq!(
        decode_histogram(&merged.histograms["ack.x"].hdr).unwrap(),
        all.histograms["ack.x"]
    );
    assert_eq!(merged.histograms["ack.x"].count, 30_000);
    assert_eq!(
        merged.histograms["ack.x"].p99_us,
        all.histograms["ack.x"].value_at_quantile(0.99)
    );
    assert_eq!(merged.histograms["fanout.y"].count, 10_000);
    assert_eq!(merged.counters["sent.x"], 5);
    assert_eq!(merged.workers, 2);
    assert_eq!(merged.clients, 10);
    assert!(!merged.complete);
    assert_eq!(merged.abort_reason.as_deref(), Some("interrupted"));
    assert_eq!(merged.series.len(), 1);
    assert_eq!(merged.series[0].connected, 10);
    // The merged report reads back as the same metrics.
    let back = merged.snapshot().unwrap();
    assert_eq!(back.histograms["ack.x"], all.histograms["ack.x"]);
}

#[test]
fn recording_a_million_latencies_from_8_tasks_is_cheap() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let r = Recorder::new();
    let t0 = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|k| {
                let r = r.clone();
                tokio::spawn(async move {
                    for i in 0..125_000u64 {
                        r.latency("ack.quiz:answer_submit", (i * 7 + k) % 500_000 + 1);
                        if i % 256 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let took = t0.elapsed();
    assert_eq!(
        r.snapshot().histograms["ack.quiz:answer_submit"].len(),
        1_000_000
    );
    // Release builds take a few tens of ms; debug builds are ~20x slower.
    let limit = if cfg!(debug_assertions) {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(500)
    };
    eprintln!("1M latencies from 8 tasks: {took:?}");
    assert!(took < limit, "{took:?}");
}

/// A short real run: 4 clients subscribe to a room made in set-up, ask who
/// is online twice, a second apart.
fn tiny() -> String {
    Members {
        name: "schema-check",
        description: "a short real run whose report is checked against the schema",
        room: "schema",
        steps: ASK_TWICE,
        clients: 4,
        hold: "1500ms",
    }
    .toml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_report_matches_the_schema_in_formats() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.toml", &tiny());
    let (server, mut opts, out) = crate::common::against_reference_server(dir.path(), &file).await;
    opts.shard = Some(ShardInfo { index: 1, count: 1 });
    opts.thresholds = vec![
        "ack.presence:get_online.p99 < 5s".into(),
        "reconnect.p99 < 1s".into(),
    ];
    let outcome = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .unwrap();
    server.stop().await.unwrap();
    assert_eq!(
        outcome.exit_code(),
        loadgen::EXIT_THRESHOLD,
        "the reconnect threshold has no samples"
    );

    let (text, report) = crate::common::checked_report(&out);
    assert_eq!(report["histograms"]["connect"]["count"], 4);
    assert!(!report["series"].as_array().unwrap().is_empty());
    assert_eq!(report["thresholds"][1]["actual"], Value::Null);
    assert_eq!(report["shard"]["index"], 1);
    // Every histogram reads back with its count.
    for (name, h) in report["histograms"].as_object().unwrap() {
        let back = decode_histogram(h["hdr"].as_str().unwrap()).unwrap();
        assert_eq!(Some(back.len()), h["count"].as_u64(), "{name}");
    }
    // The typed report reads it back and writes the same JSON.
    let typed = RunReport::from_json(&text).unwrap();
    assert_eq!(typed.to_json(), text);

    // The schema is strict: a missing field, a wrong type or an unknown
    // field is caught.
    let mut broken = report.clone();
    broken.as_object_mut().unwrap().remove("complete");
    assert!(!schema_errors(&broken).is_empty());
    let mut broken = report.clone();
    broken["histograms"]["connect"]["p99Us"] = Value::from("fast");
    assert!(!schema_errors(&broken).is_empty());
    let mut broken = report;
    broken["surprise"] = Value::from(1);
    assert!(!schema_errors(&broken).is_empty());
}
