//! Below Engine.IO: a deployment without long-polling, an HTTP proxy on
//! both transports, and a TLS certificate from a private CA (or none
//! checked at all).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use sioclient::{ClientConfig, ConnectError, ProxyConfig, TlsConfig, Transport};
use socketioxide::TransportType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{self, Seen, bounded};

#[tokio::test]
async fn the_probe_finds_a_server_without_long_polling_over_websocket() {
    bounded(async {
        let server = common::start_with(|b| b.transports([TransportType::Websocket])).await;
        let polling = server.config().with_transport(Transport::Polling);
        // Polling itself is refused...
        assert!(
            matches!(
                sioclient::connect(polling.clone()).await,
                Err(ConnectError::Http(_))
            ),
            "polling is off"
        );
        // ...but the probe still finds the server.
        let open = sioclient::probe(&polling)
            .await
            .expect("found over websocket");
        assert!(open.upgrades.is_empty(), "{open:?}");
        let socket = sioclient::connect(server.config().with_transport(Transport::WebSocket))
            .await
            .expect("websocket connects");
        assert_eq!(socket.transport(), Transport::WebSocket);
        socket.disconnect().await;
    })
    .await;
}

/// What the test proxy saw.
#[derive(Default)]
struct ProxyCounts {
    /// `CONNECT host:port` tunnels.
    tunnels: AtomicUsize,
    /// Plain requests in absolute form (`GET http://host/...`).
    forwarded: AtomicUsize,
}

/// An HTTP proxy on loopback: `CONNECT` opens a tunnel, a request in
/// absolute form is relayed as it is (HTTP/1.1 servers accept that form).
async fn start_proxy() -> (String, Arc<ProxyCounts>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(ProxyCounts::default());
    let seen = counts.clone();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, seen.clone()));
        }
    });
    (url, counts, task)
}

async fn relay(mut client: TcpStream, counts: Arc<ProxyCounts>) {
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 || client.read_buf(&mut head).await.unwrap_or(0) == 0 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text.split(' ').nth(1).unwrap_or_default();
    let mut upstream = if text.starts_with("CONNECT ") {
        counts.tunnels.fetch_add(1, Ordering::SeqCst);
        let Ok(upstream) = TcpStream::connect(target).await else {
            return;
        };
        let _ = client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        upstream
    } else {
        counts.forwarded.fetch_add(1, Ordering::SeqCst);
        let authority = target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let Ok(mut upstream) = TcpStream::connect(authority).await else {
            return;
        };
        if upstream.write_all(&head).await.is_err() {
            return;
        }
        upstream
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::test]
async fn both_transports_go_through_an_http_proxy() {
    bounded(async {
        let server = common::start().await;
        let (proxy, counts, task) = start_proxy().await;
        let via_proxy = server
            .config()
            .with_proxy(ProxyConfig::Url(proxy.clone()))
            .with_header("x-test", "through-proxy");

        let ws = sioclient::connect(via_proxy.clone().with_transport(Transport::WebSocket))
            .await
            .expect("websocket through the proxy");
        assert_eq!(
            counts.tunnels.load(Ordering::SeqCst),
            1,
            "one CONNECT tunnel"
        );
        let polling = sioclient::connect(via_proxy.clone().with_transport(Transport::Polling))
            .await
            .expect("polling through the proxy");
        assert!(
            counts.forwarded.load(Ordering::SeqCst) >= 1,
            "polling was relayed"
        );
        let upgraded = sioclient::connect(
            via_proxy
                .clone()
                .with_transport(Transport::PollingThenUpgrade),
        )
        .await
        .expect("polling then upgrade through the proxy");
        assert_eq!(upgraded.transport(), Transport::WebSocket);
        assert_eq!(
            counts.tunnels.load(Ordering::SeqCst),
            2,
            "the upgrade's WebSocket is tunnelled too"
        );
        sioclient::probe(&via_proxy.clone().with_transport(Transport::WebSocket))
            .await
            .expect("the probe through the proxy");
        assert_eq!(counts.tunnels.load(Ordering::SeqCst), 3);

        // The server saw the three sessions, headers intact.
        let headers: Vec<Option<String>> = server
            .seen
            .all()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Connected { header, .. } => Some(header),
                _ => None,
            })
            .collect();
        assert_eq!(headers, vec![Some("through-proxy".to_owned()); 3]);
        for s in [ws, polling, upgraded] {
            s.disconnect().await;
        }

        // Direct: the proxy sees nothing more.
        let (tunnels, forwarded) = (
            counts.tunnels.load(Ordering::SeqCst),
            counts.forwarded.load(Ordering::SeqCst),
        );
        let direct = server.config().with_proxy(ProxyConfig::Direct);
        for transport in [Transport::WebSocket, Transport::Polling] {
            let s = sioclient::connect(direct.clone().with_transport(transport))
                .await
                .expect("direct");
            s.disconnect().await;
        }
        assert_eq!(counts.tunnels.load(Ordering::SeqCst), tunnels);
        assert_eq!(counts.forwarded.load(Ordering::SeqCst), forwarded);

        // A proxy that refuses CONNECT is a transport error naming it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refusing = format!("http://{}", listener.local_addr().unwrap());
        let refuser = tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let _ = c.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
            }
        });
        let refused = sioclient::connect(
            server
                .config()
                .with_proxy(ProxyConfig::Url(refusing))
                .with_transport(Transport::WebSocket),
        )
        .await;
        match refused {
            Err(ConnectError::Transport(m)) => assert!(m.contains("403"), "{m}"),
            other => panic!("{other:?}"),
        }
        refuser.abort();
        task.abort();
    })
    .await;
}

/// A self-signed certificate for 127.0.0.1 (needs the `openssl` command:
/// Debian package `openssl`).
fn self_signed(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the `openssl` command (Debian package openssl)");
    assert!(status.success(), "openssl req failed");
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

/// TLS in front of the test server on another loopback port.
async fn tls_front(
    cert: &[u8],
    key: &[u8],
    backend: std::net::SocketAddr,
) -> (String, tokio::task::JoinHandle<()>) {
    let identity = native_tls::Identity::from_pkcs8(cert, key).expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        native_tls::TlsAcceptor::new(identity).expect("acceptor"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((c, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(c).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_private_ca_or_insecure_mode_reaches_a_self_signed_server() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let ca_file = dir.path().join("cert.pem");
        let server = common::start().await;
        let (url, task) = tls_front(&cert, &key, server.addr).await;
        let base = ClientConfig::new(&url)
            .with_connect_timeout(common::WAIT)
            .with_proxy(ProxyConfig::Direct)
            .with_auth(json!({"token": "ok"}));
        for transport in [Transport::WebSocket, Transport::Polling] {
            let plain = base.clone().with_transport(transport);
            assert!(
                sioclient::connect(plain.clone()).await.is_err(),
                "{transport}: an unknown CA is refused"
            );
            let trusted = plain.clone().with_tls(TlsConfig {
                ca_file: Some(ca_file.clone()),
                insecure: false,
            });
            sioclient::connect(trusted)
                .await
                .unwrap_or_else(|e| panic!("{transport} with the CA file: {e}"))
                .disconnect()
                .await;
            let insecure = plain.with_tls(TlsConfig {
                ca_file: None,
                insecure: true,
            });
            sioclient::connect(insecure)
                .await
                .unwrap_or_else(|e| panic!("{transport} insecure: {e}"))
                .disconnect()
                .await;
        }
        task.abort();
    })
    .await;
}
