//! The api router driven in-process (no sockets), as fuzzing will drive it,
//! and its behaviour when the media service fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use clinic::media::MediaState;
use clinic::{Config, Fault, MediaLink, api, media};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// An api router over an in-process media service, with the media store.
fn in_process(config: &Config) -> (Router, MediaState) {
    let store = MediaState::default();
    let link = MediaLink::InProcess(media::router(store.clone()));
    let state = api::ApiState::new(config, link).expect("state");
    (api::router(state), store)
}

/// An api router whose in-process media service fails every request while
/// `broken` is set.
fn with_breakable_media() -> (Router, Arc<AtomicBool>) {
    let broken = Arc::new(AtomicBool::new(false));
    let switch = broken.clone();
    let media = media::router(MediaState::default()).layer(axum::middleware::from_fn(
        move |request: Request<Body>, next: axum::middleware::Next| {
            let broken = switch.load(Ordering::SeqCst);
            async move {
                if broken {
                    axum::response::IntoResponse::into_response(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    next.run(request).await
                }
            }
        },
    ));
    let state = api::ApiState::new(&Config::default(), MediaLink::InProcess(media)).expect("state");
    (api::router(state), broken)
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body.to_vec())).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.to_vec())
}

async fn json_call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (StatusCode, Value) {
    let (status, body) = call(router, method, path, token, body).await;
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("json")
    };
    (status, value)
}

/// Registers, books, starts a call, sends `chunk` and ends it; returns
/// `(token, appointment_id, call_id, recording_id)`.
async fn recorded(router: &Router, chunk: &[u8]) -> (String, String, String, String) {
    let (status, patient) = json_call(
        router,
        Method::POST,
        "/v1/patients",
        None,
        br#"{"display_name":"p"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = patient["token"].as_str().expect("token").to_owned();
    let (_, booked) = json_call(
        router,
        Method::POST,
        "/v1/appointments",
        Some(&token),
        br#"{"slot":"s"}"#,
    )
    .await;
    let appointment = booked["appointment_id"].as_str().expect("id").to_owned();
    let (status, started) = json_call(
        router,
        Method::POST,
        &format!("/v1/appointments/{appointment}/call"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let call_id = started["call_id"].as_str().expect("call").to_owned();
    let recording = started["recording_id"].as_str().expect("rec").to_owned();
    let (status, _) = call(
        router,
        Method::POST,
        &format!("/v1/calls/{call_id}/media"),
        Some(&token),
        chunk,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = call(
        router,
        Method::POST,
        &format!("/v1/calls/{call_id}/end"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    (token, appointment, call_id, recording)
}

#[tokio::test]
async fn the_in_process_link_serves_the_api_and_erasure_deletes_media() {
    // Goal: MediaLink::InProcess works end to end, and erasure deletes the
    // media object (unless erasure-leaves-media is planted).
    // Method: record, play back and erase through the router; count objects.
    let (router, store) = in_process(&Config::default());
    let (token, _, _, recording) = recorded(&router, b"canary").await;
    let (status, bytes) = call(
        &router,
        Method::GET,
        &format!("/v1/recordings/{recording}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, &b"canary"[..]));
    assert_eq!(store.object_count(), 1);
    let (status, _) = call(
        &router,
        Method::DELETE,
        &format!("/v1/recordings/{recording}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(store.object_count(), 0);

    let faulty = Config {
        faults: [Fault::ErasureLeavesMedia].into_iter().collect(),
        db_path: None,
    };
    let (router, store) = in_process(&faulty);
    let (token, _, _, recording) = recorded(&router, b"canary").await;
    let (status, _) = call(
        &router,
        Method::DELETE,
        &format!("/v1/recordings/{recording}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(store.object_count(), 1);
}

#[tokio::test]
async fn ending_a_call_closes_its_media_and_upgrade_closes_the_audio() {
    // Goal: the media protocol: start opens, upgrade closes audio and opens
    // video, end closes the current recording.
    // Method: count the media store's objects and open objects along one call.
    let (router, store) = in_process(&Config::default());
    let (token, appointment, _, _) = recorded(&router, b"x").await;
    assert_eq!((store.object_count(), store.open_count()), (1, 0));
    let (_, started) = json_call(
        &router,
        Method::POST,
        &format!("/v1/appointments/{appointment}/call"),
        Some(&token),
        b"",
    )
    .await;
    let call_id = started["call_id"].as_str().expect("call");
    assert_eq!((store.object_count(), store.open_count()), (2, 1));
    let (status, _) = call(
        &router,
        Method::POST,
        &format!("/v1/calls/{call_id}/upgrade"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((store.object_count(), store.open_count()), (3, 1));
    let (status, _) = call(
        &router,
        Method::POST,
        &format!("/v1/calls/{call_id}/end"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((store.object_count(), store.open_count()), (3, 0));
}

#[tokio::test]
async fn a_failing_media_service_is_a_502_that_changes_nothing() {
    // Goal: when the media service fails, the api answers 502 with the JSON
    // error, healthz answers 503, and no state changes, so that the same
    // request succeeds once the media service is back.
    // Method: break the in-process media service around each media-using action.
    let (router, broken) = with_breakable_media();
    let (token, appointment, _, recording) = recorded(&router, b"canary").await;
    let unavailable = json!({ "error": "media service unavailable" });

    broken.store(true, Ordering::SeqCst);
    let (status, health) = json_call(&router, Method::GET, "/healthz", None, b"").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        health,
        json!({ "status": "unavailable", "service": "api", "error": "media service unavailable" })
    );
    let call_path = format!("/v1/appointments/{appointment}/call");
    assert_eq!(
        json_call(&router, Method::POST, &call_path, Some(&token), b"").await,
        (StatusCode::BAD_GATEWAY, unavailable.clone())
    );
    let recording_path = format!("/v1/recordings/{recording}");
    assert_eq!(
        json_call(&router, Method::GET, &recording_path, Some(&token), b"").await,
        (StatusCode::BAD_GATEWAY, unavailable.clone())
    );
    assert_eq!(
        json_call(&router, Method::DELETE, &recording_path, Some(&token), b"").await,
        (StatusCode::BAD_GATEWAY, unavailable.clone())
    );

    broken.store(false, Ordering::SeqCst);
    let (status, page) =
        json_call(&router, Method::GET, "/v1/me/recordings", Some(&token), b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["total"], 1,
        "the failed erase left the recording listed"
    );
    let (status, started) = json_call(&router, Method::POST, &call_path, Some(&token), b"").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the failed start left no active call"
    );
    let call_id = started["call_id"].as_str().expect("call").to_owned();

    broken.store(true, Ordering::SeqCst);
    for action in ["upgrade", "end", "media"] {
        let path = format!("/v1/calls/{call_id}/{action}");
        assert_eq!(
            json_call(&router, Method::POST, &path, Some(&token), b"chunk").await,
            (StatusCode::BAD_GATEWAY, unavailable.clone()),
            "{action}"
        );
    }
    broken.store(false, Ordering::SeqCst);
    let (_, page) = json_call(&router, Method::GET, "/v1/me/recordings", Some(&token), b"").await;
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["items"][1]["bytes"], 0,
        "the failed chunk was not counted"
    );
    for action in ["upgrade", "end"] {
        let path = format!("/v1/calls/{call_id}/{action}");
        let (status, _) = call(&router, Method::POST, &path, Some(&token), b"").await;
        assert_eq!(status, StatusCode::OK, "{action} after recovery");
    }
    let (status, _) = call(&router, Method::DELETE, &recording_path, Some(&token), b"").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn in_process_fhir_links_are_paths_and_v1_objects_get_fhir_ids() {
    // Goal: a request with no Host header (the in-process router, as fuzzing
    // and an in-process driver call it) gets links and content urls as paths
    // under /fhir, which resolve against the same router; objects made
    // through /v1 are found through /fhir under their own logical ids.
    // Method: record twice through /v1, then page through /fhir/Media with
    // _count=1 and download through content.url, all in-process.
    let (router, _) = in_process(&Config::default());
    let (token, appointment, _, first) = recorded(&router, b"canary").await;
    let (status, _) = call(
        &router,
        Method::POST,
        &format!("/v1/appointments/{appointment}/call"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, page) = json_call(
        &router,
        Method::GET,
        "/fhir/Media?_count=1",
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 2);
    let media = &page["entry"][0]["resource"];
    assert_ne!(media["id"], first.as_str());
    let url = media["content"]["url"].as_str().expect("url");
    assert!(url.starts_with("/fhir/Binary/"), "{url}");
    let (status, bytes) = call(&router, Method::GET, url, Some(&token), b"").await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, &b"canary"[..]));
    let next = page["link"]
        .as_array()
        .expect("links")
        .iter()
        .find(|link| link["relation"] == "next")
        .and_then(|link| link["url"].as_str())
        .expect("next")
        .to_owned();
    assert_eq!(next, "/fhir/Media?_count=1&_cursor=1");
    let (status, last) = json_call(&router, Method::GET, &next, Some(&token), b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last["entry"].as_array().map(Vec::len), Some(1));
    assert!(
        last["link"]
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["relation"] != "next")
    );
    let (status, outcome) = json_call(&router, Method::GET, "/fhir/nope", None, b"").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn reset_forgets_every_patient_recording_and_cache_but_keeps_the_faults() {
    // Goal: after `ApiState::reset` and `MediaState::clear` the service is
    // as if just started (the fuzz targets reuse one service per process):
    // old tokens are unknown, nothing is listed or stored, the sequence
    // counter starts again, and the planted faults still act.
    // Method: record with erasure-leaves-media planted, reset, then check
    // the old session and the media store; record again to show the service
    // still works, lists only the new recording, and the fault still bends
    // erasure.
    let faulty = Config {
        faults: [Fault::ErasureLeavesMedia].into_iter().collect(),
        db_path: None,
    };
    let store = MediaState::default();
    let state = api::ApiState::new(&faulty, MediaLink::InProcess(media::router(store.clone())))
        .expect("state");
    let router = api::router(state.clone());
    let (token, _, _, recording) = recorded(&router, b"first").await;
    let (status, listed) =
        json_call(&router, Method::GET, "/v1/me/recordings", Some(&token), b"").await;
    assert_eq!(
        (status, listed["total"].as_u64()),
        (StatusCode::OK, Some(1))
    );

    state.reset();
    store.clear();
    assert_eq!(store.object_count(), 0);
    let (status, _) = call(&router, Method::GET, "/v1/me/recordings", Some(&token), b"").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old session must be gone"
    );
    let (token, _, _, again) = recorded(&router, b"second").await;
    assert_ne!(again, recording);
    let (status, listed) =
        json_call(&router, Method::GET, "/v1/me/recordings", Some(&token), b"").await;
    assert_eq!(
        (status, listed["total"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        listed["items"][0]["recording_id"].as_str(),
        Some(again.as_str())
    );
    let (status, _) = call(
        &router,
        Method::DELETE,
        &format!("/v1/recordings/{again}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        store.object_count(),
        1,
        "erasure-leaves-media must still be planted"
    );
}
