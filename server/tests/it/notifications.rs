//! Notifications (protocol notes N2, N5): `notification:received` reaches
//! the user's sockets on `/` only, `notification:mark_read` answers
//! `{success, data: {notificationId, read}}` and persists, and refusals.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;

async fn notify(srv: &TestServer, user_id: &str, title: &str) -> Value {
    let body = json!({
        "type": "announcement",
        "title": title,
        "message": format!("{title}: the message"),
        "data": {"link": "/rooms/abc", "n": 1, "tags": ["a", "b"]},
    });
    let (status, n) = srv
        .admin_call(
            Method::POST,
            &format!("/api/users/{user_id}/notifications"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{n}");
    assert_eq!(n["userId"], json!(user_id));
    for k in ["type", "title", "message", "data"] {
        assert_eq!(n[k], body[k], "{k} of {n}");
    }
    assert_eq!(n["read"], json!(false));
    assert!(n["id"].as_str().is_some_and(|s| !s.is_empty()), "{n}");
    assert!(n["createdAt"].is_string(), "{n}");
    n
}

/// The user's notifications over REST, as the user.
async fn list(srv: &TestServer, user: &TestUser) -> Vec<Value> {
    let (status, body) = srv
        .call(
            Method::GET,
            &format!("/api/users/{}/notifications", user.id),
            Some(&user.token),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().expect("a list").clone()
}

fn find<'a>(list: &'a [Value], id: &Value) -> &'a Value {
    list.iter()
        .find(|n| &n["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list:?}"))
}

#[tokio::test]
async fn notification_reaches_the_users_root_sockets_only() {
    let srv = TestServer::start().await;
    let room = srv.room("Lobby", "public").await;
    let ann = srv.user("Ann").await;
    let bob = srv.user("Bob").await;
    // Ann: two tabs on `/` and one socket on a room namespace.
    let mut tab1 = srv.connect(&ann.token, "/").await;
    let mut tab2 = srv.connect(&ann.token, "/").await;
    let mut ann_ns = srv.connect(&ann.token, &format!("/rooms/{room}")).await;
    next_event(&mut ann_ns, "room:subscribed").await;
    // Bob: on `/` and subscribed to the same room.
    let mut bob_root = srv.subscribed(&bob.token, &room).await;

    let n = notify(&srv, &ann.id, "Hello").await;
    let mut ids = Vec::new();
    for s in [&mut tab1, &mut tab2] {
        let ev = next_event(s, "notification:received").await;
        assert_payload("notification:received", &ev);
        assert_exact_keys(
            &ev,
            &[
                "id",
                "type",
                "title",
                "message",
                "data",
                "read",
                "createdAt",
                "timestamp",
                "eventId",
            ],
        );
        assert_eq!(
            ev,
            json!({
                "id": n["id"],
                "type": "announcement",
                "title": "Hello",
                "message": "Hello: the message",
                "data": {"link": "/rooms/abc", "n": 1, "tags": ["a", "b"]},
                "read": false,
                "createdAt": n["createdAt"],
                "timestamp": ev["timestamp"],
                "eventId": ev["eventId"],
            })
        );
        assert!(ev["eventId"].as_str().is_some_and(|s| !s.is_empty()));
        ids.push(ev["eventId"].clone());
    }
    assert_eq!(ids[0], ids[1], "one notification, one event id");
    assert_none_of(&mut ann_ns, &["notification:received"]).await;
    assert_none_of(&mut bob_root, &["notification:received"]).await;

    // REST refusals: an unknown user; a user may not notify.
    let (status, body) = srv
        .admin_call(
            Method::POST,
            "/api/users/user_unknown/notifications",
            Some(json!({"type": "x", "title": "t", "message": "m"})),
        )
        .await;
    assert_rest_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = srv
        .call(
            Method::POST,
            &format!("/api/users/{}/notifications", ann.id),
            Some(&bob.token),
            None,
            Some(json!({"type": "x", "title": "t", "message": "m"})),
        )
        .await;
    assert_rest_error(status, &body, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    assert_none_of(&mut tab1, &["notification:received"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn mark_read_acks_persists_and_refuses() {
    let srv = TestServer::start().await;
    let ann = srv.user("Ann").await;
    let bob = srv.user("Bob").await;
    let ann_root = srv.connect(&ann.token, "/").await;
    let bob_root = srv.connect(&bob.token, "/").await;
    let first = notify(&srv, &ann.id, "First").await;
    let second = notify(&srv, &ann.id, "Second").await;

    let ack1 = ack(
        &ann_root,
        "notification:mark_read",
        json!({"notificationId": first["id"]}),
    )
    .await;
    assert_ack_schema("notification:mark_read", &ack1);
    assert_eq!(
        ack1,
        json!({"success": true, "data": {"notificationId": first["id"], "read": true}})
    );

    let listed = list(&srv, &ann).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(find(&listed, &first["id"])["read"], json!(true));
    assert_eq!(find(&listed, &second["id"])["read"], json!(false));

    // Marking again is harmless.
    let again = ack(
        &ann_root,
        "notification:mark_read",
        json!({"notificationId": first["id"]}),
    )
    .await;
    assert_eq!(again, ack1);

    // Another user's notification.
    let ack2 = ack(
        &bob_root,
        "notification:mark_read",
        json!({"notificationId": second["id"]}),
    )
    .await;
    assert_ack_schema("notification:mark_read", &ack2);
    assert_ack_error(&ack2, "PERMISSION_DENIED");
    assert_eq!(
        find(&list(&srv, &ann).await, &second["id"])["read"],
        json!(false)
    );

    // An unknown id; no id; a non-string id.
    for bad in [
        json!({"notificationId": "notif_unknown"}),
        json!({}),
        json!({"notificationId": 42}),
    ] {
        let a = ack(&ann_root, "notification:mark_read", bad).await;
        assert_ack_schema("notification:mark_read", &a);
        assert_ack_error(&a, "INVALID_PAYLOAD");
    }

    // Bob may not read Ann's list either.
    let (status, body) = srv
        .call(
            Method::GET,
            &format!("/api/users/{}/notifications", ann.id),
            Some(&bob.token),
            None,
            None,
        )
        .await;
    assert_rest_error(status, &body, StatusCode::FORBIDDEN, "PERMISSION_DENIED");
    assert!(list(&srv, &bob).await.is_empty());
    srv.stop().await;
}
