//! A throwaway Redis server for tests.
//!
//! [`RedisServer::start`] runs `redis-server` (from `PATH`, Debian package
//! `redis-server`) on 127.0.0.1 at a free port in 20000..30000, without
//! persistence (`--save '' --appendonly no`), its files in a temp dir, and
//! waits until it answers `PING`. [`RedisServer::restart`] kills it and
//! starts a fresh, empty one on the same port (what a crashed and restarted
//! Redis looks like to its clients). Dropping it kills the process by its
//! handle and reaps it. Without `redis-server`, `start` panics: the tests
//! never skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{first_port, next_free_port};

/// How long `redis-server` may take to answer its first `PING`.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How many ports we try before giving up.
const START_ATTEMPTS: u32 = 10;

/// A `redis-server` child process; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    dir: TempDir,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish()
    }
}

impl RedisServer {
    /// Starts a server; panics, saying what to install, if `redis-server`
    /// is missing, or if it does not come up.
    pub fn start() -> RedisServer {
        let Some(bin) = find_bin() else {
            panic!(
                "the cluster tests need Redis: no `redis-server` on PATH; install the Debian \
                 package redis-server, as .ci/run does"
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("test-redis-")
            .tempdir()
            .expect("Redis test harness: temp dir");
        let mut server = RedisServer {
            child: None,
            port: 0,
            bin,
            dir,
        };
        let mut port = first_port();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            port = next_free_port(port);
            match server.spawn(port) {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
            port = if port >= 29_999 { 20_000 } else { port + 1 };
        }
        panic!("Redis test harness: redis-server failed {START_ATTEMPTS} times; log:\n{last_log}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, by its handle) and reaps it. Its data is
    /// gone: nothing is persisted.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// [`stop`](Self::stop), then a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY_WAIT;
        loop {
            match self.spawn(self.port) {
                Ok(()) => return,
                Err(log) if Instant::now() >= deadline => {
                    panic!(
                        "Redis test harness: restart on port {} failed; log:\n{log}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs `redis-server` on `port` and waits for `PONG`; on failure the
    /// process is gone and the log is returned.
    fn spawn(&mut self, port: u16) -> Result<(), String> {
        let log = self.dir.path().join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new(&self.bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("Redis test harness: run {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if ping(port) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited || Instant::now() >= deadline {
                self.stop();
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis on 127.0.0.1:`port` answers `PING`.
fn ping(port: u16) -> bool {
    let Ok(mut conn) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    if conn.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn find_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}
