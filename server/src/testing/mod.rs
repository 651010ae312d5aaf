//! The test fixtures every crate shares (feature `testing`, which each
//! crate's tests turn on through a dev-dependency):
//!
//! * the reference server as a fixture ([`TestServer`], [`ServerProcess`])
//!   with the waits and assertions the tests share ([`fixture`]);
//! * throwaway services: a PostgreSQL cluster ([`postgres`]) and a Redis
//!   server ([`redis`]), each started on 127.0.0.1 at a free port below the
//!   ephemeral range and stopped when dropped. Neither ever skips: a
//!   missing binary is a panic that names the Debian package to install;
//! * the server's own source text without comments ([`source`]), for the
//!   tests that read it (the OpenAPI routes, the module layering);
//! * the second implementation, `altserver/` ([`altserver`]), for the tests
//!   that point the tools at a deployment that is not ours.

pub mod altserver;
pub mod fixture;
pub mod postgres;
pub mod redis;
pub mod source;

pub use fixture::*;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A starting point in 20000..30000 that differs between runs, so that
/// concurrent test processes do not all race for the same port.
fn first_port() -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos();
    let seed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    20_000 + (seed % 10_000) as u16
}

/// The first port from `from` on (wrapping within 20000..30000) that we can
/// bind on 127.0.0.1; the listener is released again before returning.
fn next_free_port(from: u16) -> u16 {
    (0..10_000u16)
        .map(|i| 20_000 + (from - 20_000 + i) % 10_000)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("test harness: no free port on 127.0.0.1 in 20000..30000")
}
