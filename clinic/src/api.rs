//! The api service: patients, appointments, calls, history, playback, erasure.
//!
//! JSON over HTTP with bearer tokens; the `/v1` routes, bodies and status
//! codes are those of [`crate::openapi::document`]; the FHIR shape
//! ([`crate::fhir`]) is nested under `/fhir`. Both call the same operations
//! (the private `service` module). Data lives in SQLite (the private `db`
//! module), media in the media service, reached through a [`MediaLink`].
//!
//! **Invariants.** The SQLite mutex is only taken inside `ApiState::db`, whose
//! closure is synchronous, so it is never held across an `.await`. Handlers
//! never panic and answer every client error with a JSON 4xx: each extractor
//! rejects with an `ApiError`. "Not yours" and "unknown" are the same 404, so
//! ids reveal nothing. An action that needs media validates, calls the media
//! service, then validates again as it commits, and discards media it opened if
//! the commit is refused; a media failure is a 502 that changed nothing.
//!
//! With no fault planted, a patient never lists, fetches or changes another
//! patient's recordings. Each planted fault is a marked branch guarded by
//! `faults.contains(..)`, in `service` or the store, so both shapes reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::{Db, HistoryItem};
use crate::error::{ApiError, json_errors};
use crate::fault::{Fault, FaultSet};
use crate::link::{MediaError, MediaLink};
use crate::media::CHUNK_BYTES_MAX;
use crate::service::{CacheKey, RecordingPage, Scope};
use crate::{Config, StartError};

/// The largest JSON request body: 64 KiB, far more than any request needs.
pub const JSON_BODY_BYTES_MAX: usize = 64 << 10;

/// The most history items one page may ask for.
pub const PER_PAGE_MAX: u32 = 100;

/// History items per page when `per_page` is not given.
pub const PER_PAGE_DEFAULT: u32 = 10;

/// The header playback uses to say whether the bytes are audio or video.
pub const RECORDING_KIND_HEADER: &str = "x-recording-kind";

/// Everything the api service's handlers share. Cloning shares it.
#[derive(Clone)]
pub struct ApiState {
    /// The shared part, behind one `Arc`.
    pub(crate) inner: Arc<Inner>,
}

/// The state behind [`ApiState`]; the fault fields are used by `service`.
pub(crate) struct Inner {
    /// The store; locked only inside [`ApiState::db`].
    db: Mutex<Db>,
    /// The planted faults; fixed for the life of the service.
    faults: FaultSet,
    /// How to reach the media service.
    media: MediaLink,
    /// `history-cache-shared`: recording pages by listing and page, not by
    /// patient; both API shapes share it.
    pub(crate) history_cache: Mutex<HashMap<CacheKey, RecordingPage>>,
    /// `upgrade-phantom`: the patient who last listed their recordings.
    pub(crate) last_history_viewer: Mutex<Option<String>>,
    /// `upgrade-shared-slot`: the call the upgrade handler is working on, in
    /// one slot for the whole service (all requests share it).
    pub(crate) upgrade_slot: Mutex<Option<String>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("faults", &self.inner.faults)
            .field("media", &self.inner.media)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Opens the database (`config.db_path`, or in memory) and builds the state.
    pub fn new(config: &Config, media: MediaLink) -> Result<ApiState, StartError> {
        let db = Db::open(config.db_path.as_deref(), config.faults.clone()).map_err(|source| {
            StartError::Database {
                path: config
                    .db_path
                    .as_ref()
                    .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string()),
                source,
            }
        })?;
        Ok(ApiState {
            inner: Arc::new(Inner {
                db: Mutex::new(db),
                faults: config.faults.clone(),
                media,
                history_cache: Mutex::new(HashMap::new()),
                last_history_viewer: Mutex::new(None),
                upgrade_slot: Mutex::new(None),
            }),
        })
    }

    /// Forgets every patient, appointment, call and recording, and every
    /// in-memory cache, as if the service had just started with the same
    /// faults. The media service is separate: clear its
    /// [`MediaState`](crate::media::MediaState) too. For in-process
    /// harnesses (the fuzz targets) that run many short sessions on one
    /// service without paying for a new database each time.
    pub fn reset(&self) {
        lock(&self.inner.db)
            .reset()
            .expect("deleting every row of an open database cannot fail");
        lock(&self.inner.history_cache).clear();
        *lock(&self.inner.last_history_viewer) = None;
        *lock(&self.inner.upgrade_slot) = None;
    }

    /// The planted faults.
    pub fn faults(&self) -> &FaultSet {
        &self.inner.faults
    }

    pub(crate) fn has(&self, fault: Fault) -> bool {
        self.inner.faults.contains(fault)
    }

    pub(crate) fn media(&self) -> &MediaLink {
        &self.inner.media
    }

    /// Runs `f` with the store locked. The closure is synchronous, so the lock
    /// cannot be held across an `.await`.
    pub(crate) fn db<T, E>(&self, f: impl FnOnce(&mut Db) -> Result<T, E>) -> Result<T, ApiError>
    where
        ApiError: From<E>,
    {
        let mut db = lock(&self.inner.db);
        Ok(f(&mut db)?)
    }
}

/// Locks a mutex, recovering from poisoning: every critical section here is a
/// single SQLite transaction (rolled back on unwind) or a single map update.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl From<MediaError> for ApiError {
    fn from(_: MediaError) -> Self {
        ApiError::media_unavailable()
    }
}

/// The api service's router, with its state.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/patients", post(register))
        .route("/v1/appointments", post(book))
        .route("/v1/appointments/{id}", delete(cancel))
        .route("/v1/appointments/{id}/call", post(start_call))
        .route("/v1/calls/{id}/upgrade", post(upgrade))
        .route(
            "/v1/calls/{id}/media",
            post(send_media).layer(DefaultBodyLimit::max(CHUNK_BYTES_MAX)),
        )
        .route("/v1/calls/{id}/end", post(end_call))
        .route("/v1/me/recordings", get(history))
        .route("/v1/recordings/{id}", get(playback).delete(erase))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .nest("/fhir", crate::fhir::router())
        .route("/fhir/", axum::routing::any(crate::fhir::base_not_found))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            invalidate_history_cache,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Extractors: each rejects with a JSON `ApiError`, never axum's plain text.

/// The authenticated caller, from `Authorization: Bearer TOKEN`.
pub(crate) struct Patient {
    /// The caller's patient id.
    pub(crate) id: String,
}

impl FromRequestParts<ApiState> for Patient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::unauthorized("malformed authorization header"))?;
        let id = state
            .db(|db| db.patient_by_token(token))?
            .ok_or_else(|| ApiError::unauthorized("invalid bearer token"))?;
        Ok(Patient { id })
    }
}

/// The `{id}` path segment. An id that does not even decode cannot name
/// anything, so it is a 404 like any unknown id.
pub(crate) struct Id(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|_| ApiError::not_found("not found"))
    }
}

/// A JSON body, parsed whatever its content type; 400 if it does not parse.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::unreadable_body(rejection.status()))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::bad_request(json_problem(&err)))
    }
}

/// A short description of a JSON error that never quotes the body.
pub(crate) fn json_problem(err: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match err.classify() {
        // serde's own data messages can quote values, so only the kind is told.
        Category::Data if err.to_string().starts_with("missing field") => {
            "json body is missing a required field"
        }
        Category::Data => "json body does not match the schema",
        Category::Syntax | Category::Eof | Category::Io => "malformed json body",
    }
}

/// A raw request body (a media chunk); 413 over the route's limit.
pub(crate) struct Chunk(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Chunk {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Chunk)
            .map_err(|rejection| ApiError::unreadable_body(rejection.status()))
    }
}

/// `?page=&per_page=` of the history view, validated.
struct PageParams {
    page: u32,
    per_page: u32,
}

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Raw {
            page: Option<String>,
            per_page: Option<String>,
        }
        let Query(raw) = Query::<Raw>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("malformed query string"))?;
        let page = match raw.page {
            None => 1,
            Some(page) => page
                .parse::<u32>()
                .ok()
                .filter(|page| *page >= 1)
                .ok_or_else(|| ApiError::bad_request("page must be an integer >= 1"))?,
        };
        let per_page = match raw.per_page {
            None => PER_PAGE_DEFAULT,
            Some(per_page) => per_page
                .parse::<u32>()
                .ok()
                .filter(|per_page| (1..=PER_PAGE_MAX).contains(per_page))
                .ok_or_else(|| {
                    ApiError::bad_request("per_page must be an integer from 1 to 100")
                })?,
        };
        Ok(PageParams { page, per_page })
    }
}

// ---------------------------------------------------------------------------
// Request and response bodies.

#[derive(Deserialize)]
struct RegisterRequest {
    display_name: String,
}

#[derive(Serialize)]
struct Registered {
    patient_id: String,
    token: String,
    display_name: String,
}

#[derive(Deserialize)]
struct BookRequest {
    slot: String,
    #[serde(default)]
    notes: String,
}

#[derive(Serialize)]
struct CallView {
    call_id: String,
    recording_id: String,
    mode: &'static str,
}

#[derive(Serialize)]
struct Received {
    received: usize,
}

#[derive(Serialize)]
struct CallEnded {
    call_id: String,
    status: &'static str,
}

#[derive(Serialize)]
struct HistoryPage {
    page: u32,
    per_page: u32,
    total: i64,
    items: Vec<HistoryItem>,
}

pub(crate) fn json<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------------------
// Handlers.

async fn register(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let (patient_id, token) = state.db(|db| db.register(&request.display_name))?;
    let body = Registered {
        patient_id,
        token,
        display_name: request.display_name,
    };
    Ok(json(StatusCode::CREATED, body))
}

async fn book(
    State(state): State<ApiState>,
    patient: Patient,
    JsonBody(request): JsonBody<BookRequest>,
) -> Result<Response, ApiError> {
    let faults = state.faults();
    let appointment = state.db(|db| db.book(&patient.id, &request.slot, &request.notes, faults))?;
    Ok(json(StatusCode::CREATED, appointment))
}

async fn cancel(
    State(state): State<ApiState>,
    patient: Patient,
    Id(appointment_id): Id,
) -> Result<StatusCode, ApiError> {
    state.db(|db| db.cancel(&patient.id, &appointment_id))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start_call(
    State(state): State<ApiState>,
    patient: Patient,
    Id(appointment_id): Id,
) -> Result<Response, ApiError> {
    let (call_id, recording_id) = state.start_call(&patient.id, &appointment_id).await?;
    let body = CallView {
        call_id,
        recording_id,
        mode: "audio",
    };
    Ok(json(StatusCode::CREATED, body))
}

async fn upgrade(
    State(state): State<ApiState>,
    patient: Patient,
    Id(call_id): Id,
) -> Result<Response, ApiError> {
    let recording_id = state.upgrade(&patient.id, &call_id).await?;
    let body = CallView {
        call_id,
        recording_id,
        mode: "video",
    };
    Ok(json(StatusCode::OK, body))
}

async fn send_media(
    State(state): State<ApiState>,
    patient: Patient,
    Id(call_id): Id,
    Chunk(chunk): Chunk,
) -> Result<Response, ApiError> {
    let received = state.send_media(&patient.id, &call_id, chunk).await?;
    Ok(json(StatusCode::ACCEPTED, Received { received }))
}

async fn end_call(
    State(state): State<ApiState>,
    patient: Patient,
    Id(call_id): Id,
) -> Result<Response, ApiError> {
    state.end_call(&patient.id, &call_id).await?;
    let body = CallEnded {
        call_id,
        status: "ended",
    };
    Ok(json(StatusCode::OK, body))
}

async fn history(
    State(state): State<ApiState>,
    patient: Patient,
    PageParams { page, per_page }: PageParams,
) -> Result<Response, ApiError> {
    let offset = u64::from(page - 1) * u64::from(per_page);
    let listed =
        state.list_recordings(&patient.id, Scope::Patient(&patient.id), offset, per_page)?;
    let body = HistoryPage {
        page,
        per_page,
        total: listed.total,
        items: listed.items,
    };
    Ok(json(StatusCode::OK, body))
}

async fn playback(
    State(state): State<ApiState>,
    patient: Patient,
    Id(recording_id): Id,
) -> Result<Response, ApiError> {
    let (kind, bytes) = state.play(&patient.id, &recording_id).await?;
    let kind = HeaderValue::from_str(&kind).map_err(|err| ApiError::internal(&err))?;
    let headers = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (HeaderName::from_static(RECORDING_KIND_HEADER), kind),
    ];
    Ok((headers, bytes).into_response())
}

async fn erase(
    State(state): State<ApiState>,
    patient: Patient,
    Id(recording_id): Id,
) -> Result<StatusCode, ApiError> {
    state.erase(&patient.id, &recording_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.media().healthy().await {
        json(
            StatusCode::OK,
            serde_json::json!({ "status": "ok", "service": "api" }),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "status": "unavailable",
                "service": "api",
                "error": "media service unavailable",
            }),
        )
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("not found")
}

/// Middleware: under `history-cache-shared`, every POST, PUT, PATCH or DELETE
/// under `/v1` or `/fhir` empties the history cache once it has been handled.
/// Without the fault there is no cache and this does nothing.
async fn invalidate_history_cache(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && (path.starts_with("/v1/") || path.starts_with("/fhir/"));
    let response = next.run(request).await;
    if mutating && state.has(Fault::HistoryCacheShared) {
        lock(&state.inner.history_cache).clear();
    }
    response
}
