//! A database outage under a running server (issue 13, item 10): clients
//! must not be told their good token is bad, nor that their event is, and
//! nobody may read the driver's error text.

use std::time::Instant;

use protocol::error::AUTH_FAILED_PREFIX;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::realtime::SERVER_UNAVAILABLE;
use server::testing::postgres::PgHarness;
use server::testing::*;

/// More refused connects than the failed-authentication limit allows.
const FAILED_AUTH_LIMIT: u32 = 2;

/// Fails on the code before the fix: every connect during the outage got
/// `Authentication failed: Invalid token` (and counted as a failed attempt
/// of the address, so the client was locked out after it), events got
/// `INVALID_PAYLOAD`, `/healthz` returned the driver's error text and a
/// user's REST call got 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_not_a_bad_token_nor_a_bad_event() {
    let pg = tokio::task::block_in_place(PgHarness::start);
    let url = pg.fresh_database("outage").await;
    let server = TestServer::start_with(|c| {
        c.database_url = url;
        // Every request during the outage waits this long for a connection.
        c.database_acquire_timeout = std::time::Duration::from_millis(500);
        c.failed_auth_per_address_per_minute = FAILED_AUTH_LIMIT;
    })
    .await;
    let room = server.room("Outage", "public").await;
    let user = server.user("ann").await;
    let mut socket = server.connect(&user.token, "/").await;

    tokio::task::block_in_place(|| pg.stop());

    // Connects: a distinct message, not an authentication failure, and
    // never the per-address lockout however many there are.
    for _ in 0..=FAILED_AUTH_LIMIT {
        for ns in ["/".to_owned(), format!("/rooms/{room}")] {
            let started = Instant::now();
            let message = server.connect_refused(&user.token, &ns).await;
            assert_eq!(message, SERVER_UNAVAILABLE, "{ns}");
            assert!(!message.starts_with(AUTH_FAILED_PREFIX));
            assert!(
                started.elapsed() < WAIT,
                "a refused connect took {:?}",
                started.elapsed()
            );
        }
    }

    // An event that needs the store: retryable, not INVALID_PAYLOAD.
    let answer = ack(&socket, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_error(&answer, "RATE_LIMIT_EXCEEDED");
    assert_eq!(answer["error"]["message"], json!(SERVER_UNAVAILABLE));
    // Without an ack: the `error` event's details say so too.
    socket
        .emit("room:subscribe", json!({"roomId": room}))
        .expect("emit");
    let error = next_event(&mut socket, "error").await;
    assert_eq!(error["code"], json!("RATE_LIMIT_EXCEEDED"), "{error}");
    assert_eq!(error["details"]["retryable"], json!(true), "{error}");

    // REST with a user's token: 503, not 401.
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/users/{}", user.id),
            Some(&user.token),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], json!("UNAVAILABLE"), "{body}");

    // Health: which dependency, never the driver's text.
    let health = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = health.json().await.expect("JSON health");
    assert_eq!(
        body,
        json!({"status": "unavailable", "failing": "database"})
    );

    server.stop().await;
}

/// Fails on the code before the fix: the answer carried Redis's error text
/// (address, OS error) to anyone who asked, after the Redis client's
/// retries (about 15 s); and stopping the node waited as long again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_named_by_healthz_and_does_not_hold_a_shutdown() {
    let mut redis = tokio::task::block_in_place(redis::RedisServer::start);
    let url = redis.url();
    let server = TestServer::start_with(|c| c.redis_url = Some(url)).await;
    let health = |server: &TestServer| {
        let req = server.http.get(format!("{}/healthz", server.url));
        async move {
            let resp = req.send().await.expect("GET /healthz");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("JSON health"))
        }
    };
    let (status, body) = health(&server).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    tokio::task::block_in_place(|| redis.stop());
    let started = Instant::now();
    let (status, body) = health(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, json!({"status": "unavailable", "failing": "redis"}));
    // Bounded: without the bound the Redis client's retries held the
    // answer about 15 s, past any probe's timeout.
    assert!(
        started.elapsed() < 3 * server::api::HEALTH_CHECK_TIMEOUT,
        "/healthz took {:?}",
        started.elapsed()
    );

    // Stopping the node does not wait out the Redis client's retries
    // either (it took about 13 s): three goodbyes, each bounded; the other
    // nodes reap its presence.
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < 4 * server::serve::CLUSTER_GOODBYE_BOUND,
        "stopping took {:?}",
        started.elapsed()
    );
}
