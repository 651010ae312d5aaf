//! The reference server as a test fixture, shared by every crate's tests:
//! [`TestServer`] (an [`Embedded`] server plus REST helpers with the
//! operator token and lean-client sockets), [`ServerProcess`] (the real
//! binary as a child process), and the waits and assertions the tests
//! share. Payloads and acks are checked with [`protocol::validate`].

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sioclient::{ClientConfig, ConnectError, Event, Incoming, Socket, Transport};

use crate::config::Config;
use crate::embedded::Embedded;

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does **not** arrive.
pub const QUIET: Duration = Duration::from_millis(400);

/// A reference server on `127.0.0.1:0` with a temporary SQLite database,
/// and a REST client.
#[derive(Debug)]
pub struct TestServer {
    pub server: Embedded,
    pub url: String,
    pub http: reqwest::Client,
    pub admin_token: String,
}

/// A user created over REST, with tokens minted for it.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub name: String,
    pub token: String,
    pub token_id: String,
    pub refresh_token: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose config `tweak` may change.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let server = Embedded::start_with(tweak)
            .await
            .expect("the reference server starts");
        TestServer {
            url: server.url(),
            admin_token: server.admin_token().to_owned(),
            http: reqwest::Client::new(),
            server,
        }
    }

    /// The server's shared state (store, sockets, metrics).
    pub fn state(&self) -> &crate::state::AppState {
        self.server.state()
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("clean shutdown");
    }

    /// A REST call with an explicit bearer token (and optional app id).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        app_id: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(a) = app_id {
            req = req.header("X-App-Id", a);
        }
        send_request(req, body).await
    }

    /// A REST call with the admin token.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.admin_token), None, body)
            .await
    }

    /// A REST call as the operator; panics unless the status is 2xx.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.admin_call(method.clone(), path, body).await;
        assert!(
            status.is_success(),
            "{method} {path} answered {status}: {value}"
        );
        value
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.admin(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.admin(reqwest::Method::DELETE, path, None).await
    }

    /// A user with an access token valid for `ttl` seconds.
    pub async fn user_with_ttl(&self, name: &str, ttl: i64) -> TestUser {
        let user = self.post("/api/users", json!({"name": name})).await;
        let id = user["id"].as_str().expect("user id").to_owned();
        let tokens = self
            .post("/api/auth/token", json!({"userId": id, "ttlSeconds": ttl}))
            .await;
        TestUser {
            id,
            name: name.to_owned(),
            token: tokens["accessToken"].as_str().unwrap().to_owned(),
            token_id: tokens["tokenId"].as_str().unwrap().to_owned(),
            refresh_token: tokens["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn user(&self, name: &str) -> TestUser {
        self.user_with_ttl(name, 3600).await
    }

    /// Creates a room; returns its id.
    pub async fn room(&self, name: &str, visibility: &str) -> String {
        let room = self
            .post(
                "/api/rooms",
                json!({"name": name, "visibility": visibility}),
            )
            .await;
        room["id"].as_str().expect("room id").to_owned()
    }

    /// Adds a user to a room; returns the participant id.
    pub async fn join(&self, room_id: &str, user_id: &str, role: &str) -> String {
        let p = self
            .post(
                &format!("/api/rooms/{room_id}/participants"),
                json!({"userId": user_id, "role": role}),
            )
            .await;
        p["id"].as_str().expect("participant id").to_owned()
    }

    /// Registers an application; returns its token.
    pub async fn app(&self, app_id: &str, permissions: &[&str]) -> String {
        let v = self
            .post(
                "/api/apps",
                json!({"id": app_id, "name": app_id, "permissions": permissions}),
            )
            .await;
        v["token"].as_str().expect("app token").to_owned()
    }

    pub fn client_config(&self, token: &str, ns: &str) -> ClientConfig {
        ClientConfig::new(self.url.clone())
            .with_namespace(ns)
            .with_auth(json!({"token": token}))
            .with_transport(Transport::WebSocket)
            .with_connect_timeout(WAIT)
    }

    /// Connects to `ns` with `token`; panics on refusal.
    pub async fn connect(&self, token: &str, ns: &str) -> Socket {
        sioclient::connect(self.client_config(token, ns))
            .await
            .unwrap_or_else(|e| panic!("connect to {ns} failed: {e}"))
    }

    /// Connects, expecting a refusal; returns the `connect_error` message.
    pub async fn connect_refused(&self, token: &str, ns: &str) -> String {
        match sioclient::connect(self.client_config(token, ns)).await {
            Err(ConnectError::Rejected { message, .. }) => message,
            Err(other) => panic!("expected connect_error, got {other}"),
            Ok(_) => panic!("expected connect_error, but {ns} accepted the connection"),
        }
    }

    /// Connects to `/` and subscribes to a room, waiting for the ack and
    /// the `room:subscribed` confirmation.
    pub async fn subscribed(&self, token: &str, room_id: &str) -> Socket {
        let mut socket = self.connect(token, "/").await;
        let ack = ack(&socket, "room:subscribe", json!({"roomId": room_id})).await;
        assert_eq!(ack["success"], json!(true), "subscribe ack: {ack}");
        socket
            .wait_for("room:subscribed", WAIT)
            .await
            .expect("room:subscribed");
        socket
    }
}

/// Emits with an ack and returns the ack's first argument.
pub async fn ack(socket: &Socket, event: &str, payload: Value) -> Value {
    let args = socket
        .emit_with_ack(event, payload, WAIT)
        .await
        .unwrap_or_else(|e| panic!("ack of {event}: {e}"));
    args.into_iter().next().unwrap_or(Value::Null)
}

/// Waits for `event` and returns its first argument.
pub async fn next_event(socket: &mut Socket, event: &str) -> Value {
    let ev: Event = socket
        .wait_for(event, WAIT)
        .await
        .unwrap_or_else(|e| panic!("waiting for {event}: {e}"));
    ev.args.into_iter().next().unwrap_or(Value::Null)
}

/// Asserts that no `event` arrives within [`QUIET`].
pub async fn assert_no_event(socket: &mut Socket, event: &str) {
    if let Ok(ev) = socket.wait_for(event, QUIET).await {
        panic!("unexpected {event}: {:?}", ev.args);
    }
}

/// Waits until the socket reports its disconnection.
pub async fn disconnected(socket: &mut Socket) -> sioclient::DisconnectReason {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Disconnected { reason })) => return reason,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without a Disconnected item"),
            Err(_) => panic!("socket still connected after {WAIT:?}"),
        }
    }
}

/// Asserts a failed ack with `code`.
pub fn assert_ack_error(ack: &Value, code: &str) {
    assert_eq!(
        ack["success"],
        json!(false),
        "expected failure ack, got {ack}"
    );
    assert_eq!(ack["error"]["code"], json!(code), "ack: {ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "ack error message missing: {ack}"
    );
}

/// Asserts that a payload is valid against the catalog schema of `event`
/// and has a recent ISO-8601 `timestamp`.
pub fn assert_payload(event: &str, payload: &Value) {
    let errors =
        protocol::validate::payload_errors(event, payload).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        errors.is_empty(),
        "{event} payload {payload} violates its schema: {errors:#?}"
    );
    if let Some(ts) = payload.get("timestamp").and_then(Value::as_str) {
        assert_recent(&format!("{event} timestamp"), ts);
    }
}

/// Asserts that `ts` (`what`, for the message) is an ISO-8601 UTC time
/// within the protocol's skew of now.
pub fn assert_recent(what: &str, ts: &str) {
    assert!(
        protocol::timestamp::is_recent(
            ts,
            std::time::SystemTime::now(),
            protocol::limits::TIMESTAMP_MAX_SKEW
        ),
        "{what} {ts} is not a recent ISO-8601 UTC time"
    );
}

/// Asserts that an ack is valid against the catalog's ack schema of `event`.
pub fn assert_ack_schema(event: &str, ack: &Value) {
    let errors = protocol::validate::ack_errors(event, ack).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        errors.is_empty(),
        "{event} ack {ack} violates its schema: {errors:#?}"
    );
}

/// Asserts a REST error answer: HTTP `expected` and
/// `{"error": {"code": code, "message": <non-empty>}}`.
pub fn assert_rest_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "body: {body}");
    assert_eq!(body["error"]["code"], json!(code), "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "REST error message missing: {body}"
    );
}

/// Asserts that `value` is an object with exactly the keys `keys`.
pub fn assert_exact_keys(value: &Value, keys: &[&str]) {
    let mut have: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object, got {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    have.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(have, want, "keys of {value}");
}

/// Returns the next event whose name is in `names`, in arrival order,
/// dropping everything else received before it (bounded by [`WAIT`]).
pub async fn next_of(socket: &mut Socket, names: &[&str]) -> Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Event(ev))) if names.contains(&ev.name.as_str()) => return ev,
            Ok(Some(Incoming::Disconnected { reason })) => {
                panic!("disconnected ({reason}) while waiting for one of {names:?}")
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended while waiting for one of {names:?}"),
            Err(_) => panic!("none of {names:?} arrived within {WAIT:?}"),
        }
    }
}

/// Asserts that none of `names` arrives within [`QUIET`] (one wait for all
/// of them; other items received meanwhile are dropped).
pub async fn assert_none_of(socket: &mut Socket, names: &[&str]) {
    let deadline = tokio::time::Instant::now() + QUIET;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Event(ev))) if names.contains(&ev.name.as_str()) => {
                panic!("unexpected {}: {:?}", ev.name, ev.args)
            }
            Ok(Some(Incoming::Disconnected { reason })) => {
                panic!("disconnected ({reason}) while checking that none of {names:?} arrives")
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return,
        }
    }
}

impl TestServer {
    /// Starts a server on the given database URL (e.g. the SQLite file of a
    /// server stopped before), with the test defaults otherwise.
    pub async fn start_on(database_url: &str) -> TestServer {
        let url = database_url.to_owned();
        Self::start_with(move |c| c.database_url = url).await
    }
}

/// The admin token [`ServerProcess::start`] passes to the binary.
pub const PROCESS_ADMIN_TOKEN: &str = "process-admin-token-0123456789abcdef";
/// How long the `server` binary may take to log its address or to exit.
pub const PROCESS_WAIT: Duration = Duration::from_secs(10);

/// The real `server` binary, run as a child process. Dropping it kills the
/// process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: std::process::Child,
    /// `http://ADDR`, parsed from the `listening on` log line.
    pub url: String,
    pub http: reqwest::Client,
    pub admin_token: String,
    /// Every stderr line the process has written so far (read by a thread).
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// A command for the binary `bin` (the server's own tests pass
    /// `env!("CARGO_BIN_EXE_server")`) with a clean `SERVER_*` environment
    /// and no colours in its logs.
    pub fn command(bin: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("SERVER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("NO_COLOR", "1");
        cmd
    }

    /// Runs the binary on `127.0.0.1:0` with `database_url` and
    /// [`PROCESS_ADMIN_TOKEN`]; waits for its address.
    pub fn start(bin: &Path, database_url: &str) -> ServerProcess {
        Self::start_with(bin, database_url, &[])
    }

    /// [`ServerProcess::start`] with more flags (`extra`).
    pub fn start_with(bin: &Path, database_url: &str, extra: &[&str]) -> ServerProcess {
        let mut cmd = Self::command(bin);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--admin-token",
            PROCESS_ADMIN_TOKEN,
            "--jwt-secret",
            "process-jwt-secret-0123456789abcdef",
        ])
        .args(extra);
        Self::spawn(cmd, PROCESS_ADMIN_TOKEN)
    }

    /// Spawns `cmd` (stdout discarded, stderr read line by line) and waits at
    /// most [`PROCESS_WAIT`] for `listening on http://ADDR`.
    pub fn spawn(mut cmd: std::process::Command, admin_token: &str) -> ServerProcess {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let store = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                store.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + PROCESS_WAIT;
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = listening_url(&line) {
                        break url;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the server logged no `listening on` line ({e}); stderr: {:#?}",
                        lines.lock().unwrap()
                    );
                }
            }
        };
        ServerProcess {
            child,
            url,
            http: reqwest::Client::new(),
            admin_token: admin_token.to_owned(),
            stderr: lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    pub fn kill9(&mut self) -> std::process::ExitStatus {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server")
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// Waits at most `timeout` for the process to exit; `None` if it did not.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A REST call with the admin token.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.admin_token);
        send_request(req, body).await
    }

    pub fn client_config(&self, token: &str, ns: &str) -> ClientConfig {
        ClientConfig::new(self.url.clone())
            .with_namespace(ns)
            .with_auth(json!({"token": token}))
            .with_transport(Transport::WebSocket)
            .with_connect_timeout(WAIT)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a REST request with an optional JSON body; returns the status and
/// the body as JSON (`Null` when empty, a string when not JSON).
async fn send_request(
    mut req: reqwest::RequestBuilder,
    body: Option<Value>,
) -> (StatusCode, Value) {
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let text = res.text().await.expect("body read");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// `http://ADDR` from a `listening on http://ADDR` log line.
pub fn listening_url(line: &str) -> Option<String> {
    let start = line.find("listening on http://")? + "listening on ".len();
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\u{1b}')
        .collect();
    Some(url)
}
