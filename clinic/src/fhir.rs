//! The FHIR R4-shaped API, served by the api service under `/fhir` beside
//! `/v1`, over the same store and media service.
//!
//! | FHIR | the clinic |
//! | --- | --- |
//! | `Patient` (create = register, client secret in `X-Client-Secret`) | a patient |
//! | `POST /fhir/auth/token` (client credentials → `access_token`) | its bearer token |
//! | `Appointment` (create = book; `status` → `cancelled` by PUT or PATCH) | an appointment |
//! | `Encounter` (create = start an audio call; `status` → `finished` ends it) | a call |
//! | `POST /fhir/Encounter/{id}/$upgrade` (returns the new video `Media`) | upgrade |
//! | `POST /fhir/Binary` (`securityContext` = the Encounter) | a media chunk |
//! | `Media` (search by `subject`/`patient` or `encounter`, read, delete) | a recording |
//! | `Binary/{id}` (read) | a recording's bytes |
//!
//! The routes, bodies and status codes are those of [`openapi::document`].
//!
//! **Why an operation for the upgrade.** Switching to video is not a field
//! update of the Encounter: it finishes one recording and starts another, and
//! a client needs the new one. `$upgrade` returns the new `Media`; an update of
//! `Encounter` could only return the Encounter.
//!
//! **Ids.** Logical ids are random UUID-shaped strings from `db::fhir`, never
//! the `/v1` ids; a `Binary` id differs from its `Media` id. An unknown id and
//! another patient's id are the same 404.
//!
//! **Paging.** A `Media` search answers a `Bundle` searchset of at most
//! `_count` entries with a `next` link whose `_cursor` is the paging state;
//! the link repeats the search's `subject` or `encounter`, so a continuation
//! is the same search. A search without `subject`, `patient` or `encounter`
//! lists the caller's own `Media`.
//!
//! **Resource types.** Small serde structs and builders with the few fields
//! used ([`resource`]), not a FHIR model crate. Measured here (2026-11-29,
//! a debug `cargo build -j1` of an empty binary using it): `fhir` 4.1.2 with
//! only its `r4` feature compiles 28 crates, ~199,000 lines in `fhir-r4`
//! alone, in 226 s of CPU (9 min 53 s wall on the shared machine), peaking
//! at 4.4 GB of RAM, with a 546 MB target directory — for the five
//! resources and a few dozen fields used here, on a 2-core machine shared by
//! several builds. The structs cost nothing to build and document exactly
//! the fields the clinic reads.
//!
//! **Faults.** All but two faults live in the shared operations
//! (the private `service` module) or the store, so they show through both shapes. Two
//! are this shape's own, both in the `Media` search handler:
//! `fhir-subject-unchecked` (the `subject`/`patient` parameter is honoured
//! without checking it is the caller) and `fhir-next-link-unscoped` (the
//! `next` link drops the owner, and a continuation without one lists everyone).

pub mod openapi;
pub(crate) mod outcome;
pub mod resource;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Form, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApiState, Chunk, Id, JsonBody, Patient, RECORDING_KIND_HEADER, json_problem};
use crate::db::HistoryItem;
use crate::db::fhir::Kind;
use crate::error::ApiError;
use crate::fault::Fault;
use crate::media::CHUNK_BYTES_MAX;
use crate::service::Scope;
use outcome::{FHIR_JSON, outcome};
use resource::{AppointmentIn, BinaryIn, EncounterIn, EncounterRefs, MediaRefs, PatientIn};

pub use outcome::FHIR_JSON as CONTENT_TYPE_FHIR_JSON;

/// `Media` entries per page when `_count` is not given.
pub const COUNT_DEFAULT: u32 = 10;

/// The most `Media` entries one page may ask for.
pub const COUNT_MAX: u32 = 100;

/// The response header carrying a new patient's client secret.
pub const CLIENT_SECRET_HEADER: &str = "x-client-secret";

/// The request header naming the `Encounter` of a raw `POST /fhir/Binary`
/// (FHIR's own header for raw Binary requests).
pub const SECURITY_CONTEXT_HEADER: &str = "x-security-context";

/// The largest `POST /fhir/Binary` body: a 1 MiB chunk as base64 in JSON.
pub const BINARY_BODY_BYTES_MAX: usize = CHUNK_BYTES_MAX / 3 * 4 + (64 << 10);

/// The FHIR router, nested by [`crate::api::router`] under `/fhir`.
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/openapi.json", get(openapi_document))
        .route("/auth/token", post(token))
        .route("/Patient", post(create_patient))
        .route("/Patient/{id}", get(read_patient))
        .route("/Appointment", post(book))
        .route(
            "/Appointment/{id}",
            get(read_appointment)
                .put(update_appointment)
                .patch(update_appointment),
        )
        .route("/Encounter", post(start_encounter))
        .route(
            "/Encounter/{id}",
            get(read_encounter)
                .put(update_encounter)
                .patch(update_encounter),
        )
        .route("/Encounter/{id}/$upgrade", post(upgrade))
        .route(
            "/Binary",
            post(upload).layer(DefaultBodyLimit::max(BINARY_BODY_BYTES_MAX)),
        )
        .route("/Binary/{id}", get(read_binary))
        .route("/Media", get(search_media))
        .route("/Media/{id}", get(read_media).delete(delete_media))
        .fallback(not_found)
        .layer(axum::middleware::map_response(outcome::operation_outcomes))
}

// ---------------------------------------------------------------------------
// Helpers.

/// The FHIR base URL of this request: `http://HOST/fhir` when the `Host`
/// header is a plain host[:port], else the path `/fhir` (in-process callers
/// send no `Host`). Links and `content.url` are built on it.
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| {
                // Only what a host and port are made of: a hostile Host
                // header cannot put anything else into a URL we hand out.
                !host.is_empty()
                    && host.len() <= 255
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            });
        Ok(Base(match host {
            Some(host) => format!("http://{host}/fhir"),
            None => "/fhir".to_owned(),
        }))
    }
}

/// A response with a FHIR JSON body.
fn fhir(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body.to_string(),
    )
        .into_response()
}

/// A created resource: 201, its `Location`, its body.
fn created(location: &str, body: &Value) -> Response {
    let mut response = fhir(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The internal id a logical id names; 404 if none (as for another's).
fn internal(state: &ApiState, kind: Kind, fhir_id: &str) -> Result<String, ApiError> {
    if !resource::is_id(fhir_id) {
        return Err(ApiError::not_found("not found"));
    }
    state
        .db(|db| db.internal_id(kind, fhir_id))?
        .ok_or_else(|| ApiError::not_found("not found"))
}

/// The logical id of an internal id.
fn logical(state: &ApiState, kind: Kind, internal_id: &str) -> Result<String, ApiError> {
    state.db(|db| db.fhir_id(kind, internal_id))
}

/// The `status` a PUT (the whole resource) or PATCH (a JSON Patch replacing
/// `/status`, or a merge patch `{"status": ..}`) asks for. Anything that
/// would change another field is a 422: only the status can change here.
fn requested_status(kind: Kind, path_id: &str, body: &Value) -> Result<String, ApiError> {
    let only_status = || ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "only status can change");
    match body {
        Value::Array(ops) => match ops.as_slice() {
            [op] => {
                let verb = op.get("op").and_then(Value::as_str);
                let path = op.get("path").and_then(Value::as_str);
                match (verb, path, op.get("value").and_then(Value::as_str)) {
                    (Some("replace" | "add"), Some("/status"), Some(status)) => {
                        Ok(status.to_owned())
                    }
                    (Some(_), Some(_), _) => Err(only_status()),
                    _ => Err(ApiError::bad_request("malformed json patch")),
                }
            }
            _ => Err(only_status()),
        },
        Value::Object(fields) => {
            if let Some(found) = fields.get("resourceType") {
                resource::expect_type(found.as_str().unwrap_or_default(), kind)?;
            }
            if let Some(id) = fields.get("id")
                && id.as_str() != Some(path_id)
            {
                return Err(ApiError::bad_request("id does not match the url"));
            }
            fields
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ApiError::bad_request("status is required"))
        }
        _ => Err(ApiError::bad_request("json body does not match the schema")),
    }
}

// ---------------------------------------------------------------------------
// Conformance.

async fn metadata(Base(base): Base) -> Response {
    fhir(StatusCode::OK, &openapi::capability_statement(&base))
}

async fn openapi_document() -> Response {
    axum::Json(openapi::document()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("not found")
}

/// `/fhir/` itself: axum's nesting leaves the bare trailing slash to the
/// outer router, which would answer in the `/v1` error shape.
pub(crate) async fn base_not_found() -> Response {
    fhir(
        StatusCode::NOT_FOUND,
        &outcome("error", "not-found", "not found"),
    )
}

// ---------------------------------------------------------------------------
// Patients and tokens.

async fn create_patient(
    State(state): State<ApiState>,
    Base(base): Base,
    JsonBody(request): JsonBody<PatientIn>,
) -> Result<Response, ApiError> {
    let display_name = request.display_name()?;
    let (id, secret) = state.db(|db| {
        let (patient_id, secret) = db.register_client(&display_name)?;
        Ok::<_, rusqlite::Error>((db.fhir_id(Kind::Patient, &patient_id)?, secret))
    })?;
    let mut response = created(
        &format!("{base}/Patient/{id}"),
        &resource::patient(&id, &display_name),
    );
    let secret = HeaderValue::from_str(&secret).map_err(|err| ApiError::internal(&err))?;
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(CLIENT_SECRET_HEADER), secret);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn read_patient(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let wanted = internal(&state, Kind::Patient, &id)?;
    if wanted != patient.id {
        return Err(ApiError::not_found("not found"));
    }
    let name = state
        .db(|db| db.display_name(&patient.id))?
        .ok_or_else(|| ApiError::not_found("not found"))?;
    Ok(fhir(StatusCode::OK, &resource::patient(&id, &name)))
}

/// The token request: OAuth 2 client credentials.
#[derive(Deserialize)]
struct TokenRequest {
    /// Must be `client_credentials`.
    grant_type: String,
    /// The `Patient`'s logical id.
    client_id: String,
    /// The secret from `X-Client-Secret`.
    client_secret: String,
}

/// A token request body: a form (`application/x-www-form-urlencoded`, as
/// OAuth has it) or the same fields as JSON.
struct TokenBody(TokenRequest);

impl<S: Send + Sync> FromRequest<S> for TokenBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            Form::<TokenRequest>::from_request(request, state)
                .await
                .map(|Form(body)| TokenBody(body))
                .map_err(|_| ApiError::bad_request("malformed token request form"))
        } else {
            let JsonBody(body) = JsonBody::<TokenRequest>::from_request(request, state).await?;
            Ok(TokenBody(body))
        }
    }
}

async fn token(
    State(state): State<ApiState>,
    TokenBody(request): TokenBody,
) -> Result<Response, ApiError> {
    if request.grant_type != "client_credentials" {
        return Err(ApiError::bad_request(
            "grant_type must be client_credentials",
        ));
    }
    let invalid = || ApiError::unauthorized("invalid client credentials");
    let patient = match internal(&state, Kind::Patient, &request.client_id) {
        Ok(patient) => patient,
        Err(_) => return Err(invalid()),
    };
    let token = state
        .db(|db| db.client_token(&patient, &request.client_secret))?
        .ok_or_else(invalid)?;
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "scope": "patient/*.*",
        "patient": request.client_id,
    });
    Ok((
        StatusCode::OK,
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// Appointments.

/// Renders the caller's appointment.
fn appointment_view(
    state: &ApiState,
    patient: &str,
    appointment_id: &str,
) -> Result<Value, ApiError> {
    let row = state.db(|db| db.appointment(patient, appointment_id))?;
    let (id, me) = state.db(|db| {
        Ok::<_, rusqlite::Error>((
            db.fhir_id(Kind::Appointment, appointment_id)?,
            db.fhir_id(Kind::Patient, patient)?,
        ))
    })?;
    Ok(resource::appointment(
        &id,
        &me,
        &row.slot,
        &row.notes,
        &row.status,
    ))
}

async fn book(
    State(state): State<ApiState>,
    patient: Patient,
    Base(base): Base,
    JsonBody(request): JsonBody<AppointmentIn>,
) -> Result<Response, ApiError> {
    request.check()?;
    let me = logical(&state, Kind::Patient, &patient.id)?;
    for participant in &request.participant {
        let Some(reference) = participant.actor.reference.as_deref() else {
            continue;
        };
        if reference_is_type(reference, Kind::Patient)
            && resource::reference_id(reference, Kind::Patient) != Some(me.as_str())
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a patient participant must be the caller",
            ));
        }
    }
    let faults = state.faults();
    let booked =
        state.db(|db| db.book(&patient.id, &request.start, &request.description, faults))?;
    let body = appointment_view(&state, &patient.id, &booked.appointment_id)?;
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    Ok(created(&format!("{base}/Appointment/{id}"), &body))
}

/// Whether a reference names a `kind` (`Kind/…`), whatever its id.
fn reference_is_type(reference: &str, kind: Kind) -> bool {
    reference
        .rsplit_once('/')
        .is_some_and(|(before, _)| before.rsplit('/').next() == Some(kind.name()))
}

async fn read_appointment(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let appointment = internal(&state, Kind::Appointment, &id)?;
    let body = appointment_view(&state, &patient.id, &appointment)?;
    Ok(fhir(StatusCode::OK, &body))
}

async fn update_appointment(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let appointment = internal(&state, Kind::Appointment, &id)?;
    // Ownership first: another's appointment is a 404 whatever the body says.
    let current = state.db(|db| db.appointment(&patient.id, &appointment))?;
    match requested_status(Kind::Appointment, &id, &body)?.as_str() {
        "cancelled" => state.db(|db| db.cancel(&patient.id, &appointment))?,
        "booked" if current.status == "booked" => {}
        "booked" => {
            return Err(ApiError::conflict(
                "a cancelled appointment cannot be rebooked",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "status can only become cancelled",
            ));
        }
    }
    let body = appointment_view(&state, &patient.id, &appointment)?;
    Ok(fhir(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------
// Encounters (calls).

/// Renders the caller's call.
fn encounter_view(state: &ApiState, patient: &str, call_id: &str) -> Result<Value, ApiError> {
    let row = state.db(|db| db.encounter(patient, call_id))?;
    let ids = state.db(|db| {
        Ok::<_, rusqlite::Error>([
            db.fhir_id(Kind::Encounter, call_id)?,
            db.fhir_id(Kind::Patient, patient)?,
            db.fhir_id(Kind::Appointment, &row.appointment_id)?,
            db.fhir_id(Kind::Media, &row.current_recording_id)?,
        ])
    })?;
    let refs = EncounterRefs {
        id: &ids[0],
        patient: &ids[1],
        appointment: &ids[2],
        current_media: &ids[3],
    };
    Ok(resource::encounter(
        &refs,
        &row.mode,
        row.status == "active",
    ))
}

async fn start_encounter(
    State(state): State<ApiState>,
    patient: Patient,
    Base(base): Base,
    JsonBody(request): JsonBody<EncounterIn>,
) -> Result<Response, ApiError> {
    let appointment = internal(&state, Kind::Appointment, request.appointment_id()?)?;
    let (call_id, _) = state.start_call(&patient.id, &appointment).await?;
    let body = encounter_view(&state, &patient.id, &call_id)?;
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    Ok(created(&format!("{base}/Encounter/{id}"), &body))
}

async fn read_encounter(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let call = internal(&state, Kind::Encounter, &id)?;
    Ok(fhir(
        StatusCode::OK,
        &encounter_view(&state, &patient.id, &call)?,
    ))
}

async fn update_encounter(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let call = internal(&state, Kind::Encounter, &id)?;
    let current = state.db(|db| db.encounter(&patient.id, &call))?;
    match requested_status(Kind::Encounter, &id, &body)?.as_str() {
        "finished" => state.end_call(&patient.id, &call).await?,
        "in-progress" if current.status == "active" => {}
        "in-progress" => return Err(ApiError::conflict("call has ended")),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "status can only become finished",
            ));
        }
    }
    Ok(fhir(
        StatusCode::OK,
        &encounter_view(&state, &patient.id, &call)?,
    ))
}

async fn upgrade(
    State(state): State<ApiState>,
    patient: Patient,
    Base(base): Base,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let call = internal(&state, Kind::Encounter, &id)?;
    let recording = state.upgrade(&patient.id, &call).await?;
    // The new recording is attached where the store put it; under a planted
    // fault that may be another patient's call, which the body then shows.
    let item = state
        .db(|db| db.recording_item(&recording))?
        .ok_or_else(|| ApiError::internal(&"upgraded recording vanished"))?;
    let body = media_views(&state, &[item], &base)?.remove(0);
    Ok(fhir(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------
// Media upload and download.

/// `POST /fhir/Binary`: JSON `Binary` (base64 `data`, `securityContext`) when
/// the content type is JSON, else the raw bytes with `X-Security-Context`.
async fn upload(
    State(state): State<ApiState>,
    patient: Patient,
    headers: HeaderMap,
    Chunk(body): Chunk,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json") || value.starts_with(FHIR_JSON));
    let (context, chunk) = if is_json {
        let binary: BinaryIn = serde_json::from_slice(&body)
            .map_err(|err| ApiError::bad_request(json_problem(&err)))?;
        binary.check()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(binary.data.as_bytes())
            .map_err(|_| ApiError::bad_request("Binary.data is not base64"))?;
        (binary.security_context.reference, Bytes::from(bytes))
    } else {
        let context = headers
            .get(SECURITY_CONTEXT_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        (context, body)
    };
    if chunk.len() > CHUNK_BYTES_MAX {
        return Err(ApiError::too_large());
    }
    let encounter = context
        .as_deref()
        .and_then(|reference| resource::reference_id(reference, Kind::Encounter))
        .ok_or_else(|| ApiError::bad_request("securityContext must reference an Encounter"))?;
    let call = internal(&state, Kind::Encounter, encounter)?;
    let received = state.send_media(&patient.id, &call, chunk).await?;
    let body = outcome(
        "information",
        "informational",
        &format!("appended {received} bytes to the encounter's current media"),
    );
    Ok(fhir(StatusCode::ACCEPTED, &body))
}

async fn read_binary(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let recording = internal(&state, Kind::Binary, &id)?;
    let (kind, bytes) = state.play_binary(&patient.id, &recording).await?;
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

// ---------------------------------------------------------------------------
// Media.

/// Renders listing rows as `Media` resources.
fn media_views(
    state: &ApiState,
    items: &[HistoryItem],
    base: &str,
) -> Result<Vec<Value>, ApiError> {
    let refs = state.db(|db| {
        items
            .iter()
            .map(|item| {
                Ok(MediaRefs {
                    id: db.fhir_id(Kind::Media, &item.recording_id)?,
                    binary: db.fhir_id(Kind::Binary, &item.recording_id)?,
                    patient: db.fhir_id(Kind::Patient, &item.owner)?,
                    encounter: db.fhir_id(Kind::Encounter, &item.call_id)?,
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(refs
        .iter()
        .zip(items)
        .map(|(refs, item)| resource::media(refs, item, base))
        .collect())
}

async fn read_media(
    State(state): State<ApiState>,
    patient: Patient,
    Base(base): Base,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let recording = internal(&state, Kind::Media, &id)?;
    // The same access check as playback, faults included.
    let faults = state.faults();
    state.db(|db| db.playback(&patient.id, &recording, faults))?;
    let item = state
        .db(|db| db.recording_item(&recording))?
        .ok_or_else(|| ApiError::not_found("not found"))?;
    let body = media_views(&state, &[item], &base)?.remove(0);
    Ok(fhir(StatusCode::OK, &body))
}

async fn delete_media(
    State(state): State<ApiState>,
    patient: Patient,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    let recording = internal(&state, Kind::Media, &id)?;
    state.erase(&patient.id, &recording).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The parameters of a `Media` search, validated.
struct MediaSearch {
    /// `subject` or `patient`: a `Patient` logical id.
    subject: Option<String>,
    /// `encounter`: an `Encounter` logical id.
    encounter: Option<String>,
    /// `_count`.
    count: u32,
    /// `_cursor`: the paging state of a continuation (entries to skip).
    cursor: Option<u64>,
}

impl MediaSearch {
    fn parse(pairs: Vec<(String, String)>) -> Result<MediaSearch, ApiError> {
        let mut search = MediaSearch {
            subject: None,
            encounter: None,
            count: COUNT_DEFAULT,
            cursor: None,
        };
        let mut seen: Vec<&'static str> = Vec::new();
        for (name, value) in pairs {
            // Parameter names are matched, never echoed.
            let key = match name.as_str() {
                "subject" | "patient" => "subject",
                "encounter" => "encounter",
                "_count" => "_count",
                "_cursor" => "_cursor",
                _ => return Err(ApiError::bad_request("unknown search parameter")),
            };
            if seen.contains(&key) {
                return Err(ApiError::bad_request("a search parameter is repeated"));
            }
            seen.push(key);
            match key {
                "subject" => {
                    let id = resource::reference_id(&value, Kind::Patient)
                        .ok_or_else(|| ApiError::bad_request("subject must reference a Patient"))?;
                    search.subject = Some(id.to_owned());
                }
                "encounter" => {
                    let id = resource::reference_id(&value, Kind::Encounter).ok_or_else(|| {
                        ApiError::bad_request("encounter must reference an Encounter")
                    })?;
                    search.encounter = Some(id.to_owned());
                }
                "_count" => {
                    search.count = value
                        .parse::<u32>()
                        .ok()
                        .filter(|count| (1..=COUNT_MAX).contains(count))
                        .ok_or_else(|| {
                            ApiError::bad_request("_count must be an integer from 1 to 100")
                        })?;
                }
                _ => {
                    search.cursor = Some(value.parse::<u64>().map_err(|_| {
                        ApiError::bad_request("_cursor must come from a next link")
                    })?);
                }
            }
        }
        Ok(search)
    }
}

/// `GET /fhir/Media`: a `Bundle` searchset of `Media`, oldest first.
async fn search_media(
    State(state): State<ApiState>,
    patient: Patient,
    Base(base): Base,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|_| ApiError::bad_request("malformed query string"))?;
    let search = MediaSearch::parse(pairs)?;
    let me = logical(&state, Kind::Patient, &patient.id)?;
    let owner = match &search.subject {
        None => patient.id.clone(),
        Some(subject) if *subject == me => patient.id.clone(),
        // `fhir-subject-unchecked`: the bug takes the parameter at its word.
        Some(subject) if state.has(Fault::FhirSubjectUnchecked) => {
            internal(&state, Kind::Patient, subject)?
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "subject must be the caller",
            ));
        }
    };
    let call = match &search.encounter {
        Some(encounter) => {
            let call = internal(&state, Kind::Encounter, encounter)?;
            state.db(|db| db.encounter(&patient.id, &call))?;
            Some(call)
        }
        None => None,
    };
    let scoped = search.subject.is_some() || search.encounter.is_some();
    let scope = match &call {
        Some(call) => Scope::Call {
            patient: &owner,
            call,
        },
        // `fhir-next-link-unscoped`: a continuation is trusted to carry the
        // search it continues; one that carries no owner lists everyone.
        None if search.cursor.is_some() && !scoped && state.has(Fault::FhirNextLinkUnscoped) => {
            Scope::Everyone
        }
        None => Scope::Patient(&owner),
    };
    let offset = search.cursor.unwrap_or(0);
    let page = state.list_recordings(&patient.id, scope, offset, search.count)?;
    let entries = media_views(&state, &page.items, &base)?;

    // The search as the links repeat it: the owner and encounter as given,
    // unless the fault drops them from the next link.
    let mut filter = String::new();
    if let Some(subject) = &search.subject {
        filter.push_str(&format!("subject=Patient/{subject}&"));
    }
    if let Some(encounter) = &search.encounter {
        filter.push_str(&format!("encounter=Encounter/{encounter}&"));
    }
    let next_filter = if state.has(Fault::FhirNextLinkUnscoped) {
        ""
    } else {
        filter.as_str()
    };
    let count = search.count;
    let mut links = vec![serde_json::json!({
        "relation": "self",
        "url": match search.cursor {
            Some(cursor) => format!("{base}/Media?{filter}_count={count}&_cursor={cursor}"),
            None => format!("{base}/Media?{filter}_count={count}"),
        },
    })];
    let next = offset.saturating_add(u64::from(count));
    if u64::try_from(page.total).is_ok_and(|total| next < total) {
        links.push(serde_json::json!({
            "relation": "next",
            "url": format!("{base}/Media?{next_filter}_count={count}&_cursor={next}"),
        }));
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|media| {
            let id = media["id"].as_str().unwrap_or_default().to_owned();
            serde_json::json!({
                "fullUrl": format!("{base}/Media/{id}"),
                "resource": media,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    });
    Ok(fhir(StatusCode::OK, &bundle))
}
