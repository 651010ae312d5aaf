//! Rooms: subscribe / unsubscribe, room updates, status changes, deletion,
//! the room namespace and isolation between rooms.

use driver::Action;
use protocol::event as ev;
use protocol::{RoomStatus, Visibility};
use serde_json::json;
use sioclient::{Incoming, Socket};

use super::support::{
    drain, expect_subscribed, namespace_subscribed, probe_room, probe_unheard,
    rename_and_expect_updated, rename_room, subscribed_socket, unsubscribe,
};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, vars};

pub const CASES: &[Case] = &[
    case!(
        "rooms.subscribe.ack",
        "room:subscribe is acknowledged with {success: true, room: {id, name, status}}",
        "room:subscribe ack (required): success `{success: true, room: Room}` describing the subscribed room",
        [CreateUser, MintToken, CreateRoom],
        subscribe_ack
    ),
    case!(
        "rooms.subscribed.payload",
        "A subscription is confirmed with room:subscribed {roomId, timestamp}, on `/` and on /rooms/:roomId",
        "room:subscribed: sent to the subscribing socket after room:subscribe; after connecting to /rooms/:roomId too (N5)",
        [CreateUser, MintToken, CreateRoom],
        subscribed_payload
    ),
    case!(
        "rooms.unsubscribe.ack",
        "room:unsubscribe is acknowledged with {success: true, data: {roomId}}",
        "Acknowledgments: room:unsubscribe's ack has the general shape `{success: true, data}`; `data: {roomId}` is N2",
        [CreateUser, MintToken, CreateRoom],
        unsubscribe_ack
    ),
    case!(
        "rooms.unsubscribed.payload",
        "room:unsubscribe is followed by room:unsubscribed {roomId, timestamp}",
        "room:unsubscribed: sent to the socket that stopped listening, after room:unsubscribe",
        [CreateUser, MintToken, CreateRoom],
        unsubscribed_payload
    ),
    case!(
        "rooms.unsubscribe.stops_events",
        "After room:unsubscribe the socket no longer receives that room's events, but still those of its other rooms",
        "Room authorization: \"Receiving room updates\" needs the subscription; room:unsubscribe stops delivering the room's events to this socket",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        unsubscribe_stops_events
    ),
    case!(
        "rooms.updated.payload",
        "Renaming a room sends room:updated {roomId, changes: {name}, room} to its subscribers",
        "room:updated: after a committed change, `changes` holds every changed field with its new value, `room` the room after it",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        updated_payload
    ),
    case!(
        "rooms.status_changed.payload",
        "A status change sends room:status_changed {oldStatus, newStatus} and room:updated with changes.status",
        "room:status_changed on a status change; room:updated besides, with changes.status, is N13",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        status_changed_payload
    ),
    case!(
        "rooms.deleted.payload",
        "Deleting a room sends room:deleted {roomId} to its subscribers on `/`",
        "room:deleted: sent to the room's subscribers when the room is deleted",
        [CreateUser, MintToken, CreateRoom, DeleteRoom],
        deleted_payload
    ),
    case!(
        "rooms.deleted.namespace_closed",
        "A /rooms/:roomId socket receives room:deleted, then the namespace disconnects it",
        "room:deleted reaches /rooms/:roomId sockets; the namespace then closing, disconnecting them, is N5",
        [CreateUser, MintToken, CreateRoom, DeleteRoom],
        deleted_namespace_closed
    ),
    case!(
        "rooms.namespace.events",
        "A socket connected to /rooms/:roomId receives the room's events (room:updated) without room:subscribe",
        "Namespaces: \"/rooms/:roomId - Room-specific events\" reach sockets connected to the room's namespace (its room:subscribed: N5)",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        namespace_events
    ),
    case!(
        "rooms.isolation",
        "A subscriber of room B receives no event of room A",
        "Room authorization: \"Receiving room updates\": only sockets subscribed to a room receive its events",
        [CreateUser, MintToken, CreateRoom, UpdateRoom],
        isolation
    ),
];

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

async fn subscribe_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("sub").await?;
    let room = cx.room(Visibility::Public).await?;
    let s = cx.connect(&u.token, "/").await?;
    let ack = cx
        .ack(&s, ev::ROOM_SUBSCRIBE, json!({ "roomId": room.id }))
        .await?;
    cx.check_ack(ev::ROOM_SUBSCRIBE, &ack)?;
    cx.expect_eq("ack.success", &json!(true), &ack["success"])?;
    cx.expect_eq("ack.room.id", &json!(room.id), &ack["room"]["id"])?;
    cx.expect_eq("ack.room.name", &json!(room.name), &ack["room"]["name"])?;
    cx.expect_eq(
        "ack.room.status",
        &json!(room.status),
        &ack["room"]["status"],
    )?;
    s.disconnect().await;
    Ok(())
}

async fn subscribed_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("subd").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    expect_subscribed(cx, &mut s, &room.id).await?;
    let mut ns = cx.connect(&u.token, &ev::room_namespace(&room.id)).await?;
    // Connecting to the namespace counts as subscribing: N5.
    namespace_subscribed(cx, &mut ns, &room.id).await?;
    s.disconnect().await;
    ns.disconnect().await;
    Ok(())
}

async fn unsubscribe_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("unsub").await?;
    let room = cx.room(Visibility::Public).await?;
    let s = subscribed_socket(cx, &u.token, &[&room]).await?;
    let ack = cx
        .ack(&s, ev::ROOM_UNSUBSCRIBE, json!({ "roomId": room.id }))
        .await?;
    cx.check_ack(ev::ROOM_UNSUBSCRIBE, &ack)?;
    cx.expect_eq("ack.success", &json!(true), &ack["success"])?;
    // The general shape's `data` holds what N2 says: the room id.
    let data = cx.expect_eq("ack.data.roomId", &json!(room.id), &ack["data"]["roomId"]);
    cx.decided("N2", data)?;
    s.disconnect().await;
    Ok(())
}

async fn unsubscribed_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("unsubd").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    unsubscribe(cx, &s, &room.id).await?;
    let confirm = cx.expect_event(&mut s, ev::ROOM_UNSUBSCRIBED).await?;
    cx.check_payload(ev::ROOM_UNSUBSCRIBED, &confirm)?;
    cx.expect_eq(
        "room:unsubscribed roomId",
        &json!(room.id),
        &confirm["roomId"],
    )?;
    s.disconnect().await;
    Ok(())
}

async fn unsubscribe_stops_events(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("stop").await?;
    let watcher = cx.user("stays").await?;
    let left = cx.room(Visibility::Public).await?;
    let kept = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&left, &kept]).await?;
    let mut w = subscribed_socket(cx, &watcher.token, &[&left]).await?;
    unsubscribe(cx, &s, &left.id).await?;
    let confirm = cx.expect_event(&mut s, ev::ROOM_UNSUBSCRIBED).await?;
    cx.expect_eq(
        "room:unsubscribed roomId",
        &json!(left.id),
        &confirm["roomId"],
    )?;
    // The room kept still reaches the socket; a change to the room left
    // is seen by its other subscriber.
    rename_and_expect_updated(cx, &mut s, &kept, "still subscribed").await?;
    let probe = probe_room(cx, &mut w, &left).await?;
    // Subscribed again, a marker on the left room's own path closes what
    // the socket could have received of it.
    cx.subscribe(&s, &left.id).await?;
    probe_unheard(
        cx,
        &mut s,
        &left,
        &probe,
        &format!("no event of room {} after unsubscribing from it", left.id),
    )
    .await?;
    s.disconnect().await;
    w.disconnect().await;
    Ok(())
}

async fn updated_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("upd").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    let name = rename_room(cx, &room, "renamed").await?;
    let p = cx.expect_event(&mut s, ev::ROOM_UPDATED).await?;
    cx.check_payload(ev::ROOM_UPDATED, &p)?;
    cx.expect_eq("room:updated roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq(
        "room:updated changes",
        &json!({ "name": name }),
        &p["changes"],
    )?;
    cx.expect_eq("room:updated room.id", &json!(room.id), &p["room"]["id"])?;
    cx.expect_eq("room:updated room.name", &json!(name), &p["room"]["name"])?;
    cx.expect_eq(
        "room:updated room.status",
        &json!(room.status),
        &p["room"]["status"],
    )?;
    s.disconnect().await;
    Ok(())
}

async fn status_changed_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("status").await?;
    let room = cx.room(Visibility::Public).await?;
    let new_status = if room.status == RoomStatus::Paused.as_str() {
        RoomStatus::Active
    } else {
        RoomStatus::Paused
    };
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    cx.act(
        Action::UpdateRoom,
        vars(&[
            ("roomId", json!(room.id)),
            ("patch", json!({ "status": new_status })),
        ]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::ROOM_STATUS_CHANGED).await?;
    cx.check_payload(ev::ROOM_STATUS_CHANGED, &p)?;
    cx.expect_eq("room:status_changed roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq(
        "room:status_changed oldStatus",
        &json!(room.status),
        &p["oldStatus"],
    )?;
    cx.expect_eq(
        "room:status_changed newStatus",
        &json!(new_status),
        &p["newStatus"],
    )?;
    let updated = status_updated(cx, &mut s, &room, new_status).await;
    cx.decided("N13", updated)?;
    s.disconnect().await;
    Ok(())
}

/// The `room:updated` that N13 adds to a status change.
async fn status_updated(
    cx: &mut Ctx,
    s: &mut Socket,
    room: &Room,
    new_status: RoomStatus,
) -> Result<(), Failure> {
    let up = cx.expect_event(s, ev::ROOM_UPDATED).await?;
    cx.check_payload(ev::ROOM_UPDATED, &up)?;
    cx.expect_eq("room:updated roomId", &json!(room.id), &up["roomId"])?;
    cx.expect_eq(
        "room:updated changes",
        &json!({ "status": new_status }),
        &up["changes"],
    )?;
    cx.expect_eq(
        "room:updated room.status",
        &json!(new_status),
        &up["room"]["status"],
    )?;
    cx.expect_eq(
        "room:updated room.name",
        &json!(room.name),
        &up["room"]["name"],
    )
}

async fn deleted_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("del").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &u.token, &[&room]).await?;
    cx.act(Action::DeleteRoom, vars(&[("roomId", json!(room.id))]))
        .await?;
    let p = cx.expect_event(&mut s, ev::ROOM_DELETED).await?;
    cx.check_payload(ev::ROOM_DELETED, &p)?;
    cx.expect_eq("room:deleted roomId", &json!(room.id), &p["roomId"])?;
    s.disconnect().await;
    Ok(())
}

async fn deleted_namespace_closed(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("delns").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = cx.connect(&u.token, &ev::room_namespace(&room.id)).await?;
    namespace_subscribed(cx, &mut s, &room.id).await?;
    cx.act(Action::DeleteRoom, vars(&[("roomId", json!(room.id))]))
        .await?;
    let p = cx.expect_event(&mut s, ev::ROOM_DELETED).await?;
    cx.check_payload(ev::ROOM_DELETED, &p)?;
    cx.expect_eq("room:deleted roomId", &json!(room.id), &p["roomId"])?;
    // The text says nothing of the namespace after room:deleted: that
    // it closes, disconnecting its sockets, is N5.
    let limit = cx.wait();
    let ended = tokio::time::timeout(limit, s.closed()).await.is_ok();
    let closed = cx.ensure(
        ended,
        format!(
            "the /rooms/{} socket disconnected by the server within {limit:?}",
            room.id
        ),
        "still connected",
    );
    if closed.is_err() {
        return cx.decided("N5", closed);
    }
    // The disconnect must come from the server, not from us: the last item
    // is the Disconnected marker.
    let reason = drain(&mut s).into_iter().rev().find_map(|item| match item {
        Incoming::Disconnected { reason } => Some(reason),
        _ => None,
    });
    let by_server = cx.ensure(
        matches!(
            reason,
            Some(
                sioclient::DisconnectReason::ServerDisconnect
                    | sioclient::DisconnectReason::TransportClose
            )
        ),
        "a disconnect initiated by the server (DISCONNECT packet or transport close)",
        format!("{reason:?}"),
    );
    cx.decided("N5", by_server)
}

async fn namespace_events(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("nsev").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = cx.connect(&u.token, &ev::room_namespace(&room.id)).await?;
    namespace_subscribed(cx, &mut s, &room.id).await?;
    let name = rename_room(cx, &room, "via namespace").await?;
    let p = cx.expect_event(&mut s, ev::ROOM_UPDATED).await?;
    cx.check_payload(ev::ROOM_UPDATED, &p)?;
    cx.expect_eq("room:updated roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq(
        "room:updated changes",
        &json!({ "name": name }),
        &p["changes"],
    )?;
    cx.expect_eq("room:updated room.name", &json!(name), &p["room"]["name"])?;
    s.disconnect().await;
    Ok(())
}

async fn isolation(cx: &mut Ctx) -> Result<(), Failure> {
    let ua = cx.user("iso a").await?;
    let ub = cx.user("iso b").await?;
    let room_a = cx.room(Visibility::Public).await?;
    let room_b = cx.room(Visibility::Public).await?;
    let mut sa = subscribed_socket(cx, &ua.token, &[&room_a]).await?;
    let mut sb = subscribed_socket(cx, &ub.token, &[&room_b]).await?;
    // B's subscriber hears its own room; room A's event happens (its own
    // subscriber sees it).
    rename_and_expect_updated(cx, &mut sb, &room_b, "in B").await?;
    let probe = probe_room(cx, &mut sa, &room_a).await?;
    // B's subscriber then subscribes to A: a marker on A's path comes
    // after anything of A it was sent before.
    cx.subscribe(&sb, &room_a.id).await?;
    probe_unheard(
        cx,
        &mut sb,
        &room_a,
        &probe,
        &format!(
            "no event of room {} on a subscriber of room B only",
            room_a.id
        ),
    )
    .await?;
    sa.disconnect().await;
    sb.disconnect().await;
    Ok(())
}
