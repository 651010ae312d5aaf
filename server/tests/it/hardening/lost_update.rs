//! A lost update in `update_room` on PostgreSQL (issue 13, item 12): two
//! patches at once both read the old row, and the second write undid the
//! first's fields.

use reqwest::Method;
use serde_json::json;
use server::testing::postgres::PgHarness;
use server::testing::*;

const ROUNDS: usize = 30;

/// Fails on the code before the fix: in some rounds the name (or the
/// status) of one patch was overwritten with the old value by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_room_patches_keep_both_changes_on_postgres() {
    let pg = tokio::task::block_in_place(PgHarness::start);
    let url = pg.fresh_database("lost_update").await;
    let server = TestServer::start_on(&url).await;
    let room = server.room("Race", "public").await;
    let path = format!("/api/rooms/{room}");
    let statuses = ["active", "paused"];
    let mut lost = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("name {i}");
        let status = statuses[i % 2];
        let (a, b) = tokio::join!(
            server.patch(&path, json!({"name": name})),
            server.patch(&path, json!({"status": status})),
        );
        assert!(a["name"].is_string() && b["status"].is_string(), "{a} {b}");
        let now = server.admin(Method::GET, &path, None).await;
        if now["name"] != json!(name) || now["status"] != json!(status) {
            lost.push(format!("round {i}: {now}"));
        }
    }
    assert!(lost.is_empty(), "lost updates: {lost:#?}");
    server.stop().await;
}
