//! The generic driver: performs model steps on any service by interpreting
//! its [`Binding`].
//!
//! One driver serves one case (or one soak patient): it holds the sessions,
//! the service ids of the appointments and calls it created, and learns
//! recording ids into a [`RecordingBook`] it may share with other drivers.
//! Everything a placeholder inserts into a path or query is percent-encoded;
//! every body is read with a cap; links are followed only to the target's
//! host (see [`Transport::resolve`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, LINK, SET_COOKIE};
use serde_json::Value;

use super::book::RecordingBook;
use super::http::{BodyLimits, encode_path_segment, encode_query_value};
use super::store::Store;
use super::transport::{Incoming, Outgoing, Transport};
use super::{Body, BodyKind, Driver, Existence, Fact, Observation, Seen, TargetError, body_shape};
use crate::binding::{
    Binding, BodyTemplate, BoundAction, Capture, Destination, Locator, Pagination, RefusalPolicy,
    Request, SessionPlace, Template, View,
};
use crate::model::payload::{self, CaseTag};
use crate::model::{
    Act, Action, AppointmentId, CallId, Forgery, PatientId, RecordingId, Scoped, Step,
};

/// Most pages one view step follows.
const PAGES_MAX: u8 = 32;

/// Most items one page may list before the target counts as failed.
const ITEMS_MAX: usize = 10_000;

/// Most requests a clean-up sends, and how long it may take.
const CLEAN_UP_REQUESTS_MAX: usize = 1_000;
const CLEAN_UP_TIME_MAX: Duration = Duration::from_secs(60);

/// Percent-encode a value for a query value or a form field (one value,
/// whatever characters it holds).
pub fn encode_component(value: &str) -> String {
    encode_query_value(value)
}

#[derive(Clone)]
struct Session {
    token: String,
    me: Option<String>,
    /// How the credential is forged when presented, for a [`Step::Forge`].
    forged: Option<Forgery>,
}

struct CallInfo {
    id: String,
    owner: PatientId,
    appointment: AppointmentId,
    current: Option<RecordingId>,
    ended: bool,
}

/// Drives one case against the service a binding describes.
pub struct BindingDriver {
    binding: Arc<Binding>,
    transport: Transport,
    tag: CaseTag,
    sessions: HashMap<PatientId, Session>,
    appointments: HashMap<AppointmentId, String>,
    calls: HashMap<CallId, CallInfo>,
    recordings: RecordingBook,
    /// Recordings this driver saw created, with their owner, in order: the
    /// only ones a clean-up may erase.
    created: Vec<(RecordingId, PatientId)>,
    erased: Vec<RecordingId>,
    /// Download links plays were handed, by recording.
    links: HashMap<RecordingId, String>,
    /// Recordings the service created without telling their id (the
    /// binding captures no `recording`), oldest first: learnt later from
    /// their owner's views, attributed by the media canaries they hold.
    unattributed: Vec<Pending>,
    /// How large a response body may be.
    limits: BodyLimits,
    /// The recording each call currently records into, in aliases.
    current: HashMap<CallId, RecordingId>,
    /// The media chunks sent into each recording: its owner, call and
    /// chunk numbers, to find its bytes in a store after erasure.
    sent: HashMap<RecordingId, (PatientId, CallId, Vec<u16>)>,
    /// The store the target file names, if any.
    store: Option<Store>,
}

/// A recording whose id the service has not told yet.
#[derive(Debug, Clone)]
struct Pending {
    alias: RecordingId,
    owner: PatientId,
    call: CallId,
    /// The chunk numbers the owner sent into it.
    chunks: Vec<u16>,
}

impl std::fmt::Debug for BindingDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and ids stay private even in debug output.
        f.debug_struct("BindingDriver")
            .field("binding", &self.binding.name)
            .field("patients", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// What one request brought back, with what it captured.
struct Exchange {
    status: u16,
    incoming: Incoming,
    media: bool,
}

/// The values a request's templates may use.
struct Values<'a> {
    step: &'a HashMap<&'static str, String>,
    captured: &'a HashMap<String, String>,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.captured
            .get(name)
            .cloned()
            .or_else(|| self.step.get(name).cloned())
    }
}

impl BindingDriver {
    /// A driver with no sessions yet over `transport`, learning recordings into `book`.
    pub fn new(binding: Arc<Binding>, transport: Transport, book: RecordingBook) -> BindingDriver {
        BindingDriver {
            binding,
            transport,
            tag: CaseTag::default(),
            sessions: HashMap::new(),
            appointments: HashMap::new(),
            calls: HashMap::new(),
            recordings: book,
            created: Vec::new(),
            erased: Vec::new(),
            links: HashMap::new(),
            unattributed: Vec::new(),
            limits: BodyLimits::default(),
            current: HashMap::new(),
            sent: HashMap::new(),
            store: None,
        }
    }

    /// Check erasure in `store` too: after every erasure the objects it
    /// created during the case are searched for the erased recording's bytes.
    pub fn with_store(mut self, store: Store) -> BindingDriver {
        self.store = Some(store);
        self
    }

    /// A driver over the in-process `router`, with a book of its own.
    pub fn in_process(binding: Arc<Binding>, router: axum::Router) -> BindingDriver {
        BindingDriver::new(binding, Transport::InProcess(router), RecordingBook::new())
    }

    /// Read response bodies under `limits`.
    pub fn with_limits(mut self, limits: BodyLimits) -> BindingDriver {
        self.limits = limits;
        self
    }

    /// Send the payloads (canaries) of the case tagged `tag`.
    pub fn with_tag(mut self, tag: CaseTag) -> BindingDriver {
        self.tag = tag;
        self
    }

    /// The recording book this driver learns into.
    pub fn book(&self) -> &RecordingBook {
        &self.recordings
    }

    fn session(&self, action: &'static str, patient: PatientId) -> Result<Session, TargetError> {
        self.sessions
            .get(&patient)
            .cloned()
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!("{patient} has no session (its registration failed)"),
            })
    }

    fn bound(&self, action: &'static str, which: Action) -> Result<&BoundAction, TargetError> {
        self.binding
            .action(which)
            .ok_or_else(|| TargetError::Missing {
                action,
                what: format!(
                    "the binding `{}` has no `{}`",
                    self.binding.name,
                    which.name()
                ),
            })
    }

    fn id_of<K: std::hash::Hash + Eq + std::fmt::Display + Copy>(
        map: &HashMap<K, String>,
        action: &'static str,
        key: K,
    ) -> Result<String, TargetError> {
        map.get(&key).cloned().ok_or_else(|| TargetError::Missing {
            action,
            what: format!("the service never gave an id for {key}"),
        })
    }

    fn call_id(&self, action: &'static str, call: CallId) -> Result<&CallInfo, TargetError> {
        self.calls.get(&call).ok_or_else(|| TargetError::Missing {
            action,
            what: format!("the service never gave an id for {call}"),
        })
    }

    /// Build and send one request of an action (with polling).
    async fn exchange(
        &self,
        action: &'static str,
        request: &Request,
        values: &Values<'_>,
        session: Option<&Session>,
    ) -> Result<Exchange, TargetError> {
        let missing = |what: String| TargetError::Missing { action, what };
        let lookup = |name: &str| values.get(name);
        let target = match &request.to {
            Destination::Path(t) => {
                // An id that cannot be one path segment (empty, `.`, `..`)
                // is the target's failure, never a request to another path.
                for var in t.vars() {
                    if let Some(value) = lookup(var) {
                        encode_path_segment(action, &value)?;
                    }
                }
                t.render(&lookup, &|v| encode_component(v)).ok_or_else(|| {
                    missing(format!(
                        "{}: a placeholder of the path has no value",
                        request.key
                    ))
                })?
            }
            Destination::Url(t) => {
                let url = t.render(&lookup, &|v| v.to_string()).ok_or_else(|| {
                    missing(format!(
                        "{}: a placeholder of the url has no value",
                        request.key
                    ))
                })?;
                self.transport
                    .resolve(&url, &self.binding.follow_hosts)
                    .map_err(|what| TargetError::Garbage { action, what })?
            }
        };
        let mut query = String::new();
        for (name, t) in &request.query {
            // A parameter whose placeholder has no value (the first page's cursor) is left out.
            let Some(value) = t.render(&lookup, &|v| encode_component(v)) else {
                continue;
            };
            query.push(if query.is_empty() && !target.contains('?') {
                '?'
            } else {
                '&'
            });
            query.push_str(&encode_component(name));
            query.push('=');
            query.push_str(&value);
        }
        let mut headers = Vec::new();
        for (name, t) in self.binding.headers.iter().chain(&request.headers) {
            if let Some(value) = t.render(&lookup, &|v| v.to_string()) {
                headers.push((name.clone(), value));
            }
        }
        if request.session
            && let Some(session) = session
        {
            let me = session.me.clone();
            let token = forged_token(&session.token, session.forged);
            let session_lookup = |name: &str| match name {
                "token" => Some(token.clone()),
                "me" => me.clone(),
                _ => None,
            };
            let mut value = self
                .binding
                .session_value
                .render(&session_lookup, &|v| v.to_string())
                .unwrap_or_default();
            if session.forged == Some(Forgery::Scheme) {
                value = other_scheme(&value);
            }
            if session.forged != Some(Forgery::Missing) {
                match &self.binding.session {
                    SessionPlace::Header(name) => headers.push((name.clone(), value)),
                    SessionPlace::Cookie(name) => {
                        headers.push(("Cookie".to_string(), format!("{name}={value}")))
                    }
                }
            }
        }
        let body = match &request.body {
            BodyTemplate::None => None,
            BodyTemplate::Json(v) => Some((
                "application/json".to_string(),
                render_json(v, &lookup).to_string().into_bytes(),
            )),
            BodyTemplate::Form(fields) => {
                let mut text = String::new();
                for (name, t) in fields {
                    let Some(value) = t.render(&lookup, &|v| encode_component(v)) else {
                        continue;
                    };
                    if !text.is_empty() {
                        text.push('&');
                    }
                    text.push_str(&encode_component(name));
                    text.push('=');
                    text.push_str(&value);
                }
                Some((
                    "application/x-www-form-urlencoded".to_string(),
                    text.into_bytes(),
                ))
            }
            BodyTemplate::Text(t, content_type) => Some((
                content_type.clone(),
                t.render(&lookup, &|v| v.to_string())
                    .ok_or_else(|| {
                        missing(format!(
                            "{}: a placeholder of the body has no value",
                            request.key
                        ))
                    })?
                    .into_bytes(),
            )),
            BodyTemplate::Media(content_type) => {
                let bytes = values
                    .step
                    .get("media_base64")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .ok_or_else(|| {
                        missing(format!("{}: `{{media}}` outside send-media", request.key))
                    })?;
                Some((content_type.clone(), bytes))
            }
        };
        let cap = self.limits.cap(if request.media {
            BodyKind::Media
        } else {
            BodyKind::Json
        });
        let mut incoming = self
            .transport
            .send(
                action,
                Outgoing {
                    method: request.method.clone(),
                    target: format!("{target}{query}"),
                    headers: headers.clone(),
                    body,
                    cap,
                },
            )
            .await?;
        if let Some(poll) = &request.poll {
            let mut polls = 0;
            // Poll while the operation is pending, or answered success but
            // not yet done; any other answer (a refusal, a server error) is
            // the request's answer as it stands.
            loop {
                let pending = poll.pending.contains(&incoming.status);
                let success = request.is_success(incoming.status);
                if !pending && (!success || until_holds(poll, &incoming)) {
                    break;
                }
                polls += 1;
                if polls > poll.attempts {
                    return Err(TargetError::Garbage {
                        action,
                        what: format!(
                            "{}: still not done after {} polls",
                            request.key, poll.attempts
                        ),
                    });
                }
                let url = extract(&poll.url, &incoming).ok_or_else(|| TargetError::Garbage {
                    action,
                    what: format!(
                        "{}: the answer to poll has no status URL where `poll.url` says",
                        request.key
                    ),
                })?;
                let to = self
                    .transport
                    .resolve(&url, &self.binding.follow_hosts)
                    .map_err(|what| TargetError::Garbage { action, what })?;
                tokio::time::sleep(Duration::from_millis(poll.interval_ms)).await;
                let session_headers: Vec<(String, String)> = headers
                    .iter()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
                    .cloned()
                    .collect();
                incoming = self
                    .transport
                    .send(
                        action,
                        Outgoing {
                            method: reqwest::Method::GET,
                            target: to,
                            headers: session_headers,
                            body: None,
                            cap,
                        },
                    )
                    .await?;
            }
        }
        if incoming.status >= 500 {
            return Err(TargetError::ServerError {
                action,
                status: incoming.status,
            });
        }
        Ok(Exchange {
            status: incoming.status,
            media: request.media,
            incoming,
        })
    }

    /// Perform a bound action's requests in order (with its retries).
    /// Returns the observation (status, bodies) and what was captured.
    async fn run_action(
        &self,
        action: &'static str,
        bound: &BoundAction,
        step_values: &HashMap<&'static str, String>,
        session: Option<&Session>,
    ) -> Result<(Observation, HashMap<String, String>, bool), TargetError> {
        let attempts = bound.retry.as_ref().map_or(1, |(_, n)| *n);
        let mut last = None;
        for _ in 0..attempts {
            let mut captured: HashMap<String, String> = HashMap::new();
            let mut bodies = Vec::new();
            let mut status = 0;
            let mut ok = true;
            let mut session = session.cloned();
            for request in &bound.requests {
                let values = Values {
                    step: step_values,
                    captured: &captured,
                };
                let exchange = self
                    .exchange(action, request, &values, session.as_ref())
                    .await?;
                status = exchange.status;
                let success = request.is_success(status);
                if !success && (200..300).contains(&status) {
                    // Not what the binding promised, yet not a refusal either.
                    return Err(TargetError::Garbage {
                        action,
                        what: format!(
                            "{}: answered {status}, which the binding does not list as a success",
                            request.key
                        ),
                    });
                }
                bodies.push(body_of(&exchange, success));
                if !success {
                    ok = false;
                    break;
                }
                for (name, capture) in &request.captures {
                    let value = extract(capture, &exchange.incoming).ok_or_else(|| {
                        TargetError::Garbage {
                            action,
                            what: describe_missing(&request.key, name, capture, &exchange.incoming),
                        }
                    })?;
                    captured.insert(name.clone(), value);
                }
                // A registration that captured its token uses it from now on.
                if let Some(token) = captured.get("token") {
                    session = Some(Session {
                        token: token.clone(),
                        me: captured.get("me").cloned(),
                        forged: None,
                    });
                }
            }
            let retry = bound
                .retry
                .as_ref()
                .is_some_and(|(statuses, _)| statuses.contains(&status));
            last = Some((
                Observation {
                    status,
                    seen: Vec::new(),
                    bodies,
                    existence: None,
                    facts: Vec::new(),
                },
                captured,
                ok,
            ));
            if !retry {
                break;
            }
        }
        Ok(last.expect("at least one attempt"))
    }

    fn values(&self, patient: PatientId) -> HashMap<&'static str, String> {
        let mut v = HashMap::new();
        if let Some(s) = self.sessions.get(&patient) {
            v.insert("token", s.token.clone());
            if let Some(me) = &s.me {
                v.insert("me", me.clone());
            }
        }
        v
    }

    /// The media chunks sent into `recording` and into no other recording
    /// of its call that is still there: bytes that, found in a store after
    /// its erasure, can only be its own.
    fn chunks_only_in(&self, recording: RecordingId) -> Vec<Vec<u8>> {
        let Some((owner, call, chunks)) = self.sent.get(&recording) else {
            return Vec::new();
        };
        chunks
            .iter()
            .filter(|n| {
                !self.sent.iter().any(|(r, (_, c, others))| {
                    *r != recording && c == call && !self.erased.contains(r) && others.contains(n)
                })
            })
            .map(|n| payload::media_chunk_in(self.tag, *owner, *call, *n))
            .collect()
    }

    fn learn_recording(
        &mut self,
        alias: RecordingId,
        owner: PatientId,
        call: CallId,
        captured: &HashMap<String, String>,
    ) {
        self.current.insert(call, alias);
        match captured.get("recording") {
            Some(id) => {
                self.recordings.learn(alias, id);
                self.created.push((alias, owner));
            }
            None => self.unattributed.push(Pending {
                alias,
                owner,
                call,
                chunks: Vec::new(),
            }),
        }
    }

    /// The service id of `recording`; for a recording whose id the service
    /// never returned, its owner's whole-list view is read first (up to
    /// [`PAGES_MAX`] pages of 100) to learn it. Those lookups are not judged.
    async fn recording_id(
        &mut self,
        action: &'static str,
        recording: RecordingId,
    ) -> Result<String, TargetError> {
        if let Ok(id) = self.recordings.id(action, recording) {
            return Ok(id);
        }
        let owner = self
            .unattributed
            .iter()
            .find(|p| p.alias == recording)
            .map(|p| p.owner);
        let view = self
            .binding
            .views
            .iter()
            .find(|v| v.spec.scope.is_none())
            .cloned();
        if let (Some(owner), Some(view)) = (owner, view)
            && let Ok(session) = self.session(action, owner)
        {
            let pages = if view.spec.paged { PAGES_MAX } else { 1 };
            for page in 1..=pages {
                let step = Step::View {
                    patient: owner,
                    view: view.spec.name,
                    of: None,
                    subject: None,
                    page,
                    per_page: 100,
                };
                let values = self.values(owner);
                let observation = self.view(&step, &view, &session, values, page, 100).await?;
                if self.recordings.knows(recording) || observation.seen.is_empty() {
                    break;
                }
            }
        }
        self.recordings.id(action, recording)
    }

    /// Learn the ids a view shows that are not known yet, for a binding
    /// whose service does not return recording ids at creation: fetch each
    /// with the viewer's own session and read the media canaries in it. An
    /// id is attributed to one of the viewer's own unattributed recordings
    /// only if its bytes carry the viewer's canary for that call and exactly
    /// the chunks sent into it (or carry no canary and the viewer has an
    /// empty unattributed recording, oldest first); anything else stays
    /// unknown and is judged as a phantom. Returns the bodies fetched, for
    /// the content oracle.
    async fn attribute(
        &mut self,
        viewer: PatientId,
        session: &Session,
        ids: &[String],
    ) -> Result<Vec<Body>, TargetError> {
        let mut bodies = Vec::new();
        let Some(play) = self.binding.action(Action::Play).cloned() else {
            return Ok(bodies);
        };
        for id in ids {
            if !self.unattributed.iter().any(|p| p.owner == viewer) {
                break;
            }
            if self.recordings.alias_of(id).is_some() {
                continue;
            }
            let mut values = self.values(viewer);
            values.insert("recording", id.clone());
            let (observation, _, ok) = self
                .run_action("view", &play, &values, Some(session))
                .await?;
            let media: Vec<u8> = observation
                .bodies
                .iter()
                .filter(|b| b.kind == BodyKind::Media)
                .flat_map(|b| b.bytes.iter().copied())
                .collect();
            bodies.extend(observation.bodies);
            if !ok {
                continue;
            }
            let marks = chunk_marks(&media);
            let canary = payload::canary_in(self.tag, viewer);
            if !marks.iter().all(|(_, _, c)| *c == canary) {
                continue;
            }
            let mut sent: Vec<u16> = marks.iter().map(|(n, _, _)| *n).collect();
            sent.sort_unstable();
            let call = marks.first().map(|(_, c, _)| *c);
            let found = self.unattributed.iter().position(|p| {
                let mut chunks = p.chunks.clone();
                chunks.sort_unstable();
                p.owner == viewer
                    && call.is_none_or(|c| c == p.call && marks.iter().all(|(_, k, _)| *k == c))
                    && chunks == sent
            });
            if let Some(i) = found {
                let pending = self.unattributed.remove(i);
                self.recordings.learn(pending.alias, id);
                self.created.push((pending.alias, pending.owner));
            }
        }
        Ok(bodies)
    }

    async fn view(
        &mut self,
        step: &Step,
        view: &View,
        session: &Session,
        mut values: HashMap<&'static str, String>,
        page: u8,
        per_page: u8,
    ) -> Result<Observation, TargetError> {
        let action = "view";
        values.insert("per_page", per_page.to_string());
        values.insert("limit", per_page.to_string());
        match view.pagination {
            Pagination::Page => {
                values.insert("page", page.to_string());
            }
            Pagination::Offset => {
                let offset = u32::from(page.saturating_sub(1)) * u32::from(per_page);
                values.insert("offset", offset.to_string());
            }
            _ => {
                values.insert("page", "1".to_string());
                values.insert("offset", "0".to_string());
            }
        }
        let follows = matches!(
            view.pagination,
            Pagination::Cursor(_) | Pagination::NextUrl(_) | Pagination::LinkHeader
        );
        let pages = if follows { page.min(PAGES_MAX) } else { 1 };
        let captured = HashMap::new();
        let mut observation = Observation {
            status: 0,
            seen: Vec::new(),
            bodies: Vec::new(),
            existence: None,
            facts: Vec::new(),
        };
        let mut next_request: Option<Request> = None;
        for k in 1..=pages {
            let request = next_request.take().unwrap_or_else(|| view.request.clone());
            let exchange = self
                .exchange(
                    action,
                    &request,
                    &Values {
                        step: &values,
                        captured: &captured,
                    },
                    Some(session),
                )
                .await?;
            observation.status = exchange.status;
            let success = request.is_success(exchange.status);
            observation.bodies.push(body_of(&exchange, success));
            if !success {
                return Ok(observation);
            }
            let prefix = if k == pages {
                String::new()
            } else {
                format!("page{k}.")
            };
            let garbage = |what: String| TargetError::Garbage {
                action,
                what: format!("{}: {what}", view.request.key),
            };
            let page: Value = serde_json::from_slice(&exchange.incoming.bytes)
                .map_err(|_| garbage("a view page that is not JSON".to_string()))?;
            let listed = items(view, &page).map_err(garbage)?;
            if k == 1
                && let Some(count) = view.total.as_ref().and_then(|total| total_of(total, &page))
            {
                observation
                    .facts
                    .push(("total".to_string(), Fact::Total(count)));
            }
            let ids: Vec<String> = listed.iter().map(|item| item.id.clone()).collect();
            // Only the viewer's own list, not a tampered one, can teach ids.
            if step_subject(step).is_none() {
                let fetched = self.attribute(step.patient(), session, &ids).await?;
                observation.bodies.extend(fetched);
            }
            for (i, item) in listed.iter().enumerate() {
                let field = format!("{prefix}items[{i}]");
                let recording = self.recordings.seen(&item.id);
                if let Some(video) = item.video {
                    observation
                        .facts
                        .push((format!("{field}.kind"), Fact::Kind { recording, video }));
                }
                if let Some(id) = &item.call {
                    let call = self
                        .calls
                        .iter()
                        .find(|(_, info)| info.id == *id)
                        .map(|(alias, _)| *alias);
                    observation
                        .facts
                        .push((format!("{field}.call"), Fact::Call { recording, call }));
                }
                if let Some(id) = &item.appointment {
                    let appointment = self
                        .appointments
                        .iter()
                        .find(|(_, known)| *known == id)
                        .map(|(alias, _)| *alias);
                    observation.facts.push((
                        format!("{field}.appointment"),
                        Fact::Appointment {
                            recording,
                            appointment,
                        },
                    ));
                }
                if let Some(bytes) = item.size {
                    observation
                        .facts
                        .push((format!("{field}.size"), Fact::Size { recording, bytes }));
                }
                if let Some(id) = &item.owner {
                    let owner = self
                        .sessions
                        .iter()
                        .find(|(_, s)| s.me.as_deref() == Some(id.as_str()))
                        .map(|(alias, _)| *alias);
                    observation
                        .facts
                        .push((format!("{field}.owner"), Fact::Owner { recording, owner }));
                }
                observation.seen.push((field, recording));
            }
            if k == pages {
                break;
            }
            // Where the next page is; none means this was the last page.
            let next = match &view.pagination {
                Pagination::Cursor(c) => extract(c, &exchange.incoming).map(|cursor| {
                    values.insert("cursor", cursor);
                    view.request.clone()
                }),
                Pagination::NextUrl(c) => {
                    extract(c, &exchange.incoming).map(|url| follow_request(&view.request, &url))
                }
                Pagination::LinkHeader => next_link(&exchange.incoming.headers)
                    .map(|url| follow_request(&view.request, &url)),
                _ => None,
            };
            match next {
                Some(r) => next_request = Some(r),
                // Fewer pages than asked for: the asked-for page is empty.
                None => break,
            }
        }
        Ok(observation)
    }

    /// Ask for a recording by id with `patient`'s session (play, or a probe).
    async fn play(
        &mut self,
        patient: PatientId,
        recording: RecordingId,
        probe: bool,
    ) -> Result<Observation, TargetError> {
        let action = if probe { "probe" } else { "play" };
        let session = self.session(action, patient)?;
        let id = self.recording_id(action, recording).await?;
        let bound = self.bound(action, Action::Play)?.clone();
        let mut values = self.values(patient);
        values.insert("recording", id);
        let (mut observation, captured, ok) = self
            .run_action(action, &bound, &values, Some(&session))
            .await?;
        if ok {
            observation
                .seen
                .push(("media".to_string(), Seen::Known(recording)));
        }
        if probe && !ok {
            observation.existence = self
                .existence(action, &bound, &values, "recording", &session, &observation)
                .await?;
        }
        if !probe && let Some(link) = captured.get("download") {
            // Remember the owner's download link: a probe tries it with
            // another session, and once the recording is erased, anyone.
            self.links.insert(recording, link.clone());
        }
        // The old link is tried when the first hop refused: by a prober when
        // the link is not a bearer capability (their session must not open
        // it), and by anyone once the recording is erased (erasure must
        // reach the bytes behind every link, not only hide a row).
        let erased = self.erased.contains(&recording);
        let capability_only = probe && !bound.link_is_capability;
        if !ok
            && (capability_only || erased)
            && let Some(link) = self.links.get(&recording).cloned()
            && let Some(last) = bound.requests.last()
        {
            let mut follow = follow_request(last, &link);
            if capability_only {
                follow.session = true;
            }
            let exchange = self
                .exchange(
                    action,
                    &follow,
                    &Values {
                        step: &values,
                        captured: &captured,
                    },
                    Some(&session),
                )
                .await?;
            let success = follow.is_success(exchange.status);
            observation.bodies.push(body_of(&exchange, success));
            if success {
                observation.status = exchange.status;
                observation
                    .seen
                    .push(("link".to_string(), Seen::Known(recording)));
            }
        }
        Ok(observation)
    }
}

fn step_subject(step: &Step) -> Option<PatientId> {
    match step {
        Step::View { subject, .. } => *subject,
        _ => None,
    }
}

/// An id of the same shape as `id` that names nothing: its last (up to) six
/// letters and digits are each replaced by another of the same class (a
/// digit by a digit, a hex letter by a hex letter), so a length or alphabet
/// check treats it as it treats a real id.
fn never_existed(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let mut changed = 0;
    for c in chars.iter_mut().rev() {
        if changed == 6 {
            break;
        }
        let replaced = match *c {
            '0'..='9' => char::from(b'0' + (*c as u8 - b'0' + 5) % 10),
            'a'..='f' => char::from(b'a' + (*c as u8 - b'a' + 3) % 6),
            'A'..='F' => char::from(b'A' + (*c as u8 - b'A' + 3) % 6),
            'g'..='z' => char::from(b'g' + (*c as u8 - b'g' + 10) % 20),
            'G'..='Z' => char::from(b'G' + (*c as u8 - b'G' + 10) % 20),
            _ => continue,
        };
        *c = replaced;
        changed += 1;
    }
    if changed == 0 {
        // Nothing alphanumeric to vary: a suffix makes it another id.
        return format!("{id}0");
    }
    chars.into_iter().collect()
}

/// The token a forged credential carries in place of `token`.
fn forged_token(token: &str, forgery: Option<Forgery>) -> String {
    match forgery {
        None | Some(Forgery::Missing) | Some(Forgery::Scheme) => token.to_string(),
        Some(Forgery::Empty) => String::new(),
        Some(Forgery::Truncated) => {
            let mut t = token.to_string();
            t.pop();
            t
        }
        Some(Forgery::Padded) => {
            // One more character of the token's own kind, so that a check
            // of length or alphabet alone does not refuse it.
            let extra = match token.chars().last() {
                Some(c) if c.is_ascii_digit() => '7',
                Some(c) if c.is_ascii_uppercase() => 'Q',
                _ => 'q',
            };
            format!("{token}{extra}")
        }
        Some(Forgery::Wildcard) => "%".to_string(),
        Some(Forgery::Glob) => "*".to_string(),
    }
}

/// A credential under another scheme: `Bearer abc` becomes `Basic abc`
/// (any other scheme becomes `Bearer`); a value with no scheme gets `Basic`.
fn other_scheme(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => format!("Basic {rest}"),
        Some((_, rest)) => format!("Bearer {rest}"),
        None => format!("Basic {value}"),
    }
}

/// The media chunk headers in `bytes` (`chunk N of C<k> <canary> `, as
/// [`payload::media_chunk_in`] writes them): chunk number, call, canary.
fn chunk_marks(bytes: &[u8]) -> Vec<(u16, CallId, String)> {
    static MARK: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    let re = MARK.get_or_init(|| {
        regex::bytes::Regex::new(r"chunk ([0-9]{1,5}) of C([0-9]{1,10}) (CNRY[A-Z0-9]{26})")
            .expect("static regex")
    });
    re.captures_iter(bytes)
        .filter_map(|c| {
            let n = std::str::from_utf8(c.get(1)?.as_bytes())
                .ok()?
                .parse()
                .ok()?;
            let call = std::str::from_utf8(c.get(2)?.as_bytes())
                .ok()?
                .parse()
                .ok()?;
            let canary = std::str::from_utf8(c.get(3)?.as_bytes()).ok()?.to_string();
            Some((n, CallId(call), canary))
        })
        .collect()
}

/// A request that fetches `url` (a link from the service) the way `base` would.
fn follow_request(base: &Request, url: &str) -> Request {
    let mut request = base.clone();
    request.method = reqwest::Method::GET;
    request.to = Destination::Url(Template {
        parts: vec![crate::binding::template::Part::Literal(url.to_string())],
    });
    request.query = Vec::new();
    request.body = BodyTemplate::None;
    request.poll = None;
    request
}

fn until_holds(poll: &crate::binding::Poll, incoming: &Incoming) -> bool {
    match &poll.until {
        None => true,
        Some((capture, equals)) => extract(capture, incoming).as_deref() == Some(equals.as_str()),
    }
}

fn body_of(exchange: &Exchange, success: bool) -> Body {
    let kind = if success && exchange.media {
        BodyKind::Media
    } else if exchange.incoming.is_json() {
        BodyKind::Json
    } else {
        BodyKind::Other
    };
    Body {
        kind,
        bytes: exchange.incoming.bytes.clone(),
    }
}

fn render_json(v: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Value {
    const NUMERIC: [&str; 7] = [
        "chunk",
        "page",
        "per_page",
        "offset",
        "limit",
        "slot_hour",
        "slot_day",
    ];
    match v {
        Value::String(s) => {
            let Ok(t) = Template::parse(s) else {
                return v.clone();
            };
            if let Some(var) = t.only_var()
                && NUMERIC.contains(&var)
                && let Some(n) = lookup(var).and_then(|x| x.parse::<u64>().ok())
            {
                return Value::from(n);
            }
            t.render(lookup, &|x| x.to_string())
                .map_or(Value::Null, Value::String)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render_json(x, lookup)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render_json(x, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn locate<'a>(locator: &Locator, value: &'a Value) -> Option<&'a Value> {
    match locator {
        Locator::Pointer(p) => value.pointer(p),
        Locator::Path(p) => p.query(value).first(),
        Locator::Header(_) | Locator::Cookie(_) => None,
    }
}

/// Take a captured value from a response.
fn extract(capture: &Capture, incoming: &Incoming) -> Option<String> {
    let raw = match &capture.at {
        Locator::Header(name) => incoming
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        Locator::Cookie(name) => incoming
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let first = c.split(';').next()?.trim();
                let (n, v) = first.split_once('=')?;
                (n.trim() == name).then(|| v.trim().to_string())
            }),
        locator => {
            let value: Value = serde_json::from_slice(&incoming.bytes).ok()?;
            locate(locator, &value).and_then(scalar)
        }
    }?;
    let value = match &capture.regex {
        None => raw,
        Some(re) => {
            let caps = re.captures(&raw)?;
            caps.get(1).or_else(|| caps.get(0))?.as_str().to_string()
        }
    };
    (!value.is_empty()).then_some(value)
}

/// A precise reason a capture failed, naming only keys, never values.
fn describe_missing(key: &str, name: &str, capture: &Capture, incoming: &Incoming) -> String {
    match &capture.at {
        Locator::Header(h) => format!(
            "{key}: capture `{name}`: the response has no `{h}` header (or `regex` did not match)"
        ),
        Locator::Cookie(c) => format!("{key}: capture `{name}`: the response sets no cookie `{c}`"),
        Locator::Pointer(p) => {
            let Ok(value) = serde_json::from_slice::<Value>(&incoming.bytes) else {
                return format!("{key}: capture `{name}`: the response is not JSON");
            };
            let keys = value
                .as_object()
                .map(|o| o.keys().take(12).cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "no keys (not an object)".to_string());
            format!(
                "{key}: capture `{name}`: {p} is not a string or number in the response; it has: {keys}"
            )
        }
        Locator::Path(_) => format!(
            "{key}: capture `{name}`: the JSONPath matches nothing that is a string or number"
        ),
    }
}

/// One item of a view page: its recording id and the fields the binding maps.
struct Item {
    id: String,
    /// Its kind, if mapped: video or audio.
    video: Option<bool>,
    /// Its call id, if mapped.
    call: Option<String>,
    /// Its appointment id, if mapped.
    appointment: Option<String>,
    /// Its size in bytes, if mapped.
    size: Option<u64>,
    /// Its owner's id, if mapped.
    owner: Option<String>,
}

/// The items a view page (`value`, its parsed body) lists.
fn items(view: &View, value: &Value) -> Result<Vec<Item>, String> {
    let list: Vec<&Value> = match &view.items {
        Locator::Pointer(p) => match value.pointer(p) {
            Some(Value::Array(a)) => a.iter().collect(),
            // An empty result may leave the list out (a FHIR Bundle with no `entry`).
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(format!("{p} is not an array")),
        },
        Locator::Path(p) => {
            let nodes = p.query(value).all();
            match nodes.as_slice() {
                [Value::Array(a)] => a.iter().collect(),
                other => other.to_vec(),
            }
        }
        _ => Vec::new(),
    };
    if list.len() > ITEMS_MAX {
        return Err(format!("a page of more than {ITEMS_MAX} items"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let id = locate(&view.id, item)
            .and_then(scalar)
            .ok_or_else(|| format!("item {i} has no string or number where `id` says"))?;
        let id = match &view.id_regex {
            None => id,
            Some(re) => first_group(re, &id)
                .ok_or_else(|| format!("item {i}'s id does not match `id_regex`"))?,
        };
        // A mapped field an item leaves out (or says in a form that names
        // nothing) gives no fact: there is nothing to compare.
        let video = view
            .kind
            .as_ref()
            .and_then(|kind| locate(kind, item).and_then(scalar))
            .and_then(|text| {
                let text = text.to_ascii_lowercase();
                match (text.contains("video"), text.contains("audio")) {
                    (true, false) => Some(true),
                    (false, true) => Some(false),
                    _ => None,
                }
            });
        // An id where a locator says, the part a regular expression keeps.
        let located = |field: &Option<(Locator, Option<regex::Regex>)>| {
            let (locator, regex) = field.as_ref()?;
            let raw = locate(locator, item).and_then(scalar)?;
            match regex {
                None => Some(raw),
                Some(re) => first_group(re, &raw),
            }
        };
        let call = located(&view.call);
        let appointment = view
            .appointment
            .as_ref()
            .and_then(|locator| locate(locator, item).and_then(scalar));
        let size = view
            .size
            .as_ref()
            .and_then(|locator| total_of(locator, item));
        let owner = located(&view.owner);
        out.push(Item {
            id,
            video,
            call,
            appointment,
            size,
            owner,
        });
    }
    Ok(out)
}

/// The first group of `re` in `text` (the whole match when it has none).
fn first_group(re: &regex::Regex, text: &str) -> Option<String> {
    re.captures(text)
        .and_then(|c| c.get(1).or_else(|| c.get(0)))
        .map(|m| m.as_str().to_string())
}

/// The total count a view's first page (`value`) states where `total` says,
/// if it says one.
fn total_of(total: &Locator, value: &Value) -> Option<u64> {
    locate(total, value).and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (url, params) = part.split_once(';')?;
            let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
            params
                .split(';')
                .any(|p| {
                    let p = p.trim().replace(' ', "");
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| url.to_string())
        })
}

/// Slot placeholders: the model's virtual calendar starts on 2030-01-01.
fn slot_values(values: &mut HashMap<&'static str, String>, slot: crate::model::Slot) {
    let (y, m, d) = civil_from_days(days_from_civil(2030, 1, 1) + i64::from(slot.day) - 1);
    values.insert("slot", slot.to_string());
    values.insert("slot_date", format!("{y:04}-{m:02}-{d:02}"));
    values.insert(
        "slot_start",
        format!("{y:04}-{m:02}-{d:02}T{:02}:00:00Z", slot.hour),
    );
    values.insert(
        "slot_end",
        format!("{y:04}-{m:02}-{d:02}T{:02}:00:00Z", slot.hour + 1),
    );
    values.insert("slot_hour", slot.hour.to_string());
    values.insert("slot_day", slot.day.to_string());
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Driver for BindingDriver {
    async fn perform(&mut self, step: &Step) -> Result<Observation, TargetError> {
        let action = step.action();
        let patient = step.patient();
        if let Some(store) = &mut self.store {
            store.remember_start(&self.limits).await?;
        }
        match *step {
            Step::Register { patient } => {
                let mut values = HashMap::new();
                values.insert("display_name", payload::display_name_in(self.tag, patient));
                let canary = payload::canary_in(self.tag, patient).to_ascii_lowercase();
                values.insert(
                    "email",
                    format!(
                        "{}.{canary}@patients.example",
                        patient.to_string().to_ascii_lowercase()
                    ),
                );
                values.insert("password", format!("Pw-{canary}-{}", patient.0));
                let bound = self.binding.register.clone();
                let (observation, captured, ok) =
                    self.run_action(action, &bound, &values, None).await?;
                if ok {
                    let token = captured.get("token").cloned().unwrap_or_default();
                    let me = captured.get("me").cloned();
                    if let Some(me) = &me {
                        self.recordings.learn_patient(patient, me);
                    }
                    self.sessions.insert(
                        patient,
                        Session {
                            token,
                            me,
                            forged: None,
                        },
                    );
                }
                Ok(observation)
            }
            Step::Book {
                appointment, slot, ..
            } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                slot_values(&mut values, slot);
                values.insert("notes", payload::notes_in(self.tag, patient, appointment));
                let bound = self.bound(action, Action::Book)?.clone();
                let (observation, captured, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok && let Some(id) = captured.get("appointment") {
                    self.appointments.insert(appointment, id.clone());
                }
                Ok(observation)
            }
            Step::Cancel { appointment, .. } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                values.insert(
                    "appointment",
                    Self::id_of(&self.appointments, action, appointment)?,
                );
                let bound = self.bound(action, Action::Cancel)?.clone();
                let (observation, _, _) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                Ok(observation)
            }
            Step::StartCall {
                appointment,
                call,
                recording,
                ..
            } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                values.insert(
                    "appointment",
                    Self::id_of(&self.appointments, action, appointment)?,
                );
                let bound = self.bound(action, Action::StartCall)?.clone();
                let (observation, captured, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok && let Some(id) = captured.get("call") {
                    self.calls.insert(
                        call,
                        CallInfo {
                            id: id.clone(),
                            owner: patient,
                            appointment,
                            current: captured.contains_key("recording").then_some(recording),
                            ended: false,
                        },
                    );
                    self.learn_recording(recording, patient, call, &captured);
                }
                Ok(observation)
            }
            Step::Upgrade {
                call, recording, ..
            } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                self.call_values(action, call, &mut values)?;
                let bound = self.bound(action, Action::Upgrade)?.clone();
                let (observation, captured, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok {
                    self.learn_recording(recording, patient, call, &captured);
                    if let Some(info) = self.calls.get_mut(&call) {
                        info.current = captured.contains_key("recording").then_some(recording);
                    }
                }
                Ok(observation)
            }
            Step::SendMedia { call, chunk, .. } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                self.call_values(action, call, &mut values)?;
                let bytes = payload::media_chunk_in(self.tag, patient, call, chunk);
                values.insert(
                    "media_base64",
                    base64::engine::general_purpose::STANDARD.encode(&bytes),
                );
                values.insert("chunk", chunk.to_string());
                let bound = self.bound(action, Action::SendMedia)?.clone();
                let (observation, _, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok && let Some(current) = self.current.get(&call) {
                    self.sent
                        .entry(*current)
                        .or_insert_with(|| (patient, call, Vec::new()))
                        .2
                        .push(chunk);
                    if let Some(pending) =
                        self.unattributed.iter_mut().find(|p| p.alias == *current)
                    {
                        pending.chunks.push(chunk);
                    }
                }
                Ok(observation)
            }
            Step::EndCall { call, .. } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                self.call_values(action, call, &mut values)?;
                let bound = self.bound(action, Action::EndCall)?.clone();
                let (observation, _, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok && let Some(info) = self.calls.get_mut(&call) {
                    info.ended = true;
                }
                Ok(observation)
            }
            Step::View {
                view,
                of,
                subject,
                page,
                per_page,
                ..
            } => {
                let session = self.session(action, patient)?;
                let bound =
                    self.binding
                        .view(view)
                        .cloned()
                        .ok_or_else(|| TargetError::Missing {
                            action,
                            what: format!(
                                "the binding `{}` has no view `{view}`",
                                self.binding.name
                            ),
                        })?;
                let mut values = self.values(patient);
                match of {
                    Some(Scoped::Appointment(a)) => {
                        values.insert("appointment", Self::id_of(&self.appointments, action, a)?);
                    }
                    Some(Scoped::Call(c)) => {
                        values.insert("call", self.call_id(action, c)?.id.clone());
                    }
                    None => {}
                }
                if let Some(other) = subject {
                    let id =
                        self.recordings
                            .patient_id(other)
                            .ok_or_else(|| TargetError::Missing {
                                action,
                                what: format!("the service never gave {other}'s own id"),
                            })?;
                    values.insert("me", id);
                }
                self.view(step, &bound, &session, values, page, per_page)
                    .await
            }
            Step::Play { recording, .. } => self.play(patient, recording, false).await,
            Step::Probe { recording, .. } => self.play(patient, recording, true).await,
            Step::Erase { recording, .. } => {
                let session = self.session(action, patient)?;
                let mut values = self.values(patient);
                values.insert("recording", self.recording_id(action, recording).await?);
                let bound = self.bound(action, Action::Erase)?.clone();
                let (mut observation, _, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok {
                    self.erased.push(recording);
                    let needles = self.chunks_only_in(recording);
                    if let Some(store) = &self.store
                        && store.holds(&needles, &self.limits).await?
                    {
                        observation
                            .seen
                            .push(("store".to_string(), Seen::Known(recording)));
                    }
                }
                Ok(observation)
            }
            Step::Trespass { act, .. } => self.trespass(patient, act).await,
            Step::Forge { forgery, .. } => {
                let mut session = self.session(action, patient)?;
                session.forged = Some(forgery);
                let spec = self
                    .binding
                    .caps
                    .views()
                    .find(|v| v.scope.is_none())
                    .ok_or_else(|| TargetError::Missing {
                        action,
                        what: format!("the binding `{}` has no unscoped view", self.binding.name),
                    })?;
                let bound =
                    self.binding
                        .view(spec.name)
                        .cloned()
                        .ok_or_else(|| TargetError::Missing {
                            action,
                            what: format!(
                                "the binding `{}` has no view `{}`",
                                self.binding.name, spec.name
                            ),
                        })?;
                let values = self.values(patient);
                self.view(step, &bound, &session, values, 1, 10).await
            }
            Step::EraseAccount { .. } => {
                let session = self.session(action, patient)?;
                let values = self.values(patient);
                let bound = self.bound(action, Action::EraseAccount)?.clone();
                let (observation, _, ok) = self
                    .run_action(action, &bound, &values, Some(&session))
                    .await?;
                if ok {
                    let gone: Vec<RecordingId> = self
                        .created
                        .iter()
                        .filter(|(_, owner)| *owner == patient)
                        .map(|(r, _)| *r)
                        .collect();
                    self.erased.extend(gone);
                }
                Ok(observation)
            }
        }
    }

    async fn clean_up(&mut self) -> Result<(), TargetError> {
        let action = "clean up";
        let started = Instant::now();
        let mut sent = 0usize;
        let within_bounds =
            |sent: usize| sent < CLEAN_UP_REQUESTS_MAX && started.elapsed() < CLEAN_UP_TIME_MAX;
        // Calls first: a recording in progress cannot be erased.
        let mut calls: Vec<(CallId, PatientId)> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.ended)
            .map(|(id, c)| (*id, c.owner))
            .collect();
        calls.sort();
        if let Some(bound) = self.binding.action(Action::EndCall).cloned() {
            for (call, owner) in calls {
                if !within_bounds(sent) {
                    return Err(TargetError::Missing {
                        action,
                        what: "clean-up ran out of its request or time budget".to_string(),
                    });
                }
                let Ok(session) = self.session(action, owner) else {
                    continue;
                };
                let mut values = self.values(owner);
                self.call_values(action, call, &mut values)?;
                sent += bound.requests.len();
                self.run_action(action, &bound, &values, Some(&session))
                    .await?;
            }
        }
        // Then the recordings this case saw created for its own patients, and
        // nothing else: never what the service lists, which may be anyone's.
        // The creator's session first; if refused (a fault may have handed
        // the recording to another of the case's patients), the others'.
        if let Some(bound) = self.binding.action(Action::Erase).cloned() {
            let created = self.created.clone();
            let mut patients: Vec<PatientId> = self.sessions.keys().copied().collect();
            patients.sort();
            for (recording, owner) in created {
                if self.erased.contains(&recording) {
                    continue;
                }
                let Ok(id) = self.recordings.id(action, recording) else {
                    continue;
                };
                let order =
                    std::iter::once(owner).chain(patients.iter().copied().filter(|p| *p != owner));
                for who in order {
                    if !within_bounds(sent) {
                        return Err(TargetError::Missing {
                            action,
                            what: "clean-up ran out of its request or time budget".to_string(),
                        });
                    }
                    let Ok(session) = self.session(action, who) else {
                        continue;
                    };
                    let mut values = self.values(who);
                    values.insert("recording", id.clone());
                    sent += bound.requests.len();
                    let (_, _, ok) = self
                        .run_action(action, &bound, &values, Some(&session))
                        .await?;
                    if ok {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl BindingDriver {
    /// A cross-patient action: `patient`'s session, another patient's
    /// object. Nothing it answers is learnt: it should have been refused.
    async fn trespass(&mut self, patient: PatientId, act: Act) -> Result<Observation, TargetError> {
        let action = "probe";
        let session = self.session(action, patient)?;
        let mut values = self.values(patient);
        match act {
            Act::Cancel(a) | Act::StartCall(a) => {
                values.insert("appointment", Self::id_of(&self.appointments, action, a)?);
            }
            Act::Upgrade(c) | Act::EndCall(c) => self.call_values(action, c, &mut values)?,
            Act::SendMedia(c) => {
                self.call_values(action, c, &mut values)?;
                // The trespasser's own canary, chunk 0 (the model's chunks
                // start at 1): were it accepted, the owner's recording
                // would carry the trespasser's bytes.
                let bytes = payload::media_chunk_in(self.tag, patient, c, 0);
                values.insert(
                    "media_base64",
                    base64::engine::general_purpose::STANDARD.encode(&bytes),
                );
                values.insert("chunk", "0".to_string());
            }
            Act::Erase(r) => {
                values.insert("recording", self.recording_id(action, r).await?);
            }
        }
        let bound = self.bound(action, act.action())?.clone();
        let (mut observation, _, ok) = self
            .run_action(action, &bound, &values, Some(&session))
            .await?;
        if !ok {
            let key = match act {
                Act::Cancel(_) | Act::StartCall(_) => "appointment",
                Act::Upgrade(_) | Act::SendMedia(_) | Act::EndCall(_) => "call",
                Act::Erase(_) => "recording",
            };
            observation.existence = self
                .existence(action, &bound, &values, key, &session, &observation)
                .await?;
        }
        Ok(observation)
    }

    /// The refusal of the same request about an id that never existed, next
    /// to `refused` (the refusal of the foreign object), when the binding's
    /// refusal policy says the two must not differ. `None` when the policy is
    /// `forbidden`, or when the made-up id was answered with success or a
    /// server error (it named something after all, or the service cannot
    /// say): nothing to compare.
    async fn existence(
        &self,
        action: &'static str,
        bound: &BoundAction,
        values: &HashMap<&'static str, String>,
        key: &'static str,
        session: &Session,
        refused: &Observation,
    ) -> Result<Option<Existence>, TargetError> {
        if self.binding.refusal != RefusalPolicy::Indistinguishable {
            return Ok(None);
        }
        let Some(id) = values.get(key) else {
            return Ok(None);
        };
        let mut values = values.clone();
        values.insert(key, never_existed(id));
        let unknown = match self.run_action(action, bound, &values, Some(session)).await {
            Ok((observation, _, false)) => observation,
            Ok(_) | Err(TargetError::ServerError { .. } | TargetError::Garbage { .. }) => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        Ok(Some(Existence {
            foreign: (refused.status, body_shape(refused.bodies.last())),
            unknown: (unknown.status, body_shape(unknown.bodies.last())),
        }))
    }

    fn call_values(
        &self,
        action: &'static str,
        call: CallId,
        values: &mut HashMap<&'static str, String>,
    ) -> Result<(), TargetError> {
        let info = self.call_id(action, call)?;
        values.insert("call", info.id.clone());
        if let Some(a) = self.appointments.get(&info.appointment) {
            values.insert("appointment", a.clone());
        }
        if let Some(r) = info.current
            && let Ok(id) = self.recordings.id(action, r)
        {
            values.insert("recording", id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_credentials_differ_from_the_real_one() {
        let token = "tok_9aZ";
        let forged: Vec<String> = Forgery::ALL
            .into_iter()
            .filter(|f| !matches!(f, Forgery::Missing | Forgery::Scheme))
            .map(|f| forged_token(token, Some(f)))
            .collect();
        assert_eq!(forged, ["", "tok_9a", "tok_9aZQ", "%", "*"]);
        assert_eq!(forged_token(token, None), token);
        assert_eq!(other_scheme("Bearer abc"), "Basic abc");
        assert_eq!(other_scheme("Token abc"), "Bearer abc");
        assert_eq!(other_scheme("abc"), "Basic abc");
    }

    #[test]
    fn refusal_shapes_name_keys_not_values() {
        let body = |text: &str| Body {
            kind: BodyKind::Json,
            bytes: text.as_bytes().to_vec(),
        };
        let a = body(r#"{"error":"recording r1 not found","status":404}"#);
        let b = body(r#"{"status":404,"error":"no such thing"}"#);
        assert_eq!(body_shape(Some(&a)), "{error,status}");
        assert_eq!(body_shape(Some(&a)), body_shape(Some(&b)));
        assert_eq!(body_shape(Some(&body(r#"{"error":"x"}"#))), "{error}");
        assert_eq!(body_shape(Some(&body("  "))), "empty");
        assert_eq!(body_shape(None), "empty");
        assert_eq!(body_shape(Some(&body("<html>"))), "other");
        assert_eq!(body_shape(Some(&body("[1]"))), "json");
    }

    #[test]
    fn made_up_ids_keep_the_shape_and_differ() {
        for id in [
            "pat_01HZX3",
            "42",
            "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "ABC-z",
            "--",
        ] {
            let made = never_existed(id);
            assert_ne!(made, id);
            if id != "--" {
                assert_eq!(made.len(), id.len());
                for (a, b) in id.chars().zip(made.chars()) {
                    assert_eq!(a.is_ascii_digit(), b.is_ascii_digit(), "{id} -> {made}");
                    assert_eq!(a.is_ascii_alphanumeric(), b.is_ascii_alphanumeric());
                }
            }
        }
    }

    #[test]
    fn ids_are_data_not_url_syntax() {
        // Goal: a hostile id cannot steer a request to another path.
        assert_eq!(encode_component("../../x"), "..%2F..%2Fx");
        assert_eq!(encode_component("a?b#c"), "a%3Fb%23c");
        assert_eq!(encode_component("Az09-._~"), "Az09-._~");
    }

    #[test]
    fn slots_map_onto_a_calendar() {
        let mut v = HashMap::new();
        slot_values(&mut v, crate::model::Slot { day: 32, hour: 9 });
        assert_eq!(v["slot_start"], "2030-02-01T09:00:00Z");
        assert_eq!(v["slot_date"], "2030-02-01");
        assert_eq!(v["slot"], "d32-09h");
    }

    #[test]
    fn link_headers_give_the_next_url() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "</a?page=1>; rel=\"prev\", </a?page=3>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/a?page=3"));
    }
}
