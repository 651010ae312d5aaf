//! Token tables never purged (issue 13, item 12): every minted token left
//! a row for good.

use std::time::Duration;

use server::store::Store;
use server::testing::*;

/// Fails on the code before the fix: the expired rows were still there
/// (nothing ever called the purge).
#[tokio::test]
async fn expired_token_records_are_purged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let store = Store::connect(&db).await.expect("store");
    let user = store.create_user("holder", None).await.expect("user");
    let now_ms = server::auth::unix_now_ms();
    store
        .insert_token("tok_expired", &user.id, now_ms - 60_000)
        .await
        .expect("expired token");
    store
        .insert_token("tok_live", &user.id, now_ms + 3_600_000)
        .await
        .expect("live token");
    store
        .create_refresh_token_with_ttl(&user.id, -60_000)
        .await
        .expect("expired refresh token");

    let server = TestServer::start_on(&db).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while store
        .token_state("tok_expired")
        .await
        .expect("lookup")
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired token record is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        store
            .token_state("tok_live")
            .await
            .expect("lookup")
            .is_some()
    );
    // The expired refresh token went in the same purge: nothing is left.
    assert_eq!(
        store.purge_expired_tokens(now_ms).await.expect("purge"),
        0,
        "expired rows left behind"
    );
    server.stop().await;
    store.close().await;
}
