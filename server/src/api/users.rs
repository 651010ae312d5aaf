//! Users and tokens: create, read and delete users (a deleted user's wins
//! are given back and their sockets disconnected); mint, refresh and revoke
//! tokens. Tokens come in families (a minted pair and what refreshing it
//! produced): revoking an access or refresh token revokes its family,
//! presenting a rotated refresh token again revokes its family (it was
//! stolen), and an operator can revoke every token of a user. Revocation
//! disconnects the sockets of the revoked access tokens on every node and
//! says how many nodes confirmed (protocol notes N10).

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
use crate::auth::{Claims, MAX_TOKEN_TTL_SECS, Tokens};
use crate::sockets::{self, Reach};
use crate::state::AppState;
use crate::store::{self, Revoked, Rotation, StoreError};

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

/// Mints an access token and a refresh token for a user: a new family.
async fn issue_tokens(st: &AppState, user_id: &str, ttl_secs: i64) -> ApiResult<Value> {
    let claims = Tokens::claims(user_id, store::new_id("tok"), ttl_secs);
    let refresh = st
        .store
        .issue_tokens(user_id, &claims.jti, claims.exp * 1000)
        .await?;
    Ok(token_body(st, &claims, refresh))
}

/// The answer of a mint or a refresh.
fn token_body(st: &AppState, claims: &Claims, refresh: String) -> Value {
    json!({
        "accessToken": st.tokens.sign(claims),
        "refreshToken": refresh,
        "tokenId": claims.jti,
        "userId": claims.sub,
        "expiresAt": protocol::timestamp::from_unix_ms(claims.exp * 1000),
    })
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

/// The protocol's refresh, which rotates: the refresh token works once. A
/// used one presented again was stolen (the holder and the thief both have
/// it): its family is revoked and its sockets disconnected, and the answer
/// is 401 like any refused refresh.
pub(super) async fn refresh_token(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Value>> {
    let ttl = st.tokens.default_ttl().as_secs() as i64;
    // The user is known once the store found the refresh token; the claims
    // are recorded in that transaction and signed after it.
    let claims = Tokens::claims("", store::new_id("tok"), ttl);
    let rotation = st
        .store
        .rotate_refresh_token(&body.refresh_token, &claims.jti, claims.exp * 1000)
        .await?;
    match rotation {
        Rotation::Rotated {
            user_id,
            refresh_token,
        } => {
            let claims = Claims {
                sub: user_id,
                ..claims
            };
            Ok(Json(token_body(&st, &claims, refresh_token)))
        }
        Rotation::Reused { user_id, revoked } => {
            tracing::warn!(
                user = %user_id,
                tokens = revoked.access.len(),
                "a rotated refresh token was presented again: its family is revoked"
            );
            sockets::disconnect_tokens(&st, &revoked.access).await;
            Err(ApiError::protocol(
                ErrorCode::AuthenticationFailed,
                "Refresh token reused: every token of its family is revoked",
            ))
        }
        Rotation::Refused => Err(ApiError::protocol(
            ErrorCode::AuthenticationFailed,
            "Invalid or used refresh token",
        )),
    }
}

/// The answer of a revocation: what went, how many sockets were
/// disconnected, and how many nodes confirmed. A node that did not confirm
/// drops the sockets within [`sockets::commands::REVOCATION_SWEEP`] of reading the database.
fn revocation_body(revoked: &Revoked, reach: Reach) -> Value {
    json!({
        "revoked": true,
        "accessTokens": revoked.access.len(),
        "refreshTokens": revoked.refresh,
        "disconnected": reach.sockets,
        "nodes": {
            "expected": reach.expected,
            "confirmed": reach.confirmed,
            "complete": reach.complete(),
        },
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RevokeRequest {
    token_id: String,
}

/// Revokes an access token with its family (the refresh tokens it came
/// with or from, and the access tokens they minted).
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
    let Some(revoked) = st.store.revoke_token(&body.token_id).await? else {
        return Err(StoreError::NotFound {
            what: "token",
            id: body.token_id,
        }
        .into());
    };
    let reach = sockets::disconnect_tokens(&st, &revoked.access).await;
    Ok(Json(revocation_body(&revoked, reach)))
}

/// Revokes a refresh token (used or not) with its family. Knowing the
/// secret is the authority, as for the refresh itself: the operator, or a
/// client logging out.
pub(super) async fn revoke_refresh_token(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Value>> {
    let Some(revoked) = st.store.revoke_refresh_token(&body.refresh_token).await? else {
        // Unknown, expired or already revoked; the secret is not echoed.
        return Err(StoreError::NotFound {
            what: "refresh token",
            id: "(not shown)".into(),
        }
        .into());
    };
    let reach = sockets::disconnect_tokens(&st, &revoked.access).await;
    Ok(Json(revocation_body(&revoked, reach)))
}

/// Revokes every access and refresh token of a user and disconnects all of
/// their sockets (operator only).
pub(super) async fn revoke_user_tokens(
    caller: Caller,
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let revoked = st.store.revoke_user_tokens(&user_id).await?;
    let reach = sockets::disconnect_user(&st, &user_id).await;
    Ok(Json(revocation_body(&revoked, reach)))
}
