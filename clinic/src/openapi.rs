//! The api service's OpenAPI 3.0 document, served at `GET /openapi.json`.
//!
//! **Invariant:** the document is true to what [`crate::api`] does: every
//! route, method, status code and body shape it can produce is here, and
//! nothing else. The integration tests hold the two together by probing every
//! documented operation and checking the answer's status is documented.
//!
//! Planted faults change which data a response carries, never its shape, so
//! there is one document for every fault set.

use serde_json::{Value, json};

/// The OpenAPI 3.0 document of the api service.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "clinic api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The reference telehealth service Chaperone tests against. \
                Patients book appointments, hold audio calls that can be upgraded to video, \
                and list, play back and erase their own recordings. Every error body is \
                {\"error\": \"short message\"}. Unknown paths answer 404 and known paths \
                with another method 405, both with that error body. Another patient's \
                object answers exactly as an unknown one (404).",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/v1/patients": {
                "post": {
                    "operationId": "register",
                    "summary": "Register a patient; the token authenticates every other /v1 call",
                    "security": [],
                    "requestBody": json_body("RegisterRequest"),
                    "responses": responses(&[
                        ("201", json_response("Registered", "Registered")),
                        ("400", error("Malformed JSON or a missing field")),
                        ("413", error("Body over 64 KiB")),
                        ("500", error("Internal error")),
                    ]),
                }
            },
            "/v1/appointments": {
                "post": {
                    "operationId": "book",
                    "summary": "Book an appointment; it gets a consultation for its calls",
                    "requestBody": json_body("BookRequest"),
                    "responses": responses(&[
                        ("201", json_response("Booked", "Appointment")),
                        ("400", error("Malformed JSON or a missing field")),
                        ("401", unauthorized()),
                        ("413", error("Body over 64 KiB")),
                        ("500", error("Internal error")),
                    ]),
                }
            },
            "/v1/appointments/{id}": {
                "parameters": [id_parameter("Appointment id")],
                "delete": {
                    "operationId": "cancel",
                    "summary": "Cancel an appointment; allowed after a finished call, \
                        whose recordings stay the patient's",
                    "responses": responses(&[
                        ("204", empty("Cancelled")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, or not the caller's")),
                        ("409", error("Already cancelled, or a call of it is active")),
                        ("500", error("Internal error")),
                    ]),
                }
            },
            "/v1/appointments/{id}/call": {
                "parameters": [id_parameter("Appointment id")],
                "post": {
                    "operationId": "startCall",
                    "summary": "Start an audio call, recording from the start",
                    "responses": responses(&[
                        ("201", json_response("Call started", "Call")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, or not the caller's")),
                        ("409", error("Cancelled, or a call of it is already active")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                }
            },
            "/v1/calls/{id}/upgrade": {
                "parameters": [id_parameter("Call id")],
                "post": {
                    "operationId": "upgrade",
                    "summary": "Upgrade an audio call to video: the audio recording is \
                        finished and a new video recording becomes the call's current one",
                    "responses": responses(&[
                        ("200", json_response("Upgraded", "Call")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, or not the caller's")),
                        ("409", error("The call has ended or is already video")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                }
            },
            "/v1/calls/{id}/media": {
                "parameters": [id_parameter("Call id")],
                "post": {
                    "operationId": "sendMedia",
                    "summary": "Append a media chunk (at most 1 MiB) to the call's current recording",
                    "requestBody": {
                        "required": false,
                        "description": "Raw bytes; the content type is not checked; may be empty",
                        "content": {
                            "application/octet-stream": {
                                "schema": { "type": "string", "format": "binary" }
                            }
                        }
                    },
                    "responses": responses(&[
                        ("202", json_response("Appended", "Received")),
                        ("400", error("The body could not be read")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, or not the caller's")),
                        ("409", error("The call has ended")),
                        ("413", error("Chunk over 1 MiB")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                }
            },
            "/v1/calls/{id}/end": {
                "parameters": [id_parameter("Call id")],
                "post": {
                    "operationId": "endCall",
                    "summary": "End a call, finishing its current recording",
                    "responses": responses(&[
                        ("200", json_response("Ended", "CallEnded")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, or not the caller's")),
                        ("409", error("The call has already ended")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                }
            },
            "/v1/me/recordings": {
                "get": {
                    "operationId": "history",
                    "summary": "The caller's recordings, erased ones excepted, oldest first; \
                        in-progress recordings are listed too",
                    "parameters": [
                        {
                            "name": "page", "in": "query", "required": false,
                            "schema": { "type": "integer", "minimum": 1, "default": 1 }
                        },
                        {
                            "name": "per_page", "in": "query", "required": false,
                            "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 10 }
                        }
                    ],
                    "responses": responses(&[
                        ("200", json_response("One page of recordings", "HistoryPage")),
                        ("400", error("page or per_page out of range or not an integer")),
                        ("401", unauthorized()),
                        ("500", error("Internal error")),
                    ]),
                }
            },
            "/v1/recordings/{id}": {
                "parameters": [id_parameter("Recording id")],
                "get": {
                    "operationId": "playback",
                    "summary": "The recording's media bytes; also while still recording",
                    "responses": responses(&[
                        ("200", json!({
                            "description": "The media bytes",
                            "headers": {
                                "x-recording-kind": {
                                    "description": "Whether the bytes are audio or video",
                                    "required": true,
                                    "schema": { "type": "string", "enum": ["audio", "video"] }
                                }
                            },
                            "content": {
                                "application/octet-stream": {
                                    "schema": { "type": "string", "format": "binary" }
                                }
                            }
                        })),
                        ("401", unauthorized()),
                        ("404", error("Unknown, erased, or not the caller's")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                },
                "delete": {
                    "operationId": "erase",
                    "summary": "Erase a finished recording and delete its media",
                    "responses": responses(&[
                        ("204", empty("Erased")),
                        ("401", unauthorized()),
                        ("404", error("Unknown, already erased, or not the caller's")),
                        ("409", error("Still recording")),
                        ("500", error("Internal error")),
                        ("502", media_unavailable()),
                    ]),
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.0 document",
                            "content": { "application/json": { "schema": { "type": "object" } } }
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Health, including whether the media service answers",
                    "security": [],
                    "responses": {
                        "200": json_response("Healthy", "Health"),
                        "503": json_response("The media service does not answer", "Unhealthy"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" }
            },
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    json!({
        "Error": object(&[("error", string.clone())]),
        "RegisterRequest": object(&[("display_name", string.clone())]),
        "Registered": object(&[
            ("patient_id", string.clone()),
            ("token", string.clone()),
            ("display_name", string.clone()),
        ]),
        "BookRequest": {
            "type": "object",
            "required": ["slot"],
            "properties": {
                "slot": string.clone(),
                "notes": { "type": "string", "default": "" },
            },
        },
        "Appointment": object(&[
            ("appointment_id", string.clone()),
            ("slot", string.clone()),
            ("notes", string.clone()),
            ("status", enumeration(&["booked"])),
        ]),
        "Call": object(&[
            ("call_id", string.clone()),
            ("recording_id", string.clone()),
            ("mode", enumeration(&["audio", "video"])),
        ]),
        "Received": object(&[("received", json!({ "type": "integer", "minimum": 0 }))]),
        "CallEnded": object(&[
            ("call_id", string.clone()),
            ("status", enumeration(&["ended"])),
        ]),
        "HistoryPage": object(&[
            ("page", json!({ "type": "integer", "minimum": 1 })),
            ("per_page", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
            ("total", json!({ "type": "integer", "minimum": 0 })),
            ("items", json!({
                "type": "array",
                "items": { "$ref": "#/components/schemas/RecordingSummary" }
            })),
        ]),
        "RecordingSummary": object(&[
            ("recording_id", string.clone()),
            ("call_id", string.clone()),
            ("appointment_id", string.clone()),
            ("kind", enumeration(&["audio", "video"])),
            ("status", enumeration(&["recording", "finished"])),
            ("bytes", json!({ "type": "integer", "minimum": 0 })),
        ]),
        "Health": object(&[
            ("status", enumeration(&["ok"])),
            ("service", enumeration(&["api"])),
        ]),
        "Unhealthy": object(&[
            ("status", enumeration(&["unavailable"])),
            ("service", enumeration(&["api"])),
            ("error", string),
        ]),
    })
}

/// An object schema whose listed properties are all required.
fn object(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({ "type": "object", "required": required, "properties": properties })
}

fn enumeration(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "description": "JSON; the content type is not checked",
        "content": { "application/json": { "schema": schema_ref(schema) } }
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema_ref(schema) } }
    })
}

fn error(description: &str) -> Value {
    json_response(description, "Error")
}

fn empty(description: &str) -> Value {
    json!({ "description": description })
}

fn unauthorized() -> Value {
    let mut response = error("Missing, malformed or unknown bearer token");
    response["headers"] = json!({
        "WWW-Authenticate": { "schema": { "type": "string", "enum": ["Bearer"] } }
    });
    response
}

fn media_unavailable() -> Value {
    error("The media service failed; nothing was changed")
}

fn id_parameter(description: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": description,
        "schema": { "type": "string" }
    })
}

fn responses(entries: &[(&str, Value)]) -> Value {
    let map: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(status, response)| ((*status).to_owned(), response.clone()))
        .collect();
    Value::Object(map)
}
