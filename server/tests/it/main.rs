//! The server's integration tests: one binary, one module per behaviour
//! (each extra test binary would link the whole dependency tree again).
//!
//! Every test starts real servers on `127.0.0.1:0` through the shared
//! fixtures of [`server::testing`] (a temporary SQLite database each, or
//! Redis and PostgreSQL started on 127.0.0.1 by the test) and talks real
//! Socket.IO and HTTP to them. Protocol behaviour that any deployment must
//! show is specified once, as conformance cases (`conformance/src/cases/`),
//! which `conformance/tests/reference.rs` runs against this server; these
//! modules keep what is the reference server's own: its storage, cluster,
//! REST API, operations, limits, bad input, heartbeat, persistence,
//! interoperability, and the exact answers of its decisions
//! (docs/protocol-notes.md).

mod app_events;
mod bad_input;
mod cluster;
mod connect_auth;
mod fuzz;
mod hardening;
mod heartbeat;
mod interop_js;
mod notifications;
mod openapi;
mod ops;
mod participants;
mod persistence;
mod presence;
mod prizes_winners;
mod quiz;
mod rate_limit;
mod rooms;
mod token_expiry;
mod transports;

/// The `server` binary Cargo built for these tests.
fn server_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_server"))
}
