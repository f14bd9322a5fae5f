//! JSON errors: `{"error": {"code", "message", "field"}}` with the HTTP status that fits.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;
use crate::tracking::TrackingError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid_request`, `not_found`, ...).
    pub code: &'static str,
    pub message: String,
    /// Where in the request body or path the problem is (a JSON path such as
    /// `service_lines[0].service.procedure.code`), when there is one place.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            // The message names what failed (never a body); the caller gets it too.
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<TrackingError> for ApiError {
    fn from(e: TrackingError) -> ApiError {
        match e {
            TrackingError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            TrackingError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
            }
            TrackingError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            TrackingError::Illegal(m) => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", m)
            }
            TrackingError::Refused(m) => ApiError::new(StatusCode::CONFLICT, "refused", m),
            TrackingError::Store(StoreError::Conflict(m)) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the record changed meanwhile; read it again and retry ({m})"),
            ),
            TrackingError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the records store failed: {e}"),
            ),
        }
    }
}
