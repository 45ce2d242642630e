//! FHIR errors: every 4xx/5xx answer under `/fhir` is an `OperationOutcome`.
//!
//! Handlers and extractors under `/fhir` fail with the same `ApiError` as
//! `/v1`; [`operation_outcomes`] (a `map_response` layer on the FHIR router)
//! turns whatever error body comes out — an `ApiError`'s `{"error": ..}`,
//! axum's empty 405 — into an `OperationOutcome` with one issue, keeping the
//! status and headers (`WWW-Authenticate` on 401). The diagnostics are the
//! error's short message, which never echoes request data.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// The content type of every FHIR resource body.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The largest error body the layer reads to find its message; an error body
/// is a few dozen bytes, so anything longer is not ours and is not read.
const ERROR_BODY_BYTES_MAX: usize = 4 << 10;

/// The `OperationOutcome` issue code for an HTTP status.
pub(crate) fn issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 => "not-supported",
        409 => "conflict",
        413 => "too-costly",
        422 => "business-rule",
        502 | 503 => "transient",
        _ => "exception",
    }
}

/// An `OperationOutcome` with one issue.
pub(crate) fn outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }],
    })
}

/// Middleware: gives every 4xx/5xx response that is not already FHIR JSON an
/// `OperationOutcome` body.
pub(crate) async fn operation_outcomes(response: Response) -> Response {
    let status = response.status();
    let is_fhir = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(FHIR_JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_fhir {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = match axum::body::to_bytes(body, ERROR_BODY_BYTES_MAX).await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|value| value.get("error")?.as_str().map(str::to_owned)),
        Err(_) => None,
    };
    let message = message.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    });
    let body = outcome("error", issue_code(status), &message).to_string();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Response::from_parts(parts, Body::from(body))
}
