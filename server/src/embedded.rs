//! The reference server as a default target: what the conformance runner
//! and the load generator start in-process when the user names no target,
//! and what every test fixture (`crate::testing`) is built on.
//!
//! An [`Embedded`] server listens on an ephemeral loopback port
//! (`127.0.0.1:0`) with a temporary SQLite database of its own and the
//! development secrets (which never leave loopback). It stops when
//! [`Embedded::stop`] is awaited; dropping it stops serving HTTP and
//! removes the database file.

use std::net::SocketAddr;

use anyhow::Context;
use tempfile::TempDir;

use crate::config::Config;
use crate::serve::{self, Running};
use crate::state::AppState;

/// A reference server on `127.0.0.1:0` with a temporary database.
#[derive(Debug)]
pub struct Embedded {
    running: Running,
    admin_token: String,
    // Dropped after `running`: the database outlives the server.
    _dir: TempDir,
}

impl Embedded {
    /// Starts a server with the defaults of [`Config::loopback`].
    pub async fn start() -> anyhow::Result<Embedded> {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `tweak` may change (limits,
    /// timeouts, another database URL); it starts from [`Config::loopback`]
    /// on the temporary SQLite database.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Embedded> {
        let dir = tempfile::Builder::new()
            .prefix("reference-server-")
            .tempdir()
            .context("creating a temporary directory for the database")?;
        let mut config = Config::loopback(format!("sqlite://{}/platform.db", dir.path().display()));
        tweak(&mut config);
        let admin_token = config.admin_token.clone();
        let running = serve::start(config).await?;
        Ok(Embedded {
            running,
            admin_token,
            _dir: dir,
        })
    }

    /// `http://ADDR`: the base URL of Socket.IO and of the REST API.
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// The operator's bearer token (full REST access).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The server's shared state (store, sockets, metrics).
    pub fn state(&self) -> &AppState {
        &self.running.state
    }

    /// Closes every socket, stops serving and removes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.shutdown().await
    }
}
