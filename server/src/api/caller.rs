//! Who is calling (protocol notes N1): the operator, an application, or a
//! user, from the bearer token (and `X-App-Id`).

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use protocol::ErrorCode;
use protocol::event as ev;

use super::error::{ApiError, ApiResult};
use crate::auth::{AuthError, Claims};
use crate::state::AppState;
use crate::store::App;

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
        let peer = crate::listener::peer_ip(parts);
        if let Some(ip) = peer
            && !st.failed_auth.allows(ip, Instant::now())
        {
            return Err(ApiError::protocol(
                ErrorCode::RateLimitExceeded,
                "Too many failed authentication attempts from this address".to_owned(),
            ));
        }
        // Every failure below is counted against the address.
        let unauthenticated = |m: &str| {
            if let Some(ip) = peer {
                st.failed_auth.record(ip, Instant::now());
            }
            ApiError::protocol(ErrorCode::AuthenticationFailed, m.to_owned())
        };
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
            Err(AuthError::Refused(f)) => Err(unauthenticated(&f.message())),
            // Not the caller's failure: not counted against the address.
            Err(AuthError::Unavailable(e)) => Err(e.into()),
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
    pub(super) fn require_manager(&self) -> ApiResult<()> {
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

    pub(super) fn require_admin(&self) -> ApiResult<()> {
        match self {
            Caller::Admin => Ok(()),
            _ => Err(ApiError::forbidden("Operator credentials required")),
        }
    }

    /// The operator, or the user themselves.
    pub(super) fn require_self_or_admin(&self, user_id: &str) -> ApiResult<()> {
        match self {
            Caller::Admin => Ok(()),
            Caller::User(c) if c.sub == user_id => Ok(()),
            _ => Err(ApiError::forbidden(
                "Only the user or the operator may do this",
            )),
        }
    }
}
