//! Shared helpers of the server's integration tests: a real server on an
//! ephemeral loopback port with a temporary SQLite file, REST helpers with
//! the operator token, and lean-client sockets.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::{Config, Running};
use sioclient::{ClientConfig, ConnectError, Event, Incoming, Socket, Transport};

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does **not** arrive.
pub const QUIET: Duration = Duration::from_millis(400);

pub struct TestServer {
    pub running: Running,
    pub url: String,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
}

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
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}/test.db", dir.path().display());
        let mut config = Config::for_tests(db);
        tweak(&mut config);
        let admin_token = config.admin_token.clone();
        let running = server::start(config).await.expect("server starts");
        let url = running.url();
        TestServer {
            running,
            url,
            http: reqwest::Client::new(),
            admin_token,
            dir,
        }
    }

    pub async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
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

    /// A REST call as the operator; panics unless the status is 2xx.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self
            .call(method.clone(), path, Some(&self.admin_token.clone()), None, body)
            .await;
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
            .post("/api/rooms", json!({"name": name, "visibility": visibility}))
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
    assert_eq!(ack["success"], json!(false), "expected failure ack, got {ack}");
    assert_eq!(ack["error"]["code"], json!(code), "ack: {ack}");
    assert!(
        ack["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "ack error message missing: {ack}"
    );
}

/// Asserts that a payload is valid against the catalog schema of `event`
/// and has a recent ISO-8601 `timestamp`.
pub fn assert_payload(event: &str, payload: &Value) {
    let spec = protocol::EventSpec::get(event).unwrap_or_else(|| panic!("{event} not in catalog"));
    let schema = (spec.payload)();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(payload)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{event} payload {payload} violates its schema: {errors:#?}");
    if let Some(ts) = payload.get("timestamp").and_then(Value::as_str) {
        assert!(
            protocol::timestamp::is_recent(
                ts,
                std::time::SystemTime::now(),
                protocol::limits::TIMESTAMP_MAX_SKEW
            ),
            "{event} timestamp {ts} is not a recent ISO-8601 UTC time"
        );
    }
}

/// Asserts that an ack is valid against the catalog's ack schema of `event`.
pub fn assert_ack_schema(event: &str, ack: &Value) {
    let spec = protocol::EventSpec::get(event).unwrap_or_else(|| panic!("{event} not in catalog"));
    let schema = protocol::schema::ack(spec).expect("event has an ack");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(ack)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{event} ack {ack} violates its schema: {errors:#?}");
}
