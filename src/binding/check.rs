//! `chaperone binding check`: perform every bound action once, with three
//! fresh patients, and say for each whether the binding drives the service.
//!
//! This debugs a binding, it does not judge privacy: a line is ✓ when the
//! service did what the model expects (a success, a refusal for the
//! cross-patient probe, a view that lists the patient's own recordings), ✗
//! with the reason and a hint otherwise, and `-` when an earlier failure
//! left nothing to try it on. Lines name actions, keys and statuses only.

use crate::driver::{BindingDriver, Driver, Observation, Seen, TargetError};
use crate::model::{
    Action, AppointmentId, CallId, PatientId, RecordingId, Scope, Scoped, Slot, Step,
};

use super::{Binding, BodyTemplate};

/// How one action fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// It worked.
    Ok,
    /// It did not: why, and a hint.
    Failed(String),
    /// Not tried: what it needed failed first.
    Skipped(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The action (`book`, `view history`, `probe`).
    pub action: String,
    /// How it fared.
    pub mark: Mark,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mark {
            Mark::Ok => write!(f, "✓ {}", self.action),
            Mark::Failed(why) => write!(f, "✗ {}: {why}", self.action),
            Mark::Skipped(why) => write!(f, "- {}: skipped ({why})", self.action),
        }
    }
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// One line per action, in the order tried.
    pub lines: Vec<Line>,
}

impl CheckReport {
    /// Whether every bound action worked.
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.mark == Mark::Ok)
    }
}

fn hint(binding: &Binding, step: &Step, status: u16) -> String {
    let bound = match step.capability() {
        Some(a) => binding.action(a),
        None if matches!(step, Step::Register { .. }) => Some(&binding.register),
        None => None,
    };
    let sends = bound
        .and_then(|b| b.requests.first())
        .map_or("no body", |r| match r.body {
            BodyTemplate::Json(_) => "JSON",
            BodyTemplate::Form(_) => "a form",
            BodyTemplate::Text(..) => "text",
            BodyTemplate::Media(_) => "raw bytes",
            BodyTemplate::None => "no body",
        });
    let other = if sends == "JSON" {
        "a form (`form = {...}`)"
    } else {
        "JSON (`json = {...}`)"
    };
    let reason = http_reason(status);
    let hint = match status {
        415 => format!("the binding sends {sends}; does the service want {other} or another `content_type`?"),
        400 | 422 => format!(
            "the service rejected the request; the binding sends {sends} — does it want {other}, other field names, or values in another format?"
        ),
        401 => "the session was not accepted; check `[session]` (header or cookie, and `value` such as \"Bearer {token}\") and register's `capture.token`".to_string(),
        403 => "the service refused this patient; is the session the right patient's, and is the path the patient's own?".to_string(),
        404 => "is the path right, and are the ids in it the ones this service uses (the captures of earlier actions)?".to_string(),
        405 => "the service does not allow this method on this path; check `method`".to_string(),
        409 => "a conflict; if the service means \"try again\" here, declare `retry = { status = [409], attempts = 3 }`".to_string(),
        _ => "check this action's requests against the service's API documentation".to_string(),
    };
    format!("{status} {reason} — {hint}")
}

/// A target error as a check line says it: without repeating the action.
fn explain(error: &TargetError) -> String {
    match error {
        TargetError::Garbage { what, .. } | TargetError::Missing { what, .. } => what.clone(),
        TargetError::ServerError { status, .. } => format!(
            "{status} (a server error) — the service failed on this request; its logs say why (a body it cannot parse?)"
        ),
        TargetError::Unreachable { reason, .. } => {
            format!("no answer ({reason}) — is the service running at the target URL?")
        }
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        _ => "",
    }
}

/// Run the check through `driver` (a fresh driver on a service no other
/// run is using with these patients).
pub async fn check(binding: &Binding, driver: &mut BindingDriver) -> CheckReport {
    let caps = binding.caps;
    let (p1, p2, p3) = (PatientId(1), PatientId(2), PatientId(3));
    let (a1, a2) = (AppointmentId(1), AppointmentId(2));
    let c1 = CallId(1);
    let (r1, r2) = (RecordingId(1), RecordingId(2));
    let slot = Slot { day: 1, hour: 9 };
    let mut lines = Vec::new();
    let mut done: Vec<&'static str> = Vec::new();

    // (label, step, what it needs done first, how success looks)
    enum Expect {
        Success,
        Refused,
        Lists(Vec<RecordingId>),
        /// Refused, or shown nothing of these (the caller's own list instead).
        NoneOf(Vec<RecordingId>),
    }
    let mut plan: Vec<(String, Step, Vec<&'static str>, Expect, &'static str)> = vec![
        (
            "register".into(),
            Step::Register { patient: p1 },
            vec![],
            Expect::Success,
            "register",
        ),
        (
            "register (a second patient)".into(),
            Step::Register { patient: p2 },
            vec![],
            Expect::Success,
            "register2",
        ),
    ];
    let has = |a: Action| caps.has(a);
    if has(Action::Book) {
        plan.push((
            "book".into(),
            Step::Book {
                patient: p1,
                appointment: a1,
                slot,
            },
            vec!["register"],
            Expect::Success,
            "book",
        ));
    }
    if has(Action::StartCall) {
        plan.push((
            "start-call".into(),
            Step::StartCall {
                patient: p1,
                appointment: a1,
                call: c1,
                recording: r1,
            },
            vec!["book"],
            Expect::Success,
            "start-call",
        ));
    }
    if has(Action::SendMedia) {
        plan.push((
            "send-media".into(),
            Step::SendMedia {
                patient: p1,
                call: c1,
                chunk: 1,
            },
            vec!["start-call"],
            Expect::Success,
            "send-media",
        ));
    }
    if has(Action::Upgrade) {
        plan.push((
            "upgrade".into(),
            Step::Upgrade {
                patient: p1,
                call: c1,
                recording: r2,
            },
            vec!["start-call"],
            Expect::Success,
            "upgrade",
        ));
        if has(Action::SendMedia) {
            plan.push((
                "send-media (after the upgrade)".into(),
                Step::SendMedia {
                    patient: p1,
                    call: c1,
                    chunk: 2,
                },
                vec!["upgrade"],
                Expect::Success,
                "send-media2",
            ));
        }
    }
    if has(Action::EndCall) {
        plan.push((
            "end-call".into(),
            Step::EndCall {
                patient: p1,
                call: c1,
            },
            vec!["start-call"],
            Expect::Success,
            "end-call",
        ));
    }
    let finished: Vec<RecordingId> = if has(Action::Upgrade) {
        vec![r1, r2]
    } else {
        vec![r1]
    };
    for view in caps.views() {
        let (of, needs) = match view.scope {
            None => (None, vec!["end-call"]),
            Some(Scope::Appointment) => (Some(Scoped::Appointment(a1)), vec!["end-call"]),
            Some(Scope::Call) => (Some(Scoped::Call(c1)), vec!["end-call"]),
        };
        let needs = if has(Action::EndCall) {
            needs
        } else {
            vec!["register"]
        };
        let mut tamper_needs = needs.clone();
        tamper_needs.push("register2");
        let expect = if has(Action::EndCall) {
            Expect::Lists(finished.clone())
        } else {
            Expect::Success
        };
        plan.push((
            format!("view {}", view.name),
            Step::View {
                patient: p1,
                view: view.name,
                of,
                subject: None,
                page: 1,
                per_page: 10,
            },
            needs,
            expect,
            "view",
        ));
        if view.tamperable {
            plan.push((
                format!(
                    "view {} with another patient's id (tampering probe)",
                    view.name
                ),
                Step::View {
                    patient: p2,
                    view: view.name,
                    of,
                    subject: Some(p1),
                    page: 1,
                    per_page: 10,
                },
                tamper_needs,
                Expect::NoneOf(finished.clone()),
                "tamper",
            ));
        }
    }
    if has(Action::Play) {
        plan.push((
            "play".into(),
            Step::Play {
                patient: p1,
                recording: r1,
            },
            vec!["end-call"],
            Expect::Success,
            "play",
        ));
        plan.push((
            "probe (another patient asks for it)".into(),
            Step::Probe {
                patient: p2,
                recording: r1,
            },
            vec!["play", "register2"],
            Expect::Refused,
            "probe",
        ));
    }
    if has(Action::Cancel) {
        plan.push((
            "book (a second appointment)".into(),
            Step::Book {
                patient: p1,
                appointment: a2,
                slot: Slot { day: 1, hour: 10 },
            },
            vec!["register"],
            Expect::Success,
            "book2",
        ));
        plan.push((
            "cancel".into(),
            Step::Cancel {
                patient: p1,
                appointment: a2,
            },
            vec!["book2"],
            Expect::Success,
            "cancel",
        ));
    }
    if has(Action::Erase) {
        plan.push((
            "erase".into(),
            Step::Erase {
                patient: p1,
                recording: r1,
            },
            vec!["end-call"],
            Expect::Success,
            "erase",
        ));
    }
    if has(Action::EraseAccount) {
        plan.push((
            "register (a third patient)".into(),
            Step::Register { patient: p3 },
            vec![],
            Expect::Success,
            "register3",
        ));
        plan.push((
            "erase-account".into(),
            Step::EraseAccount { patient: p3 },
            vec!["register3"],
            Expect::Success,
            "erase-account",
        ));
    }

    for (label, step, needs, expect, name) in plan {
        if let Some(missing) = needs.iter().find(|n| !done.contains(n)) {
            lines.push(Line {
                action: label,
                mark: Mark::Skipped(format!(
                    "needs `{}` to work first",
                    missing.trim_end_matches(char::is_numeric)
                )),
            });
            continue;
        }
        let result: Result<Observation, TargetError> = driver.perform(&step).await;
        let mark = match (result, expect) {
            (Err(e), _) => Mark::Failed(explain(&e)),
            (Ok(o), Expect::Refused) if o.is_success() => Mark::Failed(format!(
                "{} — another patient's session was served this recording: the service does not check who asks (a privacy violation `run` will report)",
                o.status
            )),
            (Ok(_), Expect::Refused) => Mark::Ok,
            (Ok(o), Expect::NoneOf(theirs)) => {
                if o.is_success()
                    && o.seen
                        .iter()
                        .any(|(_, s)| theirs.iter().any(|r| *s == Seen::Known(*r)))
                {
                    Mark::Failed(format!(
                        "{} — another patient's id in the request showed that patient's recordings: the service does not check whose list it serves (a privacy violation `run` will report)",
                        o.status
                    ))
                } else {
                    Mark::Ok
                }
            }
            (Ok(o), _) if !o.is_success() => Mark::Failed(hint(binding, &step, o.status)),
            (Ok(o), Expect::Lists(own)) => {
                let missing: Vec<String> = own
                    .iter()
                    .filter(|r| !o.seen.iter().any(|(_, s)| *s == Seen::Known(**r)))
                    .map(ToString::to_string)
                    .collect();
                if missing.is_empty() {
                    Mark::Ok
                } else {
                    Mark::Failed(format!(
                        "{} but the list holds {} item(s) and not {} of P1's own recording(s) ({}) — check `items` and `id` (and `id_regex`) against the response",
                        o.status,
                        o.seen.len(),
                        missing.len(),
                        missing.join(", ")
                    ))
                }
            }
            (Ok(_), _) => Mark::Ok,
        };
        if mark == Mark::Ok {
            done.push(name);
        }
        lines.push(Line {
            action: label,
            mark,
        });
    }
    CheckReport { lines }
}
