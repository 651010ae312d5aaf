//! Error and disconnect-reason types.

use serde_json::Value;

use crate::packet::PacketError;

/// Why [`connect`](crate::connect) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    /// The server answered the Socket.IO CONNECT with CONNECT_ERROR (`44`).
    #[error("connect_error: {message}")]
    Rejected {
        /// The `message` field, e.g. `Authentication failed: Invalid token`.
        message: String,
        /// The optional `data` field.
        data: Option<Value>,
    },
    /// The URL or another config field is unusable.
    #[error("invalid config: {0}")]
    Config(String),
    /// TCP / TLS / WebSocket failure, or the transport closed during connect.
    #[error("transport error: {0}")]
    Transport(String),
    /// A polling HTTP request failed or returned a non-success status.
    #[error("http error: {0}")]
    Http(String),
    /// The Engine.IO handshake or upgrade did not go as the protocol says.
    #[error("handshake error: {0}")]
    Handshake(String),
    /// A frame received during connect could not be decoded.
    #[error("protocol error: {0}")]
    Protocol(#[from] PacketError),
    /// The connect sequence did not finish within `connect_timeout`.
    #[error("connect timed out")]
    Timeout,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed (or closing).
    #[error("socket disconnected")]
    Disconnected,
}

/// Why [`emit_with_ack`](crate::SocketHandle::emit_with_ack) returned no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No ack arrived within the timeout.
    #[error("ack timed out")]
    Timeout,
    /// The connection closed before the ack arrived (or before sending).
    #[error("socket disconnected")]
    Disconnected,
}

/// Why [`wait_for`](crate::Socket::wait_for) returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// No matching event within the timeout.
    #[error("timed out waiting for event")]
    Timeout,
    /// The connection ended before a matching event arrived.
    #[error("disconnected: {0}")]
    Disconnected(DisconnectReason),
}

/// Why a connected socket ended (final [`Incoming::Disconnected`](crate::Incoming::Disconnected)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The server sent a Socket.IO DISCONNECT (`41`) for our namespace.
    #[error("server disconnect")]
    ServerDisconnect,
    /// This client called [`disconnect`](crate::SocketHandle::disconnect) or dropped the socket.
    #[error("client disconnect")]
    ClientDisconnect,
    /// The server closed the Engine.IO session (`1`) or the transport
    /// (WebSocket close frame, end of stream, polling session gone).
    #[error("transport close")]
    TransportClose,
    /// No server ping within `pingInterval + pingTimeout`.
    #[error("ping timeout")]
    PingTimeout,
    /// I/O, WebSocket or HTTP error.
    #[error("transport error: {0}")]
    TransportError(String),
}

/// The error and its sources on one line (reqwest's own `Display` hides
/// "connection refused" in the source chain); also used by the driver for
/// its HTTP calls.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
