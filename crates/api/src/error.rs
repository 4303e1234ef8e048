//! Every refusal is JSON: `{"status": 400, "field": "caller_id", "message": "..."}`, with `field` null when the
//! refusal is not about one field. Database failures are logged and answer 500 without their details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_admin::Invalid;
use switchboard_storage::StoreError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

/// The error body, as documented.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// The HTTP status, repeated.
    status: u16,
    /// The request field the refusal is about (JSON name), if any.
    field: Option<String>,
    /// What was wrong, for a person.
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, field: None, message: message.into() }
    }

    pub fn field(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { status, field: Some(field.into()), message: message.into() }
    }

    /// 404 for `what` (also the answer for another customer's records).
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error (logged)")
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message)
    }
}

impl From<switchboard_admin::Error> for ApiError {
    fn from(e: switchboard_admin::Error) -> ApiError {
        match e {
            switchboard_admin::Error::Invalid(i) => i.into(),
            switchboard_admin::Error::NoRandomness(why) => {
                tracing::error!(why, "no randomness for a password or token");
                ApiError::internal()
            }
            switchboard_admin::Error::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict { entity, field, value } => {
                ApiError::field(StatusCode::CONFLICT, field, format!("a {entity} with this {field} exists: {value}"))
            }
            StoreError::NotFound { entity, .. } => ApiError::not_found(entity),
            other => {
                tracing::error!(error = %other, "database error in the API");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { status: self.status.as_u16(), field: self.field, message: self.message };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
