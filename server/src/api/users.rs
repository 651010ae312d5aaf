//! Users and tokens: create, read and delete users (a deleted user's wins
//! are given back and their sockets disconnected); mint, refresh and revoke
//! access tokens (revocation disconnects the token's sockets).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::ErrorCode;
use protocol::event as ev;
use protocol::payload as wire;
use serde::Deserialize;
use serde_json::{Value, json};

use super::prizes::emit_winner_removed;
use super::{ApiError, ApiJson, Caller, error::ApiResult};
use crate::auth::MAX_TOKEN_TTL_SECS;
use crate::sockets;
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    name: String,
    avatar: Option<String>,
}

pub(super) async fn create_user(
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

pub(super) async fn get_user(
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
pub(super) async fn delete_user(
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
    sockets::disconnect_user(&st, &deleted.user.id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct MintRequest {
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

pub(super) async fn mint_token(
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
    if ttl.unsigned_abs() > MAX_TOKEN_TTL_SECS.unsigned_abs() {
        return Err(ApiError::invalid(format!(
            "ttlSeconds must be between -{MAX_TOKEN_TTL_SECS} and {MAX_TOKEN_TTL_SECS}"
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(issue_tokens(&st, &body.user_id, ttl).await?),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RefreshRequest {
    refresh_token: String,
}

pub(super) async fn refresh_token(
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
pub(super) struct RevokeRequest {
    token_id: String,
}

pub(super) async fn revoke_token(
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
    let disconnected = sockets::disconnect_token(&st, &body.token_id).await;
    Ok(Json(json!({"revoked": true, "disconnected": disconnected})))
}
