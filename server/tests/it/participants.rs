//! Participant events (`participant:joined`, `participant:updated`,
//! `participant:left`), users joining as themselves (protocol notes N1), and
//! the end of a removed participant's subscriptions to a private room (N4).

use reqwest::Method;
use serde_json::{Value, json};
use server::testing::*;

fn assert_event_id(payload: &Value) {
    assert!(
        payload["eventId"].as_str().is_some_and(|s| !s.is_empty()),
        "eventId missing: {payload}"
    );
}

#[tokio::test]
async fn adding_a_participant_sends_joined_with_the_full_participant() {
    let server = TestServer::start().await;
    let watcher = server.user("watcher").await;
    let alice = server.user("Alice Liddell").await;
    let room = server.room("Tea party", "public").await;
    let mut socket = server.subscribed(&watcher.token, &room).await;

    let created = server
        .post(
            &format!("/api/rooms/{room}/participants"),
            json!({"userId": alice.id, "role": "moderator"}),
        )
        .await;
    let pid = created["id"].as_str().expect("participant id").to_owned();
    assert_eq!(created["roomId"], json!(room));
    assert_eq!(created["userId"], json!(alice.id));
    assert_eq!(created["role"], json!("moderator"));

    let joined = next_event(&mut socket, "participant:joined").await;
    assert_payload("participant:joined", &joined);
    assert_eq!(joined["roomId"], json!(room));
    assert_eq!(
        joined["participant"],
        json!({
            "id": pid,
            "userId": alice.id,
            "role": "moderator",
            "user": {"id": alice.id, "name": "Alice Liddell"},
            "joinedAt": created["joinedAt"],
        })
    );
    assert!(
        protocol::timestamp::parse_utc(joined["participant"]["joinedAt"].as_str().unwrap())
            .is_some(),
        "joinedAt is not ISO-8601 UTC: {joined}"
    );
    assert_event_id(&joined);
    server.stop().await;
}

#[tokio::test]
async fn changing_a_role_sends_updated_with_the_changes() {
    let server = TestServer::start().await;
    let watcher = server.user("watcher").await;
    let bob = server.user("Bob").await;
    let room = server.room("Stage", "public").await;
    let pid = server.join(&room, &bob.id, "participant").await;
    let mut socket = server.subscribed(&watcher.token, &room).await;

    let res = server
        .patch(
            &format!("/api/rooms/{room}/participants/{pid}"),
            json!({"role": "moderator"}),
        )
        .await;
    assert_eq!(res["role"], json!("moderator"));

    let updated = next_event(&mut socket, "participant:updated").await;
    assert_payload("participant:updated", &updated);
    assert_eq!(updated["roomId"], json!(room));
    assert_eq!(updated["participantId"], json!(pid));
    assert_eq!(updated["changes"], json!({"role": "moderator"}));
    // `joinedAt` is optional here and the server leaves it out.
    assert_eq!(
        updated["participant"],
        json!({
            "id": pid,
            "userId": bob.id,
            "role": "moderator",
            "user": {"id": bob.id, "name": "Bob"},
        })
    );
    assert_event_id(&updated);

    // Back to participant: the changes say so.
    server
        .patch(
            &format!("/api/rooms/{room}/participants/{pid}"),
            json!({"role": "participant"}),
        )
        .await;
    let updated = next_event(&mut socket, "participant:updated").await;
    assert_payload("participant:updated", &updated);
    assert_eq!(updated["changes"], json!({"role": "participant"}));
    assert_eq!(updated["participant"]["role"], json!("participant"));
    server.stop().await;
}

#[tokio::test]
async fn removing_a_participant_sends_left() {
    let server = TestServer::start().await;
    let watcher = server.user("watcher").await;
    let carol = server.user("Carol").await;
    let room = server.room("Hall", "public").await;
    let pid = server.join(&room, &carol.id, "participant").await;
    let mut socket = server.subscribed(&watcher.token, &room).await;

    let (status, body) = server
        .admin_call(
            Method::DELETE,
            &format!("/api/rooms/{room}/participants/{pid}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let left = next_event(&mut socket, "participant:left").await;
    assert_payload("participant:left", &left);
    assert_eq!(left["roomId"], json!(room));
    assert_eq!(left["participantId"], json!(pid));
    assert_eq!(left["userId"], json!(carol.id));
    assert_event_id(&left);
    // A public room: the watcher keeps its subscription.
    assert_no_event(&mut socket, "room:unsubscribed").await;
    server.stop().await;
}

#[tokio::test]
async fn a_user_joins_a_public_room_as_themselves() {
    let server = TestServer::start().await;
    let watcher = server.user("watcher").await;
    let dave = server.user("Dave").await;
    let room = server.room("Open", "public").await;
    let mut socket = server.subscribed(&watcher.token, &room).await;

    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/rooms/{room}/participants"),
            Some(&dave.token),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["userId"], json!(dave.id));
    assert_eq!(body["role"], json!("participant"));
    assert_eq!(body["roomId"], json!(room));

    let joined = next_event(&mut socket, "participant:joined").await;
    assert_payload("participant:joined", &joined);
    assert_eq!(joined["roomId"], json!(room));
    assert_eq!(
        joined["participant"],
        json!({
            "id": body["id"],
            "userId": dave.id,
            "role": "participant",
            "user": {"id": dave.id, "name": "Dave"},
            "joinedAt": body["joinedAt"],
        })
    );

    // Twice is a conflict; no second event.
    let (status, again) = server
        .call(
            Method::POST,
            &format!("/api/rooms/{room}/participants"),
            Some(&dave.token),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], json!("CONFLICT"));
    assert_no_event(&mut socket, "participant:joined").await;
    server.stop().await;
}

#[tokio::test]
async fn a_user_may_not_add_others_or_join_a_private_room() {
    let server = TestServer::start().await;
    let eve = server.user("Eve").await;
    let victim = server.user("Victim").await;
    let public = server.room("Open", "public").await;
    let private = server.room("Closed", "private").await;

    let attempts = [
        (private.clone(), json!({})),
        (public.clone(), json!({"userId": victim.id})),
        (public.clone(), json!({"role": "moderator"})),
    ];
    for (room, body) in attempts {
        let (status, res) = server
            .call(
                Method::POST,
                &format!("/api/rooms/{room}/participants"),
                Some(&eve.token),
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 403, "{body} -> {res}");
        assert_eq!(res["error"]["code"], json!("PERMISSION_DENIED"), "{res}");
        assert!(
            res["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Still not a participant of the private room.
    let socket = server.connect(&eve.token, "/").await;
    let denied = ack(&socket, "room:subscribe", json!({"roomId": private})).await;
    assert_ack_error(&denied, "PERMISSION_DENIED");
    server.stop().await;
}

#[tokio::test]
async fn removal_from_a_private_room_ends_the_subscriptions() {
    let server = TestServer::start().await;
    let moderator = server.user("Mod").await;
    let member = server.user("Member").await;
    let room = server.room("Secret", "private").await;
    server.join(&room, &moderator.id, "moderator").await;
    let pid = server.join(&room, &member.id, "participant").await;

    let mut observer = server.subscribed(&moderator.token, &room).await;
    let mut on_root = server.subscribed(&member.token, &room).await;
    let mut on_ns = server
        .connect(&member.token, &format!("/rooms/{room}"))
        .await;
    next_event(&mut on_ns, "room:subscribed").await;

    server
        .delete(&format!("/api/rooms/{room}/participants/{pid}"))
        .await;

    for socket in [&mut on_root, &mut on_ns] {
        // Still subscribed when the removal is announced...
        let left = next_event(socket, "participant:left").await;
        assert_payload("participant:left", &left);
        assert_eq!(left["participantId"], json!(pid));
        assert_eq!(left["userId"], json!(member.id));
        // ... then the subscription ends.
        let unsubscribed = next_event(socket, "room:unsubscribed").await;
        assert_payload("room:unsubscribed", &unsubscribed);
        assert_eq!(unsubscribed["roomId"], json!(room));
    }
    let left = next_event(&mut observer, "participant:left").await;
    assert_payload("participant:left", &left);
    assert_eq!(left["userId"], json!(member.id));

    // Later room events reach the observer only.
    server
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Secret 2"}))
        .await;
    let updated = next_event(&mut observer, "room:updated").await;
    assert_payload("room:updated", &updated);
    assert_eq!(updated["changes"], json!({"name": "Secret 2"}));
    assert_no_event(&mut on_root, "room:updated").await;
    assert_no_event(&mut on_ns, "room:updated").await;

    // And the member cannot come back.
    let denied = ack(&on_root, "room:subscribe", json!({"roomId": room})).await;
    assert_ack_schema("room:subscribe", &denied);
    assert_ack_error(&denied, "PERMISSION_DENIED");
    server.stop().await;
}
