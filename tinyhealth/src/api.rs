//! The HTTP surface: routes, the session cookie, bodies, cursors and signed
//! download links. `README.md` beside this crate documents it for clients;
//! [`crate::openapi`] describes the same routes.
//!
//! Handlers take the store's one mutex briefly and never across an await.
//! Every error is an [`ApiError`] body; axum's own rejections (bad JSON, a
//! body too large, an unknown route) are turned into that shape too.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::Rng as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::error::ApiError;
use crate::fault::{Fault, FaultSet};
use crate::store::{
    self, ClipView, ConsultationView, Mode, OperationState, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX,
    Store, VisitView,
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "th_session";
/// The header naming a downloaded clip's kind (`audio` or `video`).
pub const CLIP_KIND_HEADER: &str = "x-clip-kind";
/// How long a download link stays valid, in seconds.
pub const LINK_TTL_SECS: u64 = 15 * 60;
/// Largest request body: a 1 MiB chunk in base64 inside JSON, with room.
pub const BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The data, behind one lock.
    store: Arc<Mutex<Store>>,
    /// The planted faults.
    faults: Arc<FaultSet>,
    /// The key download links are signed with; random per process.
    secret: Arc<[u8; 32]>,
    /// `http://host:port` put in absolute links; `None` takes the request's
    /// `Host` header.
    public_url: Option<Arc<str>>,
}

impl AppState {
    /// A fresh, empty service.
    pub fn new(faults: FaultSet, public_url: Option<String>) -> AppState {
        AppState {
            store: Arc::default(),
            faults: Arc::new(faults),
            secret: Arc::new(rand::rng().random()),
            public_url: public_url.map(Arc::from),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store consistent: every
        // method checks before it changes anything.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has(&self, fault: Fault) -> bool {
        self.faults.contains(fault)
    }

    /// The base for absolute links in answers to a request with `headers`.
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.to_string();
        }
        let host = headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host.len() <= 255
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    fn sign(&self, clip: &str, owner: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(self.secret.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(format!("{clip}\n{owner}\n{expires}").as_bytes());
        mac
    }
}

/// The router with every route, over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/accounts", post(sign_up))
        .route("/api/sessions", post(sign_in))
        .route("/api/sessions/current", delete(sign_out))
        .route(
            "/api/accounts/{account}",
            get(get_account).delete(erase_account),
        )
        .route(
            "/api/accounts/{account}/visits",
            get(list_visits).post(book_visit),
        )
        .route("/api/accounts/{account}/clips", get(list_clips))
        .route("/api/visits/{visit}", get(get_visit))
        .route("/api/visits/{visit}/clips", get(visit_clips))
        .route(
            "/api/visits/{visit}/consultations",
            post(start_consultation),
        )
        .route("/api/consultations/{consultation}", get(get_consultation))
        .route(
            "/api/consultations/{consultation}/video",
            post(switch_to_video),
        )
        .route(
            "/api/consultations/{consultation}/media",
            post(upload_media),
        )
        .route(
            "/api/consultations/{consultation}/end",
            post(end_consultation),
        )
        .route("/api/operations/{operation}", get(poll_operation))
        .route("/api/clips/{clip}", get(clip_metadata).delete(erase_clip))
        .route("/files/clips/{clip}", get(download))
        .route("/files/n/{number}", get(download_by_number))
        .route("/api/openapi.json", get(openapi))
        .route("/api/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Extractors.

/// The signed-in account, from the `th_session` cookie.
struct Session {
    /// The account id.
    account: String,
    /// The cookie's value.
    token: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.trim_matches('"').to_owned())
            .ok_or_else(ApiError::unauthenticated)?;
        let account = state
            .store()
            .session(&token)
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Session { account, token })
    }
}

/// Parses a body as JSON, or as a form when `form_too` and the content type
/// says so.
fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    form_too: bool,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "invalid_body",
                "the body is not a JSON object with the documented fields",
            )
        }),
        "application/x-www-form-urlencoded" if form_too => serde_urlencoded::from_bytes(body)
            .map_err(|_| {
                ApiError::invalid(
                    "invalid_body",
                    "the form does not have the documented fields",
                )
            }),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            if form_too {
                "send application/json or application/x-www-form-urlencoded"
            } else {
                "send application/json"
            },
        )),
    }
}

/// A body too large, or one that could not be read.
fn body_error(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is larger than 2 MiB",
        )
    } else {
        ApiError::invalid("invalid_body", "the body could not be read")
    }
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// Fails unless the path's account is the caller's own.
fn own_account(session: &Session, account: &str) -> Result<(), ApiError> {
    if session.account == account {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn header(value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "could not build a header",
        )
    })
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------------------
// JSON shapes.

fn reference(id: &str) -> Value {
    json!({ "ref": id })
}

fn state_word(recording: bool) -> &'static str {
    if recording { "recording" } else { "ready" }
}

fn clip_item(clip: &ClipView) -> Value {
    json!({
        "clip": { "ref": clip.id, "kind": clip.kind.word(), "state": state_word(clip.recording) },
        "visit": reference(&clip.visit),
        "consultation": reference(&clip.consultation),
        "size_bytes": clip.size_bytes,
    })
}

fn consultation_json(c: &ConsultationView) -> Value {
    json!({
        "consultation": {
            "id": c.id,
            "visit": reference(&c.visit),
            "mode": c.mode.word(),
            "state": if c.live { "live" } else { "ended" },
            "clip": reference(&c.clip),
        }
    })
}

fn visit_json(v: &VisitView) -> Value {
    json!({
        "id": v.id,
        "starts_at": v.starts_at,
        "reason": v.reason,
        "consultations": v.consultations.iter().map(|c| reference(c)).collect::<Vec<_>>(),
    })
}

/// An opaque cursor: the creation sequence number to continue after.
fn encode_cursor(after: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("th1:{after}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("th1:")?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------
// Accounts and sessions.

#[derive(Deserialize)]
struct SignUp {
    username: String,
    password: String,
    full_name: String,
}

async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let request: SignUp = parse_body(&headers, &body, true)?;
    let account =
        state
            .store()
            .sign_up(&request.username, &request.password, &request.full_name)?;
    let location = header(&format!("/api/accounts/{}", account.id))?;
    let body = json!({ "account": {
        "id": account.id,
        "username": account.username,
        "full_name": account.full_name,
    }});
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        axum::Json(body),
    )
        .into_response())
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let request: SignIn = parse_body(&headers, &body, true)?;
    let (token, account) = state
        .store()
        .sign_in(&request.username, &request.password)?;
    let cookie = header(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
    ))?;
    let body = json!({ "session": { "account": account } });
    Ok((StatusCode::OK, [(SET_COOKIE, cookie)], axum::Json(body)).into_response())
}

async fn sign_out(State(state): State<AppState>, session: Session) -> Response {
    state.store().sign_out(&session.token);
    let expired = HeaderValue::from_static("th_session=; Path=/; HttpOnly; Max-Age=0");
    (StatusCode::NO_CONTENT, [(SET_COOKIE, expired)]).into_response()
}

async fn get_account(
    State(state): State<AppState>,
    session: Session,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    let view = state
        .store()
        .account(&session.account, &account, &state.faults)?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "account": { "id": view.id, "username": view.username, "full_name": view.full_name } }),
    ))
}

async fn erase_account(
    State(state): State<AppState>,
    session: Session,
    Path(account): Path<String>,
) -> Result<StatusCode, ApiError> {
    own_account(&session, &account)?;
    state.store().erase_account(&account);
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------
// Visits and consultations.

#[derive(Deserialize)]
struct Book {
    starts_at: String,
    #[serde(default)]
    reason: String,
}

async fn book_visit(
    State(state): State<AppState>,
    session: Session,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    own_account(&session, &account)?;
    let body = body.map_err(body_error)?;
    let request: Book = parse_body(&headers, &body, false)?;
    let visit = state
        .store()
        .book(&account, &request.starts_at, &request.reason)?;
    let location = header(&format!("/api/visits/{visit}"))?;
    Ok((StatusCode::CREATED, [(LOCATION, location)]).into_response())
}

async fn list_visits(
    State(state): State<AppState>,
    session: Session,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    own_account(&session, &account)?;
    let visits = state.store().visits(&account);
    let data: Vec<Value> = visits
        .iter()
        .map(|v| json!({ "visit": visit_json(v) }))
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "data": data })))
}

async fn get_visit(
    State(state): State<AppState>,
    session: Session,
    Path(visit): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.store().visit(&session.account, &visit)?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "visit": visit_json(&view) }),
    ))
}

async fn start_consultation(
    State(state): State<AppState>,
    session: Session,
    Path(visit): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.store().start_consultation(&session.account, &visit)?;
    let location = header(&format!("/api/consultations/{}", view.id))?;
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        axum::Json(consultation_json(&view)),
    )
        .into_response())
}

async fn get_consultation(
    State(state): State<AppState>,
    session: Session,
    Path(consultation): Path<String>,
) -> Result<Response, ApiError> {
    let view = state
        .store()
        .consultation(&session.account, &consultation)?;
    Ok(json_response(StatusCode::OK, consultation_json(&view)))
}

async fn switch_to_video(
    State(state): State<AppState>,
    session: Session,
    Path(consultation): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let operation = state
        .store()
        .switch_to_video(&session.account, &consultation)?;
    let status_url = format!("{}/api/operations/{operation}", state.base_url(&headers));
    let location = header(&status_url)?;
    let body = json!({ "operation": {
        "id": operation,
        "status": "pending",
        "status_url": status_url,
    }});
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, location)],
        axum::Json(body),
    )
        .into_response())
}

async fn poll_operation(
    State(state): State<AppState>,
    session: Session,
    Path(operation): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let polled = state.store().poll(&session.account, &operation)?;
    let status_url = format!("{}/api/operations/{operation}", state.base_url(&headers));
    let body = match polled {
        OperationState::Pending => json!({ "operation": {
            "id": operation, "status": "pending", "status_url": status_url,
        }}),
        OperationState::Done(clip) => json!({ "operation": {
            "id": operation, "status": "done", "status_url": status_url,
            "result": { "clip": reference(&clip) },
        }}),
    };
    Ok(json_response(StatusCode::OK, body))
}

#[derive(Deserialize)]
struct Upload {
    data: String,
}

async fn upload_media(
    State(state): State<AppState>,
    session: Session,
    Path(consultation): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let request: Upload = parse_body(&headers, &body, false)?;
    let chunk = STANDARD
        .decode(request.data.as_bytes())
        .map_err(|_| ApiError::invalid("invalid_data", "data must be standard base64"))?;
    if chunk.is_empty() || chunk.len() > store::CHUNK_BYTES_MAX {
        return Err(ApiError::invalid(
            "invalid_data",
            "data must decode to 1 byte to 1 MiB",
        ));
    }
    let size = state
        .store()
        .append(&session.account, &consultation, &chunk)?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "received_bytes": chunk.len(), "clip_size_bytes": size }),
    ))
}

async fn end_consultation(
    State(state): State<AppState>,
    session: Session,
    Path(consultation): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.store().end(&session.account, &consultation)?;
    Ok(json_response(StatusCode::OK, consultation_json(&view)))
}

// ---------------------------------------------------------------------------
// Clips.

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_clips(
    State(state): State<AppState>,
    session: Session,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if !state.has(Fault::AccountPathTrusted) {
        own_account(&session, &account)?;
    }
    let query: PageQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::invalid("invalid_query", "the query string is malformed"))?;
    let limit = match query.limit {
        None => PAGE_LIMIT_DEFAULT,
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=PAGE_LIMIT_MAX).contains(limit))
            .ok_or(ApiError::invalid(
                "invalid_limit",
                "limit must be an integer from 1 to 100",
            ))?,
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or(ApiError::invalid(
            "invalid_cursor",
            "cursor must be a next_cursor value from an earlier page",
        ))?),
    };
    // `account-path-trusted` lists the path's account; otherwise it is the
    // caller's own (checked above).
    let page = state
        .store()
        .clip_page(&account, after, limit, &state.faults);
    let data: Vec<Value> = page.items.iter().map(clip_item).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "data": data, "next_cursor": page.next_after.map(encode_cursor) }),
    ))
}

async fn visit_clips(
    State(state): State<AppState>,
    session: Session,
    Path(visit): Path<String>,
) -> Result<Response, ApiError> {
    let clips = state
        .store()
        .visit_clips(&session.account, &visit, &state.faults)?;
    let data: Vec<Value> = clips.iter().map(clip_item).collect();
    Ok(json_response(StatusCode::OK, json!({ "data": data })))
}

async fn clip_metadata(
    State(state): State<AppState>,
    session: Session,
    Path(clip): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = state.store().clip(&session.account, &clip)?;
    let base = state.base_url(&headers);
    let expires = now_secs().saturating_add(LINK_TTL_SECS);
    let download_url = if state.has(Fault::DownloadLinkUnsigned) {
        // The bug: the link names the clip by its number within the account,
        // which the session-less download endpoint cannot tell apart.
        format!("{base}/files/n/{}", view.number)
    } else {
        let signature = hex::encode(
            state
                .sign(&view.id, &view.owner, expires)
                .finalize()
                .into_bytes(),
        );
        format!(
            "{base}/files/clips/{}?expires={expires}&sig={signature}",
            view.id
        )
    };
    let body = json!({
        "clip": {
            "ref": view.id,
            "kind": view.kind.word(),
            "state": state_word(view.recording),
            "size_bytes": view.size_bytes,
            "visit": reference(&view.visit),
            "consultation": reference(&view.consultation),
        },
        "download_url": download_url,
        "expires_at": expires,
    });
    Ok(json_response(StatusCode::OK, body))
}

async fn erase_clip(
    State(state): State<AppState>,
    session: Session,
    Path(clip): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store().erase_clip(&session.account, &clip)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LinkQuery {
    expires: Option<u64>,
    sig: Option<String>,
}

fn media_response(kind: Mode, bytes: Vec<u8>) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (CONTENT_DISPOSITION, HeaderValue::from_static("attachment")),
            (CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
            (
                HeaderName::from_static(CLIP_KIND_HEADER),
                HeaderValue::from_static(kind.word()),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A signed download link: a bearer capability for one clip, valid until it
/// expires or the clip is erased; no session needed.
async fn download(
    State(state): State<AppState>,
    Path(clip): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let bad = ApiError::new(
        StatusCode::FORBIDDEN,
        "bad_signature",
        "the link is not valid for this clip",
    );
    let query: LinkQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| bad.clone())?;
    let (Some(expires), Some(sig)) = (query.expires, query.sig) else {
        return Err(bad);
    };
    let signature = hex::decode(sig).map_err(|_| bad.clone())?;
    let Some((owner, kind, bytes)) = state.store().media(&clip) else {
        return Err(ApiError::not_found("no such clip"));
    };
    state
        .sign(&clip, &owner, expires)
        .verify_slice(&signature)
        .map_err(|_| bad)?;
    if expires < now_secs() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "the link has expired; fetch the clip's metadata for a new one",
        ));
    }
    Ok(media_response(kind, bytes))
}

/// Only `download-link-unsigned` hands out these links; otherwise every one
/// is unknown.
async fn download_by_number(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    if !state.has(Fault::DownloadLinkUnsigned) {
        return Err(ApiError::not_found("no such file"));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| ApiError::not_found("no such file"))?;
    let (kind, bytes) = state
        .store()
        .media_by_number(number)
        .ok_or(ApiError::not_found("no such file"))?;
    Ok(media_response(kind, bytes))
}

// ---------------------------------------------------------------------------
// Service routes.

async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn health() -> Response {
    json_response(StatusCode::OK, json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}
