//! Winners: `winner:selected` (and the winner's notification),
//! `quantityRemaining` through draws, `winner:removed`.

use driver::Action;
use protocol::event as ev;
use protocol::{Role, Visibility};
use serde_json::{Value, json};

use super::support::{
    NewPrize, check_prize, check_time, create_prize, events_until, first_arg, note_event_id,
    observer, output_string,
};
use crate::case;
use crate::case::{Case, Failure, Per};
use crate::ctx::{Ctx, Room, vars};

pub const CASES: &[Case] = &[
    case!(
        "winners.selected.payload",
        "A draw sends `winner:selected` with the winner, their participant and the prize",
        "winner:selected: {roomId, winner: {id, participantId, prizeId, participant: {id, user: {id, name}}, prize: {id, name, imageUrl}, createdAt}, timestamp, eventId}",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreatePrize,
            DrawWinner
        ],
        selected
    ),
    case!(
        "winners.selected.notification",
        "The drawn user's `/` socket receives `notification:received` of type winner_selected",
        "User Notifications: the text's example is a winner's notification:received {type: winner_selected, data: {roomId, winnerId, prizeId}}",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreatePrize,
            DrawWinner
        ],
        notification
    ),
    case!(
        "winners.quantity_remaining",
        "Draws decrement quantityRemaining (prize:updated); a draw with nothing left or nobody eligible selects no winner",
        "Prizes: quantityRemaining never below 0 (a draw with nothing left selects no winner); who is eligible (participants who have not won in the room), and prize:updated {changes: {quantityRemaining}} per draw, are N12",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreatePrize,
            DrawWinner
        ],
        quantity_remaining
    ),
    case!(
        "winners.removed.payload",
        "Removing a winner sends `winner:removed`, then `prize:updated` giving the unit back",
        "Winners: winner:removed {roomId, winnerId, participantId, prizeId, timestamp}; the unit returning to quantityRemaining, reported by prize:updated, is N12",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreatePrize,
            DrawWinner,
            RemoveWinner
        ],
        removed
    ),
];

/// Draws one winner of `prize`; returns the winner id.
async fn draw(cx: &mut Ctx, room: &Room, prize: &NewPrize) -> Result<String, Failure> {
    let out = cx
        .act(
            Action::DrawWinner,
            vars(&[
                ("roomId", json!(room.id)),
                ("prizeId", json!(prize.id)),
                ("count", json!(1)),
            ]),
        )
        .await?;
    output_string(&out, "winnerId")
}

/// A draw that must be refused: a non-2xx answer.
async fn draw_refused(
    cx: &mut Ctx,
    room: &Room,
    prize: &NewPrize,
    why: &str,
) -> Result<(), Failure> {
    let (status, body) = cx
        .act_raw(
            Action::DrawWinner,
            vars(&[
                ("roomId", json!(room.id)),
                ("prizeId", json!(prize.id)),
                ("count", json!(1)),
            ]),
        )
        .await?;
    cx.ensure(
        (400..500).contains(&status),
        format!("a draw with {why} refused (4xx; 409 CONFLICT on the reference API)"),
        format!("HTTP {status} {body}"),
    )
}

async fn selected(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let winner_user = cx.user("winner").await?;
    let pid = cx.join(&room, &winner_user, Role::Participant).await?;
    let prize = create_prize(cx, &room, "Weekend trip", 1).await?;
    let mut s = observer(cx, &room).await?;
    let winner_id = draw(cx, &room, &prize).await?;

    let p = cx.expect_event(&mut s, ev::WINNER_SELECTED).await?;
    cx.check_payload(ev::WINNER_SELECTED, &p)?;
    cx.expect_eq("winner:selected roomId", &json!(room.id), &p["roomId"])?;
    let w = &p["winner"];
    cx.expect_eq("winner.id", &json!(winner_id), &w["id"])?;
    cx.expect_eq("winner.participantId", &json!(pid), &w["participantId"])?;
    cx.expect_eq("winner.prizeId", &json!(prize.id), &w["prizeId"])?;
    cx.expect_eq(
        "winner.participant.id",
        &json!(pid),
        &w["participant"]["id"],
    )?;
    cx.expect_eq(
        "winner.participant.user.id",
        &json!(winner_user.id),
        &w["participant"]["user"]["id"],
    )?;
    cx.expect_eq(
        "winner.participant.user.name",
        &json!(winner_user.name),
        &w["participant"]["user"]["name"],
    )?;
    cx.expect_eq("winner.prize.id", &json!(prize.id), &w["prize"]["id"])?;
    cx.expect_eq("winner.prize.name", &json!(prize.name), &w["prize"]["name"])?;
    cx.expect_eq(
        "winner.prize.imageUrl",
        &json!(prize.image_url),
        &w["prize"]["imageUrl"],
    )?;
    check_time(cx, "winner.createdAt", &w["createdAt"])?;
    note_event_id(cx, ev::WINNER_SELECTED, &p);
    s.disconnect().await;
    Ok(())
}

async fn notification(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let winner_user = cx.user("winner").await?;
    cx.join(&room, &winner_user, Role::Participant).await?;
    let prize = create_prize(cx, &room, "Concert tickets", 1).await?;
    // The winner listens on `/` without subscribing to the room: user
    // events reach the user's sockets on `/` at once.
    let mut s = cx.connect(&winner_user.token, "/").await?;
    let winner_id = draw(cx, &room, &prize).await?;

    let n = cx.expect_event(&mut s, ev::NOTIFICATION_RECEIVED).await?;
    cx.check_payload(ev::NOTIFICATION_RECEIVED, &n)?;
    cx.expect_eq(
        "notification:received type",
        &json!("winner_selected"),
        &n["type"],
    )?;
    cx.expect_eq(
        "notification:received data.roomId",
        &json!(room.id),
        &n["data"]["roomId"],
    )?;
    cx.expect_eq(
        "notification:received data.winnerId",
        &json!(winner_id),
        &n["data"]["winnerId"],
    )?;
    cx.expect_eq(
        "notification:received data.prizeId",
        &json!(prize.id),
        &n["data"]["prizeId"],
    )?;
    cx.expect_eq("notification:received read", &json!(false), &n["read"])?;
    check_time(cx, "notification:received createdAt", &n["createdAt"])?;
    note_event_id(cx, ev::NOTIFICATION_RECEIVED, &n);
    s.disconnect().await;
    Ok(())
}

async fn quantity_remaining(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let moderator = cx.user("moderator").await?;
    cx.join(&room, &moderator, Role::Moderator).await?;
    let first = cx.user("first").await?;
    let first_pid = cx.join(&room, &first, Role::Participant).await?;
    let two = create_prize(cx, &room, "Mug", 2).await?;
    let one = create_prize(cx, &room, "Poster", 1).await?;
    let mut s = observer(cx, &room).await?;

    // 1. `one` (1 left) goes to the only participant.
    draw(cx, &room, &one).await?;
    // 2. `two` has 2 left but nobody is eligible: the participant has won
    //    in this room and moderators are never eligible. Who may win is
    //    N12 (the text is silent); what follows counts on it, so a
    //    deviation ends the case here.
    draw_refused(cx, &room, &two, "nobody eligible")
        .await
        .per("N12")?;
    // 3. A new participant is eligible, but `one` has nothing left.
    let second = cx.user("second").await?;
    let second_pid = cx.join(&room, &second, Role::Participant).await?;
    draw_refused(cx, &room, &one, "nothing left").await?;
    // 4. `two` goes to the new participant: the end marker.
    draw(cx, &room, &two).await?;

    let two_id = json!(two.id);
    let seen = events_until(cx, &mut s, "`prize:updated` of the last draw", |e| {
        e.name == ev::PRIZE_UPDATED && e.args.first().map(|p| &p["prizeId"]) == Some(&two_id)
    })
    .await?;
    let winners: Vec<Value> = seen
        .iter()
        .filter(|e| e.name == ev::WINNER_SELECTED)
        .map(first_arg)
        .collect();
    let updates: Vec<Value> = seen
        .iter()
        .filter(|e| e.name == ev::PRIZE_UPDATED)
        .map(first_arg)
        .collect();
    for p in &winners {
        cx.check_payload(ev::WINNER_SELECTED, p)?;
    }
    for p in &updates {
        cx.check_payload(ev::PRIZE_UPDATED, p)?;
    }
    let pairs: Vec<Value> = winners
        .iter()
        .map(|p| json!([p["winner"]["prizeId"], p["winner"]["participantId"]]))
        .collect();
    cx.expect_eq(
        "winner:selected (prizeId, participantId) in order, none for the refused draws",
        &json!([[one.id, first_pid], [two.id, second_pid]]),
        &json!(pairs),
    )?;
    // A draw reporting the new count in prize:updated is N12.
    let reported = draw_updates(cx, &updates, &[(&one, 0), (&two, 1)]);
    cx.decided("N12", reported)?;
    s.disconnect().await;
    Ok(())
}

/// One `prize:updated` per draw, in order, with `changes:
/// {quantityRemaining}` and the prize after it (N12).
fn draw_updates(cx: &mut Ctx, updates: &[Value], want: &[(&NewPrize, u64)]) -> Result<(), Failure> {
    cx.expect_eq(
        "prize:updated count (one per successful draw)",
        &json!(want.len()),
        &json!(updates.len()),
    )?;
    for (p, (prize, remaining)) in updates.iter().zip(want) {
        let what = format!("prize:updated after drawing \"{}\"", prize.name);
        cx.expect_eq(&format!("{what} prizeId"), &json!(prize.id), &p["prizeId"])?;
        cx.expect_eq(
            &format!("{what} changes"),
            &json!({ "quantityRemaining": remaining }),
            &p["changes"],
        )?;
        check_prize(cx, &format!("{what} prize"), &p["prize"], prize, *remaining)?;
    }
    Ok(())
}

async fn removed(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let winner_user = cx.user("winner").await?;
    let pid = cx.join(&room, &winner_user, Role::Participant).await?;
    let prize = create_prize(cx, &room, "Headphones", 1).await?;
    let mut s = observer(cx, &room).await?;
    let winner_id = draw(cx, &room, &prize).await?;
    // The draw's own events come first.
    let sel = cx.expect_event(&mut s, ev::WINNER_SELECTED).await?;
    cx.check_payload(ev::WINNER_SELECTED, &sel)?;
    let upd = cx.expect_event(&mut s, ev::PRIZE_UPDATED).await?;
    cx.check_payload(ev::PRIZE_UPDATED, &upd)?;

    cx.act(
        Action::RemoveWinner,
        vars(&[("roomId", json!(room.id)), ("winnerId", json!(winner_id))]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::WINNER_REMOVED).await?;
    cx.check_payload(ev::WINNER_REMOVED, &p)?;
    cx.expect_eq("winner:removed roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq("winner:removed winnerId", &json!(winner_id), &p["winnerId"])?;
    cx.expect_eq(
        "winner:removed participantId",
        &json!(pid),
        &p["participantId"],
    )?;
    cx.expect_eq("winner:removed prizeId", &json!(prize.id), &p["prizeId"])?;
    note_event_id(cx, ev::WINNER_REMOVED, &p);

    // The unit going back, reported by prize:updated, is N12.
    let back = unit_returned(cx, &mut s, &prize).await;
    cx.decided("N12", back)?;
    s.disconnect().await;
    Ok(())
}

async fn unit_returned(
    cx: &mut Ctx,
    s: &mut sioclient::Socket,
    prize: &NewPrize,
) -> Result<(), Failure> {
    let back = cx.expect_event(s, ev::PRIZE_UPDATED).await?;
    cx.check_payload(ev::PRIZE_UPDATED, &back)?;
    cx.expect_eq("prize:updated prizeId", &json!(prize.id), &back["prizeId"])?;
    cx.expect_eq(
        "prize:updated changes after the removal",
        &json!({ "quantityRemaining": 1 }),
        &back["changes"],
    )?;
    check_prize(
        cx,
        "prize:updated prize after the removal",
        &back["prize"],
        prize,
        1,
    )
}
