//! The clinic with no fault: every endpoint's happy path, and every refusal
//! (401, 404 across patients, 409, 400, 413) answered with a JSON error.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{clean_clinic, ids_of, string};

#[tokio::test]
async fn every_endpoint_works_through_one_patients_lifecycle() {
    // Goal: the happy path of every endpoint, with exact shapes.
    // Method: one patient books, calls, sends media, upgrades, ends, lists,
    // plays back, erases and cancels, checking each response.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    assert!(alice.id.starts_with("pat_"));
    assert_eq!(alice.token.len(), 64);

    let booked = h
        .send_json(
            Method::POST,
            "/v1/appointments",
            Some(&alice.token),
            json!({ "slot": "mon 9:00", "notes": "cough" }),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    let booked = booked.json();
    let appointment = string(&booked, "appointment_id");
    assert!(appointment.starts_with("apt_"));
    assert_eq!(
        booked,
        json!({ "appointment_id": appointment, "slot": "mon 9:00", "notes": "cough", "status": "booked" })
    );

    let (call, audio) = h.start_call(&alice, &appointment).await;
    assert!(call.starts_with("call_") && audio.starts_with("rec_"));
    h.send_media(&alice, &call, b"hello ").await;

    let page = h.history(&alice, 1, 10).await;
    assert_eq!(
        page,
        json!({ "page": 1, "per_page": 10, "total": 1, "items": [{
            "recording_id": audio, "call_id": call, "appointment_id": appointment,
            "kind": "audio", "status": "recording", "bytes": 6
        }]})
    );
    let playing = h.play(&alice, &audio).await;
    assert_eq!(playing.status, StatusCode::OK);
    assert_eq!(
        playing.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(playing.kind.as_deref(), Some("audio"));
    assert_eq!(playing.body, b"hello ");

    let video = h.upgrade(&alice, &call).await;
    assert_ne!(video, audio);
    h.send_media(&alice, &call, b"world").await;
    h.send_media(&alice, &call, b"!").await;
    h.end(&alice, &call).await;

    let page = h.history(&alice, 1, 10).await;
    assert_eq!(page["total"], 2);
    let items = page["items"].as_array().expect("items");
    assert_eq!(ids_of(&page), [audio.clone(), video.clone()]);
    assert_eq!(items[0]["status"], "finished");
    assert_eq!(items[1]["kind"], "video");
    assert_eq!(items[1]["status"], "finished");
    assert_eq!(items[1]["bytes"], 6);
    let played = h.play(&alice, &video).await;
    assert_eq!(played.kind.as_deref(), Some("video"));
    assert_eq!(played.body, b"world!");

    assert_eq!(h.erase(&alice, &audio).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.history_ids(&alice, 1, 10).await, vec![video.clone()]);
    h.play(&alice, &audio)
        .await
        .assert_error(StatusCode::NOT_FOUND);

    // Cancelling after a finished call is allowed; the recordings stay hers.
    assert_eq!(
        h.cancel(&alice, &appointment).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.history_ids(&alice, 1, 10).await, vec![video.clone()]);
    assert_eq!(h.play(&alice, &video).await.body, b"world!");

    let health = h.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({ "status": "ok", "service": "api" }));
    let media_health = h
        .http
        .get(format!("{}/healthz", h.clinic.media_url()))
        .send()
        .await
        .expect("media healthz");
    assert_eq!(media_health.status(), StatusCode::OK);
    let media_health: serde_json::Value =
        serde_json::from_slice(&media_health.bytes().await.expect("body")).expect("json");
    assert_eq!(media_health, json!({ "status": "ok", "service": "media" }));
    let spec = h.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    h.clinic.shutdown().await;
}

#[tokio::test]
async fn history_pages_in_recording_order_with_the_callers_total() {
    // Goal: paging is LIMIT/OFFSET over seq order; total counts all pages;
    // the defaults are page 1 and 10 per page.
    // Method: five recordings (three calls, two upgraded), read in pages of two.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    let mut expected = Vec::new();
    for upgrade in [true, false, true] {
        let (_, call, audio) = h.book_and_call(&alice).await;
        expected.push(audio);
        if upgrade {
            expected.push(h.upgrade(&alice, &call).await);
        }
        h.end(&alice, &call).await;
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = h.history(&alice, page, 2).await;
        assert_eq!(body["total"], 5);
        assert_eq!(body["page"], page);
        assert_eq!(body["per_page"], 2);
        seen.extend(ids_of(&body));
    }
    assert_eq!(seen, expected);
    assert!(h.history_ids(&alice, 4, 2).await.is_empty());
    let defaults = h.get(&alice, "/v1/me/recordings").await.json();
    assert_eq!(
        (defaults["page"].clone(), defaults["per_page"].clone()),
        (json!(1), json!(10))
    );
    assert_eq!(ids_of(&defaults), expected);
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_are_401() {
    // Goal: every /v1 route but registration needs a valid bearer token.
    // Method: each route with no header, an unknown token, and a non-bearer scheme.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    let (appointment, call, recording) = h.book_and_call(&alice).await;
    let routes = [
        (Method::POST, "/v1/appointments".to_owned()),
        (Method::DELETE, format!("/v1/appointments/{appointment}")),
        (Method::POST, format!("/v1/appointments/{appointment}/call")),
        (Method::POST, format!("/v1/calls/{call}/upgrade")),
        (Method::POST, format!("/v1/calls/{call}/media")),
        (Method::POST, format!("/v1/calls/{call}/end")),
        (Method::GET, "/v1/me/recordings".to_owned()),
        (Method::GET, format!("/v1/recordings/{recording}")),
        (Method::DELETE, format!("/v1/recordings/{recording}")),
    ];
    for (method, path) in routes {
        let missing = h.send(method.clone(), &path, None, None).await;
        missing.assert_error(StatusCode::UNAUTHORIZED);
        let unknown = h
            .send(method.clone(), &path, Some("not-a-token"), None)
            .await;
        unknown.assert_error(StatusCode::UNAUTHORIZED);
        let basic = h
            .http
            .request(method, format!("{}{path}", h.base))
            .header("authorization", format!("Basic {}", alice.token))
            .send()
            .await
            .expect("sent");
        assert_eq!(basic.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    }
    // Nothing above changed Alice's call.
    h.send_media(&alice, &call, b"still mine").await;
    assert_eq!(h.play(&alice, &recording).await.body, b"still mine");
}

#[tokio::test]
async fn another_patients_objects_answer_404_and_stay_untouched() {
    // Goal: in the clean clinic a patient can neither see nor act on another
    // patient's appointments, calls or recordings; "not yours" looks unknown.
    // Method: Bob tries every action on Alice's ids, then Alice checks hers.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    let bob = h.register("bob").await;
    let (appointment, call, audio) = h.book_and_call(&alice).await;
    h.send_media(&alice, &call, b"alice-audio").await;
    let video = h.upgrade(&alice, &call).await;
    h.send_media(&alice, &call, b"alice-video").await;
    let (bob_appointment, bob_call, _) = h.book_and_call(&bob).await;

    h.cancel(&bob, &appointment)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    h.post(&bob, &format!("/v1/appointments/{appointment}/call"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    h.post(&bob, &format!("/v1/calls/{call}/upgrade"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    h.send(
        Method::POST,
        &format!("/v1/calls/{call}/media"),
        Some(&bob.token),
        Some(b"bob".to_vec()),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    h.post(&bob, &format!("/v1/calls/{call}/end"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    for recording in [&audio, &video] {
        h.play(&bob, recording)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        h.erase(&bob, recording)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
    // Unknown ids answer exactly the same.
    h.play(&bob, "rec_0000000000000000")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    h.cancel(&bob, "apt_0000000000000000")
        .await
        .assert_error(StatusCode::NOT_FOUND);

    for page in 1..=3 {
        let body = h.history(&bob, page, 1).await;
        assert_eq!(body["total"], 1);
        for item in body["items"].as_array().expect("items") {
            assert_eq!(item["appointment_id"], bob_appointment.as_str());
            assert_eq!(item["call_id"], bob_call.as_str());
        }
    }

    // Alice's call is still active, audio and untouched by Bob.
    h.end(&alice, &call).await;
    assert_eq!(
        h.history_ids(&alice, 1, 10).await,
        [audio.clone(), video.clone()]
    );
    assert_eq!(h.play(&alice, &audio).await.body, b"alice-audio");
    assert_eq!(h.play(&alice, &video).await.body, b"alice-video");
}

#[tokio::test]
async fn actions_the_state_forbids_are_409() {
    // Goal: every documented 409, and 404 for erasing twice.
    // Method: drive one appointment and call through each forbidden action.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    let (appointment, call, audio) = h.book_and_call(&alice).await;
    let call_path = format!("/v1/appointments/{appointment}/call");

    h.post(&alice, &call_path)
        .await
        .assert_error(StatusCode::CONFLICT);
    h.cancel(&alice, &appointment)
        .await
        .assert_error(StatusCode::CONFLICT);
    h.erase(&alice, &audio)
        .await
        .assert_error(StatusCode::CONFLICT);
    let video = h.upgrade(&alice, &call).await;
    h.post(&alice, &format!("/v1/calls/{call}/upgrade"))
        .await
        .assert_error(StatusCode::CONFLICT);
    h.erase(&alice, &video)
        .await
        .assert_error(StatusCode::CONFLICT);
    h.end(&alice, &call).await;
    h.post(&alice, &format!("/v1/calls/{call}/end"))
        .await
        .assert_error(StatusCode::CONFLICT);
    h.post(&alice, &format!("/v1/calls/{call}/upgrade"))
        .await
        .assert_error(StatusCode::CONFLICT);
    h.send(
        Method::POST,
        &format!("/v1/calls/{call}/media"),
        Some(&alice.token),
        Some(b"late".to_vec()),
    )
    .await
    .assert_error(StatusCode::CONFLICT);

    // A second call of the same appointment is fine once the first has ended.
    let (second, _) = h.start_call(&alice, &appointment).await;
    h.end(&alice, &second).await;

    assert_eq!(h.erase(&alice, &audio).await.status, StatusCode::NO_CONTENT);
    h.erase(&alice, &audio)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(
        h.cancel(&alice, &appointment).await.status,
        StatusCode::NO_CONTENT
    );
    h.cancel(&alice, &appointment)
        .await
        .assert_error(StatusCode::CONFLICT);
    h.post(&alice, &call_path)
        .await
        .assert_error(StatusCode::CONFLICT);
}

#[tokio::test]
async fn malformed_requests_are_json_4xx_never_5xx() {
    // Goal: bad JSON, bad query parameters, oversized bodies, unknown routes
    // and wrong methods all answer a JSON 4xx.
    // Method: one request of each kind.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    for body in [&b"{"[..], b"[]", b"{\"display_name\": 7}", b"{}", b""] {
        h.send(Method::POST, "/v1/patients", None, Some(body.to_vec()))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    h.send(
        Method::POST,
        "/v1/appointments",
        Some(&alice.token),
        Some(b"{\"notes\":\"x\"}".to_vec()),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    // notes is optional.
    let booked = h
        .send_json(
            Method::POST,
            "/v1/appointments",
            Some(&alice.token),
            json!({ "slot": "s" }),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    assert_eq!(booked.json()["notes"], "");

    for query in [
        "page=0",
        "per_page=0",
        "per_page=101",
        "page=abc",
        "page=-1",
        "per_page=",
        "page=99999999999",
        "page=%FF%FE",
    ] {
        h.get(&alice, &format!("/v1/me/recordings?{query}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    let edge = h
        .get(&alice, "/v1/me/recordings?page=4294967295&per_page=100")
        .await;
    assert_eq!(edge.status, StatusCode::OK);

    let too_big_json = json!({ "display_name": "x".repeat(64 << 10) });
    h.send_json(Method::POST, "/v1/patients", None, too_big_json)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE);

    let (_, call, recording) = h.book_and_call(&alice).await;
    let media_path = format!("/v1/calls/{call}/media");
    h.send(
        Method::POST,
        &media_path,
        Some(&alice.token),
        Some(vec![7; (1 << 20) + 1]),
    )
    .await
    .assert_error(StatusCode::PAYLOAD_TOO_LARGE);
    h.send_media(&alice, &call, &vec![7; 1 << 20]).await;
    h.send_media(&alice, &call, b"").await;
    assert_eq!(h.play(&alice, &recording).await.body.len(), 1 << 20);

    h.get(&alice, "/v1/nowhere")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    h.get(&alice, "/v1/recordings/%FF")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let wrong_method = h.send(Method::PUT, "/v1/patients", None, None).await;
    wrong_method.assert_error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_of_one_appointments_call_admit_exactly_one() {
    // Goal: the check, media call, commit split cannot admit two active calls.
    // Method: eight simultaneous start-call requests; count the outcomes. The
    // outcome is the same under every interleaving, so the test is deterministic.
    let h = clean_clinic().await;
    let alice = h.register("alice").await;
    let appointment = h.book(&alice).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let http = h.http.clone();
        let url = format!("{}/v1/appointments/{appointment}/call", h.base);
        let token = alice.token.clone();
        tasks.spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("sent")
                .status()
        });
    }
    let statuses = tasks.join_all().await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
    assert_eq!(h.history(&alice, 1, 10).await["total"], 1);
}
