//! The live progress line (indicatif, stderr, refreshed once per second):
//! clients connected / target, messages per second out and in, errors, the
//! p99 of the main latency, the generator's own CPU (percent of one core
//! and of the cores it has) and timer lag p99 ([`crate::watch`]), and the
//! current phase. When stderr is not a
//! terminal (a CI log), the same line is printed as a plain line every
//! `--progress-interval` (k6 style), so a log shows the run as it goes.
//! Each update also renews the `--metrics-listen` exposition
//! ([`crate::live`]), which therefore sees what the line sees.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use formats::metrics::MetricsSnapshot;
use formats::names;

use crate::live::LiveMetrics;

/// Default period of the plain progress lines (stderr not a terminal).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// A progress line on stderr. Nothing is drawn when stderr is not a
/// terminal. Create one per run; the engine updates it once per second
/// while `run` runs (a parent merging its workers' snapshots can call
/// [`update`](Self::update) itself).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    target_clients: u32,
    state: Mutex<State>,
    /// Plain lines every this long (stderr not a terminal).
    plain_every: Option<Duration>,
    live: Option<Arc<LiveMetrics>>,
    started: Instant,
    /// Cores available to the generator (its CPU's denominator).
    cores: u32,
}

#[derive(Debug, Default)]
struct State {
    phase: String,
    /// When, and the sent, received and CPU ms totals then.
    prev: Option<(Instant, u64, u64, u64)>,
    /// When the last plain line was printed.
    printed: Option<Instant>,
}

impl Progress {
    /// A progress line for a run of `target_clients` clients at peak: on
    /// a terminal, redrawn in place; otherwise a plain line every
    /// [`DEFAULT_PROGRESS_INTERVAL`].
    pub fn new(target_clients: u32) -> Progress {
        Self::for_run(target_clients, false, DEFAULT_PROGRESS_INTERVAL, None)
    }

    /// The progress of a run: nothing drawn when `quiet`; plain lines every
    /// `interval` when stderr is not a terminal; each update renews `live`.
    pub fn for_run(
        target_clients: u32,
        quiet: bool,
        interval: Duration,
        live: Option<Arc<LiveMetrics>>,
    ) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let mut p = if quiet || !terminal {
            Self::with_target(target_clients, ProgressDrawTarget::hidden())
        } else {
            Self::with_target(target_clients, ProgressDrawTarget::stderr_with_hz(1))
        };
        p.plain_every = (!quiet && !terminal).then_some(interval);
        p.live = live;
        p
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
            plain_every: None,
            live: None,
            started: Instant::now(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
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
        let now = Instant::now();
        let msg = self.line(snap, now);
        if let Some(live) = &self.live {
            live.publish(snap, &self.state().phase);
        }
        if let Some(every) = self.plain_every {
            let mut st = self.state();
            if st.printed.is_none_or(|at| now.duration_since(at) >= every) {
                st.printed = Some(now);
                let secs = now.duration_since(self.started).as_secs();
                eprintln!("[{:>2}m{:02}s] {msg}", secs / 60, secs % 60);
            }
            return;
        }
        self.bar.set_message(msg);
        self.bar.tick();
    }

    /// The text [`update`](Self::update) shows.
    pub fn line(&self, snap: &MetricsSnapshot, now: Instant) -> String {
        let (sent, received) = (snap.sent(), snap.received());
        let cpu = snap.counters.get(names::GENERATOR_CPU_MS).copied();
        let mut st = self.state();
        let (out_rate, in_rate, cpu_pct) = match st.prev {
            Some((at, s, r, c)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                (
                    sent.saturating_sub(s) as f64 / secs,
                    received.saturating_sub(r) as f64 / secs,
                    cpu.map(|ms| ms.saturating_sub(c) as f64 / 10.0 / secs),
                )
            }
            None => (0.0, 0.0, None),
        };
        st.prev = Some((now, sent, received, cpu.unwrap_or(0)));
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
        if let Some(pct) = cpu_pct {
            line.push_str(&format!(
                " | gen cpu {pct:.0}% ({:.0}% of {})",
                pct / f64::from(self.cores),
                self.cores
            ));
        }
        if let Some(h) = snap.histograms.get(names::GENERATOR_TIMER_LAG)
            && !h.is_empty()
        {
            let p99 = Duration::from_micros(h.value_at_quantile(0.99));
            line.push_str(&format!(" lag p99 {}", short(p99)));
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
        assert!(!first.contains("gen cpu"), "{first}");
        rec.count("sent.x", 20);
        rec.count("received.y", 5000);
        rec.count(names::GENERATOR_CPU_MS, 3000);
        rec.latency(names::GENERATOR_TIMER_LAG, 1500);
        let second = p.line(&rec.snapshot(), t0 + Duration::from_secs(2));
        assert!(second.contains("out 10/s in 2.5k/s"), "{second}");
        let cores = p.cores as f64;
        let gen_part = format!(
            " | gen cpu 150% ({:.0}% of {}) lag p99 1.5ms",
            150.0 / cores,
            p.cores
        );
        assert!(second.contains(&gen_part), "{second}");
        p.finish();
    }
}
