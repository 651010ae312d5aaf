//! Secrets in the log (issue 13, item 12): with `--log debug`, socketioxide
//! logged the CONNECT's `auth` (the access token) and every packet.

use serde_json::json;
use server::testing::*;

use crate::server_bin;

/// Fails on the code before the fix: the token was in the debug log
/// (`auth: Some(... "token": ...)`, `received message: "0{...}"`).
#[tokio::test]
async fn debug_logs_carry_no_token_or_payload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let process = ServerProcess::start_with(server_bin(), &db, &["--log", "debug"]);
    let (_, token) = super::process_user(&process, "logged").await;
    let socket = sioclient::connect(process.client_config(&token, "/"))
        .await
        .expect("connects");
    let marker = "payload-marker-4f1c";
    let answer = ack(&socket, "room:subscribe", json!({"roomId": marker})).await;
    assert_eq!(answer["success"], json!(false), "{answer}");
    socket.disconnect().await;

    let lines = process.stderr.lock().expect("stderr lines").clone();
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")),
        "debug logging is on: {lines:#?}"
    );
    // The JWT's signature part is enough to look for.
    let signature = token.rsplit('.').next().expect("a JWT");
    for line in &lines {
        assert!(!line.contains(signature), "the token is logged: {line}");
        assert!(!line.contains(marker), "a payload is logged: {line}");
    }
}
