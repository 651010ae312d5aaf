//! Presence (protocol notes N11): a user is online in a room while at least
//! one of their sockets is subscribed to it; one `presence:user_online` and
//! one `presence:user_offline` per user, whatever the number of tabs.

use serde_json::{Value, json};
use server::testing::*;
use sioclient::Socket;

/// Waits for `presence:user_online` and checks it is `user`'s, in full.
async fn expect_online(socket: &mut Socket, room: &str, user: &TestUser) {
    let online = next_event(socket, "presence:user_online").await;
    assert_payload("presence:user_online", &online);
    assert_eq!(online["roomId"], json!(room), "{online}");
    assert_eq!(online["userId"], json!(user.id), "{online}");
    assert_eq!(
        online["user"],
        json!({"id": user.id, "name": user.name}),
        "{online}"
    );
    assert!(online["eventId"].as_str().is_some_and(|s| !s.is_empty()));
}

/// Waits for `presence:user_offline` and checks it is `user`'s, in full.
async fn expect_offline(socket: &mut Socket, room: &str, user: &TestUser) {
    let offline = next_event(socket, "presence:user_offline").await;
    assert_payload("presence:user_offline", &offline);
    assert_eq!(offline["roomId"], json!(room), "{offline}");
    assert_eq!(offline["userId"], json!(user.id), "{offline}");
    assert!(offline["eventId"].as_str().is_some_and(|s| !s.is_empty()));
}

/// `presence:get_online`; checks the ack's shape and returns it.
async fn online_list(socket: &Socket, room: &str) -> Value {
    let list = ack(socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &list);
    assert_eq!(list["success"], json!(true), "{list}");
    assert_eq!(list["roomId"], json!(room), "{list}");
    list
}

/// The `(id, name)` pairs of a presence list, in order.
fn ids_and_names(list: &Value) -> Vec<(String, String)> {
    list["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_owned(),
                u["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(user: &TestUser) -> (String, String) {
    (user.id.clone(), user.name.clone())
}

#[tokio::test]
async fn subscribing_announces_the_user_and_get_online_lists_them() {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let bob = server.user("Bob").await;
    let room = server.room("Lounge", "public").await;

    let mut a = server.subscribed(&alice.token, &room).await;
    // Every subscriber hears of a user's first socket, including the user.
    expect_online(&mut a, &room, &alice).await;
    let mut b = server.subscribed(&bob.token, &room).await;
    expect_online(&mut a, &room, &bob).await;
    expect_online(&mut b, &room, &bob).await;
    assert_no_event(&mut b, "presence:user_online").await;

    let list = online_list(&a, &room).await;
    assert_eq!(list["count"], json!(2), "{list}");
    assert_eq!(ids_and_names(&list), [pair(&alice), pair(&bob)]);
    let users = list["users"].as_array().unwrap();
    for u in users {
        assert_eq!(u.as_object().unwrap().len(), 3, "unexpected fields: {u}");
        assert!(
            protocol::timestamp::is_recent(
                u["connectedAt"].as_str().unwrap(),
                std::time::SystemTime::now(),
                WAIT * 6,
            ),
            "connectedAt is not a recent ISO-8601 time: {u}"
        );
    }
    let at = |i: usize| protocol::timestamp::parse_utc(users[i]["connectedAt"].as_str().unwrap());
    assert!(at(0) <= at(1), "listed oldest first: {list}");
    // The same list from the other user's socket.
    assert_eq!(online_list(&b, &room).await["users"], list["users"]);
    server.stop().await;
}

#[tokio::test]
async fn two_tabs_are_one_online_and_one_offline() {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let bob = server.user("Bob").await;
    let room = server.room("Lounge", "public").await;
    let mut a = server.subscribed(&alice.token, &room).await;
    expect_online(&mut a, &room, &alice).await;

    let tab1 = server.subscribed(&bob.token, &room).await;
    expect_online(&mut a, &room, &bob).await;
    let tab2 = server.subscribed(&bob.token, &room).await;
    assert_no_event(&mut a, "presence:user_online").await;
    let list = online_list(&a, &room).await;
    assert_eq!(list["count"], json!(2), "{list}");
    assert_eq!(ids_and_names(&list), [pair(&alice), pair(&bob)]);

    tab1.disconnect().await;
    assert_no_event(&mut a, "presence:user_offline").await;
    let list = online_list(&a, &room).await;
    assert_eq!(list["count"], json!(2), "{list}");

    tab2.disconnect().await;
    expect_offline(&mut a, &room, &bob).await;
    // Exactly one offline, even if the first tab's close was slow.
    assert_no_event(&mut a, "presence:user_offline").await;
    let list = online_list(&a, &room).await;
    assert_eq!(list["count"], json!(1), "{list}");
    assert_eq!(ids_and_names(&list), [pair(&alice)]);
    server.stop().await;
}

#[tokio::test]
async fn a_root_socket_and_a_namespace_socket_are_one_user() {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let bob = server.user("Bob").await;
    let room = server.room("Lounge", "public").await;
    let mut a = server.subscribed(&alice.token, &room).await;
    expect_online(&mut a, &room, &alice).await;

    let mut on_ns = server.connect(&bob.token, &format!("/rooms/{room}")).await;
    next_event(&mut on_ns, "room:subscribed").await;
    expect_online(&mut a, &room, &bob).await;
    let on_root = server.subscribed(&bob.token, &room).await;
    assert_no_event(&mut a, "presence:user_online").await;

    // The namespace socket sees the same list.
    let list = online_list(&on_ns, &room).await;
    assert_eq!(list["count"], json!(2), "{list}");

    on_ns.disconnect().await;
    assert_no_event(&mut a, "presence:user_offline").await;
    on_root.disconnect().await;
    expect_offline(&mut a, &room, &bob).await;
    server.stop().await;
}

#[tokio::test]
async fn unsubscribing_goes_offline() {
    let server = TestServer::start().await;
    let alice = server.user("Alice").await;
    let bob = server.user("Bob").await;
    let room = server.room("Lounge", "public").await;
    let mut a = server.subscribed(&alice.token, &room).await;
    expect_online(&mut a, &room, &alice).await;
    let b = server.subscribed(&bob.token, &room).await;
    expect_online(&mut a, &room, &bob).await;

    let res = ack(&b, "room:unsubscribe", json!({"roomId": room})).await;
    assert_eq!(res, json!({"success": true, "data": {"roomId": room}}));
    expect_offline(&mut a, &room, &bob).await;
    let list = online_list(&a, &room).await;
    assert_eq!(list["count"], json!(1), "{list}");
    assert_eq!(ids_and_names(&list), [pair(&alice)]);

    // A second unsubscribe is not a second offline.
    ack(&b, "room:unsubscribe", json!({"roomId": room})).await;
    assert_no_event(&mut a, "presence:user_offline").await;
    // Still connected, not subscribed: not listed, but may ask.
    let list = online_list(&b, &room).await;
    assert_eq!(list["count"], json!(1), "{list}");
    server.stop().await;
}

#[tokio::test]
async fn get_online_needs_access_to_an_existing_room() {
    let server = TestServer::start().await;
    let outsider = server.user("Outsider").await;
    let member = server.user("Member").await;
    let room = server.room("Vault", "private").await;
    server.join(&room, &member.id, "participant").await;
    let mut socket = server.connect(&outsider.token, "/").await;

    let denied = ack(&socket, "presence:get_online", json!({"roomId": room})).await;
    assert_ack_schema("presence:get_online", &denied);
    assert_ack_error(&denied, "PERMISSION_DENIED");

    let missing = ack(
        &socket,
        "presence:get_online",
        json!({"roomId": "room_missing"}),
    )
    .await;
    assert_ack_schema("presence:get_online", &missing);
    assert_ack_error(&missing, "ROOM_NOT_FOUND");
    assert_eq!(
        missing["error"]["message"],
        json!("Room not found: room_missing")
    );

    // Without an ack: `error` events with the details.
    socket
        .emit("presence:get_online", json!({"roomId": room}))
        .expect("emit");
    let err = next_event(&mut socket, "error").await;
    assert_payload("error", &err);
    assert_eq!(err["code"], json!("PERMISSION_DENIED"));
    assert_eq!(
        err["details"],
        json!({"action": "presence:get_online", "event": "presence:get_online", "roomId": room})
    );
    socket
        .emit("presence:get_online", json!({"roomId": "room_missing"}))
        .expect("emit");
    let err = next_event(&mut socket, "error").await;
    assert_payload("error", &err);
    assert_eq!(err["code"], json!("ROOM_NOT_FOUND"));
    assert_eq!(
        err["details"],
        json!({"action": "presence:get_online", "event": "presence:get_online", "roomId": "room_missing"})
    );

    // A participant may ask, subscribed or not.
    let member_socket = server.connect(&member.token, "/").await;
    let list = online_list(&member_socket, &room).await;
    assert_eq!(list["count"], json!(0), "{list}");
    assert_eq!(list["users"], json!([]));
    server.stop().await;
}
