//! NUL bytes in text on PostgreSQL (issue 13, item 12): PostgreSQL refuses
//! `\u0000` in text, and the store error became a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::testing::postgres::PgHarness;
use server::testing::*;

/// Fails on the code before the fix: 500 for the body, the path and the
/// event alike (and the event's error was a server failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_bad_input_on_postgres() {
    let pg = tokio::task::block_in_place(PgHarness::start);
    let url = pg.fresh_database("nul_bytes").await;
    let server = TestServer::start_on(&url).await;

    let (status, body) = server
        .admin_call(Method::POST, "/api/users", Some(json!({"name": "a\u{0}b"})))
        .await;
    assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");
    let (status, body) = server
        .admin_call(Method::GET, "/api/rooms/room%00x", None)
        .await;
    assert_rest_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_PAYLOAD");

    let user = server.user("ok").await;
    let socket = server.connect(&user.token, "/").await;
    let answer = ack(&socket, "room:subscribe", json!({"roomId": "room\u{0}x"})).await;
    assert_ack_error(&answer, "INVALID_PAYLOAD");
    server.stop().await;
}
