//! The run's handshake: headers, query parameters, `Origin` and the auth
//! template reach the server on both transports; a transport the target
//! does not offer skips its cases with the reason; a deployment without
//! long-polling (altserver, `--transports websocket`) is still found.

use std::sync::{Arc, Mutex};

use conformance::case::Verdict;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use server::testing::altserver;

use crate::common::run_args;

/// A relay on loopback in front of `backend` that records the request
/// head that opens each connection (later requests on a kept-alive
/// connection pass unrecorded).
async fn recording_relay(backend: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (seen, backend) = (seen.clone(), backend.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    if head.len() > 16 * 1024 || client.read_buf(&mut head).await.unwrap_or(0) == 0
                    {
                        return;
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
                let Ok(mut up) = TcpStream::connect(&backend).await else {
                    return;
                };
                if up.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                }
            });
        }
    });
    (url, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_query_origin_and_auth_reach_the_server_on_both_transports() {
    let server = server::Embedded::start().await.expect("reference server");
    let backend = server.url().trim_start_matches("http://").to_owned();
    let (relay, heads) = recording_relay(backend).await;
    let report = run_args(&[
        "--target",
        &relay,
        "--run",
        "connection.polling*",
        "--run",
        "connection.websocket",
        "--run",
        "connection.auth.invalid_token",
        "--header",
        "X-Tenant: acme",
        "--query",
        "tenant=acme",
        "--origin",
        "https://app.example",
        "--auth",
        r#"{"token": "${token}", "user": "${userId:-none}"}"#,
    ])
    .await
    .expect("the run completes");
    let verdicts: Vec<_> = report.cases.iter().map(|c| (&c.id, c.verdict)).collect();
    assert!(
        report.cases.iter().all(|c| c.verdict == Verdict::Pass),
        "{verdicts:?}"
    );
    assert_eq!(report.cases.len(), 4, "{verdicts:?}");

    // The CONNECT packets carry the auth template, filled in per user (a
    // made-up token has no user: the default).
    let connects: Vec<&str> = report
        .cases
        .iter()
        .flat_map(|c| &c.transcript)
        .filter(|l| l.dir == ">" && l.text.starts_with("40{"))
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        connects.iter().any(|t| t.contains(r#""user":"none""#)),
        "{connects:?}"
    );
    assert!(
        connects
            .iter()
            .filter(|t| !t.contains(r#""user":"none""#))
            .all(|t| t.contains(r#""token":"***""#) && t.contains(r#""user":""#)),
        "{connects:?}"
    );
    assert!(connects.len() >= 4, "{connects:?}");

    let heads = heads.lock().unwrap().clone();
    let socket: Vec<&String> = heads
        .iter()
        .filter(|h| h.contains(" /socket.io/"))
        .collect();
    assert!(
        socket.iter().any(|h| h.contains("transport=polling")),
        "{heads:?}"
    );
    assert!(
        socket
            .iter()
            .any(|h| h.contains("transport=websocket") && h.contains("upgrade: websocket")),
        "{heads:?}"
    );
    for h in &socket {
        assert!(h.contains("tenant=acme"), "query missing: {h}");
        assert!(h.contains("x-tenant: acme"), "header missing: {h}");
        assert!(
            h.contains("origin: https://app.example"),
            "origin missing: {h}"
        );
    }
    // Driver calls are the profile's business: no handshake header there.
    assert!(
        heads
            .iter()
            .filter(|h| h.contains(" /api/"))
            .all(|h| !h.contains("x-tenant")),
        "{heads:?}"
    );
    let _ = server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_the_target_lacks_skips_its_cases_with_the_reason() {
    let report = run_args(&[
        "--run",
        "connection.polling*",
        "--run",
        "connection.websocket",
        "--transports",
        "websocket",
    ])
    .await
    .expect("the run completes");
    let verdict = |id: &str| report.cases.iter().find(|c| c.id == id).map(|c| c.verdict);
    assert_eq!(verdict("connection.websocket"), Some(Verdict::Pass));
    assert_eq!(verdict("connection.polling"), Some(Verdict::Skip));
    assert_eq!(verdict("connection.polling_upgrade"), Some(Verdict::Skip));
    // The skip summary groups them under the reason.
    let group = report
        .summary
        .skips
        .iter()
        .find(|g| g.reason.contains("transports exclude"))
        .expect("a skip group for the excluded transport");
    assert_eq!(group.cases.len(), 2, "{group:?}");
    // Two of three executed: below the default --require-coverage 100.
    assert_eq!(
        conformance::exit_code(&report.summary),
        conformance::EXIT_COVERAGE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_without_long_polling_is_found_and_checked() {
    let alt = altserver::start(&["--transports", "websocket"], &[]).await;
    // No handshake setting: the probe falls back to WebSocket.
    let report = run_args(&[
        "--target",
        &alt.socket,
        "--run",
        "connection.auth.invalid_token",
        "--run",
        "connection.auth.missing_token",
        "--run",
        "errors.authentication_failed.connect",
    ])
    .await
    .expect("altserver is found although its polling is off");
    let verdicts: Vec<_> = report.cases.iter().map(|c| (&c.id, c.verdict)).collect();
    assert_eq!(report.cases.len(), 3, "{verdicts:?}");
    assert!(
        report.cases.iter().all(|c| c.verdict == Verdict::Pass),
        "{verdicts:?}"
    );
    assert_eq!(
        conformance::exit_code(&report.summary),
        conformance::EXIT_OK
    );
}

#[test]
fn bad_handshake_settings_are_usage_errors_and_insecure_tls_warns() {
    let conformance = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
            .arg("run")
            .args(args)
            .output()
            .expect("run the conformance binary");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = conformance(&["--ca-file", "/nonexistent/ca.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ca_file /nonexistent/ca.pem"), "{err}");
    let (code, err) = conformance(&["--transports", "carrier-pigeon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown `carrier-pigeon`"), "{err}");
    let (code, err) = conformance(&["--auth", "[1]"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = conformance(&["--insecure-tls", "--run", "connection.websocket"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("TLS certificates are NOT checked"), "{err}");
}
