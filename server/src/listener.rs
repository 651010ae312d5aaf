//! The HTTP listener: accepts TCP connections under a global and a
//! per-address cap and serves each with hyper's HTTP/1 connection and a
//! timer, so that a request head must arrive in time.
//!
//! `axum::serve` has none of this (no timer, so hyper's header-read timeout
//! is off, and no cap): a few thousand half-sent requests held their file
//! descriptors for good until the process could accept nothing. Here:
//!
//! - a connection over `max_connections`, or over `max_per_address` from
//!   one IP address, is closed as soon as it is accepted (before a byte is
//!   read);
//! - a connection's slot is held by its I/O object (`Counted`), so it is
//!   freed on every path: the HTTP connection ending, or, after a
//!   WebSocket upgrade (hyper hands the same I/O object to the
//!   WebSocket), the WebSocket closing;
//! - every request carries the peer's address (axum's `ConnectInfo`),
//!   for the per-address limits ([`peer_ip`]);
//! - a request head (request line and headers) must arrive within
//!   `header_timeout` of the connection's accept or of the end of the
//!   previous response; hyper restarts that timer while a keep-alive
//!   connection waits for its next request, so it is also the idle
//!   timeout. A long-poll GET that the server holds open is not waiting
//!   for a head: it is not cut.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::HttpLimits;
use crate::metrics::HttpMetrics;

/// How long the accept loop pauses after an accept error that is not the
/// peer's (out of file descriptors, out of memory), so that it does not
/// spin while nothing can be accepted.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Open connections, in total and per peer address.
#[derive(Debug)]
struct Slots {
    limits: HttpLimits,
    metrics: HttpMetrics,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One open connection's place in [`Slots`], given back on drop.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    /// A slot for a connection from `ip`, or `None` when a cap is reached.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().expect("slots lock");
        if open.total >= self.limits.max_connections {
            self.metrics.refused_total_cap.inc();
            return None;
        }
        let from_ip = open.per_address.get(&ip).copied().unwrap_or(0);
        if self.limits.max_per_address != 0 && from_ip >= self.limits.max_per_address {
            self.metrics.refused_address_cap.inc();
            return None;
        }
        open.total += 1;
        open.per_address.insert(ip, from_ip + 1);
        self.metrics.open.inc();
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("slots lock");
        open.total -= 1;
        // The map holds only addresses with open connections.
        if let Some(n) = open.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.ip);
            }
        }
        self.slots.metrics.open.dec();
    }
}

/// A TCP stream holding its connection's [`Slot`].
#[derive(Debug)]
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Whether an accept error concerns only the connection being accepted
/// (the loop goes on at once) rather than the process (it pauses).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The client's IP address, which [`serve`] records on every request
/// (axum's `ConnectInfo`).
pub fn peer_ip(parts: &axum::http::request::Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Serves `app` on `listener` until `stop` resolves; then stops accepting,
/// asks every HTTP connection to finish its request in flight and waits
/// for them (upgraded WebSockets are not waited for: they are the Socket.IO
/// layer's to close).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: HttpMetrics,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Slots {
        limits,
        metrics,
        open: Mutex::new(Open::default()),
    });
    // Each connection task holds a receiver: `closed()` resolves once all
    // have ended. A sent value asks them to shut down gracefully.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(slot) = slots.take(peer.ip()) else {
            // Dropping the stream closes it before anything is read.
            continue;
        };
        let io = Counted {
            stream,
            _slot: slot,
        };
        tokio::spawn(serve_connection(
            io,
            peer,
            app.clone(),
            slots.limits.header_timeout,
            shutdown_rx.clone(),
        ));
    }
    drop(listener);
    drop(shutdown_rx);
    let _ = shutdown_tx.send(true);
    shutdown_tx.closed().await;
}

async fn serve_connection(
    io: Counted,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        hyper::service::Service::call(&app, req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(%peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            changed = shutdown.changed(), if !asked => {
                asked = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
