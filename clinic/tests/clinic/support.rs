//! A small typed client for the api service, for tests only.

use clinic::{Config, Fault, FaultSet, RunningClinic};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A running clinic and a client for it.
pub struct Harness {
    /// Kept so the clinic lives as long as the test.
    pub clinic: RunningClinic,
    /// The api service's base URL.
    pub base: String,
    /// The HTTP client.
    pub http: reqwest::Client,
}

/// A registered patient.
#[derive(Clone, Debug)]
pub struct Patient {
    /// The patient id.
    pub id: String,
    /// The bearer token.
    pub token: String,
}

/// A raw response: status, kind header and body.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The content type, if any.
    pub content_type: Option<String>,
    /// The `x-recording-kind` header, if any.
    pub kind: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON; panics (failing the test) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "status {} body is not JSON ({err}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status and that the body is the JSON error shape.
    pub fn assert_error(&self, status: StatusCode) {
        assert_eq!(
            self.status,
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        let body = self.json();
        let object = body.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "error body has only `error`: {body}");
        assert!(object["error"].is_string(), "error is a string: {body}");
    }
}

/// Starts a clinic with `faults` planted.
pub async fn clinic_with(faults: &[Fault]) -> Harness {
    let config = Config {
        faults: faults.iter().copied().collect::<FaultSet>(),
        db_path: None,
    };
    let clinic = clinic::start(config).await.expect("clinic starts");
    let base = clinic.api_url();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    Harness { clinic, base, http }
}

/// Starts a clinic with no fault.
pub async fn clean_clinic() -> Harness {
    clinic_with(&[]).await
}

impl Harness {
    /// Sends one request; `token` becomes a bearer header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request sent");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let content_type = header("content-type");
        let kind = header("x-recording-kind");
        let body = response.bytes().await.expect("body read").to_vec();
        Reply {
            status,
            content_type,
            kind,
            body,
        }
    }

    /// Sends a JSON body.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Reply {
        self.send(method, path, token, Some(body.to_string().into_bytes()))
            .await
    }

    /// Registers a patient.
    pub async fn register(&self, name: &str) -> Patient {
        let reply = self
            .send_json(
                Method::POST,
                "/v1/patients",
                None,
                serde_json::json!({ "display_name": name }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let body = reply.json();
        assert_eq!(body["display_name"], name);
        Patient {
            id: string(&body, "patient_id"),
            token: string(&body, "token"),
        }
    }

    /// Books an appointment; returns its id.
    pub async fn book(&self, patient: &Patient) -> String {
        let reply = self
            .send_json(
                Method::POST,
                "/v1/appointments",
                Some(&patient.token),
                serde_json::json!({ "slot": "2030-01-01T09:00", "notes": "synthetic" }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        string(&reply.json(), "appointment_id")
    }

    /// Starts a call; returns `(call_id, recording_id)`.
    pub async fn start_call(&self, patient: &Patient, appointment: &str) -> (String, String) {
        let reply = self
            .post(patient, &format!("/v1/appointments/{appointment}/call"))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        let body = reply.json();
        assert_eq!(body["mode"], "audio");
        (string(&body, "call_id"), string(&body, "recording_id"))
    }

    /// Books and starts a call; returns `(appointment_id, call_id, recording_id)`.
    pub async fn book_and_call(&self, patient: &Patient) -> (String, String, String) {
        let appointment = self.book(patient).await;
        let (call, recording) = self.start_call(patient, &appointment).await;
        (appointment, call, recording)
    }

    /// Upgrades a call; returns the new video recording's id.
    pub async fn upgrade(&self, patient: &Patient, call: &str) -> String {
        let reply = self
            .post(patient, &format!("/v1/calls/{call}/upgrade"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
        let body = reply.json();
        assert_eq!(body["mode"], "video");
        assert_eq!(body["call_id"], call);
        string(&body, "recording_id")
    }

    /// Sends a media chunk; asserts 202.
    pub async fn send_media(&self, patient: &Patient, call: &str, chunk: &[u8]) {
        let reply = self
            .send(
                Method::POST,
                &format!("/v1/calls/{call}/media"),
                Some(&patient.token),
                Some(chunk.to_vec()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(reply.json()["received"], chunk.len());
    }

    /// Ends a call; asserts 200.
    pub async fn end(&self, patient: &Patient, call: &str) {
        let reply = self.post(patient, &format!("/v1/calls/{call}/end")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.json(),
            serde_json::json!({ "call_id": call, "status": "ended" })
        );
    }

    /// One history page as JSON; asserts 200.
    pub async fn history(&self, patient: &Patient, page: u32, per_page: u32) -> Value {
        let reply = self
            .get(
                patient,
                &format!("/v1/me/recordings?page={page}&per_page={per_page}"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()
    }

    /// The recording ids on one history page.
    pub async fn history_ids(&self, patient: &Patient, page: u32, per_page: u32) -> Vec<String> {
        ids_of(&self.history(patient, page, per_page).await)
    }

    /// Plays a recording back.
    pub async fn play(&self, patient: &Patient, recording: &str) -> Reply {
        self.get(patient, &format!("/v1/recordings/{recording}"))
            .await
    }

    /// Erases a recording.
    pub async fn erase(&self, patient: &Patient, recording: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/v1/recordings/{recording}"),
            Some(&patient.token),
            None,
        )
        .await
    }

    /// Cancels an appointment.
    pub async fn cancel(&self, patient: &Patient, appointment: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/v1/appointments/{appointment}"),
            Some(&patient.token),
            None,
        )
        .await
    }

    /// An authenticated POST without a body.
    pub async fn post(&self, patient: &Patient, path: &str) -> Reply {
        self.send(Method::POST, path, Some(&patient.token), None)
            .await
    }

    /// An authenticated GET.
    pub async fn get(&self, patient: &Patient, path: &str) -> Reply {
        self.send(Method::GET, path, Some(&patient.token), None)
            .await
    }
}

/// The string field `key` of `body`.
pub fn string(body: &Value, key: &str) -> String {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string in {body}"))
        .to_owned()
}

/// The `recording_id`s of a history page.
pub fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|item| string(item, "recording_id"))
        .collect()
}
