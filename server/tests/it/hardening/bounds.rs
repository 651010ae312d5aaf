//! Settings and request fields without bounds (issue 13, item 12: `ping
//! interval 0` accepted, a huge `ttlSeconds` panicking the handler).

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::testing::*;

use super::run_server;

/// Fails on the code before the fix: `ttlSeconds` near `i64::MAX`
/// overflowed `exp` and panicked the request's task (the connection was
/// dropped without an answer).
#[tokio::test]
async fn huge_token_lifetimes_are_refused() {
    let server = TestServer::start().await;
    let user = server.user("long-lived").await;
    let max = server::auth::MAX_TOKEN_TTL_SECS;
    for ttl in [i64::MAX, i64::MIN, max + 1, -max - 1] {
        let (status, body) = server
            .admin_call(
                Method::POST,
                "/api/auth/token",
                Some(json!({"userId": user.id, "ttlSeconds": ttl})),
            )
            .await;
        assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");
    }
    let (status, body) = server
        .admin_call(
            Method::POST,
            "/api/auth/token",
            Some(json!({"userId": user.id, "ttlSeconds": max})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
}

/// Fails on the code before the fix: a ping interval or timeout of 0 (a
/// ping loop without pause, or every session timed out at once) and a
/// lifetime that overflows were accepted.
#[test]
fn heartbeat_and_token_settings_out_of_range_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    for (flag, value, message) in [
        (
            "--ping-interval-ms",
            "0",
            "--ping-interval-ms must be between 10 and 3600000 ms",
        ),
        (
            "--ping-timeout-ms",
            "0",
            "--ping-timeout-ms must be between 10 and 3600000 ms",
        ),
        (
            "--ping-interval-ms",
            "18446744073709551615",
            "--ping-interval-ms must be between 10 and 3600000 ms",
        ),
        (
            "--access-token-ttl",
            "9223372036854775807",
            "--access-token-ttl must be between 1 and 316224000 seconds",
        ),
    ] {
        let out = run_server(
            &[
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db,
                flag,
                value,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{flag} {value}: {err}");
    }
}
