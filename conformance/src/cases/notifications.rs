//! Notifications: notification:received and notification:mark_read.

use driver::Action;
use protocol::ErrorCode;
use protocol::Visibility;
use protocol::event as ev;
use serde_json::{Value, json};

use crate::case;
use crate::case::{Case, Failure};
use crate::cases::support::{
    check_refused_ack, expect_recent, namespace_subscribed, none_of, queued_matching, rename_room,
};
use crate::ctx::{Ctx, User, vars};

pub const CASES: &[Case] = &[
    case!(
        "notifications.received.payload",
        "A notification for a user reaches their `/` socket as notification:received {id, type, title, message, data, read: false, createdAt}",
        "notification:received: sent to the user's sockets on `/`, immediately after connecting (no subscription needed)",
        [CreateUser, MintToken, CreateNotification],
        received_payload
    ),
    case!(
        "notifications.private",
        "Another user's socket does not receive the notification",
        "User-specific events go only to the user's own sockets",
        [CreateUser, MintToken, CreateNotification],
        private
    ),
    case!(
        "notifications.received.root_only",
        "The user's /rooms/:roomId socket does not receive notification:received",
        "User Notifications: \"Global namespace (`/`) for user-specific notifications\": none on /rooms/:roomId",
        [
            CreateUser,
            MintToken,
            CreateNotification,
            CreateRoom,
            UpdateRoom
        ],
        root_only
    ),
    case!(
        "notifications.mark_read.ack",
        "notification:mark_read is acknowledged with {success: true, data: {notificationId, read: true}}",
        "Acknowledgments: notification:mark_read's ack has the general shape `{success: true, data}`; `data: {notificationId, read: true}` is N2",
        [CreateUser, MintToken, CreateNotification],
        mark_read_ack
    ),
    case!(
        "notifications.mark_read.other_user",
        "Marking another user's notification read is refused with PERMISSION_DENIED",
        "Security: \"Authorize all actions\": someone else's notification cannot be marked read; the code PERMISSION_DENIED is N4",
        [CreateUser, MintToken, CreateNotification],
        mark_read_other_user
    ),
];

/// Creates a notification for `user` through the driver; returns its id.
async fn notify(cx: &mut Ctx, user: &User, title: &str, data: Value) -> Result<String, Failure> {
    let out = cx
        .act(
            Action::CreateNotification,
            vars(&[
                ("userId", json!(user.id)),
                ("type", json!("system")),
                ("title", json!(title)),
                ("message", json!(format!("{title}: message"))),
                ("data", data),
            ]),
        )
        .await?;
    out.get("notificationId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::Error("the driver's create_notification gave no notificationId".into())
        })
}

/// Waits for `notification:received` and checks it is notification `id`.
async fn expect_notification(
    cx: &mut Ctx,
    s: &mut sioclient::Socket,
    id: &str,
) -> Result<Value, Failure> {
    let p = cx.expect_event(s, ev::NOTIFICATION_RECEIVED).await?;
    cx.check_payload(ev::NOTIFICATION_RECEIVED, &p)?;
    cx.expect_eq("notification:received id", &json!(id), &p["id"])?;
    Ok(p)
}

async fn received_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("notified").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    let title = cx.unique("Title ");
    let data = json!({ "kind": "conformance", "n": 7, "nested": { "ok": true } });
    let id = notify(cx, &u, &title, data.clone()).await?;
    let p = expect_notification(cx, &mut s, &id).await?;
    cx.expect_eq("notification:received type", &json!("system"), &p["type"])?;
    cx.expect_eq("notification:received title", &json!(title), &p["title"])?;
    cx.expect_eq(
        "notification:received message",
        &json!(format!("{title}: message")),
        &p["message"],
    )?;
    cx.expect_eq("notification:received data", &data, &p["data"])?;
    cx.expect_eq("notification:received read", &json!(false), &p["read"])?;
    expect_recent(cx, "notification:received createdAt", &p["createdAt"])?;
    s.disconnect().await;
    Ok(())
}

async fn private(cx: &mut Ctx) -> Result<(), Failure> {
    let owner = cx.user("owner").await?;
    let other = cx.user("other").await?;
    let mut so = cx.connect(&owner.token, "/").await?;
    let mut sx = cx.connect(&other.token, "/").await?;
    let owners = notify(cx, &owner, "For the owner", json!({})).await?;
    expect_notification(cx, &mut so, &owners).await?;
    // Sentinel: the other user's own notification must be the first one
    // their socket receives, with nothing of the owner's queued.
    let others = notify(cx, &other, "For the other", json!({})).await?;
    expect_notification(cx, &mut sx, &others).await?;
    let leaked = queued_matching(&mut sx, |name, p| {
        name == ev::NOTIFICATION_RECEIVED || p.get("id") == Some(&json!(owners))
    });
    none_of(
        cx,
        "no other notification on the other user's socket",
        &leaked,
    )?;
    so.disconnect().await;
    sx.disconnect().await;
    Ok(())
}

async fn root_only(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("nsnotif").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut root = cx.connect(&u.token, "/").await?;
    let mut ns = cx.connect(&u.token, &ev::room_namespace(&room.id)).await?;
    namespace_subscribed(cx, &mut ns, &room.id).await?;
    let id = notify(cx, &u, "Root only", json!({})).await?;
    expect_notification(cx, &mut root, &id).await?;
    // Sentinel on the room namespace socket, after the notification.
    let name = rename_room(cx, &room, "sentinel").await?;
    let up = cx.expect_event(&mut ns, ev::ROOM_UPDATED).await?;
    cx.expect_eq(
        "sentinel room:updated room.name",
        &json!(name),
        &up["room"]["name"],
    )?;
    let leaked = queued_matching(&mut ns, |n, _| n == ev::NOTIFICATION_RECEIVED);
    none_of(
        cx,
        "no notification:received on a /rooms/:roomId socket",
        &leaked,
    )?;
    root.disconnect().await;
    ns.disconnect().await;
    Ok(())
}

async fn mark_read_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("reader").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    let id = notify(cx, &u, "To read", json!({})).await?;
    expect_notification(cx, &mut s, &id).await?;
    let ack = cx
        .ack(
            &s,
            ev::NOTIFICATION_MARK_READ,
            json!({ "notificationId": id }),
        )
        .await?;
    cx.check_ack(ev::NOTIFICATION_MARK_READ, &ack)?;
    cx.expect_eq("ack.success", &json!(true), &ack["success"])?;
    // The general shape's `data` holds what N2 says.
    let data = cx
        .expect_eq(
            "ack.data.notificationId",
            &json!(id),
            &ack["data"]["notificationId"],
        )
        .and_then(|()| cx.expect_eq("ack.data.read", &json!(true), &ack["data"]["read"]));
    cx.decided("N2", data)?;
    s.disconnect().await;
    Ok(())
}

async fn mark_read_other_user(cx: &mut Ctx) -> Result<(), Failure> {
    let owner = cx.user("owner").await?;
    let intruder = cx.user("intruder").await?;
    let id = notify(cx, &owner, "Not yours", json!({})).await?;
    let s = cx.connect(&intruder.token, "/").await?;
    let ack = cx
        .ack(
            &s,
            ev::NOTIFICATION_MARK_READ,
            json!({ "notificationId": id }),
        )
        .await?;
    check_refused_ack(
        cx,
        ev::NOTIFICATION_MARK_READ,
        &ack,
        ErrorCode::PermissionDenied,
        "N4",
    )?;
    s.disconnect().await;
    Ok(())
}
