//! The driver for the reference clinic's REST API (`/v1`, JSON, bearer tokens).
//!
//! The request/response logic is written once over [`Transport`]: real HTTP
//! through reqwest (every target), or an axum [`Router`] called in-process
//! with `tower::ServiceExt::oneshot` (the fuzz targets: no sockets, a fresh
//! clinic per input). Either way the same requests go out and the same
//! statuses and bodies come back, so observations do not depend on the
//! transport.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::http::{BodyLimits, encode_path_segment, read_capped, read_capped_body};
use super::{Body, BodyKind, Driver, Observation, Seen, TargetError};
use crate::model::payload::{self, CaseTag};
use crate::model::{AppointmentId, CallId, PatientId, RecordingId, Step};

/// Drives the clinic's REST API for one case. Holds the case's tokens and the
/// mapping between service ids and aliases; nothing here is ever printed.
pub struct ClinicRest {
    transport: Transport,
    tag: CaseTag,
    tokens: HashMap<PatientId, String>,
    appointments: HashMap<AppointmentId, String>,
    calls: HashMap<CallId, String>,
    call_owners: HashMap<CallId, PatientId>,
    recordings: RecordingBook,
    /// Recordings whose creating response this driver received, with the
    /// patient who created them: all that clean-up may ever delete.
    created: Vec<(PatientId, RecordingId)>,
    limits: BodyLimits,
}

impl std::fmt::Debug for ClinicRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and ids stay private even in debug output.
        f.debug_struct("ClinicRest")
            .field("patients", &self.tokens.len())
            .field("recordings", &self.recordings.len())
            .finish_non_exhaustive()
    }
}

/// The mapping between recording service ids and aliases, shareable between
/// drivers: a soak gives every patient its own driver (its own tokens,
/// appointments and calls) and one book, so any patient can name, probe and
/// recognise any patient's recording. Cloning shares the book.
///
/// Service ids never leave it: callers get aliases, or an opaque number for an
/// id no driver has learnt yet ([`Seen::Unknown`]), which
/// [`RecordingBook::resolve`] can turn into an alias once the creating
/// response has arrived.
#[derive(Clone, Default)]
pub struct RecordingBook(Arc<Mutex<Book>>);

#[derive(Default)]
struct Book {
    ids: HashMap<RecordingId, String>,
    aliases: HashMap<String, RecordingId>,
    unknown: HashMap<String, u32>,
    unknown_ids: Vec<String>,
}

impl std::fmt::Debug for RecordingBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBook")
            .field("recordings", &self.len())
            .finish_non_exhaustive()
    }
}

impl RecordingBook {
    /// An empty book.
    pub fn new() -> RecordingBook {
        RecordingBook::default()
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every critical section is a single map update: a poisoned lock holds
        // consistent data.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many recordings have an alias.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// Whether no recording has an alias yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the service has told some driver the id of `alias`.
    pub fn knows(&self, alias: RecordingId) -> bool {
        self.lock().ids.contains_key(&alias)
    }

    /// The alias of an id first seen as [`Seen::Unknown`]`(n)`, if its
    /// creating response has arrived since.
    pub fn resolve(&self, unknown: u32) -> Option<RecordingId> {
        let book = self.lock();
        let id = book
            .unknown_ids
            .get(usize::try_from(unknown).ok()?.checked_sub(1)?)?;
        book.aliases.get(id).copied()
    }

    /// Forget the ids of `recordings` (a soak patient's, once its life is
    /// over), so the book holds what live patients can use, not the whole
    /// run. A forgotten id seen again is [`Seen::Unknown`].
    pub fn forget(&self, recordings: &[RecordingId]) {
        let mut book = self.lock();
        for alias in recordings {
            if let Some(id) = book.ids.remove(alias)
                && book.aliases.get(&id) == Some(alias)
            {
                book.aliases.remove(&id);
            }
        }
        if book.ids.capacity() > 4 * book.ids.len().max(1024) {
            book.ids.shrink_to_fit();
            book.aliases.shrink_to_fit();
        }
    }

    fn id(&self, action: &'static str, alias: RecordingId) -> Result<String, TargetError> {
        self.lock()
            .ids
            .get(&alias)
            .cloned()
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!("the service never gave an id for {alias}"),
            })
    }

    fn seen(&self, service_id: &str) -> Seen {
        let mut book = self.lock();
        if let Some(alias) = book.aliases.get(service_id) {
            return Seen::Known(*alias);
        }
        if let Some(n) = book.unknown.get(service_id) {
            return Seen::Unknown(*n);
        }
        book.unknown_ids.push(service_id.to_string());
        let n = u32::try_from(book.unknown_ids.len()).unwrap_or(u32::MAX);
        book.unknown.insert(service_id.to_string(), n);
        Seen::Unknown(n)
    }

    fn learn(&self, alias: RecordingId, service_id: &str) {
        let mut book = self.lock();
        book.ids.insert(alias, service_id.to_string());
        // A service that hands out the same id twice keeps its first alias:
        // the first owner is who the model attributes it to.
        book.aliases.entry(service_id.to_string()).or_insert(alias);
    }
}

/// The HTTP client every driver of a run shares: no proxy, no redirects, bounded waits.
pub fn http_client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .expect("building an HTTP client with static settings cannot fail")
}

/// Check that a clinic answers `GET /healthz` with 200.
pub async fn health(client: &Client, base: &str) -> Result<(), TargetError> {
    let action = "health check";
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(|e| unreachable(action, &e))?;
    match response.status().as_u16() {
        200 => Ok(()),
        status if status >= 500 => Err(TargetError::ServerError { action, status }),
        status => Err(TargetError::Garbage {
            action,
            what: format!("GET /healthz answered {status}, expected 200"),
        }),
    }
}

fn unreachable(action: &'static str, error: &reqwest::Error) -> TargetError {
    let reason = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection refused or failed".to_string()
    } else {
        // reqwest errors can carry the URL, which is harmless, but keep it short.
        "request failed".to_string()
    };
    TargetError::Unreachable { action, reason }
}

/// How the driver's requests reach the clinic.
#[derive(Clone)]
pub enum Transport {
    /// Real HTTP to the api service at `base` (`http://127.0.0.1:PORT`, no trailing slash).
    Http {
        /// The shared client.
        client: Client,
        /// Scheme, host and port.
        base: String,
    },
    /// The api service's router, called in-process (no sockets, no timeouts).
    InProcess(Router),
}

/// One request as the driver builds it, before it meets a transport.
struct Request<'a> {
    method: Method,
    path: String,
    token: Option<&'a str>,
    /// Content type and bytes; `None` sends an empty body.
    body: Option<(&'static str, Vec<u8>)>,
}

impl<'a> Request<'a> {
    fn new(method: Method, path: impl Into<String>, token: Option<&'a str>) -> Request<'a> {
        Request {
            method,
            path: path.into(),
            token,
            body: None,
        }
    }

    fn json(mut self, value: &Value) -> Request<'a> {
        self.body = Some(("application/json", value.to_string().into_bytes()));
        self
    }

    fn bytes(mut self, content_type: &'static str, bytes: Vec<u8>) -> Request<'a> {
        self.body = Some((content_type, bytes));
        self
    }
}

/// What came back: status, whether the body is JSON, the body.
struct Response {
    status: u16,
    is_json: bool,
    bytes: Vec<u8>,
}

fn is_json(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

impl Transport {
    async fn send(
        &self,
        action: &'static str,
        request: Request<'_>,
        cap: usize,
    ) -> Result<Response, TargetError> {
        match self {
            Transport::Http { client, base } => {
                let mut builder = client.request(request.method, format!("{base}{}", request.path));
                if let Some(token) = request.token {
                    builder = builder.bearer_auth(token);
                }
                if let Some((content_type, bytes)) = request.body {
                    builder = builder.header(CONTENT_TYPE, content_type).body(bytes);
                }
                let response = builder.send().await.map_err(|e| unreachable(action, &e))?;
                let status = response.status().as_u16();
                let is_json = is_json(response.headers());
                let bytes = read_capped(action, response, cap).await?;
                Ok(Response {
                    status,
                    is_json,
                    bytes,
                })
            }
            Transport::InProcess(router) => {
                let garbage = |what: &str| TargetError::Garbage {
                    action,
                    what: what.to_string(),
                };
                let mut builder = axum::http::Request::builder()
                    .method(request.method)
                    .uri(request.path);
                if let Some(token) = request.token {
                    let value = HeaderValue::from_str(&format!("Bearer {token}"))
                        .map_err(|_| garbage("a token that is not a valid header value"))?;
                    builder = builder.header(AUTHORIZATION, value);
                }
                let body = match request.body {
                    Some((content_type, bytes)) => {
                        builder = builder.header(CONTENT_TYPE, content_type);
                        axum::body::Body::from(bytes)
                    }
                    None => axum::body::Body::empty(),
                };
                let http_request = builder
                    .body(body)
                    .map_err(|_| garbage("a request path that is not a valid URI"))?;
                let response = match router.clone().oneshot(http_request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let status = response.status().as_u16();
                let is_json = is_json(response.headers());
                let bytes = read_capped_body(action, response.into_body(), cap).await?;
                Ok(Response {
                    status,
                    is_json,
                    bytes,
                })
            }
        }
    }
}

impl ClinicRest {
    /// A driver with no sessions yet, for the clinic at `base` (`http://127.0.0.1:PORT`).
    pub fn new(client: Client, base: impl Into<String>) -> ClinicRest {
        ClinicRest::sharing(client, base, RecordingBook::new())
    }

    /// A driver with no sessions yet that learns and names recordings in `book`.
    pub fn sharing(client: Client, base: impl Into<String>, book: RecordingBook) -> ClinicRest {
        ClinicRest::over_sharing(
            Transport::Http {
                client,
                base: base.into().trim_end_matches('/').to_string(),
            },
            book,
        )
    }

    /// A driver with no sessions yet that calls the clinic's api router in-process.
    pub fn in_process(router: Router) -> ClinicRest {
        ClinicRest::over(Transport::InProcess(router))
    }

    /// A driver with no sessions yet over `transport`.
    pub fn over(transport: Transport) -> ClinicRest {
        ClinicRest::over_sharing(transport, RecordingBook::new())
    }

    /// A driver with no sessions yet over `transport`, learning recordings into `book`.
    pub fn over_sharing(transport: Transport, book: RecordingBook) -> ClinicRest {
        ClinicRest {
            transport,
            tag: CaseTag::default(),
            tokens: HashMap::new(),
            appointments: HashMap::new(),
            calls: HashMap::new(),
            call_owners: HashMap::new(),
            recordings: book,
            created: Vec::new(),
            limits: BodyLimits::default(),
        }
    }

    /// The recording book this driver learns into.
    pub fn book(&self) -> &RecordingBook {
        &self.recordings
    }

    /// Read response bodies under `limits` (over a cap is a target failure).
    pub fn with_limits(mut self, limits: BodyLimits) -> ClinicRest {
        self.limits = limits;
        self
    }

    /// Send the payloads (canaries) of the case tagged `tag`.
    pub fn with_tag(mut self, tag: CaseTag) -> ClinicRest {
        self.tag = tag;
        self
    }

    fn token(&self, action: &'static str, patient: PatientId) -> Result<&str, TargetError> {
        self.tokens
            .get(&patient)
            .map(String::as_str)
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!("{patient} has no session (its registration failed)"),
            })
    }

    fn id<'a, K: std::hash::Hash + Eq + std::fmt::Display>(
        map: &'a HashMap<K, String>,
        action: &'static str,
        key: K,
    ) -> Result<&'a str, TargetError> {
        map.get(&key)
            .map(String::as_str)
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!("the service never gave an id for {key}"),
            })
    }

    async fn send(
        &self,
        action: &'static str,
        request: Request<'_>,
        success_kind: BodyKind,
    ) -> Result<(u16, Body), TargetError> {
        let Response {
            status,
            is_json,
            bytes,
        } = self
            .transport
            .send(action, request, self.limits.cap(success_kind))
            .await?;
        if status >= 500 {
            return Err(TargetError::ServerError { action, status });
        }
        let kind = if (200..300).contains(&status) && success_kind == BodyKind::Media {
            BodyKind::Media
        } else if is_json {
            BodyKind::Json
        } else {
            BodyKind::Other
        };
        Ok((status, Body { kind, bytes }))
    }
}

/// Parse a successful JSON answer and pull a string field out of it.
fn field(action: &'static str, body: &Body, name: &str) -> Result<String, TargetError> {
    let value: Value = serde_json::from_slice(&body.bytes).map_err(|_| TargetError::Garbage {
        action,
        what: "a success response that is not JSON".to_string(),
    })?;
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| TargetError::Garbage {
            action,
            what: format!("a success response without the string field `{name}`"),
        })
}

fn observation(status: u16, body: Body) -> Observation {
    Observation {
        status,
        seen: Vec::new(),
        bodies: vec![body],
    }
}

/// Most recordings one driver's clean-up erases. A case creates a few dozen
/// at most, a soak patient a few hundred; more means the driver was misused,
/// and the case is not isolated (a target failure), rather than a flood of
/// requests.
pub const CLEAN_UP_RECORDINGS_MAX: usize = 10_000;

/// The longest one driver's clean-up may take before the case counts as a
/// target failure.
pub const CLEAN_UP_TIME_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl ClinicRest {
    /// Send a clean-up request; 4xx (already ended, not yours) is fine, a
    /// 5xx or no answer means the service could not be cleaned.
    /// Whether the service accepted it (2xx).
    async fn clean_up_send(&self, request: Request<'_>) -> Result<bool, TargetError> {
        let (status, _) = self.send("clean up", request, BodyKind::Json).await?;
        Ok((200..300).contains(&status))
    }

    async fn clean_up_unbounded(&self) -> Result<(), TargetError> {
        let action = "clean up";
        // Calls first: a recording in progress cannot be erased.
        let mut calls: Vec<_> = self.calls.iter().collect();
        calls.sort();
        for (call, id) in calls {
            let Some(token) = self.call_owners.get(call).and_then(|p| self.tokens.get(p)) else {
                continue;
            };
            let path = format!("/v1/calls/{}/end", encode_path_segment(action, id)?);
            let _ended = self
                .clean_up_send(Request::new(Method::POST, path, Some(token)))
                .await?;
        }
        // Then only the recordings this driver saw created for its own
        // patients, each erased by its creator. Never what a history view
        // lists: a leaky service lists other users' recordings there.
        if self.created.len() > CLEAN_UP_RECORDINGS_MAX {
            return Err(TargetError::Missing {
                action,
                what: format!(
                    "{} recordings to erase, over the clean-up bound of {CLEAN_UP_RECORDINGS_MAX}",
                    self.created.len()
                ),
            });
        }
        let mut patients: Vec<&PatientId> = self.tokens.keys().collect();
        patients.sort();
        for (creator, recording) in &self.created {
            let id = self.recordings.id(action, *recording)?;
            let path = format!("/v1/recordings/{}", encode_path_segment(action, &id)?);
            // The creator first; a fault may have given the recording to
            // another of this case's patients, whose token then erases it.
            let tokens = std::iter::once(creator)
                .chain(patients.iter().copied().filter(|p| *p != creator))
                .filter_map(|p| self.tokens.get(p));
            for token in tokens {
                let request = Request::new(Method::DELETE, path.clone(), Some(token));
                if self.clean_up_send(request).await? {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Driver for ClinicRest {
    /// The clean-up rule (every driver must keep it): end the calls this
    /// driver started, then `DELETE` exactly the recordings whose creating
    /// response (start-call or upgrade) this driver received, each with the
    /// token of the patient who created it (then, if refused, with this
    /// case's other patients' tokens), never an id only a listing showed; at most
    /// [`CLEAN_UP_RECORDINGS_MAX`] of them and within [`CLEAN_UP_TIME_MAX`];
    /// past either bound the case is a target failure. Ids are
    /// percent-encoded; a 4xx answer is fine (already erased).
    async fn clean_up(&mut self) -> Result<(), TargetError> {
        match tokio::time::timeout(CLEAN_UP_TIME_MAX, self.clean_up_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(TargetError::Unreachable {
                action: "clean up",
                reason: format!("not finished within {}s", CLEAN_UP_TIME_MAX.as_secs()),
            }),
        }
    }

    async fn perform(&mut self, step: &Step) -> Result<Observation, TargetError> {
        let action = step.action();
        let ok = |status: u16| (200..300).contains(&status);
        match *step {
            Step::Register { patient } => {
                let request = Request::new(Method::POST, "/v1/patients", None)
                    .json(&json!({ "display_name": payload::display_name_in(self.tag, patient) }));
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let token = field(action, &body, "token")?;
                    self.tokens.insert(patient, token);
                }
                Ok(observation(status, body))
            }
            Step::Book {
                patient,
                appointment,
                slot,
            } => {
                let token = self.token(action, patient)?;
                let request =
                    Request::new(Method::POST, "/v1/appointments", Some(token)).json(&json!({
                        "slot": slot.to_string(),
                        "notes": payload::notes_in(self.tag, patient, appointment),
                    }));
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let id = field(action, &body, "appointment_id")?;
                    self.appointments.insert(appointment, id);
                }
                Ok(observation(status, body))
            }
            Step::Cancel {
                patient,
                appointment,
            } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.appointments, action, appointment)?;
                let request = Request::new(
                    Method::DELETE,
                    format!("/v1/appointments/{}", encode_path_segment(action, id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
            Step::StartCall {
                patient,
                appointment,
                call,
                recording,
            } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.appointments, action, appointment)?;
                let request = Request::new(
                    Method::POST,
                    format!("/v1/appointments/{}/call", encode_path_segment(action, id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let call_id = field(action, &body, "call_id")?;
                    let recording_id = field(action, &body, "recording_id")?;
                    self.calls.insert(call, call_id);
                    self.call_owners.insert(call, patient);
                    self.recordings.learn(recording, &recording_id);
                    self.created.push((patient, recording));
                }
                Ok(observation(status, body))
            }
            Step::Upgrade {
                patient,
                call,
                recording,
            } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.calls, action, call)?;
                let request = Request::new(
                    Method::POST,
                    format!("/v1/calls/{}/upgrade", encode_path_segment(action, id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let recording_id = field(action, &body, "recording_id")?;
                    self.recordings.learn(recording, &recording_id);
                    self.created.push((patient, recording));
                }
                Ok(observation(status, body))
            }
            Step::SendMedia {
                patient,
                call,
                chunk,
            } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.calls, action, call)?;
                let request = Request::new(
                    Method::POST,
                    format!("/v1/calls/{}/media", encode_path_segment(action, id)?),
                    Some(token),
                )
                .bytes(
                    "application/octet-stream",
                    payload::media_chunk_in(self.tag, patient, call, chunk),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
            Step::EndCall { patient, call } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.calls, action, call)?;
                let request = Request::new(
                    Method::POST,
                    format!("/v1/calls/{}/end", encode_path_segment(action, id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
            Step::ViewHistory {
                patient,
                page,
                per_page,
            } => {
                let token = self.token(action, patient)?;
                let path = format!("/v1/me/recordings?page={page}&per_page={per_page}");
                let request = Request::new(Method::GET, path, Some(token));
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                let mut seen = Vec::new();
                if ok(status) {
                    let value: Value =
                        serde_json::from_slice(&body.bytes).map_err(|_| TargetError::Garbage {
                            action,
                            what: "a history page that is not JSON".to_string(),
                        })?;
                    let items = value
                        .get("items")
                        .and_then(Value::as_array)
                        .ok_or_else(|| TargetError::Garbage {
                            action,
                            what: "a history page without an `items` array".to_string(),
                        })?;
                    for (i, item) in items.iter().enumerate() {
                        let id = item
                            .get("recording_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| TargetError::Garbage {
                                action,
                                what: format!("history item {i} without a string `recording_id`"),
                            })?;
                        let seen_as = self.recordings.seen(id);
                        seen.push((format!("items[{i}]"), seen_as));
                    }
                }
                Ok(Observation {
                    status,
                    seen,
                    bodies: vec![body],
                })
            }
            Step::Play { patient, recording } | Step::Probe { patient, recording } => {
                let token = self.token(action, patient)?;
                let id = self.recordings.id(action, recording)?;
                let request = Request::new(
                    Method::GET,
                    format!("/v1/recordings/{}", encode_path_segment(action, &id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Media).await?;
                let seen = if ok(status) {
                    vec![("media".to_string(), Seen::Known(recording))]
                } else {
                    Vec::new()
                };
                Ok(Observation {
                    status,
                    seen,
                    bodies: vec![body],
                })
            }
            Step::Erase { patient, recording } => {
                let token = self.token(action, patient)?;
                let id = self.recordings.id(action, recording)?;
                let request = Request::new(
                    Method::DELETE,
                    format!("/v1/recordings/{}", encode_path_segment(action, &id)?),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
        }
    }
}
