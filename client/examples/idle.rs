//! Measures resident memory per idle connected client.
//!
//! ```text
//! cargo run --release -p sioclient --example idle -- [N] [URL] [--polling] [--spread] [--read-buffer=BYTES]
//! ```
//!
//! * `N` clients (default 2000) connect over WebSocket (or polling with
//!   `--polling`) and stay idle; the process RSS before and after is read
//!   from `/proc/self/status` and the delta per client printed.
//! * Without `URL` the example re-executes itself as a socketioxide server in
//!   a child process on 127.0.0.1 (so server memory is not counted).
//! * `--read-buffer=BYTES` overrides the WebSocket read buffer (default 4096).
//! * `--exit` exits right after measuring without closing the sockets (so a
//!   heap profiler reports the per-client allocations as leaked).
//! * `--shared-http` gives all polling clients one `reqwest::Client`.
//! * `--spread` binds clients to 127.0.0.2..=127.0.0.254 round-robin, like the
//!   load generator does.
//!
//! Linux only (reads `/proc`). Needs N file descriptors in this process.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sioclient::{ClientConfig, Transport};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn serve() {
    // Exit when the parent goes away (its end of our stdin closes).
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (layer, io) = socketioxide::SocketIo::builder().build_layer();
        io.ns("/", async |_: socketioxide::extract::SocketRef| {});
        let app = axum::Router::new().layer(layer);
        // A deep accept queue: thousands of clients connect at once.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(4096).expect("listen");
        println!("{}", listener.local_addr().expect("addr"));
        axum::serve(listener, app).await.expect("serve");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--serve") {
        serve();
        return;
    }
    let polling = args.iter().any(|a| a == "--polling");
    let spread = args.iter().any(|a| a == "--spread");
    let exit_now = args.iter().any(|a| a == "--exit");
    let shared_http = args.iter().any(|a| a == "--shared-http");
    let read_buffer: Option<usize> = args
        .iter()
        .find_map(|a| a.strip_prefix("--read-buffer="))
        .and_then(|v| v.parse().ok());
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let n: usize = positional
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);

    let mut child = None;
    let url = match positional.get(1) {
        Some(url) => url.to_string(),
        None => {
            let exe = std::env::current_exe().expect("current exe");
            let mut c = Command::new(exe)
                .arg("--serve")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn server");
            let mut line = String::new();
            BufReader::new(c.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("server address");
            child = Some(c);
            format!("http://{}", line.trim())
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _alive = rt.block_on(async move {
        // Warm up runtime, TLS/HTTP statics and allocator with one client.
        let warm = sioclient::connect(ClientConfig::new(url.clone()))
            .await
            .expect("warm-up connect");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib();
        let started = Instant::now();

        let http = shared_http.then(reqwest::Client::new);
        let mut sockets = Vec::with_capacity(n);
        let mut failed = 0usize;
        let batch = 200;
        let mut i = 0;
        while i < n {
            let mut set = tokio::task::JoinSet::new();
            for j in i..(i + batch).min(n) {
                let mut config = ClientConfig::new(url.clone());
                if polling {
                    config.transport = Transport::Polling;
                }
                if let Some(http) = &http {
                    config.http_client = Some(http.clone());
                }
                if let Some(size) = read_buffer {
                    config.ws_read_buffer_size = size;
                }
                if spread {
                    let last = 2 + (j % 253) as u8;
                    config.local_addr = Some(IpAddr::from([127, 0, 0, last]));
                }
                set.spawn(sioclient::connect(config));
            }
            while let Some(result) = set.join_next().await {
                match result.expect("task") {
                    Ok(socket) => sockets.push(socket),
                    Err(e) => {
                        failed += 1;
                        if failed <= 5 {
                            eprintln!("connect failed: {e}");
                        }
                    }
                }
            }
            i += batch;
        }
        let connect_time = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib();
        let connected = sockets.iter().filter(|s| s.is_connected()).count();
        let per_client = (after.saturating_sub(before)) as f64 / connected.max(1) as f64;
        println!(
            "transport={} clients={connected} failed={failed} connect_time={:.2}s rss_before={before}KiB rss_after={after}KiB per_client={per_client:.2}KiB",
            if polling { "polling" } else { "websocket" },
            connect_time.as_secs_f64(),
        );
        if exit_now {
            // Leave the sockets allocated (for heap profilers' "leaked"
            // view); the server child exits when our end of its stdin closes.
            std::process::exit(0);
        }
        (sockets, warm)
    });
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}
