//! The reference server of the platform's real-time protocol.
//!
//! One port serves Socket.IO v4 (WebSocket and HTTP long-polling, through
//! socketioxide) and the REST API (axum). The other tools embed it as
//! [`Embedded`] (their default target), tests through the fixtures of
//! `testing` (feature `testing`); the `server` binary calls [`run`].
//!
//! # Layers
//!
//! From the wire in; a module uses only the modules below it (the test in
//! `layering.rs` fails on any cycle between these modules, and when a
//! module other than `serve` uses an edge):
//!
//! | module | what | may use |
//! |---|---|---|
//! | `testing` | the fixtures every crate's tests share | `embedded`, `config`, `state`, `store` |
//! | [`embedded`] | the server in-process (the tools' default target) | `serve`, `config`, `state` |
//! | [`serve`] | start, stop, the binary: wires every layer | every module below |
//! | [`listener`] | TCP accept loop: connection caps, request-head timeout | `config`, `metrics` |
//! | [`api`] | edge: REST endpoints for every domain change, app events, tokens | `access`, `sockets`, `state`, `auth`, `ratelimit`, `listener` (the peer's address), `store` |
//! | [`realtime`] | edge: connect-time auth, namespaces, every client event | `access`, `sockets`, `state`, `cluster` (its adapter type), `auth`, `ratelimit`, `listener` (the peer's address), `store` |
//! | [`access`] | room authorization, asked by both edges | `state`, `store` |
//! | [`sockets`] | outbound operations on live sockets: subscribe, presence, disconnect a user or a token, close a room, a cluster node's part | `state`, `cluster`, `auth`, `ratelimit` |
//! | [`state`] | what every handler shares; the one path events leave by | `cluster`, `config`, the rules, `store` |
//! | [`config`] | flags and environment | `cluster` (its URL form) |
//! | [`cluster`] | several nodes through Redis; reaches sockets only through the [`cluster::Node`] it is given | `presence`, `ratelimit`, `store` |
//! | [`auth`], [`presence`], [`ratelimit`], [`metrics`] | the rules | `store` (`auth` only) |
//! | [`store`] | the database (embedded SQLite by default, PostgreSQL by URL) | nothing of the server |
//!
//! Nothing uses the edges (`api`, `realtime`) but `serve`: the REST API and
//! the cluster act on sockets through [`sockets`], never through an event
//! handler. The cluster sits below the state: what it needs of the node's
//! sockets it is handed at start ([`sockets::node`]).

pub mod access;
pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod embedded;
#[cfg(test)]
mod layering;
pub mod listener;
pub mod metrics;
pub mod presence;
pub mod ratelimit;
pub mod realtime;
pub mod serve;
pub mod sockets;
pub mod state;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::{Config, Opts, VERSION};
pub use embedded::Embedded;
pub use serve::{Running, SHUTDOWN_GRACE, run, start};
pub use state::AppState;
