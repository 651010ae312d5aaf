//! Server benchmark: memory per connected client and room fan-out, for the
//! reference server and, in the same run, the official Node socket.io 4
//! server doing the same work (`interop/bench-server.mjs`).
//!
//! For each server: start it as a child process on 127.0.0.1:0; connect
//! `--clients` lean clients (one shared user token: the server's per-socket
//! cost does not depend on who connects), all subscribed to room `big`, the
//! first `--small` of them also to room `small`; read the server's RSS
//! before and after (`/proc/PID/status`); then, for each room, publish
//! broadcasts at each `--rates` value for `--seconds` and measure delivered
//! messages/s and delivery latency (publisher's send time to the receiver's
//! read time, one clock) in an HDR histogram.
//!
//! Run with `bench/server` (or `cargo bench -p server --bench fanout -- --help`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use sioclient::{ClientConfig, Incoming, Transport};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SHARDS: usize = 16;

#[derive(Debug, Clone)]
struct Opts {
    clients: usize,
    small: usize,
    rates: Vec<Rate>,
    seconds: u64,
    targets: Vec<String>,
    out: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        clients: 10_000,
        small: 1_000,
        rates: vec![Rate::PerSecond(10), Rate::Max],
        seconds: 5,
        targets: vec!["rust".into(), "node".into()],
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--clients" => o.clients = val().parse().expect("--clients N"),
            "--small" => o.small = val().parse().expect("--small N"),
            "--rates" => {
                o.rates = val()
                    .split(',')
                    .map(|r| match r {
                        "max" => Rate::Max,
                        n => Rate::PerSecond(n.parse().expect("--rates 10,50,max")),
                    })
                    .collect()
            }
            "--seconds" => o.seconds = val().parse().expect("--seconds N"),
            "--targets" => o.targets = val().split(',').map(str::to_owned).collect(),
            "--out" => o.out = Some(PathBuf::from(val())),
            "--bench" => {}
            "--help" | "-h" => {
                println!(
                    "fanout [--clients 10000] [--small 1000] [--rates 10,max] [--seconds 5] [--targets rust,node] [--out FILE.json]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(o.small <= o.clients, "--small must be at most --clients");
    o
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// CPU time (user + system) the process has used so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm in stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks_per_sec()
}

fn clock_ticks_per_sec() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A server under test.
struct Target {
    name: String,
    child: Child,
    url: String,
    http: reqwest::Client,
    token: String,
    /// (room id for the client, how to publish to it)
    rooms: BTreeMap<&'static str, String>,
    app: Option<(String, String)>,
}

async fn spawn_logged(mut cmd: Command) -> (Child, String) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn server");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for reader in [
        Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = rx.recv().await {
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("server printed its address");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (child, strip_ansi(&url))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for c in s.chars() {
        match (skip, c) {
            (_, '\u{1b}') => skip = true,
            (true, 'm') => skip = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

async fn start_rust(dir: &Path) -> Target {
    // FANOUT_SERVER_WRAPPER runs the server under a profiler, e.g.
    // `valgrind --tool=massif`.
    let wrapper = std::env::var("FANOUT_SERVER_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(str::to_owned).collect();
    words.push(env!("CARGO_BIN_EXE_server").to_owned());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &format!("sqlite://{}/bench.db", dir.display()),
        "--app-events-per-room-per-second",
        "100000",
        "--app-events-per-app-per-minute",
        "10000000",
        // Every client comes from 127.0.0.1.
        "--max-connections-per-address",
        "0",
        "--log",
        "warn,server=info",
    ]);
    let (child, url) = spawn_logged(cmd).await;
    let http = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        let http = http.clone();
        let url = format!("{url}{path}");
        async move {
            let res = http
                .post(url)
                .bearer_auth(server::config::DEV_ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("admin request");
            assert!(res.status().is_success(), "setup failed: {}", res.status());
            res.json::<Value>().await.expect("json")
        }
    };
    let user = admin("/api/users", json!({"name": "bench"})).await;
    let tokens = admin("/api/auth/token", json!({"userId": user["id"]})).await;
    let mut rooms = BTreeMap::new();
    for name in ["big", "small"] {
        let room = admin("/api/rooms", json!({"name": name})).await;
        rooms.insert(name, room["id"].as_str().unwrap().to_owned());
    }
    let app = admin(
        "/api/apps",
        json!({"id": "bench", "name": "bench", "permissions": ["realtime:publish"]}),
    )
    .await;
    Target {
        name: "rust".into(),
        child,
        url,
        http,
        token: tokens["accessToken"].as_str().unwrap().to_owned(),
        rooms,
        app: Some(("bench".into(), app["token"].as_str().unwrap().to_owned())),
    }
}

async fn start_node() -> Target {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop");
    assert!(
        interop.join("node_modules/socket.io").exists(),
        "run `npm ci` in interop/ first (bench/server does it)"
    );
    let mut cmd = Command::new("node");
    cmd.arg("bench-server.mjs").current_dir(&interop);
    let (child, url) = spawn_logged(cmd).await;
    let rooms = ["big", "small"]
        .into_iter()
        .map(|r| (r, r.to_owned()))
        .collect();
    Target {
        name: "node".into(),
        child,
        url,
        http: reqwest::Client::new(),
        token: "bench".into(),
        rooms,
        app: None,
    }
}

/// What a publish needs; cheap to clone into a task.
#[derive(Clone)]
struct Publisher {
    http: reqwest::Client,
    url: String,
    app: Option<(String, String)>,
}

impl Target {
    fn pid(&self) -> u32 {
        self.child.id().expect("child running")
    }

    fn publisher(&self) -> Publisher {
        Publisher {
            http: self.http.clone(),
            url: self.url.clone(),
            app: self.app.clone(),
        }
    }
}

impl Publisher {
    async fn publish(&self, room: &str, seq: u64) -> bool {
        let data = json!({"seq": seq, "sentAtUs": now_us()});
        let req = match &self.app {
            Some((app_id, token)) => self
                .http
                .post(format!("{}/api/rooms/{room}/events", self.url))
                .bearer_auth(token)
                .header("X-App-Id", app_id)
                .json(&json!({"event": "bench:tick", "data": data})),
            None => self
                .http
                .post(format!("{}/broadcast/{room}", self.url))
                .json(&json!({"event": "bench:tick", "data": data})),
        };
        req.send().await.is_ok_and(|r| r.status().is_success())
    }
}

/// Per-phase receive counters and latency, sharded to keep locks cold.
struct Sink {
    received: AtomicU64,
    /// When the last message arrived, Unix microseconds.
    last_us: AtomicU64,
    hist: Vec<Mutex<Histogram<u64>>>,
}

impl Sink {
    fn new() -> Arc<Sink> {
        Arc::new(Sink {
            received: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            hist: (0..SHARDS)
                .map(|_| Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()))
                .collect(),
        })
    }

    fn merged(&self) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for s in &self.hist {
            h.add(&*s.lock().unwrap()).unwrap();
        }
        h
    }
}

struct Fleet {
    sink: Arc<Mutex<Arc<Sink>>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

async fn connect_fleet(t: &Target, opts: &Opts) -> Fleet {
    let sink = Arc::new(Mutex::new(Sink::new()));
    let big = t.rooms["big"].clone();
    let small = t.rooms["small"].clone();
    let started = Instant::now();
    let tasks: Vec<_> = futures_util::stream::iter(0..opts.clients)
        .map(|i| {
            let config = ClientConfig::new(t.url.clone())
                .with_auth(json!({"token": t.token}))
                .with_transport(Transport::WebSocket)
                .with_connect_timeout(Duration::from_secs(30));
            let (big, small, sink) = (big.clone(), small.clone(), sink.clone());
            let in_small = i < opts.small;
            async move {
                let mut socket = sioclient::connect(config).await.expect("client connects");
                for room in std::iter::once(&big).chain(in_small.then_some(&small)) {
                    let ack = socket
                        .emit_with_ack(
                            "room:subscribe",
                            json!({"roomId": room}),
                            Duration::from_secs(30),
                        )
                        .await
                        .expect("subscribe ack");
                    assert_eq!(ack[0]["success"], json!(true), "subscribe: {ack:?}");
                }
                // The receive loop outlives this setup future; its abort
                // handle stops it at the end.
                tokio::spawn(async move {
                    let shard = i % SHARDS;
                    while let Some(item) = socket.next().await {
                        if let Incoming::Event(ev) = item
                            && ev.name == "bench:tick"
                        {
                            let sent = ev.args[0]["sentAtUs"].as_u64().unwrap_or(0);
                            let now = now_us();
                            let lat = now.saturating_sub(sent).max(1);
                            let s = sink.lock().unwrap().clone();
                            s.received.fetch_add(1, Ordering::Relaxed);
                            s.last_us.fetch_max(now, Ordering::Relaxed);
                            let _ = s.hist[shard].lock().unwrap().record(lat);
                        }
                    }
                })
                .abort_handle()
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    eprintln!(
        "  {}: {} clients connected and subscribed in {:.1} s",
        t.name,
        opts.clients,
        started.elapsed().as_secs_f64()
    );
    Fleet { sink, tasks }
}

#[derive(Debug, serde::Serialize)]
struct FanoutRow {
    target: String,
    room_members: usize,
    rate_per_s: String,
    published: u64,
    expected: u64,
    delivered: u64,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The server's CPU time (user + system) from the first publish to the
    /// end of the drain, per delivered message: what a delivery costs the
    /// server, whatever the receivers sharing the machine could take.
    server_cpu_us_per_delivered: f64,
}

/// A broadcast schedule: a fixed rate (open model: each send scheduled
/// from the start, not from the previous send's completion) or as fast as
/// the server accepts them with 8 requests in flight (saturation).
#[derive(Debug, Clone, Copy)]
enum Rate {
    PerSecond(u32),
    Max,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

async fn fanout(
    t: &Target,
    fleet: &Fleet,
    room: &'static str,
    members: usize,
    rate: Rate,
    secs: u64,
) -> FanoutRow {
    let sink = Sink::new();
    *fleet.sink.lock().unwrap() = sink.clone();
    let room_id = t.rooms[room].clone();
    let publisher = t.publisher();
    let cpu_start = cpu_secs(t.pid());
    let start = tokio::time::Instant::now();
    let start_us = now_us();
    let end = start + Duration::from_secs(secs);
    let published = match rate {
        Rate::PerSecond(r) => {
            let interval = Duration::from_secs_f64(1.0 / f64::from(r));
            let mut sends = Vec::new();
            for seq in 0..u64::from(r) * secs {
                tokio::time::sleep_until(start + interval * seq as u32).await;
                let (p, room_id) = (publisher.clone(), room_id.clone());
                sends.push(tokio::spawn(async move { p.publish(&room_id, seq).await }));
            }
            let mut ok = 0;
            for s in sends {
                ok += u64::from(s.await.unwrap_or(false));
            }
            ok
        }
        Rate::Max => {
            let seq = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    let (p, room_id, seq) = (publisher.clone(), room_id.clone(), seq.clone());
                    tokio::spawn(async move {
                        let mut ok = 0;
                        while tokio::time::Instant::now() < end {
                            let n = seq.fetch_add(1, Ordering::Relaxed);
                            ok += u64::from(p.publish(&room_id, n).await);
                        }
                        ok
                    })
                })
                .collect();
            let mut ok = 0;
            for w in workers {
                ok += w.await.unwrap_or(0);
            }
            ok
        }
    };
    let expected = published * members as u64;
    // Wait for the deliveries to drain (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    while Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sink.received.load(Ordering::Relaxed);
        if now >= expected || (now == last && now > 0) {
            break;
        }
        last = now;
    }
    let cpu = cpu_secs(t.pid()) - cpu_start;
    // Deliveries per second from the first publish to the last delivery.
    let delivered = sink.received.load(Ordering::Relaxed);
    let elapsed = (sink
        .last_us
        .load(Ordering::Relaxed)
        .saturating_sub(start_us))
    .max(1) as f64
        / 1e6;
    let h = sink.merged();
    FanoutRow {
        target: t.name.clone(),
        room_members: members,
        rate_per_s: rate.to_string(),
        published,
        expected,
        delivered,
        delivered_per_s: delivered as f64 / elapsed,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: h.max() as f64 / 1000.0,
        server_cpu_us_per_delivered: cpu * 1e6 / delivered.max(1) as f64,
    }
}

#[derive(Debug, serde::Serialize)]
struct MemoryRow {
    target: String,
    clients: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_client: f64,
}

#[tokio::main]
async fn main() {
    let opts = parse_opts();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut memory = Vec::new();
    let mut rows = Vec::new();
    for name in &opts.targets {
        eprintln!("== {name}");
        let mut target = match name.as_str() {
            "rust" => start_rust(dir.path()).await,
            "node" => start_node().await,
            other => panic!("unknown target {other} (rust, node)"),
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(target.pid());
        let fleet = connect_fleet(&target, &opts).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(target.pid());
        let row = MemoryRow {
            target: name.clone(),
            clients: opts.clients,
            rss_before_kib: before,
            rss_after_kib: after,
            kib_per_client: (after.saturating_sub(before)) as f64 / opts.clients as f64,
        };
        eprintln!(
            "  memory: {:.1} KiB per connected, subscribed client",
            row.kib_per_client
        );
        memory.push(row);
        for (room, members) in [("small", opts.small), ("big", opts.clients)] {
            for &rate in &opts.rates {
                let r = fanout(&target, &fleet, room, members, rate, opts.seconds).await;
                eprintln!(
                    "  room of {members}, {rate} broadcasts/s: {:.0} delivered/s ({} of {}), p50 {:.1} ms, p99 {:.1} ms",
                    r.delivered_per_s, r.delivered, r.expected, r.p50_ms, r.p99_ms
                );
                rows.push(r);
            }
        }
        for task in fleet.tasks {
            task.abort();
        }
        // SIGTERM first: a graceful stop (and a profiler's report), then
        // SIGKILL if it takes more than 20 s.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &target.pid().to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(20), target.child.wait())
            .await
            .is_err()
        {
            let _ = target.child.kill().await;
        }
    }

    println!("\nMemory per connected client (server RSS delta / clients)");
    println!("| server | clients | KiB per client |");
    println!("|---|---:|---:|");
    for m in &memory {
        println!("| {} | {} | {:.1} |", m.target, m.clients, m.kib_per_client);
    }
    println!("\nFan-out (delivered messages/s and delivery latency)");
    println!(
        "| server | room members | broadcasts/s | delivered/s | delivered of expected | p50 ms | p99 ms | server CPU µs per delivery |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {}/{} | {:.1} | {:.1} | {:.2} |",
            r.target,
            r.room_members,
            r.rate_per_s,
            r.delivered_per_s,
            r.delivered,
            r.expected,
            r.p50_ms,
            r.p99_ms,
            r.server_cpu_us_per_delivered
        );
    }
    let find = |t: &str| memory.iter().find(|m| m.target == t);
    if let (Some(r), Some(n)) = (find("rust"), find("node")) {
        println!(
            "\nRatio memory per client rust/node: {:.2}",
            r.kib_per_client / n.kib_per_client
        );
    }
    for r in rows.iter().filter(|r| r.target == "rust") {
        if let Some(n) = rows.iter().find(|n| {
            n.target == "node" && n.room_members == r.room_members && n.rate_per_s == r.rate_per_s
        }) {
            println!(
                "Ratio delivered/s rust/node, room {} at {}/s: {:.2}; p99 rust/node: {:.2}; \
                 deliveries per server CPU-second rust/node: {:.2}",
                r.room_members,
                r.rate_per_s,
                r.delivered_per_s / n.delivered_per_s,
                r.p99_ms / n.p99_ms,
                n.server_cpu_us_per_delivered / r.server_cpu_us_per_delivered
            );
        }
    }
    if let Some(out) = &opts.out {
        let doc = json!({"memory": memory, "fanout": rows, "opts": format!("{opts:?}")});
        std::fs::write(out, serde_json::to_string_pretty(&doc).unwrap()).expect("write --out");
        eprintln!("wrote {}", out.display());
    }
}
