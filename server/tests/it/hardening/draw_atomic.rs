//! A draw not atomic with its notifications (issue 13, item 12): the
//! winners were committed in one transaction and each winner's
//! notification in its own after it, so a failure in between answered the
//! draw with an error although its winners were drawn and announced.

use reqwest::{Method, StatusCode};
use serde_json::json;
use server::testing::*;

/// Fails on the code before the fix: the draw answered 500, yet its winner
/// was committed (the prize's unit gone) and announced with
/// `winner:selected`, and the winner never got a notification.
#[tokio::test]
async fn a_draw_that_fails_on_its_notification_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let store = &server.state().store;
    let room = server.room("Lottery", "public").await;
    let u = server.user("lucky").await;
    server.join(&room, &u.id, "participant").await;
    let prize = server
        .post(
            &format!("/api/rooms/{room}/prizes"),
            json!({"name": "Car", "quantity": 1}),
        )
        .await;
    let prize_id = prize["id"].as_str().expect("prize id").to_owned();
    let draw = format!("/api/rooms/{room}/prizes/{prize_id}/draw");
    let mut watcher = server.subscribed(&u.token, &room).await;

    // The failure between the two: the database refuses every notification.
    sqlx::query(
        "CREATE TRIGGER refuse_notifications BEFORE INSERT ON notifications \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let (status, body) = server.admin_call(Method::POST, &draw, None).await;
    assert_rest_error(status, &body, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL");
    assert_no_event(&mut watcher, "winner:selected").await;
    assert!(
        store.list_winners(&room).await.expect("winners").is_empty(),
        "a failed draw left a winner"
    );
    let left = store
        .get_prize(&room, &prize_id)
        .await
        .expect("prize")
        .expect("prize exists");
    assert_eq!(left.quantity_remaining, 1, "a failed draw took the unit");

    // Without the failure the same draw goes through, whole.
    sqlx::query("DROP TRIGGER refuse_notifications")
        .execute(store.pool())
        .await
        .expect("drop trigger");
    let (status, body) = server.admin_call(Method::POST, &draw, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let selected = next_event(&mut watcher, "winner:selected").await;
    let received = next_event(&mut watcher, "notification:received").await;
    assert_eq!(
        selected["winner"]["participant"]["user"]["id"],
        json!(u.id),
        "{selected}"
    );
    assert_eq!(
        received["data"]["winnerId"], selected["winner"]["id"],
        "{received}"
    );
    let notes = store
        .list_notifications(&u.id)
        .await
        .expect("notifications");
    assert_eq!(notes.len(), 1);
    server.stop().await;
}
