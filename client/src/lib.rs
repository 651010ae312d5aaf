//! `sioclient`: a lean async Socket.IO client (Engine.IO v4 + Socket.IO v5
//! protocol) on tokio.
//!
//! # Where it sits
//!
//! It is the client side of this toolkit, used by:
//! * the **conformance runner**, which checks every frame a server sends
//!   ([`ClientConfig::frame_tap`], [`Incoming::Invalid`], the pure
//!   [`packet`] codec) and sends malformed frames on purpose
//!   ([`SocketHandle::send_raw`]);
//! * the **load generator**, which runs 10k+ clients per process: one tokio
//!   task per connection, a small eager WebSocket read buffer
//!   ([`ClientConfig::ws_read_buffer_size`], 4 KiB by default), queues that
//!   allocate only when used, optional local source addresses
//!   ([`ClientConfig::local_addr`]), and an [`EventHook`] that handles the
//!   events it only counts and times in the connection task itself (no
//!   second task wake-up, no `serde_json::Value` per event);
//! * the **server's integration tests**.
//!
//! Both tools first [`probe`] their target: one Engine.IO handshake, to
//! tell "nothing there" apart from a protocol failure.
//!
//! # Why not `rust_socketio`
//!
//! * it draws ack ids at random from 0..999, so concurrent acks on one
//!   socket collide and get mis-routed; here ack ids come from a per-socket
//!   counter;
//! * its `connect` returns before the server accepted the namespace; here
//!   [`connect`] returns only after `40{"sid":..}` and reports
//!   CONNECT_ERROR as [`ConnectError::Rejected`] with the server's message;
//! * it has no ack timeouts; here [`SocketHandle::emit_with_ack`] takes one.
//!
//! # Model
//!
//! One [`Socket`] = one Engine.IO session = one namespace: every
//! [`connect`] call opens its own connection (like the JS client's
//! `forceNew`); there is no multiplexing of namespaces.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use serde_json::json;
//! use sioclient::{ClientConfig, Incoming, Transport};
//!
//! let config = ClientConfig::new("http://127.0.0.1:3000")
//!     .with_namespace("/rooms/room_1")
//!     .with_auth(json!({"token": "secret"}))
//!     .with_transport(Transport::WebSocket);
//! let mut socket = sioclient::connect(config).await?;
//! socket.emit("chat", json!({"text": "hi"}))?;
//! let answer = socket
//!     .emit_with_ack("echo", vec![json!(1), json!("two")], Duration::from_secs(5))
//!     .await?;
//! println!("ack: {answer:?}");
//! while let Some(item) = socket.next().await {
//!     match item {
//!         Incoming::Event(ev) => {
//!             if let Some(id) = ev.ack_id {
//!                 socket.ack(id, json!("thanks"))?;
//!             }
//!         }
//!         Incoming::Invalid { frame, error } => eprintln!("bad frame {frame}: {error}"),
//!         Incoming::Disconnected { reason } => println!("gone: {reason}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Heartbeats are automatic: every server ping (`2`) is answered with `3`,
//! and when no ping arrives within `pingInterval + pingTimeout` the
//! connection ends with [`DisconnectReason::PingTimeout`].
//!
//! # Memory
//!
//! An idle connected WebSocket client costs about 7 KiB of RSS with the
//! default 4 KiB read buffer (about 5 KiB with 2 KiB), measured with
//! `examples/idle.rs` (`cargo run --release -p sioclient --example idle --
//! 10000`). What keeps it there:
//! * for `ws://` the RFC 6455 handshake is done here, because
//!   tungstenite's own handshake hands its 4 KiB response buffer over as the
//!   read buffer whatever [`ClientConfig::ws_read_buffer_size`] says
//!   (`wss://` still uses tokio-tungstenite's TLS handshake);
//! * the connection task re-registers its own waker right away, so the
//!   (finished) task that ran `connect` is not kept alive by a stale waker;
//! * polling sockets share one `reqwest::Client` per (TLS, local address,
//!   headers) instead of loading TLS roots (~0.9 MiB) per socket; an idle
//!   polling client costs about 35 KiB (two HTTP connections).
//!
//! Binary packets (BINARY_EVENT / BINARY_ACK) are not supported: they are
//! decoded up to their header and reported as [`Incoming::Invalid`] with
//! [`PacketError::UnsupportedBinary`].

mod config;
mod conn;
mod error;
mod net;
pub mod packet;
mod probe;
mod socket;

pub use config::{ClientConfig, Direction, EventHook, Frame, ProxyConfig, TlsConfig, Transport};
pub use conn::connect;
pub use error::{AckError, ConnectError, DisconnectReason, SendError, WaitError, error_chain};
pub use packet::{EioPacket, EventView, OpenPacket, PacketError, SioPacket};
pub use probe::{ProbeError, probe};
pub use socket::{Event, Incoming, IntoArgs, Socket, SocketHandle};
