//! The FHIR shape's OpenAPI 3.0 document (`GET /fhir/openapi.json`) and its
//! CapabilityStatement (`GET /fhir/metadata`).
//!
//! **Invariant:** the document is true to what [`crate::fhir`] does: every
//! route, method, status code and body shape it can produce is here. It is
//! written so that a tool can draft a binding from it: every operation has an
//! `operationId` and a tag (the resource type), responses name their schemas,
//! the search's `Bundle` schema names its `link` relations, and the search
//! operation carries `x-pagination` (where the next URL and the items are) and
//! an OpenAPI `links` entry for following it.

use serde_json::{Map, Value, json};

use super::resource::{
    ACT_CODE_SYSTEM, CALL_MODE_EXTENSION, CURRENT_MEDIA_EXTENSION, MEDIA_TYPE_SYSTEM, VIRTUAL_CLASS,
};
use super::{CLIENT_SECRET_HEADER, COUNT_DEFAULT, COUNT_MAX, SECURITY_CONTEXT_HEADER};

/// The FHIR version the shape follows.
pub const FHIR_VERSION: &str = "4.0.1";

/// The CapabilityStatement: what `/fhir` supports, with the token endpoint
/// under `base` (the FHIR base URL of the request).
pub fn capability_statement(base: &str) -> Value {
    let read = json!({ "code": "read" });
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-29",
        "kind": "instance",
        "software": { "name": "clinic", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "The reference clinic, FHIR R4-shaped", "url": base },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{ "url": "token", "valueUri": format!("{base}/auth/token") }],
                }],
            },
            "resource": [
                {
                    "type": "Patient",
                    "interaction": [{ "code": "create" }, read],
                },
                {
                    "type": "Appointment",
                    "interaction": [{ "code": "create" }, read, { "code": "update" }, { "code": "patch" }],
                },
                {
                    "type": "Encounter",
                    "interaction": [{ "code": "create" }, read, { "code": "update" }, { "code": "patch" }],
                    "operation": [{ "name": "upgrade", "definition": format!("{base}/OperationDefinition/Encounter-upgrade") }],
                },
                {
                    "type": "Media",
                    "interaction": [read, { "code": "delete" }, { "code": "search-type" }],
                    "searchParam": [
                        { "name": "subject", "type": "reference" },
                        { "name": "patient", "type": "reference" },
                        { "name": "encounter", "type": "reference" },
                        { "name": "_count", "type": "number" },
                    ],
                },
                {
                    "type": "Binary",
                    "interaction": [{ "code": "create" }, read],
                },
            ],
        }],
    })
}

/// The OpenAPI 3.0 document of `/fhir`.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "clinic FHIR api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("The reference clinic's FHIR R4-shaped API, beside /v1 over the \
                same data. Register with POST /Patient (the client secret is in the \
                {CLIENT_SECRET_HEADER} response header), exchange it at POST /auth/token for a \
                bearer token. Every error is an OperationOutcome (application/fhir+json). \
                Logical ids are not /v1 ids. Another patient's object answers exactly as an \
                unknown one (404). Unknown paths answer 404 and known paths with another method 405."),
        },
        "servers": [{ "url": "/fhir" }],
        "security": [{ "bearer": [] }],
        "tags": [
            { "name": "Patient" }, { "name": "Auth" }, { "name": "Appointment" },
            { "name": "Encounter" }, { "name": "Media" }, { "name": "Binary" },
            { "name": "Conformance" },
        ],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "smart": {
                    "type": "oauth2",
                    "flows": { "clientCredentials": { "tokenUrl": "/fhir/auth/token", "scopes": { "patient/*.*": "the patient's own data" } } },
                },
            },
            "schemas": schemas(),
        },
    })
}

fn paths() -> Value {
    json!({
        "/metadata": { "get": {
            "operationId": "capabilities", "tags": ["Conformance"], "security": [],
            "summary": "The CapabilityStatement",
            "responses": { "200": fhir_response("The CapabilityStatement", "CapabilityStatement") },
        }},
        "/openapi.json": { "get": {
            "operationId": "openapi", "tags": ["Conformance"], "security": [],
            "summary": "This document",
            "responses": { "200": {
                "description": "The OpenAPI 3.0 document",
                "content": { "application/json": { "schema": { "type": "object" } } },
            }},
        }},
        "/auth/token": { "post": {
            "operationId": "token", "tags": ["Auth"], "security": [],
            "summary": "Exchange a patient's client credentials for a bearer token (OAuth 2 client credentials)",
            "requestBody": {
                "required": true,
                "description": "A form, or the same fields as JSON",
                "content": {
                    "application/x-www-form-urlencoded": { "schema": schema_ref("TokenRequest") },
                    "application/json": { "schema": schema_ref("TokenRequest") },
                },
            },
            "responses": responses(&[
                ("200", json!({
                    "description": "The token; `patient` is the caller's Patient id",
                    "content": { "application/json": { "schema": schema_ref("TokenResponse") } },
                })),
                ("400", outcome("Malformed body, or grant_type is not client_credentials")),
                ("401", unauthorized("Unknown client_id or wrong client_secret")),
                ("413", outcome("Body over 64 KiB")),
                ("500", outcome("Internal error")),
            ]),
        }},
        "/Patient": { "post": {
            "operationId": "createPatient", "tags": ["Patient"], "security": [],
            "summary": "Register a patient (create = register)",
            "requestBody": fhir_body("PatientCreate"),
            "responses": responses(&[
                ("201", {
                    let mut created = fhir_response("Registered", "Patient");
                    created["headers"] = json!({
                        "Location": { "schema": { "type": "string" }, "description": "The new Patient's URL" },
                        CLIENT_SECRET_HEADER: {
                            "required": true,
                            "schema": { "type": "string" },
                            "description": "The client secret for POST /auth/token (client_id is the Patient id); shown once",
                        },
                    });
                    created
                }),
                ("400", outcome("Malformed JSON, wrong resourceType or no name")),
                ("413", outcome("Body over 64 KiB")),
                ("500", outcome("Internal error")),
            ]),
        }},
        "/Patient/{id}": { "parameters": [id_parameter("Patient")], "get": {
            "operationId": "readPatient", "tags": ["Patient"],
            "summary": "The caller's own Patient",
            "responses": responses(&[
                ("200", fhir_response("The Patient", "Patient")),
                ("401", unauthorized("Missing, malformed or unknown bearer token")),
                ("404", outcome("Unknown, or not the caller")),
                ("500", outcome("Internal error")),
            ]),
        }},
        "/Appointment": { "post": {
            "operationId": "createAppointment", "tags": ["Appointment"],
            "summary": "Book an appointment (create = book); start is the slot, description the notes",
            "requestBody": fhir_body("AppointmentCreate"),
            "responses": responses(&[
                ("201", created("Booked", "Appointment")),
                ("400", outcome("Malformed JSON, wrong resourceType or no start")),
                ("401", unauthorized("Missing, malformed or unknown bearer token")),
                ("403", outcome("A Patient participant is not the caller")),
                ("413", outcome("Body over 64 KiB")),
                ("500", outcome("Internal error")),
            ]),
        }},
        "/Appointment/{id}": {
            "parameters": [id_parameter("Appointment")],
            "get": {
                "operationId": "readAppointment", "tags": ["Appointment"],
                "summary": "One of the caller's appointments",
                "responses": read_responses("Appointment"),
            },
            "put": {
                "operationId": "updateAppointment", "tags": ["Appointment"],
                "summary": "Cancel: the Appointment with status cancelled (only status can change)",
                "requestBody": fhir_body("StatusUpdate"),
                "responses": update_responses("Appointment", "Already cancelled, or a call of it is active"),
            },
            "patch": {
                "operationId": "patchAppointment", "tags": ["Appointment"],
                "summary": "Cancel: a JSON Patch replacing /status with cancelled, or a merge patch {\"status\": \"cancelled\"}",
                "requestBody": patch_body(),
                "responses": update_responses("Appointment", "Already cancelled, or a call of it is active"),
            },
        },
        "/Encounter": { "post": {
            "operationId": "createEncounter", "tags": ["Encounter"],
            "summary": "Start an audio call of an appointment (a virtual Encounter), recording from the start; \
                the current-media extension references the new audio Media",
            "requestBody": fhir_body("EncounterCreate"),
            "responses": responses(&[
                ("201", created("Call started", "Encounter")),
                ("400", outcome("Malformed JSON, wrong resourceType, class not VR, or not one Appointment reference")),
                ("401", unauthorized("Missing, malformed or unknown bearer token")),
                ("404", outcome("Unknown appointment, or not the caller's")),
                ("409", outcome("Cancelled, or a call of it is already active")),
                ("413", outcome("Body over 64 KiB")),
                ("500", outcome("Internal error")),
                ("502", media_unavailable()),
            ]),
        }},
        "/Encounter/{id}": {
            "parameters": [id_parameter("Encounter")],
            "get": {
                "operationId": "readEncounter", "tags": ["Encounter"],
                "summary": "One of the caller's calls",
                "responses": read_responses("Encounter"),
            },
            "put": {
                "operationId": "updateEncounter", "tags": ["Encounter"],
                "summary": "End the call: the Encounter with status finished (only status can change)",
                "requestBody": fhir_body("StatusUpdate"),
                "responses": update_responses("Encounter", "The call has already ended"),
            },
            "patch": {
                "operationId": "patchEncounter", "tags": ["Encounter"],
                "summary": "End the call: a JSON Patch replacing /status with finished, or a merge patch",
                "requestBody": patch_body(),
                "responses": update_responses("Encounter", "The call has already ended"),
            },
        },
        "/Encounter/{id}/$upgrade": {
            "parameters": [id_parameter("Encounter")],
            "post": {
                "operationId": "upgradeEncounter", "tags": ["Encounter"],
                "summary": "Switch the call to video: the audio Media is completed and a new video Media, \
                    returned, becomes the call's current one. No body.",
                "responses": responses(&[
                    ("200", fhir_response("The new video Media", "Media")),
                    ("401", unauthorized("Missing, malformed or unknown bearer token")),
                    ("404", outcome("Unknown, or not the caller's")),
                    ("409", outcome("The call has ended or is already video")),
                    ("500", outcome("Internal error")),
                    ("502", media_unavailable()),
                ]),
            },
        },
        "/Binary": { "post": {
            "operationId": "createBinary", "tags": ["Binary"],
            "summary": format!("Append a media chunk (at most 1 MiB) to a call's current recording: a JSON \
                Binary (base64 data, securityContext = the Encounter), or the raw bytes with the \
                {SECURITY_CONTEXT_HEADER} header naming the Encounter"),
            "parameters": [{
                "name": SECURITY_CONTEXT_HEADER, "in": "header", "required": false,
                "description": "Encounter/{id}, for a raw (non-JSON) body",
                "schema": { "type": "string" },
            }],
            "requestBody": {
                "required": true,
                "content": {
                    "application/fhir+json": { "schema": schema_ref("Binary") },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
                },
            },
            "responses": responses(&[
                ("202", fhir_response("Appended (an informational OperationOutcome)", "OperationOutcome")),
                ("400", outcome("Malformed JSON, data not base64, or no Encounter context")),
                ("401", unauthorized("Missing, malformed or unknown bearer token")),
                ("404", outcome("Unknown encounter, or not the caller's")),
                ("409", outcome("The call has ended")),
                ("413", outcome("Chunk over 1 MiB")),
                ("500", outcome("Internal error")),
                ("502", media_unavailable()),
            ]),
        }},
        "/Binary/{id}": {
            "parameters": [id_parameter("Binary")],
            "get": {
                "operationId": "readBinary", "tags": ["Binary"],
                "summary": "A recording's bytes (the url in Media.content); also while still recording",
                "responses": responses(&[
                    ("200", json!({
                        "description": "The media bytes",
                        "headers": { "x-recording-kind": {
                            "required": true,
                            "schema": { "type": "string", "enum": ["audio", "video"] },
                        }},
                        "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
                    })),
                    ("401", unauthorized("Missing, malformed or unknown bearer token")),
                    ("404", outcome("Unknown, erased, or not the caller's")),
                    ("500", outcome("Internal error")),
                    ("502", media_unavailable()),
                ]),
            },
        },
        "/Media": { "get": {
            "operationId": "searchMedia", "tags": ["Media"],
            "summary": "The caller's recordings, erased ones excepted, oldest first, in-progress ones too; \
                page through them by following the Bundle link whose relation is next",
            "parameters": [
                search_parameter("subject", "Patient/{id}: must be the caller; default the caller"),
                search_parameter("patient", "Same as subject"),
                search_parameter("encounter", "Encounter/{id}: one of the caller's calls; only its recordings"),
                {
                    "name": "_count", "in": "query", "required": false,
                    "schema": { "type": "integer", "minimum": 1, "maximum": COUNT_MAX, "default": COUNT_DEFAULT },
                },
                {
                    "name": "_cursor", "in": "query", "required": false,
                    "description": "Paging state; only as found in a next link",
                    "schema": { "type": "integer", "minimum": 0 },
                },
            ],
            "x-pagination": {
                "style": "next-url",
                "next": "$.link[?(@.relation == 'next')].url",
                "items": "$.entry[*].resource",
                "item_id": "/id",
            },
            "responses": responses(&[
                ("200", {
                    let mut page = fhir_response("One page: a searchset Bundle of Media", "MediaBundle");
                    page["links"] = json!({
                        "next": {
                            "operationId": "searchMedia",
                            "description": "The next page: GET the url of the Bundle link whose relation \
                                is next (absolute; it repeats the search). No such link on the last page.",
                        },
                        "play": {
                            "operationId": "readBinary",
                            "description": "An entry's bytes: GET its resource.content.url (absolute)",
                        },
                    });
                    page
                }),
                ("400", outcome("Unknown or repeated parameter, or a value out of range")),
                ("401", unauthorized("Missing, malformed or unknown bearer token")),
                ("403", outcome("subject or patient is not the caller")),
                ("404", outcome("Unknown encounter, or not the caller's")),
                ("500", outcome("Internal error")),
            ]),
        }},
        "/Media/{id}": {
            "parameters": [id_parameter("Media")],
            "get": {
                "operationId": "readMedia", "tags": ["Media"],
                "summary": "One of the caller's recordings; content.url is where its bytes are",
                "responses": responses(&[
                    ("200", fhir_response("The Media", "Media")),
                    ("401", unauthorized("Missing, malformed or unknown bearer token")),
                    ("404", outcome("Unknown, erased, or not the caller's")),
                    ("500", outcome("Internal error")),
                ]),
            },
            "delete": {
                "operationId": "deleteMedia", "tags": ["Media"],
                "summary": "Erase a finished recording and delete its bytes",
                "responses": responses(&[
                    ("204", json!({ "description": "Erased" })),
                    ("401", unauthorized("Missing, malformed or unknown bearer token")),
                    ("404", outcome("Unknown, already erased, or not the caller's")),
                    ("409", outcome("Still recording")),
                    ("500", outcome("Internal error")),
                    ("502", media_unavailable()),
                ]),
            },
        },
    })
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let reference = schema_ref("Reference");
    json!({
        "Reference": object(&[("reference", string.clone())], &["reference"]),
        "OperationOutcome": object(&[
            ("resourceType", constant("OperationOutcome")),
            ("issue", array(object(&[
                ("severity", enumeration(&["error", "information"])),
                ("code", string.clone()),
                ("diagnostics", string.clone()),
            ], &["severity", "code", "diagnostics"]))),
        ], &["resourceType", "issue"]),
        "TokenRequest": object(&[
            ("grant_type", constant("client_credentials")),
            ("client_id", json!({ "type": "string", "description": "The Patient id" })),
            ("client_secret", json!({ "type": "string", "description": "From the X-Client-Secret header" })),
        ], &["grant_type", "client_id", "client_secret"]),
        "TokenResponse": object(&[
            ("access_token", string.clone()),
            ("token_type", constant("Bearer")),
            ("scope", string.clone()),
            ("patient", json!({ "type": "string", "description": "The caller's Patient id" })),
        ], &["access_token", "token_type", "scope", "patient"]),
        "HumanName": object(&[
            ("text", string.clone()),
            ("given", array(string.clone())),
            ("family", string.clone()),
        ], &[]),
        "PatientCreate": object(&[
            ("resourceType", constant("Patient")),
            ("name", json!({ "type": "array", "minItems": 1, "items": schema_ref("HumanName") })),
        ], &["resourceType", "name"]),
        "Patient": object(&[
            ("resourceType", constant("Patient")),
            ("id", string.clone()),
            ("active", json!({ "type": "boolean" })),
            ("name", array(object(&[("text", string.clone())], &["text"]))),
        ], &["resourceType", "id", "active", "name"]),
        "AppointmentCreate": object(&[
            ("resourceType", constant("Appointment")),
            ("start", json!({ "type": "string", "description": "The slot, stored as given" })),
            ("description", json!({ "type": "string", "default": "", "description": "The notes" })),
            ("participant", array(object(&[("actor", reference.clone())], &[]))),
        ], &["resourceType", "start"]),
        "Appointment": object(&[
            ("resourceType", constant("Appointment")),
            ("id", string.clone()),
            ("status", enumeration(&["booked", "cancelled"])),
            ("start", string.clone()),
            ("description", string.clone()),
            ("participant", array(object(&[
                ("actor", reference.clone()),
                ("status", constant("accepted")),
            ], &["actor", "status"]))),
        ], &["resourceType", "id", "status", "start", "description", "participant"]),
        "StatusUpdate": object(&[
            ("resourceType", string.clone()),
            ("id", json!({ "type": "string", "description": "If given, the id in the url" })),
            ("status", json!({ "type": "string", "description": "cancelled (Appointment) or finished (Encounter); the current status is a no-op" })),
        ], &["status"]),
        "JsonPatch": {
            "type": "array", "minItems": 1, "maxItems": 1,
            "items": object(&[
                ("op", enumeration(&["replace", "add"])),
                ("path", constant("/status")),
                ("value", string.clone()),
            ], &["op", "path", "value"]),
        },
        "Coding": object(&[("system", string.clone()), ("code", string.clone()), ("display", string.clone())], &["code"]),
        "EncounterCreate": object(&[
            ("resourceType", constant("Encounter")),
            ("status", json!({ "type": "string", "description": "Ignored: a new call is in-progress" })),
            ("class", json!({ "allOf": [schema_ref("Coding")], "description": format!("If given, code {VIRTUAL_CLASS} ({ACT_CODE_SYSTEM})") })),
            ("appointment", json!({ "type": "array", "minItems": 1, "maxItems": 1, "items": reference.clone() })),
        ], &["resourceType", "appointment"]),
        "Extension": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": enumeration(&[CALL_MODE_EXTENSION, CURRENT_MEDIA_EXTENSION]),
                "valueCode": enumeration(&["audio", "video"]),
                "valueReference": reference.clone(),
            },
        },
        "Encounter": object(&[
            ("resourceType", constant("Encounter")),
            ("id", string.clone()),
            ("status", enumeration(&["in-progress", "finished"])),
            ("class", schema_ref("Coding")),
            ("subject", reference.clone()),
            ("appointment", array(reference.clone())),
            ("extension", json!({
                "type": "array",
                "description": "[0] the call mode (valueCode audio|video), [1] the current Media (valueReference Media/{id})",
                "items": schema_ref("Extension"),
            })),
        ], &["resourceType", "id", "status", "class", "subject", "appointment", "extension"]),
        "Binary": object(&[
            ("resourceType", constant("Binary")),
            ("contentType", string.clone()),
            ("securityContext", reference.clone()),
            ("data", json!({ "type": "string", "format": "byte" })),
        ], &["resourceType", "securityContext", "data"]),
        "Media": object(&[
            ("resourceType", constant("Media")),
            ("id", string.clone()),
            ("status", enumeration(&["in-progress", "completed"])),
            ("type", object(&[("coding", array(object(&[
                ("system", constant(MEDIA_TYPE_SYSTEM)),
                ("code", enumeration(&["audio", "video"])),
            ], &["system", "code"])))], &["coding"])),
            ("subject", reference.clone()),
            ("encounter", reference),
            ("content", object(&[
                ("contentType", string.clone()),
                ("url", json!({ "type": "string", "format": "uri", "description": "Where the bytes are: GET it (a Binary, with the bearer token)" })),
                ("size", json!({ "type": "integer", "minimum": 0 })),
            ], &["contentType", "url", "size"])),
        ], &["resourceType", "id", "status", "type", "subject", "encounter", "content"]),
        "BundleLink": object(&[
            ("relation", enumeration(&["self", "next"])),
            ("url", json!({ "type": "string", "format": "uri" })),
        ], &["relation", "url"]),
        "MediaBundle": object(&[
            ("resourceType", constant("Bundle")),
            ("type", constant("searchset")),
            ("total", json!({ "type": "integer", "minimum": 0 })),
            ("link", json!({
                "type": "array",
                "description": "self, and next unless this is the last page",
                "items": schema_ref("BundleLink"),
            })),
            ("entry", array(object(&[
                ("fullUrl", json!({ "type": "string", "format": "uri" })),
                ("resource", schema_ref("Media")),
                ("search", object(&[("mode", constant("match"))], &["mode"])),
            ], &["fullUrl", "resource", "search"]))),
        ], &["resourceType", "type", "total", "link", "entry"]),
        "CapabilityStatement": object(&[
            ("resourceType", constant("CapabilityStatement")),
            ("fhirVersion", constant(FHIR_VERSION)),
            ("rest", array(json!({ "type": "object" }))),
        ], &["resourceType", "fhirVersion", "rest"]),
    })
}

/// An object schema with `required` among its `properties`.
fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    let mut schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn constant(value: &str) -> Value {
    json!({ "type": "string", "enum": [value] })
}

fn enumeration(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn fhir_body(schema: &str) -> Value {
    json!({
        "required": true,
        "description": "FHIR JSON; the content type is not checked",
        "content": { "application/fhir+json": { "schema": schema_ref(schema) } },
    })
}

fn patch_body() -> Value {
    json!({
        "required": true,
        "description": "A JSON Patch (array) or a merge patch (object); the content type is not checked",
        "content": {
            "application/json-patch+json": { "schema": schema_ref("JsonPatch") },
            "application/merge-patch+json": { "schema": schema_ref("StatusUpdate") },
        },
    })
}

fn fhir_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/fhir+json": { "schema": schema_ref(schema) } },
    })
}

fn created(description: &str, schema: &str) -> Value {
    let mut response = fhir_response(description, schema);
    response["headers"] = json!({
        "Location": { "schema": { "type": "string" }, "description": "The new resource's URL" },
    });
    response
}

fn outcome(description: &str) -> Value {
    fhir_response(description, "OperationOutcome")
}

fn unauthorized(description: &str) -> Value {
    let mut response = outcome(description);
    response["headers"] = json!({
        "WWW-Authenticate": { "schema": { "type": "string", "enum": ["Bearer"] } }
    });
    response
}

fn media_unavailable() -> Value {
    outcome("The media service failed; nothing was changed")
}

fn read_responses(schema: &str) -> Value {
    responses(&[
        ("200", fhir_response(schema, schema)),
        (
            "401",
            unauthorized("Missing, malformed or unknown bearer token"),
        ),
        ("404", outcome("Unknown, or not the caller's")),
        ("500", outcome("Internal error")),
    ])
}

fn update_responses(schema: &str, conflict: &str) -> Value {
    let mut entries = vec![
        ("200", fhir_response("Updated", schema)),
        (
            "400",
            outcome("Malformed body, wrong resourceType, or an id that is not the url's"),
        ),
        (
            "401",
            unauthorized("Missing, malformed or unknown bearer token"),
        ),
        ("404", outcome("Unknown, or not the caller's")),
        ("409", outcome(conflict)),
        ("413", outcome("Body over 64 KiB")),
        (
            "422",
            outcome("A status this transition does not allow, or a change to another field"),
        ),
        ("500", outcome("Internal error")),
    ];
    // Only ending a call reaches the media service.
    if schema == "Encounter" {
        entries.push(("502", media_unavailable()));
    }
    responses(&entries)
}

fn id_parameter(kind: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("{kind} logical id"),
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9.-]{1,64}$" },
    })
}

fn search_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "required": false,
        "description": description,
        "schema": { "type": "string" },
    })
}

fn responses(entries: &[(&str, Value)]) -> Value {
    let map: Map<String, Value> = entries
        .iter()
        .map(|(status, response)| ((*status).to_owned(), response.clone()))
        .collect();
    Value::Object(map)
}
