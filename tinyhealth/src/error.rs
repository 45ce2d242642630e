//! tinyhealth's error shape: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every non-2xx answer, including unknown routes and malformed bodies, has
//! this body; `code` is a stable snake-case word a client may branch on, and
//! `message` never echoes the request (no ids, names or tokens in it).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: its status, stable code and human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// One sentence for a human.
    pub message: &'static str,
}

impl ApiError {
    /// A custom error.
    pub const fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        ApiError {
            status,
            code,
            message,
        }
    }

    /// 400 with a code naming what is wrong.
    pub const fn invalid(code: &'static str, message: &'static str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no session cookie, or one that is unknown or revoked.
    pub const fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: POST /api/sessions sets the th_session cookie",
        )
    }

    /// 403: the path names another account.
    pub const fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the path names another account",
        )
    }

    /// 404 for a thing the caller may not see or that does not exist; the two
    /// are indistinguishable on purpose.
    pub const fn not_found(message: &'static str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request does not fit the object's state.
    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 507: a storage limit was reached.
    pub const fn full(message: &'static str) -> Self {
        ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}
