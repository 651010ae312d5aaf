//! Prizes: `prize:created`, `prize:updated`, `prize:deleted`.

use driver::Action;
use protocol::Visibility;
use protocol::event as ev;
use serde_json::json;

use super::support::{check_prize, create_prize, note_event_id, observer};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, vars};

pub const CASES: &[Case] = &[
    case!(
        "prizes.created.payload",
        "Creating a prize sends `prize:created` with the whole prize",
        "prize:created: {roomId, prize: {id, name, description, imageUrl, quantity, quantityRemaining, createdAt}, timestamp, eventId}; a new prize has quantityRemaining = quantity",
        [CreateUser, MintToken, CreateRoom, CreatePrize],
        created
    ),
    case!(
        "prizes.updated.payload",
        "Changing a prize sends `prize:updated` with the changed fields and the whole prize",
        "prize:updated: {roomId, prizeId, changes (every changed field, new value), prize (the whole prize after the change), timestamp, eventId}",
        [CreateUser, MintToken, CreateRoom, CreatePrize, UpdatePrize],
        updated
    ),
    case!(
        "prizes.deleted.payload",
        "Deleting a prize sends `prize:deleted`",
        "prize:deleted: {roomId, prizeId, timestamp, eventId} to the room's subscribers",
        [CreateUser, MintToken, CreateRoom, CreatePrize, DeletePrize],
        deleted
    ),
];

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

async fn created(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut s = observer(cx, &room).await?;
    let prize = create_prize(cx, &room, "Weekend trip", 3).await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_CREATED).await?;
    cx.check_payload(ev::PRIZE_CREATED, &p)?;
    cx.expect_eq("prize:created roomId", &json!(room.id), &p["roomId"])?;
    check_prize(cx, "prize:created prize", &p["prize"], &prize, 3)?;
    note_event_id(cx, ev::PRIZE_CREATED, &p);
    s.disconnect().await;
    Ok(())
}

async fn updated(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut s = observer(cx, &room).await?;
    let mut prize = create_prize(cx, &room, "Telescope", 2).await?;
    let created = cx.expect_event(&mut s, ev::PRIZE_CREATED).await?;
    cx.check_payload(ev::PRIZE_CREATED, &created)?;
    let created_at = created["prize"]["createdAt"].clone();

    prize.name = format!("{} (deluxe)", prize.name);
    prize.description = format!("{} and a star map", prize.description);
    cx.act(
        Action::UpdatePrize,
        vars(&[
            ("roomId", json!(room.id)),
            ("prizeId", json!(prize.id)),
            (
                "patch",
                json!({ "name": prize.name, "description": prize.description }),
            ),
        ]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_UPDATED).await?;
    cx.check_payload(ev::PRIZE_UPDATED, &p)?;
    cx.expect_eq("prize:updated roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq("prize:updated prizeId", &json!(prize.id), &p["prizeId"])?;
    cx.expect_eq(
        "prize:updated changes",
        &json!({ "name": prize.name, "description": prize.description }),
        &p["changes"],
    )?;
    check_prize(cx, "prize:updated prize", &p["prize"], &prize, 2)?;
    cx.expect_eq(
        "prize:updated prize.createdAt (unchanged since prize:created)",
        &created_at,
        &p["prize"]["createdAt"],
    )?;
    note_event_id(cx, ev::PRIZE_UPDATED, &p);
    s.disconnect().await;
    Ok(())
}

async fn deleted(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut s = observer(cx, &room).await?;
    let prize = create_prize(cx, &room, "Bicycle", 1).await?;
    cx.act(
        Action::DeletePrize,
        vars(&[("roomId", json!(room.id)), ("prizeId", json!(prize.id))]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::PRIZE_DELETED).await?;
    cx.check_payload(ev::PRIZE_DELETED, &p)?;
    cx.expect_eq("prize:deleted roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq("prize:deleted prizeId", &json!(prize.id), &p["prizeId"])?;
    note_event_id(cx, ev::PRIZE_DELETED, &p);
    s.disconnect().await;
    Ok(())
}
