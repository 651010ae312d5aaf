//! The default target: without `--target` (and no `url` in the profile)
//! the runner starts the reference server in-process, on a loopback port
//! with a temporary database (cargo feature `embedded`, on by default).
//! A build without the feature has no `server` crate (no database driver,
//! no Redis client, no HTTP server) and needs a target.

use crate::Error;

#[cfg(feature = "embedded")]
pub use server::Embedded as Server;

/// Starts the in-process reference server.
#[cfg(feature = "embedded")]
pub async fn start() -> Result<Server, Error> {
    Server::start()
        .await
        .map_err(|e| Error::Embedded(format!("{e:#}")))
}

/// Stops it (closes its sockets, removes its database).
#[cfg(feature = "embedded")]
pub async fn stop(server: Server) {
    // The verdicts are in; a failure to stop cleanly changes none of them.
    let _ = server.stop().await;
}

/// No server in this build: the type has no value.
#[cfg(not(feature = "embedded"))]
#[derive(Debug)]
pub enum Server {}

#[cfg(not(feature = "embedded"))]
impl Server {
    pub fn url(&self) -> String {
        match *self {}
    }
}

/// Without the feature there is nothing to start: the user must name a
/// target.
#[cfg(not(feature = "embedded"))]
pub async fn start() -> Result<Server, Error> {
    Err(Error::NoTarget)
}

#[cfg(not(feature = "embedded"))]
pub async fn stop(server: Server) {
    match server {}
}
