//! The driver for the reference clinic's REST API (`/v1`, JSON, bearer tokens).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};

use super::{Body, BodyKind, Driver, Observation, Seen, TargetError};
use crate::model::payload::{self, CaseTag};
use crate::model::{AppointmentId, CallId, PatientId, RecordingId, Step};

/// Drives the clinic's REST API for one case. Holds the case's tokens and the
/// mapping between service ids and aliases; nothing here is ever printed.
pub struct ClinicRest {
    client: Client,
    tag: CaseTag,
    base: String,
    tokens: HashMap<PatientId, String>,
    appointments: HashMap<AppointmentId, String>,
    calls: HashMap<CallId, String>,
    recordings: RecordingBook,
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

impl ClinicRest {
    /// A driver with no sessions yet, for the clinic at `base` (`http://127.0.0.1:PORT`).
    pub fn new(client: Client, base: impl Into<String>) -> ClinicRest {
        ClinicRest::sharing(client, base, RecordingBook::new())
    }

    /// A driver with no sessions yet that learns and names recordings in `book`.
    pub fn sharing(client: Client, base: impl Into<String>, book: RecordingBook) -> ClinicRest {
        ClinicRest {
            client,
            tag: CaseTag::default(),
            base: base.into().trim_end_matches('/').to_string(),
            tokens: HashMap::new(),
            appointments: HashMap::new(),
            calls: HashMap::new(),
            recordings: book,
        }
    }

    /// The recording book this driver learns into.
    pub fn book(&self) -> &RecordingBook {
        &self.recordings
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
        request: RequestBuilder,
        success_kind: BodyKind,
    ) -> Result<(u16, Body), TargetError> {
        let response = request.send().await.map_err(|e| unreachable(action, &e))?;
        let status = response.status().as_u16();
        if status >= 500 {
            return Err(TargetError::ServerError { action, status });
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable(action, &e))?
            .to_vec();
        let kind = if (200..300).contains(&status) && success_kind == BodyKind::Media {
            BodyKind::Media
        } else if is_json {
            BodyKind::Json
        } else {
            BodyKind::Other
        };
        Ok((status, Body { kind, bytes }))
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
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

impl Driver for ClinicRest {
    async fn perform(&mut self, step: &Step) -> Result<Observation, TargetError> {
        let action = step.action();
        let ok = |status: u16| (200..300).contains(&status);
        match *step {
            Step::Register { patient } => {
                let request = self
                    .request(Method::POST, "/v1/patients", None)
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
                let request = self
                    .request(Method::POST, "/v1/appointments", Some(token))
                    .json(&json!({
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
                let request = self.request(
                    Method::DELETE,
                    &format!("/v1/appointments/{id}"),
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
                let request = self.request(
                    Method::POST,
                    &format!("/v1/appointments/{id}/call"),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let call_id = field(action, &body, "call_id")?;
                    let recording_id = field(action, &body, "recording_id")?;
                    self.calls.insert(call, call_id);
                    self.recordings.learn(recording, &recording_id);
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
                let request = self.request(
                    Method::POST,
                    &format!("/v1/calls/{id}/upgrade"),
                    Some(token),
                );
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                if ok(status) {
                    let recording_id = field(action, &body, "recording_id")?;
                    self.recordings.learn(recording, &recording_id);
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
                let request = self
                    .request(Method::POST, &format!("/v1/calls/{id}/media"), Some(token))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(payload::media_chunk_in(self.tag, patient, call, chunk));
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
            Step::EndCall { patient, call } => {
                let token = self.token(action, patient)?;
                let id = Self::id(&self.calls, action, call)?;
                let request =
                    self.request(Method::POST, &format!("/v1/calls/{id}/end"), Some(token));
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
                let request = self.request(Method::GET, &path, Some(token));
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
                let request =
                    self.request(Method::GET, &format!("/v1/recordings/{id}"), Some(token));
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
                let request =
                    self.request(Method::DELETE, &format!("/v1/recordings/{id}"), Some(token));
                let (status, body) = self.send(action, request, BodyKind::Json).await?;
                Ok(observation(status, body))
            }
        }
    }
}
