//! Connect over WebSocket: auth payload reaches the server, CONNECT_ERROR is
//! reported with the server's message, config and transport failures.

use std::time::Duration;

use serde_json::json;
use sioclient::{ConnectError, Incoming, Transport};

use crate::common;
use crate::common::{Seen, WAIT, bounded};

#[tokio::test]
async fn websocket_connect_sends_auth_and_waits_for_server_accept() {
    bounded(async {
        let server = common::start().await;
        let mut socket =
            sioclient::connect(server.config().with_auth(json!({"token": "good", "n": 7})))
                .await
                .expect("connect");
        assert_eq!(socket.transport(), Transport::WebSocket);
        assert_eq!(socket.namespace(), "/");
        assert!(socket.is_connected());
        assert!(!socket.sid().is_empty());
        assert!(!socket.engine_sid().is_empty());
        assert_eq!(socket.handshake().upgrades, Vec::<String>::new());

        // The server saw the auth payload and the same Socket.IO sid.
        let sid = socket.sid().to_owned();
        let seen = server
            .seen
            .wait("connect", |s| matches!(s, Seen::Connected { .. }))
            .await;
        let Seen::Connected {
            ns,
            sid: seen_sid,
            auth,
            header,
            query,
        } = seen
        else {
            unreachable!()
        };
        assert_eq!(ns, "/");
        assert_eq!(seen_sid, sid);
        assert_eq!(auth, Some(json!({"token": "good", "n": 7})));
        assert_eq!(header, None);
        assert!(query.contains("EIO=4"), "{query}");
        assert!(query.contains("transport=websocket"), "{query}");

        // The welcome event emitted by the server's connect handler arrives.
        let welcome = socket.wait_for("welcome", WAIT).await.expect("welcome");
        assert_eq!(welcome.args, vec![json!({"ns": "/", "sid": sid})]);
        assert_eq!(welcome.ack_id, None);
    })
    .await;
}

#[tokio::test]
async fn connect_error_carries_server_message() {
    bounded(async {
        let server = common::start().await;
        let err = sioclient::connect(server.config().with_auth(json!({"token": "bad"})))
            .await
            .expect_err("must be rejected");
        assert_eq!(
            err,
            ConnectError::Rejected {
                message: "Authentication failed: Invalid token".into(),
                data: None
            }
        );
        assert_eq!(
            err.to_string(),
            "connect_error: Authentication failed: Invalid token"
        );
        // The rejected socket never reached the connect handler.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !server
                .seen
                .all()
                .iter()
                .any(|s| matches!(s, Seen::Connected { .. })),
            "{:?}",
            server.seen.all()
        );
    })
    .await;
}

#[tokio::test]
async fn connect_error_over_polling_too() {
    bounded(async {
        let server = common::start().await;
        let err = sioclient::connect(
            server
                .config()
                .with_transport(Transport::Polling)
                .with_auth(json!({"token": "bad"})),
        )
        .await
        .expect_err("must be rejected");
        assert!(
            matches!(&err, ConnectError::Rejected { message, .. } if message == "Authentication failed: Invalid token"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn invalid_urls_are_config_errors() {
    bounded(async {
        for url in ["not a url", "ftp://127.0.0.1:1", "http://"] {
            let err = sioclient::connect(sioclient::ClientConfig::new(url))
                .await
                .expect_err(url);
            assert!(matches!(err, ConnectError::Config(_)), "{url}: {err:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn refused_tcp_connection_is_a_transport_error() {
    bounded(async {
        // Bind then drop to get a port with (very likely) nobody listening.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = sioclient::connect(sioclient::ClientConfig::new(format!("http://{addr}")))
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, ConnectError::Transport(_)), "{err:?}");

        let err = sioclient::connect(
            sioclient::ClientConfig::new(format!("http://{addr}"))
                .with_transport(Transport::Polling),
        )
        .await
        .expect_err("nobody listens");
        assert!(matches!(err, ConnectError::Http(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn silent_server_hits_connect_timeout() {
    bounded(async {
        // Accepts TCP but never answers the WebSocket handshake.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let started = std::time::Instant::now();
        let err = sioclient::connect(
            sioclient::ClientConfig::new(format!("ws://{addr}"))
                .with_connect_timeout(Duration::from_millis(300)),
        )
        .await
        .expect_err("must time out");
        assert_eq!(err, ConnectError::Timeout);
        assert_eq!(err.to_string(), "connect timed out");
        assert!(started.elapsed() < Duration::from_secs(5));
        hold.abort();
    })
    .await;
}

#[tokio::test]
async fn local_bind_address_is_used() {
    bounded(async {
        // A bare TCP listener records the peer address of each connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peers_tx, mut peers) = tokio::sync::mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let _ = peers_tx.send(peer.ip());
                drop(stream);
            }
        });
        for (transport, ip) in [
            (Transport::WebSocket, [127, 0, 0, 7]),
            (Transport::Polling, [127, 0, 0, 9]),
        ] {
            let local = std::net::IpAddr::from(ip);
            let result = sioclient::connect(
                sioclient::ClientConfig::new(format!("http://{addr}"))
                    .with_transport(transport)
                    .with_local_addr(local)
                    .with_connect_timeout(Duration::from_secs(2)),
            )
            .await;
            assert!(result.is_err(), "the bare listener speaks no HTTP");
            let peer = tokio::time::timeout(WAIT, peers.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(peer, local, "{transport}");
            while peers.try_recv().is_ok() {}
        }
        accept.abort();

        // And end to end against the real server.
        let server = common::start().await;
        for transport in [Transport::WebSocket, Transport::Polling] {
            let mut socket = sioclient::connect(
                server
                    .config()
                    .with_transport(transport)
                    .with_local_addr("127.0.0.3".parse().unwrap()),
            )
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
            socket.wait_for("welcome", WAIT).await.expect("welcome");
            socket.disconnect().await;
            assert!(matches!(
                socket.next().await,
                Some(Incoming::Disconnected { .. })
            ));
        }
    })
    .await;
}

#[tokio::test]
async fn extra_headers_and_url_query_reach_the_server() {
    bounded(async {
        let server = common::start().await;
        for transport in [
            Transport::WebSocket,
            Transport::Polling,
            Transport::PollingThenUpgrade,
        ] {
            let mut config = server
                .config()
                .with_transport(transport)
                .with_header("x-test", format!("hello-{transport}"));
            config.url = format!("{}/ignored/path?room=r%201&x=y", server.url());
            let socket = sioclient::connect(config)
                .await
                .unwrap_or_else(|e| panic!("{transport}: {e}"));
            let sid = socket.sid().to_owned();
            let seen = server
                .seen
                .wait(
                    "connect",
                    |s| matches!(s, Seen::Connected { sid: s2, .. } if *s2 == sid),
                )
                .await;
            let Seen::Connected { header, query, .. } = seen else {
                unreachable!()
            };
            assert_eq!(header, Some(format!("hello-{transport}")));
            assert!(
                query.contains("room=r+1") || query.contains("room=r%201"),
                "{query}"
            );
            assert!(query.contains("x=y"), "{query}");
            assert!(query.contains("EIO=4"), "{query}");
        }
    })
    .await;
}
