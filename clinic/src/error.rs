//! JSON error responses shared by both services.
//!
//! Every error either service returns has the body `{"error": "short message"}`
//! and a JSON content type. [`ApiError`] is how handlers and extractors say so;
//! [`json_errors`] is the safety net that rewrites any other error response
//! (axum's own 405, for one) into the same shape, keeping its headers.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error response: a status and a short message for the `error` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status; always 4xx or 5xx.
    pub(crate) status: StatusCode,
    /// The short, lower-case message; never echoes request data.
    pub(crate) message: Cow<'static, str>,
}

impl ApiError {
    /// An error with any status.
    pub(crate) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: the bearer token is missing or names no patient.
    pub(crate) fn unauthorized(message: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the object exists and is not the caller's. The clinic answers
    /// 404 for that (indistinguishable from unknown); only the planted
    /// `refusal-reveals-existence` answers 403.
    pub(crate) fn forbidden(message: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: unknown, or not the caller's (the two are indistinguishable).
    pub(crate) fn not_found(message: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the object exists but its state forbids the action.
    pub(crate) fn conflict(message: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 413: the request body is over the route's limit.
    pub(crate) fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    }

    /// 502: the api service could not get the media service to do its part.
    pub(crate) fn media_unavailable() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "media service unavailable")
    }

    /// 500: a bug or a broken database; the cause goes to stderr, not the client.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        eprintln!("clinic: internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The error for a body axum could not buffer: 413 when over the limit,
    /// otherwise 400.
    pub(crate) fn unreadable_body(status: StatusCode) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::too_large()
        } else {
            Self::bad_request("unreadable request body")
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        Self::internal(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Middleware (`axum::middleware::map_response`): gives every 4xx/5xx response
/// that is not already JSON the `{"error": ..}` body, named after its status.
/// A FHIR `OperationOutcome` (`application/fhir+json`) is JSON and kept.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("application/fhir+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let body = serde_json::json!({ "error": message }).to_string();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}
