//! Live metrics during a run (`loadgen run --metrics-listen ADDR`): a
//! Prometheus text exposition at `http://ADDR/metrics`, refreshed once per
//! second from the same snapshot the progress line shows (so it costs the
//! virtual users nothing: the recorder is not touched at scrape time).
//!
//! Families (every one labelled `scenario`):
//! * `loadgen_clients_connected`, `loadgen_clients_target` (gauges);
//! * `loadgen_phase{phase}` (gauge, 1 for the current phase);
//! * `loadgen_sent_total{event}`, `loadgen_received_total{event}`,
//!   `loadgen_errors_total{code}` (with `code="connect_failures"`),
//!   `loadgen_disconnects_total{reason}`, `loadgen_counter_total{name}`
//!   for the other counters (`vus_started`, `reconnects`, ...);
//! * `loadgen_latency_seconds{metric}`: a histogram per latency metric
//!   (`connect`, `ack.<event>`, `fanout.<event>`, ...), its buckets counted
//!   exactly from the HDR histogram at fixed bounds ([`BUCKETS`]).
//!
//! The text is written here rather than with `prometheus-client`: its
//! histogram type records observations itself, and every latency would then
//! be recorded twice on the hot path; here the buckets are derived from the
//! histogram the report keeps. With `--workers`, the parent only has its
//! workers' totals: the counters and gauges, no latency histograms.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use formats::metrics::MetricsSnapshot;
use formats::names;

/// Upper bounds of the latency buckets, in seconds (then `+Inf`).
pub const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The latest exposition of a run; [`publish`](Self::publish) renews it.
#[derive(Debug)]
pub struct LiveMetrics {
    scenario: String,
    target_clients: u32,
    text: Mutex<String>,
}

impl LiveMetrics {
    pub fn new(scenario: &str, target_clients: u32) -> Arc<LiveMetrics> {
        let live = LiveMetrics {
            scenario: scenario.to_owned(),
            target_clients,
            text: Mutex::new(String::new()),
        };
        live.publish(&MetricsSnapshot::default(), "starting");
        Arc::new(live)
    }

    /// Renders `snap` (cumulative since the start) and `phase`.
    pub fn publish(&self, snap: &MetricsSnapshot, phase: &str) {
        let text = self.render(snap, phase);
        *self.text.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    /// The latest exposition.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn render(&self, snap: &MetricsSnapshot, phase: &str) -> String {
        let sc = label_value(&self.scenario);
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "loadgen_clients_connected",
            "gauge",
            "Virtual users connected now.",
        );
        let _ = writeln!(
            out,
            "loadgen_clients_connected{{scenario=\"{sc}\"}} {}",
            snap.connected
        );
        family(
            &mut out,
            "loadgen_clients_target",
            "gauge",
            "Virtual users at the peak of the schedule.",
        );
        let _ = writeln!(
            out,
            "loadgen_clients_target{{scenario=\"{sc}\"}} {}",
            self.target_clients
        );
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

        // Counters, one family per prefix.
        let families: [(&str, &str, &str, &str); 4] = [
            (names::SENT, "loadgen_sent_total", "event", "Messages sent."),
            (
                names::RECEIVED,
                "loadgen_received_total",
                "event",
                "Events received.",
            ),
            (
                names::ERRORS,
                "loadgen_errors_total",
                "code",
                "Errors by code (connect_failures included).",
            ),
            (
                names::DISCONNECTS,
                "loadgen_disconnects_total",
                "reason",
                "Disconnections by reason.",
            ),
        ];
        for (prefix, fam, label, help) in families {
            family(&mut out, fam, "counter", help);
            for (name, n) in &snap.counters {
                if let Some(rest) = name.strip_prefix(prefix) {
                    let _ = writeln!(
                        out,
                        "{fam}{{scenario=\"{sc}\",{label}=\"{}\"}} {n}",
                        label_value(rest)
                    );
                }
            }
            if prefix == names::ERRORS {
                let _ = writeln!(
                    out,
                    "{fam}{{scenario=\"{sc}\",{label}=\"{}\"}} {}",
                    names::CONNECT_FAILURES,
                    snap.counter(names::CONNECT_FAILURES)
                );
            }
        }
        family(
            &mut out,
            "loadgen_counter_total",
            "counter",
            "Other counters (vus_started, vus_finished, reconnects).",
        );
        for (name, n) in &snap.counters {
            let prefixed = families.iter().any(|(p, ..)| name.starts_with(p));
            if !prefixed && name != names::CONNECT_FAILURES {
                let _ = writeln!(
                    out,
                    "loadgen_counter_total{{scenario=\"{sc}\",name=\"{}\"}} {n}",
                    label_value(name)
                );
            }
        }

        family(
            &mut out,
            "loadgen_latency_seconds",
            "histogram",
            "Latencies by metric (connect, ack.<event>, fanout.<event>, http.<action>, ...).",
        );
        for (metric, h) in &snap.histograms {
            let labels = format!("scenario=\"{sc}\",metric=\"{}\"", label_value(metric));
            for le in BUCKETS {
                let bound_us = (le * 1e6) as u64;
                let n = if h.is_empty() {
                    0
                } else {
                    h.count_between(0, bound_us)
                };
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
            let sum = if h.is_empty() {
                0.0
            } else {
                h.mean() * h.len() as f64 / 1e6
            };
            let _ = writeln!(out, "loadgen_latency_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "loadgen_latency_seconds_count{{{labels}}} {}", h.len());
        }
        out
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
        for us in [400, 900, 3000, 2_000_000] {
            rec.latency("ack.x", us);
        }
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
        ] {
            assert!(t.contains(line), "{line} not in\n{t}");
        }
        assert!(t.contains("# TYPE loadgen_latency_seconds histogram"));
        assert!(!t.contains("name=\"connect_failures\""), "{t}");
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
    }
}
