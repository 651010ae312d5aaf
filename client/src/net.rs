//! What both transports share below Engine.IO: the proxy a connection goes
//! through and the certificates it trusts.
//!
//! Polling requests go through reqwest, which reads `HTTP(S)_PROXY` /
//! `NO_PROXY` itself; WebSocket connections are made here, so the same
//! rules (hyper-util's matcher, the one reqwest uses) pick a proxy, and the
//! connection is an HTTP `CONNECT` tunnel through it. TLS settings
//! ([`TlsConfig`]) become one reqwest builder setting and one native-tls
//! connector, cached per setting like the polling clients (a connector
//! holds the loaded roots).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};

use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::config::{ClientConfig, ProxyConfig, TlsConfig};
use crate::error::ConnectError;

/// Upper bound for the proxy's answer to `CONNECT`.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// The proxy for a connection to `host:port` (`host` as in a URL: IPv6
/// bracketed), or `None` to connect directly.
pub(crate) fn proxy_for(
    config: &ClientConfig,
    secure: bool,
    host: &str,
    port: u16,
) -> Result<Option<Intercept>, ConnectError> {
    let scheme = if secure { "https" } else { "http" };
    let dst: Uri = format!("{scheme}://{host}:{port}/")
        .parse()
        .map_err(|e| ConnectError::Config(format!("url: {e}")))?;
    Ok(match &config.proxy {
        ProxyConfig::Direct => None,
        // Read once: the environment of a load generator does not change
        // mid-run, and every connection asks.
        ProxyConfig::Env => {
            static FROM_ENV: OnceLock<Matcher> = OnceLock::new();
            FROM_ENV.get_or_init(Matcher::from_env).intercept(&dst)
        }
        ProxyConfig::Url(url) => Matcher::builder().all(url.clone()).build().intercept(&dst),
    })
}

/// A TCP connection to `host:port` tunnelled through `proxy` with HTTP
/// `CONNECT`; the caller speaks WebSocket (or TLS) over it.
pub(crate) async fn tunnel(
    proxy: &Intercept,
    host: &str,
    port: u16,
    local: Option<IpAddr>,
) -> Result<TcpStream, ConnectError> {
    let uri = proxy.uri();
    if uri.scheme_str() != Some("http") {
        return Err(ConnectError::Config(format!(
            "proxy {uri}: only http:// proxies are supported for WebSocket"
        )));
    }
    let proxy_host = uri.host().unwrap_or_default();
    let proxy_port = uri.port_u16().unwrap_or(80);
    let bare = proxy_host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, proxy_port))
        .await
        .map_err(|e| ConnectError::Transport(format!("resolve proxy {bare}: {e}")))?
        .collect();
    let mut stream = crate::conn::tcp_connect(&addrs, local).await?;
    let io_err = |e: std::io::Error| ConnectError::Transport(format!("proxy {uri}: {e}"));
    let mut request = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(auth) = proxy.basic_auth().and_then(|v| v.to_str().ok()) {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;
    // The target says nothing before the client does, so everything the
    // proxy sends before our first byte is its answer.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_HEAD {
            return Err(ConnectError::Transport(format!(
                "proxy {uri}: answer to CONNECT too large"
            )));
        }
        if stream.read_buf(&mut head).await.map_err(io_err)? == 0 {
            return Err(ConnectError::Transport(format!(
                "proxy {uri}: closed during CONNECT"
            )));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(ConnectError::Transport(format!(
            "proxy {uri} refused CONNECT {host}:{port}: {status}"
        )));
    }
    Ok(stream)
}

/// The native-tls connector for `tls`, shared process-wide per setting.
pub(crate) fn tls_connector(tls: &TlsConfig) -> Result<native_tls::TlsConnector, ConnectError> {
    static CACHE: OnceLock<Mutex<HashMap<TlsConfig, native_tls::TlsConnector>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(tls) {
        return Ok(c.clone());
    }
    let mut builder = native_tls::TlsConnector::builder();
    for pem in ca_certificates(tls)? {
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| ConnectError::Config(format!("ca_file: {e}")))?;
        builder.add_root_certificate(cert);
    }
    if tls.insecure {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    let connector = builder
        .build()
        .map_err(|e| ConnectError::Config(format!("tls: {e}")))?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tls.clone(), connector.clone());
    Ok(connector)
}

/// `builder` with the config's proxy and, for a `secure` target, TLS
/// settings.
pub(crate) fn http_settings(
    mut builder: reqwest::ClientBuilder,
    config: &ClientConfig,
    secure: bool,
) -> Result<reqwest::ClientBuilder, ConnectError> {
    builder = match &config.proxy {
        ProxyConfig::Env => builder,
        ProxyConfig::Direct => builder.no_proxy(),
        ProxyConfig::Url(url) => builder.proxy(
            reqwest::Proxy::all(url).map_err(|e| ConnectError::Config(format!("proxy: {e}")))?,
        ),
    };
    if !secure {
        return Ok(builder);
    }
    for pem in ca_certificates(&config.tls)? {
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| ConnectError::Config(format!("ca_file: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    if config.tls.insecure {
        builder = builder
            .tls_danger_accept_invalid_certs(true)
            .tls_danger_accept_invalid_hostnames(true);
    }
    Ok(builder)
}

/// The PEM blocks of the CA file, one certificate each (native-tls reads
/// only the first of a bundle).
fn ca_certificates(tls: &TlsConfig) -> Result<Vec<Vec<u8>>, ConnectError> {
    let Some(path) = &tls.ca_file else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConnectError::Config(format!("ca_file {}: {e}", path.display())))?;
    const END: &str = "-----END CERTIFICATE-----";
    let blocks: Vec<Vec<u8>> = text
        .split_inclusive(END)
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(|b| b.trim().as_bytes().to_vec())
        .collect();
    if blocks.is_empty() {
        return Err(ConnectError::Config(format!(
            "ca_file {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_proxy_applies_and_direct_means_none() {
        let config = ClientConfig::new("http://x")
            .with_proxy(ProxyConfig::Url("http://u:p@proxy:8080".into()));
        let p = proxy_for(&config, false, "example.com", 80)
            .unwrap()
            .expect("proxied");
        assert_eq!(p.uri().host(), Some("proxy"));
        assert_eq!(p.uri().port_u16(), Some(8080));
        assert!(p.basic_auth().is_some());
        let secure = proxy_for(&config, true, "[::1]", 443).unwrap();
        assert!(secure.is_some(), "the same proxy for wss://");
        let direct = config.with_proxy(ProxyConfig::Direct);
        assert!(
            proxy_for(&direct, false, "example.com", 80)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("sioclient-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let tls = TlsConfig {
            ca_file: Some(dir.clone()),
            insecure: false,
        };
        let err = ca_certificates(&tls).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        std::fs::remove_file(&dir).unwrap();
        let missing = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        assert!(matches!(
            tls_connector(&missing),
            Err(ConnectError::Config(_))
        ));
    }
}
