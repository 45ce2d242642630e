//! Bindings: a service's HTTP API as data.
//!
//! A binding file (TOML, [`file::BindingFile`]) says which of the model's
//! actions a service has and how each maps onto its HTTP API: requests,
//! captures, sessions, views, pagination, download links. [`Binding::load`]
//! reads and checks one and compiles it into what the generic driver
//! ([`crate::driver::BindingDriver`]) interprets; [`Binding::caps`] is all the
//! model learns of it.
//!
//! Every error names the file, line and column, the key at fault, what was
//! expected and, for a misspelt key or placeholder, the nearest valid one.
//! No value from the file is echoed but names (keys, placeholders): a
//! binding may hold credentials in its headers.

pub mod check;
pub mod file;
pub mod init;
pub mod schema;
pub mod template;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use regex::Regex;
use reqwest::Method;
use serde_json_path::JsonPath;

use crate::model::{Action, Capabilities, Order, Scope, ViewName, ViewSpec};
use file::{ActionFile, BindingFile, CaptureFile, RequestFile, ViewFile};
pub use template::Template;

/// Largest binding file read, in bytes.
pub const BINDING_FILE_MAX: u64 = 1 << 20;

/// Most requests in one action.
pub const REQUESTS_MAX: usize = 16;

/// The reference clinic's binding, compiled into the binary (the default).
pub const CLINIC_TOML: &str = include_str!("../../bindings/clinic.toml");

/// A binding that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct BindingError {
    /// The file as the user named it.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// The key at fault (`actions.book.requests[0].path`).
    pub key: String,
    /// What was expected, and the fix.
    pub message: String,
}

/// Where a value is found in a response.
#[derive(Debug, Clone)]
pub enum Locator {
    /// A JSON Pointer into the body.
    Pointer(String),
    /// A JSONPath into the body; the first match.
    Path(Box<JsonPath>),
    /// A response header.
    Header(String),
    /// A cookie set by the response.
    Cookie(String),
}

/// A value to take from a response.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Where it is.
    pub at: Locator,
    /// The part of it to keep: the first group, or the whole match.
    pub regex: Option<Regex>,
}

/// What a request sends as its body.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    /// No body.
    None,
    /// JSON, strings templated.
    Json(serde_json::Value),
    /// A form, values templated.
    Form(Vec<(String, Template)>),
    /// Text, templated, with its content type.
    Text(Template, String),
    /// The media chunk's bytes, with their content type.
    Media(String),
}

/// Polling an asynchronous operation.
#[derive(Debug, Clone)]
pub struct Poll {
    /// Where the status URL is.
    pub url: Capture,
    /// Statuses that mean "not yet".
    pub pending: Vec<u16>,
    /// A value that must be present for "done".
    pub until: Option<(Capture, String)>,
    /// Milliseconds between polls.
    pub interval_ms: u64,
    /// Most polls.
    pub attempts: u32,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A path on the target.
    Path(Template),
    /// An absolute URL (a captured link).
    Url(Template),
}

/// One compiled request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its key in the file, for messages (`actions.book.requests[0]`).
    pub key: String,
    /// The method.
    pub method: Method,
    /// Where to.
    pub to: Destination,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// Headers.
    pub headers: Vec<(String, Template)>,
    /// Body.
    pub body: BodyTemplate,
    /// Whether the session is presented.
    pub session: bool,
    /// Success statuses (`None`: any 2xx).
    pub success: Option<Vec<u16>>,
    /// Values to capture, by name.
    pub captures: Vec<(String, Capture)>,
    /// Whether the body is the recording's media.
    pub media: bool,
    /// Polling.
    pub poll: Option<Poll>,
}

impl Request {
    /// Whether `status` is a success for this request.
    pub fn is_success(&self, status: u16) -> bool {
        match &self.success {
            Some(list) => list.contains(&status),
            None => (200..300).contains(&status),
        }
    }

    /// Whether this request captures `name`.
    pub fn captures(&self, name: &str) -> bool {
        self.captures.iter().any(|(n, _)| n == name)
    }
}

/// One compiled action.
#[derive(Debug, Clone)]
pub struct BoundAction {
    /// Its requests.
    pub requests: Vec<Request>,
    /// Statuses to retry on, and the most attempts.
    pub retry: Option<(Vec<u16>, u32)>,
    /// Play: download links are bearer capabilities by design.
    pub link_is_capability: bool,
}

impl BoundAction {
    /// Whether some request captures `name`.
    pub fn captures(&self, name: &str) -> bool {
        self.requests.iter().any(|r| r.captures(name))
    }
}

/// How a view reaches later pages.
#[derive(Debug, Clone)]
pub enum Pagination {
    /// `{page}` and `{per_page}`.
    Page,
    /// `{offset}` and `{limit}`.
    Offset,
    /// An opaque `{cursor}` taken from each page.
    Cursor(Capture),
    /// A next URL taken from each page.
    NextUrl(Capture),
    /// The `Link` header's `rel="next"`.
    LinkHeader,
    /// One page holds everything.
    None,
}

/// One compiled view.
#[derive(Debug, Clone)]
pub struct View {
    /// What the model knows of it.
    pub spec: ViewSpec,
    /// The first page's request.
    pub request: Request,
    /// Where the items are.
    pub items: Locator,
    /// Where an item's id is.
    pub id: Locator,
    /// The part of the id to keep.
    pub id_regex: Option<Regex>,
    /// Paging.
    pub pagination: Pagination,
    /// Where the total count is in the first page, if mapped.
    pub total: Option<Locator>,
    /// Where an item's kind is, if mapped.
    pub kind: Option<Locator>,
    /// Where an item's call id is, if mapped, and the part to keep.
    pub call: Option<(Locator, Option<Regex>)>,
    /// Where an item's appointment id is, if mapped.
    pub appointment: Option<Locator>,
    /// Where an item's size in bytes is, if mapped.
    pub size: Option<Locator>,
    /// Where an item's owner id is, if mapped, and the part to keep.
    pub owner: Option<(Locator, Option<Regex>)>,
}

/// How the session credential is presented.
#[derive(Debug, Clone)]
pub enum SessionPlace {
    /// In this header.
    Header(String),
    /// In this cookie.
    Cookie(String),
}

/// How the service refuses cross-patient requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalPolicy {
    /// A foreign object is answered as one that never existed.
    Indistinguishable,
    /// The service answers 403 for objects that exist, by design.
    Forbidden,
}

/// A checked, compiled binding.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Its name.
    pub name: String,
    /// The service it binds.
    pub service: String,
    /// Where it came from (a path, or `built-in clinic`).
    pub source: String,
    /// What the model may generate.
    pub caps: Capabilities,
    /// The health check path, if any.
    pub health: Option<String>,
    /// Headers on every request.
    pub headers: Vec<(String, Template)>,
    /// Extra hosts absolute URLs may point at.
    pub follow_hosts: Vec<String>,
    /// Where the credential goes.
    pub session: SessionPlace,
    /// The credential's value.
    pub session_value: Template,
    /// Register.
    pub register: BoundAction,
    /// The optional actions, by [`Action`].
    pub actions: Vec<(Action, BoundAction)>,
    /// The views.
    pub views: Vec<View>,
    /// Refusal policy.
    pub refusal: RefusalPolicy,
    /// Actions (words of [`crate::model::ACTIONS`]) whose refusal may rightly
    /// depend on other patients: the noninterference check leaves them out.
    pub shared: Vec<String>,
    /// Observation fields (of [`COMPARED_FIELDS`]) whose value may rightly
    /// depend on other patients: left out of the noninterference comparison.
    pub shared_fields: Vec<String>,
    /// When the noninterference check runs.
    pub noninterference: NoninterferenceCheck,
}

/// What the noninterference check compares between a patient's observations
/// with others and alone: whether each step was served, the recordings each
/// showed (in aliases), and each mapped field.
pub const COMPARED_FIELDS: [&str; 8] = [
    "status",
    "recordings",
    "total",
    "kind",
    "call",
    "appointment",
    "size",
    "owner",
];

/// When the noninterference check runs (`[noninterference] check`,
/// `--noninterference`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoninterferenceCheck {
    /// Only where a case gives cause: a step the model holds valid was
    /// refused, or a patient's own finished recording was missing. Costs
    /// nothing on a case without either.
    #[default]
    Suspect,
    /// After every passed case too: every patient who acted among others
    /// takes the same steps alone and every observation is compared. Costs
    /// one more case per such patient.
    Every,
}

impl NoninterferenceCheck {
    /// Its name in a binding file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NoninterferenceCheck::Suspect => "suspect",
            NoninterferenceCheck::Every => "every",
        }
    }

    /// The check named `name`, if any.
    pub fn from_name(name: &str) -> Option<NoninterferenceCheck> {
        [NoninterferenceCheck::Suspect, NoninterferenceCheck::Every]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// The model's actions depend on each other (a call needs a booking): an
/// action, and the one a binding must also bind for the model to reach it.
/// Listed so that every action comes after the ones it needs.
pub const ACTION_NEEDS: [(Action, Action); 7] = [
    (Action::Cancel, Action::Book),
    (Action::StartCall, Action::Book),
    (Action::Upgrade, Action::StartCall),
    (Action::SendMedia, Action::StartCall),
    (Action::EndCall, Action::StartCall),
    (Action::Play, Action::StartCall),
    (Action::Erase, Action::EndCall),
];

impl Binding {
    /// The reference clinic's `/v1` binding.
    pub fn clinic() -> Binding {
        Binding::parse(CLINIC_TOML, "bindings/clinic.toml")
            .expect("the built-in clinic binding is valid (tested)")
    }

    /// Read and compile a binding file.
    pub fn load(path: &Path) -> Result<Binding, BindingError> {
        let shown = path.display().to_string();
        let whole = |message: String| BindingError {
            file: shown.clone(),
            line: 1,
            column: 1,
            key: "(file)".to_string(),
            message,
        };
        let bytes = crate::scenario::read_bounded(path, BINDING_FILE_MAX)
            .map_err(|e| whole(format!("cannot read the binding file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| whole("cannot read the binding file: it is not UTF-8 text".into()))?;
        Binding::parse(&text, &shown)
    }

    /// Compile binding text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Binding, BindingError> {
        let at = Spans { text, file };
        let raw: BindingFile = toml::from_str(text).map_err(|e| at.toml_error(&e))?;
        compile(&raw, &at)
    }

    /// The bound action, if the binding has it.
    pub fn action(&self, action: Action) -> Option<&BoundAction> {
        self.actions
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, b)| b)
    }

    /// The view named `name`.
    pub fn view(&self, name: ViewName) -> Option<&View> {
        self.views.iter().find(|v| v.spec.name == name)
    }
}

/// Turns byte spans into line and column.
struct Spans<'a> {
    text: &'a str,
    file: &'a str,
}

impl Spans<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        message: String,
    ) -> BindingError {
        let (line, column) = self.position(span.map_or(0, |s| s.start));
        BindingError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }

    fn toml_error(&self, error: &toml::de::Error) -> BindingError {
        let message = error
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        let message = did_you_mean_field(&message).unwrap_or(message);
        let key = self.key_at(error.span());
        self.error(error.span(), &key, message)
    }

    /// The dotted key of the line a span starts on, as well as a line can tell.
    fn key_at(&self, span: Option<std::ops::Range<usize>>) -> String {
        let Some(span) = span else {
            return "(file)".to_string();
        };
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[line_start..].lines().next().unwrap_or("").trim();
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        let key: String = line
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect();
        match (table, key.is_empty() || line.starts_with('[')) {
            (Some(t), false) => format!("{t}.{key}"),
            (Some(t), true) => t,
            (None, false) => key,
            (None, true) => "(file)".to_string(),
        }
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → the same with a suggestion.
fn did_you_mean_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (found, rest) = rest.split_once('`')?;
    let candidates: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = nearest(found, candidates.iter().copied())?;
    Some(format!("{message}; did you mean `{best}`?"))
}

/// The candidate closest to `word`, if close enough to be a typo.
fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

/// Names every action can use.
const COMMON_INPUTS: [&str; 2] = ["me", "token"];

/// The inputs of each action, besides [`COMMON_INPUTS`] and earlier captures.
fn inputs(action: &str) -> &'static [&'static str] {
    match action {
        "register" => &["display_name", "email", "password"],
        "book" => &[
            "slot",
            "slot_start",
            "slot_end",
            "slot_date",
            "slot_hour",
            "slot_day",
            "notes",
        ],
        "cancel" | "start-call" => &["appointment"],
        "upgrade" | "end-call" => &["call", "recording", "appointment"],
        "send-media" => &[
            "call",
            "recording",
            "appointment",
            "media",
            "media_base64",
            "chunk",
        ],
        "play" | "erase" => &["recording"],
        _ => &[],
    }
}

/// Placeholders a view can use besides `{me}` and its scope's object.
const VIEW_INPUTS: [&str; 5] = ["page", "per_page", "offset", "limit", "cursor"];

/// Names an action must capture for the model to go on.
fn required_outputs(action: &str) -> &'static [&'static str] {
    match action {
        "register" => &["token"],
        "book" => &["appointment"],
        "start-call" => &["call"],
        _ => &[],
    }
}

fn compile(raw: &BindingFile, at: &Spans<'_>) -> Result<Binding, BindingError> {
    let top = |key: &str, message: String| at.error(None, key, message);
    if raw.name.is_empty() || raw.service.is_empty() {
        return Err(top("name", "`name` and `service` must not be empty".into()));
    }
    let session = match (&raw.session.header, &raw.session.cookie) {
        (Some(h), None) => SessionPlace::Header(h.clone()),
        (None, Some(c)) => SessionPlace::Cookie(c.clone()),
        _ => {
            return Err(top(
                "session",
                "expected exactly one of `header` (e.g. \"Authorization\") and `cookie`".into(),
            ));
        }
    };
    let session_value = match &raw.session.value {
        Some(v) => template(at, v, "session.value", &["token", "me"], &BTreeSet::new())?,
        None => Template::parse("{token}").expect("static template"),
    };
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let key = format!("headers.{name}");
        headers.push((
            name.clone(),
            template(at, value, &key, &COMMON_INPUTS, &BTreeSet::new())?,
        ));
    }
    let register = compile_action(at, "register", &raw.actions.register)?;
    let me_known = register.captures("me");
    let mut caps = Capabilities::none();
    let mut actions = Vec::new();
    let optional = [
        (Action::Book, &raw.actions.book),
        (Action::Cancel, &raw.actions.cancel),
        (Action::StartCall, &raw.actions.start_call),
        (Action::Upgrade, &raw.actions.upgrade),
        (Action::SendMedia, &raw.actions.send_media),
        (Action::EndCall, &raw.actions.end_call),
        (Action::Play, &raw.actions.play),
        (Action::Erase, &raw.actions.erase),
        (Action::EraseAccount, &raw.actions.erase_account),
    ];
    for (action, file) in optional {
        if let Some(file) = file {
            let bound = compile_action(at, action.name(), file)?;
            if action == Action::Play && !bound.requests.iter().any(|r| r.media) {
                return Err(top(
                    "actions.play",
                    "no request has `media = true`; mark the request whose body is the recording's bytes".into(),
                ));
            }
            caps = caps.with(action);
            actions.push((action, bound));
        }
    }
    for (action, needed) in ACTION_NEEDS {
        if caps.has(action) && !caps.has(needed) {
            return Err(top(
                &format!("actions.{}", action.name()),
                format!(
                    "`{}` needs `{}` (the model cannot reach it otherwise); bind `actions.{}` or remove this action",
                    action.name(),
                    needed.name(),
                    needed.name()
                ),
            ));
        }
    }
    let mut views = Vec::new();
    for (name, file) in &raw.views {
        let view = compile_view(at, name, file)?;
        caps = caps
            .with_view(view.spec)
            .map_err(|e| top(&format!("views.{name}"), e.to_string()))?;
        views.push(view);
    }
    if views.is_empty() {
        return Err(top(
            "views",
            "no view: declare at least one endpoint that lists a patient's recordings (`[views.history]`)".into(),
        ));
    }
    if !me_known && uses_me(&actions, &views, &headers, &session_value) {
        return Err(top(
            "actions.register",
            "`{me}` is used but register never captures `me`; add `capture.me = { json = \"/id\" }` (or a header) to a register request".into(),
        ));
    }
    // An owner is recognised by the patient's own id: without it, every
    // owner would look like no patient's.
    if !me_known
        && let Some(name) = raw
            .views
            .iter()
            .find(|(_, v)| v.owner.is_some())
            .map(|(n, _)| n)
    {
        return Err(top(
            &format!("views.{name}.owner"),
            "an owner is matched against each patient's own id, but register never captures `me`; add `capture.me = { json = \"/id\" }` (or a header) to a register request".into(),
        ));
    }
    let refusal = match raw.refusal.policy.as_deref() {
        None | Some("indistinguishable") => RefusalPolicy::Indistinguishable,
        Some("forbidden") => RefusalPolicy::Forbidden,
        Some(other) => {
            return Err(top(
                "refusal.policy",
                format!("unknown policy `{other}`; expected `indistinguishable` or `forbidden`"),
            ));
        }
    };
    let shared = match &raw.noninterference.shared {
        None => vec!["register".to_string(), "book".to_string()],
        Some(words) => {
            for word in words {
                if !crate::model::ACTIONS.contains(&word.as_str()) {
                    let hint = nearest(word, crate::model::ACTIONS.into_iter())
                        .map(|a| format!("; did you mean `{a}`?"))
                        .unwrap_or_default();
                    return Err(top(
                        "noninterference.shared",
                        format!(
                            "unknown action `{word}`; expected actions among {}{hint}",
                            crate::model::ACTIONS.join(", ")
                        ),
                    ));
                }
            }
            words.clone()
        }
    };
    let shared_fields = raw.noninterference.fields.clone().unwrap_or_default();
    for field in &shared_fields {
        if !COMPARED_FIELDS.contains(&field.as_str()) {
            let hint = nearest(field, COMPARED_FIELDS.into_iter())
                .map(|a| format!("; did you mean `{a}`?"))
                .unwrap_or_default();
            return Err(top(
                "noninterference.fields",
                format!(
                    "unknown field `{field}`; expected fields among {}{hint}",
                    COMPARED_FIELDS.join(", ")
                ),
            ));
        }
    }
    let noninterference = match raw.noninterference.check.as_deref() {
        None => NoninterferenceCheck::default(),
        Some(name) => NoninterferenceCheck::from_name(name).ok_or_else(|| {
            top(
                "noninterference.check",
                format!("unknown check `{name}`; expected `suspect` or `every`"),
            )
        })?,
    };
    Ok(Binding {
        name: raw.name.clone(),
        service: raw.service.clone(),
        source: at.file.to_string(),
        caps,
        health: match &raw.health {
            Some(h) if !h.starts_with('/') => {
                return Err(top(
                    "health",
                    "a path starting with `/` (\"/healthz\")".into(),
                ));
            }
            h => h.clone(),
        },
        headers,
        follow_hosts: raw.follow_hosts.clone(),
        session,
        session_value,
        register,
        actions,
        views,
        refusal,
        shared,
        shared_fields,
        noninterference,
    })
}

fn uses_me(
    actions: &[(Action, BoundAction)],
    views: &[View],
    headers: &[(String, Template)],
    session: &Template,
) -> bool {
    let in_request = |r: &Request| request_vars(r).iter().any(|v| v == "me");
    actions
        .iter()
        .any(|(_, a)| a.requests.iter().any(in_request))
        || views.iter().any(|v| in_request(&v.request))
        || headers.iter().any(|(_, t)| t.vars().any(|v| v == "me"))
        || session.vars().any(|v| v == "me")
}

fn request_vars(r: &Request) -> Vec<String> {
    let mut vars: Vec<String> = Vec::new();
    let mut add = |t: &Template| vars.extend(t.vars().map(str::to_string));
    match &r.to {
        Destination::Path(t) | Destination::Url(t) => add(t),
    }
    r.query.iter().for_each(|(_, t)| add(t));
    r.headers.iter().for_each(|(_, t)| add(t));
    match &r.body {
        BodyTemplate::Form(f) => f.iter().for_each(|(_, t)| add(t)),
        BodyTemplate::Text(t, _) => add(t),
        BodyTemplate::Json(v) => json_strings(v, &mut |s| {
            if let Ok(t) = Template::parse(s) {
                add(&t);
            }
        }),
        BodyTemplate::None | BodyTemplate::Media(_) => {}
    }
    vars
}

fn json_strings(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, f)),
        _ => {}
    }
}

fn template(
    at: &Spans<'_>,
    value: &file::Template,
    key: &str,
    inputs: &[&str],
    captured: &BTreeSet<String>,
) -> Result<Template, BindingError> {
    let parsed =
        Template::parse(value.get_ref()).map_err(|m| at.error(Some(value.span()), key, m))?;
    check_vars(at, Some(value.span()), key, &parsed, inputs, captured)?;
    Ok(parsed)
}

fn check_vars(
    at: &Spans<'_>,
    span: Option<std::ops::Range<usize>>,
    key: &str,
    parsed: &Template,
    inputs: &[&str],
    captured: &BTreeSet<String>,
) -> Result<(), BindingError> {
    for var in parsed.vars() {
        let known = inputs.contains(&var) || COMMON_INPUTS.contains(&var) || captured.contains(var);
        if !known {
            let all: Vec<&str> = inputs
                .iter()
                .copied()
                .chain(COMMON_INPUTS)
                .chain(captured.iter().map(String::as_str))
                .collect();
            let hint = match nearest(var, all.iter().copied()) {
                Some(best) => format!("; did you mean `{{{best}}}`?"),
                None => String::new(),
            };
            return Err(at.error(
                span,
                key,
                format!(
                    "unknown placeholder `{{{var}}}`; here you can use: {}{hint}",
                    all.iter()
                        .map(|v| format!("{{{v}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn method(at: &Spans<'_>, key: &str, text: &str) -> Result<Method, BindingError> {
    match text.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(at.error(
            None,
            &format!("{key}.method"),
            "expected GET, POST, PUT, PATCH or DELETE".to_string(),
        )),
    }
}

fn capture(at: &Spans<'_>, key: &str, file: &CaptureFile) -> Result<Capture, BindingError> {
    let sources = [
        file.json.is_some(),
        file.jsonpath.is_some(),
        file.header.is_some(),
        file.cookie.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(at.error(
            None,
            key,
            "expected exactly one of `json` (a JSON Pointer like \"/id\"), `jsonpath` (\"$.id\"), `header` and `cookie`".into(),
        ));
    }
    let locator = if let Some(p) = &file.json {
        pointer(at, key, p)?
    } else if let Some(p) = &file.jsonpath {
        json_path(at, key, p)?
    } else if let Some(h) = &file.header {
        Locator::Header(h.clone())
    } else {
        Locator::Cookie(file.cookie.clone().unwrap_or_default())
    };
    let regex = file
        .regex
        .as_deref()
        .map(|r| compile_regex(at, key, r))
        .transpose()?;
    Ok(Capture { at: locator, regex })
}

fn compile_regex(at: &Spans<'_>, key: &str, text: &str) -> Result<Regex, BindingError> {
    regex::RegexBuilder::new(text)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| {
            at.error(
                None,
                key,
                "`regex` is not a valid regular expression".into(),
            )
        })
}

fn pointer(at: &Spans<'_>, key: &str, p: &str) -> Result<Locator, BindingError> {
    if !(p.is_empty() || p.starts_with('/')) {
        return Err(at.error(
            None,
            key,
            "a JSON Pointer starts with `/` (\"/data/id\"); for JSONPath use `jsonpath = \"$.data.id\"`".into(),
        ));
    }
    Ok(Locator::Pointer(p.to_string()))
}

fn json_path(at: &Spans<'_>, key: &str, p: &str) -> Result<Locator, BindingError> {
    JsonPath::parse(p)
        .map(|p| Locator::Path(Box::new(p)))
        .map_err(|_| {
            at.error(
                None,
                key,
                "not a valid JSONPath (e.g. \"$.entry[*]\")".into(),
            )
        })
}

/// `/items` or `$.entry[*]`: a pointer or a JSONPath by its first character.
fn body_locator(at: &Spans<'_>, key: &str, text: &str) -> Result<Locator, BindingError> {
    if text.starts_with('$') {
        json_path(at, key, text)
    } else {
        pointer(at, key, text)
    }
}

fn compile_action(
    at: &Spans<'_>,
    name: &str,
    file: &ActionFile,
) -> Result<BoundAction, BindingError> {
    let key = format!("actions.{name}");
    if file.requests.is_empty() || file.requests.len() > REQUESTS_MAX {
        return Err(at.error(
            None,
            &key,
            format!("expected 1 to {REQUESTS_MAX} requests (`[[{key}.requests]]`)"),
        ));
    }
    let mut captured = BTreeSet::new();
    let mut requests = Vec::new();
    for (i, request) in file.requests.iter().enumerate() {
        let rkey = format!("{key}.requests[{i}]");
        // A registration's first request has no session yet.
        let default_session = !(name == "register" && i == 0);
        let compiled =
            compile_request(at, &rkey, request, inputs(name), &captured, default_session)?;
        for (n, _) in &compiled.captures {
            captured.insert(n.clone());
        }
        requests.push(compiled);
    }
    for out in required_outputs(name) {
        if !captured.contains(*out) {
            return Err(at.error(
                None,
                &key,
                format!(
                    "`{name}` must capture `{out}` (e.g. `capture.{out} = {{ json = \"/{out}_id\" }}` or `{{ header = \"Location\", regex = \"([^/]+)$\" }}`)"
                ),
            ));
        }
    }
    let retry = match &file.retry {
        Some(r) if (1..=10).contains(&r.attempts) && !r.status.is_empty() => {
            Some((r.status.clone(), r.attempts))
        }
        Some(_) => {
            return Err(at.error(
                None,
                &format!("{key}.retry"),
                "expected `status = [409]` (not empty) and `attempts` from 1 to 10".into(),
            ));
        }
        None => None,
    };
    Ok(BoundAction {
        requests,
        retry,
        link_is_capability: file.link_is_capability,
    })
}

fn compile_request(
    at: &Spans<'_>,
    key: &str,
    file: &RequestFile,
    inputs: &[&str],
    captured: &BTreeSet<String>,
    default_session: bool,
) -> Result<Request, BindingError> {
    let method = method(at, key, &file.method)?;
    let to = destination(
        at,
        key,
        file.path.as_ref(),
        file.url.as_ref(),
        inputs,
        captured,
    )?;
    let mut query = Vec::new();
    for (name, value) in &file.query {
        query.push((
            name.clone(),
            template(at, value, &format!("{key}.query.{name}"), inputs, captured)?,
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in &file.headers {
        headers.push((
            name.clone(),
            template(
                at,
                value,
                &format!("{key}.headers.{name}"),
                inputs,
                captured,
            )?,
        ));
    }
    let bodies = [
        file.json.is_some(),
        !file.form.is_empty(),
        file.body.is_some(),
    ];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err(at.error(None, key, "at most one of `json`, `form` and `body`".into()));
    }
    let body = if let Some(json) = &file.json {
        let value = serde_json::to_value(json.get_ref()).map_err(|_| {
            at.error(
                Some(json.span()),
                &format!("{key}.json"),
                "not representable as JSON (dates are not)".into(),
            )
        })?;
        let mut error = None;
        json_strings(&value, &mut |s| {
            if error.is_some() {
                return;
            }
            match Template::parse(s) {
                Ok(t) => {
                    if let Err(e) = check_vars(
                        at,
                        Some(json.span()),
                        &format!("{key}.json"),
                        &t,
                        inputs,
                        captured,
                    ) {
                        error = Some(e);
                    }
                }
                Err(m) => error = Some(at.error(Some(json.span()), &format!("{key}.json"), m)),
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        BodyTemplate::Json(value)
    } else if !file.form.is_empty() {
        let mut form = Vec::new();
        for (name, value) in &file.form {
            form.push((
                name.clone(),
                template(at, value, &format!("{key}.form.{name}"), inputs, captured)?,
            ));
        }
        BodyTemplate::Form(form)
    } else if let Some(body) = &file.body {
        let content_type = file
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_string());
        let t = Template::parse(body.get_ref())
            .map_err(|m| at.error(Some(body.span()), &format!("{key}.body"), m))?;
        if t.only_var() == Some("media") {
            BodyTemplate::Media(content_type)
        } else if t.vars().any(|v| v == "media") {
            return Err(at.error(
                Some(body.span()),
                &format!("{key}.body"),
                "`{media}` is raw bytes: it can only be the whole body (`body = \"{media}\"`); inside text use `{media_base64}`".into(),
            ));
        } else {
            check_vars(
                at,
                Some(body.span()),
                &format!("{key}.body"),
                &t,
                inputs,
                captured,
            )?;
            BodyTemplate::Text(t, content_type)
        }
    } else {
        BodyTemplate::None
    };
    let mut captures = Vec::new();
    for (name, c) in &file.capture {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
            return Err(at.error(
                None,
                &format!("{key}.capture.{name}"),
                "a capture name is letters, digits and `_`".into(),
            ));
        }
        captures.push((
            name.clone(),
            capture(at, &format!("{key}.capture.{name}"), c)?,
        ));
    }
    let poll = match &file.poll {
        None => None,
        Some(p) => {
            let pkey = format!("{key}.poll");
            let url = capture(
                at,
                &format!("{pkey}.url"),
                p.url.as_ref().unwrap_or(&CaptureFile {
                    header: Some("Location".to_string()),
                    ..CaptureFile::default()
                }),
            )?;
            let until = p
                .until
                .as_ref()
                .map(|u| {
                    Ok::<_, BindingError>((
                        capture(at, &format!("{pkey}.until"), &u.at())?,
                        u.equals.clone(),
                    ))
                })
                .transpose()?;
            let interval_ms = p.interval_ms.unwrap_or(20);
            let attempts = p.attempts.unwrap_or(50);
            if interval_ms > 1000 || !(1..=100).contains(&attempts) {
                return Err(at.error(
                    None,
                    &pkey,
                    "expected `interval_ms` from 0 to 1000 and `attempts` from 1 to 100".into(),
                ));
            }
            Some(Poll {
                url,
                pending: p.pending.clone().unwrap_or_else(|| vec![202]),
                until,
                interval_ms,
                attempts,
            })
        }
    };
    Ok(Request {
        key: key.to_string(),
        method,
        to,
        query,
        headers,
        body,
        session: file.session.unwrap_or(default_session),
        success: file.success.clone(),
        captures,
        media: file.media,
        poll,
    })
}

fn destination(
    at: &Spans<'_>,
    key: &str,
    path: Option<&file::Template>,
    url: Option<&file::Template>,
    inputs: &[&str],
    captured: &BTreeSet<String>,
) -> Result<Destination, BindingError> {
    match (path, url) {
        (Some(p), None) => {
            if !p.get_ref().starts_with('/') {
                return Err(at.error(Some(p.span()), &format!("{key}.path"), "a path starts with `/`".into()));
            }
            Ok(Destination::Path(template(at, p, &format!("{key}.path"), inputs, captured)?))
        }
        (None, Some(u)) => Ok(Destination::Url(template(at, u, &format!("{key}.url"), inputs, captured)?)),
        _ => Err(at.error(
            None,
            key,
            "expected exactly one of `path` (\"/v1/...\") and `url` (an absolute URL, usually a capture: \"{download}\")".into(),
        )),
    }
}

fn compile_view(at: &Spans<'_>, name: &str, file: &ViewFile) -> Result<View, BindingError> {
    let key = format!("views.{name}");
    let view_name = ViewName::new(name).map_err(|e| at.error(None, &key, e.to_string()))?;
    let scope = match file.scope.as_deref() {
        None => None,
        Some("appointment") => Some(Scope::Appointment),
        Some("call") => Some(Scope::Call),
        Some(other) => {
            return Err(at.error(
                None,
                &format!("{key}.scope"),
                format!("unknown scope `{other}`; expected `appointment` or `call`"),
            ));
        }
    };
    let mut inputs: Vec<&str> = VIEW_INPUTS.to_vec();
    match scope {
        Some(Scope::Appointment) => inputs.push("appointment"),
        Some(Scope::Call) => inputs.push("call"),
        None => {}
    }
    let r = file;
    let as_request = RequestFile {
        method: r.method.clone().unwrap_or_else(|| "GET".to_string()),
        path: Some(r.path.clone()),
        url: None,
        query: r.query.clone(),
        headers: r.headers.clone(),
        json: r.json.clone(),
        form: r.form.clone(),
        body: None,
        content_type: None,
        session: None,
        success: r.success.clone(),
        capture: Default::default(),
        media: false,
        poll: None,
    };
    let request = compile_request(at, &key, &as_request, &inputs, &BTreeSet::new(), true)?;
    let items = body_locator(at, &format!("{key}.items"), &file.items)?;
    let id = body_locator(at, &format!("{key}.id"), &file.id)?;
    let id_regex = file
        .id_regex
        .as_deref()
        .map(|r| compile_regex(at, &format!("{key}.id_regex"), r))
        .transpose()?;
    let order = match file.order.as_deref() {
        None | Some("oldest-first") => Order::OldestFirst,
        Some("newest-first") => Order::NewestFirst,
        Some("any") => Order::Any,
        Some(other) => {
            return Err(at.error(
                None,
                &format!("{key}.order"),
                format!(
                    "unknown order `{other}`; expected `oldest-first`, `newest-first` or `any`"
                ),
            ));
        }
    };
    let pkey = format!("{key}.pagination");
    let (pagination, paged) = match &file.pagination {
        None => (Pagination::None, false),
        Some(p) => {
            let next = p
                .next
                .as_ref()
                .map(|n| capture(at, &format!("{pkey}.next"), n))
                .transpose()?;
            match (p.kind.as_str(), next) {
                ("page", None) => (Pagination::Page, true),
                ("offset", None) => (Pagination::Offset, true),
                ("cursor", Some(n)) => (Pagination::Cursor(n), true),
                ("next-url", Some(n)) => (Pagination::NextUrl(n), true),
                ("link-header", None) => (Pagination::LinkHeader, true),
                ("none", None) => (Pagination::None, false),
                ("cursor" | "next-url", None) => {
                    return Err(at.error(
                        None,
                        &pkey,
                        format!(
                            "`{}` pagination needs `next` (where the next cursor or URL is)",
                            p.kind
                        ),
                    ));
                }
                ("page" | "offset" | "link-header" | "none", Some(_)) => {
                    return Err(at.error(
                        None,
                        &pkey,
                        format!("`{}` pagination takes no `next`", p.kind),
                    ));
                }
                (other, _) => {
                    let kinds = [
                        "page",
                        "offset",
                        "cursor",
                        "next-url",
                        "link-header",
                        "none",
                    ];
                    let hint = nearest(other, kinds.into_iter())
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    return Err(at.error(
                        None,
                        &format!("{pkey}.kind"),
                        format!(
                            "unknown pagination `{other}`; expected one of {}{hint}",
                            kinds.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    let vars = request_vars(&request);
    let needs = |v: &str| vars.iter().any(|x| x == v);
    let missing = match &pagination {
        Pagination::Page if !needs("page") => Some("{page}"),
        Pagination::Offset if !needs("offset") => Some("{offset}"),
        Pagination::Cursor(_) if !needs("cursor") => Some("{cursor}"),
        _ => None,
    };
    if let Some(missing) = missing {
        return Err(at.error(
            None,
            &key,
            format!("this pagination sends `{missing}`, but the view's request never uses it (add it to `query`)"),
        ));
    }
    let scope_var = match scope {
        Some(Scope::Appointment) => Some("appointment"),
        Some(Scope::Call) => Some("call"),
        None => None,
    };
    if let Some(v) = scope_var
        && !needs(v)
    {
        return Err(at.error(
            None,
            &key,
            format!("a view scoped by `{v}` must use `{{{v}}}` in its request"),
        ));
    }
    let spec = ViewSpec {
        name: view_name,
        scope,
        paged,
        order,
        tamperable: needs("me"),
    };
    let field = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| body_locator(at, &format!("{key}.{name}"), v))
            .transpose()
    };
    let total = field("total", &file.total)?;
    let kind = field("kind", &file.kind)?;
    let appointment = field("appointment", &file.appointment)?;
    // A located id with the regular expression that keeps part of it
    // (`call` and `call_regex`, `owner` and `owner_regex`).
    let with_regex = |name: &str, value: &Option<String>, regex: &Option<String>, what: &str| {
        let regex = regex
            .as_deref()
            .map(|r| compile_regex(at, &format!("{key}.{name}_regex"), r))
            .transpose()?;
        match field(name, value)? {
            Some(locator) => Ok(Some((locator, regex))),
            None if regex.is_some() => Err(at.error(
                None,
                &format!("{key}.{name}_regex"),
                format!("`{name}_regex` needs `{name}` (where the item's {what} is)"),
            )),
            None => Ok(None),
        }
    };
    let call = with_regex("call", &file.call, &file.call_regex, "call id")?;
    let size = field("size", &file.size)?;
    let owner = with_regex("owner", &file.owner, &file.owner_regex, "owner id")?;
    Ok(View {
        spec,
        request,
        items,
        id,
        id_regex,
        pagination,
        total,
        kind,
        call,
        appointment,
        size,
        owner,
    })
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.source)
    }
}

#[cfg(test)]
mod tests;
