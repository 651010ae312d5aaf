//! Leaks: no event of a room reaches a socket that does not hear it, for
//! every kind of room event, across rooms (a `/` socket subscribed to
//! another room) and across namespaces (another room's `/rooms/:roomId`).
//!
//! Every room event of the protocol happens in room A while a witness
//! subscribed to A sees each one (so each was sent). Then the `/` listener
//! subscribes to A and a marker rename follows on A's own path: a leaked
//! event, sent before the subscription, would arrive before the marker.
//! `room:deleted` comes from another room, D (A must live on for the
//! marker); like every event on another room's namespace, its proof is a
//! marker sent after the witness saw it, on the listener's own path.
//! Application events carry the room elsewhere than in their data, so
//! they are told by their name (the application's prefix); the quiz
//! question by its id.

use driver::Action;
use protocol::event as ev;
use protocol::{Role, RoomStatus, Visibility};
use serde_json::{Value, json};
use sioclient::{Event, Socket};

use super::apps::{new_app, publish_ok};
use super::quiz::{create_question, publish};
use super::support::{
    create_prize, expect_event_where, first_arg, none_of, room_sentinel, subscribed_socket,
};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, vars};

pub const CASES: &[Case] = &[case!(
    "rooms.isolation.every_event",
    "No event of any kind of room A (room, participant, prize, winner, quiz, presence, application; room:deleted of a room D) reaches a `/` socket subscribed to room B or a socket on /rooms/B",
    "Room authorization: \"Receiving room updates\": only sockets that hear a room (subscribed, or on its namespace) receive its events, whatever their kind",
    [
        CreateUser,
        MintToken,
        CreateRoom,
        UpdateRoom,
        AddParticipant,
        UpdateParticipant,
        RemoveParticipant,
        CreatePrize,
        UpdatePrize,
        DeletePrize,
        DrawWinner,
        RemoveWinner,
        CreateQuestion,
        PublishQuestion,
        CreateApp,
        PublishAppEvent,
        DeleteRoom
    ],
    every_event
)];

/// Waits until the witness has `event` of room `a`; `None` for events
/// that need not name their room (application events' data, and
/// `quiz:question_published`, whose `roomId` is N3).
async fn witnessed(
    cx: &mut Ctx,
    w: &mut Socket,
    event: &str,
    a: Option<&Room>,
) -> Result<(), Failure> {
    let room = a.map(|a| json!(a.id));
    let what = room
        .as_ref()
        .map_or("any data".to_owned(), |r| format!("roomId {r}"));
    expect_event_where(cx, w, event, &what, |p| {
        room.as_ref().is_none_or(|r| p.get("roomId") == Some(r))
    })
    .await
    .map(drop)
}

async fn every_event(cx: &mut Ctx) -> Result<(), Failure> {
    let a = cx.room(Visibility::Public).await?;
    let b = cx.room(Visibility::Public).await?;
    // Deleted at the end: room:deleted, the one kind A cannot show and
    // still be subscribed to afterwards.
    let d = cx.room(Visibility::Public).await?;
    let watcher = cx.user("witness").await?;
    let listener = cx.user("listener").await?;
    let x = cx.user("actor").await?;
    let mut w = subscribed_socket(cx, &watcher.token, &[&a, &d]).await?;
    let mut on_root = subscribed_socket(cx, &listener.token, &[&b]).await?;
    let mut on_ns = cx
        .connect(&listener.token, &ev::room_namespace(&b.id))
        .await?;
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let app_event = format!("{}:leak_probe", app.id);

    // Every kind of room event, in room A.
    cx.act(
        Action::UpdateRoom,
        vars(&[
            ("roomId", json!(a.id)),
            ("patch", json!({ "name": format!("{} (leak)", a.name) })),
        ]),
    )
    .await?;
    witnessed(cx, &mut w, ev::ROOM_UPDATED, Some(&a)).await?;
    let pid = cx.join(&a, &x, Role::Participant).await?;
    witnessed(cx, &mut w, ev::PARTICIPANT_JOINED, Some(&a)).await?;
    let prize = create_prize(cx, &a, "Leak", 1).await?;
    witnessed(cx, &mut w, ev::PRIZE_CREATED, Some(&a)).await?;
    let prize_ref = vars(&[("roomId", json!(a.id)), ("prizeId", json!(prize.id))]);
    let mut patch = prize_ref.clone();
    patch.insert(
        "patch".into(),
        json!({ "name": format!("{} (v2)", prize.name) }),
    );
    cx.act(Action::UpdatePrize, patch).await?;
    witnessed(cx, &mut w, ev::PRIZE_UPDATED, Some(&a)).await?;
    let mut draw = prize_ref.clone();
    draw.insert("count".into(), json!(1));
    let out = cx.act(Action::DrawWinner, draw).await?;
    witnessed(cx, &mut w, ev::WINNER_SELECTED, Some(&a)).await?;
    let winner = super::support::output_string(&out, "winnerId")?;
    cx.act(
        Action::RemoveWinner,
        vars(&[("roomId", json!(a.id)), ("winnerId", json!(winner))]),
    )
    .await?;
    witnessed(cx, &mut w, ev::WINNER_REMOVED, Some(&a)).await?;
    cx.act(Action::DeletePrize, prize_ref).await?;
    witnessed(cx, &mut w, ev::PRIZE_DELETED, Some(&a)).await?;
    let member = vars(&[
        ("roomId", json!(a.id)),
        ("participantId", json!(pid)),
        ("userId", json!(x.id)),
        ("role", json!(Role::Moderator)),
    ]);
    cx.act(Action::UpdateParticipant, member.clone()).await?;
    witnessed(cx, &mut w, ev::PARTICIPANT_UPDATED, Some(&a)).await?;
    let question = create_question(cx, &a, 30).await?;
    publish(cx, &a, &question).await?;
    witnessed(cx, &mut w, ev::QUIZ_QUESTION_PUBLISHED, None).await?;
    let xs = subscribed_socket(cx, &x.token, &[&a]).await?;
    witnessed(cx, &mut w, ev::PRESENCE_USER_ONLINE, Some(&a)).await?;
    xs.disconnect().await;
    witnessed(cx, &mut w, ev::PRESENCE_USER_OFFLINE, Some(&a)).await?;
    cx.act(Action::RemoveParticipant, member).await?;
    witnessed(cx, &mut w, ev::PARTICIPANT_LEFT, Some(&a)).await?;
    publish_ok(cx, &app, &a, &app_event, &json!({ "probe": true })).await?;
    witnessed(cx, &mut w, &app_event, None).await?;
    cx.act(
        Action::UpdateRoom,
        vars(&[
            ("roomId", json!(a.id)),
            ("patch", json!({ "status": RoomStatus::Paused })),
        ]),
    )
    .await?;
    witnessed(cx, &mut w, ev::ROOM_STATUS_CHANGED, Some(&a)).await?;
    cx.act(Action::DeleteRoom, vars(&[("roomId", json!(d.id))]))
        .await?;
    witnessed(cx, &mut w, ev::ROOM_DELETED, Some(&d)).await?;

    // What of A a socket that does not hear A may not have received.
    let room_a = json!(a.id);
    let room_d = json!(d.id);
    let question_id = json!(question);
    let of_a = |e: &Event, own: &str| {
        let p = first_arg(e);
        let about_own_presence = e.name.starts_with("presence:") && p["userId"] == json!(own);
        e.name == app_event
            || p.get("questionId") == Some(&question_id)
            || p.get("roomId") == Some(&room_d)
            || (p.get("roomId") == Some(&room_a)
                && e.name != ev::ROOM_SUBSCRIBED
                && !about_own_presence)
    };
    let leaked = |events: Vec<Event>, own: &str| -> Vec<(String, Value)> {
        events
            .into_iter()
            .filter(|e| of_a(e, own))
            .map(|e| {
                let p = first_arg(&e);
                (e.name, p)
            })
            .collect()
    };

    // The `/` listener subscribes to A: its marker comes on A's path.
    // The namespace socket can never hear A: its own room's marker, sent
    // after the witness saw every event of A, closes what it received.
    cx.subscribe(&on_root, &a.id).await?;
    let listeners = [
        (
            &mut on_root,
            &a,
            format!("a `/` socket subscribed to room {} only", b.id),
        ),
        (&mut on_ns, &b, format!("a socket of /rooms/{}", b.id)),
    ];
    for (s, marker, place) in listeners {
        let mut before = room_sentinel(cx, s, marker).await?;
        before.pop();
        none_of(
            cx,
            &format!(
                "no event of room {} (nor of room {}) on {place}",
                a.id, d.id
            ),
            &leaked(before, &listener.id),
        )?;
    }
    w.disconnect().await;
    on_root.disconnect().await;
    on_ns.disconnect().await;
    Ok(())
}
