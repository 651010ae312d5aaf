//! The protocol's error codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One of the six documented error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Invalid or expired token.
    AuthenticationFailed,
    /// Insufficient permissions.
    PermissionDenied,
    /// Room doesn't exist.
    RoomNotFound,
    /// Invalid event payload.
    InvalidPayload,
    /// Too many events.
    RateLimitExceeded,
    /// App lacks required permission.
    AppPermissionDenied,
}

impl ErrorCode {
    /// Every code, in the order of the protocol's table.
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::AuthenticationFailed,
        ErrorCode::PermissionDenied,
        ErrorCode::RoomNotFound,
        ErrorCode::InvalidPayload,
        ErrorCode::RateLimitExceeded,
        ErrorCode::AppPermissionDenied,
    ];

    /// The wire form, e.g. `ROOM_NOT_FOUND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthenticationFailed => "AUTHENTICATION_FAILED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::RoomNotFound => "ROOM_NOT_FOUND",
            ErrorCode::InvalidPayload => "INVALID_PAYLOAD",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::AppPermissionDenied => "APP_PERMISSION_DENIED",
        }
    }

    /// The protocol's one-line description.
    pub const fn description(self) -> &'static str {
        match self {
            ErrorCode::AuthenticationFailed => "Invalid or expired token",
            ErrorCode::PermissionDenied => "Insufficient permissions",
            ErrorCode::RoomNotFound => "Room doesn't exist",
            ErrorCode::InvalidPayload => "Invalid event payload",
            ErrorCode::RateLimitExceeded => "Too many events",
            ErrorCode::AppPermissionDenied => "App lacks required permission",
        }
    }

    /// The HTTP status the REST API answers with this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthenticationFailed => 401,
            ErrorCode::PermissionDenied | ErrorCode::AppPermissionDenied => 403,
            ErrorCode::RoomNotFound => 404,
            ErrorCode::InvalidPayload => 400,
            ErrorCode::RateLimitExceeded => 429,
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prefix of every authentication `connect_error` message.
pub const AUTH_FAILED_PREFIX: &str = "Authentication failed: ";

/// Why authentication failed; the `connect_error` message is
/// `Authentication failed: <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `auth.token` in the handshake.
    MissingToken,
    /// Bad signature, malformed token or wrong algorithm.
    InvalidToken,
    /// The token's `exp` is in the past.
    TokenExpired,
    /// The token's subject is not a known user.
    UserNotFound,
    /// The token was revoked.
    TokenRevoked,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 5] = [
        AuthFailure::MissingToken,
        AuthFailure::InvalidToken,
        AuthFailure::TokenExpired,
        AuthFailure::UserNotFound,
        AuthFailure::TokenRevoked,
    ];

    /// The reason part of the message.
    pub const fn reason(self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "Missing token",
            AuthFailure::InvalidToken => "Invalid token",
            AuthFailure::TokenExpired => "Token expired",
            AuthFailure::UserNotFound => "User not found",
            AuthFailure::TokenRevoked => "Token revoked",
        }
    }

    /// The full `connect_error` message.
    pub fn message(self) -> String {
        format!("{AUTH_FAILED_PREFIX}{}", self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_serde_and_parse() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("NOPE"), None);
    }

    #[test]
    fn auth_failure_messages() {
        assert_eq!(
            AuthFailure::InvalidToken.message(),
            "Authentication failed: Invalid token"
        );
        assert_eq!(
            AuthFailure::TokenRevoked.message(),
            "Authentication failed: Token revoked"
        );
    }
}
