//! A hostile target for the tests: a small axum server that speaks the
//! reference clinic's `/v1` REST shape and misbehaves in one named way.
//!
//! It is a proxy in front of a real embedded clinic (fresh per server), so
//! everything it does not deliberately break is a correct clinic: a test
//! that plants one misbehaviour sees only that one. Every request it
//! receives is logged (method, path and query as they arrived on the wire),
//! so a test can assert what the harness sent, not only what it printed.
//!
//! The server runs on its own runtime in the test process; the harness runs
//! as the real `chaperone` binary with `--target URL`, so these tests hold
//! whichever driver interprets the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One way of breaking the clinic's promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// None: a correct clinic behind a proxy.
    Honest,
    /// Every history page is a 256 MiB body (spaces, then `{}`).
    HugeHistory,
    /// Every playback is a body that never ends.
    EndlessPlayback,
    /// Every service id (appointment, call, recording) is URL syntax:
    /// `../../x…` or `a?b#c…`, mapped back to the real id when it comes back
    /// percent-encoded.
    UrlSyntaxIds,
    /// Every history page also lists a recording of a patient outside the
    /// harness (the "victim"), created when the server starts.
    ForeignInHistory,
    /// Every successful history page lists a million recording ids.
    MillionIds,
    /// The service shows nothing: history always empty, playback always 404.
    Blind,
    /// Every successful history page is `{"items": [` (not JSON).
    GarbageJson,
    /// Every history view answers 307 to another server of ours.
    Redirect,
    /// Every end-call answers 500 (the patient who ends a call fails).
    FailingEndCall,
    /// Every history view hangs (never answers).
    HangingHistory,
    /// Every erasure (`DELETE /v1/recordings/…`) answers 403, whoever asks.
    RefusingErase,
}

/// A request as it arrived: method and the raw path-and-query.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// The path and query, exactly as received (still percent-encoded).
    pub target: String,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    mode: Misbehaviour,
    log: Mutex<Vec<Logged>>,
    /// Real id → hostile id, and back (UrlSyntaxIds).
    to_hostile: Mutex<HashMap<String, String>>,
    to_real: Mutex<HashMap<String, String>>,
    /// The recording id of the patient outside the harness (ForeignInHistory).
    victim: Mutex<Option<String>>,
    /// Where `Redirect` sends the harness; counts what reaches it.
    elsewhere: Mutex<Option<String>>,
    elsewhere_hits: Mutex<u64>,
}

/// A running hostile server; dropping it stops it and its clinic.
pub struct Hostile {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Hostile {
    /// Start a fresh clinic and the hostile proxy in front of it.
    pub fn start(mode: Misbehaviour) -> Hostile {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (url, shared) = runtime.block_on(async move {
            let clinic = clinic::start(clinic::Config {
                faults: clinic::FaultSet::default(),
                db_path: None,
            })
            .await
            .expect("clinic starts");
            let upstream = clinic.api_url();
            // The clinic lives as long as the runtime: its tasks keep serving.
            std::mem::forget(clinic);
            let shared = Arc::new(Shared {
                upstream,
                client: reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client"),
                mode,
                log: Mutex::new(Vec::new()),
                to_hostile: Mutex::new(HashMap::new()),
                to_real: Mutex::new(HashMap::new()),
                victim: Mutex::new(None),
                elsewhere: Mutex::new(None),
                elsewhere_hits: Mutex::new(0),
            });
            if mode == Misbehaviour::ForeignInHistory {
                let victim = victim_recording(&shared).await;
                *shared.victim.lock().unwrap() = Some(victim);
            }
            if mode == Misbehaviour::Redirect {
                let counter = shared.clone();
                let app = axum::Router::new().fallback(move || {
                    let counter = counter.clone();
                    async move {
                        *counter.elsewhere_hits.lock().unwrap() += 1;
                        (StatusCode::OK, "elsewhere")
                    }
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await });
                *shared.elsewhere.lock().unwrap() = Some(format!("http://{addr}"));
            }
            let app = axum::Router::new()
                .fallback(handle)
                .with_state(shared.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            (format!("http://{addr}"), shared)
        });
        Hostile {
            url,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Every request received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The victim's recording id (ForeignInHistory).
    pub fn victim(&self) -> Option<String> {
        self.shared.victim.lock().unwrap().clone()
    }

    /// Requests that reached the redirect's destination.
    pub fn elsewhere_hits(&self) -> u64 {
        *self.shared.elsewhere_hits.lock().unwrap()
    }

    /// Requests whose path is not one the clinic's API has, or whose id is not
    /// one this server handed out (or one made up from it, same shape): the
    /// harness sent an id as URL syntax.
    pub fn stray_requests(&self) -> Vec<Logged> {
        let known: Vec<String> = self
            .shared
            .to_real
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        self.log()
            .into_iter()
            .filter(|r| !is_api_request(&r.target, &known))
            .collect()
    }
}

/// Whether `target` (raw path and query) is a clinic route whose id segment,
/// percent-decoded, is one of `known` (when `known` is not empty).
fn is_api_request(target: &str, known: &[String]) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.split('/').collect();
    let id_ok = |raw: &str| {
        let id = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        // Besides ids it handed out, the harness sends ids it made up to
        // compare refusals: the same length, letters and digits swapped,
        // every other character (`.`, `/`, `?`, `#`) in place.
        let made_up = |k: &str| {
            k.len() == id.len()
                && k.chars().zip(id.chars()).all(|(a, b)| {
                    a == b || (a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric())
                })
        };
        known.is_empty() || known.iter().any(|k| *k == id || made_up(k))
    };
    match segments.as_slice() {
        ["", "healthz"] | ["", "v1", "patients"] | ["", "v1", "appointments"] => query.is_empty(),
        ["", "v1", "me", "recordings"] => query
            .split('&')
            .all(|kv| kv.starts_with("page=") || kv.starts_with("per_page=")),
        ["", "v1", "appointments", id]
        | ["", "v1", "appointments", id, "call"]
        | ["", "v1", "calls", id, "upgrade" | "media" | "end"]
        | ["", "v1", "recordings", id] => query.is_empty() && id_ok(id),
        _ => false,
    }
}

/// Register a patient outside the harness and give it one finished recording.
async fn victim_recording(shared: &Shared) -> String {
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = shared
            .client
            .post(format!("{}{path}", shared.upstream))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let patient: Value = post(
        "/v1/patients",
        None,
        serde_json::json!({"display_name": "V"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = patient["token"].as_str().unwrap().to_string();
    let appointment: Value = post(
        "/v1/appointments",
        Some(&token),
        serde_json::json!({"slot": "d1-09h", "notes": ""}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = appointment["appointment_id"].as_str().unwrap();
    let call: Value = post(
        &format!("/v1/appointments/{id}/call"),
        Some(&token),
        Value::Null,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let call_id = call["call_id"].as_str().unwrap();
    post(
        &format!("/v1/calls/{call_id}/end"),
        Some(&token),
        Value::Null,
    )
    .await
    .unwrap();
    call["recording_id"].as_str().unwrap().to_string()
}

const ID_FIELDS: [&str; 3] = ["appointment_id", "call_id", "recording_id"];

/// Replace every id field's value with its hostile twin.
fn hostile_ids(shared: &Shared, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if ID_FIELDS.contains(&key.as_str())
                    && let Value::String(real) = field
                {
                    let mut to_hostile = shared.to_hostile.lock().unwrap();
                    let n = to_hostile.len();
                    let twin = to_hostile
                        .entry(real.clone())
                        .or_insert_with(|| {
                            if n.is_multiple_of(2) {
                                format!("../../x{n}")
                            } else {
                                format!("a?b#c{n}")
                            }
                        })
                        .clone();
                    shared
                        .to_real
                        .lock()
                        .unwrap()
                        .insert(twin.clone(), real.clone());
                    *real = twin;
                } else {
                    hostile_ids(shared, field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| hostile_ids(shared, v)),
        _ => {}
    }
}

/// The path with every percent-decoded segment that is a hostile id put back
/// to the real id (re-encoding is unnecessary: real ids are URL-safe).
fn real_path(shared: &Shared, path: &str) -> String {
    let to_real = shared.to_real.lock().unwrap();
    path.split('/')
        .map(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            to_real
                .get(decoded.as_ref())
                .cloned()
                .unwrap_or_else(|| segment.to_string())
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn json_response(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |pq| pq.as_str().to_string());
    shared.log.lock().unwrap().push(Logged {
        method: method.to_string(),
        target: target.clone(),
    });
    let path = request.uri().path().to_string();
    let is_history = method == "GET" && path == "/v1/me/recordings";
    let is_playback = method == "GET" && path.starts_with("/v1/recordings/");
    let mode = shared.mode;

    if mode == Misbehaviour::Redirect && is_history {
        let to = shared.elsewhere.lock().unwrap().clone().unwrap_or_default();
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("{to}{target}")).unwrap(),
        );
        return response;
    }
    if mode == Misbehaviour::HangingHistory && is_history {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if mode == Misbehaviour::FailingEndCall && method == "POST" && path.ends_with("/end") {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"boom"}"#);
    }
    if mode == Misbehaviour::RefusingErase
        && method == "DELETE"
        && path.starts_with("/v1/recordings/")
    {
        return json_response(StatusCode::FORBIDDEN, r#"{"error":"forbidden"}"#);
    }
    if mode == Misbehaviour::Blind && is_playback {
        return json_response(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#);
    }
    if mode == Misbehaviour::EndlessPlayback
        && is_playback
        && request.headers().contains_key(header::AUTHORIZATION)
    {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let stream = futures::stream::StreamExt::map(
            futures::stream::repeat(chunk),
            Ok::<_, std::io::Error>,
        );
        let mut response = Response::new(Body::from_stream(stream));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return response;
    }

    // Forward to the real clinic.
    let forwarded_path = if mode == Misbehaviour::UrlSyntaxIds {
        real_path(&shared, &path)
    } else {
        path.clone()
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut upstream = shared.client.request(
        method.clone(),
        format!("{}{forwarded_path}{query}", shared.upstream),
    );
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = request.headers().get(&name) {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let Ok(answer) = upstream.body(body).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let Ok(bytes) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let success = status.is_success();

    if is_history && success {
        match mode {
            Misbehaviour::HugeHistory => {
                // 256 MiB of JSON whitespace, streamed: the server never holds it.
                let chunk = Bytes::from(vec![b' '; 1 << 20]);
                let stream = futures::stream::iter(
                    std::iter::repeat_n(chunk, 256)
                        .chain(std::iter::once(Bytes::from_static(b"{}")))
                        .map(Ok::<_, std::io::Error>),
                );
                return json_response(StatusCode::OK, Body::from_stream(stream));
            }
            Misbehaviour::MillionIds => {
                let items = (0..1_000_000)
                    .map(|i| format!(r#"{{"recording_id":"m{i}"}}"#))
                    .collect::<Vec<_>>()
                    .join(",");
                let body =
                    format!(r#"{{"page":1,"per_page":1000000,"total":1000000,"items":[{items}]}}"#);
                return json_response(StatusCode::OK, body);
            }
            Misbehaviour::Blind => {
                return json_response(
                    StatusCode::OK,
                    r#"{"page":1,"per_page":10,"total":0,"items":[]}"#,
                );
            }
            Misbehaviour::GarbageJson => {
                return json_response(StatusCode::OK, r#"{"items": ["#);
            }
            Misbehaviour::ForeignInHistory => {
                if let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) {
                    let victim = shared.victim.lock().unwrap().clone().unwrap_or_default();
                    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
                        items.push(serde_json::json!({ "recording_id": victim }));
                    }
                    return json_response(StatusCode::OK, value.to_string());
                }
            }
            _ => {}
        }
    }
    if mode == Misbehaviour::UrlSyntaxIds
        && let Ok(mut value) = serde_json::from_slice::<Value>(&bytes)
    {
        hostile_ids(&shared, &mut value);
        return json_response(status, value.to_string());
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}
