//! Client configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::packet::EventView;

/// Which Engine.IO transport(s) to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// WebSocket only (`transport=websocket` from the first request).
    #[default]
    WebSocket,
    /// HTTP long-polling only.
    Polling,
    /// Polling handshake and Socket.IO CONNECT, then upgrade to WebSocket
    /// with `2probe`/`3probe`/`5` as the JS client does. If the server's
    /// open packet offers no `websocket` upgrade the socket stays on polling.
    /// Only meaningful in [`ClientConfig::transport`]: a connected socket
    /// always reports [`Transport::WebSocket`] or [`Transport::Polling`].
    PollingThenUpgrade,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::WebSocket => "websocket",
            Transport::Polling => "polling",
            Transport::PollingThenUpgrade => "polling+upgrade",
        })
    }
}

/// Direction of a tapped frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Written by this client.
    Sent,
    /// Read from the server.
    Received,
}

/// One Engine.IO text frame as seen on the wire (for transcripts).
///
/// With polling, each packet of a `\x1e`-joined payload is reported as its
/// own frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Sent or received.
    pub direction: Direction,
    /// Wall-clock time the frame was written or read.
    pub at: SystemTime,
    /// Transport the frame travelled on ([`Transport::WebSocket`] or [`Transport::Polling`]).
    pub transport: Transport,
    /// The Engine.IO frame, e.g. `42["x"]`, `2`, `3`.
    pub text: String,
}

/// Configuration for [`connect`](crate::connect).
///
/// All fields are public; start from [`ClientConfig::new`] (or `Default`)
/// and override what you need, or use the `with_*` helpers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server base URL: `http://`, `https://`, `ws://` or `wss://` plus host
    /// and port. Its path is ignored (use [`path`](Self::path) and
    /// [`namespace`](Self::namespace)); its query pairs are appended to every
    /// Engine.IO request.
    pub url: String,
    /// Engine.IO endpoint path, default `/socket.io/`.
    pub path: String,
    /// Socket.IO namespace, default `/`. A missing leading `/` is added.
    pub namespace: String,
    /// Auth payload sent in the CONNECT packet (should be a JSON object).
    pub auth: Option<Value>,
    /// Transport selection, default [`Transport::WebSocket`].
    pub transport: Transport,
    /// Bound for the whole connect sequence (TCP, handshake, upgrade, Socket.IO
    /// CONNECT). Default 10 s.
    pub connect_timeout: Duration,
    /// Local IP address to bind the client TCP socket(s) to, e.g. `127.0.0.7`.
    pub local_addr: Option<IpAddr>,
    /// Extra HTTP headers for the WebSocket handshake and polling requests.
    pub headers: Vec<(String, String)>,
    /// tungstenite read buffer size. The buffer is allocated eagerly per
    /// connection, so keep it small for load tests. Default 4096.
    pub ws_read_buffer_size: usize,
    /// Receives every text frame sent and received (including the handshake).
    pub frame_tap: Option<UnboundedSender<Frame>>,
    /// Sees every EVENT of the socket's namespace in the connection task,
    /// before it is queued; see [`EventHook`].
    pub event_hook: Option<EventHook>,
    /// HTTP client used for polling. When `None`, a process-wide client per
    /// (TLS or not, `local_addr`, `headers`, `tls`, `proxy`) is created on
    /// first use and shared by all polling sockets with the same settings.
    /// When set, its own settings apply and `local_addr` / `headers` /
    /// `tls` / `proxy` are ignored for polling requests.
    pub http_client: Option<reqwest::Client>,
    /// Certificate checks for `https://` / `wss://`, on both transports.
    pub tls: TlsConfig,
    /// HTTP proxy for both transports (WebSocket through a `CONNECT`
    /// tunnel). Default: from the environment, as reqwest reads it.
    pub proxy: ProxyConfig,
}

/// Certificate checks for `https://` / `wss://` targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    /// Also trust the certificates of this PEM file (a private CA, a
    /// self-signed staging certificate), besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and host name. For staging set-ups only:
    /// the connection is then open to anyone on the path.
    pub insecure: bool,
}

/// Which HTTP proxy connections go through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum ProxyConfig {
    /// `HTTPS_PROXY` (for `https://`/`wss://` targets), `HTTP_PROXY` (for
    /// `http://`/`ws://`), `ALL_PROXY`, each also in lower case, and
    /// `NO_PROXY`: reqwest's rules, applied to WebSocket connections too.
    #[default]
    Env,
    /// No proxy, whatever the environment says.
    Direct,
    /// This proxy (`http://[user:password@]host:port`) for every target.
    Url(String),
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:3000".to_owned(),
            path: "/socket.io/".to_owned(),
            namespace: "/".to_owned(),
            auth: None,
            transport: Transport::WebSocket,
            connect_timeout: Duration::from_secs(10),
            local_addr: None,
            headers: Vec::new(),
            ws_read_buffer_size: 4096,
            frame_tap: None,
            event_hook: None,
            http_client: None,
            tls: TlsConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

impl ClientConfig {
    /// Defaults with the given base URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the CONNECT auth payload.
    pub fn with_auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the Engine.IO path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Binds the client socket(s) to this local IP.
    pub fn with_local_addr(mut self, addr: IpAddr) -> Self {
        self.local_addr = Some(addr);
        self
    }

    /// Adds an HTTP header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`event_hook`](Self::event_hook).
    pub fn with_event_hook(mut self, hook: EventHook) -> Self {
        self.event_hook = Some(hook);
        self
    }

    /// Sets the frame tap.
    pub fn with_frame_tap(mut self, tap: UnboundedSender<Frame>) -> Self {
        self.frame_tap = Some(tap);
        self
    }

    /// Sets the certificate checks.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the proxy.
    pub fn with_proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = proxy;
        self
    }

    /// Sets the WebSocket read buffer size.
    pub fn with_ws_read_buffer_size(mut self, size: usize) -> Self {
        self.ws_read_buffer_size = size;
        self
    }

    /// Namespace with a leading `/`.
    pub(crate) fn normalized_namespace(&self) -> String {
        if self.namespace.is_empty() {
            "/".to_owned()
        } else if self.namespace.starts_with('/') {
            self.namespace.clone()
        } else {
            format!("/{}", self.namespace)
        }
    }
}

/// A function the connection task calls with each received EVENT of the
/// socket's namespace, before queueing it; when it returns `true` the event
/// was handled and is not queued for [`Socket::next`](crate::Socket::next).
///
/// For receivers that only count or time most events (the load generator):
/// such an event then costs no task wake-up, no queue entry and no
/// `serde_json::Value` for its arguments ([`EventView`] borrows from the
/// frame). It runs on the connection task, so it must be quick and must not
/// block. Frame taps, invalid-frame reporting and acks are not affected.
#[derive(Clone)]
pub struct EventHook(Arc<dyn Fn(&EventView<'_>) -> bool + Send + Sync>);

impl EventHook {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&EventView<'_>) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Calls the hook: `true` when it handled the event.
    pub(crate) fn handles(&self, event: &EventView<'_>) -> bool {
        (self.0)(event)
    }
}

impl std::fmt::Debug for EventHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHook")
    }
}
