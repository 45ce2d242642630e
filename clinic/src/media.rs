//! The media service: stores recording media in memory, by opaque media id.
//!
//! It sits on a private network behind the api service, so it has no auth and
//! knows nothing of patients, calls or recordings: an object is a byte string
//! and a "closed" mark. Appending to a closed object is accepted (closing only
//! marks it finished); the api service decides who may read what.
//!
//! | request | success | failure |
//! | --- | --- | --- |
//! | `POST /media` | 201 `{"media_id": ..}` | |
//! | `GET /media` | 200 `{"ids": [..]}`, every stored object's id, sorted | |
//! | `POST /media/{id}/append` (bytes) | 204 | 404 unknown, 413 over [`CHUNK_BYTES_MAX`] |
//! | `POST /media/{id}/close` | 204 | 404 unknown |
//! | `GET /media/{id}` | 200 bytes | 404 unknown |
//! | `DELETE /media/{id}` | 204 | 404 unknown |
//! | `GET /healthz` | 200 `{"status":"ok","service":"media"}` | |
//!
//! **Invariant:** the store's mutex is never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::{ApiError, json_errors};
use crate::ids;

/// The largest body one append may carry: 1 MiB, the api service's own limit
/// on a media chunk.
pub const CHUNK_BYTES_MAX: usize = 1 << 20;

/// The media store shared by the service's handlers. Cloning shares the store.
#[derive(Clone, Debug, Default)]
pub struct MediaState {
    /// Media objects by media id.
    objects: Arc<Mutex<HashMap<String, MediaObject>>>,
}

/// One stored media object.
#[derive(Debug, Default)]
struct MediaObject {
    /// Everything appended so far, in order.
    bytes: Vec<u8>,
    /// Whether the api service has marked it finished.
    closed: bool,
}

impl MediaState {
    /// How many media objects are stored (deleted ones are gone).
    pub fn object_count(&self) -> usize {
        self.lock().len()
    }

    /// How many stored media objects are still open (not yet closed).
    pub fn open_count(&self) -> usize {
        self.lock().values().filter(|object| !object.closed).count()
    }

    /// Forgets every object, as a fresh media service (for in-process
    /// harnesses that reuse one service; see `ApiState::reset`).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, MediaObject>> {
        // A panic while holding the lock cannot leave a half-written object
        // (every update is a single call), so a poisoned map is still sound.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The media service's router, with its state.
pub fn router(state: MediaState) -> Router {
    Router::new()
        .route("/media", post(open).get(list))
        .route(
            "/media/{id}/append",
            post(append).layer(DefaultBodyLimit::max(CHUNK_BYTES_MAX)),
        )
        .route("/media/{id}/close", post(close))
        .route("/media/{id}", get(fetch).delete(remove))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

fn unknown_media() -> ApiError {
    ApiError::not_found("media not found")
}

async fn open(State(state): State<MediaState>) -> Response {
    let media_id = ids::new_id("med_");
    state
        .lock()
        .insert(media_id.clone(), MediaObject::default());
    let body = serde_json::json!({ "media_id": media_id });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Every stored object's id, sorted: what a store's listing (an S3 bucket's,
/// say) gives whoever can reach it, and how a tester checks that erased
/// bytes are gone from the store itself.
async fn list(State(state): State<MediaState>) -> Response {
    let mut ids: Vec<String> = state.lock().keys().cloned().collect();
    ids.sort();
    axum::Json(serde_json::json!({ "ids": ids })).into_response()
}

async fn append(
    State(state): State<MediaState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let chunk = body.map_err(|rejection| ApiError::unreadable_body(rejection.status()))?;
    let mut objects = state.lock();
    let object = objects.get_mut(&id).ok_or_else(unknown_media)?;
    object.bytes.extend_from_slice(&chunk);
    Ok(StatusCode::NO_CONTENT)
}

async fn close(
    State(state): State<MediaState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut objects = state.lock();
    let object = objects.get_mut(&id).ok_or_else(unknown_media)?;
    object.closed = true;
    Ok(StatusCode::NO_CONTENT)
}

async fn fetch(
    State(state): State<MediaState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = state
        .lock()
        .get(&id)
        .map(|object| object.bytes.clone())
        .ok_or_else(unknown_media)?;
    Ok(([(CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn remove(
    State(state): State<MediaState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.lock().remove(&id).ok_or_else(unknown_media)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok", "service": "media" })).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("not found")
}
