//! The driver: the only code that speaks to the service.
//!
//! A [`Driver`] turns one model [`Step`] into requests (the generic
//! [`BindingDriver`] interprets any service's binding) and the responses into
//! an [`Observation`]. It records, it never judges: whether an observation is
//! a leak is the oracle's business.
//!
//! **Architecture invariant:** service ids and bearer tokens never leave a
//! driver. Observations name recordings by alias ([`Seen::Known`]) or, for ids
//! the harness never saw created, by an opaque per-case number
//! ([`Seen::Unknown`]). Raw bodies travel inside observations so the content
//! oracle can scan them, and are never printed or written anywhere.

pub mod binding;
pub mod book;
pub mod http;
pub mod store;
pub mod transport;

pub use binding::{BindingDriver, encode_component};
pub use book::RecordingBook;
pub use store::{Store, StoreSpec};
pub use transport::{Transport, health, http_client};

use std::future::Future;

use crate::model::{AppointmentId, CallId, PatientId, RecordingId, Step};

/// A recording as the service showed it, in alias terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seen {
    /// A recording the harness saw created, by its alias.
    Known(RecordingId),
    /// An id the harness never saw created (a phantom): numbered per case.
    Unknown(u32),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Known(r) => write!(f, "{r}"),
            Seen::Unknown(n) => write!(f, "unknown recording #{n}"),
        }
    }
}

/// What kind of bytes a body holds: decides how field paths are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A JSON document.
    Json,
    /// Raw media bytes.
    Media,
    /// Anything else (an error page, a body of the wrong type).
    Other,
}

/// One response body the patient received. Never printed: its `Debug` shows
/// only the kind and length.
#[derive(Clone)]
pub struct Body {
    /// What it is.
    pub kind: BodyKind,
    /// The bytes exactly as received.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What one step showed the patient who took it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The HTTP status of the step's response.
    pub status: u16,
    /// Recordings the response showed, with the field path where each appeared
    /// (`items[0]` in a history page, `media` for a playback).
    pub seen: Vec<(String, Seen)>,
    /// Every body the patient received during the step.
    pub bodies: Vec<Body>,
    /// For a refused cross-patient request, the same request asked about an
    /// id that never existed, to compare the two refusals (`None` when not
    /// asked: the request succeeded, the binding's refusal policy is
    /// `forbidden`, or the step names no foreign object).
    pub existence: Option<Existence>,
    /// What the response said about the recordings it showed, in model
    /// terms, where the binding maps the fields (a view's total, an item's
    /// kind, call and appointment), each with its field path.
    pub facts: Vec<(String, Fact)>,
}

/// A field of a response the model can predict, in aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The view's total count of recordings.
    Total(u64),
    /// An item's kind: video (`true`) or audio.
    Kind {
        /// The item.
        recording: Seen,
        /// Whether it says video.
        video: bool,
    },
    /// An item's call: its alias, or `None` for a call the harness never saw.
    Call {
        /// The item.
        recording: Seen,
        /// The call.
        call: Option<CallId>,
    },
    /// An item's appointment: its alias, or `None` for one never seen.
    Appointment {
        /// The item.
        recording: Seen,
        /// The appointment.
        appointment: Option<AppointmentId>,
    },
    /// An item's size in bytes.
    Size {
        /// The item.
        recording: Seen,
        /// The bytes it says it holds.
        bytes: u64,
    },
    /// An item's owner: the patient whose own id it names, or `None` for an
    /// id that is no patient of this case.
    Owner {
        /// The item.
        recording: Seen,
        /// The patient.
        owner: Option<PatientId>,
    },
}

/// Two refusals of the same request: for another patient's object, and for
/// an id that never existed. Indistinguishable refusals match in both parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existence {
    /// Status and body shape of the refusal of the foreign object.
    pub foreign: (u16, String),
    /// Status and body shape of the refusal of the never-existing id.
    pub unknown: (u16, String),
}

/// The shape of a body, for comparing refusals: a JSON object's sorted
/// top-level keys (`{error,status}`), `json` for other JSON, `empty`, or
/// `other`. Never the values: those may rightly differ (an echoed id).
pub fn body_shape(body: Option<&Body>) -> String {
    let Some(body) = body else {
        return "empty".to_string();
    };
    if body.bytes.iter().all(u8::is_ascii_whitespace) {
        return "empty".to_string();
    }
    match serde_json::from_slice::<serde_json::Value>(&body.bytes) {
        Ok(serde_json::Value::Object(map)) => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            format!("{{{}}}", keys.join(","))
        }
        Ok(_) => "json".to_string(),
        Err(_) => "other".to_string(),
    }
}

impl Observation {
    /// Whether the status is a success (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why the target could not be observed: the verdict becomes unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The connection failed or timed out.
    #[error("{action}: the target did not answer ({reason})")]
    Unreachable {
        /// The step's action.
        action: &'static str,
        /// Connection refused, timed out, ...
        reason: String,
    },
    /// The target answered with a server error.
    #[error("{action}: the target answered {status} (server error)")]
    ServerError {
        /// The step's action.
        action: &'static str,
        /// The 5xx status.
        status: u16,
    },
    /// The target answered with something that is not what the API promises.
    #[error("{action}: the target's answer is malformed ({what})")]
    Garbage {
        /// The step's action.
        action: &'static str,
        /// What was wrong, without the body.
        what: String,
    },
    /// The step needs something an earlier step should have produced.
    #[error("{action}: {what}")]
    Missing {
        /// The step's action.
        action: &'static str,
        /// What is missing.
        what: String,
    },
}

/// A telehealth API the model can drive. One driver serves one case: it holds
/// that case's sessions and id mappings, and a fresh driver starts empty.
pub trait Driver {
    /// Perform one step and report what the patient observed.
    fn perform(
        &mut self,
        step: &Step,
    ) -> impl Future<Output = Result<Observation, TargetError>> + Send;

    /// Undo what this case left in a shared service, so that no later case
    /// can observe it: end its calls, erase its patients' recordings. Called
    /// once after the case's last step, only for shared targets (containers,
    /// URL); nothing it observes is judged. The default does nothing.
    fn clean_up(&mut self) -> impl Future<Output = Result<(), TargetError>> + Send {
        async { Ok(()) }
    }
}
