//! Interoperability with the official JS client (`socket.io-client@4`, in
//! `interop/`): a bad token is refused with the documented message, a valid
//! one connects over the requested transport, subscribes with an ack and
//! receives a room broadcast. Node.js and npm are required: without them the
//! test fails with a message saying so (it is never skipped silently).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use server::testing::*;
use tokio::sync::mpsc;

const ROOM_NAME: &str = "Interop room";
/// Node's start plus the import of socket.io-client, on a loaded machine.
const FIRST_LINE_WAIT: Duration = Duration::from_secs(15);
/// `npm ci` from the lock file.
const NPM_CI_WAIT: Duration = Duration::from_secs(300);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("interop")
}

/// Runs `cmd` to completion within `limit`; panics with `what` otherwise.
fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{what}: cannot run it ({e}); the JS interop test needs Node.js and npm on PATH")
        });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// Checks for node and npm, and installs `interop/node_modules` from the
/// lock file when it is missing (once per test binary).
fn ensure_node_modules() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let dir = interop_dir();
    let mut node = Command::new("node");
    node.arg("--version");
    let out = run_bounded(node, Duration::from_secs(30), "node --version");
    assert!(
        out.status.success(),
        "node --version failed: {out:?}; the JS interop test needs Node.js"
    );
    if !dir.join("node_modules").join("socket.io-client").is_dir() {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir);
        let out = run_bounded(npm, NPM_CI_WAIT, "npm ci in interop/");
        assert!(
            out.status.success(),
            "npm ci in {} failed:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *done = true;
}

/// The node process; killed and reaped when dropped (also on a failure).
struct NodeClient {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    stderr: std::sync::Arc<Mutex<String>>,
}

impl NodeClient {
    fn spawn(url: &str, token: &str, room: &str, transport: &str) -> NodeClient {
        let mut child = Command::new("node")
            .args(["client-check.mjs", url, token, room, transport])
            .current_dir(interop_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}); the JS interop test needs Node.js"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err_pipe, &mut text);
            sink.lock().unwrap().push_str(&text);
        });
        NodeClient {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next JSON line; it must be step `step`.
    async fn step(&mut self, step: &str, wait: Duration) -> Value {
        let line = match tokio::time::timeout(wait, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "node ended its output while {step} was expected; lines {:#?}; stderr: {}",
                self.seen,
                self.stderr.lock().unwrap()
            ),
            Err(_) => panic!(
                "no {step} line within {wait:?}; lines {:#?}; stderr: {}",
                self.seen,
                self.stderr.lock().unwrap()
            ),
        };
        self.seen.push(line.clone());
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(value["step"], json!(step), "lines so far: {:#?}", self.seen);
        value
    }

    async fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node did not exit within {WAIT:?}; lines {:#?}",
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn official_client_round_trip(transport: &str) {
    ensure_node_modules();
    let srv = TestServer::start().await;
    let user = srv.user("Node").await;
    let room = srv.room(ROOM_NAME, "public").await;

    let mut node = NodeClient::spawn(&srv.url, &user.token, &room, transport);

    let bad = node.step("bad_token", FIRST_LINE_WAIT).await;
    assert_eq!(
        bad,
        json!({"step": "bad_token", "connected": false, "message": "Authentication failed: Invalid token"})
    );

    let connected = node.step("connected", WAIT).await;
    assert_eq!(
        connected,
        json!({"step": "connected", "transport": transport})
    );

    let subscribed = node.step("subscribed", WAIT).await;
    let ack = &subscribed["ack"];
    assert_ack_schema("room:subscribe", ack);
    assert_eq!(
        subscribed,
        json!({"step": "subscribed", "ack": {"success": true, "room": {"id": room, "name": ROOM_NAME, "status": "active"}}})
    );

    let renamed = format!("{ROOM_NAME} ({transport})");
    srv.patch(&format!("/api/rooms/{room}"), json!({"name": renamed}))
        .await;

    let broadcast = node.step("broadcast", WAIT).await;
    assert_eq!(broadcast["event"], json!("room:updated"));
    let data = &broadcast["data"];
    assert_payload("room:updated", data);
    assert_exact_keys(data, &["roomId", "changes", "room", "timestamp", "eventId"]);
    assert_eq!(data["roomId"], json!(room));
    assert_eq!(data["changes"], json!({"name": renamed}));
    assert_eq!(
        data["room"],
        json!({"id": room, "name": renamed, "status": "active"})
    );
    assert!(
        data["eventId"].as_str().is_some_and(|id| !id.is_empty()),
        "{data}"
    );

    let status = node.exit_status().await;
    assert_eq!(
        status.code(),
        Some(0),
        "node exit status {status}; lines {:#?}",
        node.seen
    );
    drop(node);
    srv.stop().await;
}

#[tokio::test]
async fn official_js_client_over_websocket() {
    official_client_round_trip("websocket").await;
}

#[tokio::test]
async fn official_js_client_over_polling() {
    official_client_round_trip("polling").await;
}
