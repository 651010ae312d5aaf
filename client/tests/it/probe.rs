//! The reachability probe: one Engine.IO handshake per transport, and each
//! way of finding no Engine.IO server told apart.

use std::time::Duration;

use sioclient::{ClientConfig, ProbeError, Transport};

use crate::common;
use crate::common::{Seen, bounded};

#[tokio::test]
async fn probe_answers_with_the_open_packet_over_each_transport() {
    bounded(async {
        let server = common::start().await;
        for transport in [
            Transport::Polling,
            Transport::WebSocket,
            Transport::PollingThenUpgrade,
        ] {
            let open = sioclient::probe(&server.config().with_transport(transport))
                .await
                .unwrap_or_else(|e| panic!("{transport}: {e}"));
            assert!(!open.sid.is_empty(), "{transport}: {open:?}");
            // socketioxide's defaults.
            assert_eq!(open.ping_interval, 25_000, "{transport}");
            assert_eq!(open.ping_timeout, 20_000, "{transport}");
            if transport != Transport::WebSocket {
                assert_eq!(open.upgrades, ["websocket"], "{transport}");
            }
        }
        // A handshake only: no namespace was connected.
        let connected = server
            .seen
            .all()
            .into_iter()
            .filter(|s| matches!(s, Seen::Connected { .. }))
            .count();
        assert_eq!(connected, 0);
    })
    .await;
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    bounded(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        for transport in [Transport::Polling, Transport::WebSocket] {
            let config =
                ClientConfig::new(format!("http://127.0.0.1:{port}")).with_transport(transport);
            match sioclient::probe(&config).await {
                Err(ProbeError::Unreachable { url, message }) => {
                    assert!(url.contains(&format!("transport={transport}")), "{url}");
                    assert!(!message.is_empty());
                }
                other => panic!("{transport}: {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_web_server_without_engine_io_is_told_apart() {
    bounded(async {
        let app =
            axum::Router::new().route("/socket.io/", axum::routing::get(|| async { "hello" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.ok() });

        let polling = ClientConfig::new(&url).with_transport(Transport::Polling);
        match sioclient::probe(&polling).await {
            Err(ProbeError::NotEngineIo { answer, .. }) => {
                assert!(answer.starts_with("HTTP 200 OK: hello"), "{answer}")
            }
            other => panic!("{other:?}"),
        }
        let elsewhere = polling.clone().with_path("/elsewhere/");
        match sioclient::probe(&elsewhere).await {
            Err(ProbeError::NotEngineIo { url, answer }) => {
                assert!(url.contains("/elsewhere/?EIO=4"), "{url}");
                assert!(answer.starts_with("HTTP 404"), "{answer}");
            }
            other => panic!("{other:?}"),
        }
        let websocket = ClientConfig::new(&url).with_transport(Transport::WebSocket);
        assert!(
            matches!(
                sioclient::probe(&websocket).await,
                Err(ProbeError::NotEngineIo { .. })
            ),
            "a refused WebSocket upgrade"
        );
        task.abort();

        // A WebSocket server whose first frame is not the open packet.
        let url = common::fake_ws_server(|mut ws| async move {
            common::fake_send(&mut ws, "40").await;
        })
        .await;
        match sioclient::probe(&ClientConfig::new(url)).await {
            Err(ProbeError::NotEngineIo { answer, .. }) => {
                assert_eq!(answer, "first frame 40")
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_bad_url_is_a_config_error() {
    bounded(async {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let limit = Duration::from_millis(300);
        for transport in [Transport::Polling, Transport::WebSocket] {
            let config = ClientConfig::new(&url)
                .with_transport(transport)
                .with_connect_timeout(limit);
            let started = tokio::time::Instant::now();
            match sioclient::probe(&config).await {
                Err(ProbeError::Timeout { timeout, .. }) => assert_eq!(timeout, limit),
                other => panic!("{transport}: {other:?}"),
            }
            assert!(started.elapsed() < limit * 5, "{:?}", started.elapsed());
        }
        task.abort();

        assert!(matches!(
            sioclient::probe(&ClientConfig::new("ftp://127.0.0.1/")).await,
            Err(ProbeError::Config(_))
        ));
    })
    .await;
}
