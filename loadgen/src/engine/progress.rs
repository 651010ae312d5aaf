//! The live progress line (indicatif, stderr, refreshed once per second):
//! clients connected / target, messages per second out and in, errors, the
//! p99 of the main latency, and the current phase.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use formats::metrics::MetricsSnapshot;

/// A progress line on stderr. Nothing is drawn when stderr is not a
/// terminal. Create one per run; the engine updates it once per second
/// while `run` runs (a parent merging its workers' snapshots can call
/// [`update`](Self::update) itself).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    target_clients: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    phase: String,
    prev: Option<(Instant, u64, u64)>,
}

impl Progress {
    /// A progress line for a run of `target_clients` clients at peak.
    pub fn new(target_clients: u32) -> Progress {
        Self::with_target(target_clients, ProgressDrawTarget::stderr_with_hz(1))
    }

    /// A progress line that draws nothing (tests, `--quiet`).
    pub fn hidden(target_clients: u32) -> Progress {
        Self::with_target(target_clients, ProgressDrawTarget::hidden())
    }

    fn with_target(target_clients: u32, target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        Progress {
            bar,
            target_clients,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names the current stage (`set-up`, `phase 2/3 hold 30s`, ...).
    pub fn set_phase(&self, phase: impl Into<String>) {
        self.state().phase = phase.into();
    }

    /// The line for the metrics so far (rates from the previous call).
    pub fn update(&self, snap: &MetricsSnapshot) {
        let msg = self.line(snap, Instant::now());
        self.bar.set_message(msg);
        self.bar.tick();
    }

    /// The text [`update`](Self::update) shows.
    pub fn line(&self, snap: &MetricsSnapshot, now: Instant) -> String {
        let (sent, received) = (snap.sent(), snap.received());
        let mut st = self.state();
        let (out_rate, in_rate) = match st.prev {
            Some((at, s, r)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                (
                    sent.saturating_sub(s) as f64 / secs,
                    received.saturating_sub(r) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        st.prev = Some((now, sent, received));
        let mut line = format!(
            "clients {}/{} | out {}/s in {}/s | errors {}",
            snap.connected,
            self.target_clients,
            rate(out_rate),
            rate(in_rate),
            snap.errors()
        );
        if let Some(name) = snap.main_latency()
            && let Some(h) = snap.histograms.get(name)
            && !h.is_empty()
        {
            let p99 = Duration::from_micros(h.value_at_quantile(0.99));
            line.push_str(&format!(" | p99 {name} {}", short(p99)));
        }
        if !st.phase.is_empty() {
            line.push_str(" | ");
            line.push_str(&st.phase);
        }
        line
    }

    /// Prints a line above the progress line.
    pub fn println(&self, msg: impl AsRef<str>) {
        self.bar.println(msg);
    }

    /// Removes the progress line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn rate(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x >= 1000.0 {
        format!("{:.1}k", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

fn short(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    #[test]
    fn line_shows_clients_rates_errors_latency_phase() {
        let rec = Recorder::new();
        let p = Progress::hidden(100);
        p.set_phase("phase 1/2 ramp");
        let t0 = Instant::now();
        rec.gauge_connected(40);
        rec.count("sent.x", 10);
        rec.count("errors.timeout", 2);
        rec.latency("ack.x", 2500);
        let first = p.line(&rec.snapshot(), t0);
        assert!(first.contains("clients 40/100"), "{first}");
        assert!(first.contains("errors 2"), "{first}");
        assert!(first.contains("p99 ack.x 2.5ms"), "{first}");
        assert!(first.contains("phase 1/2 ramp"), "{first}");
        rec.count("sent.x", 20);
        rec.count("received.y", 5000);
        let second = p.line(&rec.snapshot(), t0 + Duration::from_secs(2));
        assert!(second.contains("out 10/s in 2.5k/s"), "{second}");
        p.finish();
    }
}
