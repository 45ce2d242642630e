//! A small client for the `/fhir` shape, for tests only.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Harness, Reply};

/// A patient registered and logged in through `/fhir`.
#[derive(Clone, Debug)]
pub struct FhirPatient {
    /// The `Patient` logical id.
    pub id: String,
    /// The bearer token from the token endpoint.
    pub token: String,
}

/// A response with its headers.
#[derive(Debug)]
pub struct FhirReply {
    /// The reply as the `/v1` helpers see it.
    pub reply: Reply,
    /// Every header.
    pub headers: HeaderMap,
}

impl FhirReply {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.reply.status
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        self.reply.json()
    }

    /// Asserts the status and that the body is an `OperationOutcome` error
    /// with one issue; returns its issue code.
    pub fn assert_outcome(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status(),
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.reply.body)
        );
        assert_eq!(
            self.reply.content_type.as_deref(),
            Some("application/fhir+json")
        );
        let body = self.json();
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        let issues = body["issue"].as_array().expect("issue is an array");
        assert_eq!(issues.len(), 1, "{body}");
        assert_eq!(issues[0]["severity"], "error", "{body}");
        assert!(issues[0]["diagnostics"].is_string(), "{body}");
        issues[0]["code"].as_str().expect("code").to_owned()
    }
}

/// The `/fhir` client over a running clinic.
pub struct Fhir<'a> {
    /// The clinic.
    pub h: &'a Harness,
}

/// The extension on `Encounter` naming its current `Media`.
pub const CURRENT_MEDIA: &str = "https://chaperone.dev/fhir/StructureDefinition/current-media";

impl Fhir<'_> {
    /// Sends a request to `url` (absolute, or a path under the clinic).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> FhirReply {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.h.base)
        };
        let mut request = self.h.http.request(method, url);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request sent");
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let reply = Reply {
            status: response.status(),
            content_type: header("content-type"),
            kind: header("x-recording-kind"),
            body: response.bytes().await.expect("body read").to_vec(),
        };
        FhirReply { reply, headers }
    }

    /// Sends a JSON body.
    pub async fn json(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> FhirReply {
        self.send(
            method,
            url,
            token,
            &[("content-type", "application/fhir+json")],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Registers a patient and exchanges its secret for a token (JSON body).
    pub async fn register(&self, name: &str) -> FhirPatient {
        let created = self
            .json(
                Method::POST,
                "/fhir/Patient",
                None,
                &json!({ "resourceType": "Patient", "name": [{ "text": name }] }),
            )
            .await;
        assert_eq!(
            created.status(),
            StatusCode::CREATED,
            "{:?}",
            created.json()
        );
        let body = created.json();
        assert_eq!(body["name"][0]["text"], name);
        let id = text(&body, "/id");
        let secret = created.headers["x-client-secret"]
            .to_str()
            .expect("secret")
            .to_owned();
        let token = self
            .json(
                Method::POST,
                "/fhir/auth/token",
                None,
                &json!({
                    "grant_type": "client_credentials",
                    "client_id": id,
                    "client_secret": secret,
                }),
            )
            .await;
        assert_eq!(token.status(), StatusCode::OK, "{:?}", token.json());
        let body = token.json();
        assert_eq!(body["patient"], id.as_str());
        assert_eq!(body["token_type"], "Bearer");
        FhirPatient {
            id,
            token: text(&body, "/access_token"),
        }
    }

    /// Books an appointment; returns its id.
    pub async fn book(&self, p: &FhirPatient) -> String {
        let reply = self
            .json(
                Method::POST,
                "/fhir/Appointment",
                Some(&p.token),
                &json!({
                    "resourceType": "Appointment",
                    "start": "2030-01-01T09:00",
                    "description": "synthetic",
                    "participant": [{ "actor": { "reference": format!("Patient/{}", p.id) } }],
                }),
            )
            .await;
        assert_eq!(reply.status(), StatusCode::CREATED, "{:?}", reply.json());
        let body = reply.json();
        assert_eq!(body["status"], "booked");
        text(&body, "/id")
    }

    /// Cancels an appointment with a JSON Patch.
    pub async fn cancel(&self, p: &FhirPatient, appointment: &str) -> FhirReply {
        self.json(
            Method::PATCH,
            &format!("/fhir/Appointment/{appointment}"),
            Some(&p.token),
            &json!([{ "op": "replace", "path": "/status", "value": "cancelled" }]),
        )
        .await
    }

    /// Starts a call; returns `(encounter id, its audio Media id)`.
    pub async fn start(&self, p: &FhirPatient, appointment: &str) -> (String, String) {
        let reply = self.start_reply(p, appointment).await;
        assert_eq!(reply.status(), StatusCode::CREATED, "{:?}", reply.json());
        let body = reply.json();
        assert_eq!(body["status"], "in-progress");
        assert_eq!(body["class"]["code"], "VR");
        assert_eq!(body["extension"][0]["valueCode"], "audio");
        (text(&body, "/id"), current_media(&body))
    }

    /// The raw answer to starting a call.
    pub async fn start_reply(&self, p: &FhirPatient, appointment: &str) -> FhirReply {
        self.json(
            Method::POST,
            "/fhir/Encounter",
            Some(&p.token),
            &json!({
                "resourceType": "Encounter",
                "status": "in-progress",
                "class": { "code": "VR" },
                "appointment": [{ "reference": format!("Appointment/{appointment}") }],
            }),
        )
        .await
    }

    /// Books and starts a call; returns `(appointment, encounter, audio Media)`.
    pub async fn book_and_start(&self, p: &FhirPatient) -> (String, String, String) {
        let appointment = self.book(p).await;
        let (encounter, media) = self.start(p, &appointment).await;
        (appointment, encounter, media)
    }

    /// Upgrades a call; returns the new video Media's id.
    pub async fn upgrade(&self, p: &FhirPatient, encounter: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                &format!("/fhir/Encounter/{encounter}/$upgrade"),
                Some(&p.token),
                &[],
                None,
            )
            .await;
        assert_eq!(reply.status(), StatusCode::OK, "{:?}", reply.json());
        let body = reply.json();
        assert_eq!(body["resourceType"], "Media");
        assert_eq!(body["type"]["coding"][0]["code"], "video");
        text(&body, "/id")
    }

    /// Sends a chunk as raw bytes with `X-Security-Context`; asserts 202.
    pub async fn send_media(&self, p: &FhirPatient, encounter: &str, chunk: &[u8]) {
        let reply = self.send_media_reply(p, encounter, chunk).await;
        assert_eq!(reply.status(), StatusCode::ACCEPTED, "{:?}", reply.json());
    }

    /// The raw answer to sending a chunk.
    pub async fn send_media_reply(
        &self,
        p: &FhirPatient,
        encounter: &str,
        chunk: &[u8],
    ) -> FhirReply {
        let context = format!("Encounter/{encounter}");
        self.send(
            Method::POST,
            "/fhir/Binary",
            Some(&p.token),
            &[
                ("content-type", "application/octet-stream"),
                ("x-security-context", &context),
            ],
            Some(chunk.to_vec()),
        )
        .await
    }

    /// Ends a call with a merge patch; asserts 200.
    pub async fn end(&self, p: &FhirPatient, encounter: &str) {
        let reply = self
            .json(
                Method::PATCH,
                &format!("/fhir/Encounter/{encounter}"),
                Some(&p.token),
                &json!({ "status": "finished" }),
            )
            .await;
        assert_eq!(reply.status(), StatusCode::OK, "{:?}", reply.json());
        assert_eq!(reply.json()["status"], "finished");
    }

    /// A search; asserts 200 and a searchset; returns the Bundle.
    pub async fn search(&self, p: &FhirPatient, url: &str) -> Value {
        let reply = self.send(Method::GET, url, Some(&p.token), &[], None).await;
        assert_eq!(reply.status(), StatusCode::OK, "{:?}", reply.json());
        let bundle = reply.json();
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        bundle
    }

    /// Every Media id `p` sees from `Media?subject=` (its own), following
    /// `next` links; also returns the number of pages.
    pub async fn all_media(&self, p: &FhirPatient, count: u32) -> (Vec<String>, usize) {
        self.follow(
            p,
            &format!("/fhir/Media?subject=Patient/{}&_count={count}", p.id),
        )
        .await
    }

    /// Follows `next` links from `url` (at most 50 pages); returns the Media
    /// ids and the number of pages.
    pub async fn follow(&self, p: &FhirPatient, url: &str) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut url = url.to_owned();
        for pages in 1..=50 {
            let bundle = self.search(p, &url).await;
            ids.extend(media_ids(&bundle));
            match next_link(&bundle) {
                Some(next) => url = next,
                None => return (ids, pages),
            }
        }
        panic!("more than 50 pages");
    }

    /// Plays a Media back: reads it, then GETs its `content.url`. Returns the
    /// Media read's reply and, if it was 200, the Binary's.
    pub async fn play(&self, p: &FhirPatient, media: &str) -> (FhirReply, Option<FhirReply>) {
        let read = self
            .send(
                Method::GET,
                &format!("/fhir/Media/{media}"),
                Some(&p.token),
                &[],
                None,
            )
            .await;
        if read.status() != StatusCode::OK {
            return (read, None);
        }
        let url = text(&read.json(), "/content/url");
        let bytes = self
            .send(Method::GET, &url, Some(&p.token), &[], None)
            .await;
        (read, Some(bytes))
    }

    /// Plays back and returns the bytes, or the first failing status.
    pub async fn play_bytes(&self, p: &FhirPatient, media: &str) -> Result<Vec<u8>, StatusCode> {
        match self.play(p, media).await {
            (_, Some(bytes)) if bytes.status() == StatusCode::OK => Ok(bytes.reply.body),
            (_, Some(bytes)) => Err(bytes.status()),
            (read, None) => Err(read.status()),
        }
    }

    /// Erases a Media.
    pub async fn erase(&self, p: &FhirPatient, media: &str) -> FhirReply {
        self.send(
            Method::DELETE,
            &format!("/fhir/Media/{media}"),
            Some(&p.token),
            &[],
            None,
        )
        .await
    }
}

/// The string at a JSON Pointer.
pub fn text(body: &Value, pointer: &str) -> String {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is a string in {body}"))
        .to_owned()
}

/// The Media id an Encounter's current-media extension references.
pub fn current_media(encounter: &Value) -> String {
    let extension = encounter["extension"]
        .as_array()
        .expect("extension")
        .iter()
        .find(|e| e["url"] == CURRENT_MEDIA)
        .expect("current-media extension");
    let reference = text(extension, "/valueReference/reference");
    reference
        .strip_prefix("Media/")
        .expect("a Media reference")
        .to_owned()
}

/// The Media ids of a Bundle's entries.
pub fn media_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .expect("entry is an array")
        .iter()
        .map(|entry| {
            assert_eq!(entry["resource"]["resourceType"], "Media");
            text(entry, "/resource/id")
        })
        .collect()
}

/// The url of a Bundle's `next` link, if any.
pub fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()
        .expect("link is an array")
        .iter()
        .find(|link| link["relation"] == "next")
        .map(|link| text(link, "/url"))
}
