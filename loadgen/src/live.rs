//! Live metrics during a run: a Prometheus text exposition at
//! `http://ADDR/metrics` (`loadgen run --metrics-listen ADDR`) and OTLP
//! pushes to a collector (`--otlp-endpoint URL`: OTLP/HTTP with the JSON
//! encoding, `POST URL/v1/metrics`). Both render the snapshot the progress
//! line shows, renewed once per second (so they cost the virtual users
//! nothing: the recorder is not touched at scrape or push time).
//!
//! Families (every one labelled `scenario`):
//! * `loadgen_clients_connected`, `loadgen_clients_target` (gauges);
//! * `loadgen_phase{phase}` (gauge, 1 for the current phase);
//! * `loadgen_sent_total{event}`, `loadgen_received_total{event}`,
//!   `loadgen_errors_total{code}` (with `code="connect_failures"`),
//!   `loadgen_disconnects_total{reason}`, `loadgen_counter_total{name}`
//!   for the other counters (`vus_started`, `reconnects`, ...);
//! * the generator's watch on itself ([`crate::watch`]):
//!   `loadgen_generator_cpu_seconds_total` (counter, user + system) and
//!   `loadgen_generator_cores` (gauge, the cores it may use); its lags
//!   are latency metrics (`generator.timer_lag`, `generator.start_lag`,
//!   and `generator.run_wait`, its wait for a CPU);
//! * `loadgen_latency_seconds{metric}`: a histogram per latency metric
//!   (`connect`, `ack.<event>`, `fanout.<event>`, ...), its buckets counted
//!   exactly from the HDR histogram at fixed bounds ([`BUCKETS`]).
//!
//! The copies a tagged group records (`[KEY=VALUE]NAME`, see
//! [`names::tagged`]) are the series of `NAME` with one more label,
//! `tag="KEY=VALUE"`; the totals carry no `tag` (select them with
//! `tag=""`, or they are counted twice).
//!
//! OTLP carries the same families with dotted names (`loadgen.sent`,
//! `loadgen.errors`, `loadgen.latency`, ...), cumulative sums and
//! explicit-bucket histograms, resource `service.name = loadgen`. It is
//! written with serde_json and sent with reqwest, both already here: the
//! `opentelemetry` crates would add 15 crates (prost, tonic among them)
//! and a second reqwest (see the README for the measurement).
//!
//! The text is written here rather than with `prometheus-client`: its
//! histogram type records observations itself, and every latency would then
//! be recorded twice on the hot path; here the buckets are derived from the
//! histogram the report keeps. With `--workers`, the parent serves the
//! exact merge of its workers' snapshots, which they send it every second.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use formats::metrics::MetricsSnapshot;
use formats::names;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::engine::StopSignal;

/// Upper bounds of the latency buckets, in seconds (then `+Inf`).
pub const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The latest state of a run; [`publish`](Self::publish) renews it, the
/// Prometheus text ([`text`](Self::text)) and the OTLP request
/// ([`otlp_json`](Self::otlp_json)) are rendered from it on demand.
#[derive(Debug)]
pub struct LiveMetrics {
    /// Cores available to the generator.
    cores: u32,
    scenario: String,
    target_clients: u32,
    /// When the run started, ns since the Unix epoch (the start of every
    /// cumulative OTLP point).
    started_ns: u128,
    latest: Mutex<(MetricsSnapshot, String)>,
}

/// One counter family: its Prometheus and OTLP names, the label that
/// tells its series apart, and the series (tag, label value, count).
struct CounterFamily {
    prom: &'static str,
    otlp: &'static str,
    label: &'static str,
    help: &'static str,
    points: Vec<(Option<String>, String, u64)>,
}

/// A metric name's tag and untagged name: `[KEY=VALUE]NAME` gives
/// (`KEY=VALUE`, `NAME`); an untagged name has no tag.
fn untag(name: &str) -> (Option<&str>, &str) {
    match names::split_tag(name) {
        Some((prefix, rest)) => (Some(&prefix[1..prefix.len() - 1]), rest),
        None => (None, name),
    }
}

/// The counters of `snap`, one family per prefix, the rest in
/// `counter` by name; `connect_failures` counts among the errors.
fn counter_families(snap: &MetricsSnapshot) -> Vec<CounterFamily> {
    let mut families = vec![
        CounterFamily {
            prom: "loadgen_sent_total",
            otlp: "loadgen.sent",
            label: "event",
            help: "Messages sent.",
            points: Vec::new(),
        },
        CounterFamily {
            prom: "loadgen_received_total",
            otlp: "loadgen.received",
            label: "event",
            help: "Events received.",
            points: Vec::new(),
        },
        CounterFamily {
            prom: "loadgen_errors_total",
            otlp: "loadgen.errors",
            label: "code",
            help: "Errors by code (connect_failures included).",
            points: vec![(
                None,
                names::CONNECT_FAILURES.to_owned(),
                snap.counter(names::CONNECT_FAILURES),
            )],
        },
        CounterFamily {
            prom: "loadgen_disconnects_total",
            otlp: "loadgen.disconnects",
            label: "reason",
            help: "Disconnections by reason.",
            points: Vec::new(),
        },
        CounterFamily {
            prom: "loadgen_counter_total",
            otlp: "loadgen.counter",
            label: "name",
            help: "Other counters (vus_started, vus_finished, reconnects).",
            points: Vec::new(),
        },
    ];
    let prefixes = [
        names::SENT,
        names::RECEIVED,
        names::ERRORS,
        names::DISCONNECTS,
    ];
    // A tagged group's connect failures count among its errors too.
    let errors = prefixes
        .iter()
        .position(|p| *p == names::ERRORS)
        .expect("the errors family");
    for (full, n) in &snap.counters {
        let (tag, name) = untag(full);
        if name == names::GENERATOR_CPU_MS || (tag.is_none() && name == names::CONNECT_FAILURES) {
            continue;
        }
        let (i, rest) = if name == names::CONNECT_FAILURES {
            (errors, name)
        } else {
            prefixes
                .iter()
                .enumerate()
                .find_map(|(i, p)| name.strip_prefix(p).map(|rest| (i, rest)))
                .unwrap_or((prefixes.len(), name))
        };
        families[i]
            .points
            .push((tag.map(str::to_owned), rest.to_owned(), *n));
    }
    families
}

/// Samples at or below each of [`BUCKETS`] (cumulative), the sum in
/// seconds.
fn buckets(h: &Histogram<u64>) -> (Vec<u64>, f64) {
    if h.is_empty() {
        return (vec![0; BUCKETS.len()], 0.0);
    }
    let counts = BUCKETS
        .iter()
        .map(|le| h.count_between(0, (le * 1e6) as u64))
        .collect();
    (counts, h.mean() * h.len() as f64 / 1e6)
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl LiveMetrics {
    pub fn new(scenario: &str, target_clients: u32) -> Arc<LiveMetrics> {
        Arc::new(LiveMetrics {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            scenario: scenario.to_owned(),
            target_clients,
            started_ns: unix_ns(),
            latest: Mutex::new((MetricsSnapshot::default(), "starting".to_owned())),
        })
    }

    /// Keeps `snap` (cumulative since the start) and `phase`.
    pub fn publish(&self, snap: &MetricsSnapshot, phase: &str) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = (snap.clone(), phase.to_owned());
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, (MetricsSnapshot, String)> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Prometheus text exposition of the latest state.
    pub fn text(&self) -> String {
        let latest = self.latest();
        let (snap, phase) = &*latest;
        let sc = label_value(&self.scenario);
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        for (name, help, value) in [
            (
                "loadgen_clients_connected",
                "Virtual users connected now.",
                snap.connected,
            ),
            (
                "loadgen_clients_target",
                "Virtual users at the peak of the schedule.",
                i64::from(self.target_clients),
            ),
            (
                "loadgen_generator_cores",
                "Cores the generator may use (affinity and cgroup quota included).",
                i64::from(self.cores),
            ),
        ] {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name}{{scenario=\"{sc}\"}} {value}");
        }
        if let Some(ms) = snap.counters.get(names::GENERATOR_CPU_MS) {
            let name = "loadgen_generator_cpu_seconds_total";
            family(
                &mut out,
                name,
                "counter",
                "CPU seconds (user + system) the generator used.",
            );
            let _ = writeln!(out, "{name}{{scenario=\"{sc}\"}} {}", *ms as f64 / 1000.0);
        }
        family(
            &mut out,
            "loadgen_phase",
            "gauge",
            "1 for the stage the run is in.",
        );
        let _ = writeln!(
            out,
            "loadgen_phase{{scenario=\"{sc}\",phase=\"{}\"}} 1",
            label_value(phase)
        );
        let tag_label = |tag: Option<&str>| {
            tag.map(|t| format!("tag=\"{}\",", label_value(t)))
                .unwrap_or_default()
        };
        for f in counter_families(snap) {
            family(&mut out, f.prom, "counter", f.help);
            for (tag, value, n) in &f.points {
                let _ = writeln!(
                    out,
                    "{}{{scenario=\"{sc}\",{}{}=\"{}\"}} {n}",
                    f.prom,
                    tag_label(tag.as_deref()),
                    f.label,
                    label_value(value)
                );
            }
        }
        family(
            &mut out,
            "loadgen_latency_seconds",
            "histogram",
            "Latencies by metric (connect, ack.<event>, fanout.<event>, http.<action>, ...).",
        );
        for (full, h) in &snap.histograms {
            let (tag, metric) = untag(full);
            let labels = format!(
                "scenario=\"{sc}\",{}metric=\"{}\"",
                tag_label(tag),
                label_value(metric)
            );
            let (counts, sum) = buckets(h);
            for (le, n) in BUCKETS.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "loadgen_latency_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "loadgen_latency_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.len()
            );
            let _ = writeln!(out, "loadgen_latency_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "loadgen_latency_seconds_count{{{labels}}} {}", h.len());
        }
        out
    }

    /// The latest state as an OTLP/HTTP JSON `ExportMetricsServiceRequest`:
    /// the same families as the exposition (dots for underscores, no
    /// `_total`), cumulative from the run's start; the resource says
    /// `service.name = loadgen`.
    pub fn otlp_json(&self) -> String {
        let latest = self.latest();
        let (snap, phase) = &*latest;
        let now = unix_ns().to_string();
        let start = self.started_ns.to_string();
        let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
        let sc = attr("scenario", &self.scenario);
        let gauge = |name: &str, unit: &str, value: i64, attrs: Vec<Value>| {
            json!({"name": name, "unit": unit, "gauge": {"dataPoints": [
                {"asInt": value.to_string(), "timeUnixNano": now, "attributes": attrs}
            ]}})
        };
        let mut metrics = vec![
            gauge(
                "loadgen.clients.connected",
                "{client}",
                snap.connected,
                vec![sc.clone()],
            ),
            gauge(
                "loadgen.clients.target",
                "{client}",
                i64::from(self.target_clients),
                vec![sc.clone()],
            ),
            gauge(
                "loadgen.generator.cores",
                "{cpu}",
                i64::from(self.cores),
                vec![sc.clone()],
            ),
            gauge(
                "loadgen.phase",
                "1",
                1,
                vec![sc.clone(), attr("phase", phase)],
            ),
        ];
        if let Some(ms) = snap.counters.get(names::GENERATOR_CPU_MS) {
            metrics.push(
                json!({"name": "loadgen.generator.cpu", "unit": "s", "sum": {
                "aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
                    {"asDouble": *ms as f64 / 1000.0, "startTimeUnixNano": start,
                     "timeUnixNano": now, "attributes": [sc.clone()]}]}}),
            );
        }
        for f in counter_families(snap) {
            let points: Vec<Value> = f
                .points
                .iter()
                .map(|(tag, v, n)| {
                    let mut attrs = vec![sc.clone()];
                    attrs.extend(tag.as_deref().map(|t| attr("tag", t)));
                    attrs.push(attr(f.label, v));
                    json!({"asInt": n.to_string(), "startTimeUnixNano": start,
                        "timeUnixNano": now, "attributes": attrs})
                })
                .collect();
            metrics.push(json!({"name": f.otlp, "unit": "1", "sum": {
                "aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points}}));
        }
        let points: Vec<Value> = snap
            .histograms
            .iter()
            .map(|(full, h)| {
                let (tag, metric) = untag(full);
                let mut attrs = vec![sc.clone()];
                attrs.extend(tag.map(|t| attr("tag", t)));
                attrs.push(attr("metric", metric));
                let (cumulative, sum) = buckets(h);
                let mut counts = Vec::with_capacity(BUCKETS.len() + 1);
                let mut below = 0;
                for c in cumulative.into_iter().chain([h.len()]) {
                    counts.push((c - below).to_string());
                    below = c;
                }
                let mut p = json!({"startTimeUnixNano": start, "timeUnixNano": now,
                    "attributes": attrs,
                    "count": h.len().to_string(), "sum": sum,
                    "bucketCounts": counts, "explicitBounds": BUCKETS});
                if !h.is_empty() {
                    p["min"] = json!(h.min() as f64 / 1e6);
                    p["max"] = json!(h.max() as f64 / 1e6);
                }
                p
            })
            .collect();
        metrics.push(
            json!({"name": "loadgen.latency", "unit": "s", "histogram": {
            "aggregationTemporality": 2, "dataPoints": points}}),
        );
        json!({"resourceMetrics": [{
            "resource": {"attributes": [attr("service.name", "loadgen"), attr("service.version", crate::VERSION)]},
            "scopeMetrics": [{"scope": {"name": "loadgen", "version": crate::VERSION}, "metrics": metrics}]
        }]})
        .to_string()
    }
}

/// Pushes [`LiveMetrics::otlp_json`] to `{endpoint}/v1/metrics` every
/// `every` until `done`, then once more (the final numbers). A failed push
/// is said once on stderr; the run goes on.
pub async fn export_otlp(
    endpoint: String,
    live: Arc<LiveMetrics>,
    every: Duration,
    done: StopSignal,
) {
    let url = format!("{}/v1/metrics", endpoint.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut warned = false;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            () = done.stopped() => true,
        };
        let sent = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(live.otlp_json())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = sent
            && !std::mem::replace(&mut warned, true)
        {
            eprintln!("loadgen: OTLP export to {url} failed (said once): {e}");
        }
        if last {
            return;
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `live` at `http://ADDR/metrics` until the returned task is
/// aborted; returns the bound address (`ADDR` may have port 0).
pub async fn serve(
    addr: SocketAddr,
    live: Arc<LiveMetrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let live = live.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    live.text(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    #[test]
    fn exposition_has_gauges_counters_and_exact_buckets() {
        let rec = Recorder::new();
        rec.gauge_connected(3);
        rec.count("sent.quiz:answer_submit", 7);
        rec.count("errors.timeout", 2);
        rec.count(names::CONNECT_FAILURES, 1);
        rec.count(names::VUS_STARTED, 4);
        rec.count(names::GENERATOR_CPU_MS, 1250);
        rec.latency(names::GENERATOR_TIMER_LAG, 700);
        for us in [400, 900, 3000, 2_000_000] {
            rec.latency("ack.x", us);
        }
        rec.latency(&names::tagged("region", "eu", "ack.x"), 900);
        rec.count(&names::tagged("region", "eu", "sent.quiz:answer_submit"), 3);
        rec.count(&names::tagged("region", "eu", names::CONNECT_FAILURES), 1);
        let live = LiveMetrics::new("quiz \"burst\"", 10);
        live.publish(&rec.snapshot(), "phase 1/2 ramp");
        let t = live.text();
        for line in [
            "loadgen_clients_connected{scenario=\"quiz \\\"burst\\\"\"} 3",
            "loadgen_clients_target{scenario=\"quiz \\\"burst\\\"\"} 10",
            "phase=\"phase 1/2 ramp\"} 1",
            "loadgen_sent_total{scenario=\"quiz \\\"burst\\\"\",event=\"quiz:answer_submit\"} 7",
            ",code=\"timeout\"} 2",
            ",code=\"connect_failures\"} 1",
            ",name=\"vus_started\"} 4",
            "metric=\"ack.x\",le=\"0.0005\"} 1",
            "metric=\"ack.x\",le=\"0.001\"} 2",
            "metric=\"ack.x\",le=\"0.005\"} 3",
            "metric=\"ack.x\",le=\"1\"} 3",
            "metric=\"ack.x\",le=\"2.5\"} 4",
            "metric=\"ack.x\",le=\"+Inf\"} 4",
            "loadgen_latency_seconds_count{scenario=\"quiz \\\"burst\\\"\",metric=\"ack.x\"} 4",
            "loadgen_generator_cpu_seconds_total{scenario=\"quiz \\\"burst\\\"\"} 1.25",
            "metric=\"generator.timer_lag\",le=\"0.001\"} 1",
            // A tagged group's copies: the same series, one more label.
            "loadgen_sent_total{scenario=\"quiz \\\"burst\\\"\",tag=\"region=eu\",event=\"quiz:answer_submit\"} 3",
            ",tag=\"region=eu\",code=\"connect_failures\"} 1",
            ",tag=\"region=eu\",metric=\"ack.x\",le=\"0.001\"} 1",
            ",tag=\"region=eu\",metric=\"ack.x\"} 1",
        ] {
            assert!(t.contains(line), "{line} not in\n{t}");
        }
        assert!(t.contains("# TYPE loadgen_latency_seconds histogram"));
        assert!(!t.contains("name=\"connect_failures\""), "{t}");
        assert!(!t.contains("name=\"generator.cpu_ms\""), "{t}");
        assert!(t.contains("\nloadgen_generator_cores{scenario="), "{t}");
        assert!(!t.contains("[region=eu]"), "{t}");
        let otlp: Value = serde_json::from_str(&live.otlp_json()).unwrap();
        let metrics = &otlp["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        let latency = metrics
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "loadgen.latency")
            .unwrap();
        let tagged: Vec<&Value> = latency["histogram"]["dataPoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["attributes"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"key": "tag", "value": {"stringValue": "region=eu"}}))
            })
            .collect();
        assert_eq!(tagged.len(), 1, "{latency}");
        assert_eq!(tagged[0]["count"], "1");
        assert!(
            tagged[0]["attributes"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "metric", "value": {"stringValue": "ack.x"}}))
        );
    }

    /// Every series the shipped Grafana dashboard queries is one the
    /// exposition writes.
    #[test]
    fn the_dashboard_queries_only_families_that_exist() {
        let dashboard = include_str!("../../deploy/grafana/loadgen-dashboard.json");
        let rec = Recorder::new();
        rec.latency("connect", 1000);
        let live = LiveMetrics::new("s", 1);
        live.publish(&rec.snapshot(), "p");
        let text = live.text();
        let mut seen = 0;
        for (i, _) in dashboard.match_indices("loadgen_") {
            let name: String = dashboard[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name == "loadgen_" {
                continue; // the uid `loadgen-live`, the title
            }
            seen += 1;
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name}{{"))
                    || l.starts_with(&format!("# TYPE {name} "))),
                "{name} is not in the exposition:\n{text}"
            );
        }
        assert!(seen >= 8, "{seen}");
        // Counters and histograms hold tagged copies beside the totals:
        // every query of them picks one or the other.
        let mut exprs = 0;
        for (i, _) in dashboard.match_indices("\"expr\": \"") {
            let expr = &dashboard[i + 9..];
            let expr = &expr[..expr.find("\",\n").unwrap()];
            let gauges = ["loadgen_clients_", "loadgen_phase"];
            if !gauges.iter().any(|g| expr.contains(g)) {
                exprs += 1;
                assert!(
                    expr.contains("tag=\\\"\\\"") || expr.contains("tag!=\\\"\\\""),
                    "{expr}"
                );
            }
        }
        assert!(exprs >= 8, "{exprs}");
    }
}
