//! Operations: health, Prometheus metrics, the OpenAPI document, graceful
//! shutdown on SIGTERM, and the binary's command line and environment.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;
use sioclient::DisconnectReason;

use crate::server_bin;

async fn get_text(srv: &TestServer, path: &str) -> (StatusCode, String, String) {
    let res = srv
        .http
        .get(format!("{}{}", srv.url, path))
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, res.text().await.expect("body"))
}

async fn metrics(srv: &TestServer) -> String {
    let (status, content_type, body) = get_text(srv, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "content type {content_type}"
    );
    assert!(
        body.trim_end().ends_with("# EOF"),
        "not OpenMetrics text: {body}"
    );
    body
}

/// The value of the sample `series` (name and labels exactly as exposed);
/// `None` when the series is absent.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        Some(
            value
                .split_whitespace()
                .next()?
                .parse()
                .unwrap_or_else(|e| panic!("{line}: {e}")),
        )
    })
}

fn value_of(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("{series} missing from /metrics:\n{text}"))
}

#[tokio::test]
async fn healthz_answers_ok() {
    let srv = TestServer::start().await;
    let (status, body) = srv.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    srv.stop().await;
}

#[tokio::test]
async fn metrics_count_connections_events_and_errors() {
    let srv = TestServer::start().await;
    let user = srv.user("Grace").await;
    let room = srv.room("Metrics room", "public").await;

    let before = metrics(&srv).await;
    for family in [
        "# TYPE platform_socket_connections gauge",
        "# TYPE platform_socket_connects counter",
        "# TYPE platform_errors counter",
    ] {
        assert!(before.contains(family), "{family} missing:\n{before}");
    }
    // Every protocol error code is exposed from the start.
    for code in protocol::ErrorCode::ALL {
        let series = format!("platform_errors_total{{code=\"{}\"}}", code.as_str());
        assert_eq!(value_of(&before, &series), 0.0, "{series}");
    }
    let subscribes = "platform_events_in_total{event=\"room:subscribe\"}";
    let not_found = "platform_errors_total{code=\"ROOM_NOT_FOUND\"}";
    let subscribed_out = "platform_events_out_total{event=\"room:subscribed\"}";
    let online_out = "platform_events_out_total{event=\"presence:user_online\"}";
    let connections = "platform_socket_connections{namespace=\"root\"}";
    assert_eq!(sample(&before, subscribes), None, "{before}");
    assert_eq!(value_of(&before, connections), 0.0);
    assert_eq!(
        value_of(&before, "platform_socket_connections{namespace=\"room\"}"),
        0.0
    );
    assert_eq!(
        value_of(
            &before,
            "platform_socket_connects_total{namespace=\"root\"}"
        ),
        0.0
    );

    let mut socket = srv.connect(&user.token, "/").await;
    let reply = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(
        reply,
        json!({"success": true, "room": {"id": room, "name": "Metrics room", "status": "active"}})
    );
    let confirm = next_event(&mut socket, "room:subscribed").await;
    assert_payload("room:subscribed", &confirm);
    assert_eq!(confirm["roomId"], json!(room));
    let online = next_event(&mut socket, "presence:user_online").await;
    assert_payload("presence:user_online", &online);
    assert_eq!(online["roomId"], json!(room));
    assert_eq!(online["userId"], json!(user.id));
    assert_eq!(online["user"], json!({"id": user.id, "name": "Grace"}));

    let after = metrics(&srv).await;
    for family in [
        "# TYPE platform_events_in counter",
        "# TYPE platform_events_out counter",
    ] {
        assert!(after.contains(family), "{family} missing:\n{after}");
    }
    assert_eq!(value_of(&after, subscribes), 1.0);
    assert_eq!(value_of(&after, subscribed_out), 1.0);
    assert_eq!(value_of(&after, online_out), 1.0);
    assert_eq!(value_of(&after, connections), 1.0);
    assert_eq!(
        value_of(&after, "platform_socket_connects_total{namespace=\"root\"}"),
        1.0
    );
    assert_eq!(value_of(&after, not_found), 0.0);

    // ROOM_NOT_FOUND, once in an ack and once as an `error` event.
    let reply = ack(&socket, "room:subscribe", json!({"roomId": "room_missing"})).await;
    assert_ack_schema("room:subscribe", &reply);
    assert_eq!(
        reply,
        json!({"success": false, "error": {"code": "ROOM_NOT_FOUND", "message": "Room not found: room_missing"}})
    );
    socket
        .emit("room:subscribe", json!({"roomId": "room_missing"}))
        .expect("emit");
    let err = next_event(&mut socket, "error").await;
    assert_payload("error", &err);
    assert_eq!(err["code"], json!("ROOM_NOT_FOUND"));
    assert_eq!(err["message"], json!("Room not found: room_missing"));
    assert_eq!(
        err["details"],
        json!({"action": "room:subscribe", "event": "room:subscribe", "roomId": "room_missing"})
    );

    let after = metrics(&srv).await;
    assert_eq!(value_of(&after, subscribes), 3.0);
    assert_eq!(value_of(&after, not_found), 2.0);
    assert_eq!(
        value_of(&after, "platform_events_out_total{event=\"error\"}"),
        1.0
    );
    assert_eq!(value_of(&after, subscribed_out), 1.0);

    // The gauge goes back to 0 once the server has seen the disconnect.
    socket.disconnect().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = metrics(&srv).await;
        if value_of(&text, connections) == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{connections} still not 0:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn openapi_document_is_served() {
    let srv = TestServer::start().await;
    let (status, content_type, body) = get_text(&srv, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3."), "openapi {version}");
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(server::api::OPENAPI).unwrap()
    );
    srv.stop().await;
}

#[tokio::test]
async fn sigterm_closes_sockets_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut process = ServerProcess::start(
        server_bin(),
        &format!("sqlite://{}/db.sqlite", dir.path().display()),
    );
    let (status, user) = process
        .admin_call(Method::POST, "/api/users", Some(json!({"name": "Linus"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (status, tokens) = process
        .admin_call(
            Method::POST,
            "/api/auth/token",
            Some(json!({"userId": user["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tokens}");
    let token = tokens["accessToken"].as_str().expect("token");
    let mut socket = sioclient::connect(process.client_config(token, "/"))
        .await
        .expect("connect to the binary");

    process.terminate();
    let reason = disconnected(&mut socket).await;
    // socketioxide closes every Engine.IO session on shutdown (a close
    // frame, no Socket.IO DISCONNECT), as the JS server's `io.close()` does.
    assert_eq!(reason, DisconnectReason::TransportClose);
    let status = process
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the server did not exit within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    // The stderr reader thread may lag behind the exit: wait for the lines.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = process.stderr.lock().unwrap().join("\n");
        if log.contains("shutting down") && log.contains("stopped") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no `shutting down` / `stopped` log lines: {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(process);
    drop(dir);
}

/// A polling Engine.IO session that never connects a namespace keeps a
/// long-poll request open, which `io.close()` does not answer: SIGTERM still
/// ends the process with status 0, within the shutdown grace period.
#[tokio::test]
async fn sigterm_exits_0_despite_a_session_without_namespace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut process = ServerProcess::start(
        server_bin(),
        &format!("sqlite://{}/db.sqlite", dir.path().display()),
    );
    let handshake = process
        .http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            process.url
        ))
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("handshake body");
    let open: Value = serde_json::from_str(handshake.strip_prefix('0').expect("open packet"))
        .expect("open packet JSON");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    // Long-poll like a client would, until the server goes away.
    let poll_url = format!(
        "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
        process.url
    );
    let http = process.http.clone();
    let (polling_tx, mut polling_rx) = tokio::sync::mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            let _ = polling_tx.send(());
            match http.get(&poll_url).send().await {
                Ok(res) if res.status().is_success() => {
                    let _ = res.text().await;
                }
                _ => break,
            }
        }
    });
    // The first ping comes one ping interval (25 s) after the handshake, so
    // the first long poll is the one left open.
    tokio::time::timeout(WAIT, polling_rx.recv())
        .await
        .expect("poller running");
    // Time for that request to reach the server (nothing to wait for: a
    // long poll answers nothing until it ends). The log check below proves
    // the case was exercised.
    tokio::time::sleep(Duration::from_millis(500)).await;

    process.terminate();
    let status = process
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("the server did not exit within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    tokio::time::timeout(WAIT, poller)
        .await
        .expect("the long poll ended with the server")
        .expect("poller task");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = process.stderr.lock().unwrap().join("\n");
        if log.contains("HTTP requests still open") && log.contains("stopped") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the open long poll was not cut at shutdown: {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(process);
    drop(dir);
}

const ENV_ADMIN_TOKEN: &str = "env-admin-token-0123456789abcdef-0123";

pub(crate) fn run_binary(args: &[&str]) -> std::process::Output {
    let mut cmd = ServerProcess::command(server_bin());
    cmd.args(args).stdin(std::process::Stdio::null());
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the server binary");
    wait_output(child)
}

/// `wait_with_output`, bounded by [`PROCESS_WAIT`] (the child is killed
/// after that).
pub(crate) fn wait_output(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PROCESS_WAIT) {
        Ok(out) => out.expect("server output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the server binary did not exit within {PROCESS_WAIT:?}");
        }
    }
}

/// `--version`: the package version and the git revision the binary was
/// built from, as the tools print.
#[test]
fn version_names_the_git_revision() {
    let out = run_binary(&["--version"]);
    assert!(out.status.success(), "--version failed: {out:?}");
    clidoc::testing::assert_version_names_a_revision(
        &String::from_utf8_lossy(&out.stdout),
        "server",
        env!("CARGO_PKG_VERSION"),
    );
}

#[test]
fn help_lists_the_flags() {
    let out = run_binary(&["--help"]);
    assert!(out.status.success(), "--help failed: {out:?}");
    let help = String::from_utf8(out.stdout).expect("utf-8 help");
    for flag in [
        "--listen <LISTEN>",
        "--database-url <DATABASE_URL>",
        "--jwt-secret <JWT_SECRET>",
        "--admin-token <ADMIN_TOKEN>",
        "--token-grace",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    for var in [
        "SERVER_LISTEN",
        "SERVER_DATABASE_URL",
        "SERVER_JWT_SECRET",
        "SERVER_ADMIN_TOKEN",
    ] {
        assert!(help.contains(var), "{var} missing from --help:\n{help}");
    }
    // Secrets' defaults are not printed.
    assert!(!help.contains("dev-jwt-secret"), "{help}");
    assert!(!help.contains("dev-admin-token"), "{help}");
    // And the README shows exactly this help.
    clidoc::testing::assert_help_in_readme(&help);
}

#[test]
fn bad_flags_exit_non_zero_with_a_clear_message() {
    let out = run_binary(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unexpected argument '--no-such-flag'"),
        "stderr: {err}"
    );

    let out = run_binary(&["--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'not-an-address' for '--listen <LISTEN>'"),
        "stderr: {err}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let out = run_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--jwt-secret",
        "",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jwt-secret must not be empty"),
        "stderr: {err}"
    );

    let out = run_binary(&["--listen", "127.0.0.1:0", "--database-url", "mysql://x/y"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--database-url must start with sqlite:// or postgres://"),
        "stderr: {err}"
    );
}

#[tokio::test]
async fn configuration_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/env.sqlite", dir.path().display());
    let mut cmd = ServerProcess::command(server_bin());
    cmd.env("SERVER_LISTEN", "127.0.0.1:0")
        .env("SERVER_DATABASE_URL", &db)
        .env("SERVER_ADMIN_TOKEN", ENV_ADMIN_TOKEN)
        .env("SERVER_JWT_SECRET", "env-jwt-secret-0123456789abcdef-0123");
    let process = ServerProcess::spawn(cmd, ENV_ADMIN_TOKEN);
    assert!(
        process.url.starts_with("http://127.0.0.1:"),
        "{}",
        process.url
    );
    assert_ne!(process.url, "http://127.0.0.1:0");
    assert_ne!(process.url, "http://127.0.0.1:3000");

    // The admin token from the environment works, the default does not.
    let (status, user) = process
        .admin_call(Method::POST, "/api/users", Some(json!({"name": "Env"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let res = process
        .http
        .post(format!("{}/api/users", process.url))
        .bearer_auth("dev-admin-token")
        .json(&json!({"name": "Nope"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The database is the file named in the environment.
    assert!(
        dir.path().join("env.sqlite").exists(),
        "SERVER_DATABASE_URL was not used"
    );
    // No warning about development secrets: both were set.
    let log = process.stderr.lock().unwrap().join("\n");
    assert!(!log.contains("development JWT secret"), "{log}");
    drop(process);
    drop(dir);
}
