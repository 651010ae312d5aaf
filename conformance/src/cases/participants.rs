//! Participants: joined, updated (role), left.

use driver::Action;
use protocol::event as ev;
use protocol::{Role, Visibility};
use serde_json::json;

use crate::case;
use crate::case::{Case, Failure};
use crate::cases::support::{expect_recent, remove_participant, subscribed_socket};
use crate::ctx::{Ctx, vars};

pub const CASES: &[Case] = &[
    case!(
        "participants.joined.payload",
        "Adding a participant sends participant:joined {roomId, participant{id, userId, role, user, joinedAt}}",
        "participant:joined: sent to the room's subscribers when a user becomes a participant; the Participant carries joinedAt",
        [CreateUser, MintToken, CreateRoom, AddParticipant],
        joined_payload
    ),
    case!(
        "participants.updated.payload",
        "A role change to moderator sends participant:updated with changes {role} and the participant after it",
        "participant:updated: `changes` holds the changed fields and new values, `participant` the participant after the change",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            UpdateParticipant
        ],
        updated_payload
    ),
    case!(
        "participants.left.payload",
        "Removing a participant sends participant:left {roomId, participantId, userId}",
        "participant:left: sent to the room's subscribers when a participant leaves or is removed",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            RemoveParticipant
        ],
        left_payload
    ),
];

async fn joined_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("watcher").await?;
    let joiner = cx.user("joiner").await?;
    let room = cx.room(Visibility::Public).await?;
    let mut s = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    let pid = cx.join(&room, &joiner, Role::Participant).await?;
    let p = cx.expect_event(&mut s, ev::PARTICIPANT_JOINED).await?;
    cx.check_payload(ev::PARTICIPANT_JOINED, &p)?;
    cx.expect_eq("participant:joined roomId", &json!(room.id), &p["roomId"])?;
    let part = &p["participant"];
    cx.expect_eq("participant.id", &json!(pid), &part["id"])?;
    cx.expect_eq("participant.userId", &json!(joiner.id), &part["userId"])?;
    cx.expect_eq("participant.role", &json!(Role::Participant), &part["role"])?;
    cx.expect_eq(
        "participant.user.id",
        &json!(joiner.id),
        &part["user"]["id"],
    )?;
    cx.expect_eq(
        "participant.user.name",
        &json!(joiner.name),
        &part["user"]["name"],
    )?;
    expect_recent(cx, "participant.joinedAt", &part["joinedAt"])?;
    s.disconnect().await;
    Ok(())
}

async fn updated_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("watcher").await?;
    let member = cx.user("member").await?;
    let room = cx.room(Visibility::Public).await?;
    let pid = cx.join(&room, &member, Role::Participant).await?;
    let mut s = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    cx.act(
        Action::UpdateParticipant,
        vars(&[
            ("roomId", json!(room.id)),
            ("participantId", json!(pid)),
            // For a target that names a member by its user.
            ("userId", json!(member.id)),
            ("role", json!(Role::Moderator)),
        ]),
    )
    .await?;
    let p = cx.expect_event(&mut s, ev::PARTICIPANT_UPDATED).await?;
    cx.check_payload(ev::PARTICIPANT_UPDATED, &p)?;
    cx.expect_eq("participant:updated roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq(
        "participant:updated participantId",
        &json!(pid),
        &p["participantId"],
    )?;
    cx.expect_eq(
        "participant:updated changes",
        &json!({ "role": Role::Moderator }),
        &p["changes"],
    )?;
    let part = &p["participant"];
    cx.expect_eq("participant.id", &json!(pid), &part["id"])?;
    cx.expect_eq("participant.userId", &json!(member.id), &part["userId"])?;
    cx.expect_eq("participant.role", &json!(Role::Moderator), &part["role"])?;
    cx.expect_eq(
        "participant.user.id",
        &json!(member.id),
        &part["user"]["id"],
    )?;
    cx.expect_eq(
        "participant.user.name",
        &json!(member.name),
        &part["user"]["name"],
    )?;
    s.disconnect().await;
    Ok(())
}

async fn left_payload(cx: &mut Ctx) -> Result<(), Failure> {
    let watcher = cx.user("watcher").await?;
    let member = cx.user("leaver").await?;
    let room = cx.room(Visibility::Public).await?;
    let pid = cx.join(&room, &member, Role::Participant).await?;
    let mut s = subscribed_socket(cx, &watcher.token, &[&room]).await?;
    remove_participant(cx, &room, &pid, &member.id).await?;
    let p = cx.expect_event(&mut s, ev::PARTICIPANT_LEFT).await?;
    cx.check_payload(ev::PARTICIPANT_LEFT, &p)?;
    cx.expect_eq("participant:left roomId", &json!(room.id), &p["roomId"])?;
    cx.expect_eq(
        "participant:left participantId",
        &json!(pid),
        &p["participantId"],
    )?;
    cx.expect_eq("participant:left userId", &json!(member.id), &p["userId"])?;
    s.disconnect().await;
    Ok(())
}
