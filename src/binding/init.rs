//! `chaperone binding init --openapi`: a draft binding from an OpenAPI 3 document.
//!
//! [`draft_from_openapi`] reads the document's operations and matches each to
//! one of the model's actions by method, path shape, path-parameter names,
//! operationId, tags and response schemas — never by a particular service's
//! paths — then writes a binding file with a `# TODO` wherever it could not
//! decide. The draft is a starting point for `chaperone binding check`, not a
//! verdict: every guess is written where a reader sees it.
//!
//! The document may be hostile (it may come from the service under test):
//! `$ref` chains and schema walks are bounded ([`REF_HOPS_MAX`],
//! [`SCHEMA_DEPTH_MAX`]), at most [`OPERATIONS_MAX`] operations are read, text
//! from the document reaches the draft only as quoted TOML strings or as
//! comments cut to one short line, and [`fetch_openapi`] caps the body at
//! [`OPENAPI_BYTES_MAX`] and follows no redirect.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::model::caps::{VIEW_NAME_LEN_MAX, VIEWS_MAX};

/// Largest OpenAPI document [`fetch_openapi`] reads.
pub const OPENAPI_BYTES_MAX: usize = 8 << 20;

/// Most operations read from one document; the rest are ignored (and said so).
pub const OPERATIONS_MAX: usize = 2_000;

/// Most `$ref` hops followed to resolve one reference (a cycle stops here).
pub const REF_HOPS_MAX: usize = 16;

/// How deep a schema is walked looking for a field.
pub const SCHEMA_DEPTH_MAX: usize = 4;

/// Most schema nodes visited by one walk (`allOf` members, nested objects).
pub const SCHEMA_VISITS_MAX: usize = 32;

/// Most properties read from one schema.
pub const PROPERTIES_MAX: usize = 256;

/// Longest comment line copied from the document.
const COMMENT_LEN_MAX: usize = 100;

/// Most unbound operations listed at the end of a draft.
const UNBOUND_LISTED_MAX: usize = 40;

/// How long [`fetch_openapi`] waits for the whole document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `doc` is an OpenAPI 3 document with paths, or why not (one line).
/// The CLI calls this before [`draft_from_openapi`] and exits 2 on an error.
pub fn validate_openapi(doc: &Value) -> Result<(), String> {
    let Some(object) = doc.as_object() else {
        return Err("the OpenAPI document is not a JSON object".into());
    };
    match object.get("openapi").and_then(Value::as_str) {
        Some(version) if version.starts_with("3.") => {}
        Some(_) => {
            return Err("not an OpenAPI 3 document (its `openapi` version is not 3.x)".into());
        }
        None if object.contains_key("swagger") => {
            return Err(
                "a Swagger 2 document; convert it to OpenAPI 3 first (e.g. with swagger2openapi)"
                    .into(),
            );
        }
        None => return Err("not an OpenAPI 3 document (no `openapi` version)".into()),
    }
    match object.get("paths") {
        Some(Value::Object(paths)) if !paths.is_empty() => Ok(()),
        _ => Err("the OpenAPI document has no `paths`".into()),
    }
}

/// Read an OpenAPI document (JSON) from `url`: plain `http://` as the CLI
/// accepts for `--target`, no credentials in the URL, no redirects, at most
/// [`OPENAPI_BYTES_MAX`] bytes, within [`FETCH_TIMEOUT`]. Errors are one line
/// and never echo the URL's text or the body.
pub async fn fetch_openapi(url: &str) -> Result<Value, String> {
    if url.starts_with("https://") {
        return Err(
            "https is not supported (the harness is built without TLS); use http:// on loopback"
                .into(),
        );
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("the OpenAPI location is neither a file nor an http:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    if authority.contains('@') {
        // Credentials would otherwise be sent, and could end up in error output.
        return Err("the URL carries credentials (user@host); remove them".into());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut response = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch the OpenAPI document: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "fetching the OpenAPI document answered {status}{}",
            if status.is_redirection() {
                " (redirects are not followed; give the final URL)"
            } else {
                ""
            }
        ));
    }
    if response
        .content_length()
        .is_some_and(|n| n > OPENAPI_BYTES_MAX as u64)
    {
        return Err(format!(
            "the OpenAPI document is larger than {} MiB",
            OPENAPI_BYTES_MAX >> 20
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot read the OpenAPI document: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > OPENAPI_BYTES_MAX {
            return Err(format!(
                "the OpenAPI document is larger than {} MiB",
                OPENAPI_BYTES_MAX >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    parse_openapi(&body)
}

/// Parse an OpenAPI document's bytes (JSON only), capped at [`OPENAPI_BYTES_MAX`].
pub fn parse_openapi(bytes: &[u8]) -> Result<Value, String> {
    if bytes.len() > OPENAPI_BYTES_MAX {
        return Err(format!(
            "the OpenAPI document is larger than {} MiB",
            OPENAPI_BYTES_MAX >> 20
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the OpenAPI document is not JSON (line {}, column {}); YAML is not read: convert it first",
            e.line(),
            e.column()
        )
    })
}

// ---------------------------------------------------------------------------
// The document, read into operations.

/// One of the model's objects a path parameter, query parameter or body field can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Obj {
    Appointment,
    Call,
    Recording,
    Me,
}

impl Obj {
    fn placeholder(self) -> &'static str {
        match self {
            Obj::Appointment => "{appointment}",
            Obj::Call => "{call}",
            Obj::Recording => "{recording}",
            Obj::Me => "{me}",
        }
    }

    /// The object a (singular, lower-case) noun names.
    fn of_noun(noun: &str) -> Option<Obj> {
        const APPOINTMENT: &[&str] = &[
            "appointment",
            "booking",
            "visit",
            "consultation",
            "consult",
            "encounter",
            "reservation",
        ];
        const CALL: &[&str] = &[
            "call",
            "videocall",
            "session",
            "meeting",
            "room",
            "teleconsultation",
        ];
        const RECORDING: &[&str] = &["recording", "media", "replay", "video", "audio", "clip"];
        const ME: &[&str] = &[
            "patient", "user", "account", "member", "person", "profile", "subject",
        ];
        if APPOINTMENT.contains(&noun) {
            Some(Obj::Appointment)
        } else if CALL.contains(&noun) {
            Some(Obj::Call)
        } else if RECORDING.contains(&noun) {
            Some(Obj::Recording)
        } else if ME.contains(&noun) {
            Some(Obj::Me)
        } else {
            None
        }
    }

    /// The object a parameter or field name names (`appointment_id`,
    /// `callId`, `patient`), if its words say so.
    fn of_name(name: &str) -> Option<Obj> {
        words(name).iter().find_map(|w| Obj::of_noun(&singular(w)))
    }
}

/// Nouns as this document uses them. Services name the same things
/// differently (a visit and its consultation, an appointment and its
/// encounter): the appointment-like noun of the collection patients book
/// into is the appointment, and any other appointment-like noun is then
/// the call held within it.
#[derive(Debug, Clone, Default)]
struct Nouns {
    appointment: Option<String>,
}

impl Nouns {
    /// Priority among appointment-like nouns when several collections are booked into.
    const APPOINTMENT_ORDER: [&'static str; 7] = [
        "appointment",
        "booking",
        "reservation",
        "visit",
        "consultation",
        "consult",
        "encounter",
    ];

    /// The booked-into noun: of every `POST` on a collection whose path
    /// names no object but the patient, the most appointment-like.
    fn of_document(doc: &Value) -> Nouns {
        let mut best: Option<usize> = None;
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Nouns::default();
        };
        for (raw_path, item) in paths.iter().take(OPERATIONS_MAX) {
            if resolve(doc, item).get("post").is_none() {
                continue;
            }
            let parts: Vec<&str> = raw_path.split('/').filter(|p| !p.is_empty()).collect();
            let Some(last) = parts.last() else { continue };
            if last.starts_with('{') {
                continue;
            }
            let noun = words(last).last().map(|w| singular(w)).unwrap_or_default();
            if Obj::of_noun(&noun) != Some(Obj::Appointment) {
                continue;
            }
            let scoped_to_object = parts.windows(2).any(|w| {
                let Some(name) = w[1].strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                    return false;
                };
                let previous = words(w[0]).last().map(|x| singular(x)).unwrap_or_default();
                Obj::of_name(name).or_else(|| Obj::of_noun(&previous)) != Some(Obj::Me)
            });
            if scoped_to_object {
                continue;
            }
            if let Some(rank) = Self::APPOINTMENT_ORDER.iter().position(|n| *n == noun)
                && best.is_none_or(|b| rank < b)
            {
                best = Some(rank);
            }
        }
        Nouns {
            appointment: best.map(|i| Self::APPOINTMENT_ORDER[i].to_string()),
        }
    }

    fn of_noun(&self, noun: &str) -> Option<Obj> {
        match Obj::of_noun(noun) {
            Some(Obj::Appointment) if self.appointment.as_deref().is_some_and(|a| a != noun) => {
                Some(Obj::Call)
            }
            other => other,
        }
    }

    fn of_name(&self, name: &str) -> Option<Obj> {
        words(name).iter().find_map(|w| self.of_noun(&singular(w)))
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Lit(String),
    Param { name: String, obj: Option<Obj> },
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    location: String,
    required: bool,
    obj: Option<Obj>,
    /// The value is a typed reference (`Patient/123`), as its description or example says.
    reference: bool,
}

#[derive(Debug, Clone)]
struct Response<'a> {
    status: u16,
    /// Content types and their schemas.
    content: Vec<(String, Option<&'a Value>)>,
    /// Header names, as documented.
    headers: Vec<String>,
}

#[derive(Debug, Clone)]
struct Operation<'a> {
    method: &'static str,
    /// The path as documented, with the server's base path in front.
    path: String,
    segments: Vec<Segment>,
    operation_id: String,
    /// Lower-case words of the path's literals, the operationId and the tags.
    words: BTreeSet<String>,
    /// The summary and description, lower-case, for hints such as order.
    text: String,
    params: Vec<Param>,
    /// The request body's content types and schemas.
    body: Vec<(String, Option<&'a Value>)>,
    body_required: bool,
    /// Every documented status with its response.
    responses: Vec<Response<'a>>,
    /// `security: []`: the operation needs no session.
    public: bool,
}

impl<'a> Operation<'a> {
    fn label(&self) -> String {
        if self.operation_id.is_empty() {
            format!("{} {}", self.method, clean(&self.path))
        } else {
            format!(
                "{} {} ({})",
                self.method,
                clean(&self.path),
                clean(&self.operation_id)
            )
        }
    }

    fn last_lit(&self) -> Option<String> {
        match self.segments.last() {
            Some(Segment::Lit(s)) => Some(s.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn last_noun(&self) -> Option<String> {
        self.last_lit().map(|s| singular(&s))
    }

    fn ends_with_param(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Param { .. }))
    }

    /// The object the last path parameter names, when the path ends with it.
    fn item_obj(&self) -> Option<Obj> {
        match self.segments.last() {
            Some(Segment::Param { obj, .. }) => *obj,
            _ => None,
        }
    }

    fn path_objs(&self) -> Vec<Option<Obj>> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param { obj, .. } => Some(*obj),
                Segment::Lit(_) => None,
            })
            .collect()
    }

    fn has_path_obj(&self, obj: Obj) -> bool {
        self.path_objs().contains(&Some(obj))
    }

    /// Path parameters other than the patient's own id.
    fn has_object_params(&self) -> bool {
        self.path_objs().iter().any(|o| *o != Some(Obj::Me))
    }

    fn has_word(&self, candidates: &[&str]) -> bool {
        candidates.iter().any(|c| self.words.contains(*c))
    }

    /// Documented success statuses (2xx), ascending.
    fn success(&self) -> Vec<u16> {
        self.responses
            .iter()
            .map(|r| r.status)
            .filter(|s| (200..300).contains(s))
            .collect()
    }

    fn documents(&self, status: u16) -> bool {
        self.responses.iter().any(|r| r.status == status)
    }

    /// The JSON schema of the first success response that has one.
    fn response_schema(&self) -> Option<&'a Value> {
        self.responses
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.content.iter())
            .find(|(ct, s)| is_json(ct) && s.is_some())
            .and_then(|(_, s)| *s)
    }

    /// Whether a success response is bytes (audio, video, octet-stream, or a binary string).
    fn response_is_binary(&self, doc: &Value) -> bool {
        self.responses
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.content.iter())
            .any(|(ct, s)| is_binary(doc, ct, *s))
    }

    fn response_headers(&self) -> Vec<String> {
        self.responses
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.headers.iter().cloned())
            .collect()
    }

    fn body_is_binary(&self, doc: &Value) -> bool {
        self.body.iter().any(|(ct, s)| is_binary(doc, ct, *s))
    }
}

fn is_json(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/json") || ct.contains("+json")
}

fn is_binary(doc: &Value, content_type: &str, schema: Option<&Value>) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/octet-stream")
        || ct.starts_with("audio/")
        || ct.starts_with("video/")
        || (!is_json(&ct)
            && schema
                .map(|s| resolve(doc, s))
                .and_then(|s| s.get("format"))
                .and_then(Value::as_str)
                == Some("binary"))
}

/// Follow `$ref`s (local ones, `#/...`) at most [`REF_HOPS_MAX`] times.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..REF_HOPS_MAX {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return value;
        };
        match doc.pointer(pointer) {
            Some(target) => value = target,
            None => return value,
        }
    }
    value
}

/// A schema's properties, `allOf` members merged (bounded), in document order.
fn properties<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> Vec<(&'a str, &'a Value)> {
    let mut out = Vec::new();
    let mut visits = SCHEMA_VISITS_MAX;
    collect_properties(doc, schema, depth, &mut visits, &mut out);
    out
}

/// [`properties`], with a budget of schema nodes visited so that an
/// `allOf` that names itself many times cannot blow up.
fn collect_properties<'a>(
    doc: &'a Value,
    schema: &'a Value,
    depth: usize,
    visits: &mut usize,
    out: &mut Vec<(&'a str, &'a Value)>,
) {
    if depth > SCHEMA_DEPTH_MAX || *visits == 0 || out.len() >= PROPERTIES_MAX {
        return;
    }
    *visits -= 1;
    let schema = resolve(doc, schema);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let room = PROPERTIES_MAX - out.len();
        out.extend(
            props
                .iter()
                .take(room)
                .map(|(k, v)| (k.as_str(), resolve(doc, v))),
        );
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(members) = schema.get(combinator).and_then(Value::as_array) {
            // oneOf/anyOf: the first member stands for all (a draft, not a proof).
            let take = if combinator == "allOf" {
                members.len()
            } else {
                1
            };
            for member in members.iter().take(take) {
                collect_properties(doc, member, depth + 1, visits, out);
            }
        }
    }
}

fn required_names<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let mut visits = SCHEMA_VISITS_MAX;
    collect_required(doc, schema, depth, &mut visits, &mut out);
    out
}

fn collect_required<'a>(
    doc: &'a Value,
    schema: &'a Value,
    depth: usize,
    visits: &mut usize,
    out: &mut BTreeSet<&'a str>,
) {
    if depth > SCHEMA_DEPTH_MAX || *visits == 0 {
        return;
    }
    *visits -= 1;
    let schema = resolve(doc, schema);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        out.extend(
            required
                .iter()
                .take(PROPERTIES_MAX)
                .filter_map(Value::as_str),
        );
    }
    if let Some(members) = schema.get("allOf").and_then(Value::as_array) {
        for member in members {
            collect_required(doc, member, depth + 1, visits, out);
        }
    }
}

fn schema_type<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a str> {
    let schema = resolve(doc, schema);
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // OpenAPI 3.1: `type: ["string", "null"]`.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ if schema.get("properties").is_some() || schema.get("allOf").is_some() => Some("object"),
        _ if schema.get("items").is_some() => Some("array"),
        _ => None,
    }
}

fn array_items<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let schema = resolve(doc, schema);
    (schema_type(doc, schema) == Some("array"))
        .then(|| schema.get("items").map(|i| resolve(doc, i)))
        .flatten()
}

/// Lower-case words of an identifier or path segment: `startCall`,
/// `start_call`, `start-call` all give `start`, `call`.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            current.push(c.to_ascii_lowercase());
        } else {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = false;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A crude singular: `appointments` → `appointment`, `media` stays.
fn singular(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

/// A name with case and separators removed, for comparing field names:
/// `appointment_id`, `appointmentId` and `AppointmentID` are all `appointmentid`.
fn norm(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Text from the document, safe for one comment line.
fn clean(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > COMMENT_LEN_MAX {
        let cut: String = collapsed.chars().take(COMMENT_LEN_MAX).collect();
        format!("{cut}…")
    } else {
        collapsed
    }
}

/// The base path of the first server (`/api/v2`), or why it is unusable.
fn base_path(doc: &Value) -> (String, Option<String>) {
    let Some(url) = doc.pointer("/servers/0/url").and_then(Value::as_str) else {
        return (String::new(), None);
    };
    if url.contains('{') {
        return (
            String::new(),
            Some("the server URL has variables; put its base path in front of every path".into()),
        );
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => url,
    };
    (path.trim_end_matches('/').to_string(), None)
}

const METHODS: [(&str, &str); 5] = [
    ("get", "GET"),
    ("post", "POST"),
    ("put", "PUT"),
    ("patch", "PATCH"),
    ("delete", "DELETE"),
];

/// Every operation of the document (at most [`OPERATIONS_MAX`]), and how many were left out.
fn operations<'a>(doc: &'a Value, nouns: &Nouns) -> (Vec<Operation<'a>>, usize) {
    let (base, _) = base_path(doc);
    let mut out = Vec::new();
    let mut left_out = 0;
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return (out, 0);
    };
    for (raw_path, item) in paths {
        let item = resolve(doc, item);
        let shared_params: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        for (key, method) in METHODS {
            let Some(op) = item.get(key) else { continue };
            if out.len() >= OPERATIONS_MAX {
                left_out += 1;
                continue;
            }
            out.push(operation(
                doc,
                nouns,
                &base,
                raw_path,
                method,
                op,
                &shared_params,
            ));
        }
    }
    (out, left_out)
}

fn operation<'a>(
    doc: &'a Value,
    nouns: &Nouns,
    base: &str,
    raw_path: &str,
    method: &'static str,
    op: &'a Value,
    shared_params: &[&'a Value],
) -> Operation<'a> {
    let full_path = format!("{base}{raw_path}");
    let mut segments = Vec::new();
    let mut previous_noun: Option<String> = None;
    for part in full_path.split('/').filter(|p| !p.is_empty()) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            // A generic name (`id`) takes its meaning from the collection before it.
            let obj = nouns
                .of_name(name)
                .or_else(|| previous_noun.as_deref().and_then(|n| nouns.of_noun(n)));
            segments.push(Segment::Param {
                name: name.to_string(),
                obj,
            });
        } else {
            previous_noun = words(part).last().map(|w| singular(w));
            segments.push(Segment::Lit(part.to_string()));
        }
    }

    let operation_id = op
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut word_set: BTreeSet<String> = BTreeSet::new();
    for segment in &segments {
        if let Segment::Lit(lit) = segment {
            word_set.extend(words(lit).iter().map(|w| singular(w)));
            word_set.extend(words(lit));
        }
    }
    word_set.extend(words(&operation_id).iter().map(|w| singular(w)));
    word_set.extend(words(&operation_id));
    if let Some(tags) = op.get("tags").and_then(Value::as_array) {
        for tag in tags.iter().filter_map(Value::as_str).take(16) {
            word_set.extend(words(tag).iter().map(|w| singular(w)));
        }
    }
    let text = format!(
        "{} {}",
        op.get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        op.get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
    .to_ascii_lowercase();

    let mut params: Vec<Param> = Vec::new();
    let own = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    for raw in shared_params.iter().copied().chain(own) {
        let p = resolve(doc, raw);
        let (Some(name), Some(location)) = (
            p.get("name").and_then(Value::as_str),
            p.get("in").and_then(Value::as_str),
        ) else {
            continue;
        };
        // An operation's own parameter overrides a path-level one of the same name.
        params.retain(|q| !(q.name == name && q.location == location));
        params.push(Param {
            name: name.to_string(),
            location: location.to_string(),
            required: p.get("required").and_then(Value::as_bool) == Some(true),
            obj: nouns.of_name(name),
            reference: ["description", "example"].iter().any(|k| {
                p.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains("Patient/"))
            }),
        });
    }

    let request_body = op.get("requestBody").map(|b| resolve(doc, b));
    let body = request_body
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .map(|(ct, media)| (ct.clone(), media.get("schema")))
                .collect()
        })
        .unwrap_or_default();
    let body_required = request_body
        .and_then(|b| b.get("required"))
        .and_then(Value::as_bool)
        == Some(true);

    let mut responses = Vec::new();
    if let Some(map) = op.get("responses").and_then(Value::as_object) {
        for (status, response) in map.iter().take(64) {
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            let response = resolve(doc, response);
            let content = response
                .get("content")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .map(|(ct, media)| (ct.clone(), media.get("schema")))
                        .collect()
                })
                .unwrap_or_default();
            let headers = response
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default();
            responses.push(Response {
                status,
                content,
                headers,
            });
        }
    }
    responses.sort_by_key(|r| r.status);

    // No requirement applies: `security: []` (or an empty alternative), or
    // none on the operation and none for the whole document.
    let public = match op.get("security").and_then(Value::as_array) {
        Some(s) => {
            s.is_empty()
                || s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        }
        None => doc
            .get("security")
            .and_then(Value::as_array)
            .is_none_or(|s| s.is_empty()),
    };

    Operation {
        method,
        path: full_path,
        segments,
        operation_id,
        words: word_set,
        text,
        params,
        body,
        body_required,
        responses,
        public,
    }
}

// ---------------------------------------------------------------------------
// Finding fields in schemas.

/// Where, in a response schema, the first field whose normalised name is one
/// of `names` is (names in order of preference; shallow before deep), as a JSON Pointer.
fn find_field(doc: &Value, schema: &Value, names: &[&str]) -> Option<String> {
    for name in names {
        if let Some(found) = find_named(doc, schema, &|n| n == *name, 0) {
            return Some(found);
        }
    }
    None
}

fn find_named(
    doc: &Value,
    schema: &Value,
    matches: &dyn Fn(&str) -> bool,
    depth: usize,
) -> Option<String> {
    let mut visits = SCHEMA_VISITS_MAX;
    find_named_within(doc, schema, matches, depth, &mut visits)
}

/// [`find_named`] with a budget of objects descended into.
fn find_named_within(
    doc: &Value,
    schema: &Value,
    matches: &dyn Fn(&str) -> bool,
    depth: usize,
    visits: &mut usize,
) -> Option<String> {
    if depth > SCHEMA_DEPTH_MAX.min(3) || *visits == 0 {
        return None;
    }
    *visits -= 1;
    let props = properties(doc, schema, 0);
    for (name, sub) in &props {
        if matches(&norm(name)) && !matches!(schema_type(doc, sub), Some("object" | "array")) {
            return Some(format!("/{}", escape_pointer(name)));
        }
    }
    for (name, sub) in &props {
        if schema_type(doc, sub) == Some("object")
            && let Some(inner) = find_named_within(doc, sub, matches, depth + 1, visits)
        {
            return Some(format!("/{}{inner}", escape_pointer(name)));
        }
    }
    None
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The names of a schema's top-level fields, for a TODO that says what there is.
fn field_names(doc: &Value, schema: &Value) -> String {
    let names: Vec<String> = properties(doc, schema, 0)
        .iter()
        .take(12)
        .map(|(n, _)| clean(n))
        .collect();
    if names.is_empty() {
        "no documented fields".into()
    } else {
        names.join(", ")
    }
}

// ---------------------------------------------------------------------------
// The draft, as TOML text.

/// A TOML value as written in the draft.
enum Tv {
    Str(String),
    Raw(String),
    Table(Vec<(String, Tv)>),
}

impl Tv {
    fn write(&self) -> String {
        match self {
            Tv::Str(s) => q(s),
            Tv::Raw(r) => r.clone(),
            Tv::Table(entries) => inline(entries.iter().map(|(k, v)| (k.as_str(), v.write()))),
        }
    }
}

/// A quoted TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        q(k)
    }
}

fn inline<'k>(entries: impl IntoIterator<Item = (&'k str, String)>) -> String {
    let parts: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{} = {v}", key(k)))
        .collect();
    if parts.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", parts.join(", "))
    }
}

enum BodyOut {
    None,
    Json(Tv),
    Form(Vec<(String, Tv)>),
    Raw {
        template: String,
        content_type: String,
    },
}

/// One request of the draft.
struct Req {
    notes: Vec<String>,
    method: String,
    path: Option<String>,
    url: Option<String>,
    query: Vec<(String, String)>,
    body: BodyOut,
    session: Option<bool>,
    success: Vec<u16>,
    captures: Vec<(String, String)>,
    media: bool,
    poll: Option<String>,
}

impl Req {
    fn new(method: &str) -> Req {
        Req {
            notes: Vec::new(),
            method: method.to_string(),
            path: None,
            url: None,
            query: Vec::new(),
            body: BodyOut::None,
            session: None,
            success: Vec::new(),
            captures: Vec::new(),
            media: false,
            poll: None,
        }
    }

    fn write(&self, out: &mut String, action: &str) {
        let _ = writeln!(out, "[[actions.{action}.requests]]");
        for note in &self.notes {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "method = {}", q(&self.method));
        if let Some(path) = &self.path {
            let _ = writeln!(out, "path = {}", q(path));
        }
        if let Some(url) = &self.url {
            let _ = writeln!(out, "url = {}", q(url));
        }
        if !self.query.is_empty() {
            let _ = writeln!(
                out,
                "query = {}",
                inline(self.query.iter().map(|(k, v)| (k.as_str(), q(v))))
            );
        }
        if let Some(session) = self.session {
            let _ = writeln!(out, "session = {session}");
        }
        match &self.body {
            BodyOut::None => {}
            BodyOut::Json(tv) => {
                let _ = writeln!(out, "json = {}", tv.write());
            }
            BodyOut::Form(fields) => {
                let _ = writeln!(
                    out,
                    "form = {}",
                    inline(fields.iter().map(|(k, v)| (k.as_str(), v.write())))
                );
            }
            BodyOut::Raw {
                template,
                content_type,
            } => {
                let _ = writeln!(out, "body = {}", q(template));
                let _ = writeln!(out, "content_type = {}", q(content_type));
            }
        }
        if !self.success.is_empty() {
            let list: Vec<String> = self.success.iter().map(u16::to_string).collect();
            let _ = writeln!(out, "success = [{}]", list.join(", "));
        }
        for (name, capture) in &self.captures {
            let _ = writeln!(out, "capture.{} = {capture}", key(name));
        }
        if self.media {
            let _ = writeln!(out, "media = true");
        }
        if let Some(poll) = &self.poll {
            let _ = writeln!(out, "poll = {poll}");
        }
        out.push('\n');
    }
}

fn json_capture(pointer: &str) -> String {
    inline([("json", q(pointer))])
}

/// The model actions in the order a binding lists them.
const ACTION_NAMES: [&str; 10] = [
    "register",
    "book",
    "cancel",
    "start-call",
    "upgrade",
    "send-media",
    "end-call",
    "play",
    "erase",
    "erase-account",
];

/// Which objects each action has to put in its requests.
fn available(action: &str) -> &'static [Obj] {
    match action {
        "register" => &[],
        "book" => &[Obj::Me],
        "cancel" | "start-call" => &[Obj::Appointment, Obj::Me],
        "upgrade" | "send-media" | "end-call" => {
            &[Obj::Call, Obj::Recording, Obj::Appointment, Obj::Me]
        }
        "play" | "erase" => &[Obj::Recording, Obj::Me],
        _ => &[Obj::Me],
    }
}

/// How a patient's session is presented, from the document's security schemes.
struct SessionGuess {
    lines: Vec<String>,
    /// A header the token may come back in (an API key scheme).
    header: Option<String>,
    /// A cookie the token may come back in (a cookie scheme).
    cookie: Option<String>,
}

fn session_guess(doc: &Value) -> SessionGuess {
    let schemes = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object);
    // The scheme the document applies by default, else the first one declared.
    let default_name = doc
        .pointer("/security/0")
        .and_then(Value::as_object)
        .and_then(|o| o.keys().next().cloned());
    let scheme = schemes.and_then(|s| {
        default_name
            .as_deref()
            .and_then(|n| s.get(n))
            .or_else(|| s.values().next())
            .map(|v| resolve(doc, v))
    });
    let Some(scheme) = scheme else {
        return SessionGuess {
            lines: vec![
                "# TODO: the document declares no security scheme; a bearer token is a guess."
                    .into(),
                "header = \"Authorization\"".into(),
                "value = \"Bearer {token}\"".into(),
            ],
            header: None,
            cookie: None,
        };
    };
    let kind = scheme
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let http_scheme = scheme
        .get("scheme")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match kind {
        "http" if http_scheme == "bearer" => SessionGuess {
            lines: vec![
                "header = \"Authorization\"".into(),
                "value = \"Bearer {token}\"".into(),
            ],
            header: None,
            cookie: None,
        },
        "apiKey" => {
            let name = scheme
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("X-Api-Key");
            match scheme.get("in").and_then(Value::as_str) {
                Some("cookie") => SessionGuess {
                    lines: vec![format!("cookie = {}", q(name))],
                    header: None,
                    cookie: Some(name.to_string()),
                },
                Some("header") => SessionGuess {
                    lines: vec![format!("header = {}", q(name))],
                    header: Some(name.to_string()),
                    cookie: None,
                },
                _ => SessionGuess {
                    lines: vec![
                        "# TODO: the API key goes in the query; a binding presents it as a header or cookie.".into(),
                        format!("header = {}", q(name)),
                    ],
                    header: None,
                    cookie: None,
                },
            }
        }
        "oauth2" | "openIdConnect" => SessionGuess {
            lines: vec![
                "# TODO: OAuth2/OpenID: log in within `register` and capture the access token."
                    .into(),
                "header = \"Authorization\"".into(),
                "value = \"Bearer {token}\"".into(),
            ],
            header: None,
            cookie: None,
        },
        _ => SessionGuess {
            lines: vec![
                format!(
                    "# TODO: security scheme type `{}` is not one a binding presents directly; a bearer token is a guess.",
                    clean(kind)
                ),
                "header = \"Authorization\"".into(),
                "value = \"Bearer {token}\"".into(),
            ],
            header: None,
            cookie: None,
        },
    }
}

/// Field names (normalised) that hold each placeholder, per action.
fn field_placeholder(
    nouns: &Nouns,
    action: &str,
    name: &str,
    schema_format: Option<&str>,
) -> Option<&'static str> {
    let n = norm(name);
    let n = n.as_str();
    let by_action = match action {
        "register" => match n {
            "displayname" | "name" | "fullname" | "nickname" => Some("{display_name}"),
            "email" | "emailaddress" | "mail" | "username" | "login" => Some("{email}"),
            "password" | "passphrase" | "secret" => Some("{password}"),
            _ => None,
        },
        "book" => match n {
            "slot" | "slotid" | "timeslot" => Some("{slot}"),
            "start" | "starttime" | "startsat" | "startat" | "begin" | "from" | "datetime"
            | "time" | "scheduledat" | "scheduledfor" | "when" => Some("{slot_start}"),
            "end" | "endtime" | "endsat" | "endat" | "until" | "to" => Some("{slot_end}"),
            "date" | "day" => Some("{slot_date}"),
            "hour" => Some("{slot_hour}"),
            "notes" | "note" | "reason" | "comment" | "comments" | "description" | "symptoms"
            | "message" => Some("{notes}"),
            _ if schema_format == Some("date-time") => Some("{slot_start}"),
            _ => None,
        },
        "send-media" => match n {
            "data" | "chunk" | "chunkdata" | "content" | "bytes" | "payload" | "media"
            | "base64" | "body" => Some("{media_base64}"),
            "seq" | "sequence" | "index" | "chunkindex" | "part" | "partnumber" | "number"
            | "chunknumber" => Some("{chunk}"),
            _ => None,
        },
        _ => None,
    };
    by_action.or_else(|| {
        nouns
            .of_name(name)
            .filter(|o| available(action).contains(o))
            .map(Obj::placeholder)
    })
}

struct Draft<'d> {
    doc: &'d Value,
    nouns: Nouns,
    todos_global: Vec<String>,
    uses_me: bool,
}

impl<'d> Draft<'d> {
    /// The path template of `op` for `action`, and notes for parameters it could not fill.
    fn path_template(
        &mut self,
        op: &Operation<'_>,
        action: &str,
        extra: &[Obj],
    ) -> (String, Vec<String>) {
        let mut path = String::new();
        let mut notes = Vec::new();
        for segment in &op.segments {
            path.push('/');
            match segment {
                Segment::Lit(lit) => path.push_str(lit),
                Segment::Param { name, obj } => match obj {
                    Some(o) if available(action).contains(o) || extra.contains(o) => {
                        if *o == Obj::Me {
                            self.uses_me = true;
                        }
                        path.push_str(o.placeholder());
                    }
                    _ => {
                        path.push('{');
                        path.push_str(&words(name).join("_"));
                        path.push('}');
                        notes.push(format!(
                            "TODO: what is the path parameter `{}`? {} has {}.",
                            clean(name),
                            action,
                            describe_available(action, extra)
                        ));
                    }
                },
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        (path, notes)
    }

    /// Required query parameters of an action's operation.
    fn action_query(&mut self, op: &Operation<'_>, action: &str, req: &mut Req) {
        for p in op.params.iter().filter(|p| p.location == "query") {
            match p.obj.filter(|o| available(action).contains(o)) {
                Some(o) => {
                    if o == Obj::Me {
                        self.uses_me = true;
                    }
                    req.query
                        .push((p.name.clone(), o.placeholder().to_string()));
                }
                None if p.required => {
                    req.query.push((p.name.clone(), "TODO".into()));
                    req.notes.push(format!(
                        "TODO: the required query parameter `{}`: what should it be?",
                        clean(&p.name)
                    ));
                }
                None => {}
            }
        }
    }

    /// The request body of an action's operation.
    fn action_body(&mut self, op: &Operation<'_>, action: &str, req: &mut Req) {
        let doc = self.doc;
        if op.body.is_empty() {
            return;
        }
        if action == "send-media" && op.body_is_binary(doc) {
            let content_type = op
                .body
                .iter()
                .find(|(ct, s)| is_binary(doc, ct, *s))
                .map(|(ct, _)| ct.clone())
                .unwrap_or_else(|| "application/octet-stream".into());
            req.body = BodyOut::Raw {
                template: "{media}".into(),
                content_type,
            };
            return;
        }
        if let Some((_, schema)) = op.body.iter().find(|(ct, _)| is_json(ct)) {
            let table = match schema {
                Some(s) => self.fill_object(s, action, req, 0),
                None => Vec::new(),
            };
            if !table.is_empty() || op.body_required {
                req.body = BodyOut::Json(Tv::Table(table));
            }
            return;
        }
        if let Some((_, schema)) = op
            .body
            .iter()
            .find(|(ct, _)| ct.starts_with("application/x-www-form-urlencoded"))
        {
            let table = match schema {
                Some(s) => self.fill_object(s, action, req, 0),
                None => Vec::new(),
            };
            req.body = BodyOut::Form(table);
            return;
        }
        let types: Vec<String> = op.body.iter().map(|(ct, _)| clean(ct)).collect();
        req.notes.push(format!(
            "TODO: the request body is {}; a binding sends JSON, a form or raw bytes.",
            types.join(", ")
        ));
    }

    /// A JSON body object: mapped fields, and every required field (TODO where unknown).
    fn fill_object(
        &mut self,
        schema: &Value,
        action: &str,
        req: &mut Req,
        depth: usize,
    ) -> Vec<(String, Tv)> {
        let doc = self.doc;
        let required = required_names(doc, schema, 0);
        let mut out = Vec::new();
        for (name, sub) in properties(doc, schema, 0).into_iter().take(64) {
            if out.iter().any(|(n, _): &(String, Tv)| n == name) {
                continue;
            }
            let format = resolve(doc, sub).get("format").and_then(Value::as_str);
            let is_required = required.contains(name);
            match schema_type(doc, sub) {
                Some("object") if depth < 2 => {
                    let inner = self.fill_object(sub, action, req, depth + 1);
                    if !inner.is_empty() || is_required {
                        out.push((name.to_string(), Tv::Table(inner)));
                    }
                    continue;
                }
                Some("array") => {
                    if is_required {
                        out.push((name.to_string(), Tv::Raw("[]".into())));
                        req.notes.push(format!(
                            "TODO: the required field `{}` is an array: what goes in it?",
                            clean(name)
                        ));
                    }
                    continue;
                }
                _ => {}
            }
            match field_placeholder(&self.nouns, action, name, format) {
                Some(placeholder) => {
                    if placeholder == "{me}" {
                        self.uses_me = true;
                    }
                    out.push((name.to_string(), Tv::Str(placeholder.to_string())));
                }
                None if is_required => {
                    let example = resolve(doc, sub)
                        .get("default")
                        .or_else(|| resolve(doc, sub).get("example"))
                        .or_else(|| resolve(doc, sub).pointer("/enum/0"));
                    let value = match example {
                        Some(Value::String(s)) => Tv::Str(s.clone()),
                        Some(Value::Number(n)) => Tv::Raw(n.to_string()),
                        Some(Value::Bool(b)) => Tv::Raw(b.to_string()),
                        _ => Tv::Str("TODO".into()),
                    };
                    out.push((name.to_string(), value));
                    req.notes.push(format!(
                        "TODO: the required field `{}`: check its value.",
                        clean(name)
                    ));
                }
                None => {}
            }
        }
        out
    }

    /// A request for `op` performing `action`: path, query, body, session, success.
    fn request(&mut self, op: &Operation<'_>, action: &str) -> Req {
        let mut req = Req::new(op.method);
        req.notes.push(op.label());
        let (path, notes) = self.path_template(op, action, &[]);
        req.path = Some(path);
        req.notes.extend(notes);
        self.action_query(op, action, &mut req);
        self.action_body(op, action, &mut req);
        if op.public {
            req.session = Some(false);
        }
        req.success = op.success();
        // An operation that answers 202 with a Location header is asynchronous.
        if op.documents(202)
            && op.responses.iter().any(|r| {
                r.status == 202 && r.headers.iter().any(|h| h.eq_ignore_ascii_case("location"))
            })
        {
            // The status URL answers 200 once done (and maybe while pending):
            // a done-like value of a `status` field decides, when documented.
            let accepted = op
                .responses
                .iter()
                .filter(|r| r.status == 202)
                .flat_map(|r| r.content.iter())
                .find_map(|(ct, schema)| schema.filter(|_| is_json(ct)));
            let until = accepted.and_then(|schema| done_value(self.doc, schema));
            // A status URL in the body is in every answer; `Location` may be in the 202 only.
            let url = accepted
                .and_then(|schema| find_field(self.doc, schema, STATUS_URL_FIELDS))
                .map_or_else(|| inline([("header", q("Location"))]), |p| json_capture(&p));
            let mut poll = vec![("url", url)];
            match until {
                Some((pointer, value)) => {
                    poll.push(("until", inline([("json", q(&pointer)), ("equals", q(&value))])));
                    req.notes.push(
                        "TODO: 202 with a Location header: polled until the status says done; check the status URL's answer has the same shape."
                            .into(),
                    );
                }
                None => req.notes.push(
                    "TODO: 202 with a Location header: polled until done; add `until` if the status URL answers 200 while pending."
                        .into(),
                ),
            }
            req.poll = Some(inline(poll));
            // The last answer, the one that is done, is judged by `success`.
            if !req.success.contains(&200) {
                req.success.insert(0, 200);
            }
        }
        req
    }

    /// Capture `name` from the response of `op` by the first of `fields`
    /// found, or from a `Location` header; a TODO otherwise.
    fn capture_output(
        &self,
        op: &Operation<'_>,
        req: &mut Req,
        name: &str,
        fields: &[&str],
        required: bool,
    ) -> bool {
        let doc = self.doc;
        let found = op.response_schema().and_then(|schema| {
            find_field(doc, schema, fields).or_else(|| {
                // A recording is often an object of its own (`clip: { ref }`).
                (name == "recording")
                    .then(|| {
                        // The answer may be the new recording itself (a FHIR `Media`).
                        is_recording_schema(doc, schema)
                            .then(|| find_field_shallow(doc, schema, ITEM_ID_FIELDS))
                            .flatten()
                            .or_else(|| find_recording_object_id(doc, schema, 0))
                    })
                    .flatten()
            })
        });
        if let Some(pointer) = found {
            req.captures
                .push((name.to_string(), json_capture(&pointer)));
            return true;
        }
        // `Location` names the created resource: the action's main output only.
        if required
            && op
                .response_headers()
                .iter()
                .any(|h| h.eq_ignore_ascii_case("location"))
        {
            req.captures.push((
                name.to_string(),
                inline([("header", q("Location")), ("regex", q("/([^/?#]+)/?$"))]),
            ));
            return true;
        }
        let has = op
            .response_schema()
            .map(|s| field_names(doc, s))
            .unwrap_or_else(|| "no JSON response documented".into());
        if required {
            req.captures
                .push((name.to_string(), json_capture(&format!("/TODO-{name}"))));
            req.notes.push(format!(
                "TODO: where is the new {name}'s id? The response has: {has}."
            ));
        }
        false
    }
}

fn describe_available(action: &str, extra: &[Obj]) -> String {
    let mut all: Vec<&str> = available(action)
        .iter()
        .chain(extra)
        .map(|o| o.placeholder())
        .collect();
    all.dedup();
    if all.is_empty() {
        "no object placeholders".into()
    } else {
        all.join(", ")
    }
}

const TOKEN_FIELDS: &[&str] = &[
    "token",
    "accesstoken",
    "sessiontoken",
    "authtoken",
    "bearertoken",
    "apikey",
    "apitoken",
    "jwt",
    "idtoken",
];
const ME_FIELDS: &[&str] = &[
    "patientid",
    "userid",
    "accountid",
    "memberid",
    "personid",
    "id",
];
const APPOINTMENT_FIELDS: &[&str] = &[
    "appointmentid",
    "bookingid",
    "visitid",
    "consultationid",
    "encounterid",
    "reservationid",
    "id",
];
const CALL_FIELDS: &[&str] = &["callid", "sessionid", "meetingid", "roomid", "id"];
const RECORDING_FIELDS: &[&str] = &[
    "recordingid",
    "videorecordingid",
    "currentrecordingid",
    "mediaid",
    "replayid",
];
/// A `status`/`state` field whose enum has a done-like value, as (pointer, value).
fn done_value(doc: &Value, schema: &Value) -> Option<(String, String)> {
    const DONE: [&str; 6] = [
        "done",
        "completed",
        "complete",
        "succeeded",
        "success",
        "finished",
    ];
    fn walk(doc: &Value, schema: &Value, depth: usize) -> Option<(String, String)> {
        if depth > 3 {
            return None;
        }
        let props = properties(doc, schema, 0);
        for (name, sub) in &props {
            if matches!(norm(name).as_str(), "status" | "state")
                && let Some(values) = resolve(doc, sub).get("enum").and_then(Value::as_array)
                && let Some(done) = DONE
                    .iter()
                    .find(|d| values.iter().any(|v| v.as_str() == Some(**d)))
            {
                return Some((format!("/{}", escape_pointer(name)), (*done).to_string()));
            }
        }
        props.iter().take(32).find_map(|(name, sub)| {
            (schema_type(doc, sub) == Some("object"))
                .then(|| walk(doc, sub, depth + 1))
                .flatten()
                .map(|(inner, v)| (format!("/{}{inner}", escape_pointer(name)), v))
        })
    }
    walk(doc, schema, 0)
}

/// Whether a schema is a recording: its `$ref` names one (`#/components/schemas/Clip`)
/// or its `resourceType` is FHIR's `Media`.
fn is_recording_schema(doc: &Value, schema: &Value) -> bool {
    let named = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|n| words(n).last().map(|w| singular(w)))
        .and_then(|n| Obj::of_noun(&n))
        == Some(Obj::Recording);
    let fhir_media = resolve(doc, schema)
        .pointer("/properties/resourceType/enum")
        .and_then(Value::as_array)
        .is_some_and(|e| e.iter().any(|t| t.as_str() == Some("Media")));
    named || fhir_media
}

/// The id of a recording-like object (`clip`, `recording`, `media`) somewhere
/// in a response (`/operation/result/clip/ref`), shallow first.
fn find_recording_object_id(doc: &Value, schema: &Value, depth: usize) -> Option<String> {
    if depth > 3 {
        return None;
    }
    let props = properties(doc, schema, 0);
    for (name, sub) in &props {
        if Obj::of_name(name) == Some(Obj::Recording)
            && schema_type(doc, sub) == Some("object")
            && let Some(id) = find_field_shallow(doc, sub, ITEM_ID_FIELDS)
        {
            return Some(format!("/{}{id}", escape_pointer(name)));
        }
    }
    props.iter().take(32).find_map(|(name, sub)| {
        (schema_type(doc, sub) == Some("object"))
            .then(|| find_recording_object_id(doc, sub, depth + 1))
            .flatten()
            .map(|inner| format!("/{}{inner}", escape_pointer(name)))
    })
}

/// Where an asynchronous operation's status URL is, by name.
const STATUS_URL_FIELDS: &[&str] = &[
    "statusurl",
    "pollurl",
    "monitorurl",
    "operationurl",
    "progressurl",
    "statushref",
];

/// An item's own id, by name, in order of preference.
const ITEM_ID_FIELDS: &[&str] = &["id", "ref", "uuid", "key", "identifier"];

/// A top-level (not nested) field of `schema` by normalised name, as a pointer.
fn find_field_shallow(doc: &Value, schema: &Value, names: &[&str]) -> Option<String> {
    let props = properties(doc, schema, 0);
    names.iter().find_map(|want| {
        props
            .iter()
            .find(|(n, s)| {
                norm(n) == *want && !matches!(schema_type(doc, s), Some("object" | "array"))
            })
            .map(|(n, _)| format!("/{}", escape_pointer(n)))
    })
}

const LINK_FIELDS: &[&str] = &[
    "downloadurl",
    "url",
    "href",
    "link",
    "signedurl",
    "presignedurl",
    "download",
    "uri",
    "location",
];

/// Scores of an operation for each action; higher is a better match, `None` no match.
fn score(op: &Operation<'_>, doc: &Value, nouns: &Nouns, action: &str) -> Option<i32> {
    let m = op.method;
    let noun = op.last_noun();
    let noun_obj = noun.as_deref().and_then(|n| nouns.of_noun(n));
    let has_token = || {
        op.response_schema()
            .and_then(|s| find_field(doc, s, TOKEN_FIELDS))
            .is_some()
    };
    match action {
        "register" => {
            let registers = op.has_word(&[
                "register",
                "registration",
                "signup",
                "enrol",
                "enroll",
                "join",
            ]) || (noun_obj == Some(Obj::Me) && noun.as_deref() != Some("subject"));
            (m == "POST"
                && !op.ends_with_param()
                && op.path_objs().is_empty()
                && registers
                && !op.has_word(&["login", "signin", "logout"]))
            .then(|| 10 + if has_token() { 5 } else { 0 } + if op.public { 3 } else { 0 })
        }
        "login" => (m == "POST"
            && op.path_objs().is_empty()
            && op.has_word(&[
                "login",
                "signin",
                "authenticate",
                "auth",
                "token",
                "session",
            ])
            && noun_obj != Some(Obj::Me))
        .then(|| if has_token() { 10 } else { 3 }),
        "book" => (m == "POST"
            && !op.ends_with_param()
            && !op.has_object_params()
            && (noun_obj == Some(Obj::Appointment) || op.has_word(&["book", "booking"])))
        .then_some(10),
        "cancel" => {
            if m == "DELETE" && op.item_obj() == Some(Obj::Appointment) {
                Some(10)
            } else {
                (matches!(m, "POST" | "PUT" | "PATCH")
                    && op.has_path_obj(Obj::Appointment)
                    && matches!(noun.as_deref(), Some("cancel" | "cancellation")))
                .then_some(9)
            }
        }
        "start-call" => {
            if m == "POST"
                && !op.ends_with_param()
                && op.has_path_obj(Obj::Appointment)
                && !op.has_path_obj(Obj::Call)
                && (noun_obj == Some(Obj::Call)
                    || op.has_word(&["start", "call", "join", "begin", "video", "meeting"]))
            {
                Some(10)
            } else {
                // `POST /calls` with the appointment in the body.
                let body_names_appointment = op.body.iter().any(|(_, s)| {
                    s.is_some_and(|s| {
                        properties(doc, s, 0)
                            .iter()
                            .any(|(n, _)| nouns.of_name(n) == Some(Obj::Appointment))
                    })
                });
                (m == "POST"
                    && !op.has_object_params()
                    && noun_obj == Some(Obj::Call)
                    && body_names_appointment)
                    .then_some(8)
            }
        }
        "upgrade" => (matches!(m, "POST" | "PUT" | "PATCH")
            && op.has_path_obj(Obj::Call)
            && op.has_word(&["upgrade", "video", "escalate"])
            && !op.has_word(&["end", "hangup"]))
        .then_some(10),
        "send-media" => ((m == "POST" || m == "PUT")
            && (op.has_path_obj(Obj::Call) || op.has_path_obj(Obj::Recording))
            && !op.ends_with_param()
            && (matches!(
                noun.as_deref(),
                Some(
                    "media"
                        | "chunk"
                        | "segment"
                        | "upload"
                        | "stream"
                        | "data"
                        | "frame"
                        | "audio"
                        | "video"
                        | "content"
                )
            ) || op.body_is_binary(doc)))
        .then_some(if op.body_is_binary(doc) { 11 } else { 9 }),
        "end-call" => {
            if matches!(m, "POST" | "PUT" | "PATCH")
                && op.has_path_obj(Obj::Call)
                && matches!(
                    noun.as_deref(),
                    Some(
                        "end"
                            | "hangup"
                            | "hang-up"
                            | "finish"
                            | "close"
                            | "stop"
                            | "complete"
                            | "leave"
                            | "terminate"
                    )
                )
            {
                Some(10)
            } else {
                (m == "DELETE" && op.item_obj() == Some(Obj::Call)).then_some(8)
            }
        }
        "play" => {
            let shaped = op.item_obj() == Some(Obj::Recording)
                || (op.has_path_obj(Obj::Recording)
                    && matches!(
                        noun.as_deref(),
                        Some(
                            "download"
                                | "content"
                                | "media"
                                | "play"
                                | "playback"
                                | "stream"
                                | "file"
                                | "data"
                                | "byte"
                                | "link"
                                | "url"
                        )
                    ));
            (m == "GET" || (m == "POST" && op.has_word(&["download", "link", "url"])))
                .then_some(())
                .filter(|()| shaped)
                .map(|()| {
                    // A signed link's own route (`?sig=&expires=`) is not where playback starts.
                    let unfillable = op
                        .params
                        .iter()
                        .filter(|p| p.location == "query" && p.required && p.obj.is_none())
                        .count() as i32;
                    10 + if op.response_is_binary(doc) { 2 } else { 0 } - 5 * unfillable
                })
        }
        "erase" => (m == "DELETE" && op.item_obj() == Some(Obj::Recording)).then_some(10),
        "erase-account" => {
            let own_item = op.ends_with_param() && op.item_obj() == Some(Obj::Me);
            let own_literal = !op.has_object_params()
                && matches!(
                    op.last_lit().as_deref(),
                    Some("me" | "account" | "profile" | "self")
                );
            (m == "DELETE" && (own_item || own_literal)).then_some(10)
        }
        _ => None,
    }
}

/// Everything [`draft_view`] decided about one list operation.
struct ViewDraft {
    name: String,
    text: String,
}

/// Query parameter roles for views.
fn view_param_role(name: &str) -> Option<&'static str> {
    match norm(name).as_str() {
        "page" | "pagenumber" | "pageno" | "pageindex" | "pagenum" => Some("page"),
        "perpage" | "pagesize" | "size" | "count" | "limit" | "maxresults" | "pagelength"
        | "pagelimit" | "first" | "top" => Some("size"),
        "offset" | "skip" | "startindex" | "getpagesoffset" => Some("offset"),
        "cursor" | "after" | "pagetoken" | "nextpagetoken" | "continuation"
        | "continuationtoken" | "startingafter" | "nextcursor" | "marker" | "since" => {
            Some("cursor")
        }
        _ => None,
    }
}

/// Whether a list's items look like recordings, and where an item's id is.
fn recording_item(doc: &Value, op: &Operation<'_>, item: &Value) -> Option<String> {
    // A FHIR-style entry wraps its resource.
    let (inner, prefix) = match properties(doc, item, 0)
        .into_iter()
        .find(|(n, s)| *n == "resource" && schema_type(doc, s) == Some("object"))
    {
        Some((_, resource)) => (resource, "/resource"),
        None => (item, ""),
    };
    let mentions_media = inner
        .pointer("/properties/resourceType/enum")
        .and_then(Value::as_array)
        .is_some_and(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .any(|t| matches!(t, "Media" | "DocumentReference" | "Binary"))
        });
    let specific = find_field(doc, inner, RECORDING_FIELDS);
    let recordingish = specific.is_some()
        || mentions_media
        || op
            .last_noun()
            .as_deref()
            .and_then(Obj::of_noun)
            .is_some_and(|o| o == Obj::Recording)
        || op.has_word(&[
            "recording",
            "replay",
            "history",
            "timeline",
            "media",
            "library",
        ]);
    if !recordingish {
        return None;
    }
    // An item's own id, else the id of a recording-like object inside it
    // (`{ "clip": { "ref": "..." } }`).
    let id = specific
        .or_else(|| find_field_shallow(doc, inner, ITEM_ID_FIELDS))
        .or_else(|| {
            properties(doc, inner, 0).into_iter().find_map(|(n, sub)| {
                (Obj::of_name(n) == Some(Obj::Recording) && schema_type(doc, sub) == Some("object"))
                    .then(|| find_field_shallow(doc, sub, ITEM_ID_FIELDS))
                    .flatten()
                    .map(|inner| format!("/{}{inner}", escape_pointer(n)))
            })
        })?;
    Some(format!("{prefix}{id}"))
}

/// Where the items array of a list response is: a pointer and the item schema.
fn items_array<'a>(doc: &'a Value, schema: &'a Value) -> Option<(String, &'a Value)> {
    if let Some(item) = array_items(doc, schema) {
        return Some((String::new(), item));
    }
    const PREFERRED: &[&str] = &[
        "items",
        "data",
        "results",
        "entries",
        "entry",
        "records",
        "recordings",
        "media",
        "content",
        "list",
        "values",
        "hits",
        "nodes",
        "edges",
    ];
    let props = properties(doc, schema, 0);
    let arrays: Vec<(&str, &Value)> = props
        .iter()
        .filter_map(|(n, s)| {
            array_items(doc, s)
                .filter(|i| schema_type(doc, i) == Some("object"))
                .map(|i| (*n, i))
        })
        .collect();
    let chosen = PREFERRED
        .iter()
        .find_map(|p| arrays.iter().find(|(n, _)| norm(n) == *p))
        .or_else(|| arrays.iter().find(|(n, _)| *n != "link" && *n != "links"))
        .copied();
    if let Some((name, item)) = chosen {
        return Some((format!("/{}", escape_pointer(name)), item));
    }
    // One level down (`{ "data": { "items": [...] } }`).
    for (name, sub) in props {
        if schema_type(doc, sub) == Some("object")
            && let Some((inner, item)) = items_array_shallow(doc, sub)
        {
            return Some((format!("/{}{inner}", escape_pointer(name)), item));
        }
    }
    None
}

fn items_array_shallow<'a>(doc: &'a Value, schema: &'a Value) -> Option<(String, &'a Value)> {
    properties(doc, schema, 0).into_iter().find_map(|(n, s)| {
        array_items(doc, s)
            .filter(|i| schema_type(doc, i) == Some("object"))
            .map(|i| (format!("/{}", escape_pointer(n)), i))
    })
}

/// A FHIR-style `link: [{relation, url}]` array in a list response.
fn has_bundle_links(doc: &Value, schema: &Value) -> bool {
    properties(doc, schema, 0).iter().any(|(n, s)| {
        *n == "link"
            && array_items(doc, s).is_some_and(|i| {
                let names: Vec<&str> = properties(doc, i, 0).iter().map(|(n, _)| *n).collect();
                names.contains(&"relation") && names.contains(&"url")
            })
    })
}

fn view_name(op: &Operation<'_>, taken: &BTreeSet<String>) -> String {
    const VERBS: &[&str] = &[
        "list", "get", "search", "find", "fetch", "read", "query", "all", "my", "me", "show",
        "retrieve", "v1", "v2", "v3", "api",
    ];
    let from_id: Vec<String> = words(&op.operation_id)
        .into_iter()
        .filter(|w| !VERBS.contains(&w.as_str()))
        .collect();
    let base_words = if from_id.is_empty() {
        op.segments
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Lit(l) => Some(
                    words(l)
                        .into_iter()
                        .filter(|w| !VERBS.contains(&w.as_str()))
                        .collect::<Vec<_>>(),
                ),
                Segment::Param { .. } => None,
            })
            .unwrap_or_default()
    } else {
        from_id
    };
    let mut name: String = base_words
        .join("-")
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(VIEW_NAME_LEN_MAX - 3)
        .collect();
    while name.starts_with(|c: char| !c.is_ascii_lowercase()) {
        name.remove(0);
    }
    let name = name.trim_end_matches('-').to_string();
    let name = if name.is_empty() {
        "view".to_string()
    } else {
        name
    };
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}

impl<'d> Draft<'d> {
    /// A view from a list operation, if it lists recordings.
    fn view(&mut self, op: &Operation<'_>, taken: &BTreeSet<String>) -> Option<ViewDraft> {
        let doc = self.doc;
        let searches = op.method == "POST" && op.has_word(&["search", "query", "find", "filter"]);
        if !(op.method == "GET" || searches)
            || op.ends_with_param() && op.item_obj() != Some(Obj::Me)
        {
            return None;
        }
        if op.has_path_obj(Obj::Recording) {
            return None;
        }
        let schema = op.response_schema()?;
        let (items, item) = items_array(doc, schema)?;
        let id = recording_item(doc, op, item)?;
        let scope = [Obj::Appointment, Obj::Call]
            .into_iter()
            .find(|o| op.has_path_obj(*o));
        let extra: Vec<Obj> = scope.into_iter().collect();
        let (path, path_notes) = self.path_template(op, "view", &extra);
        let name = view_name(op, taken);
        let mut notes = vec![op.label()];
        notes.extend(path_notes);

        // Query parameters: paging roles, the patient's own id, required others.
        let mut roles: Vec<(String, &'static str)> = Vec::new();
        let mut query: Vec<(String, String)> = Vec::new();
        let mut me_bound = false;
        for p in op.params.iter().filter(|p| p.location == "query") {
            if let Some(role) = view_param_role(&p.name)
                && !roles.iter().any(|(_, r)| *r == role)
            {
                roles.push((p.name.clone(), role));
                continue;
            }
            match p.obj {
                Some(Obj::Me) if !me_bound => {
                    // One parameter names the patient: a required one if
                    // any, else the first; the others are left out.
                    let required_elsewhere = op.params.iter().any(|q| {
                        q.location == "query"
                            && q.required
                            && q.obj == Some(Obj::Me)
                            && q.name != p.name
                    });
                    if !p.required && required_elsewhere {
                        continue;
                    }
                    self.uses_me = true;
                    me_bound = true;
                    let value = if p.reference { "Patient/{me}" } else { "{me}" };
                    query.push((p.name.clone(), value.into()));
                }
                Some(Obj::Me) => {}
                Some(o) if scope == Some(o) => query.push((p.name.clone(), o.placeholder().into())),
                _ if p.required => {
                    query.push((p.name.clone(), "TODO".into()));
                    notes.push(format!(
                        "TODO: the required query parameter `{}`: what should it be?",
                        clean(&p.name)
                    ));
                }
                _ => {}
            }
        }
        let role = |r: &str| roles.iter().find(|(_, x)| *x == r).map(|(n, _)| n.clone());
        let next_cursor_fields = [
            "nextcursor",
            "cursor",
            "next",
            "nextpagetoken",
            "nexttoken",
            "nextpage",
            "continuation",
            "continuationtoken",
            "after",
            "endcursor",
        ];
        let next_url_fields = ["nexturl", "nextlink", "nextpageurl", "nexthref", "next"];
        let link_header = op
            .response_headers()
            .iter()
            .any(|h| h.eq_ignore_ascii_case("link"));
        let mut pagination = String::new();
        let mut paging_query: Vec<(String, String)> = Vec::new();
        // A Bundle's `next` link carries whatever cursor the service uses.
        if has_bundle_links(doc, schema) {
            if let Some(size) = role("size") {
                paging_query.push((size, "{per_page}".into()));
            }
            pagination = inline([
                ("kind", q("next-url")),
                (
                    "next",
                    inline([("jsonpath", q("$.link[?(@.relation == 'next')].url"))]),
                ),
            ]);
        } else if let Some(cursor) = role("cursor") {
            paging_query.push((cursor, "{cursor}".into()));
            if let Some(size) = role("size") {
                paging_query.push((size, "{per_page}".into()));
            }
            let next = find_field(doc, schema, &next_cursor_fields).unwrap_or_else(|| {
                notes.push("TODO: where is the next page's cursor in the response?".into());
                "/TODO-next-cursor".into()
            });
            pagination = inline([("kind", q("cursor")), ("next", json_capture(&next))]);
        } else if let Some(page) = role("page") {
            paging_query.push((page, "{page}".into()));
            match role("size") {
                Some(size) => paging_query.push((size, "{per_page}".into())),
                None => notes.push(
                    "TODO: no page-size parameter: the service's page size must match the model's per-page."
                        .into(),
                ),
            }
            pagination = inline([("kind", q("page"))]);
        } else if let Some(offset) = role("offset") {
            paging_query.push((offset, "{offset}".into()));
            if let Some(size) = role("size") {
                paging_query.push((size, "{limit}".into()));
            }
            pagination = inline([("kind", q("offset"))]);
        } else if let Some(next) = find_field(doc, schema, &next_url_fields) {
            if let Some(size) = role("size") {
                paging_query.push((size, "{per_page}".into()));
            }
            pagination = inline([("kind", q("next-url")), ("next", json_capture(&next))]);
        } else if link_header {
            if let Some(size) = role("size") {
                paging_query.push((size, "{per_page}".into()));
            }
            pagination = inline([("kind", q("link-header"))]);
        } else {
            if role("size").is_some() {
                notes.push(
                    "TODO: only a size parameter: pages after the first cannot be reached; is one page everything?"
                        .into(),
                );
            }
            pagination = if pagination.is_empty() {
                inline([("kind", q("none"))])
            } else {
                pagination
            };
        }
        let mut all_query = paging_query;
        all_query.extend(query);

        let order = if [
            "newest first",
            "most recent first",
            "latest first",
            "descending",
            "reverse chronological",
            "newest-first",
        ]
        .iter()
        .any(|t| op.text.contains(t))
        {
            "newest-first"
        } else if ["oldest first", "ascending", "chronological", "oldest-first"]
            .iter()
            .any(|t| op.text.contains(t))
        {
            "oldest-first"
        } else {
            notes.push(
                "TODO: the order is not documented; `any` judges completeness only where one page holds everything."
                    .into(),
            );
            "any"
        };

        let mut text = String::new();
        let _ = writeln!(text, "[views.{name}]");
        for note in &notes {
            let _ = writeln!(text, "# {note}");
        }
        if op.method != "GET" {
            let _ = writeln!(text, "method = {}", q(op.method));
        }
        let _ = writeln!(text, "path = {}", q(&path));
        if !all_query.is_empty() {
            let _ = writeln!(
                text,
                "query = {}",
                inline(all_query.iter().map(|(k, v)| (k.as_str(), q(v))))
            );
        }
        if op.method == "POST" {
            let _ = writeln!(
                text,
                "# TODO: a search by POST: put its body here (`json = {{ ... }}`); paging fields may go in it."
            );
        }
        if let Some(scope) = scope {
            let word = if scope == Obj::Appointment {
                "appointment"
            } else {
                "call"
            };
            let _ = writeln!(text, "scope = {}", q(word));
        }
        let _ = writeln!(text, "items = {}", q(&items));
        let _ = writeln!(text, "id = {}", q(&id));
        let _ = writeln!(text, "order = {}", q(order));
        let _ = writeln!(text, "pagination = {pagination}");
        text.push('\n');
        Some(ViewDraft { name, text })
    }
}

/// Draft a binding (TOML text) from an OpenAPI 3 document.
///
/// Every operation is matched to at most one of the model's actions or
/// views; whatever could not be decided carries a `# TODO`. The draft always
/// parses as a [`super::file::BindingFile`] (a document with no usable
/// operation gives a skeleton full of TODOs). Call [`validate_openapi`] first
/// to refuse what is not an OpenAPI 3 document.
pub fn draft_from_openapi(doc: &Value) -> String {
    let nouns = Nouns::of_document(doc);
    let (ops, left_out) = operations(doc, &nouns);
    let mut draft = Draft {
        doc,
        nouns,
        todos_global: Vec::new(),
        uses_me: false,
    };
    let (_, base_problem) = base_path(doc);
    if let Some(problem) = base_problem {
        draft.todos_global.push(format!("TODO: {problem}."));
    }
    if left_out > 0 {
        draft.todos_global.push(format!(
            "TODO: the document has more than {OPERATIONS_MAX} operations; {left_out} were not read."
        ));
    }

    // The best operation for each action; an operation serves one action at most.
    let mut used = vec![false; ops.len()];
    let mut chosen: Vec<(&str, Option<usize>)> = Vec::new();
    for action in [
        "register",
        "book",
        "cancel",
        "start-call",
        "upgrade",
        "send-media",
        "end-call",
        "play",
        "erase",
        "erase-account",
        "login",
    ] {
        let best = ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .filter_map(|(i, op)| score(op, doc, &draft.nouns, action).map(|s| (s, i)))
            // Highest score; the first in document order among equals.
            .fold(None::<(i32, usize)>, |best, (s, i)| match best {
                Some((b, _)) if b >= s => best,
                _ => Some((s, i)),
            })
            .map(|(_, i)| i);
        if let Some(i) = best {
            used[i] = true;
        }
        chosen.push((action, best));
    }
    // An action whose prerequisite no operation looks like could never run,
    // and a binding that binds it does not compile: leave it out, and say so.
    let mut unreachable: Vec<(&str, &str)> = Vec::new();
    for (action, needed) in crate::binding::ACTION_NEEDS {
        let needed_found = chosen
            .iter()
            .any(|(a, i)| *a == needed.name() && i.is_some());
        if let Some(entry) = chosen.iter_mut().find(|(a, _)| *a == action.name())
            && !needed_found
            && let Some(i) = entry.1.take()
        {
            unreachable.push((action.name(), needed.name()));
            used[i] = false;
        }
    }
    let pick = |name: &str| {
        chosen
            .iter()
            .find(|(a, _)| *a == name)
            .and_then(|(_, i)| *i)
    };

    let session = session_guess(doc);
    let mut actions_text = String::new();
    let mut missing: Vec<&str> = Vec::new();

    for action in ACTION_NAMES {
        let Some(index) = pick(action) else {
            if action == "register" {
                // The file needs a register action to parse; a skeleton says what to fill in.
                let mut req = Req::new("POST");
                req.notes.push(
                    "TODO: no operation looks like registration (sign-up); bind it by hand.".into(),
                );
                req.path = Some("/TODO".into());
                req.session = Some(false);
                req.body = BodyOut::Json(Tv::Table(vec![(
                    "name".into(),
                    Tv::Str("{display_name}".into()),
                )]));
                req.captures
                    .push(("token".into(), json_capture("/TODO-token")));
                req.write(&mut actions_text, action);
            } else {
                missing.push(action);
            }
            continue;
        };
        let op = &ops[index];
        let mut requests: Vec<Req> = Vec::new();
        let mut table_lines: Vec<String> = Vec::new();
        match action {
            "register" => {
                let mut req = draft.request(op, action);
                req.session = Some(false);
                let token = token_capture(doc, op, &session);
                match token {
                    Some(capture) => {
                        req.captures.push(("token".into(), capture));
                        requests.push(req);
                    }
                    None => match pick("login") {
                        Some(login_index) => {
                            let login = &ops[login_index];
                            requests.push(req);
                            let mut second = draft.request(login, action);
                            second.session = Some(false);
                            second
                                .notes
                                .push("Registration answers no credential: log in next.".into());
                            match token_capture(doc, login, &session) {
                                Some(capture) => second.captures.push(("token".into(), capture)),
                                None => {
                                    second
                                        .captures
                                        .push(("token".into(), json_capture("/TODO-token")));
                                    second.notes.push(
                                        "TODO: where is the credential in the login response?"
                                            .into(),
                                    );
                                }
                            }
                            requests.push(second);
                        }
                        None => {
                            req.captures
                                .push(("token".into(), json_capture("/TODO-token")));
                            req.notes.push(format!(
                                "TODO: where is the credential? The response has: {}.",
                                op.response_schema()
                                    .map(|s| field_names(doc, s))
                                    .unwrap_or_else(|| "no JSON response documented".into())
                            ));
                            requests.push(req);
                        }
                    },
                }
            }
            "book" => {
                let mut req = draft.request(op, action);
                draft.capture_output(op, &mut req, "appointment", APPOINTMENT_FIELDS, true);
                if op.documents(409) {
                    req.notes.push(
                        "TODO: 409 is documented: if it means \"slot taken\", add `retry = { status = [409], attempts = 5 }` to [actions.book]."
                            .into(),
                    );
                }
                requests.push(req);
            }
            "start-call" => {
                let mut req = draft.request(op, action);
                // A call may be named like an appointment in this document
                // (a visit's `consultation`): those names come before `id`.
                let renamed: Vec<String> = Nouns::APPOINTMENT_ORDER
                    .iter()
                    .filter(|n| draft.nouns.of_noun(n) == Some(Obj::Call))
                    .map(|n| format!("{n}id"))
                    .collect();
                let mut fields: Vec<&str> = CALL_FIELDS[..CALL_FIELDS.len() - 1].to_vec();
                fields.extend(renamed.iter().map(String::as_str));
                fields.push("id");
                draft.capture_output(op, &mut req, "call", &fields, true);
                if !draft.capture_output(op, &mut req, "recording", RECORDING_FIELDS, false) {
                    req.notes.push(
                        "TODO: the response names no recording id; see \"Recording ids not returned at creation\" in docs/bindings.md."
                            .into(),
                    );
                }
                requests.push(req);
            }
            "upgrade" => {
                let mut req = draft.request(op, action);
                if !draft.capture_output(op, &mut req, "recording", RECORDING_FIELDS, false) {
                    req.notes.push(
                        "TODO: the response names no recording id for the video; capture it if the service returns one."
                            .into(),
                    );
                }
                requests.push(req);
            }
            "play" => {
                let mut first = draft.request(op, action);
                if op.response_is_binary(doc) {
                    first.media = true;
                    requests.push(first);
                } else if let Some(link) = op
                    .response_schema()
                    .and_then(|s| find_field(doc, s, LINK_FIELDS))
                {
                    first
                        .captures
                        .push(("download".into(), json_capture(&link)));
                    let mut second = Req::new("GET");
                    second.notes.push(
                        "The download link from the first request. TODO: does it need the session (`session = true`)?"
                            .into(),
                    );
                    second.url = Some("{download}".into());
                    second.session = Some(false);
                    second.media = true;
                    requests.push(first);
                    requests.push(second);
                    // A public route serving bytes by signed query parameters
                    // (`?sig=&expires=`) means links are capabilities by design.
                    let signed = ops.iter().any(|o| {
                        o.method == "GET"
                            && o.public
                            && o.response_is_binary(doc)
                            && o.params.iter().any(|p| p.location == "query" && p.required)
                    });
                    if signed {
                        table_lines.push(
                            "# TODO: the service serves bytes on a public route with signed query parameters, so a download link is taken to be a bearer capability by design; set false if it is not."
                                .into(),
                        );
                        table_lines.push("link_is_capability = true".into());
                    } else {
                        table_lines.push(
                            "# TODO: is a download link a bearer capability by design (anyone holding it may fetch it)?"
                                .into(),
                        );
                        table_lines.push("link_is_capability = false".into());
                    }
                } else {
                    first.media = true;
                    first.notes.push(
                        "TODO: the response is not documented as bytes nor as a link; check what playback returns."
                            .into(),
                    );
                    requests.push(first);
                }
            }
            _ => requests.push(draft.request(op, action)),
        }
        if !table_lines.is_empty() {
            let _ = writeln!(actions_text, "[actions.{action}]");
            for line in &table_lines {
                let _ = writeln!(actions_text, "{line}");
            }
            actions_text.push('\n');
        }
        for req in &requests {
            req.write(&mut actions_text, action);
        }
    }

    // Views: every remaining list of recordings, at most VIEWS_MAX.
    let mut views_text = String::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        if used[i] || taken.len() >= VIEWS_MAX {
            continue;
        }
        if let Some(view) = draft.view(op, &taken) {
            used[i] = true;
            taken.insert(view.name.clone());
            views_text.push_str(&view.text);
        }
    }

    // A health endpoint, checked before any case.
    let health = ops.iter().enumerate().find(|(i, op)| {
        !used[*i]
            && op.method == "GET"
            && op.path_objs().is_empty()
            && op.segments.iter().all(|s| matches!(s, Segment::Lit(_)))
            && (matches!(
                op.last_lit().as_deref(),
                Some(
                    "healthz"
                        | "health"
                        | "readyz"
                        | "ready"
                        | "livez"
                        | "ping"
                        | "alive"
                        | "status"
                        | "metadata"
                )
            ) || op.has_word(&["health", "healthz", "healthcheck"]))
    });
    let health_path = health.map(|(i, op)| {
        used[i] = true;
        op.path.clone()
    });

    // `{me}` is used somewhere: registration must capture it.
    let register_me = if draft.uses_me {
        let op = pick("register").map(|i| &ops[i]);
        match op
            .and_then(|op| op.response_schema())
            .and_then(|s| find_field(doc, s, ME_FIELDS))
        {
            Some(pointer) => Some(format!("capture.me = {}", json_capture(&pointer))),
            None => Some(format!(
                "# TODO: paths use {{me}}: where is the patient's own id?\ncapture.me = {}",
                json_capture("/TODO-me")
            )),
        }
    } else {
        None
    };
    if let Some(line) = register_me {
        // Into the first register request: it follows that request's captures.
        if let Some(at) = actions_text.find("\n\n") {
            actions_text.insert_str(at + 1, &format!("{line}\n"));
        }
    }

    let mut out = String::new();
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("service");
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let slug = slug(title);
    let _ = writeln!(
        out,
        "# Drafted by `chaperone binding init --openapi` from \"{}\" {}.",
        clean(title).replace('"', "'"),
        clean(version)
    );
    let _ = writeln!(
        out,
        "# A draft is a guess: read every line, resolve every TODO, then run"
    );
    let _ = writeln!(out, "#   chaperone binding check THIS-FILE --target URL");
    let _ = writeln!(out, "# Every key is explained in docs/bindings.md.");
    for todo in &draft.todos_global {
        let _ = writeln!(out, "# {todo}");
    }
    out.push('\n');
    let _ = writeln!(out, "name = {}", q(&slug));
    let _ = writeln!(out, "service = {}", q(&slug));
    let _ = writeln!(
        out,
        "description = {}",
        q(&format!(
            "Drafted from the OpenAPI document of {}",
            clean(title)
        ))
    );
    match &health_path {
        Some(path) => {
            let _ = writeln!(out, "health = {}", q(path));
        }
        None => {
            let _ = writeln!(
                out,
                "# TODO: no health endpoint found; `health = \"/healthz\"` checks the service is up before any case."
            );
        }
    }
    out.push('\n');
    let _ = writeln!(out, "[session]");
    for line in &session.lines {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    out.push_str(&views_text);
    if views_text.is_empty() {
        let _ = writeln!(
            out,
            "# TODO: no operation lists recordings (an array of items with a recording id); add [views.NAME] by hand.\n"
        );
    }
    out.push_str(&actions_text);
    for action in &missing {
        match unreachable.iter().find(|(a, _)| a == action) {
            Some((_, needed)) => {
                let _ = writeln!(
                    out,
                    "# TODO: `{action}` needs `{needed}`, which no operation looks like; bind `{needed}` by hand, then `{action}`."
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "# TODO: no operation looks like `{action}`; leave it out if the service has none (the model then never performs it)."
                );
            }
        }
    }
    if !missing.is_empty() {
        out.push('\n');
    }
    let documents_403 = ops
        .iter()
        .any(|op| op.ends_with_param() && op.documents(403));
    let _ = writeln!(out, "[refusal]");
    if documents_403 {
        let _ = writeln!(
            out,
            "# TODO: 403 is documented on item operations: if the service answers 403 (not 404) for another patient's object by design, use \"forbidden\"."
        );
    }
    let _ = writeln!(out, "policy = \"indistinguishable\"");

    let unbound: Vec<String> = ops
        .iter()
        .enumerate()
        .filter(|(i, _)| !used[*i])
        .map(|(_, op)| op.label())
        .collect();
    if !unbound.is_empty() {
        let _ = writeln!(
            out,
            "\n# Operations not bound (bind by hand any that creates, lists, plays or erases recordings):"
        );
        for label in unbound.iter().take(UNBOUND_LISTED_MAX) {
            let _ = writeln!(out, "#   {label}");
        }
        if unbound.len() > UNBOUND_LISTED_MAX {
            let _ = writeln!(
                out,
                "#   ... and {} more",
                unbound.len() - UNBOUND_LISTED_MAX
            );
        }
    }
    out
}

/// Where the credential is in a registration (or login) response.
fn token_capture(doc: &Value, op: &Operation<'_>, session: &SessionGuess) -> Option<String> {
    let headers = op.response_headers();
    if let Some(cookie) = &session.cookie {
        // Only an answer documented to set a cookie is taken to set the session's.
        return headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("set-cookie"))
            .then(|| inline([("cookie", q(cookie))]));
    }
    if let Some(pointer) = op
        .response_schema()
        .and_then(|s| find_field(doc, s, TOKEN_FIELDS))
    {
        return Some(json_capture(&pointer));
    }
    if let Some(header) = &session.header
        && headers.iter().any(|h| h.eq_ignore_ascii_case(header))
    {
        return Some(inline([("header", q(header))]));
    }
    None
}

/// A binding name from a title: lower-case letters, digits and `-`.
fn slug(title: &str) -> String {
    let joined = words(title).join("-");
    let cut: String = joined.chars().take(40).collect();
    let cut = cut.trim_matches('-').to_string();
    if cut.is_empty() {
        "service".into()
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::file::{ActionFile, BindingFile, ViewFile};
    use serde_json::json;

    fn parse(draft: &str) -> BindingFile {
        toml::from_str(draft).unwrap_or_else(|e| panic!("draft does not parse: {e}\n{draft}"))
    }

    fn requests(action: &ActionFile) -> Vec<(String, String)> {
        action
            .requests
            .iter()
            .map(|r| {
                (
                    r.method.clone(),
                    r.path
                        .as_ref()
                        .map(|p| p.get_ref().clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    fn pairs(f: &BindingFile) -> Vec<(&'static str, Option<&ActionFile>)> {
        let a = &f.actions;
        vec![
            ("register", Some(&a.register)),
            ("book", a.book.as_ref()),
            ("cancel", a.cancel.as_ref()),
            ("start-call", a.start_call.as_ref()),
            ("upgrade", a.upgrade.as_ref()),
            ("send-media", a.send_media.as_ref()),
            ("end-call", a.end_call.as_ref()),
            ("play", a.play.as_ref()),
            ("erase", a.erase.as_ref()),
            ("erase-account", a.erase_account.as_ref()),
        ]
    }

    fn query(view: &ViewFile) -> Vec<(String, String)> {
        view.query
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect()
    }

    #[test]
    fn the_clinic_document_drafts_the_clinic_binding() {
        // Goal: the draft for the reference clinic's own document binds every
        // action the clinic has, to the same requests and captures as the
        // hand-written bindings/clinic.toml, and its history view with page
        // pagination. Method: draft, parse both files, compare action by action.
        let draft = draft_from_openapi(&clinic::openapi::document());
        let drafted = parse(&draft);
        let reference: BindingFile = toml::from_str(include_str!("../../bindings/clinic.toml"))
            .expect("bindings/clinic.toml parses");
        for ((name, got), (_, want)) in pairs(&drafted).into_iter().zip(pairs(&reference)) {
            match (got, want) {
                (Some(got), Some(want)) => {
                    assert_eq!(requests(got), requests(want), "{name}\n{draft}");
                    for (g, w) in got.requests.iter().zip(&want.requests) {
                        let captures = |r: &crate::binding::file::RequestFile| {
                            r.capture
                                .iter()
                                .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap()))
                                .collect::<Vec<_>>()
                        };
                        assert_eq!(captures(g), captures(w), "{name} captures\n{draft}");
                        assert_eq!(g.media, w.media, "{name} media\n{draft}");
                        assert_eq!(g.session, w.session, "{name} session\n{draft}");
                        assert_eq!(
                            g.body.as_ref().map(|b| b.get_ref().clone()),
                            w.body.as_ref().map(|b| b.get_ref().clone()),
                            "{name} body\n{draft}"
                        );
                    }
                }
                (None, None) => {}
                (got, want) => panic!(
                    "{name}: drafted {} but the clinic {}\n{draft}",
                    got.is_some(),
                    want.is_some()
                ),
            }
        }
        assert_eq!(drafted.health, reference.health);
        assert_eq!(drafted.session.header.as_deref(), Some("Authorization"));
        assert_eq!(
            drafted.session.value.as_ref().map(|v| v.get_ref().as_str()),
            Some("Bearer {token}")
        );
        let book = drafted.actions.book.as_ref().unwrap();
        let json = book.requests[0].json.as_ref().unwrap().get_ref();
        assert_eq!(json.get("slot").and_then(|v| v.as_str()), Some("{slot}"));
        assert_eq!(json.get("notes").and_then(|v| v.as_str()), Some("{notes}"));

        assert_eq!(drafted.views.len(), 1, "{draft}");
        let history = &drafted.views["history"];
        let want = &reference.views["history"];
        assert_eq!(history.path.get_ref(), want.path.get_ref());
        assert_eq!(query(history), query(want));
        assert_eq!(history.items, want.items);
        assert_eq!(history.id, want.id);
        assert_eq!(history.order, want.order);
        assert_eq!(history.pagination.as_ref().unwrap().kind, "page");
        // Nothing of the clinic is left undecided but the action it lacks.
        for line in draft.lines().filter(|l| l.contains("TODO:")) {
            assert!(line.contains("`erase-account`"), "{line}\n{draft}");
        }
    }

    #[test]
    fn the_clinic_draft_compiles_to_the_clinic_capabilities() {
        // Goal: the draft for the clinic is usable unchanged: it compiles
        // (placeholders, pointers, outputs all checked) to exactly what the
        // hand-written binding gives the model, health check included.
        let draft = draft_from_openapi(&clinic::openapi::document());
        let binding = crate::binding::Binding::parse(&draft, "draft.toml")
            .unwrap_or_else(|e| panic!("{e}\n{draft}"));
        let clinic = crate::binding::Binding::clinic();
        assert_eq!(binding.caps, clinic.caps);
        assert_eq!(binding.health, clinic.health);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_clinic_draft_drives_the_clinic_and_finds_a_planted_leak() {
        // Goal: the unchanged draft drives the embedded clinic: a clean clinic
        // passes, and a planted fault is found through it. Method: the
        // sequential search with a fixed seed and few cases, once each.
        use crate::runner::{CheckConfig, Verdict, check};
        use crate::target::{Target, TargetSpec};
        let draft = draft_from_openapi(&clinic::openapi::document());
        let binding = std::sync::Arc::new(
            crate::binding::Binding::parse(&draft, "draft.toml").expect("compiles"),
        );
        let config = CheckConfig {
            seed: 7,
            cases: 40,
            limits: crate::model::Limits {
                caps: binding.caps,
                ..crate::model::Limits::default()
            },
            ..CheckConfig::default()
        };
        let clean = Target::new(TargetSpec::Embedded, clinic::FaultSet::default())
            .with_binding(binding.clone());
        let report = check(&clean, &config, &mut ()).await;
        clean.shutdown().await;
        assert_eq!(
            report.verdict(),
            Verdict::Pass,
            "clean clinic through the draft"
        );

        let mut faults = clinic::FaultSet::default();
        faults.insert(clinic::Fault::RecordingIdor);
        let faulty = Target::new(TargetSpec::Embedded, faults).with_binding(binding);
        let report = check(&faulty, &config, &mut ()).await;
        faulty.shutdown().await;
        assert_eq!(
            report.verdict(),
            Verdict::Violation,
            "recording-idor through the draft"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_clinic_draft_passes_binding_check_unchanged() {
        // Goal: issue 8's acceptance for `binding init`: the draft for the
        // clinic's own document passes `binding check` unchanged. Method: the
        // check behind `chaperone binding check`, against the embedded clinic.
        use crate::target::{Target, TargetSpec};
        let draft = draft_from_openapi(&clinic::openapi::document());
        let binding = std::sync::Arc::new(
            crate::binding::Binding::parse(&draft, "draft.toml").expect("compiles"),
        );
        let target = Target::new(TargetSpec::Embedded, clinic::FaultSet::default())
            .with_binding(binding.clone());
        let case = target
            .open_case()
            .await
            .expect("the embedded clinic starts");
        let mut driver = case.driver();
        let report = crate::binding::check::check(&binding, &mut driver).await;
        case.close().await;
        target.shutdown().await;
        let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
        assert!(report.passed(), "{}", lines.join("\n"));
        assert!(lines.len() >= 10, "{}", lines.join("\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tinyhealth_draft_passes_binding_check_unchanged() {
        // Goal: generality. tinyhealth is a test service of another shape
        // (cookie sessions after a separate sign-in, the account id in paths,
        // a visit's consultations as calls, a 202 polled through a body
        // status URL, base64 media, cursor pages, signed download links) that
        // this drafter was not written for; its unchanged draft must bind
        // the same actions as its hand-written binding and pass `binding check`.
        use crate::model::Action;
        use crate::target::{Target, TargetSpec};
        let draft = draft_from_openapi(&tinyhealth::openapi::document());
        let binding = std::sync::Arc::new(
            crate::binding::Binding::parse(&draft, "draft.toml")
                .unwrap_or_else(|e| panic!("{e}\n{draft}")),
        );
        let hand = crate::binding::Binding::parse(
            include_str!("../../bindings/tinyhealth.toml"),
            "bindings/tinyhealth.toml",
        )
        .expect("the hand-written binding compiles");
        for action in Action::ALL {
            assert_eq!(
                binding.caps.has(action),
                hand.caps.has(action),
                "{}\n{draft}",
                action.name()
            );
        }
        assert_eq!(binding.caps.views().count(), hand.caps.views().count());

        let running = tinyhealth::start(tinyhealth::FaultSet::default(), tinyhealth::EPHEMERAL)
            .await
            .expect("tinyhealth starts");
        let target = Target::new(TargetSpec::Url(running.url()), clinic::FaultSet::default())
            .with_binding(binding.clone());
        let case = target.open_case().await.expect("the case opens");
        let mut driver = case.driver();
        let report = crate::binding::check::check(&binding, &mut driver).await;
        case.close().await;
        target.shutdown().await;
        running.shutdown().await;
        let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
        assert!(report.passed(), "{}\n{draft}", lines.join("\n"));
    }

    #[test]
    fn a_fhir_document_drafts_a_next_url_view() {
        // Goal: a FHIR-shaped search (Bundle with `entry` and a `link` whose
        // relation is `next`, `_count`, `patient`) becomes a next-url view by
        // JSONPath, with the patient's own id captured at registration.
        let doc = json!({
            "openapi": "3.0.3",
            "info": { "title": "Tiny FHIR", "version": "1" },
            "servers": [{ "url": "http://127.0.0.1:9/fhir" }],
            "components": {
                "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
                "schemas": {
                    "Patient": { "type": "object", "properties": {
                        "resourceType": { "type": "string", "enum": ["Patient"] },
                        "id": { "type": "string" },
                        "token": { "type": "string" } } },
                    "Media": { "type": "object", "properties": {
                        "resourceType": { "type": "string", "enum": ["Media"] },
                        "id": { "type": "string" },
                        "subject": { "type": "object", "properties": { "reference": { "type": "string" } } } } },
                    "Bundle": { "type": "object", "properties": {
                        "resourceType": { "type": "string", "enum": ["Bundle"] },
                        "link": { "type": "array", "items": { "type": "object", "properties": {
                            "relation": { "type": "string" }, "url": { "type": "string" } } } },
                        "entry": { "type": "array", "items": { "type": "object", "properties": {
                            "fullUrl": { "type": "string" },
                            "resource": { "$ref": "#/components/schemas/Media" } } } } } }
                }
            },
            "security": [{ "bearer": [] }],
            "paths": {
                "/Patient": { "post": {
                    "operationId": "createPatient", "security": [],
                    "requestBody": { "required": true, "content": { "application/fhir+json": {
                        "schema": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "created", "content": { "application/fhir+json": {
                        "schema": { "$ref": "#/components/schemas/Patient" } } } } } } },
                "/Appointment": { "post": {
                    "requestBody": { "content": { "application/fhir+json": { "schema": { "type": "object",
                        "properties": { "start": { "type": "string", "format": "date-time" } } } } } },
                    "responses": { "201": { "description": "booked", "content": { "application/fhir+json": {
                        "schema": { "type": "object", "properties": { "id": { "type": "string" } } } } } } } } },
                "/Encounter": { "post": {
                    "requestBody": { "content": { "application/fhir+json": { "schema": { "type": "object",
                        "properties": { "appointment": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "started", "content": { "application/fhir+json": {
                        "schema": { "type": "object", "properties": { "id": { "type": "string" } } } } } } } } },
                "/Encounter/{id}/$upgrade": { "post": {
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "the new video Media", "content": { "application/fhir+json": {
                        "schema": { "$ref": "#/components/schemas/Media" } } } } } } },
                "/Media": { "get": {
                    "operationId": "searchMedia",
                    "summary": "Media of a patient, newest first",
                    "parameters": [
                        { "name": "subject", "in": "query", "schema": { "type": "string" } },
                        { "name": "patient", "in": "query", "required": true, "schema": { "type": "string" },
                          "description": "A reference: Patient/123" },
                        { "name": "_count", "in": "query", "schema": { "type": "integer" } },
                        { "name": "_cursor", "in": "query", "schema": { "type": "string" } }
                    ],
                    "responses": { "200": { "description": "a Bundle", "content": { "application/fhir+json": {
                        "schema": { "$ref": "#/components/schemas/Bundle" } } } } } } }
            }
        });
        validate_openapi(&doc).unwrap();
        let draft = draft_from_openapi(&doc);
        let file = parse(&draft);
        let register = &file.actions.register.requests[0];
        assert_eq!(register.path.as_ref().unwrap().get_ref(), "/fhir/Patient");
        // Patients book Appointments; an Encounter naming its appointment is the call.
        let book = &file.actions.book.as_ref().expect("book").requests[0];
        assert_eq!(book.path.as_ref().unwrap().get_ref(), "/fhir/Appointment");
        let start = &file
            .actions
            .start_call
            .as_ref()
            .expect("start-call")
            .requests[0];
        assert_eq!(start.path.as_ref().unwrap().get_ref(), "/fhir/Encounter");
        let body = start.json.as_ref().unwrap().get_ref();
        assert_eq!(
            body.get("appointment").and_then(|v| v.as_str()),
            Some("{appointment}")
        );
        // The upgrade answers the new Media itself: its id is the recording.
        let upgrade = &file.actions.upgrade.as_ref().expect("upgrade").requests[0];
        assert_eq!(
            upgrade.path.as_ref().unwrap().get_ref(),
            "/fhir/Encounter/{call}/$upgrade"
        );
        assert_eq!(upgrade.capture["recording"].json.as_deref(), Some("/id"));
        assert_eq!(register.capture["token"].json.as_deref(), Some("/token"));
        assert_eq!(
            register.capture["me"].json.as_deref(),
            Some("/id"),
            "{draft}"
        );
        assert_eq!(file.views.len(), 1, "{draft}");
        let (name, view) = file.views.iter().next().unwrap();
        assert_eq!(name, "media");
        assert_eq!(view.items, "/entry");
        assert_eq!(view.id, "/resource/id");
        assert_eq!(view.order.as_deref(), Some("newest-first"));
        assert_eq!(
            query(view),
            vec![
                ("_count".to_string(), "{per_page}".to_string()),
                ("patient".to_string(), "Patient/{me}".to_string())
            ]
        );
        let pagination = view.pagination.as_ref().unwrap();
        assert_eq!(pagination.kind, "next-url");
        assert_eq!(
            pagination.next.as_ref().unwrap().jsonpath.as_deref(),
            Some("$.link[?(@.relation == 'next')].url")
        );
    }

    #[test]
    fn the_clinic_fhir_document_drafts_a_binding_that_compiles() {
        // Goal: the draft for the clinic's own `/fhir/openapi.json` compiles
        // as it is written: an action whose prerequisite no operation looks
        // like (`erase` without `end-call`) is left out with a TODO naming
        // both, not written into a file the loader refuses. Its search is a
        // next-url view.
        let draft = draft_from_openapi(&clinic::fhir::openapi::document());
        let binding = crate::binding::Binding::parse(&draft, "draft.toml")
            .unwrap_or_else(|e| panic!("{e}\n{draft}"));
        for (action, needed) in crate::binding::ACTION_NEEDS {
            assert!(
                !binding.caps.has(action) || binding.caps.has(needed),
                "{action:?} without {needed:?}\n{draft}"
            );
        }
        let file = parse(&draft);
        assert!(!file.views.is_empty(), "{draft}");
        for (name, view) in &file.views {
            let pagination = view.pagination.as_ref().expect("paged");
            assert_eq!(pagination.kind, "next-url", "{name}\n{draft}");
        }
        if !binding.caps.has(crate::model::Action::EndCall) {
            assert!(
                draft.contains("# TODO: `erase` needs `end-call`"),
                "{draft}"
            );
        }
    }

    #[test]
    fn a_cursor_document_drafts_a_cursor_view_and_indirect_playback() {
        // Goal: an opaque cursor from the body becomes cursor pagination with
        // its `next` pointer; a cookie session, a download link and no cancel
        // are drafted as such. Method: a small hand-written document.
        let doc = json!({
            "openapi": "3.1.0",
            "info": { "title": "Cursor Care", "version": "2" },
            "components": { "securitySchemes": { "sid": { "type": "apiKey", "in": "cookie", "name": "sid" } } },
            "security": [{ "sid": [] }],
            "paths": {
                "/signup": { "post": {
                    "security": [],
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object", "required": ["email", "password", "fullName"],
                        "properties": { "email": { "type": "string" }, "password": { "type": "string" },
                                        "fullName": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "ok",
                        "headers": { "Set-Cookie": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "userId": { "type": "string" } } } } } } } } },
                "/visits": { "post": {
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object", "required": ["startsAt"],
                        "properties": { "startsAt": { "type": "string", "format": "date-time" },
                                        "reason": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "visit": { "type": "object", "properties": {
                            "visitId": { "type": "string" } } } } } } } } } } },
                "/visits/{visitId}/consultations": { "post": {
                    "responses": { "201": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "consultationId": { "type": "string" },
                                                          "recordingId": { "type": "string" } } } } } } } } },
                "/consultations/{consultationId}/chunks": { "put": {
                    "requestBody": { "content": { "audio/webm": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": { "204": { "description": "stored" } } } },
                "/consultations/{consultationId}/hangup": { "post": { "responses": { "200": { "description": "ended" } } } },
                "/consultations/{consultationId}/video": { "post": { "responses": { "202": {
                    "description": "switching", "headers": { "Location": { "schema": { "type": "string" } } },
                    "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "operation": { "type": "object", "properties": {
                          "status": { "type": "string", "enum": ["running", "done", "failed"] },
                          "result": { "type": "object", "properties": {
                            "clip": { "type": "object", "properties": { "ref": { "type": "string" } } } } } } } } } } } } } } },
                "/timeline": { "get": {
                    "operationId": "getTimeline",
                    "summary": "Your recordings, oldest first",
                    "parameters": [
                        { "name": "limit", "in": "query", "schema": { "type": "integer" } },
                        { "name": "after", "in": "query", "schema": { "type": "string" } }
                    ],
                    "responses": { "200": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "properties": {
                            "entries": { "type": "array", "items": { "type": "object", "properties": {
                                "recordingId": { "type": "string" }, "title": { "type": "string" } } } },
                            "nextCursor": { "type": ["string", "null"] } } } } } } } } },
                "/recordings/{id}/download": { "post": {
                    "responses": { "200": { "description": "a link", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "url": { "type": "string" },
                                                          "expiresIn": { "type": "integer" } } } } } } } } },
                "/recordings/{id}": { "delete": { "responses": { "204": { "description": "erased" } } } }
            }
        });
        let draft = draft_from_openapi(&doc);
        let file = parse(&draft);
        assert_eq!(file.session.cookie.as_deref(), Some("sid"));
        let register = &file.actions.register.requests[0];
        assert_eq!(register.capture["token"].cookie.as_deref(), Some("sid"));
        let book = &file.actions.book.as_ref().expect("book").requests[0];
        assert_eq!(
            book.capture["appointment"].json.as_deref(),
            Some("/visit/visitId")
        );
        let start = &file
            .actions
            .start_call
            .as_ref()
            .expect("start-call")
            .requests[0];
        assert_eq!(
            start.path.as_ref().unwrap().get_ref(),
            "/visits/{appointment}/consultations"
        );
        assert_eq!(
            start.capture["call"].json.as_deref(),
            Some("/consultationId")
        );
        assert_eq!(
            start.capture["recording"].json.as_deref(),
            Some("/recordingId")
        );
        let media = &file
            .actions
            .send_media
            .as_ref()
            .expect("send-media")
            .requests[0];
        assert_eq!(media.body.as_ref().unwrap().get_ref(), "{media}");
        assert_eq!(media.content_type.as_deref(), Some("audio/webm"));
        let end = &file.actions.end_call.as_ref().expect("end-call").requests[0];
        assert_eq!(
            end.path.as_ref().unwrap().get_ref(),
            "/consultations/{call}/hangup"
        );
        // A 202 with a Location header is polled; the new video recording
        // is found inside a recording-like object, not taken from Location.
        let upgrade = &file.actions.upgrade.as_ref().expect("upgrade").requests[0];
        assert_eq!(
            upgrade.capture["recording"].json.as_deref(),
            Some("/operation/result/clip/ref")
        );
        let poll = upgrade.poll.as_ref().expect("poll");
        let until = poll.until.as_ref().expect("until from the status enum");
        assert_eq!(until.json.as_deref(), Some("/operation/status"));
        assert_eq!(until.equals, "done");
        assert_eq!(upgrade.success.as_deref(), Some(&[200, 202][..]));
        assert_eq!(
            poll.url.as_ref().and_then(|u| u.header.as_deref()),
            Some("Location")
        );
        let play = file.actions.play.as_ref().expect("play");
        assert_eq!(play.requests.len(), 2, "{draft}");
        assert_eq!(
            play.requests[0].capture["download"].json.as_deref(),
            Some("/url")
        );
        assert_eq!(
            play.requests[1].url.as_ref().unwrap().get_ref(),
            "{download}"
        );
        assert!(play.requests[1].media);
        assert!(file.actions.cancel.is_none());
        assert!(file.actions.erase.is_some());

        let view = &file.views["timeline"];
        assert_eq!(view.items, "/entries");
        assert_eq!(view.id, "/recordingId");
        assert_eq!(view.order.as_deref(), Some("oldest-first"));
        let pagination = view.pagination.as_ref().unwrap();
        assert_eq!(pagination.kind, "cursor");
        assert_eq!(
            pagination.next.as_ref().unwrap().json.as_deref(),
            Some("/nextCursor")
        );
        assert_eq!(
            query(view),
            vec![
                ("after".to_string(), "{cursor}".to_string()),
                ("limit".to_string(), "{per_page}".to_string())
            ]
        );
    }

    #[test]
    fn hostile_or_empty_documents_still_draft_a_file_that_parses() {
        // Goal: a reference cycle, odd names, comment-breaking text and a
        // document with nothing usable never panic or hang, and the draft
        // still parses (with TODOs). Method: a few small documents.
        let cyclic = json!({
            "openapi": "3.0.0",
            "info": { "title": "evil\n[session]\nheader = \"x\"", "version": "\u{0}" },
            "components": { "schemas": {
                "A": { "$ref": "#/components/schemas/B" },
                "B": { "$ref": "#/components/schemas/A" } } },
            "paths": {
                "/patients": { "post": { "operationId": "x\ny = 1", "responses": { "201": {
                    "description": "", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/A" } } } } } } },
                "/weird/{a\"b}": { "get": { "responses": { "200": { "description": "" } } } }
            }
        });
        // An allOf that names itself 64 times, nested: unbounded, this walk
        // would visit 64^5 schemas for every field looked up.
        let bomb_members: Vec<Value> = (0..64)
            .map(|_| json!({ "$ref": "#/components/schemas/Bomb" }))
            .collect();
        let bomb = json!({
            "openapi": "3.0.0",
            "components": { "schemas": { "Bomb": { "allOf": bomb_members,
                "properties": { "x": { "$ref": "#/components/schemas/Bomb" } } } } },
            "paths": { "/patients": { "post": {
                "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Bomb" } } } },
                "responses": { "201": { "description": "", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Bomb" } } } } } } },
                "/recordings": { "get": { "responses": { "200": { "description": "", "content": {
                    "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Bomb" } } } } } } } } }
        });
        for doc in [
            cyclic,
            bomb,
            json!({}),
            json!(42),
            json!({ "openapi": "3.0.0", "paths": {} }),
        ] {
            let draft = draft_from_openapi(&doc);
            let file = parse(&draft);
            assert!(draft.contains("TODO"), "{draft}");
            assert!(file.views.is_empty());
        }
        assert!(validate_openapi(&json!({ "swagger": "2.0", "paths": {} })).is_err());
        assert!(validate_openapi(&json!({ "openapi": "3.0.0", "paths": {} })).is_err());
        assert!(parse_openapi(b"openapi: 3.0.0").is_err());
    }

    #[tokio::test]
    async fn fetch_refuses_what_the_cli_refuses() {
        // Goal: no TLS, no credentials in the URL, nothing but http://; and
        // the errors do not echo the URL. Method: each refused form once
        // (none of them sends a request).
        for url in [
            "https://127.0.0.1/openapi.json",
            "http://user:secret@127.0.0.1/openapi.json",
            "ftp://127.0.0.1/x",
            "http:///x",
        ] {
            let err = fetch_openapi(url).await.unwrap_err();
            assert!(
                !err.contains("secret") && !err.contains("127.0.0.1"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn fetch_reads_the_clinic_document_and_refuses_redirects_and_huge_bodies() {
        // Goal: the document is read from a running clinic; a redirect is
        // not followed; a body over the cap is refused without being kept.
        // Method: the embedded clinic, and a tiny axum server on loopback.
        let clinic = clinic::start(clinic::Config::default()).await.unwrap();
        let doc = fetch_openapi(&format!("{}/openapi.json", clinic.api_url()))
            .await
            .unwrap();
        assert_eq!(doc, clinic::openapi::document());

        use axum::{Router, response::Redirect, routing::get};
        let huge = "x".repeat(OPENAPI_BYTES_MAX + 1);
        let app = Router::new()
            .route(
                "/moved",
                get(|| async { Redirect::temporary("/openapi.json") }),
            )
            .route("/huge", get(move || async move { huge }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let moved = fetch_openapi(&format!("http://{addr}/moved"))
            .await
            .unwrap_err();
        assert!(moved.contains("redirects are not followed"), "{moved}");
        let huge = fetch_openapi(&format!("http://{addr}/huge"))
            .await
            .unwrap_err();
        assert!(huge.contains("larger than 8 MiB"), "{huge}");
    }
}
