//! tinyhealth's OpenAPI 3 document, served at `/api/openapi.json`.
//!
//! Written by hand to match [`crate::api`]; a test walks every route in it
//! against a running service, so a path here that the router lacks fails.

use serde_json::{Value, json};

/// A `$ref` to a schema in `components`.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A JSON response with a schema.
fn json_body(description: &str, name: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(name) } }
    })
}

/// A response with the error body.
fn error(description: &str) -> Value {
    json_body(description, "Error")
}

/// A path parameter.
fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": { "type": "string" }
    })
}

/// The document.
pub fn document() -> Value {
    let session = json!([{ "session": [] }]);
    let account = path_param(
        "account",
        "The account's id (`acct_…`), from sign-up or sign-in.",
    );
    let visit = path_param(
        "visit",
        "A visit's id (`vis_…`), from the `Location` header of booking.",
    );
    let consultation = path_param("consultation", "A consultation's id (`cons_…`).");
    let clip = path_param("clip", "A clip's id (`clip_…`).");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tinyhealth",
            "version": "1.0.0",
            "description": "Visits, audio/video consultations and their recorded clips. Cookie sessions: sign up, then POST /api/sessions, which sets the th_session cookie."
        },
        "paths": {
            "/api/accounts": { "post": {
                "operationId": "signUp", "tags": ["accounts"],
                "summary": "Sign up",
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": schema("SignUp") },
                    "application/x-www-form-urlencoded": { "schema": schema("SignUp") }
                }},
                "responses": {
                    "201": {
                        "description": "Created. `Location: /api/accounts/{account}`.",
                        "headers": { "Location": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("AccountEnvelope") } }
                    },
                    "400": error("A field is missing or invalid."),
                    "409": error("The username is taken (`username_taken`)."),
                    "415": error("Neither JSON nor a form.")
                }
            }},
            "/api/sessions": { "post": {
                "operationId": "signIn", "tags": ["sessions"],
                "summary": "Sign in; sets the th_session cookie",
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": schema("SignIn") },
                    "application/x-www-form-urlencoded": { "schema": schema("SignIn") }
                }},
                "responses": {
                    "200": {
                        "description": "Signed in. `Set-Cookie: th_session=…; Path=/; HttpOnly; SameSite=Lax`.",
                        "headers": { "Set-Cookie": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("SessionEnvelope") } }
                    },
                    "401": error("Unknown username or wrong password (`bad_credentials`).")
                }
            }},
            "/api/sessions/current": { "delete": {
                "operationId": "signOut", "tags": ["sessions"], "security": session,
                "summary": "Sign out",
                "responses": { "204": { "description": "Signed out; the cookie is cleared." }, "401": error("No session.") }
            }},
            "/api/accounts/{account}": {
                "parameters": [account],
                "get": {
                    "operationId": "getAccount", "tags": ["accounts"], "security": session,
                    "summary": "The signed-in account",
                    "responses": {
                        "200": json_body("The account.", "AccountEnvelope"),
                        "401": error("No session."),
                        "403": error("The path names another account.")
                    }
                },
                "delete": {
                    "operationId": "deleteAccount", "tags": ["accounts"], "security": session,
                    "summary": "Delete the account with every visit, consultation and clip; ends its sessions",
                    "responses": {
                        "204": { "description": "Deleted." },
                        "401": error("No session."),
                        "403": error("The path names another account.")
                    }
                }
            },
            "/api/accounts/{account}/visits": {
                "parameters": [account],
                "post": {
                    "operationId": "bookVisit", "tags": ["visits"], "security": session,
                    "summary": "Book a visit; its id is only in the Location header",
                    "requestBody": { "required": true, "content": {
                        "application/json": { "schema": schema("Booking") }
                    }},
                    "responses": {
                        "201": {
                            "description": "Booked; empty body. `Location: /api/visits/{visit}`.",
                            "headers": { "Location": { "schema": { "type": "string" } } }
                        },
                        "400": error("A field is missing or invalid."),
                        "401": error("No session."),
                        "403": error("The path names another account.")
                    }
                },
                "get": {
                    "operationId": "listVisits", "tags": ["visits"], "security": session,
                    "summary": "The account's visits",
                    "responses": {
                        "200": json_body("Every visit.", "VisitList"),
                        "401": error("No session."),
                        "403": error("The path names another account.")
                    }
                }
            },
            "/api/accounts/{account}/clips": { "get": {
                "operationId": "listClips", "tags": ["clips"], "security": session,
                "summary": "The account's clips, oldest first, a page at a time",
                "parameters": [
                    account,
                    { "name": "cursor", "in": "query", "required": false,
                      "description": "`next_cursor` of the previous page; omit for the first page.",
                      "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "required": false,
                      "description": "Items per page, 1 to 100 (default 20).",
                      "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }
                ],
                "responses": {
                    "200": json_body("One page; `next_cursor` is null on the last.", "ClipPage"),
                    "400": error("A bad cursor or limit."),
                    "401": error("No session."),
                    "403": error("The path names another account.")
                }
            }},
            "/api/visits/{visit}": { "get": {
                "operationId": "getVisit", "tags": ["visits"], "security": session,
                "parameters": [visit],
                "summary": "One visit",
                "responses": {
                    "200": json_body("The visit.", "VisitEnvelope"),
                    "401": error("No session."),
                    "404": error("No such visit of yours.")
                }
            }},
            "/api/visits/{visit}/clips": { "get": {
                "operationId": "listVisitClips", "tags": ["clips"], "security": session,
                "parameters": [visit],
                "summary": "Every clip of one visit, oldest first (not paginated)",
                "responses": {
                    "200": json_body("The clips.", "ClipList"),
                    "401": error("No session."),
                    "404": error("No such visit of yours.")
                }
            }},
            "/api/visits/{visit}/consultations": { "post": {
                "operationId": "startConsultation", "tags": ["consultations"], "security": session,
                "parameters": [visit],
                "summary": "Start an audio consultation; recording starts at once",
                "responses": {
                    "201": {
                        "description": "Started. `Location: /api/consultations/{consultation}`.",
                        "headers": { "Location": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("ConsultationEnvelope") } }
                    },
                    "401": error("No session."),
                    "404": error("No such visit of yours."),
                    "409": error("The visit already has a live consultation (`consultation_live`).")
                }
            }},
            "/api/consultations/{consultation}": { "get": {
                "operationId": "getConsultation", "tags": ["consultations"], "security": session,
                "parameters": [consultation],
                "summary": "One consultation",
                "responses": {
                    "200": json_body("The consultation.", "ConsultationEnvelope"),
                    "401": error("No session."),
                    "404": error("No such consultation of yours.")
                }
            }},
            "/api/consultations/{consultation}/video": { "post": {
                "operationId": "switchToVideo", "tags": ["consultations"], "security": session,
                "parameters": [consultation],
                "summary": "Switch a live audio consultation to video (asynchronous)",
                "responses": {
                    "202": {
                        "description": "Accepted. `Location` is the operation's absolute status URL; poll it until `status` is `done`.",
                        "headers": { "Location": { "schema": { "type": "string", "format": "uri" } } },
                        "content": { "application/json": { "schema": schema("OperationEnvelope") } }
                    },
                    "401": error("No session."),
                    "404": error("No such consultation of yours."),
                    "409": error("Ended (`consultation_ended`) or already on video (`already_video`).")
                }
            }},
            "/api/operations/{operation}": { "get": {
                "operationId": "getOperation", "tags": ["consultations"], "security": session,
                "parameters": [path_param("operation", "An operation's id (`op_…`).")],
                "summary": "Poll a video switch",
                "responses": {
                    "200": json_body("`pending`, or `done` with `result.clip.ref`.", "OperationEnvelope"),
                    "401": error("No session."),
                    "404": error("No such operation of yours.")
                }
            }},
            "/api/consultations/{consultation}/media": { "post": {
                "operationId": "uploadMedia", "tags": ["consultations"], "security": session,
                "parameters": [consultation],
                "summary": "Append media to the consultation's current clip",
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": schema("Upload") }
                }},
                "responses": {
                    "200": json_body("Appended.", "Uploaded"),
                    "400": error("`data` is not base64, empty, or over 1 MiB decoded."),
                    "401": error("No session."),
                    "404": error("No such consultation of yours."),
                    "409": error("The consultation has ended (`consultation_ended`)."),
                    "413": error("The body or the clip is too large.")
                }
            }},
            "/api/consultations/{consultation}/end": { "post": {
                "operationId": "endConsultation", "tags": ["consultations"], "security": session,
                "parameters": [consultation],
                "summary": "End a live consultation; its clip becomes ready",
                "responses": {
                    "200": json_body("Ended.", "ConsultationEnvelope"),
                    "401": error("No session."),
                    "404": error("No such consultation of yours."),
                    "409": error("Already ended (`consultation_ended`).")
                }
            }},
            "/api/clips/{clip}": {
                "parameters": [clip],
                "get": {
                    "operationId": "getClip", "tags": ["clips"], "security": session,
                    "summary": "A clip's metadata and a signed download link",
                    "responses": {
                        "200": json_body("The clip; fetch `download_url` (no session needed) for its bytes.", "ClipMetadata"),
                        "401": error("No session."),
                        "404": error("No such clip of yours.")
                    }
                },
                "delete": {
                    "operationId": "deleteClip", "tags": ["clips"], "security": session,
                    "summary": "Erase a ready clip and its media",
                    "responses": {
                        "204": { "description": "Erased." },
                        "401": error("No session."),
                        "404": error("No such clip of yours."),
                        "409": error("Still recording (`clip_recording`).")
                    }
                }
            },
            "/files/clips/{clip}": { "get": {
                "operationId": "downloadClip", "tags": ["clips"],
                "summary": "A clip's bytes through a signed link (a bearer capability: no session)",
                "parameters": [
                    clip,
                    { "name": "expires", "in": "query", "required": true, "schema": { "type": "integer" } },
                    { "name": "sig", "in": "query", "required": true, "schema": { "type": "string" } }
                ],
                "responses": {
                    "200": {
                        "description": "The bytes. `X-Clip-Kind: audio|video`.",
                        "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } }
                    },
                    "403": error("The signature does not fit this clip (`bad_signature`)."),
                    "404": error("No such clip (erased, or never existed)."),
                    "410": error("The link has expired (`link_expired`).")
                }
            }},
            "/api/openapi.json": { "get": {
                "operationId": "openapi", "tags": ["service"], "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3." } }
            }},
            "/api/health": { "get": {
                "operationId": "health", "tags": ["service"], "summary": "Liveness",
                "responses": { "200": { "description": "`{\"status\": \"ok\"}`." } }
            }}
        },
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "th_session" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "object", "required": ["code", "message"], "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" }
                    }}
                }},
                "Ref": { "type": "object", "required": ["ref"], "properties": { "ref": { "type": "string" } } },
                "SignUp": { "type": "object", "required": ["username", "password", "full_name"], "properties": {
                    "username": { "type": "string", "minLength": 1, "maxLength": 500 },
                    "password": { "type": "string", "minLength": 8, "maxLength": 500 },
                    "full_name": { "type": "string", "minLength": 1, "maxLength": 500 }
                }},
                "SignIn": { "type": "object", "required": ["username", "password"], "properties": {
                    "username": { "type": "string" }, "password": { "type": "string" }
                }},
                "AccountEnvelope": { "type": "object", "properties": { "account": {
                    "type": "object", "properties": {
                        "id": { "type": "string" }, "username": { "type": "string" }, "full_name": { "type": "string" }
                    }
                }}},
                "SessionEnvelope": { "type": "object", "properties": { "session": {
                    "type": "object", "properties": { "account": { "type": "string", "description": "The account's id." } }
                }}},
                "Booking": { "type": "object", "required": ["starts_at"], "properties": {
                    "starts_at": { "type": "string", "minLength": 1, "maxLength": 500 },
                    "reason": { "type": "string", "maxLength": 500 }
                }},
                "Visit": { "type": "object", "properties": {
                    "id": { "type": "string" }, "starts_at": { "type": "string" }, "reason": { "type": "string" },
                    "consultations": { "type": "array", "items": schema("Ref") }
                }},
                "VisitEnvelope": { "type": "object", "properties": { "visit": schema("Visit") } },
                "VisitList": { "type": "object", "properties": { "data": {
                    "type": "array", "items": { "type": "object", "properties": { "visit": schema("Visit") } }
                }}},
                "ConsultationEnvelope": { "type": "object", "properties": { "consultation": {
                    "type": "object", "properties": {
                        "id": { "type": "string" }, "visit": schema("Ref"),
                        "mode": { "type": "string", "enum": ["audio", "video"] },
                        "state": { "type": "string", "enum": ["live", "ended"] },
                        "clip": schema("Ref")
                    }
                }}},
                "OperationEnvelope": { "type": "object", "properties": { "operation": {
                    "type": "object", "properties": {
                        "id": { "type": "string" },
                        "status": { "type": "string", "enum": ["pending", "done"] },
                        "status_url": { "type": "string", "format": "uri" },
                        "result": { "type": "object", "properties": { "clip": schema("Ref") } }
                    }
                }}},
                "Upload": { "type": "object", "required": ["data"], "properties": {
                    "data": { "type": "string", "format": "byte", "description": "Standard base64, 1 byte to 1 MiB decoded." }
                }},
                "Uploaded": { "type": "object", "properties": {
                    "received_bytes": { "type": "integer" }, "clip_size_bytes": { "type": "integer" }
                }},
                "ClipItem": { "type": "object", "properties": {
                    "clip": { "type": "object", "properties": {
                        "ref": { "type": "string" },
                        "kind": { "type": "string", "enum": ["audio", "video"] },
                        "state": { "type": "string", "enum": ["recording", "ready"] }
                    }},
                    "visit": schema("Ref"), "consultation": schema("Ref"),
                    "size_bytes": { "type": "integer" }
                }},
                "ClipPage": { "type": "object", "required": ["data", "next_cursor"], "properties": {
                    "data": { "type": "array", "items": schema("ClipItem") },
                    "next_cursor": { "type": "string", "nullable": true }
                }},
                "ClipList": { "type": "object", "properties": {
                    "data": { "type": "array", "items": schema("ClipItem") }
                }},
                "ClipMetadata": { "type": "object", "properties": {
                    "clip": { "type": "object", "properties": {
                        "ref": { "type": "string" },
                        "kind": { "type": "string", "enum": ["audio", "video"] },
                        "state": { "type": "string", "enum": ["recording", "ready"] },
                        "size_bytes": { "type": "integer" },
                        "visit": schema("Ref"), "consultation": schema("Ref")
                    }},
                    "download_url": { "type": "string", "format": "uri" },
                    "expires_at": { "type": "integer", "description": "Unix seconds." }
                }}
            }
        }
    })
}
