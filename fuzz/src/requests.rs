//! The `clinic_requests` target: arbitrary HTTP requests against a clinic
//! where two patients have bookings, calls and recordings.
//!
//! **Input format** (text, so seeds, the dictionary and crash artifacts are
//! readable): up to [`REQUESTS_MAX`] requests separated by a line `===`.
//! Each request is
//!
//! ```text
//! P1 GET /v1/recordings/@r4?x=1
//! content-type: application/json
//!
//! {"body": "anything"}
//! ```
//!
//! The first word says whose session sends it: `P1` or `P2` (their bearer
//! token, unless the request carries its own `authorization` header), `-`
//! (none) or `X` (a well-formed token nobody holds). Then the method (any
//! token) and the request target. Header lines follow up to an empty line;
//! the rest is the body. Placeholders are replaced everywhere with the real
//! values of the setup: `@t1 @t2` tokens, `@p1 @p2` patient ids, `@a1..@a4`
//! appointments, `@c1..@c4` calls, `@r1..@r6` recordings (the first half of
//! each range is P1's). A request that is not valid HTTP is skipped.
//!
//! **Setup** (per input, on a clinic reset as if just started): each patient registers, books, calls,
//! sends media, upgrades to video, sends media, ends the call, books again,
//! starts a second call and sends media into it. Every display name, note
//! and media chunk carries the patient's canary.
//!
//! **Properties**, for each response (the requester is everyone whose token
//! occurs anywhere in the request):
//! 1. never a 5xx (and never a panic);
//! 2. no canary of a patient other than the requester, unless some earlier
//!    or current request of the input carried that canary itself (echoes);
//! 3. no id or token of another patient's objects in the body or headers,
//!    unless a request of the input carried it (echoes);
//! 4. never a 2xx for a request whose path names another patient's object;
//! 5. without any patient's token, a 2xx only from `/v1/patients`,
//!    `/healthz` or `/openapi.json`.

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use chaperone::model::{AppointmentId, CallId, PatientId, payload};
use chaperone::oracle::{Canaries, CanaryOwner};
use clinic::FaultSet;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The most requests one input sends; later ones are ignored.
pub const REQUESTS_MAX: usize = 8;

/// The most bytes of a response body read; the clinic's are far smaller.
const RESPONSE_BYTES_MAX: usize = 4 << 20;

/// A token no patient holds, in the clinic's token shape.
const STRANGER_TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One patient's objects after the setup. Never printed.
struct Patient {
    id: String,
    token: String,
    /// The appointment whose call ended, then the one with an active call.
    appointments: [String; 2],
    /// The ended call (upgraded to video), then the active audio call.
    calls: [String; 2],
    /// Audio and video of the ended call, audio of the active call.
    recordings: [String; 3],
}

impl Patient {
    /// Every secret that names this patient's things.
    fn secrets(&self) -> impl Iterator<Item = &str> {
        [self.id.as_str(), self.token.as_str()]
            .into_iter()
            .chain(self.appointments.iter().map(String::as_str))
            .chain(self.calls.iter().map(String::as_str))
            .chain(self.recordings.iter().map(String::as_str))
    }
}

/// One response, whole.
struct Answer {
    status: u16,
    headers: Vec<u8>,
    body: Vec<u8>,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let mut headers = Vec::new();
    for (name, value) in response.headers() {
        headers.extend_from_slice(name.as_str().as_bytes());
        headers.push(b':');
        headers.extend_from_slice(value.as_bytes());
        headers.push(b'\n');
    }
    let body = axum::body::to_bytes(response.into_body(), RESPONSE_BYTES_MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_else(|_| panic!("a response body over {RESPONSE_BYTES_MAX} bytes"));
    Answer {
        status,
        headers,
        body,
    }
}

/// A setup request that must succeed; returns its JSON answer.
async fn setup(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Body,
) -> Value {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let answer = send(router, request.body(body).expect("a valid setup request")).await;
    assert!(
        (200..300).contains(&answer.status),
        "setup request {path} answered {}",
        answer.status
    );
    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
}

fn string(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("setup answer without `{field}`"))
        .to_string()
}

/// Register `alias` and give it two appointments, an ended call with an
/// audio and a video recording, and an active call with media.
async fn register(router: &Router, alias: PatientId) -> Patient {
    let json_body = |value: Value| Body::from(value.to_string());
    let registered = setup(
        router,
        Method::POST,
        "/v1/patients",
        None,
        json_body(json!({ "display_name": payload::display_name(alias) })),
    )
    .await;
    let token = string(&registered, "token");
    let t = Some(token.as_str());
    let mut appointments = Vec::new();
    let mut calls = Vec::new();
    let mut recordings = Vec::new();
    for n in 0..2u32 {
        let appointment_alias = AppointmentId(alias.0 * 10 + n);
        let booked = setup(
            router,
            Method::POST,
            "/v1/appointments",
            t,
            json_body(json!({
                "slot": format!("d1-{:02}h", 9 + n),
                "notes": payload::notes(alias, appointment_alias),
            })),
        )
        .await;
        let appointment = string(&booked, "appointment_id");
        let started = setup(
            router,
            Method::POST,
            &format!("/v1/appointments/{appointment}/call"),
            t,
            Body::empty(),
        )
        .await;
        let call = string(&started, "call_id");
        recordings.push(string(&started, "recording_id"));
        let chunk = |k: u16| Body::from(payload::media_chunk(alias, CallId(alias.0 * 10 + n), k));
        let media = format!("/v1/calls/{call}/media");
        setup(router, Method::POST, &media, t, chunk(1)).await;
        if n == 0 {
            let upgraded = setup(
                router,
                Method::POST,
                &format!("/v1/calls/{call}/upgrade"),
                t,
                Body::empty(),
            )
            .await;
            recordings.push(string(&upgraded, "recording_id"));
            setup(router, Method::POST, &media, t, chunk(2)).await;
            setup(
                router,
                Method::POST,
                &format!("/v1/calls/{call}/end"),
                t,
                Body::empty(),
            )
            .await;
        }
        appointments.push(appointment);
        calls.push(call);
    }
    fn array<const N: usize>(v: Vec<String>) -> [String; N] {
        v.try_into().expect("the setup made exactly this many")
    }
    Patient {
        id: string(&registered, "patient_id"),
        token,
        appointments: array(appointments),
        calls: array(calls),
        recordings: array(recordings),
    }
}

/// One request of the input, before placeholders are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest<'a> {
    /// `P1`, `P2`, `-` or `X`.
    pub who: &'a [u8],
    /// The method token.
    pub method: &'a [u8],
    /// The request target.
    pub target: &'a [u8],
    /// Header lines, split at the first `:`.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The body.
    pub body: &'a [u8],
}

fn split_once<'a>(bytes: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = bytes
        .windows(separator.len())
        .position(|w| w == separator)?;
    Some((&bytes[..at], &bytes[at + separator.len()..]))
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Split an input into requests (see the module doc). Parts that do not
/// even have a request line are dropped.
pub fn parse(input: &[u8]) -> Vec<RawRequest<'_>> {
    let mut requests = Vec::new();
    let mut rest = Some(input);
    while let Some(current) = rest {
        if requests.len() >= REQUESTS_MAX {
            break;
        }
        let (part, next) = match split_once(current, b"\n===\n") {
            Some((part, next)) => (part, Some(next)),
            None => (current, None),
        };
        rest = next;
        let (head, body) = split_once(part, b"\n\n").unwrap_or((part, b""));
        let mut lines = head.split(|b| *b == b'\n');
        let Some(first) = lines.next() else { continue };
        let mut words = first.split(|b| *b == b' ').filter(|w| !w.is_empty());
        let (Some(who), Some(method), Some(target)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let headers = lines
            .filter_map(|line| {
                let (name, value) = split_once(line, b":")?;
                Some((trim(name), trim(value)))
            })
            .collect();
        requests.push(RawRequest {
            who,
            method,
            target,
            headers,
            body,
        });
    }
    requests
}

/// The values placeholders stand for, longest placeholder first.
fn placeholders(patients: &[Patient; 2]) -> Vec<(String, String)> {
    let mut table = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        let n = i + 1;
        table.push((format!("@t{n}"), p.token.clone()));
        table.push((format!("@p{n}"), p.id.clone()));
        for (k, a) in p.appointments.iter().enumerate() {
            table.push((format!("@a{}", i * 2 + k + 1), a.clone()));
        }
        for (k, c) in p.calls.iter().enumerate() {
            table.push((format!("@c{}", i * 2 + k + 1), c.clone()));
        }
        for (k, r) in p.recordings.iter().enumerate() {
            table.push((format!("@r{}", i * 3 + k + 1), r.clone()));
        }
    }
    table
}

fn substitute(bytes: &[u8], table: &[(String, String)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (placeholder, value) in table {
        let (from, to) = (placeholder.as_bytes(), value.as_bytes());
        let mut result = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(from) {
                result.extend_from_slice(to);
                i += from.len();
            } else {
                result.push(out[i]);
                i += 1;
            }
        }
        out = result;
    }
    out
}

/// A built request with what the properties need to know about it.
struct Built {
    request: Request<Body>,
    /// Everything the request carried (target, headers, body), for echoes.
    carried: Vec<u8>,
    /// The path, percent-decoded segment by segment.
    segments: Vec<Vec<u8>>,
    /// The path without the query.
    path: String,
}

fn build(
    raw: &RawRequest<'_>,
    patients: &[Patient; 2],
    table: &[(String, String)],
) -> Option<Built> {
    let method = Method::from_bytes(raw.method).ok()?;
    let target = String::from_utf8(substitute(raw.target, table)).ok()?;
    let mut builder = Request::builder().method(method).uri(target.as_str());
    let mut carried = target.clone().into_bytes();
    let mut has_authorization = false;
    for (name, value) in &raw.headers {
        let name = HeaderName::from_bytes(name).ok()?;
        let value = substitute(value, table);
        has_authorization |= name == "authorization";
        carried.extend_from_slice(&value);
        builder = builder.header(name, HeaderValue::from_bytes(&value).ok()?);
    }
    if !has_authorization {
        let token = match raw.who {
            b"P1" => Some(patients[0].token.as_str()),
            b"P2" => Some(patients[1].token.as_str()),
            b"X" => Some(STRANGER_TOKEN),
            _ => None,
        };
        if let Some(token) = token {
            let value = format!("Bearer {token}");
            carried.extend_from_slice(value.as_bytes());
            builder = builder.header("authorization", value);
        }
    }
    let body = substitute(raw.body, table);
    carried.extend_from_slice(&body);
    let request = builder.body(Body::from(body)).ok()?;
    let path = request.uri().path().to_string();
    let segments = path
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).collect())
        .collect();
    Some(Built {
        request,
        carried,
        segments,
        path,
    })
}

/// What one input did: requests sent, and the first broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Requests that were valid HTTP and were sent.
    pub sent: usize,
    /// The first property failure, in placeholders and aliases only.
    pub failure: Option<String>,
}

/// Run one input against the clinic with `faults`, reset first, and check every
/// property. The fuzz target passes the clean clinic; tests plant faults to
/// show the properties can fail.
pub fn run(input: &[u8], faults: &FaultSet) -> Outcome {
    let raws = parse(input);
    crate::runtime().block_on(async {
        let router = crate::clinic(faults);
        let patients = [
            register(&router, PatientId(1)).await,
            register(&router, PatientId(2)).await,
        ];
        let table = placeholders(&patients);
        let canaries = Canaries::new(2);
        let secrets: Vec<(usize, &str)> = patients
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.secrets().map(move |s| (i, s)))
            .collect();
        let automaton = AhoCorasick::new(secrets.iter().map(|(_, s)| *s))
            .expect("ids and tokens are short literals");
        let mut carried_canaries: BTreeSet<CanaryOwner> = BTreeSet::new();
        let mut carried_secrets: BTreeSet<usize> = BTreeSet::new();
        let mut outcome = Outcome {
            sent: 0,
            failure: None,
        };
        for (n, raw) in raws.iter().enumerate() {
            let Some(built) = build(raw, &patients, &table) else {
                continue;
            };
            let number = n + 1;
            // Whose token the request carries, anywhere: they are the requester.
            let requester: BTreeSet<usize> = (0..2)
                .filter(|i| {
                    automaton.find_iter(&built.carried).any(|m| {
                        secrets[m.pattern().as_usize()] == (*i, patients[*i].token.as_str())
                    })
                })
                .collect();
            carried_canaries.extend(canaries.owners(&built.carried));
            carried_secrets.extend(
                automaton
                    .find_iter(&built.carried)
                    .map(|m| m.pattern().as_usize()),
            );
            let foreign_segment = built.segments.iter().any(|segment| {
                secrets.iter().any(|(owner, s)| {
                    !requester.contains(owner) && segment.as_slice() == s.as_bytes()
                })
            });
            let path = built.path.clone();
            let answer = send(&router, built.request).await;
            outcome.sent += 1;
            let who = || {
                let names: Vec<String> = requester.iter().map(|i| format!("P{}", i + 1)).collect();
                if names.is_empty() {
                    "no patient".to_string()
                } else {
                    names.join("+")
                }
            };
            let fail = |what: String| Some(format!("request {number} ({}): {what}", who()));
            let status = answer.status;
            let success = (200..300).contains(&status);
            let mut received = answer.headers;
            received.extend_from_slice(&answer.body);
            // A canary-shaped string of nobody here (`Outsider`) can only be
            // an echo of what a request carried.
            let leaked_canary = canaries.owners(&received).into_iter().find(|owner| {
                let own = match owner {
                    CanaryOwner::Patient(p) => requester.contains(&((p.0 - 1) as usize)),
                    CanaryOwner::Outsider => false,
                };
                !own && !carried_canaries.contains(owner)
            });
            let leaked_secret = automaton.find_iter(&received).find_map(|m| {
                let index = m.pattern().as_usize();
                let (owner, _) = secrets[index];
                (!requester.contains(&owner) && !carried_secrets.contains(&index)).then_some(owner)
            });
            outcome.failure = if status >= 500 {
                fail(format!("answered {status} (server error)"))
            } else if let Some(owner) = leaked_canary {
                let whose = match owner {
                    CanaryOwner::Patient(p) => format!("{p}'s"),
                    CanaryOwner::Outsider => "an outsider's".to_string(),
                };
                fail(format!(
                    "received {whose} canary (content leak), status {status}"
                ))
            } else if let Some(owner) = leaked_secret {
                fail(format!(
                    "received an id of P{}'s (ownership leak), status {status}",
                    owner + 1
                ))
            } else if success && foreign_segment {
                fail(format!(
                    "a request naming another patient's object was served with {status}"
                ))
            } else if success
                && requester.is_empty()
                && !["/v1/patients", "/healthz", "/openapi.json"].contains(&path.as_str())
            {
                fail(format!("served without any patient's token with {status}"))
            } else {
                None
            };
            if outcome.failure.is_some() {
                break;
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use clinic::Fault;

    use super::*;

    fn faults(list: &[Fault]) -> FaultSet {
        list.iter().copied().collect()
    }

    #[test]
    fn parse_reads_requests_headers_and_bodies() {
        let input = b"P1 POST /v1/appointments\ncontent-type: application/json\n\n{\"slot\":\"d1-09h\"}\n===\n- GET /healthz\n===\nnonsense";
        let requests = parse(input);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].who, b"P1");
        assert_eq!(
            requests[0].headers,
            vec![(&b"content-type"[..], &b"application/json"[..])]
        );
        assert_eq!(requests[0].body, b"{\"slot\":\"d1-09h\"}");
        assert_eq!(
            (requests[1].method, requests[1].target),
            (&b"GET"[..], &b"/healthz"[..])
        );
    }

    #[test]
    fn the_clean_clinic_keeps_every_property_on_ordinary_requests() {
        // Goal: the properties hold for legitimate and hostile requests on
        // the clean clinic (no false alarm), and every request is sent.
        let input = b"P1 GET /v1/me/recordings?page=1&per_page=100\n===\nP1 GET /v1/recordings/@r2\n===\n\
P2 GET /v1/recordings/@r2\n===\nP2 DELETE /v1/recordings/@r1\n===\nP1 POST /v1/calls/@c4/upgrade\n===\n\
- POST /v1/patients\n\n{\"display_name\":\"@t2 @r4\"}\n===\nX GET /v1/me/recordings\n===\nP2 POST /v1/appointments/@a1/call";
        let outcome = run(input, &FaultSet::default());
        assert_eq!(
            outcome,
            Outcome {
                sent: 8,
                failure: None
            }
        );
    }

    #[test]
    fn each_property_catches_its_planted_fault() {
        // Goal: the properties can fail: each catches a real leak.
        // Method: the clinic with a fault planted, and the request that shows it.
        let cases: [(Fault, &[u8], &str); 3] = [
            (
                Fault::RecordingIdor,
                b"P1 GET /v1/recordings/@r4",
                "P2's canary",
            ),
            (
                Fault::HistoryPage2Unfiltered,
                b"P1 GET /v1/me/recordings?page=2&per_page=3",
                "an id of P2's",
            ),
            (
                Fault::HistoryCacheShared,
                b"P1 GET /v1/me/recordings\n===\nP2 GET /v1/me/recordings",
                "an id of P1's",
            ),
        ];
        for (fault, input, needle) in cases {
            let outcome = run(input, &faults(&[fault]));
            // The clinic is reused (reset) between inputs: the same input
            // again must fail the same way, nothing left from the first run.
            assert_eq!(run(input, &faults(&[fault])), outcome, "{fault} again");
            let failure = outcome.failure.unwrap_or_default();
            assert!(failure.contains(needle), "{fault}: {failure:?}");
            assert_eq!(
                run(input, &FaultSet::default()).failure,
                None,
                "{fault} clean"
            );
        }
    }
}
