//! Hand-made loadgen reports, built with the report format's types
//! (`formats`, what loadgen writes through) and written as loadgen writes
//! `report.json`, and a runner for the `reports` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use formats::histogram::new_histogram;
use formats::metrics::{MetricsSnapshot, SecondSample};
use formats::report::{Machine, REPORT_VERSION, RunReport, ScenarioMeta, ShardInfo};
use hdrhistogram::Histogram;

/// A deterministic random source (xorshift64*), so that tests never flake.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A latency in µs: 500 µs plus an exponential of mean 1 ms.
    pub fn latency(&mut self) -> u64 {
        500 + (-self.unit().ln() * 1000.0) as u64
    }
}

/// `n` latencies drawn with `seed`.
pub fn samples(seed: u64, n: usize) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.latency()).collect()
}

/// A loadgen histogram holding `values`.
pub fn hist(values: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for v in values {
        h.record(*v).unwrap();
    }
    h
}

/// What a hand-made report holds.
pub struct Spec {
    pub scenario: &'static str,
    pub hash: &'static str,
    pub histograms: Vec<(&'static str, Vec<u64>)>,
    pub counters: Vec<(&'static str, u64)>,
    pub seconds: u64,
    pub clients: u32,
    pub shard: Option<ShardInfo>,
    /// Per-second connected and sent counts are derived from `clients`,
    /// shifted by `phase` so that shards differ.
    pub phase: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            scenario: "chat",
            hash: "0123456789abcdef",
            histograms: Vec::new(),
            counters: Vec::new(),
            seconds: 10,
            clients: 100,
            shard: None,
            phase: 0,
        }
    }
}

/// The report of `spec`, like loadgen fills it.
pub fn report(spec: &Spec) -> RunReport {
    let mut snap = MetricsSnapshot::default();
    for (name, values) in &spec.histograms {
        snap.histograms.insert((*name).to_owned(), hist(values));
    }
    snap.counters = spec
        .counters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect::<BTreeMap<_, _>>();
    let main = snap.main_latency().map(str::to_owned);
    let series = (1..=spec.seconds)
        .map(|t| SecondSample {
            t,
            connected: (spec.clients as u64 * t.min(3) / 3) as i64,
            sent: 100 + (t * 7 + spec.phase * 13) % 40,
            received: 900 + (t * 11 + spec.phase * 5) % 200,
            errors: (t + spec.phase) % 4 / 3,
            p99_us: main.as_ref().map(|_| 4000 + (t * 37 + spec.phase) % 900),
            cpu_ms: None,
        })
        .collect();
    let mut r = RunReport {
        version: REPORT_VERSION,
        tool: "loadgen 0.1.0".to_owned(),
        label: None,
        target: "http://127.0.0.1:3000".to_owned(),
        scenario: ScenarioMeta {
            name: spec.scenario.to_owned(),
            file: format!("scenarios/{}.toml", spec.scenario),
            hash: spec.hash.to_owned(),
        },
        started_at: "2025-06-01T12:00:00Z".to_owned(),
        ended_at: format!("2025-06-01T12:00:{:02}Z", spec.seconds.min(59)),
        duration_ms: spec.seconds * 1000,
        machine: Machine {
            hostname: "test-host".to_owned(),
            os: "linux-x86_64".to_owned(),
            cpus: 2,
        },
        shard: spec.shard,
        workers: 1,
        clients: spec.clients,
        complete: true,
        abort_reason: None,
        histograms: BTreeMap::new(),
        counters: BTreeMap::new(),
        series,
        thresholds: Vec::new(),
        mismatches: Vec::new(),
        generator: None,
    };
    r.set_metrics(&snap);
    r
}

/// Writes `report` as loadgen does (`report.json` in a directory named
/// `name`) and returns the file.
pub fn write(dir: &Path, name: &str, report: &RunReport) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let file = sub.join("report.json");
    std::fs::write(&file, report.to_json()).unwrap();
    file
}

/// What the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `reports ARGS`.
pub fn reports<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    reports_in(Path::new("."), args)
}

/// Runs `reports ARGS` in the directory `cwd`.
pub fn reports_in<I, S>(cwd: &Path, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_reports"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("the reports binary runs");
    Out {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
