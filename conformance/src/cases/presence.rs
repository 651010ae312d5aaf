//! Presence: user_online, user_offline, get_online, and one user with
//! several sockets (N11).

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::Visibility;
use protocol::event as ev;
use serde_json::{Value, json};

use crate::case;
use crate::case::{Case, Failure};
use crate::cases::support::{
    check_presence_ack, expect_event_where, expect_recent, none_of, queued_matching, rename_room,
    subscribed_socket, unsubscribe,
};
use crate::ctx::{Ctx, Room};
use sioclient::Socket;

pub const CASES: &[Case] = &[
    case!(
        "presence.user_online.payload",
        "When a second user subscribes, the first receives presence:user_online {roomId, userId, user}",
        "presence:user_online: sent to the room's subscribers when a user's first socket subscribes",
        [CreateUser, MintToken, CreateRoom],
        user_online_payload
    ),
    case!(
        "presence.user_offline.payload",
        "When the second user disconnects, the first receives presence:user_offline {roomId, userId}",
        "presence:user_offline: sent to the room's subscribers when a user's last socket leaves (here: disconnect)",
        [CreateUser, MintToken, CreateRoom],
        user_offline_payload
    ),
    case!(
        "presence.user_offline.unsubscribe",
        "When the second user unsubscribes (still connected), the first receives presence:user_offline",
        "presence:user_offline: sent when a user's last socket leaves the room; room:unsubscribe leaves it",
        [CreateUser, MintToken, CreateRoom],
        user_offline_unsubscribe
    ),
    case!(
        "presence.get_online.ack",
        "presence:get_online is acknowledged with {success, roomId, users[{id, name, connectedAt}], count} listing both online users",
        "Presence: presence:get_online's Response {roomId, users, count} lists the online users; `success: true` besides is N2",
        [CreateUser, MintToken, CreateRoom],
        get_online_ack
    ),
    case!(
        "presence.online_once",
        "One user with two sockets: one user_online; closing one socket sends no user_offline, closing the second does",
        "Presence: \"Track online participants in room\": offline when the user's last socket leaves; one online and one offline for several tabs is N11",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        online_once
    ),
];

/// Time the server gets to handle a closed connection before the sentinel
/// that shows no `presence:user_offline` followed it: a disconnect reaches
/// the server on its own connection, with no order relative to ours.
const DISCONNECT_SETTLE: Duration = Duration::from_millis(500);

fn of_user(user_id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |p: &Value| p.get("userId").and_then(Value::as_str) == Some(user_id)
}

/// Waits on `socket` for `event` (`presence:user_online` or
/// `presence:user_offline`) about `user_id` and checks its schema, `roomId`
/// and `userId`; returns the payload.
async fn expect_presence(
    cx: &mut Ctx,
    socket: &mut Socket,
    event: &str,
    room_id: &str,
    user_id: &str,
) -> Result<Value, Failure> {
    let p = expect_event_where(
        cx,
        socket,
        event,
        &format!("userId {user_id}"),
        of_user(user_id),
    )
    .await?;
    cx.check_payload(event, &p)?;
    cx.expect_eq(&format!("{event} roomId"), &json!(room_id), &p["roomId"])?;
    cx.expect_eq(&format!("{event} userId"), &json!(user_id), &p["userId"])?;
    Ok(p)
}

/// Renames `room` and waits on `socket` for that `room:updated`: once it
/// is there, everything the server sent before it is queued too.
async fn sentinel(
    cx: &mut Ctx,
    socket: &mut Socket,
    room: &Room,
    suffix: &str,
) -> Result<(), Failure> {
    let name = rename_room(cx, room, suffix).await?;
    expect_event_where(
        cx,
        socket,
        ev::ROOM_UPDATED,
        &format!("room.name {name:?}"),
        |p| p["room"]["name"] == json!(name),
    )
    .await?;
    Ok(())
}

async fn user_online_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let first = cx.user("first").await?;
    let second = cx.user("second").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s1 = subscribed_socket(cx, &first.token, &[&room]).await?;
    let s2 = subscribed_socket(cx, &second.token, &[&room]).await?;
    let p = expect_presence(cx, &mut s1, ev::PRESENCE_USER_ONLINE, &room.id, &second.id).await?;
    cx.expect_eq(
        "presence:user_online user.id",
        &json!(second.id),
        &p["user"]["id"],
    )?;
    cx.expect_eq(
        "presence:user_online user.name",
        &json!(second.name),
        &p["user"]["name"],
    )?;
    s1.disconnect().await;
    s2.disconnect().await;
    Ok(())
}

async fn user_offline_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let first = cx.user("stays").await?;
    let second = cx.user("goes").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s1 = subscribed_socket(cx, &first.token, &[&room]).await?;
    let s2 = subscribed_socket(cx, &second.token, &[&room]).await?;
    expect_event_where(
        cx,
        &mut s1,
        ev::PRESENCE_USER_ONLINE,
        &format!("userId {}", second.id),
        of_user(&second.id),
    )
    .await?;
    s2.disconnect().await;
    expect_presence(cx, &mut s1, ev::PRESENCE_USER_OFFLINE, &room.id, &second.id).await?;
    s1.disconnect().await;
    Ok(())
}

async fn user_offline_unsubscribe(cx: &mut Ctx) -> Result<(), Failure> {
    let first = cx.user("stays").await?;
    let second = cx.user("unsubscribes").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s1 = subscribed_socket(cx, &first.token, &[&room]).await?;
    let s2 = subscribed_socket(cx, &second.token, &[&room]).await?;
    expect_presence(cx, &mut s1, ev::PRESENCE_USER_ONLINE, &room.id, &second.id).await?;
    unsubscribe(cx, &s2, &room.id).await?;
    expect_presence(cx, &mut s1, ev::PRESENCE_USER_OFFLINE, &room.id, &second.id).await?;
    s1.disconnect().await;
    s2.disconnect().await;
    Ok(())
}

async fn get_online_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let first = cx.user("asker").await?;
    let second = cx.user("other").await?;
    let room = cx.room(Visibility::Public).await?;
    let s1 = subscribed_socket(cx, &first.token, &[&room]).await?;
    let s2 = subscribed_socket(cx, &second.token, &[&room]).await?;
    let ack = cx
        .ack(&s1, ev::PRESENCE_GET_ONLINE, json!({ "roomId": room.id }))
        .await?;
    check_presence_ack(cx, "presence:get_online accepted", &ack)?;
    cx.expect_eq("ack.roomId", &json!(room.id), &ack["roomId"])?;
    let users = ack["users"].as_array().cloned().unwrap_or_default();
    cx.expect_eq("ack.count", &json!(users.len()), &ack["count"])?;
    // The room is this case's own: exactly the two subscribed users.
    let listed: BTreeMap<String, Value> = users
        .iter()
        .map(|u| (u["id"].as_str().unwrap_or_default().to_owned(), u.clone()))
        .collect();
    let mut expected_ids = vec![first.id.clone(), second.id.clone()];
    expected_ids.sort();
    let mut actual_ids: Vec<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    actual_ids.sort();
    cx.expect_eq("ack.users[].id", &json!(expected_ids), &json!(actual_ids))?;
    for u in [&first, &second] {
        let entry = &listed[&u.id];
        cx.expect_eq(
            &format!("users[id={}].name", u.id),
            &json!(u.name),
            &entry["name"],
        )?;
        expect_recent(
            cx,
            &format!("users[id={}].connectedAt", u.id),
            &entry["connectedAt"],
        )?;
    }
    s1.disconnect().await;
    s2.disconnect().await;
    Ok(())
}

async fn online_once(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("watcher").await?;
    let tabs = cx.user("two tabs").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut w = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    let tab1 = subscribed_socket(cx, &tabs.token, &[&room]).await?;
    expect_presence(cx, &mut w, ev::PRESENCE_USER_ONLINE, &room.id, &tabs.id).await?;
    let tab2 = subscribed_socket(cx, &tabs.token, &[&room]).await?;

    // Sentinel after the second tab's subscription: no second user_online.
    sentinel(cx, &mut w, &room, "after tab 2").await?;
    let again = queued_matching(&mut w, |name, p| {
        name == ev::PRESENCE_USER_ONLINE && p.get("userId") == Some(&json!(tabs.id))
    });
    let once = none_of(
        cx,
        "one presence:user_online for a user with two subscribed sockets",
        &again,
    );
    cx.decided("N11", once)?;

    // Closing one tab: the user is still online.
    tab1.disconnect().await;
    tokio::time::sleep(DISCONNECT_SETTLE).await;
    sentinel(cx, &mut w, &room, "after tab 1 closed").await?;
    let early = queued_matching(&mut w, |name, p| {
        name == ev::PRESENCE_USER_OFFLINE && p.get("userId") == Some(&json!(tabs.id))
    });
    let still = none_of(
        cx,
        "no presence:user_offline while one of the user's sockets is subscribed",
        &early,
    );
    cx.decided("N11", still)?;

    // Closing the last tab: offline.
    tab2.disconnect().await;
    expect_presence(cx, &mut w, ev::PRESENCE_USER_OFFLINE, &room.id, &tabs.id).await?;
    w.disconnect().await;
    Ok(())
}
