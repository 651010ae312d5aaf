//! Shared helpers for the integration tests: an in-process socketioxide
//! server on 127.0.0.1:0 that records what it sees.
//!
//! Server behaviour (same on `/` and on the dynamic namespace `/rooms/{id}`):
//! * connect middleware: auth `{"token":"bad"}` is rejected with
//!   `Authentication failed: Invalid token`; otherwise message handlers are
//!   registered *in the middleware* (before the server sends CONNECT, so no
//!   client event can race the registration);
//! * connect handler: records the connection and emits `welcome`
//!   `{"ns":..,"sid":..}`;
//! * `echo` (data) → emits `echo` with the same data;
//! * `ack` (data) → acks with the same data;
//! * `noack` → records it and never acks;
//! * `burst` (n) → emits `seq` 0..n in order;
//! * `multi3` (a, b, c) → records `[a, b, c]`;
//! * `kick` → server-side disconnect of the socket;
//! * `ask` (data) → emits `question` with ack request, then emits
//!   `answer` with whatever the client acked;
//! * every event is recorded; disconnects are recorded with their reason.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, Data, Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide::{SocketIo, SocketIoBuilder};

/// Upper bound for every single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Something the server observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Connected {
        ns: String,
        sid: String,
        auth: Option<Value>,
        /// Value of the `x-test` request header, if sent.
        header: Option<String>,
        /// Query string of the Engine.IO request that opened the session.
        query: String,
    },
    Message {
        ns: String,
        sid: String,
        event: String,
        data: Value,
    },
    ClientAck {
        ns: String,
        data: Value,
    },
    Disconnected {
        ns: String,
        sid: String,
        reason: String,
    },
}

/// Thread-safe log of what the server saw.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    pub fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded by [`WAIT`]) until an entry matches `pred`.
    pub async fn wait(&self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.0.lock().unwrap().iter().find(|s| pred(s)).cloned() {
                return found;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("server never saw {what}; saw {:?}", self.all());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub io: SocketIo,
    pub seen: Recorder,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client config for this server with a short connect timeout.
    pub fn config(&self) -> sioclient::ClientConfig {
        sioclient::ClientConfig::new(self.url()).with_connect_timeout(WAIT)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct AuthError;

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authentication failed: Invalid token")
    }
}

impl std::error::Error for AuthError {}

fn record_msg(seen: &Recorder, s: &SocketRef, event: &str, data: &Value) {
    seen.push(Seen::Message {
        ns: s.ns().to_owned(),
        sid: s.id.to_string(),
        event: event.to_owned(),
        data: data.clone(),
    });
}

async fn auth_middleware(
    s: SocketRef,
    TryData(auth): TryData<Value>,
    State(seen): State<Recorder>,
) -> Result<(), AuthError> {
    if auth
        .as_ref()
        .ok()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        == Some("bad")
    {
        return Err(AuthError);
    }
    register_handlers(&s, seen);
    Ok(())
}

fn register_handlers(s: &SocketRef, seen: Recorder) {
    let rec = seen.clone();
    s.on(
        "echo",
        async move |s: SocketRef, Data(data): Data<Value>| {
            record_msg(&rec, &s, "echo", &data);
            s.emit("echo", &data).ok();
        },
    );
    let rec = seen.clone();
    s.on(
        "ack",
        async move |s: SocketRef, Data(data): Data<Value>, ack: AckSender| {
            record_msg(&rec, &s, "ack", &data);
            ack.send(&data).ok();
        },
    );
    let rec = seen.clone();
    s.on(
        "noack",
        async move |s: SocketRef, Data(data): Data<Value>| {
            record_msg(&rec, &s, "noack", &data);
        },
    );
    let rec = seen.clone();
    s.on("burst", async move |s: SocketRef, Data(n): Data<u64>| {
        record_msg(&rec, &s, "burst", &json!(n));
        for i in 0..n {
            s.emit("seq", &i).ok();
        }
    });
    let rec = seen.clone();
    s.on(
        "multi3",
        async move |s: SocketRef, Data((a, b, c)): Data<(Value, Value, Value)>| {
            record_msg(&rec, &s, "multi3", &json!([a, b, c]));
        },
    );
    let rec = seen.clone();
    s.on("kick", async move |s: SocketRef| {
        record_msg(&rec, &s, "kick", &Value::Null);
        s.disconnect().ok();
    });
    let rec = seen.clone();
    s.on("ask", async move |s: SocketRef, Data(data): Data<Value>| {
        record_msg(&rec, &s, "ask", &data);
        let Ok(stream) = s.emit_with_ack::<_, Value>("question", &data) else {
            return;
        };
        if let Ok(answer) = stream.await {
            rec.push(Seen::ClientAck {
                ns: s.ns().to_owned(),
                data: answer.clone(),
            });
            s.emit("answer", &answer).ok();
        }
    });
    let rec = seen.clone();
    s.on_fallback(
        async move |s: SocketRef, Event(event): Event, TryData(data): TryData<Value>| {
            record_msg(&rec, &s, &event, &data.unwrap_or(Value::Null));
        },
    );
    s.on_disconnect(async move |s: SocketRef, reason: DisconnectReason| {
        seen.push(Seen::Disconnected {
            ns: s.ns().to_owned(),
            sid: s.id.to_string(),
            reason: format!("{reason:?}"),
        });
    });
}

async fn on_connect(s: SocketRef, TryData(auth): TryData<Value>, State(seen): State<Recorder>) {
    let parts = s.req_parts();
    seen.push(Seen::Connected {
        ns: s.ns().to_owned(),
        sid: s.id.to_string(),
        auth: auth.ok(),
        header: parts
            .headers
            .get("x-test")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        query: parts.uri.query().unwrap_or_default().to_owned(),
    });
    s.emit("welcome", &json!({"ns": s.ns(), "sid": s.id.to_string()}))
        .ok();
}

/// Starts the test server with default socketioxide settings.
pub async fn start() -> TestServer {
    start_with(|b| b).await
}

/// Starts the test server; `configure` can change ping interval etc.
pub async fn start_with(configure: impl FnOnce(SocketIoBuilder) -> SocketIoBuilder) -> TestServer {
    let seen = Recorder::default();
    let builder = SocketIo::builder()
        .max_buffer_size(8192)
        .with_state(seen.clone());
    let (layer, io) = configure(builder).build_layer();
    io.ns("/", on_connect.with(auth_middleware));
    io.dyn_ns("/rooms/{id}", on_connect.with(auth_middleware))
        .expect("valid dynamic namespace");

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    TestServer {
        addr,
        io,
        seen,
        task,
    }
}

/// Runs a test body with an overall bound so no test can hang.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("test exceeded its 60 s bound");
}

/// Collects everything currently in a frame tap.
pub fn drain_tap(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<sioclient::Frame>,
) -> Vec<sioclient::Frame> {
    let mut frames = Vec::new();
    while let Ok(frame) = rx.try_recv() {
        frames.push(frame);
    }
    frames
}

/// Texts of the frames in one direction.
pub fn texts(frames: &[sioclient::Frame], direction: sioclient::Direction) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.direction == direction)
        .map(|f| f.text.clone())
        .collect()
}

/// Raw server-side WebSocket for scripted fake servers.
pub type FakeWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Starts a one-connection fake Engine.IO WebSocket server on loopback and
/// runs `script` with the accepted WebSocket. Returns `ws://` base URL.
pub async fn fake_ws_server<F, Fut>(script: F) -> String
where
    F: FnOnce(FakeWs) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok(Ok((stream, _))) = tokio::time::timeout(WAIT, listener.accept()).await
            && let Ok(ws) = tokio_tungstenite::accept_async(stream).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(30), script(ws)).await;
        }
    });
    format!("ws://{addr}")
}

/// Next text frame from the client (bounded).
pub async fn fake_recv(ws: &mut FakeWs) -> Option<String> {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                return Some(t.as_str().to_owned());
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) | Ok(None) | Err(_) => {
                return None;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => return None,
        }
    }
}

/// Sends a text frame to the client.
pub async fn fake_send(ws: &mut FakeWs, text: &str) {
    use futures_util::SinkExt;
    let _ = ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            text.to_owned().into(),
        ))
        .await;
}

/// Fake handshake: open packet with the given ping settings, then accept
/// the Socket.IO CONNECT for `/`. Returns the client's CONNECT frame.
pub async fn fake_handshake(ws: &mut FakeWs, ping_interval: u64, ping_timeout: u64) -> String {
    fake_send(
        ws,
        &format!(
            r#"0{{"sid":"fake-eio","upgrades":[],"pingInterval":{ping_interval},"pingTimeout":{ping_timeout},"maxPayload":100000}}"#
        ),
    )
    .await;
    let connect = fake_recv(ws).await.unwrap_or_default();
    fake_send(ws, r#"40{"sid":"fake-sio"}"#).await;
    connect
}
