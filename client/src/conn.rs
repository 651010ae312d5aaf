//! Connection establishment (Engine.IO handshake, optional upgrade,
//! Socket.IO CONNECT) and the per-connection task for each transport.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{ClientConfig, Direction, EventHook, Frame, Transport};
use crate::error::{ConnectError, DisconnectReason};
use crate::net;
use crate::packet::{self, EioPacket, EventView, OpenPacket, PacketError, SioPacket};
use crate::socket::{self, Event, Incoming, Outgoing, Shared, Socket, SocketHandle};

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the close sequence (DISCONNECT, close frame / close POST) may take.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects: Engine.IO open, optional polling→WebSocket upgrade, then
/// Socket.IO CONNECT for the configured namespace. Returns once the server
/// accepted the namespace (`40{"sid":...}`), or with
/// [`ConnectError::Rejected`] if it answered CONNECT_ERROR (`44`).
///
/// The whole sequence is bounded by [`ClientConfig::connect_timeout`].
pub async fn connect(config: ClientConfig) -> Result<Socket, ConnectError> {
    let timeout = config.connect_timeout;
    tokio::time::timeout(timeout, connect_inner(config))
        .await
        .map_err(|_| ConnectError::Timeout)?
}

async fn connect_inner(config: ClientConfig) -> Result<Socket, ConnectError> {
    let endpoint = Endpoint::parse(&config)?;
    let nsp = config.normalized_namespace();
    let connect_frame = SioPacket::Connect {
        nsp: nsp.clone(),
        data: config.auth.clone(),
    }
    .encode_frame();
    let tap = config.frame_tap.clone();
    let hook = config.event_hook.clone();

    match config.transport {
        Transport::WebSocket => {
            let mut ws = ws_connect(&endpoint, None, &config).await?;
            let first = ws_recv_text(&mut ws, tap.as_ref()).await?;
            let open = match EioPacket::decode(&first)? {
                EioPacket::Open(open) => open,
                other => {
                    return Err(ConnectError::Handshake(format!(
                        "expected open packet, got {:?}",
                        other.encode()
                    )));
                }
            };
            ws_send_text(&mut ws, tap.as_ref(), connect_frame)
                .await
                .map_err(ConnectError::Transport)?;
            let mut pending = Vec::new();
            let sid = loop {
                let text = ws_recv_text(&mut ws, tap.as_ref()).await?;
                match classify(&text, &nsp)? {
                    Handshake::Connected(sid) => break sid,
                    Handshake::Ping => ws_send_text(&mut ws, tap.as_ref(), "3".to_owned())
                        .await
                        .map_err(ConnectError::Transport)?,
                    Handshake::Other => pending.push(text),
                }
            };
            Ok(spawn_ws(ws, nsp, sid, open, (tap, hook), pending))
        }
        Transport::Polling | Transport::PollingThenUpgrade => {
            let http = match &config.http_client {
                Some(client) => client.clone(),
                None => http_client_for(&config, endpoint.secure)?,
            };
            let mut polling = Polling {
                http,
                endpoint: endpoint.clone(),
                sid: None,
                counter: 0,
            };
            let body = polling.get().await.map_err(ConnectError::Http)?;
            let mut frames = packet::split_payload(&body);
            let first = frames.next().unwrap_or_default();
            socket::tap(tap.as_ref(), Direction::Received, Transport::Polling, first);
            let open = match EioPacket::decode(first)? {
                EioPacket::Open(open) => open,
                other => {
                    return Err(ConnectError::Handshake(format!(
                        "expected open packet, got {:?}",
                        other.encode()
                    )));
                }
            };
            polling.sid = Some(open.sid.clone());
            let mut pending: Vec<String> = Vec::new();
            let mut replies: Vec<String> = Vec::new();
            for text in frames {
                socket::tap(tap.as_ref(), Direction::Received, Transport::Polling, text);
                match EioPacket::decode(text) {
                    Ok(EioPacket::Ping) => replies.push("3".to_owned()),
                    _ => pending.push(text.to_owned()),
                }
            }
            replies.push(connect_frame);
            polling
                .post_frames(&replies, tap.as_ref())
                .await
                .map_err(ConnectError::Http)?;

            let mut sid = None;
            while sid.is_none() {
                let body = polling.get().await.map_err(ConnectError::Http)?;
                let mut replies = Vec::new();
                for text in packet::split_payload(&body) {
                    socket::tap(tap.as_ref(), Direction::Received, Transport::Polling, text);
                    if sid.is_some() {
                        pending.push(text.to_owned());
                        continue;
                    }
                    match classify(text, &nsp)? {
                        Handshake::Connected(s) => sid = Some(s),
                        Handshake::Ping => replies.push("3".to_owned()),
                        Handshake::Other => pending.push(text.to_owned()),
                    }
                }
                if !replies.is_empty() {
                    polling
                        .post_frames(&replies, tap.as_ref())
                        .await
                        .map_err(ConnectError::Http)?;
                }
            }
            let sid = sid.unwrap_or_default();

            let upgrade = config.transport == Transport::PollingThenUpgrade
                && open.upgrades.iter().any(|u| u == "websocket");
            if upgrade {
                let ws = ws_upgrade(&endpoint, &open.sid, &config).await?;
                Ok(spawn_ws(ws, nsp, sid, open, (tap, hook), pending))
            } else {
                Ok(spawn_polling(polling, nsp, sid, open, (tap, hook), pending))
            }
        }
    }
}

/// What a frame means while waiting for the Socket.IO CONNECT answer.
enum Handshake {
    Connected(String),
    Ping,
    Other,
}

fn classify(text: &str, nsp: &str) -> Result<Handshake, ConnectError> {
    if text == "2" {
        return Ok(Handshake::Ping);
    }
    if text == "1" {
        return Err(ConnectError::Transport(
            "server closed the session during connect".to_owned(),
        ));
    }
    let Some(sio) = text.strip_prefix('4') else {
        return Ok(Handshake::Other);
    };
    match SioPacket::decode(sio) {
        Ok(SioPacket::Connect { nsp: n, data }) if n == nsp => {
            let sid = data
                .as_ref()
                .and_then(|d| d.get("sid"))
                .and_then(|s| s.as_str())
                .ok_or_else(|| ConnectError::Handshake("CONNECT answer without sid".to_owned()))?;
            Ok(Handshake::Connected(sid.to_owned()))
        }
        Ok(SioPacket::ConnectError {
            nsp: n,
            message,
            data,
        }) if n == nsp => Err(ConnectError::Rejected { message, data }),
        Ok(SioPacket::Disconnect { nsp: n }) if n == nsp => Err(ConnectError::Handshake(
            "server sent DISCONNECT during connect".to_owned(),
        )),
        _ => Ok(Handshake::Other),
    }
}

/// The frame tap and the event hook of a connection.
type Observers = (Option<UnboundedSender<Frame>>, Option<EventHook>);

fn spawn_ws(
    ws: WsStream,
    nsp: String,
    sid: String,
    open: OpenPacket,
    (tap, hook): Observers,
    pending: Vec<String>,
) -> Socket {
    let window = ping_window(&open);
    let shared = Arc::new(Shared::new(nsp, sid, open, Transport::WebSocket, tap, hook));
    let task = tokio::spawn(ws_loop(ws, shared.clone(), pending, window)).abort_handle();
    Socket::new(SocketHandle { shared, task })
}

fn spawn_polling(
    polling: Polling,
    nsp: String,
    sid: String,
    open: OpenPacket,
    (tap, hook): Observers,
    pending: Vec<String>,
) -> Socket {
    let window = ping_window(&open);
    let shared = Arc::new(Shared::new(nsp, sid, open, Transport::Polling, tap, hook));
    let task = tokio::spawn(polling_loop(polling, shared.clone(), pending, window)).abort_handle();
    Socket::new(SocketHandle { shared, task })
}

fn ping_window(open: &OpenPacket) -> Duration {
    Duration::from_millis(open.ping_interval.saturating_add(open.ping_timeout))
}

// ---------------------------------------------------------------------------
// Endpoint / URLs
// ---------------------------------------------------------------------------

#[derive(Clone)]
pub(crate) struct Endpoint {
    /// Parsed base URL with the Engine.IO path set and user query kept.
    base: Url,
    pub(crate) secure: bool,
}

impl Endpoint {
    pub(crate) fn parse(config: &ClientConfig) -> Result<Self, ConnectError> {
        let mut base =
            Url::parse(&config.url).map_err(|e| ConnectError::Config(format!("url: {e}")))?;
        let secure = match base.scheme() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => return Err(ConnectError::Config(format!("unsupported scheme {other}"))),
        };
        if base.host_str().is_none() {
            return Err(ConnectError::Config("url has no host".to_owned()));
        }
        let path = if config.path.starts_with('/') {
            config.path.clone()
        } else {
            format!("/{}", config.path)
        };
        base.set_path(&path);
        base.set_fragment(None);
        Ok(Self { base, secure })
    }

    pub(crate) fn url(&self, websocket: bool, sid: Option<&str>, t: Option<u64>) -> Url {
        let mut url = self.base.clone();
        let scheme = match (websocket, self.secure) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, true) => "https",
            (false, false) => "http",
        };
        // Switching between special schemes (http/https/ws/wss) always works.
        let _ = url.set_scheme(scheme);
        let user_query: Vec<(String, String)> = self
            .base
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("EIO", "4");
            q.append_pair("transport", if websocket { "websocket" } else { "polling" });
            if let Some(t) = t {
                q.append_pair("t", &t.to_string());
            }
            if let Some(sid) = sid {
                q.append_pair("sid", sid);
            }
            for (k, v) in &user_query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Host (IPv6 bracketed) and port of the target.
    fn host_port(&self) -> (&str, u16) {
        let port = self
            .base
            .port_or_known_default()
            .unwrap_or(if self.secure { 443 } else { 80 });
        (self.base.host_str().unwrap_or_default(), port)
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, ConnectError> {
        let (host, port) = self.host_port();
        // IPv6 literals come bracketed; IP literals resolve without DNS.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ConnectError::Transport(format!("resolve {host}: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(ConnectError::Transport("no address for host".to_owned()));
        }
        Ok(addrs)
    }
}

/// Key of the process-wide polling HTTP client cache.
type HttpKey = (
    bool,
    Option<std::net::IpAddr>,
    Vec<(String, String)>,
    crate::config::TlsConfig,
    crate::config::ProxyConfig,
);

/// Polling HTTP client for this config, shared process-wide per
/// (TLS or not, local address, headers).
///
/// A `reqwest::Client` with TLS roots loaded costs ~0.9 MiB, so building
/// one per socket does not scale to thousands of polling clients; sharing is
/// what reqwest recommends anyway (the pool opens one connection per
/// in-flight request, so sockets never wait for each other's long polls).
/// Plain `http://` clients skip loading TLS roots (~26 KiB instead).
pub(crate) fn http_client_for(
    config: &ClientConfig,
    secure: bool,
) -> Result<reqwest::Client, ConnectError> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<HttpKey, reqwest::Client>>,
    > = std::sync::OnceLock::new();
    let key: HttpKey = (
        secure,
        config.local_addr,
        config.headers.clone(),
        config.tls.clone(),
        config.proxy.clone(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(client) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(client.clone());
    }
    let client = build_http_client(config, secure)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, client.clone());
    Ok(client)
}

fn build_http_client(config: &ClientConfig, secure: bool) -> Result<reqwest::Client, ConnectError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ConnectError::Config(format!("header {name}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ConnectError::Config(format!("header value: {e}")))?;
        headers.append(name, value);
    }
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .tcp_nodelay(true);
    if !secure {
        builder = builder.tls_certs_only(Vec::<reqwest::Certificate>::new());
    }
    if let Some(ip) = config.local_addr {
        builder = builder.local_address(ip);
    }
    builder = net::http_settings(builder, config, secure)?;
    builder
        .build()
        .map_err(|e| ConnectError::Config(format!("http client: {e}")))
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

pub(crate) async fn tcp_connect(
    addrs: &[SocketAddr],
    local: Option<std::net::IpAddr>,
) -> Result<TcpStream, ConnectError> {
    let mut last = String::from("no address");
    for &addr in addrs {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let attempt = async {
            let socket = socket?;
            if let Some(ip) = local {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(ConnectError::Transport(last))
}

pub(crate) async fn ws_connect(
    endpoint: &Endpoint,
    sid: Option<&str>,
    config: &ClientConfig,
) -> Result<WsStream, ConnectError> {
    let url = endpoint.url(true, sid, None);
    let (host, port) = endpoint.host_port();
    let stream = match net::proxy_for(config, endpoint.secure, host, port)? {
        Some(proxy) => net::tunnel(&proxy, host, port, config.local_addr).await?,
        None => tcp_connect(&endpoint.resolve().await?, config.local_addr).await?,
    };
    let ws_config = WebSocketConfig::default().read_buffer_size(config.ws_read_buffer_size);
    if !endpoint.secure {
        return plain_ws_handshake(stream, &url, &config.headers, ws_config).await;
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Config(format!("request: {e}")))?;
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ConnectError::Config(format!("header {name}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ConnectError::Config(format!("header value: {e}")))?;
        request.headers_mut().append(name, value);
    }
    let connector = tokio_tungstenite::Connector::NativeTls(net::tls_connector(&config.tls)?);
    let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
        request,
        stream,
        Some(ws_config),
        Some(connector),
    )
    .await
    .map_err(|e| ConnectError::Transport(format!("websocket: {e}")))?;
    Ok(ws)
}

/// Upper bound for the HTTP response head of the WebSocket handshake.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// RFC 6455 client handshake over plain TCP (`ws://`).
///
/// tungstenite's own client handshake reads the response through a 4 KiB
/// buffer that then becomes the connection's read buffer, whatever
/// `read_buffer_size` says, and allocates a second 4 KiB chunk on the way.
/// Doing the (small) handshake here makes `ws_read_buffer_size` the real
/// per-connection read buffer, which matters with 10k+ clients. `wss://`
/// still goes through tokio-tungstenite (TLS).
async fn plain_ws_handshake(
    mut stream: TcpStream,
    url: &Url,
    headers: &[(String, String)],
    ws_config: WebSocketConfig,
) -> Result<WsStream, ConnectError> {
    use std::fmt::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
    use tokio_tungstenite::tungstenite::protocol::Role;

    let io_err = |e: std::io::Error| ConnectError::Transport(format!("websocket: {e}"));
    let host = url.host_str().unwrap_or_default();
    let key = generate_key();
    let mut request = String::with_capacity(256);
    let _ = write!(request, "GET {}", url.path());
    if let Some(query) = url.query() {
        let _ = write!(request, "?{query}");
    }
    let _ = write!(request, " HTTP/1.1\r\nHost: {host}");
    if let Some(port) = url.port() {
        let _ = write!(request, ":{port}");
    }
    let _ = write!(
        request,
        "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    );
    for (name, value) in headers {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ConnectError::Config(format!("header {name}: {e}")))?;
        HeaderValue::from_str(value)
            .map_err(|e| ConnectError::Config(format!("header value: {e}")))?;
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;
    drop(request);

    // Whatever follows the response head (the server may send the open
    // packet right away) stays in `buf`, which becomes the read buffer.
    let mut buf: Vec<u8> = Vec::with_capacity(ws_config.read_buffer_size.max(256));
    let head_len = loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_RESPONSE_HEAD {
                return Err(ConnectError::Handshake(
                    "response head too large".to_owned(),
                ));
            }
            buf.reserve(buf.len());
        }
        let read = stream.read_buf(&mut buf).await.map_err(io_err)?;
        if read == 0 {
            return Err(ConnectError::Transport(
                "connection closed during websocket handshake".to_owned(),
            ));
        }
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    {
        let head = String::from_utf8_lossy(&buf[..head_len]);
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or_default();
        let code = status.split(' ').nth(1).unwrap_or_default();
        if code != "101" {
            return Err(ConnectError::Handshake(format!(
                "websocket upgrade refused: {status}"
            )));
        }
        let expected = derive_accept_key(key.as_bytes());
        let mut accepted = false;
        let mut upgraded = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("sec-websocket-accept") {
                accepted = value == expected;
            } else if name.eq_ignore_ascii_case("upgrade") {
                upgraded = value.eq_ignore_ascii_case("websocket");
            }
        }
        if !accepted || !upgraded {
            return Err(ConnectError::Handshake(
                "invalid websocket upgrade response".to_owned(),
            ));
        }
    }
    buf.drain(..head_len);
    Ok(WebSocketStream::from_partially_read(
        MaybeTlsStream::Plain(stream),
        buf,
        Role::Client,
        Some(ws_config),
    )
    .await)
}

/// Polling→WebSocket upgrade: `2probe` → `3probe` → `5`.
async fn ws_upgrade(
    endpoint: &Endpoint,
    eio_sid: &str,
    config: &ClientConfig,
) -> Result<WsStream, ConnectError> {
    let tap = config.frame_tap.as_ref();
    let mut ws = ws_connect(endpoint, Some(eio_sid), config).await?;
    ws_send_text(&mut ws, tap, EioPacket::PingProbe.encode())
        .await
        .map_err(ConnectError::Transport)?;
    let answer = ws_recv_text(&mut ws, tap).await?;
    if answer != "3probe" {
        return Err(ConnectError::Handshake(format!(
            "expected 3probe, got {answer:?}"
        )));
    }
    ws_send_text(&mut ws, tap, EioPacket::Upgrade.encode())
        .await
        .map_err(ConnectError::Transport)?;
    Ok(ws)
}

async fn ws_send_text(
    ws: &mut WsStream,
    tap: Option<&UnboundedSender<Frame>>,
    text: String,
) -> Result<(), String> {
    socket::tap(tap, Direction::Sent, Transport::WebSocket, &text);
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}

/// Next text frame during connect (control frames are skipped).
pub(crate) async fn ws_recv_text(
    ws: &mut WsStream,
    tap: Option<&UnboundedSender<Frame>>,
) -> Result<String, ConnectError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                socket::tap(
                    tap,
                    Direction::Received,
                    Transport::WebSocket,
                    text.as_str(),
                );
                return Ok(text.as_str().to_owned());
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(ConnectError::Handshake(
                    "unexpected binary frame".to_owned(),
                ));
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(ConnectError::Transport(
                    "connection closed during connect".to_owned(),
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ConnectError::Transport(format!("websocket: {e}"))),
        }
    }
}

/// What the connection task must do after a received frame.
enum Step {
    Continue,
    /// Server ping: answer `3` and reset the ping timer.
    Ping,
    End(DisconnectReason),
}

/// Handles one received Engine.IO frame on an established connection.
fn handle_frame(shared: &Shared, text: &str) -> Step {
    let received_at = Instant::now();
    let Some(sio) = text.strip_prefix('4') else {
        return match EioPacket::decode(text) {
            Ok(EioPacket::Ping) => Step::Ping,
            Ok(EioPacket::Close) => Step::End(DisconnectReason::TransportClose),
            Ok(EioPacket::Open(_)) => {
                shared.push_incoming(Incoming::Invalid {
                    frame: text.to_owned(),
                    error: PacketError::InvalidPayload {
                        packet: "OPEN",
                        reason: "unexpected open packet on an open session",
                    },
                });
                Step::Continue
            }
            Ok(_) => Step::Continue,
            Err(error) => {
                shared.push_incoming(Incoming::Invalid {
                    frame: text.to_owned(),
                    error,
                });
                Step::Continue
            }
        };
    };
    // Events the hook handles are only looked at, never queued.
    if let Some(hook) = shared.hook()
        && let Some(view) = EventView::parse(sio)
        && view.nsp == shared.nsp
        && hook.handles(&view)
    {
        return Step::Continue;
    }
    match SioPacket::decode(sio) {
        Ok(SioPacket::Event {
            nsp,
            id,
            name,
            args,
        }) if nsp == shared.nsp => {
            shared.push_incoming(Incoming::Event(Event {
                name,
                args,
                ack_id: id,
                received_at,
            }));
        }
        Ok(SioPacket::Ack { nsp, id, args }) if nsp == shared.nsp => {
            if !shared.resolve_ack(id, args) {
                tracing::debug!(id, "ack for unknown or expired id");
            }
        }
        Ok(SioPacket::Disconnect { nsp }) if nsp == shared.nsp => {
            return Step::End(DisconnectReason::ServerDisconnect);
        }
        Ok(other) => {
            tracing::debug!(nsp = other.nsp(), "ignoring packet: {}", other.encode());
        }
        Err(error) => shared.push_incoming(Incoming::Invalid {
            frame: text.to_owned(),
            error,
        }),
    }
    Step::Continue
}

async fn ws_loop(mut ws: WsStream, shared: Arc<Shared>, pending: Vec<String>, window: Duration) {
    // Keep this future small: it lives as long as the connection (one per
    // client in load tests). Rare paths (close) are boxed.
    let sleep = tokio::time::sleep(window);
    tokio::pin!(sleep);
    // tokio-tungstenite keeps the last waker of each direction. The connect
    // sequence ran in the caller's task, so until this task writes, that
    // task (its whole allocation, e.g. a finished JoinSet task) stays
    // referenced. A no-op flush registers our own waker instead.
    if let Err(e) = ws.flush().await {
        shared.finish(DisconnectReason::TransportError(e.to_string()));
        return;
    }
    // Frames received during connect are handled first, in order.
    let mut pending = pending;
    pending.reverse();

    let reason = loop {
        let step = if let Some(text) = pending.pop() {
            if pending.is_empty() {
                pending = Vec::new();
            }
            handle_frame(&shared, &text)
        } else if let Some(item) = shared.pop_out() {
            match item {
                Outgoing::Frame(text) => {
                    if let Err(e) = ws_send_text(&mut ws, shared.tap_sender(), text).await {
                        break DisconnectReason::TransportError(e);
                    }
                    continue;
                }
                Outgoing::Close => {
                    Box::pin(ws_close(&mut ws, &shared, true)).await;
                    break DisconnectReason::ClientDisconnect;
                }
            }
        } else {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        shared.tap(Direction::Received, Transport::WebSocket, text.as_str());
                        handle_frame(&shared, text.as_str())
                    }
                    Some(Ok(Message::Binary(data))) => {
                        shared.push_incoming(Incoming::Invalid {
                            frame: format!("<{} binary bytes>", data.len()),
                            error: PacketError::BinaryEio,
                        });
                        Step::Continue
                    }
                    Some(Ok(Message::Close(_))) | None => break DisconnectReason::TransportClose,
                    Some(Ok(_)) => Step::Continue,
                    Some(Err(e)) => break DisconnectReason::TransportError(e.to_string()),
                },
                _ = shared.out_notify.notified() => Step::Continue,
                _ = &mut sleep => break DisconnectReason::PingTimeout,
            }
        };
        match step {
            Step::Continue => {}
            Step::Ping => {
                sleep.as_mut().reset(tokio::time::Instant::now() + window);
                if let Err(e) = ws_send_text(&mut ws, shared.tap_sender(), "3".to_owned()).await {
                    break DisconnectReason::TransportError(e);
                }
            }
            Step::End(reason) => {
                Box::pin(ws_close(&mut ws, &shared, false)).await;
                break reason;
            }
        }
    };
    shared.finish(reason);
}

/// Close sequence, bounded by [`CLOSE_TIMEOUT`]: optionally the Socket.IO
/// DISCONNECT for our namespace, then a WebSocket close frame, then wait for
/// the server's close (or end of stream).
async fn ws_close(ws: &mut WsStream, shared: &Shared, send_disconnect: bool) {
    let sequence = async {
        if send_disconnect {
            let bye = SioPacket::Disconnect {
                nsp: shared.nsp.clone(),
            }
            .encode_frame();
            if ws_send_text(ws, shared.tap_sender(), bye).await.is_err() {
                return;
            }
        }
        if ws.close(None).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sequence).await;
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct Polling {
    http: reqwest::Client,
    endpoint: Endpoint,
    sid: Option<String>,
    counter: u64,
}

impl Polling {
    fn next_url(&mut self) -> Url {
        self.counter += 1;
        self.endpoint
            .url(false, self.sid.as_deref(), Some(self.counter))
    }

    /// Starts a GET (long poll); the returned future owns everything it needs.
    fn get(&mut self) -> BoxFut<Result<String, String>> {
        let url = self.next_url();
        let request = self.http.get(url);
        Box::pin(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("GET status {}", status.as_u16()));
            }
            response.text().await.map_err(|e| e.to_string())
        })
    }

    /// Starts a POST of the given payload.
    fn post(&mut self, payload: String) -> BoxFut<Result<(), String>> {
        let url = self.next_url();
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
            .body(payload);
        Box::pin(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("POST status {}", status.as_u16()));
            }
            // Drain the body ("ok") so the connection can be reused.
            let _ = response.bytes().await;
            Ok(())
        })
    }

    async fn post_frames(
        &mut self,
        frames: &[String],
        tap: Option<&UnboundedSender<Frame>>,
    ) -> Result<(), String> {
        for frame in frames {
            socket::tap(tap, Direction::Sent, Transport::Polling, frame);
        }
        self.post(packet::join_payload(frames)).await
    }
}

async fn polling_loop(
    mut polling: Polling,
    shared: Arc<Shared>,
    pending: Vec<String>,
    window: Duration,
) {
    let sleep = tokio::time::sleep(window);
    tokio::pin!(sleep);
    // Frames to send with the next POST (pongs, user frames).
    let mut outbox: Vec<String> = Vec::new();
    let mut post: Option<BoxFut<Result<(), String>>> = None;
    let mut get = polling.get();

    let mut early_end = None;
    for text in &pending {
        match handle_frame(&shared, text) {
            Step::Continue => {}
            Step::Ping => {
                sleep.as_mut().reset(tokio::time::Instant::now() + window);
                outbox.push("3".to_owned());
            }
            Step::End(reason) => {
                early_end = Some(reason);
                break;
            }
        }
    }
    drop(pending);

    let reason = if let Some(reason) = early_end {
        reason
    } else {
        loop {
            if post.is_none() {
                let mut close = false;
                while let Some(item) = shared.pop_out() {
                    match item {
                        Outgoing::Frame(text) => outbox.push(text),
                        Outgoing::Close => {
                            close = true;
                            break;
                        }
                    }
                }
                if close {
                    outbox.push(
                        SioPacket::Disconnect {
                            nsp: shared.nsp.clone(),
                        }
                        .encode_frame(),
                    );
                    outbox.push(EioPacket::Close.encode());
                    let _ = tokio::time::timeout(
                        CLOSE_TIMEOUT,
                        polling.post_frames(&outbox, shared.tap_sender()),
                    )
                    .await;
                    break DisconnectReason::ClientDisconnect;
                }
                if !outbox.is_empty() {
                    for frame in &outbox {
                        shared.tap(Direction::Sent, Transport::Polling, frame);
                    }
                    post = Some(polling.post(packet::join_payload(&outbox)));
                    outbox = Vec::new();
                }
            }
            let posting = post.is_some();
            tokio::select! {
                body = &mut get => match body {
                    Ok(body) => {
                        let mut end = None;
                        for text in packet::split_payload(&body) {
                            shared.tap(Direction::Received, Transport::Polling, text);
                            match handle_frame(&shared, text) {
                                Step::Continue => {}
                                Step::Ping => {
                                    sleep.as_mut().reset(tokio::time::Instant::now() + window);
                                    outbox.push("3".to_owned());
                                }
                                Step::End(reason) => {
                                    end = Some(reason);
                                    break;
                                }
                            }
                        }
                        if let Some(reason) = end {
                            break reason;
                        }
                        get = polling.get();
                    }
                    Err(e) => break DisconnectReason::TransportError(e),
                },
                result = async { post.as_mut().expect("guarded by `posting`").await }, if posting => {
                    post = None;
                    if let Err(e) = result {
                        break DisconnectReason::TransportError(e);
                    }
                }
                _ = shared.out_notify.notified(), if !posting => {}
                _ = &mut sleep => break DisconnectReason::PingTimeout,
            }
        }
    };
    shared.finish(reason);
}
