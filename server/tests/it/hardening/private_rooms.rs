//! A room turned private (issue 13, item 9): its non-participant
//! subscribers kept receiving its events.

use serde_json::json;
use server::testing::*;

/// Fails on the code before the fix: the outsiders stayed subscribed (on
/// `/` and on the room namespace) and got the next `room:updated`.
#[tokio::test]
async fn a_room_turned_private_keeps_only_its_participants() {
    let server = TestServer::start().await;
    let room = server.room("Soon private", "public").await;
    let member = server.user("member").await;
    server.join(&room, &member.id, "participant").await;
    let outsider = server.user("outsider").await;
    let visitor = server.user("visitor").await;

    let mut member_socket = server.subscribed(&member.token, &room).await;
    let mut outsider_socket = server.subscribed(&outsider.token, &room).await;
    let mut visitor_socket = server
        .connect(&visitor.token, &format!("/rooms/{room}"))
        .await;
    next_event(&mut visitor_socket, "room:subscribed").await;

    server
        .patch(
            &format!("/api/rooms/{room}"),
            json!({"visibility": "private"}),
        )
        .await;
    for socket in [&mut outsider_socket, &mut visitor_socket] {
        let updated = next_event(socket, "room:updated").await;
        assert_eq!(updated["changes"], json!({"visibility": "private"}));
        let gone = next_event(socket, "room:unsubscribed").await;
        assert_eq!(gone["roomId"], json!(room));
    }
    next_event(&mut member_socket, "room:updated").await;
    assert_no_event(&mut member_socket, "room:unsubscribed").await;

    // The next change reaches the participant only.
    server
        .patch(
            &format!("/api/rooms/{room}"),
            json!({"name": "Private now"}),
        )
        .await;
    let updated = next_event(&mut member_socket, "room:updated").await;
    assert_eq!(updated["changes"], json!({"name": "Private now"}));
    assert_no_event(&mut outsider_socket, "room:updated").await;
    assert_no_event(&mut visitor_socket, "room:updated").await;

    // And only the participant is online.
    let online = ack(
        &member_socket,
        "presence:get_online",
        json!({"roomId": room}),
    )
    .await;
    let ids: Vec<&str> = online["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, [member.id.as_str()], "{online}");
    server.stop().await;
}
