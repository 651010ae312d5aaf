//! Prizes and winners: `prize:created`, `prize:updated`, `prize:deleted`,
//! the draw (`winner:selected` and the winner's notification, N12) and
//! `winner:removed` with the unit given back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::event as ev;
use protocol::payload as wire;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::notifications::send_notification;
use super::{ApiError, ApiJson, Caller, error::ApiResult};
use crate::state::AppState;
use crate::store;

pub(super) async fn create_prize(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<store::NewPrize>,
) -> ApiResult<(StatusCode, Json<store::Prize>)> {
    caller.require_manager()?;
    let prize = st.store.create_prize(&room_id, body).await?;
    let payload = wire::PrizeCreated {
        room_id: room_id.clone(),
        prize: prize.to_wire(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PRIZE_CREATED, &payload).await;
    Ok((StatusCode::CREATED, Json(prize)))
}

pub(super) async fn list_prizes(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Vec<store::Prize>>> {
    caller.require_manager()?;
    Ok(Json(st.store.list_prizes(&room_id).await?))
}

async fn emit_prize_updated(
    st: &AppState,
    room_id: &str,
    changes: Map<String, Value>,
    prize: &store::Prize,
) {
    let payload = wire::PrizeUpdated {
        room_id: room_id.to_owned(),
        prize_id: prize.id.clone(),
        changes,
        prize: prize.to_wire(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(room_id, ev::PRIZE_UPDATED, &payload).await;
}

pub(super) async fn update_prize(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, prize_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<store::PrizePatch>,
) -> ApiResult<Json<store::Prize>> {
    caller.require_manager()?;
    let (old, new) = st.store.update_prize(&room_id, &prize_id, body).await?;
    emit_prize_updated(&st, &room_id, store::Prize::changes(&old, &new), &new).await;
    Ok(Json(new))
}

pub(super) async fn delete_prize(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, prize_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    st.store.delete_prize(&room_id, &prize_id).await?;
    let payload = wire::PrizeDeleted {
        room_id: room_id.clone(),
        prize_id,
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PRIZE_DELETED, &payload).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DrawRequest {
    count: Option<u32>,
}

pub(super) async fn draw(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, prize_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_manager()?;
    // The body is optional: no body draws one winner.
    let request: DrawRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrawRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("Invalid body: {e}")))?
    };
    let count = request.count.unwrap_or(1);
    if count == 0 {
        return Err(ApiError::invalid("count must be at least 1"));
    }
    let before = st.store.get_prize(&room_id, &prize_id).await?;
    // Winners and their notifications are committed together; everything
    // below only announces them, and cannot fail.
    let (winners, after, notifications) = st.store.draw_winners(&room_id, &prize_id, count).await?;
    let mut out = Vec::with_capacity(winners.len());
    for (w, n) in winners.iter().zip(&notifications) {
        let winner = w.to_wire();
        let payload = wire::WinnerSelected {
            room_id: room_id.clone(),
            winner: winner.clone(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::WINNER_SELECTED, &payload).await;
        send_notification(&st, n).await;
        out.push(winner);
    }
    if let Some(before) = before {
        emit_prize_updated(
            &st,
            &room_id,
            store::Prize::changes(&before, &after),
            &after,
        )
        .await;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"winners": out, "prize": after})),
    ))
}

/// `winner:removed`, then `prize:updated` with the unit given back.
pub(super) async fn emit_winner_removed(
    st: &AppState,
    room_id: &str,
    winner: &store::Winner,
    prize: &store::Prize,
) {
    let payload = wire::WinnerRemoved {
        room_id: room_id.to_owned(),
        winner_id: winner.id.clone(),
        participant_id: winner.participant_id.clone(),
        prize_id: winner.prize_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(room_id, ev::WINNER_REMOVED, &payload).await;
    let mut changes = Map::new();
    changes.insert("quantityRemaining".into(), json!(prize.quantity_remaining));
    emit_prize_updated(st, room_id, changes, prize).await;
}

pub(super) async fn remove_winner(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, winner_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let (winner, prize) = st.store.remove_winner(&room_id, &winner_id).await?;
    emit_winner_removed(&st, &room_id, &winner, &prize).await;
    Ok(StatusCode::NO_CONTENT)
}
