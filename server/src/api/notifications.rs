//! Notifications: created over REST, `notification:received` to the
//! user's sockets on `/` (N2, N5), and the user's list.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::event as ev;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiJson, Caller, error::ApiResult};
use crate::state::AppState;
use crate::store::{self, StoreError};

pub(super) async fn send_notification(st: &AppState, n: &store::Notification) {
    let payload = n.to_received(protocol::timestamp::now(), Some(st.event_id()));
    st.to_user(&n.user_id, ev::NOTIFICATION_RECEIVED, &payload)
        .await;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewNotification {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    #[serde(default)]
    data: Map<String, Value>,
}

pub(super) async fn create_notification(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<NewNotification>,
) -> ApiResult<(StatusCode, Json<store::Notification>)> {
    caller.require_manager()?;
    st.store
        .get_user(&user_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "user",
            id: user_id.clone(),
        })?;
    let n = st
        .store
        .create_notification(&user_id, &body.kind, &body.title, &body.message, body.data)
        .await?;
    send_notification(&st, &n).await;
    Ok((StatusCode::CREATED, Json(n)))
}

pub(super) async fn list_notifications(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Vec<store::Notification>>> {
    caller.require_self_or_admin(&user_id)?;
    Ok(Json(st.store.list_notifications(&user_id).await?))
}
