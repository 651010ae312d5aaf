//! Reachability probe: the cheapest proof that an Engine.IO server answers
//! at an address, without a Socket.IO connection.
//!
//! The conformance runner and the load generator probe their target before
//! anything else (so that "target unreachable" is told apart from a protocol
//! failure), and the load generator probes again when it suspects the
//! target is gone mid-run. The probe is one Engine.IO handshake over the
//! config's transport: a long-polling `GET ...?EIO=4&transport=polling`
//! (also for [`Transport::PollingThenUpgrade`]: reachability needs no
//! upgrade), or a WebSocket whose first frame must be the open packet.
//! The session it opens is not used; the server's heartbeat closes a
//! polling one, a WebSocket one is closed right away.
//!
//! A deployment may turn long-polling off (Socket.IO's `transports:
//! ["websocket"]`): its polling handshake answers an HTTP error. So when
//! the polling answer is not an open packet, the probe tries a WebSocket
//! handshake before it says "no Engine.IO server"; the polling error is
//! the one reported when both fail.

use std::time::Duration;

use crate::config::{ClientConfig, Transport};
use crate::conn::{CLOSE_TIMEOUT, Endpoint, http_client_for, ws_connect, ws_recv_text};
use crate::error::ConnectError;
use crate::packet::{self, EioPacket, OpenPacket};

/// How much of a non-Engine.IO answer an error quotes.
const QUOTED_ANSWER: usize = 120;

/// Why [`probe`] found no Engine.IO server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The URL or another config field is unusable.
    #[error("invalid config: {0}")]
    Config(String),
    /// No connection: refused, DNS, TLS, reset.
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    /// No complete answer within the config's `connect_timeout`.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// Something answered, but not with an Engine.IO open packet (a web
    /// server without Socket.IO at that path, a proxy's error page, ...).
    #[error("{url} answered without an Engine.IO open packet: {answer}")]
    NotEngineIo { url: String, answer: String },
}

/// One Engine.IO handshake at `config.url` + `config.path` over
/// `config.transport` (then over WebSocket if a polling answer is not
/// Engine.IO), bounded by `config.connect_timeout`; returns the server's
/// open packet. `local_addr`, `headers`, `tls`, `proxy` and `http_client`
/// apply as for [`connect`](crate::connect); namespace and auth are not
/// used.
pub async fn probe(config: &ClientConfig) -> Result<OpenPacket, ProbeError> {
    let endpoint = Endpoint::parse(config).map_err(|e| match e {
        ConnectError::Config(m) => ProbeError::Config(m),
        other => ProbeError::Config(other.to_string()),
    })?;
    let websocket = config.transport == Transport::WebSocket;
    let url = endpoint.url(websocket, None, None).to_string();
    let handshake = async {
        if websocket {
            return over_websocket(&endpoint, config, &url).await;
        }
        match over_polling(&endpoint, config, &url).await {
            Err(polling @ ProbeError::NotEngineIo { .. }) => {
                let ws_url = endpoint.url(true, None, None).to_string();
                over_websocket(&endpoint, config, &ws_url)
                    .await
                    .map_err(|_| polling)
            }
            other => other,
        }
    };
    tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| ProbeError::Timeout {
            url: url.clone(),
            timeout: config.connect_timeout,
        })?
}

async fn over_polling(
    endpoint: &Endpoint,
    config: &ClientConfig,
    url: &str,
) -> Result<OpenPacket, ProbeError> {
    let http = match &config.http_client {
        Some(client) => client.clone(),
        None => http_client_for(config, endpoint.secure)
            .map_err(|e| ProbeError::Config(e.to_string()))?,
    };
    let unreachable = |e: reqwest::Error| ProbeError::Unreachable {
        url: url.to_owned(),
        // The URL is already in the error once.
        message: crate::error::error_chain(&e.without_url()),
    };
    let response = http.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    let first = packet::split_payload(&body).next().unwrap_or_default();
    match EioPacket::decode(first) {
        Ok(EioPacket::Open(open)) if status.is_success() => Ok(open),
        _ => Err(ProbeError::NotEngineIo {
            url: url.to_owned(),
            answer: format!("HTTP {status}: {}", quote(&body)),
        }),
    }
}

async fn over_websocket(
    endpoint: &Endpoint,
    config: &ClientConfig,
    url: &str,
) -> Result<OpenPacket, ProbeError> {
    let failed = |e: ConnectError| match e {
        ConnectError::Config(m) => ProbeError::Config(m),
        ConnectError::Transport(message) | ConnectError::Http(message) => ProbeError::Unreachable {
            url: url.to_owned(),
            message,
        },
        other => ProbeError::NotEngineIo {
            url: url.to_owned(),
            answer: other.to_string(),
        },
    };
    let mut ws = ws_connect(endpoint, None, config).await.map_err(failed)?;
    let first = ws_recv_text(&mut ws, None).await.map_err(failed);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    match EioPacket::decode(&first?) {
        Ok(EioPacket::Open(open)) => Ok(open),
        Ok(other) => Err(ProbeError::NotEngineIo {
            url: url.to_owned(),
            answer: format!("first frame {}", quote(&other.encode())),
        }),
        Err(e) => Err(ProbeError::NotEngineIo {
            url: url.to_owned(),
            answer: e.to_string(),
        }),
    }
}

fn quote(text: &str) -> String {
    text.chars().take(QUOTED_ANSWER).collect()
}
