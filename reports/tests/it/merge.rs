//! `reports merge`: exact, and refuses different scenarios unless forced.

use crate::common::{Spec, hist, report, reports, samples, write};
use formats::histogram::decode_histogram;
use formats::report::ShardInfo;
use formats::threshold::ThresholdResult;
use reports::model;

fn shard(i: u32, values: Vec<u64>, fanout: Vec<u64>) -> Spec {
    Spec {
        histograms: vec![("ack.chat:send", values), ("fanout.chat:message", fanout)],
        counters: vec![
            ("sent.chat:send", 1000 + i as u64),
            ("received.chat:message", 20_000 + i as u64 * 3),
            ("errors.timeout", i as u64),
            ("vus_started", 100),
        ],
        clients: 100 + i,
        shard: Some(ShardInfo {
            index: i + 1,
            count: 3,
        }),
        phase: i as u64,
        seconds: 10 + i as u64,
        ..Spec::default()
    }
}

#[test]
fn merge_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let all = samples(7, 30_000);
    let fan = samples(8, 9_000);
    let parts: Vec<_> = (0..3u32)
        .map(|i| {
            let s = shard(
                i,
                all[i as usize * 10_000..(i as usize + 1) * 10_000].to_vec(),
                fan[i as usize * 3_000..(i as usize + 1) * 3_000].to_vec(),
            );
            report(&s)
        })
        .collect();
    let files: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, r)| write(dir.path(), &format!("shard{i}"), r))
        .collect();
    let out_file = dir.path().join("all.json");
    let out = reports(
        [
            "merge".as_ref(),
            files[0].as_os_str(),
            files[1].as_os_str(),
            files[2].as_os_str(),
        ]
        .into_iter()
        .chain(["-o".as_ref(), out_file.as_os_str()]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("merged 3 reports"), "{}", out.stderr);

    // Read back through the checks of `model` (schema, types, histograms).
    let merged = match model::load(&out_file).unwrap() {
        model::Input::Load(r) => *r,
        _ => panic!("not a loadgen report"),
    };
    let r = &merged.report;

    // Histograms: the merge equals one histogram that recorded everything.
    let direct = hist(&all);
    let m = &merged.metrics.histograms["ack.chat:send"];
    assert_eq!(m, &direct);
    assert_eq!(m.len(), 30_000);
    for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
        assert_eq!(m.value_at_quantile(q), direct.value_at_quantile(q), "q {q}");
    }
    let s = &r.histograms["ack.chat:send"];
    assert_eq!(
        (
            s.count, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us, s.min_us
        ),
        (
            30_000,
            direct.value_at_quantile(0.5),
            direct.value_at_quantile(0.9),
            direct.value_at_quantile(0.99),
            direct.value_at_quantile(0.999),
            direct.max(),
            direct.min()
        )
    );
    assert_eq!(decode_histogram(&s.hdr).unwrap(), direct);
    assert_eq!(merged.metrics.histograms["fanout.chat:message"], hist(&fan));

    // Counters summed, clients summed, shards covered.
    assert_eq!(r.counters["sent.chat:send"], 3003);
    assert_eq!(r.counters["received.chat:message"], 60_009);
    assert_eq!(r.counters["errors.timeout"], 3);
    assert_eq!(r.clients, 303);
    assert_eq!(r.workers, 3);
    assert_eq!(r.shard, None, "all three shards: the whole run");
    assert_eq!(r.duration_ms, 12_000);

    // Series aligned by second: every second sums the parts that had it.
    assert_eq!(r.series.len(), 12);
    for s in &r.series {
        let at: Vec<_> = parts
            .iter()
            .filter_map(|p| p.series.iter().find(|x| x.t == s.t))
            .collect();
        assert_eq!(s.sent, at.iter().map(|x| x.sent).sum::<u64>(), "t {}", s.t);
        assert_eq!(s.received, at.iter().map(|x| x.received).sum::<u64>());
        assert_eq!(s.connected, at.iter().map(|x| x.connected).sum::<i64>());
        assert_eq!(s.errors, at.iter().map(|x| x.errors).sum::<u64>());
    }
    assert_eq!(r.series[11].connected, 102, "only shard 2 ran 12 s");

    // The merged report compares with the direct recording as `same`.
    let direct_report = report(&Spec {
        histograms: vec![("ack.chat:send", all.clone()), ("fanout.chat:message", fan)],
        seconds: 12,
        ..Spec::default()
    });
    let direct_file = write(dir.path(), "direct", &direct_report);
    let cmp = reports([
        "compare".as_ref(),
        direct_file.as_os_str(),
        out_file.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&cmp.stdout).unwrap();
    let ack = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ack.chat:send")
        .unwrap();
    for s in ack["stats"].as_array().unwrap() {
        if s["stat"].as_str().unwrap().starts_with('p') || s["stat"] == "max" {
            assert_eq!(s["delta"], 0.0, "{s}");
        }
    }
}

#[test]
fn missing_shards_and_thresholds_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = report(&shard(0, samples(1, 2000), samples(2, 100)));
    let b = report(&shard(2, samples(3, 2000), samples(4, 100)));
    a.thresholds = vec![ThresholdResult {
        expr: "ack.chat:send.count >= 3000".to_owned(),
        actual: Some(2000.0),
        passed: false,
    }];
    let fa = write(dir.path(), "a", &a);
    let fb = write(dir.path(), "b", &b);
    let all = dir.path().join("all.json");
    let out = reports([
        "merge".as_ref(),
        fa.as_os_str(),
        fb.as_os_str(),
        "-o".as_ref(),
        all.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("shard 2 of 3 missing"),
        "{}",
        out.stderr
    );
    let merged = model::load_run(&all).unwrap();
    assert_eq!(merged.report.thresholds.len(), 1);
    let t = &merged.report.thresholds[0];
    assert_eq!(
        (t.actual, t.passed),
        (Some(4000.0), true),
        "re-evaluated on the merge"
    );
}

#[test]
fn different_scenarios_need_force() {
    let dir = tempfile::tempdir().unwrap();
    let a = report(&Spec {
        histograms: vec![("connect", samples(1, 500))],
        ..Spec::default()
    });
    let b = report(&Spec {
        scenario: "quiz",
        hash: "fedcba9876543210",
        histograms: vec![("connect", samples(2, 500))],
        ..Spec::default()
    });
    let c = report(&Spec {
        hash: "1111111111111111",
        histograms: vec![("connect", samples(3, 500))],
        ..Spec::default()
    });
    let (fa, fb, fc) = (
        write(dir.path(), "a", &a),
        write(dir.path(), "b", &b),
        write(dir.path(), "c", &c),
    );
    let all = dir.path().join("all.json");
    let merge = |x: &std::path::Path, y: &std::path::Path, force: bool| {
        let mut args = vec![
            "merge".as_ref(),
            x.as_os_str(),
            y.as_os_str(),
            "-o".as_ref(),
            all.as_os_str(),
        ];
        if force {
            args.push("--force".as_ref());
        }
        reports(args)
    };

    let out = merge(&fa, &fb, false);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("refusing to merge reports of different scenarios"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`chat`") && out.stderr.contains("`quiz`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert!(!all.exists(), "nothing written on refusal");

    // Same name, different file: a changed scenario is refused too.
    let out = merge(&fa, &fc, false);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("1111111111111111"), "{}", out.stderr);

    let out = merge(&fa, &fb, true);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("warning: merging different scenarios"),
        "{}",
        out.stderr
    );
    let merged = model::load_run(&all).unwrap();
    assert_eq!(merged.metrics.histograms["connect"].len(), 1000);
    assert_eq!(merged.report.scenario.name, "chat");
}

#[test]
fn merge_takes_loadgen_reports_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a",
        &report(&Spec {
            histograms: vec![("connect", samples(1, 10))],
            ..Spec::default()
        }),
    );
    let c = dir.path().join("conformance.json");
    std::fs::write(
        &c,
        r#"{"version":1,"tool":"conformance 0.1.0","target":"x","cases":[]}"#,
    )
    .unwrap();
    let out = reports([
        "merge".as_ref(),
        a.as_os_str(),
        c.as_os_str(),
        "-o".as_ref(),
        dir.path().join("all.json").as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("is a conformance result"),
        "{}",
        out.stderr
    );
}
