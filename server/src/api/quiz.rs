//! Quiz: questions with their answer key (kept server-side) and
//! `quiz:question_published` without it (N3).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::event as ev;
use serde_json::Value;

use super::{ApiJson, Caller, error::ApiResult};
use crate::auth::unix_now_ms;
use crate::state::AppState;
use crate::store::{self, StoreError};

pub(super) async fn create_question(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<store::NewQuestion>,
) -> ApiResult<(StatusCode, Json<store::Question>)> {
    caller.require_manager()?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.create_question(&room_id, body).await?),
    ))
}

pub(super) async fn publish_question(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, question_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_manager()?;
    let q = st
        .store
        .publish_question(&room_id, &question_id, unix_now_ms())
        .await?;
    let payload = q
        .to_published(protocol::timestamp::now(), Some(st.event_id()))
        .ok_or_else(|| StoreError::Internal("a published question has a start time".into()))?;
    st.to_room(&room_id, ev::QUIZ_QUESTION_PUBLISHED, &payload)
        .await;
    Ok(Json(serde_json::to_value(&payload).expect("serializable")))
}
