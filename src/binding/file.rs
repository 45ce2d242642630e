//! The binding file as written: TOML, deserialised as is, every key
//! documented. `chaperone binding schema` prints the JSON Schema generated
//! from these types, so editors validate and complete binding files.
//!
//! Nothing here is interpreted: [`super::Binding::compile`] checks a file
//! (placeholders, pointers, methods, which actions create what) and turns it
//! into what the driver runs. Spans are kept on every template so that an
//! error names the file, line and column of the value at fault.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A template string (`/v1/appointments/{appointment}/call`), with its place in the file.
pub type Template = Spanned<String>;

/// A binding: how a telehealth service's HTTP API performs the model's actions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindingFile {
    /// This binding's name (`clinic`, `clinic-fhir`); scenario files record it.
    pub name: String,
    /// The service it binds (`reference-clinic`). A scenario replays against
    /// any binding of the same service.
    pub service: String,
    /// One line on what this is.
    #[serde(default)]
    pub description: Option<String>,
    /// A path that answers 200 when the service is up (`/healthz`),
    /// checked before any case; none: no check.
    #[serde(default)]
    pub health: Option<String>,
    /// Headers sent with every request (templates).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Template>,
    /// Hosts an absolute URL from the service (a download link, a `next`
    /// link, a status URL) may point at besides the target's own host. Any
    /// other host is refused: the harness never follows a service elsewhere.
    #[serde(default)]
    pub follow_hosts: Vec<String>,
    /// How a patient's credential is presented.
    pub session: SessionFile,
    /// The model's actions; every one but `register` is optional, and an
    /// action left out is never generated.
    pub actions: ActionsFile,
    /// Endpoints that list recordings, by name (`history`, `timeline`,
    /// `visit`); scenario files name them (`P1 view timeline page=2 per-page=10`).
    #[serde(default)]
    pub views: BTreeMap<String, ViewFile>,
    /// What the service answers when a patient asks for another patient's object.
    #[serde(default)]
    pub refusal: RefusalFile,
    /// What may rightly depend on other patients.
    #[serde(default)]
    pub noninterference: NoninterferenceFile,
}

/// What may rightly depend on other patients, so the noninterference check
/// leaves it out.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoninterferenceFile {
    /// Actions whose refusal may depend on what other patients did (a slot
    /// someone else booked, a name someone else took). Default:
    /// `["register", "book"]`.
    #[serde(default)]
    pub shared: Option<Vec<String>>,
    /// Observation fields whose value may rightly depend on what other
    /// patients did, left out when a patient's observations are compared
    /// with the same steps taken alone: any of `status`, `recordings`,
    /// `total`, `kind`, `call`, `appointment`, `size`, `owner`. Default: none.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// When the check runs: `suspect` (the default: only where a case gives
    /// cause — a valid step refused, an own finished recording missing) or
    /// `every` (after every passed case as well, every patient who acted;
    /// each such case costs one more case per patient).
    #[serde(default)]
    pub check: Option<String>,
}

/// How the credential captured at registration (`token`) is presented.
/// Exactly one of `header` and `cookie`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// A header (`Authorization`, `X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// A cookie name (`Cookie: NAME=VALUE`).
    #[serde(default)]
    pub cookie: Option<String>,
    /// The value, a template over `{token}` (and `{me}`); default `{token}`,
    /// e.g. `Bearer {token}`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub value: Option<Template>,
}

/// The bound actions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ActionsFile {
    /// Sign up (and log in): must capture `token`, may capture `me` (the
    /// patient's own service id). Inputs: `{display_name}`, `{email}`, `{password}`.
    pub register: ActionFile,
    /// Book an appointment: must capture `appointment`. Inputs: `{slot}`,
    /// `{slot_start}`, `{slot_end}`, `{slot_date}`, `{slot_hour}`, `{slot_day}`, `{notes}`.
    #[serde(default)]
    pub book: Option<ActionFile>,
    /// Cancel an appointment. Inputs: `{appointment}`.
    #[serde(default)]
    pub cancel: Option<ActionFile>,
    /// Start an (audio) call: must capture `call`; captures `recording`
    /// when the service returns the new recording's id. Inputs: `{appointment}`.
    #[serde(default)]
    pub start_call: Option<ActionFile>,
    /// Switch a call to video: captures `recording` (the video recording)
    /// when the service returns it. Inputs: `{call}`, `{recording}` (the audio one).
    #[serde(default)]
    pub upgrade: Option<ActionFile>,
    /// Send one media chunk. Inputs: `{call}`, `{recording}`, `{media}` (raw
    /// bytes: only as the whole `body`), `{media_base64}`, `{chunk}`.
    #[serde(default)]
    pub send_media: Option<ActionFile>,
    /// End a call. Inputs: `{call}`, `{recording}`.
    #[serde(default)]
    pub end_call: Option<ActionFile>,
    /// Play a recording back; one request must set `media = true` (its body
    /// is the recording's bytes). Inputs: `{recording}`. A cross-patient
    /// probe performs the same requests with another patient's session.
    #[serde(default)]
    pub play: Option<ActionFile>,
    /// Erase a recording. Inputs: `{recording}`.
    #[serde(default)]
    pub erase: Option<ActionFile>,
    /// The patient deletes their account: afterwards none of their
    /// recordings is visible to anyone and their session no longer works.
    #[serde(default)]
    pub erase_account: Option<ActionFile>,
}

/// One action: one or more requests, in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    /// The requests. A later request may use what an earlier one captured.
    pub requests: Vec<RequestFile>,
    /// Start the action again from its first request when a request answers
    /// one of these statuses (a slot taken meanwhile: 409).
    #[serde(default)]
    pub retry: Option<RetryFile>,
    /// For `play`: a download link the service hands out is a bearer
    /// capability by design (anyone holding it may fetch it). When false
    /// (the default), a probe also fetches the owner's link with the
    /// prober's session and expects a refusal.
    #[serde(default)]
    pub link_is_capability: bool,
}

/// Retrying an action.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    /// The statuses that mean "try again".
    pub status: Vec<u16>,
    /// How many attempts in all (1 to 10).
    pub attempts: u32,
}

/// One HTTP request. Exactly one of `path` (relative to the target) and `url`
/// (absolute, usually a captured link: `url = "{download}"`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    /// GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    /// The path and optional query, a template (`/v1/calls/{call}/end`).
    /// What a placeholder inserts is percent-encoded.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path: Option<Template>,
    /// An absolute URL, a template; its host must be the target's or one of `follow_hosts`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub url: Option<Template>,
    /// Query parameters (templates). A parameter whose only placeholder has
    /// no value (`{cursor}` on the first page) is left out.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub query: BTreeMap<String, Template>,
    /// Headers (templates).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Template>,
    /// A JSON body: any TOML value, strings templated. A string that is
    /// exactly one placeholder of a number (`"{chunk}"`) becomes a JSON number.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// A form body (`application/x-www-form-urlencoded`), values templated.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub form: BTreeMap<String, Template>,
    /// A raw body, a template; exactly `"{media}"` sends the media bytes.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<Template>,
    /// The content type of `body` (default `application/octet-stream`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Whether the patient's session is presented (default true; false for
    /// the first request of `register` and for capability links).
    #[serde(default)]
    pub session: Option<bool>,
    /// The statuses that mean success (default: any 2xx).
    #[serde(default)]
    pub success: Option<Vec<u16>>,
    /// Values to take from the response, by name: the action's outputs
    /// (`token`, `me`, `appointment`, `call`, `recording`) or names later
    /// requests of the action use (`download`, `slot_id`).
    #[serde(default)]
    pub capture: BTreeMap<String, CaptureFile>,
    /// This response's body is the recording's bytes (play).
    #[serde(default)]
    pub media: bool,
    /// An asynchronous operation: poll a status URL until it is done.
    #[serde(default)]
    pub poll: Option<PollFile>,
}

/// Where a value comes from in a response. Exactly one of `json`,
/// `jsonpath`, `header`, `cookie`; `regex` then picks a part of it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureFile {
    /// A JSON Pointer into the body (`/data/id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// A JSONPath into the body (`$.link[?(@.relation == 'next')].url`); the first match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonpath: Option<String>,
    /// A response header (`Location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A cookie the response sets (`Set-Cookie: NAME=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// A regular expression applied to the value: its first group (or the
    /// whole match) is captured (`/visits/([^/]+)$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// Polling an asynchronous operation: after the request, while the answer's
/// status is one of `pending` (default 202), GET the status URL again.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollFile {
    /// Where the status URL is (default: the `Location` header).
    #[serde(default)]
    pub url: Option<CaptureFile>,
    /// Statuses that mean "not done yet" (default [202]).
    #[serde(default)]
    pub pending: Option<Vec<u16>>,
    /// A field that must hold a value for the operation to be done
    /// (`until = { json = "/status", equals = "done" }`).
    #[serde(default)]
    pub until: Option<UntilFile>,
    /// Milliseconds between polls (0 to 1000, default 20).
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// Most polls (1 to 100, default 50); then the target failed.
    #[serde(default)]
    pub attempts: Option<u32>,
}

/// A condition on a polled response: where the value is (one of `json`,
/// `jsonpath`, `header`), and the value that means done.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UntilFile {
    /// A JSON Pointer into the body.
    #[serde(default)]
    pub json: Option<String>,
    /// A JSONPath into the body.
    #[serde(default)]
    pub jsonpath: Option<String>,
    /// A response header.
    #[serde(default)]
    pub header: Option<String>,
    /// The value that means done.
    pub equals: String,
}

impl UntilFile {
    /// Where the value is, as a capture.
    pub fn at(&self) -> CaptureFile {
        CaptureFile {
            json: self.json.clone(),
            jsonpath: self.jsonpath.clone(),
            header: self.header.clone(),
            cookie: None,
            regex: None,
        }
    }
}

/// An endpoint that lists recordings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewFile {
    /// Default GET (a search may be a POST).
    #[serde(default)]
    pub method: Option<String>,
    /// The path, a template. Inputs: `{page}`, `{per_page}`, `{offset}`,
    /// `{limit}`, `{cursor}`, `{me}`, and `{appointment}` or `{call}` for a
    /// scoped view.
    #[schemars(with = "String")]
    pub path: Template,
    /// Query parameters (templates); see [`RequestFile::query`].
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub query: BTreeMap<String, Template>,
    /// Headers (templates).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Template>,
    /// A JSON body (a search by POST).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// A form body.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub form: BTreeMap<String, Template>,
    /// Success statuses (default any 2xx).
    #[serde(default)]
    pub success: Option<Vec<u16>>,
    /// The view lists one of the patient's own objects' recordings:
    /// `appointment` or `call`; the model views it for each.
    #[serde(default)]
    pub scope: Option<String>,
    /// Where the array of items is: a JSON Pointer (`/items`) or a JSONPath (`$.entry[*]`).
    pub items: String,
    /// Where an item's recording id is, relative to the item: a JSON
    /// Pointer (`/recording_id`) or JSONPath (`$.resource.id`).
    pub id: String,
    /// A regular expression applied to the id: its first group is the id
    /// (`Media/([^/]+)$`).
    #[serde(default)]
    pub id_regex: Option<String>,
    /// `oldest-first` (default), `newest-first` or `any`.
    #[serde(default)]
    pub order: Option<String>,
    /// How later pages are reached (default: one page holds everything).
    #[serde(default)]
    pub pagination: Option<PaginationFile>,
    /// Where the view's total count of recordings is in the first page's
    /// body (`/total`); the model predicts it.
    #[serde(default)]
    pub total: Option<String>,
    /// Where an item's kind is, relative to the item: a value that contains
    /// `audio` or `video` (`/kind`, `/resource/type/coding/0/code`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Where an item's call id is, relative to the item (`/call_id`).
    #[serde(default)]
    pub call: Option<String>,
    /// A regular expression applied to the call id: its first group is the
    /// id (`Encounter/([^/]+)$`).
    #[serde(default)]
    pub call_regex: Option<String>,
    /// Where an item's appointment id is, relative to the item (`/appointment_id`).
    #[serde(default)]
    pub appointment: Option<String>,
    /// Where an item's size in bytes is, relative to the item (`/bytes`).
    #[serde(default)]
    pub size: Option<String>,
    /// Where an item's owner (the patient's own id, as `me` captures it) is,
    /// relative to the item (`/resource/subject/reference`).
    #[serde(default)]
    pub owner: Option<String>,
    /// A regular expression applied to the owner: its first group is the
    /// patient's id (`^Patient/(.+)$`).
    #[serde(default)]
    pub owner_regex: Option<String>,
}

/// Pagination of a view.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaginationFile {
    /// `page` (`{page}`, `{per_page}`), `offset` (`{offset}`, `{limit}`),
    /// `cursor` (an opaque `{cursor}` from `next`), `next-url` (a URL from
    /// `next`, e.g. a FHIR Bundle link whose relation is `next`),
    /// `link-header` (`Link: <...>; rel="next"`), or `none` (one page holds everything).
    pub kind: String,
    /// For `cursor` and `next-url`: where the next cursor or URL is (absent or null: last page).
    #[serde(default)]
    pub next: Option<CaptureFile>,
}

/// How the service refuses a patient who asks for another patient's object.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalFile {
    /// `indistinguishable` (default: a foreign object is answered exactly as
    /// one that never existed) or `forbidden` (the service deliberately
    /// answers 403 for objects that exist).
    #[serde(default)]
    pub policy: Option<String>,
}
