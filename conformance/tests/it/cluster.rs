//! The whole suite against a two-node deployment: both nodes share one
//! Redis and one PostgreSQL database, and a round-robin TCP proxy in front
//! of them sends consecutive WebSocket connections to alternate nodes, so
//! the clients of a case sit on different nodes. REST calls and Engine.IO
//! long-polling (which needs sticky sessions) go to the first node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use server::testing::postgres::PgHarness;
use server::testing::redis::RedisServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{assert_every_case_passed, run_args};

/// Bound of the whole run.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// How long the proxy waits for a request line.
const HEAD_WAIT: Duration = Duration::from_secs(5);

/// A TCP proxy that routes each connection by its first request line.
struct RoundRobin {
    addr: SocketAddr,
    /// WebSocket connections sent to each node.
    sent: Arc<Vec<AtomicUsize>>,
    task: JoinHandle<()>,
}

impl RoundRobin {
    async fn start(nodes: Vec<SocketAddr>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let sent: Arc<Vec<AtomicUsize>> =
            Arc::new(nodes.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = sent.clone();
        let task = tokio::spawn(async move {
            let nodes = Arc::new(nodes);
            let next = Arc::new(AtomicUsize::new(0));
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let (nodes, next, counts) = (nodes.clone(), next.clone(), counts.clone());
                conns.spawn(async move {
                    let upstream = match request_line(&client).await {
                        // A fresh WebSocket session: the next node in turn.
                        Some(line)
                            if line.contains("transport=websocket") && !line.contains("sid=") =>
                        {
                            let i = next.fetch_add(1, Ordering::Relaxed) % nodes.len();
                            counts[i].fetch_add(1, Ordering::Relaxed);
                            nodes[i]
                        }
                        // REST, polling, and upgrades of a polling session.
                        Some(_) => nodes[0],
                        None => return,
                    };
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        RoundRobin { addr, sent, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection it relays.
        self.task.abort();
    }
}

/// The first line of the connection's first request, without consuming
/// it (the upstream reads it); `None` if none arrives in time.
async fn request_line(conn: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    loop {
        let n = tokio::time::timeout_at(deadline, conn.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].windows(2).position(|w| w == b"\r\n") {
            return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
        }
        if n == buf.len() {
            return None;
        }
        // Part of the line so far: wait for more.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_two_nodes() {
    let pg = tokio::task::block_in_place(PgHarness::start);
    let database = pg.fresh_database("conformance_cluster").await;
    let redis = tokio::task::block_in_place(RedisServer::start);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let node = server::Embedded::start_with(|c| {
            c.database_url.clone_from(&database);
            c.redis_url = Some(redis.url());
        })
        .await
        .expect("node starts");
        nodes.push(node);
    }
    let proxy = RoundRobin::start(nodes.iter().map(|n| n.addr()).collect()).await;

    let report = tokio::time::timeout(RUN_LIMIT, run_args(&["--target", &proxy.url()]))
        .await
        .expect("the run finishes in time")
        .expect("the run completes");
    assert_every_case_passed(&report, "on two nodes");
    let sent: Vec<usize> = proxy
        .sent
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    assert!(
        sent.iter().all(|&n| n > 10),
        "the clients did not spread over both nodes: {sent:?}"
    );
    eprintln!(
        "suite on two nodes: {} cases in {} ms; WebSocket connections per node {sent:?}",
        report.cases.len(),
        report.duration_ms
    );
    drop(proxy);
    for node in nodes {
        node.stop().await.expect("clean shutdown");
    }
    drop(redis);
    drop(pg);
}
