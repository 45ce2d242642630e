//! Integrity: every response field the binding maps and the model can
//! predict matches the model — a view's total count (never above the
//! model's: a lower one is a hidden recording, which is the completeness
//! clause's business), and for each of the
//! patient's own recordings in it, its kind (audio or video), its call, its
//! appointment, its size in bytes and its owner. A total that counts other patients' recordings, or a
//! recording shown under someone else's call, is a finding here even when
//! no foreign recording is listed.
//!
//! Only the patient's own view of their own objects is judged: a tampered
//! or foreign view, and items that are not the patient's, are the ownership
//! and refusal clauses' business.

use super::{Clause, Context, Finding, Violation};
use crate::driver::{Fact, Seen};
use crate::model::{Mode, Step};

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    let Step::View {
        patient, view, of, ..
    } = *ctx.step
    else {
        return Vec::new();
    };
    if !ctx.observation.is_success() || ctx.before.is_cross_patient(ctx.step) {
        return Vec::new();
    }
    let state = ctx.before;
    let own = |seen: &Seen| match seen {
        Seen::Known(r) => state.recordings.get(r).filter(|rec| rec.owner == patient),
        Seen::Unknown(_) => None,
    };
    let mut violations = Vec::new();
    for (field, fact) in &ctx.observation.facts {
        let mismatch = match fact {
            Fact::Total(count) => {
                let Some(spec) = state.limits.caps.view(view) else {
                    continue;
                };
                // Fewer than the model's is a hidden recording, the
                // completeness clause's business; more counts someone else's.
                let expected = state.visible_in(patient, &spec, of).len() as u64;
                (*count > expected).then(|| Finding::Mismatch {
                    recording: None,
                    what: "total",
                    expected: format!("{expected} recording(s) in this view"),
                    got: count.to_string(),
                    other: None,
                })
            }
            Fact::Kind { recording, video } => own(recording).and_then(|rec| {
                let expected = rec.kind == Mode::Video;
                (*video != expected).then(|| Finding::Mismatch {
                    recording: Some(*recording),
                    what: "kind",
                    expected: kind_name(expected).to_string(),
                    got: kind_name(*video).to_string(),
                    other: None,
                })
            }),
            Fact::Call { recording, call } => own(recording).and_then(|rec| {
                (*call != Some(rec.call)).then(|| Finding::Mismatch {
                    recording: Some(*recording),
                    what: "call",
                    expected: format!("recorded on {}", rec.call),
                    got: call.map_or_else(
                        || "a call no patient of this case made".to_string(),
                        |c| c.to_string(),
                    ),
                    other: call
                        .and_then(|c| state.calls.get(&c))
                        .map(|c| c.patient)
                        .filter(|p| *p != patient),
                })
            }),
            Fact::Appointment {
                recording,
                appointment,
            } => own(recording).and_then(|rec| {
                let expected = state.calls.get(&rec.call).map(|c| c.appointment)?;
                (*appointment != Some(expected)).then(|| Finding::Mismatch {
                    recording: Some(*recording),
                    what: "appointment",
                    expected: format!("of {expected}"),
                    got: appointment.map_or_else(
                        || "an appointment no patient of this case booked".to_string(),
                        |a| a.to_string(),
                    ),
                    other: appointment
                        .and_then(|a| state.appointments.get(&a))
                        .map(|a| a.patient)
                        .filter(|p| *p != patient),
                })
            }),
            Fact::Size { recording, bytes } => own(recording).and_then(|rec| {
                (*bytes != rec.bytes).then(|| Finding::Mismatch {
                    recording: Some(*recording),
                    what: "size",
                    expected: format!("{} bytes long", rec.bytes),
                    got: format!("{bytes} bytes"),
                    other: None,
                })
            }),
            Fact::Owner { recording, owner } => own(recording).and_then(|_| {
                (*owner != Some(patient)).then(|| Finding::Mismatch {
                    recording: Some(*recording),
                    what: "owner",
                    expected: format!("owned by {patient}"),
                    got: owner.map_or_else(
                        || "an owner who is no patient of this case".to_string(),
                        |p| format!("owned by {p}"),
                    ),
                    other: owner.filter(|p| *p != patient),
                })
            }),
        };
        if let Some(finding) = mismatch {
            violations.push(ctx.violation(Clause::Integrity, field, finding));
        }
    }
    violations
}

fn kind_name(video: bool) -> &'static str {
    if video { "video" } else { "audio" }
}
