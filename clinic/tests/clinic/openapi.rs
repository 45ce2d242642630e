//! The OpenAPI document is true to the service.
//!
//! A small checker resolves each response against the document: its status
//! must be documented for the operation, and a JSON body must conform to the
//! documented schema. A lifecycle that reaches every documented status of
//! every operation runs through it.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Harness, Reply, clean_clinic, string};

const PATHS: [(&str, &[&str]); 11] = [
    ("/v1/patients", &["post"]),
    ("/v1/appointments", &["post"]),
    ("/v1/appointments/{id}", &["delete"]),
    ("/v1/appointments/{id}/call", &["post"]),
    ("/v1/calls/{id}/upgrade", &["post"]),
    ("/v1/calls/{id}/media", &["post"]),
    ("/v1/calls/{id}/end", &["post"]),
    ("/v1/me/recordings", &["get"]),
    ("/v1/recordings/{id}", &["delete", "get"]),
    ("/openapi.json", &["get"]),
    ("/healthz", &["get"]),
];

#[tokio::test]
async fn the_served_document_parses_and_lists_every_route() {
    // Goal: /openapi.json is an OpenAPI 3.0 document with exactly the routes.
    // Method: fetch it, compare with the library's and with the route list.
    let h = clean_clinic().await;
    let reply = h.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert_eq!(doc, clinic::openapi::document());
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.0"));
    let listed: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|key| *key != "parameters")
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let expected: BTreeMap<String, BTreeSet<String>> = PATHS
        .iter()
        .map(|(path, methods)| {
            let methods = methods.iter().map(|m| (*m).to_owned()).collect();
            ((*path).to_owned(), methods)
        })
        .collect();
    assert_eq!(listed, expected);
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for reference in refs {
        assert!(resolve(&doc, &reference).is_some(), "dangling {reference}");
    }
}

#[tokio::test]
async fn every_documented_status_is_reached_and_every_answer_is_documented() {
    // Goal: the document is true: every answer's status is documented and its
    // JSON body conforms; every documented status except 500 and 502 (which
    // need a broken store or media service) is actually reached.
    // Method: a lifecycle of requests covering each status, checked one by one.
    let h = clean_clinic().await;
    let doc = clinic::openapi::document();
    let mut c = Checker {
        h: &h,
        doc: &doc,
        reached: BTreeSet::new(),
    };
    let registered = c
        .check(
            Method::POST,
            "/v1/patients",
            "/v1/patients",
            None,
            Some(json!({ "display_name": "alice" })),
        )
        .await;
    let alice = string(&registered.json(), "token");
    let registered = c
        .check(
            Method::POST,
            "/v1/patients",
            "/v1/patients",
            None,
            Some(json!({ "display_name": "bob" })),
        )
        .await;
    let bob = string(&registered.json(), "token");
    c.check_raw(
        Method::POST,
        "/v1/patients",
        "/v1/patients",
        None,
        b"{".to_vec(),
    )
    .await;
    c.check(
        Method::POST,
        "/v1/patients",
        "/v1/patients",
        None,
        Some(json!({ "display_name": "x".repeat(70_000) })),
    )
    .await;

    let book = json!({ "slot": "s", "notes": "n" });
    let booked = c
        .check(
            Method::POST,
            "/v1/appointments",
            "/v1/appointments",
            Some(&alice),
            Some(book.clone()),
        )
        .await;
    let apt = string(&booked.json(), "appointment_id");
    c.check(
        Method::POST,
        "/v1/appointments",
        "/v1/appointments",
        None,
        Some(book.clone()),
    )
    .await;
    c.check(
        Method::POST,
        "/v1/appointments",
        "/v1/appointments",
        Some(&alice),
        Some(json!({})),
    )
    .await;
    c.check(
        Method::POST,
        "/v1/appointments",
        "/v1/appointments",
        Some(&alice),
        Some(json!({ "slot": "x".repeat(70_000) })),
    )
    .await;

    let call_t = "/v1/appointments/{id}/call";
    let started = c
        .check(
            Method::POST,
            call_t,
            &format!("/v1/appointments/{apt}/call"),
            Some(&alice),
            None,
        )
        .await;
    let call = string(&started.json(), "call_id");
    let audio = string(&started.json(), "recording_id");
    c.check(
        Method::POST,
        call_t,
        &format!("/v1/appointments/{apt}/call"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::POST,
        call_t,
        &format!("/v1/appointments/{apt}/call"),
        Some(&bob),
        None,
    )
    .await;
    c.check(
        Method::POST,
        call_t,
        &format!("/v1/appointments/{apt}/call"),
        None,
        None,
    )
    .await;

    let apt_t = "/v1/appointments/{id}";
    c.check(
        Method::DELETE,
        apt_t,
        &format!("/v1/appointments/{apt}"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        apt_t,
        &format!("/v1/appointments/{apt}"),
        Some(&bob),
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        apt_t,
        &format!("/v1/appointments/{apt}"),
        None,
        None,
    )
    .await;

    let media_t = "/v1/calls/{id}/media";
    let media = format!("/v1/calls/{call}/media");
    c.check_raw(
        Method::POST,
        media_t,
        &media,
        Some(&alice),
        b"canary".to_vec(),
    )
    .await;
    c.check_raw(
        Method::POST,
        media_t,
        &media,
        Some(&alice),
        vec![0; (1 << 20) + 1],
    )
    .await;
    c.check_raw(Method::POST, media_t, &media, Some(&bob), b"x".to_vec())
        .await;
    c.check_raw(Method::POST, media_t, &media, None, b"x".to_vec())
        .await;

    let history_t = "/v1/me/recordings";
    c.check(
        Method::GET,
        history_t,
        "/v1/me/recordings?page=1&per_page=5",
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::GET,
        history_t,
        "/v1/me/recordings?page=0",
        Some(&alice),
        None,
    )
    .await;
    c.check(Method::GET, history_t, "/v1/me/recordings", None, None)
        .await;

    let rec_t = "/v1/recordings/{id}";
    let played = c
        .check(
            Method::GET,
            rec_t,
            &format!("/v1/recordings/{audio}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(played.body, b"canary");
    c.check(
        Method::GET,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        Some(&bob),
        None,
    )
    .await;
    c.check(
        Method::GET,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        None,
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        Some(&alice),
        None,
    )
    .await;

    let upgrade_t = "/v1/calls/{id}/upgrade";
    let upgrade = format!("/v1/calls/{call}/upgrade");
    c.check(Method::POST, upgrade_t, &upgrade, Some(&bob), None)
        .await;
    c.check(Method::POST, upgrade_t, &upgrade, None, None).await;
    c.check(Method::POST, upgrade_t, &upgrade, Some(&alice), None)
        .await;
    c.check(Method::POST, upgrade_t, &upgrade, Some(&alice), None)
        .await;

    let end_t = "/v1/calls/{id}/end";
    let end = format!("/v1/calls/{call}/end");
    c.check(Method::POST, end_t, &end, Some(&bob), None).await;
    c.check(Method::POST, end_t, &end, None, None).await;
    c.check(Method::POST, end_t, &end, Some(&alice), None).await;
    c.check(Method::POST, end_t, &end, Some(&alice), None).await;
    c.check_raw(
        Method::POST,
        media_t,
        &media,
        Some(&alice),
        b"late".to_vec(),
    )
    .await;

    c.check(
        Method::DELETE,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        None,
        None,
    )
    .await;
    c.check(
        Method::GET,
        rec_t,
        &format!("/v1/recordings/{audio}"),
        Some(&alice),
        None,
    )
    .await;

    c.check(
        Method::DELETE,
        apt_t,
        &format!("/v1/appointments/{apt}"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::DELETE,
        apt_t,
        &format!("/v1/appointments/{apt}"),
        Some(&alice),
        None,
    )
    .await;
    c.check(
        Method::POST,
        call_t,
        &format!("/v1/appointments/{apt}/call"),
        Some(&alice),
        None,
    )
    .await;

    c.check(Method::GET, "/openapi.json", "/openapi.json", None, None)
        .await;
    c.check(Method::GET, "/healthz", "/healthz", None, None)
        .await;

    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for status in responses.keys() {
                let key = (method.clone(), path.clone(), status.clone());
                // 500 needs a broken store, 502 and 503 a broken media service
                // (see in_process.rs), and a media body that cannot be read a
                // broken HTTP stream.
                let unreachable_here = matches!(status.as_str(), "500" | "502" | "503")
                    || (path == "/v1/calls/{id}/media" && status == "400");
                if !unreachable_here && !c.reached.contains(&key) {
                    missing.push(key);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but never reached: {missing:?}"
    );
}

struct Checker<'a> {
    h: &'a Harness,
    doc: &'a Value,
    reached: BTreeSet<(String, String, String)>,
}

impl Checker<'_> {
    async fn check(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|body| body.to_string().into_bytes());
        let reply = self.h.send(method.clone(), path, token, body).await;
        self.verify(&method, template, &reply);
        reply
    }

    async fn check_raw(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let reply = self.h.send(method.clone(), path, token, Some(body)).await;
        self.verify(&method, template, &reply);
        reply
    }

    fn verify(&mut self, method: &Method, template: &str, reply: &Reply) {
        let method = method.as_str().to_ascii_lowercase();
        let status = reply.status.as_u16().to_string();
        let operation = &self.doc["paths"][template][&method];
        assert!(operation.is_object(), "{method} {template} is documented");
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which is not documented: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        self.reached
            .insert((method.clone(), template.to_owned(), status.clone()));
        let content = &response["content"];
        match content.as_object().and_then(|c| c.keys().next()) {
            None => assert!(
                reply.body.is_empty(),
                "{method} {template} {status} has no body"
            ),
            Some(media_type) => {
                assert_eq!(reply.content_type.as_deref(), Some(media_type.as_str()));
                if media_type == "application/json" {
                    let schema = &content[media_type]["schema"];
                    conforms(
                        self.doc,
                        &reply.json(),
                        schema,
                        &format!("{method} {template} {status}"),
                    );
                }
            }
        }
        if response["headers"].get("x-recording-kind").is_some() {
            let kind = reply.kind.as_deref().expect("x-recording-kind present");
            assert!(kind == "audio" || kind == "video");
        }
    }
}

/// Asserts `value` conforms to the subset of JSON Schema the document uses.
fn conforms(doc: &Value, value: &Value, schema: &Value, at: &str) {
    if let Some(reference) = schema["$ref"].as_str() {
        let target =
            resolve(doc, reference).unwrap_or_else(|| panic!("{at}: dangling {reference}"));
        return conforms(doc, value, target, at);
    }
    if let Some(allowed) = schema["enum"].as_array() {
        assert!(allowed.contains(value), "{at}: {value} not in {allowed:?}");
    }
    match schema["type"].as_str() {
        Some("object") => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().expect("name");
                assert!(object.contains_key(name), "{at}: missing {name} in {value}");
            }
            if let Some(properties) = schema["properties"].as_object() {
                for (name, field) in object {
                    let property = properties
                        .get(name)
                        .unwrap_or_else(|| panic!("{at}: undocumented field {name}"));
                    conforms(doc, field, property, &format!("{at}.{name}"));
                }
            }
        }
        Some("array") => {
            for item in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
            {
                conforms(doc, item, &schema["items"], &format!("{at}[]"));
            }
        }
        Some("string") => assert!(value.is_string(), "{at}: {value} is not a string"),
        Some("integer") => {
            let n = value
                .as_i64()
                .unwrap_or_else(|| panic!("{at}: {value} is not an integer"));
            if let Some(min) = schema["minimum"].as_i64() {
                assert!(n >= min, "{at}: {n} < {min}");
            }
            if let Some(max) = schema["maximum"].as_i64() {
                assert!(n <= max, "{at}: {n} > {max}");
            }
        }
        Some(other) => panic!("{at}: checker does not know type {other}"),
        None => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}
