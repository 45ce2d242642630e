//! The FHIR shape on a clean clinic: the round trip, patient separation,
//! OperationOutcome errors, and the OpenAPI document and CapabilityStatement.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fhir_support::{Fhir, media_ids, next_link, text};
use crate::support::{Patient, clean_clinic, ids_of};

#[tokio::test]
async fn fhir_round_trip_from_registration_to_erasure() {
    // Goal: every FHIR action works end to end on one patient, and what it
    // shows agrees with the /v1 view of the same data, under other ids.
    // Method: register and get a token; book; start, send (raw and base64
    // JSON), upgrade, send, end; page through Media with _count=1 via next
    // links; list by encounter; read and download each; erase one; cancel.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let alice = f.register("Alice Canary").await;
    let patient = f
        .send(
            Method::GET,
            &format!("/fhir/Patient/{}", alice.id),
            Some(&alice.token),
            &[],
            None,
        )
        .await;
    assert_eq!(patient.status(), StatusCode::OK);
    assert_eq!(patient.json()["name"][0]["text"], "Alice Canary");

    let appointment = f.book(&alice).await;
    let (encounter, audio) = f.start(&alice, &appointment).await;
    f.send_media(&alice, &encounter, b"audio-1").await;
    let base64_chunk = f
        .json(
            Method::POST,
            "/fhir/Binary",
            Some(&alice.token),
            &json!({
                "resourceType": "Binary",
                "contentType": "application/octet-stream",
                "securityContext": { "reference": format!("Encounter/{encounter}") },
                "data": "LWF1ZGlvLTI=",
            }),
        )
        .await;
    assert_eq!(base64_chunk.status(), StatusCode::ACCEPTED);
    assert_eq!(base64_chunk.json()["issue"][0]["severity"], "information");
    let video = f.upgrade(&alice, &encounter).await;
    let read = f
        .send(
            Method::GET,
            &format!("/fhir/Encounter/{encounter}"),
            Some(&alice.token),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(read["extension"][0]["valueCode"], "video");
    assert_eq!(
        read["extension"][1]["valueReference"]["reference"],
        format!("Media/{video}")
    );
    f.send_media(&alice, &encounter, b"video-1").await;
    f.end(&alice, &encounter).await;

    // Paging: two Media, one per page, linked by next.
    let first = f
        .search(
            &alice,
            &format!("/fhir/Media?subject=Patient/{}&_count=1", alice.id),
        )
        .await;
    assert_eq!(first["total"], 2);
    let next = next_link(&first).expect("a next link on page 1");
    assert!(next.starts_with(&h.base), "absolute: {next}");
    let (all, pages) = f.all_media(&alice, 1).await;
    assert_eq!(all, [audio.clone(), video.clone()]);
    assert_eq!(pages, 2);
    let (by_patient, _) = f
        .follow(&alice, &format!("/fhir/Media?patient={}", alice.id))
        .await;
    assert_eq!(by_patient, all);
    let (default_scope, _) = f.follow(&alice, "/fhir/Media").await;
    assert_eq!(default_scope, all);
    let by_encounter = f
        .search(
            &alice,
            &format!("/fhir/Media?encounter=Encounter/{encounter}"),
        )
        .await;
    assert_eq!(media_ids(&by_encounter), all);
    let entry = &by_encounter["entry"][0];
    assert_eq!(entry["resource"]["status"], "completed");
    assert_eq!(
        entry["resource"]["subject"]["reference"],
        format!("Patient/{}", alice.id)
    );
    assert_eq!(
        entry["resource"]["encounter"]["reference"],
        format!("Encounter/{encounter}")
    );
    assert_eq!(entry["resource"]["content"]["size"], 15);

    // Download through content.url (a Binary, not the Media id).
    let (read, bytes) = f.play(&alice, &audio).await;
    let url = text(&read.json(), "/content/url");
    assert!(url.contains("/fhir/Binary/") && !url.ends_with(&audio));
    let bytes = bytes.expect("binary read");
    assert_eq!(bytes.status(), StatusCode::OK);
    assert_eq!(bytes.reply.body, b"audio-1-audio-2");
    assert_eq!(bytes.reply.kind.as_deref(), Some("audio"));
    assert_eq!(f.play_bytes(&alice, &video).await, Ok(b"video-1".to_vec()));

    // The same data through /v1 under other ids.
    let v1 = Patient {
        id: String::new(),
        token: alice.token.clone(),
    };
    let v1_ids = ids_of(&h.history(&v1, 1, 10).await);
    assert_eq!(v1_ids.len(), 2);
    for id in &v1_ids {
        assert!(!all.contains(id), "FHIR ids are not /v1 ids");
    }
    assert_ne!(alice.id, "");
    assert!(!alice.id.starts_with("pat_"));

    // Erase, then the Media and its Binary are gone.
    assert_eq!(
        f.erase(&alice, &audio).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        f.all_media(&alice, 10).await.0,
        std::slice::from_ref(&video)
    );
    assert_eq!(
        f.play_bytes(&alice, &audio).await,
        Err(StatusCode::NOT_FOUND)
    );
    let gone = f
        .send(Method::GET, &url, Some(&alice.token), &[], None)
        .await;
    gone.assert_outcome(StatusCode::NOT_FOUND);
    f.erase(&alice, &audio)
        .await
        .assert_outcome(StatusCode::NOT_FOUND);

    // Cancel by PUT; a second cancel conflicts; reading shows it.
    let put = f
        .json(
            Method::PUT,
            &format!("/fhir/Appointment/{appointment}"),
            Some(&alice.token),
            &json!({ "resourceType": "Appointment", "id": appointment, "status": "cancelled" }),
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK, "{:?}", put.json());
    assert_eq!(put.json()["status"], "cancelled");
    f.cancel(&alice, &appointment)
        .await
        .assert_outcome(StatusCode::CONFLICT);
    // Its recordings stay the patient's.
    assert_eq!(f.all_media(&alice, 10).await.0, [video]);
}

#[tokio::test]
async fn a_token_can_also_be_had_with_a_form() {
    // Goal: the token endpoint takes the OAuth form encoding as well as JSON.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let created = f
        .json(
            Method::POST,
            "/fhir/Patient",
            None,
            &json!({ "resourceType": "Patient", "name": [{ "given": ["Bo"], "family": "Canary" }] }),
        )
        .await;
    assert_eq!(created.json()["name"][0]["text"], "Bo Canary");
    let id = text(&created.json(), "/id");
    let secret = created.headers["x-client-secret"].to_str().expect("secret");
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let token = f
        .send(
            Method::POST,
            "/fhir/auth/token",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form.into_bytes()),
        )
        .await;
    assert_eq!(token.status(), StatusCode::OK);
    assert_eq!(token.json()["patient"], id.as_str());
    let wrong = format!("grant_type=client_credentials&client_id={id}&client_secret=nope");
    let refused = f
        .send(
            Method::POST,
            "/fhir/auth/token",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(wrong.into_bytes()),
        )
        .await;
    refused.assert_outcome(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_clean_clinic_keeps_each_patients_data_separate_through_fhir() {
    // Goal: with no fault, no FHIR request of Bob's reaches Alice's data,
    // however he names it, and every refusal is a 403 or 404 outcome.
    // Method: Alice and Bob each record (Alice two calls, to have a next
    // link); Bob tries every route on Alice's ids and her next link.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let alice = f.register("alice").await;
    let bob = f.register("bob").await;
    let (alice_apt, alice_enc, alice_media) = f.book_and_start(&alice).await;
    f.send_media(&alice, &alice_enc, b"alice-canary").await;
    f.end(&alice, &alice_enc).await;
    let (_, alice_enc2, alice_media2) = f.book_and_start(&alice).await;
    let (_, bob_enc, bob_media) = f.book_and_start(&bob).await;
    f.send_media(&bob, &bob_enc, b"bob-canary").await;

    assert_eq!(
        f.all_media(&alice, 1).await.0,
        [alice_media.clone(), alice_media2]
    );
    assert_eq!(f.all_media(&bob, 1).await.0, [bob_media]);

    let as_bob = |method: Method, path: String| {
        let f = &f;
        let token = bob.token.clone();
        async move { f.send(method, &path, Some(&token), &[], None).await }
    };
    for path in [
        format!("/fhir/Media?subject=Patient/{}", alice.id),
        format!("/fhir/Media?patient={}", alice.id),
    ] {
        let code = as_bob(Method::GET, path)
            .await
            .assert_outcome(StatusCode::FORBIDDEN);
        assert_eq!(code, "forbidden");
    }
    let alice_binary = {
        let (read, _) = f.play(&alice, &alice_media).await;
        text(&read.json(), "/content/url")
    };
    for (method, path) in [
        (
            Method::GET,
            format!("/fhir/Media?encounter=Encounter/{alice_enc}"),
        ),
        (Method::GET, format!("/fhir/Media/{alice_media}")),
        (Method::GET, alice_binary),
        (Method::DELETE, format!("/fhir/Media/{alice_media}")),
        (Method::GET, format!("/fhir/Patient/{}", alice.id)),
        (Method::GET, format!("/fhir/Appointment/{alice_apt}")),
        (Method::GET, format!("/fhir/Encounter/{alice_enc}")),
        (
            Method::POST,
            format!("/fhir/Encounter/{alice_enc2}/$upgrade"),
        ),
    ] {
        let code = as_bob(method.clone(), path.clone())
            .await
            .assert_outcome(StatusCode::NOT_FOUND);
        assert_eq!(code, "not-found", "{method} {path}");
    }
    f.cancel(&bob, &alice_apt)
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    f.send_media_reply(&bob, &alice_enc2, b"bob-canary")
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    let ended = f
        .json(
            Method::PATCH,
            &format!("/fhir/Encounter/{alice_enc2}"),
            Some(&bob.token),
            &json!({ "status": "finished" }),
        )
        .await;
    ended.assert_outcome(StatusCode::NOT_FOUND);
    f.start_reply(&bob, &alice_apt)
        .await
        .assert_outcome(StatusCode::NOT_FOUND);
    // Booking for someone else is refused.
    let for_alice = f
        .json(
            Method::POST,
            "/fhir/Appointment",
            Some(&bob.token),
            &json!({
                "resourceType": "Appointment",
                "start": "2030-01-01T10:00",
                "participant": [{ "actor": { "reference": format!("Patient/{}", alice.id) } }],
            }),
        )
        .await;
    for_alice.assert_outcome(StatusCode::FORBIDDEN);
    // Alice's next link carries her as the subject: under Bob it is refused.
    let first = f
        .search(
            &alice,
            &format!("/fhir/Media?subject=Patient/{}&_count=1", alice.id),
        )
        .await;
    let next = next_link(&first).expect("next");
    as_bob(Method::GET, next)
        .await
        .assert_outcome(StatusCode::FORBIDDEN);
    // A continuation without a subject stays the caller's own.
    let (bob_sees, _) = f.follow(&bob, "/fhir/Media?_count=1&_cursor=1").await;
    assert!(bob_sees.is_empty());
    // After all that, Alice's data is intact and nobody got her bytes.
    assert_eq!(
        f.play_bytes(&alice, &alice_media).await,
        Ok(b"alice-canary".to_vec())
    );
}

#[tokio::test]
async fn fhir_errors_are_operation_outcomes() {
    // Goal: every error under /fhir is an OperationOutcome with a fitting
    // status and issue code, whichever layer produced it.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let alice = f.register("alice").await;
    let token = Some(alice.token.as_str());
    let no_token = f.send(Method::GET, "/fhir/Media", None, &[], None).await;
    assert_eq!(no_token.assert_outcome(StatusCode::UNAUTHORIZED), "login");
    assert_eq!(no_token.headers["www-authenticate"], "Bearer");
    let cases: Vec<(Method, &str, Option<&str>, StatusCode, &str)> = vec![
        (
            Method::GET,
            "/fhir/Nope",
            None,
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            Method::GET,
            "/fhir",
            None,
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            Method::GET,
            "/fhir/",
            None,
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            Method::DELETE,
            "/fhir/Patient",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
        ),
        (
            Method::POST,
            "/fhir/Patient",
            Some("{"),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::POST,
            "/fhir/Patient",
            Some(r#"{"resourceType":"Media","name":[{"text":"x"}]}"#),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::POST,
            "/fhir/Patient",
            Some(r#"{"resourceType":"Patient"}"#),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media?colour=red",
            None,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media?_count=0",
            None,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media?_count=1&_count=2",
            None,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media?_cursor=-1",
            None,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media?subject=Encounter/x",
            None,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::GET,
            "/fhir/Media/not-a-media",
            None,
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            Method::GET,
            "/fhir/Binary/a%20b",
            None,
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            Method::POST,
            "/fhir/Encounter",
            Some(r#"{"resourceType":"Encounter","appointment":[]}"#),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::POST,
            "/fhir/Binary",
            Some("raw bytes, no context"),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::POST,
            "/fhir/auth/token",
            Some(r#"{"grant_type":"password","client_id":"a","client_secret":"b"}"#),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            Method::POST,
            "/fhir/auth/token",
            Some(r#"{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}"#),
            StatusCode::UNAUTHORIZED,
            "login",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = f
            .send(
                method.clone(),
                path,
                token,
                &[],
                body.map(|b| b.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(reply.assert_outcome(status), code, "{method} {path}");
    }

    // Updates: only the status, and only forward.
    let appointment = f.book(&alice).await;
    let (encounter, _) = f.start(&alice, &appointment).await;
    let update = |method: Method, path: String, body: Value| {
        let f = &f;
        let token = alice.token.clone();
        async move { f.json(method, &path, Some(&token), &body).await }
    };
    let apt = format!("/fhir/Appointment/{appointment}");
    let enc = format!("/fhir/Encounter/{encounter}");
    update(
        Method::PATCH,
        apt.clone(),
        json!([{ "op": "replace", "path": "/start", "value": "x" }]),
    )
    .await
    .assert_outcome(StatusCode::UNPROCESSABLE_ENTITY);
    update(Method::PATCH, apt.clone(), json!({ "status": "noshow" }))
        .await
        .assert_outcome(StatusCode::UNPROCESSABLE_ENTITY);
    update(
        Method::PUT,
        apt.clone(),
        json!({ "resourceType": "Appointment", "id": "other", "status": "cancelled" }),
    )
    .await
    .assert_outcome(StatusCode::BAD_REQUEST);
    update(
        Method::PUT,
        apt.clone(),
        json!({ "resourceType": "Encounter", "status": "cancelled" }),
    )
    .await
    .assert_outcome(StatusCode::BAD_REQUEST);
    // A call is active: the appointment cannot be cancelled yet.
    f.cancel(&alice, &appointment)
        .await
        .assert_outcome(StatusCode::CONFLICT);
    let unchanged = update(Method::PATCH, apt.clone(), json!({ "status": "booked" })).await;
    assert_eq!(unchanged.status(), StatusCode::OK);
    update(Method::PATCH, enc.clone(), json!({ "status": "cancelled" }))
        .await
        .assert_outcome(StatusCode::UNPROCESSABLE_ENTITY);
    f.end(&alice, &encounter).await;
    update(
        Method::PATCH,
        enc.clone(),
        json!({ "status": "in-progress" }),
    )
    .await
    .assert_outcome(StatusCode::CONFLICT);
    f.send_media_reply(&alice, &encounter, b"late")
        .await
        .assert_outcome(StatusCode::CONFLICT);
    let upgrade = format!("/fhir/Encounter/{encounter}/$upgrade");
    f.send(Method::POST, &upgrade, Some(&alice.token), &[], None)
        .await
        .assert_outcome(StatusCode::CONFLICT);
    // Over the chunk limit: 413 whether raw or base64.
    let too_big = vec![b'x'; clinic::media::CHUNK_BYTES_MAX + 1];
    let (_, live, _) = f.book_and_start(&alice).await;
    let code = f
        .send_media_reply(&alice, &live, &too_big)
        .await
        .assert_outcome(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "too-costly");
    let doubled = vec![b'x'; 2 * clinic::media::CHUNK_BYTES_MAX];
    f.send_media_reply(&alice, &live, &doubled)
        .await
        .assert_outcome(StatusCode::PAYLOAD_TOO_LARGE);
    // Erasing a live recording conflicts.
    let (_, _, live_media) = f.book_and_start(&alice).await;
    f.erase(&alice, &live_media)
        .await
        .assert_outcome(StatusCode::CONFLICT);
}

/// Every operation of the document, as `(method, path template, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            out.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_fhir_openapi_document_can_drive_a_binding_draft() {
    // Goal: /fhir/openapi.json names every operation (unique operationIds,
    // a tag each), every $ref resolves, the search's Bundle names its next
    // link and where items and ids are, and /fhir/metadata is a
    // CapabilityStatement naming the token endpoint.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let doc = f
        .send(Method::GET, "/fhir/openapi.json", None, &[], None)
        .await
        .json();
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["servers"][0]["url"], "/fhir");
    let ops = operations(&doc);
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().expect("operationId"))
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    for expected in [
        "createPatient",
        "token",
        "createAppointment",
        "patchAppointment",
        "updateAppointment",
        "createEncounter",
        "upgradeEncounter",
        "patchEncounter",
        "createBinary",
        "readBinary",
        "searchMedia",
        "readMedia",
        "deleteMedia",
        "capabilities",
    ] {
        assert!(ids.contains(&expected), "{expected}");
    }
    for (method, path, op) in &ops {
        assert!(
            op["tags"].as_array().is_some_and(|t| t.len() == 1),
            "{method} {path}"
        );
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
    }
    // Every $ref resolves.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == "$ref" {
                        out.push(value.as_str().expect("ref").to_owned());
                    } else {
                        refs(value, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let pointer = reference.strip_prefix('#').expect("local ref");
        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
    }
    // The search: Bundle with link relations self/next, items and ids.
    let search = &doc["paths"]["/Media"]["get"];
    assert_eq!(
        search["responses"]["200"]["content"]["application/fhir+json"]["schema"]["$ref"],
        "#/components/schemas/MediaBundle"
    );
    let bundle = &doc["components"]["schemas"]["MediaBundle"];
    assert_eq!(
        bundle["properties"]["link"]["items"]["$ref"],
        "#/components/schemas/BundleLink"
    );
    let relations = &doc["components"]["schemas"]["BundleLink"]["properties"]["relation"]["enum"];
    assert_eq!(relations, &json!(["self", "next"]));
    assert_eq!(search["x-pagination"]["style"], "next-url");
    assert_eq!(search["x-pagination"]["items"], "$.entry[*].resource");
    assert!(search["responses"]["200"]["links"]["next"].is_object());
    let media = &doc["components"]["schemas"]["Media"]["properties"];
    assert!(media["content"]["properties"]["url"].is_object());
    // The upgrade operation returns the new Media.
    assert_eq!(
        doc["paths"]["/Encounter/{id}/$upgrade"]["post"]["responses"]["200"]["content"]["application/fhir+json"]
            ["schema"]["$ref"],
        "#/components/schemas/Media"
    );
    // The registration documents where the client secret is.
    assert!(
        doc["paths"]["/Patient"]["post"]["responses"]["201"]["headers"]["x-client-secret"]
            .is_object()
    );

    let metadata = f.send(Method::GET, "/fhir/metadata", None, &[], None).await;
    assert_eq!(metadata.status(), StatusCode::OK);
    assert_eq!(
        metadata.reply.content_type.as_deref(),
        Some("application/fhir+json")
    );
    let statement = metadata.json();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let token_uri = &statement["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"];
    assert_eq!(token_uri, &json!(format!("{}/fhir/auth/token", h.base)));
    let types: Vec<&str> = statement["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["Patient", "Appointment", "Encounter", "Media", "Binary"]
    );
}

#[tokio::test]
async fn every_fhir_answer_is_documented() {
    // Goal: the document is true to the service: each status we provoke is
    // documented for its operation.
    // Method: a set of good and bad requests, each matched to its path
    // template; the status must be a documented response of that operation.
    let h = clean_clinic().await;
    let f = Fhir { h: &h };
    let doc = f
        .send(Method::GET, "/fhir/openapi.json", None, &[], None)
        .await
        .json();
    let alice = f.register("alice").await;
    let bob = f.register("bob").await;
    let (apt, enc, media) = f.book_and_start(&alice).await;
    let t = Some(alice.token.as_str());
    let b = Some(bob.token.as_str());
    let patch_cancel = r#"[{"op":"replace","path":"/status","value":"cancelled"}]"#;
    /// Method, url, documented path template, token, body.
    type Probe<'a> = (Method, String, &'a str, Option<&'a str>, Option<String>);
    let requests: Vec<Probe<'_>> = vec![
        (
            Method::GET,
            "/fhir/metadata".into(),
            "/metadata",
            None,
            None,
        ),
        (
            Method::POST,
            "/fhir/Patient".into(),
            "/Patient",
            None,
            Some("{}".into()),
        ),
        (
            Method::GET,
            format!("/fhir/Patient/{}", alice.id),
            "/Patient/{id}",
            t,
            None,
        ),
        (
            Method::GET,
            format!("/fhir/Patient/{}", alice.id),
            "/Patient/{id}",
            b,
            None,
        ),
        (
            Method::GET,
            format!("/fhir/Patient/{}", alice.id),
            "/Patient/{id}",
            None,
            None,
        ),
        (
            Method::POST,
            "/fhir/auth/token".into(),
            "/auth/token",
            None,
            Some("{}".into()),
        ),
        (
            Method::POST,
            "/fhir/Appointment".into(),
            "/Appointment",
            t,
            Some("[]".into()),
        ),
        (
            Method::GET,
            format!("/fhir/Appointment/{apt}"),
            "/Appointment/{id}",
            t,
            None,
        ),
        (
            Method::PATCH,
            format!("/fhir/Appointment/{apt}"),
            "/Appointment/{id}",
            t,
            Some(patch_cancel.into()),
        ),
        (
            Method::PUT,
            format!("/fhir/Appointment/{apt}"),
            "/Appointment/{id}",
            b,
            Some("{}".into()),
        ),
        (
            Method::POST,
            "/fhir/Encounter".into(),
            "/Encounter",
            t,
            Some("{}".into()),
        ),
        (
            Method::GET,
            format!("/fhir/Encounter/{enc}"),
            "/Encounter/{id}",
            t,
            None,
        ),
        (
            Method::POST,
            format!("/fhir/Encounter/{enc}/$upgrade"),
            "/Encounter/{id}/$upgrade",
            t,
            None,
        ),
        (
            Method::POST,
            format!("/fhir/Encounter/{enc}/$upgrade"),
            "/Encounter/{id}/$upgrade",
            t,
            None,
        ),
        (
            Method::POST,
            "/fhir/Binary".into(),
            "/Binary",
            t,
            Some("x".into()),
        ),
        (Method::GET, "/fhir/Media".into(), "/Media", t, None),
        (
            Method::GET,
            format!("/fhir/Media?subject={}", bob.id),
            "/Media",
            t,
            None,
        ),
        (
            Method::GET,
            format!("/fhir/Media/{media}"),
            "/Media/{id}",
            t,
            None,
        ),
        (
            Method::DELETE,
            format!("/fhir/Media/{media}"),
            "/Media/{id}",
            t,
            None,
        ),
        (
            Method::PUT,
            format!("/fhir/Encounter/{enc}"),
            "/Encounter/{id}",
            t,
            Some(r#"{"resourceType":"Encounter","status":"finished"}"#.into()),
        ),
        (
            Method::DELETE,
            format!("/fhir/Media/{media}"),
            "/Media/{id}",
            t,
            None,
        ),
        (
            Method::GET,
            format!("/fhir/Media/{media}"),
            "/Media/{id}",
            t,
            None,
        ),
        (
            Method::GET,
            "/fhir/Binary/unknown".into(),
            "/Binary/{id}",
            t,
            None,
        ),
    ];
    for (method, url, template, token, body) in requests {
        let reply = f
            .send(
                method.clone(),
                &url,
                token,
                &[],
                body.map(String::into_bytes),
            )
            .await;
        let operation = &doc["paths"][template][method.as_str().to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {template} is documented");
        let status = reply.status().as_u16().to_string();
        assert!(
            operation["responses"][&status].is_object(),
            "{method} {template}: {status} is not documented"
        );
    }
}
