//! A frame-rewriting reverse proxy for fault injection.
//!
//! It listens on `127.0.0.1:0` and forwards to an upstream base URL:
//! plain HTTP requests (the REST API, Engine.IO long-polling) go through
//! `reqwest`; WebSocket upgrades are accepted by hand (RFC 6455 handshake)
//! and relayed frame by frame to a `tokio-tungstenite` connection to the
//! upstream. A [`Fault`] rewrites what passes:
//!
//! - `down`: every server→client Engine.IO text packet (a WebSocket text
//!   frame, or one `\x1e`-separated packet of a polling response);
//! - `up`: the same for client→server packets;
//! - `request`: a plain HTTP request before it is forwarded (it may be
//!   answered by the proxy itself);
//! - `response`: a plain HTTP response before it is returned;
//! - `stall`: plain HTTP requests the proxy never answers.
//!
//! Loopback only; every connection task is aborted by [`Proxy::stop`] (or
//! when the proxy is dropped).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Rewrites one Engine.IO text packet; `None` drops it.
pub type FrameFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
/// Rewrites a request before it is forwarded; `Some` answers it instead.
pub type RequestFn = Arc<dyn Fn(&mut HttpRequest) -> Option<HttpResponse> + Send + Sync>;
/// Rewrites a response before it is returned.
pub type ResponseFn = Arc<dyn Fn(&HttpRequest, &mut HttpResponse) + Send + Sync>;
/// Requests the proxy never answers (until it is stopped).
pub type StallFn = Arc<dyn Fn(&HttpRequest) -> bool + Send + Sync>;

/// What the proxy changes. The default changes nothing.
#[derive(Clone, Default)]
pub struct Fault {
    pub down: Option<FrameFn>,
    pub up: Option<FrameFn>,
    pub request: Option<RequestFn>,
    pub response: Option<ResponseFn>,
    pub stall: Option<StallFn>,
}

impl Fault {
    pub fn none() -> Fault {
        Fault::default()
    }

    pub fn request(
        f: impl Fn(&mut HttpRequest) -> Option<HttpResponse> + Send + Sync + 'static,
    ) -> Fault {
        Fault {
            request: Some(Arc::new(f)),
            ..Fault::default()
        }
    }

    pub fn stall(f: impl Fn(&HttpRequest) -> bool + Send + Sync + 'static) -> Fault {
        Fault {
            stall: Some(Arc::new(f)),
            ..Fault::default()
        }
    }
}

/// A plain HTTP request as received from the client.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// Path and query, e.g. `/socket.io/?EIO=4&transport=polling`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, q) = self.target.split_once('?')?;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    fn is_polling(&self) -> bool {
        self.path().starts_with(SOCKET_PATH) && self.query("transport") == Some("polling")
    }
}

/// A plain HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// The Socket.IO path of the reference profile.
pub const SOCKET_PATH: &str = "/socket.io/";
/// Engine.IO's polling packet separator.
const RECORD_SEPARATOR: char = '\u{1e}';
const MAX_HEAD: usize = 64 * 1024;
/// Bound of one upstream HTTP exchange (a long-poll waits at most the ping
/// interval, 25 s with the test config).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(40);

struct Shared {
    upstream: String,
    upstream_ws: String,
    fault: Fault,
    http: reqwest::Client,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://HOST:PORT`).
    pub async fn start(upstream: &str, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let upstream = upstream.trim_end_matches('/').to_owned();
        let shared = Arc::new(Shared {
            upstream_ws: upstream.replacen("http://", "ws://", 1),
            upstream,
            fault,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(UPSTREAM_TIMEOUT)
                .build()
                .expect("proxy HTTP client"),
            tasks: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = accept_shared.clone();
                let task = tokio::spawn(async move {
                    let _ = serve_connection(stream, s).await;
                });
                let mut tasks = accept_shared.tasks.lock().expect("tasks lock");
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            accept,
            shared,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and cuts every relayed connection.
    pub fn stop(&self) {
        self.accept.abort();
        for t in self.shared.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Serves one client connection: HTTP/1.1 requests (keep-alive) until the
/// client closes or upgrades to WebSocket.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((method, target, headers)) = read_head(&mut reader).await? else {
            return Ok(());
        };
        let upgrade =
            header(&headers, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade {
            let leftover = reader.buffer().to_vec();
            let stream = reader.into_inner();
            return relay_websocket(stream, leftover, &target, &headers, shared).await;
        }
        let body = read_body(&mut reader, &headers).await?;
        let close = header(&headers, "connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let mut req = HttpRequest {
            method,
            target,
            headers,
            body,
        };
        let res = handle_http(&mut req, &shared).await;
        write_response(reader.get_mut(), &res, close).await?;
        if close {
            return Ok(());
        }
    }
}

async fn read_head(
    reader: &mut BufReader<TcpStream>,
) -> io::Result<Option<(String, String, Vec<(String, String)>)>> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    let mut size = line.len();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        size += n;
        if size > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some((method, target, headers)))
}

async fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    if header(headers, "transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size_text = line.trim().split(';').next().unwrap_or("0");
            let size = usize::from_str_radix(size_text, 16).map_err(io::Error::other)?;
            if size == 0 {
                // Trailers, then the final empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            line.clear();
            reader.read_line(&mut line).await?;
        }
    }
    let len = header(headers, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_response(stream: &mut TcpStream, res: &HttpResponse, close: bool) -> io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(res.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", res.status);
    for (k, v) in &res.headers {
        if !is_hop_by_hop(k) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: {}\r\n\r\n",
        res.body.len(),
        if close { "close" } else { "keep-alive" }
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&res.body).await?;
    stream.flush().await
}

/// Applies `f` to every packet of a polling payload; `None` when every
/// packet was dropped.
fn map_payload(f: &FrameFn, body: &[u8]) -> Option<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(body.to_vec());
    };
    if text.is_empty() {
        return Some(Vec::new());
    }
    let kept: Vec<String> = text.split(RECORD_SEPARATOR).filter_map(|p| f(p)).collect();
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(&RECORD_SEPARATOR.to_string()).into_bytes())
    }
}

async fn handle_http(req: &mut HttpRequest, shared: &Shared) -> HttpResponse {
    if let Some(f) = &shared.fault.stall
        && f(req)
    {
        // Ended by `Proxy::stop`, which aborts the connection task.
        std::future::pending::<()>().await;
    }
    if let Some(f) = &shared.fault.request
        && let Some(answer) = f(req)
    {
        return answer;
    }
    let polling = req.is_polling();
    if polling
        && req.method == "POST"
        && let Some(f) = &shared.fault.up
    {
        match map_payload(f, &req.body) {
            Some(body) => req.body = body,
            // Every packet dropped: the server never sees the request.
            None => return HttpResponse::new(200, "text/html", "ok"),
        }
    }
    let mut res = loop {
        let mut res = match forward(req, shared).await {
            Ok(r) => r,
            Err(e) => return HttpResponse::new(502, "text/plain", format!("proxy: {e}")),
        };
        if polling
            && req.method == "GET"
            && res.status == 200
            && let Some(f) = &shared.fault.down
        {
            match map_payload(f, &res.body) {
                Some(body) => res.body = body,
                // Every packet dropped: poll again, so the client sees
                // nothing of them.
                None => continue,
            }
        }
        break res;
    };
    if let Some(f) = &shared.fault.response {
        f(req, &mut res);
    }
    res
}

async fn forward(req: &HttpRequest, shared: &Shared) -> Result<HttpResponse, reqwest::Error> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut builder = shared
        .http
        .request(method, format!("{}{}", shared.upstream, req.target));
    for (k, v) in &req.headers {
        if !is_hop_by_hop(k) {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    if !req.body.is_empty() {
        builder = builder.body(req.body.clone());
    }
    let res = builder.send().await?;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = res.bytes().await?.to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Accepts the client's WebSocket upgrade once the upstream accepted the
/// same one, then relays frames both ways through the fault.
async fn relay_websocket(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    target: &str,
    headers: &[(String, String)],
    shared: Arc<Shared>,
) -> io::Result<()> {
    use tokio_tungstenite::tungstenite::Error as WsError;

    let upstream = match tokio::time::timeout(
        UPSTREAM_TIMEOUT,
        tokio_tungstenite::connect_async(format!("{}{target}", shared.upstream_ws)),
    )
    .await
    {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(WsError::Http(res))) => {
            let (parts, body) = res.into_parts();
            let answer = HttpResponse {
                status: parts.status.as_u16(),
                headers: Vec::new(),
                body: body.unwrap_or_default(),
            };
            return write_response(&mut stream, &answer, true).await;
        }
        Ok(Err(e)) => {
            let answer = HttpResponse::new(502, "text/plain", format!("proxy: {e}"));
            return write_response(&mut stream, &answer, true).await;
        }
        Err(_) => {
            let answer = HttpResponse::new(504, "text/plain", "proxy: upstream timeout");
            return write_response(&mut stream, &answer, true).await;
        }
    };
    let key = header(headers, "sec-websocket-key").unwrap_or_default();
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(head.as_bytes()).await?;
    let client = WebSocketStream::from_partially_read(stream, leftover, Role::Server, None).await;

    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let down = shared.fault.down.clone();
    let up = shared.fault.up.clone();
    let server_to_client = async {
        while let Some(Ok(msg)) = up_rx.next().await {
            let out = match msg {
                Message::Text(t) => match &down {
                    Some(f) => match f(t.as_str()) {
                        Some(t) => Message::text(t),
                        None => continue,
                    },
                    None => Message::Text(t),
                },
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                other => other,
            };
            let closing = matches!(out, Message::Close(_));
            if client_tx.send(out).await.is_err() || closing {
                break;
            }
        }
    };
    let client_to_server = async {
        while let Some(Ok(msg)) = client_rx.next().await {
            let out = match msg {
                Message::Text(t) => match &up {
                    Some(f) => match f(t.as_str()) {
                        Some(t) => Message::text(t),
                        None => continue,
                    },
                    None => Message::Text(t),
                },
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                other => other,
            };
            let closing = matches!(out, Message::Close(_));
            if up_tx.send(out).await.is_err() || closing {
                break;
            }
        }
    };
    tokio::select! {
        _ = server_to_client => {}
        _ = client_to_server => {}
    }
    let bounded = Duration::from_secs(1);
    let _ = tokio::time::timeout(bounded, client_tx.close()).await;
    let _ = tokio::time::timeout(bounded, up_tx.close()).await;
    Ok(())
}
