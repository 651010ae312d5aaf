//! The REST API: every domain change that causes an event (protocol notes
//! N1), application events, tokens, health, metrics and the OpenAPI
//! document. A change is committed to the store first, then broadcast.

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use protocol::event as ev;
use protocol::payload::{self as wire, AppEventMeta};
use protocol::{ErrorCode, limits};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::auth::{Claims, unix_now_ms};
use crate::ratelimit::AppLimitHit;
use crate::realtime;
use crate::state::AppState;
use crate::store::{self, App, StoreError};

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/users", post(create_user))
        .route("/api/users/{user_id}", get(get_user).delete(delete_user))
        .route(
            "/api/users/{user_id}/notifications",
            post(create_notification).get(list_notifications),
        )
        .route("/api/auth/token", post(mint_token))
        .route("/api/auth/refresh", post(refresh_token))
        .route("/api/auth/revoke", post(revoke_token))
        .route("/api/apps", post(create_app))
        .route("/api/apps/{app_id}/permissions", put(set_app_permissions))
        .route("/api/rooms", post(create_room))
        .route(
            "/api/rooms/{room_id}",
            get(get_room).patch(update_room).delete(delete_room),
        )
        .route(
            "/api/rooms/{room_id}/participants",
            post(add_participant).get(list_participants),
        )
        .route(
            "/api/rooms/{room_id}/participants/{participant_id}",
            patch(update_participant).delete(remove_participant),
        )
        .route(
            "/api/rooms/{room_id}/prizes",
            post(create_prize).get(list_prizes),
        )
        .route(
            "/api/rooms/{room_id}/prizes/{prize_id}",
            patch(update_prize).delete(delete_prize),
        )
        .route("/api/rooms/{room_id}/prizes/{prize_id}/draw", post(draw))
        .route(
            "/api/rooms/{room_id}/winners/{winner_id}",
            axum::routing::delete(remove_winner),
        )
        .route("/api/rooms/{room_id}/quiz/questions", post(create_question))
        .route(
            "/api/rooms/{room_id}/quiz/questions/{question_id}/publish",
            post(publish_question),
        )
        .route("/api/rooms/{room_id}/events", post(publish_app_event))
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Errors and extractors
// ---------------------------------------------------------------------------

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn protocol(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(code.http_status()).expect("valid status"),
            code: code.as_str(),
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::protocol(ErrorCode::InvalidPayload, message)
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self::protocol(ErrorCode::PermissionDenied, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RoomNotFound(id) => {
                ApiError::protocol(ErrorCode::RoomNotFound, format!("Room not found: {id}"))
            }
            StoreError::NotFound { what, id } => ApiError {
                status: StatusCode::NOT_FOUND,
                code: "NOT_FOUND",
                message: format!("Unknown {what}: {id}"),
            },
            StoreError::Conflict(m) => ApiError {
                status: StatusCode::CONFLICT,
                code: "CONFLICT",
                message: m,
            },
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::Forbidden(m) => ApiError::forbidden(m),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "INTERNAL",
                    message: "internal error".into(),
                }
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection is an `INVALID_PAYLOAD` error.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// Who is calling (protocol notes N1).
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    App(App),
    User(Claims),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let unauthenticated =
            |m: &str| ApiError::protocol(ErrorCode::AuthenticationFailed, m.to_owned());
        let bearer =
            bearer(&parts.headers).ok_or_else(|| unauthenticated("Missing bearer token"))?;
        if let Some(app_id) = parts.headers.get("x-app-id") {
            let app_id = app_id
                .to_str()
                .map_err(|_| unauthenticated("Invalid X-App-Id"))?;
            return match st.store.verify_app(app_id, bearer).await? {
                Some(app) => Ok(Caller::App(app)),
                None => Err(unauthenticated("Invalid app credentials")),
            };
        }
        if constant_time_eq(bearer.as_bytes(), st.config.admin_token.as_bytes()) {
            return Ok(Caller::Admin);
        }
        match st.tokens.authenticate(&st.store, Some(bearer)).await {
            Ok((claims, _)) => Ok(Caller::User(claims)),
            Err(f) => Err(unauthenticated(&f.message())),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Caller {
    /// The operator, or an application with `rooms:manage`.
    fn require_manager(&self) -> ApiResult<()> {
        match self {
            Caller::Admin => Ok(()),
            Caller::App(app) if app.has_permission(ev::PERMISSION_ROOMS_MANAGE) => Ok(()),
            Caller::App(app) => Err(ApiError::protocol(
                ErrorCode::AppPermissionDenied,
                format!(
                    "App {} lacks the {} permission",
                    app.id,
                    ev::PERMISSION_ROOMS_MANAGE
                ),
            )),
            Caller::User(_) => Err(ApiError::forbidden("Operator or app credentials required")),
        }
    }

    fn require_admin(&self) -> ApiResult<()> {
        match self {
            Caller::Admin => Ok(()),
            _ => Err(ApiError::forbidden("Operator credentials required")),
        }
    }

    /// The operator, or the user themselves.
    fn require_self_or_admin(&self, user_id: &str) -> ApiResult<()> {
        match self {
            Caller::Admin => Ok(()),
            Caller::User(c) if c.sub == user_id => Ok(()),
            _ => Err(ApiError::forbidden(
                "Only the user or the operator may do this",
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// `{"status": "ok"}` when the database (and, on a cluster node, Redis)
/// answers; a cluster node adds its `node` id.
async fn healthz(State(st): State<AppState>) -> Response {
    let unavailable = |error: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": error})),
        )
            .into_response()
    };
    if let Err(e) = st.store.ping().await {
        return unavailable(e.to_string());
    }
    match &st.cluster {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(cluster) => match redis::cmd("PING")
            .exec_async(&mut cluster.connection())
            .await
        {
            Ok(()) => Json(json!({"status": "ok", "node": cluster.node_id})).into_response(),
            Err(e) => unavailable(format!("Redis: {e}")),
        },
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

// ---------------------------------------------------------------------------
// Users and tokens
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    avatar: Option<String>,
}

async fn create_user(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<store::User>)> {
    caller.require_admin()?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    let user = st.store.create_user(&body.name, body.avatar).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn get_user(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<store::User>> {
    caller.require_self_or_admin(&user_id)?;
    let user = st
        .store
        .get_user(&user_id)
        .await?
        .ok_or(StoreError::NotFound {
            what: "user",
            id: user_id,
        })?;
    Ok(Json(user))
}

/// Deletes a user with their participants, tokens and notifications. Each
/// room they were in hears `winner:removed` / `prize:updated` for every prize
/// they won there (given back), then `participant:left`; then their live
/// sockets are disconnected, so their tokens stop working at once.
async fn delete_user(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let deleted = st.store.delete_user(&user_id).await?;
    for (p, wins) in &deleted.left {
        for (winner, prize) in wins {
            emit_winner_removed(&st, &p.room_id, winner, prize).await;
        }
        let payload = wire::ParticipantLeft {
            room_id: p.room_id.clone(),
            participant_id: p.id.clone(),
            user_id: p.user_id.clone(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&p.room_id, ev::PARTICIPANT_LEFT, &payload).await;
    }
    realtime::disconnect_user(&st, &deleted.user.id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MintRequest {
    user_id: String,
    /// Seconds; may be negative to mint an expired token for tests.
    ttl_seconds: Option<i64>,
}

/// Mints an access token and a refresh token for a user.
async fn issue_tokens(st: &AppState, user_id: &str, ttl_secs: i64) -> ApiResult<Value> {
    let jti = store::new_id("tok");
    let (access, claims) = st.tokens.mint(user_id, jti, ttl_secs);
    st.store
        .insert_token(&claims.jti, user_id, claims.exp * 1000)
        .await?;
    let refresh = st.store.create_refresh_token(user_id).await?;
    Ok(json!({
        "accessToken": access,
        "refreshToken": refresh,
        "tokenId": claims.jti,
        "userId": user_id,
        "expiresAt": protocol::timestamp::from_unix_ms(claims.exp * 1000),
    }))
}

async fn mint_token(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<MintRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    st.store
        .get_user(&body.user_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "user",
            id: body.user_id.clone(),
        })?;
    let ttl = body
        .ttl_seconds
        .unwrap_or(st.tokens.default_ttl().as_secs() as i64);
    Ok((
        StatusCode::CREATED,
        Json(issue_tokens(&st, &body.user_id, ttl).await?),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh_token(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Value>> {
    let Some(user_id) = st.store.consume_refresh_token(&body.refresh_token).await? else {
        return Err(ApiError::protocol(
            ErrorCode::AuthenticationFailed,
            "Invalid or used refresh token",
        ));
    };
    let ttl = st.tokens.default_ttl().as_secs() as i64;
    Ok(Json(issue_tokens(&st, &user_id, ttl).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeRequest {
    token_id: String,
}

async fn revoke_token(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> ApiResult<Json<Value>> {
    match &caller {
        Caller::Admin => {}
        Caller::User(c) if c.jti == body.token_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "Only the operator or the token's holder may revoke it",
            ));
        }
    }
    if !st.store.revoke_token(&body.token_id).await? {
        return Err(StoreError::NotFound {
            what: "token",
            id: body.token_id,
        }
        .into());
    }
    let disconnected = realtime::disconnect_token(&st, &body.token_id).await;
    Ok(Json(json!({"revoked": true, "disconnected": disconnected})))
}

// ---------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApp {
    id: String,
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
}

async fn create_app(
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
struct Permissions {
    permissions: Vec<String>,
}

async fn set_app_permissions(
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
struct AppEventRequest {
    event: String,
    #[serde(default)]
    data: Value,
}

/// `POST /api/rooms/:roomId/events`: checks run in the order credentials,
/// permission, event prefix, payload, room, rate limits.
async fn publish_app_event(
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
    st.store
        .get_room(&room_id)
        .await?
        .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
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

// ---------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    name: String,
    status: Option<String>,
    visibility: Option<String>,
}

async fn create_room(
    caller: Caller,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewRoom>,
) -> ApiResult<(StatusCode, Json<store::Room>)> {
    caller.require_manager()?;
    let room = st
        .store
        .create_room(
            &body.name,
            body.status.as_deref().unwrap_or("active"),
            body.visibility.as_deref().unwrap_or("public"),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

async fn get_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<Json<store::Room>> {
    let room = st
        .store
        .get_room(&room_id)
        .await?
        .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
    if let Caller::User(c) = &caller {
        realtime::authorize_room(&st, &room_id, &c.sub)
            .await
            .map_err(|e| ApiError::protocol(e.code, e.message))?;
    }
    Ok(Json(room))
}

async fn update_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(patch): ApiJson<store::RoomPatch>,
) -> ApiResult<Json<store::Room>> {
    caller.require_manager()?;
    let (old, new) = st.store.update_room(&room_id, patch).await?;
    let changes = store::Room::changes(&old, &new);
    if old.status != new.status {
        let payload = wire::RoomStatusChanged {
            room_id: room_id.clone(),
            old_status: old.status.clone(),
            new_status: new.status.clone(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::ROOM_STATUS_CHANGED, &payload)
            .await;
    }
    if !changes.is_empty() {
        let payload = wire::RoomUpdated {
            room_id: room_id.clone(),
            changes,
            room: new.to_info(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::ROOM_UPDATED, &payload).await;
    }
    Ok(Json(new))
}

async fn delete_room(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    st.store.delete_room(&room_id).await?;
    let payload = wire::RoomDeleted {
        room_id: room_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::ROOM_DELETED, &payload).await;
    // Subscribers on `/` leave the room; the room's namespace goes away,
    // disconnecting its sockets (protocol notes N5).
    realtime::close_room(&st, &room_id).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Participants
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewParticipant {
    user_id: Option<String>,
    role: Option<String>,
}

/// Managers add anyone with any role; a user joins a public room as a
/// `participant`, as themselves.
async fn add_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<NewParticipant>,
) -> ApiResult<(StatusCode, Json<store::Participant>)> {
    let (user_id, role) = match &caller {
        Caller::User(c) => {
            if body.user_id.as_deref().is_some_and(|u| u != c.sub) {
                return Err(ApiError::forbidden("Users may only add themselves"));
            }
            if body.role.as_deref().is_some_and(|r| r != "participant") {
                return Err(ApiError::forbidden("Users join as participant"));
            }
            let room = st
                .store
                .get_room(&room_id)
                .await?
                .ok_or_else(|| StoreError::RoomNotFound(room_id.clone()))?;
            if room.is_private() {
                return Err(ApiError::forbidden(
                    "Private rooms are joined by invitation",
                ));
            }
            (c.sub.clone(), "participant".to_owned())
        }
        _ => {
            caller.require_manager()?;
            let user_id = body
                .user_id
                .ok_or_else(|| ApiError::invalid("userId is required"))?;
            (user_id, body.role.unwrap_or_else(|| "participant".into()))
        }
    };
    let (participant, user) = st.store.add_participant(&room_id, &user_id, &role).await?;
    let payload = wire::ParticipantJoined {
        room_id: room_id.clone(),
        participant: participant.to_wire(&user),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_JOINED, &payload).await;
    Ok((StatusCode::CREATED, Json(participant)))
}

async fn list_participants(
    caller: Caller,
    State(st): State<AppState>,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Vec<store::Participant>>> {
    caller.require_manager()?;
    Ok(Json(st.store.list_participants(&room_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

async fn update_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, participant_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<store::Participant>> {
    caller.require_manager()?;
    let (old, new, user) = st
        .store
        .update_participant_role(&room_id, &participant_id, &body.role)
        .await?;
    let mut changes = Map::new();
    if old.role != new.role {
        changes.insert("role".into(), json!(new.role));
    }
    let mut participant = new.to_wire(&user);
    participant.joined_at = None;
    let payload = wire::ParticipantUpdated {
        room_id: room_id.clone(),
        participant_id: participant_id.clone(),
        changes,
        participant,
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_UPDATED, &payload)
        .await;
    Ok(Json(new))
}

async fn remove_participant(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, participant_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let (p, wins) = st
        .store
        .remove_participant_with_wins(&room_id, &participant_id)
        .await?;
    // Their wins are gone with them: each is announced as removed.
    for (winner, prize) in &wins {
        emit_winner_removed(&st, &room_id, winner, prize).await;
    }
    let payload = wire::ParticipantLeft {
        room_id: room_id.clone(),
        participant_id: p.id.clone(),
        user_id: p.user_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&room_id, ev::PARTICIPANT_LEFT, &payload).await;
    let private = st
        .store
        .get_room(&room_id)
        .await?
        .is_some_and(|r| r.is_private());
    if private {
        realtime::unsubscribe_user(&st, &p.user_id, &room_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Prizes and winners
// ---------------------------------------------------------------------------

async fn create_prize(
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

async fn list_prizes(
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

async fn update_prize(
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

async fn delete_prize(
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
struct DrawRequest {
    count: Option<u32>,
}

async fn draw(
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
    let (winners, after) = st.store.draw_winners(&room_id, &prize_id, count).await?;
    let mut out = Vec::with_capacity(winners.len());
    for w in &winners {
        let winner = w.to_wire();
        let payload = wire::WinnerSelected {
            room_id: room_id.clone(),
            winner: winner.clone(),
            timestamp: protocol::timestamp::now(),
            event_id: Some(st.event_id()),
        };
        st.to_room(&room_id, ev::WINNER_SELECTED, &payload).await;
        let mut data = Map::new();
        data.insert("roomId".into(), json!(room_id));
        data.insert("winnerId".into(), json!(winner.id));
        data.insert("prizeId".into(), json!(winner.prize_id));
        let n = st
            .store
            .create_notification(
                w.user_id(),
                "winner_selected",
                "Congratulations!",
                &format!("You won {}", w.prize.name),
                data,
            )
            .await?;
        send_notification(&st, &n).await;
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
async fn emit_winner_removed(
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

async fn remove_winner(
    caller: Caller,
    State(st): State<AppState>,
    Path((room_id, winner_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let (winner, prize) = st.store.remove_winner(&room_id, &winner_id).await?;
    emit_winner_removed(&st, &room_id, &winner, &prize).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

async fn send_notification(st: &AppState, n: &store::Notification) {
    let payload = n.to_received(protocol::timestamp::now(), Some(st.event_id()));
    st.to_user(&n.user_id, ev::NOTIFICATION_RECEIVED, &payload)
        .await;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNotification {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    #[serde(default)]
    data: Map<String, Value>,
}

async fn create_notification(
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

async fn list_notifications(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Vec<store::Notification>>> {
    caller.require_self_or_admin(&user_id)?;
    Ok(Json(st.store.list_notifications(&user_id).await?))
}

// ---------------------------------------------------------------------------
// Quiz
// ---------------------------------------------------------------------------

async fn create_question(
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

async fn publish_question(
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
