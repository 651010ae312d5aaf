//! What a run measures: HDR latency histograms and counters, recorded from
//! thousands of tasks, merged across workers, and sampled once per second
//! into the report's time series.
//!
//! [`Recorder`] never keeps samples: each metric is one HDR histogram
//! (1 µs to 10 min, 3 significant digits, ~170 KiB whatever the sample
//! count) per shard. A recording thread always uses the same shard (its
//! thread number modulo the shard count), so tasks on different tokio
//! workers rarely meet on a lock; [`Recorder::snapshot`] merges the shards.
//! Metric names are [`formats::names`]; snapshots, the series rows and the
//! histogram bounds are [`formats`]' (what the report holds).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use formats::histogram::new_histogram;
use formats::metrics::{MetricsSnapshot, SecondSample, add_histogram};
use formats::names;
use hdrhistogram::Histogram;

/// Upper bound of the shard count (memory: shards × metrics × ~170 KiB).
const MAX_SHARDS: usize = 16;

/// Records latencies, counters and the live connection gauge of one worker
/// process. Cheap to clone (an `Arc` inside); every clone records into the
/// same metrics. Thread-safe.
///
/// A [`tagged`](Recorder::tagged) recorder (a VU of a group with `tags`)
/// also records every latency and count into each tag's copy of the name
/// (`[KEY=VALUE]NAME`, [`formats::names::tagged`]).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
    /// `[KEY=VALUE]` prefixes, one per tag.
    tags: Arc<[String]>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("shards", &self.inner.shards.len())
            .field("connected", &self.inner.connected.load(Ordering::Relaxed))
            .finish()
    }
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    connected: AtomicI64,
}

#[derive(Default)]
struct Shard {
    histograms: HashMap<String, Histogram<u64>>,
    counters: HashMap<String, u64>,
}

/// Numbers recording threads: a thread keeps its number for its life.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_NO: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_no() -> usize {
    THREAD_NO.with(|n| {
        if n.get() == usize::MAX {
            n.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        n.get()
    })
}

thread_local! {
    /// Where [`with_name`] joins a metric name (one buffer per thread).
    static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Calls `f` with `prefix` + `name`, joined in a per-thread buffer.
fn with_name<R>(prefix: &str, name: &str, f: impl FnOnce(&str) -> R) -> R {
    NAME.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.push_str(prefix);
            buf.push_str(name);
            f(&buf)
        }
        // Only when `f` itself joins a name: not done here, but stay correct.
        Err(_) => f(&format!("{prefix}{name}")),
    })
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder with one shard per available CPU (at most 16).
    pub fn new() -> Recorder {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        Recorder::with_shards(cpus.clamp(1, MAX_SHARDS))
    }

    /// A recorder with `n` shards (at least 1).
    pub fn with_shards(n: usize) -> Recorder {
        let shards = (0..n.max(1))
            .map(|_| Mutex::new(Shard::default()))
            .collect();
        Recorder {
            inner: Arc::new(Inner {
                shards,
                connected: AtomicI64::new(0),
            }),
            tags: Arc::new([]),
        }
    }

    /// The same metrics, each also recorded under every prefix of
    /// `tags` (`[KEY=VALUE]`).
    pub fn tagged(&self, tags: Arc<[String]>) -> Recorder {
        Recorder {
            inner: self.inner.clone(),
            tags,
        }
    }

    fn shard(&self) -> MutexGuard<'_, Shard> {
        let i = thread_no() % self.inner.shards.len();
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.inner.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one latency, in µs, into the histogram named `metric`
    /// (values above 10 min count as 10 min).
    pub fn latency(&self, metric: &str, micros: u64) {
        self.latency_one(metric, micros);
        for t in self.tags.iter() {
            with_name(t, metric, |m| self.latency_one(m, micros));
        }
    }

    fn latency_one(&self, metric: &str, micros: u64) {
        let mut shard = self.shard();
        match shard.histograms.get_mut(metric) {
            Some(h) => h.saturating_record(micros),
            None => {
                let mut h = new_histogram();
                h.saturating_record(micros);
                shard.histograms.insert(metric.to_owned(), h);
            }
        }
    }

    /// [`latency`](Self::latency) into the metric named `prefix` + `name`
    /// (e.g. `fanout.` + the event), without allocating the name each time.
    pub fn latency_of(&self, prefix: &str, name: &str, micros: u64) {
        with_name(prefix, name, |metric| self.latency(metric, micros));
    }

    /// [`count`](Self::count) into the counter named `prefix` + `name`,
    /// without allocating the name each time.
    pub fn count_of(&self, prefix: &str, name: &str, n: u64) {
        with_name(prefix, name, |counter| self.count(counter, n));
    }

    /// Adds `n` to the counter named `counter` (creating it, even with 0).
    pub fn count(&self, counter: &str, n: u64) {
        self.count_one(counter, n);
        for t in self.tags.iter() {
            with_name(t, counter, |c| self.count_one(c, n));
        }
    }

    fn count_one(&self, counter: &str, n: u64) {
        let mut shard = self.shard();
        match shard.counters.get_mut(counter) {
            Some(c) => *c += n,
            None => {
                shard.counters.insert(counter.to_owned(), n);
            }
        }
    }

    /// Changes the number of live connected clients by `delta`.
    pub fn gauge_connected(&self, delta: i64) {
        self.inner.connected.fetch_add(delta, Ordering::Relaxed);
    }

    /// Every metric so far, merged over the shards.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut snap = MetricsSnapshot {
            connected: self.inner.connected.load(Ordering::Relaxed),
            ..MetricsSnapshot::default()
        };
        for shard in self.inner.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (name, h) in &shard.histograms {
                add_histogram(&mut snap.histograms, name, h);
            }
            for (name, n) in &shard.counters {
                *snap.counters.entry(name.clone()).or_default() += n;
            }
        }
        snap
    }
}

/// Turns successive snapshots into [`SecondSample`]s: each sample holds
/// what happened since the previous one.
#[derive(Debug, Default)]
pub struct Sampler {
    prev: Option<MetricsSnapshot>,
    series: Vec<SecondSample>,
}

impl Sampler {
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// Takes the snapshot of the end of second `t` and returns its sample
    /// (also kept for [`Sampler::into_series`]).
    pub fn sample(&mut self, t: u64, snap: MetricsSnapshot) -> SecondSample {
        let empty = MetricsSnapshot::default();
        let prev = self.prev.as_ref().unwrap_or(&empty);
        let p99_us = snap.main_latency().and_then(|name| {
            let mut interval = snap.histograms[name].clone();
            if let Some(before) = prev.histograms.get(name) {
                // `before` is a subset of `interval`: subtracting cannot fail.
                interval.subtract(before).ok()?;
            }
            (!interval.is_empty()).then(|| interval.value_at_quantile(0.99))
        });
        let sample = SecondSample {
            t,
            connected: snap.connected,
            sent: snap.sent().saturating_sub(prev.sent()),
            received: snap.received().saturating_sub(prev.received()),
            errors: snap.errors().saturating_sub(prev.errors()),
            p99_us,
            cpu_ms: snap
                .counters
                .get(names::GENERATOR_CPU_MS)
                .map(|ms| ms.saturating_sub(prev.counter(names::GENERATOR_CPU_MS))),
        };
        self.series.push(sample.clone());
        self.prev = Some(snap);
        sample
    }

    /// The last snapshot taken.
    pub fn last(&self) -> Option<&MetricsSnapshot> {
        self.prev.as_ref()
    }

    /// The samples so far.
    pub fn series(&self) -> &[SecondSample] {
        &self.series
    }

    pub fn into_series(self) -> Vec<SecondSample> {
        self.series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_snapshots() {
        let r = Recorder::with_shards(3);
        r.latency("ack.x", 100);
        r.latency("ack.x", 200);
        r.latency("connect", 5);
        r.count("sent.x", 2);
        r.count("errors.timeout", 0);
        r.gauge_connected(3);
        r.gauge_connected(-1);
        let s = r.snapshot();
        assert_eq!(s.histograms["ack.x"].len(), 2);
        assert_eq!(s.counters["sent.x"], 2);
        assert_eq!(s.counters["errors.timeout"], 0);
        assert_eq!(s.connected, 2);
        assert_eq!(s.main_latency(), Some("ack.x"));
    }

    #[test]
    fn a_tagged_recorder_also_records_each_tag_copy() {
        let r = Recorder::with_shards(2);
        let eu = r.tagged(vec!["[region=eu]".to_owned(), "[tier=free]".to_owned()].into());
        eu.count_of("received.", "a", 2);
        eu.latency("ack.x", 7);
        r.count("received.a", 1);
        let s = r.snapshot();
        assert_eq!(s.counters["received.a"], 3);
        assert_eq!(s.counters["[region=eu]received.a"], 2);
        assert_eq!(s.counters["[tier=free]received.a"], 2);
        assert_eq!(s.histograms["ack.x"].len(), 1);
        assert_eq!(s.histograms["[region=eu]ack.x"].len(), 1);
        assert_eq!(s.received(), 3, "the copies are not summed");
    }

    #[test]
    fn joined_names_are_the_same_metrics() {
        let r = Recorder::with_shards(2);
        r.count_of("received.", "a", 2);
        r.count("received.a", 1);
        r.latency_of("fanout.", "a", 7);
        r.latency("fanout.a", 9);
        let s = r.snapshot();
        assert_eq!(s.counters["received.a"], 3);
        assert_eq!(s.histograms["fanout.a"].len(), 2);
        assert_eq!(s.counters.len(), 1);
    }

    #[test]
    fn shards_from_many_threads_merge() {
        let r = Recorder::with_shards(4);
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let r = r.clone();
                scope.spawn(move || {
                    for i in 0..1000 {
                        r.latency("m", t * 1000 + i + 1);
                        r.count("c", 1);
                    }
                });
            }
        });
        let s = r.snapshot();
        assert_eq!(s.histograms["m"].len(), 8000);
        assert_eq!(s.counters["c"], 8000);
        assert_eq!(
            s.histograms["m"].max(),
            s.histograms["m"].highest_equivalent(8000)
        );
    }

    #[test]
    fn merge_adds_everything() {
        let a = Recorder::new();
        let b = Recorder::new();
        a.latency("m", 10);
        b.latency("m", 20);
        b.latency("n", 30);
        a.count("c", 1);
        b.count("c", 2);
        a.gauge_connected(1);
        b.gauge_connected(2);
        let mut s = a.snapshot();
        s.merge(&b.snapshot());
        assert_eq!(s.histograms["m"].len(), 2);
        assert_eq!(s.histograms["n"].len(), 1);
        assert_eq!(s.counters["c"], 3);
        assert_eq!(s.connected, 3);
    }

    #[test]
    fn huge_values_saturate() {
        use formats::histogram::HIST_HIGH_US;
        let r = Recorder::new();
        r.latency("m", u64::MAX);
        r.latency("m", 0);
        let s = r.snapshot();
        assert_eq!(s.histograms["m"].len(), 2);
        assert!(s.histograms["m"].max() >= HIST_HIGH_US);
    }

    #[test]
    fn sampler_reports_deltas_and_interval_p99() {
        let r = Recorder::new();
        let mut sampler = Sampler::new();
        r.count("sent.a", 5);
        r.count("received.a", 7);
        r.count("errors.timeout", 1);
        r.latency("ack.a", 1000);
        let s1 = sampler.sample(1, r.snapshot());
        assert_eq!((s1.sent, s1.received, s1.errors), (5, 7, 1));
        assert_eq!(s1.p99_us, Some(1000));
        r.count("sent.a", 1);
        r.count("connect_failures", 2);
        r.latency("ack.a", 50);
        let s2 = sampler.sample(2, r.snapshot());
        assert_eq!((s2.sent, s2.received, s2.errors), (1, 0, 2));
        assert_eq!(s2.p99_us, Some(50));
        assert_eq!(s2.cpu_ms, None, "no CPU counted: not measured");
        r.count(names::GENERATOR_CPU_MS, 700);
        let s3 = sampler.sample(3, r.snapshot());
        assert_eq!(s3.p99_us, None);
        assert_eq!(s3.cpu_ms, Some(700));
        assert_eq!(sampler.into_series().len(), 3);
    }
}
