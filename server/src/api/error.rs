//! The REST error answer and the JSON body extractor whose rejection is one.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::access::AccessError;
use crate::store::StoreError;

/// The code of a 503: the store could not be reached (protocol notes N18).
pub const UNAVAILABLE: &str = "UNAVAILABLE";

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

    pub(super) fn invalid(message: impl Into<String>) -> Self {
        Self::protocol(ErrorCode::InvalidPayload, message)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
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
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "store unavailable");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: UNAVAILABLE,
                    message: "The database is unavailable; try again later".into(),
                }
            }
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

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::RoomNotFound(id) => StoreError::RoomNotFound(id).into(),
            AccessError::Private(_) => ApiError::forbidden(e.to_string()),
            AccessError::Store(e) => e.into(),
        }
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

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
