//! Applications: registration, permissions, and application events
//! (`POST /api/rooms/:roomId/events`, protocol notes N1, N6, N8) with their
//! rate limits.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::event as ev;
use protocol::payload::AppEventMeta;
use protocol::{ErrorCode, limits};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, Caller, error::ApiResult};
use crate::ratelimit::AppLimitHit;
use crate::state::AppState;
use crate::store::{App, StoreError, platform_prefix_of};

/// The permission an application needs, besides `realtime:publish`, to
/// publish into a private room (protocol notes N16).
pub const PERMISSION_PUBLISH_PRIVATE: &str = "realtime:publish_private";
/// Longest application event name, in bytes (`{appId}:` included).
pub const MAX_APP_EVENT_NAME_BYTES: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewApp {
    id: String,
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
}

pub(super) async fn create_app(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewApp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    let (app, token) = st
        .store
        .create_app(&body.id, &body.name, body.permissions)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"app": app, "token": token})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Permissions {
    permissions: Vec<String>,
}

pub(super) async fn set_app_permissions(
    caller: Caller,
    State(st): State<AppState>,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<Permissions>,
) -> ApiResult<Json<App>> {
    caller.require_admin()?;
    Ok(Json(
        st.store
            .set_app_permissions(&app_id, body.permissions)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AppEventRequest {
    event: String,
    #[serde(default)]
    data: Value,
}

/// `POST /api/rooms/:roomId/events`: checks run in the order credentials,
/// permission, app id, event name (prefix, length), payload, room (a
/// private one needs [`PERMISSION_PUBLISH_PRIVATE`]), rate limits.
pub(super) async fn publish_app_event(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<AppEventRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Caller::App(app) = caller else {
        return Err(ApiError::forbidden(
            "Application events need app credentials (Bearer app token and X-App-Id)",
        ));
    };
    if !app.has_permission(ev::PERMISSION_REALTIME_PUBLISH) {
        return Err(ApiError::protocol(
            ErrorCode::AppPermissionDenied,
            format!(
                "App {} lacks the {} permission",
                app.id,
                ev::PERMISSION_REALTIME_PUBLISH
            ),
        ));
    }
    // An app registered before ids were checked against the platform's
    // prefixes may not publish under them either.
    if let Some(prefix) = platform_prefix_of(&app.id) {
        return Err(ApiError::protocol(
            ErrorCode::AppPermissionDenied,
            format!(
                "App id {} starts with the platform's event prefix {prefix:?}; register the app under another id",
                app.id
            ),
        ));
    }
    if body.event.len() > MAX_APP_EVENT_NAME_BYTES {
        return Err(ApiError::invalid(format!(
            "event name is {} bytes, at most {MAX_APP_EVENT_NAME_BYTES}",
            body.event.len()
        )));
    }
    if !ev::is_app_event_of(&app.id, &body.event) {
        return Err(ApiError::protocol(
            ErrorCode::AppPermissionDenied,
            format!("Event name must start with \"{}:\"", app.id),
        ));
    }
    let size = serde_json::to_vec(&body.data).map(|v| v.len()).unwrap_or(0);
    if size > limits::MAX_APP_EVENT_BYTES {
        return Err(ApiError::invalid(format!(
            "data is {size} bytes, at most {}",
            limits::MAX_APP_EVENT_BYTES
        )));
    }
    let room = st
        .store
        .get_room(&room_id)
        .await?
        .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
    if room.is_private() && !app.has_permission(PERMISSION_PUBLISH_PRIVATE) {
        return Err(ApiError::protocol(
            ErrorCode::AppPermissionDenied,
            format!(
                "Room {room_id} is private: app {} lacks the {PERMISSION_PUBLISH_PRIVATE} permission",
                app.id
            ),
        ));
    }
    let verdict = st
        .app_limits
        .acquire(&room_id, &app.id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rate limiter unavailable");
            ApiError::from(StoreError::Internal("rate limiter unavailable".into()))
        })?;
    if let Err(hit) = verdict {
        let message = match hit {
            AppLimitHit::Room => format!(
                "At most {} events per second per room",
                st.config.app_events_per_room_per_second
            ),
            AppLimitHit::App => format!(
                "At most {} events per minute per app",
                st.config.app_events_per_app_per_minute
            ),
        };
        st.metrics.error(ErrorCode::RateLimitExceeded);
        return Err(ApiError::protocol(ErrorCode::RateLimitExceeded, message));
    }
    let meta = AppEventMeta {
        event_id: st.event_id(),
        app_id: app.id.clone(),
        room_id: room_id.clone(),
        timestamp: protocol::timestamp::now(),
    };
    st.to_room(&room_id, &body.event, &(&body.data, &meta))
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"eventId": meta.event_id, "event": body.event, "roomId": room_id})),
    ))
}
