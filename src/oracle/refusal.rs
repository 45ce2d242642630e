//! Refusal: a cross-patient probe (asking for another patient's recording by
//! id, as a pentester replays a request under a second session), a
//! cross-patient action (cancel, start-call, upgrade, send-media, end-call or
//! erase on another patient's object) and a forged credential must each be
//! refused. Any success status is a violation; the content clause separately
//! checks that the refusal carries none of the owner's bytes. Under the
//! binding's default refusal policy (`indistinguishable`) a refusal must also
//! match the refusal of the same request about an id that never existed, in
//! status and body shape: a 403 where an unknown id gets 404 tells the prober
//! the object exists.

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;
use crate::model::{Act, PatientId, Step};

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    if !ctx.observation.is_success() {
        return revealed(ctx).into_iter().collect();
    }
    let finding = match *ctx.step {
        Step::Probe { recording, .. } => {
            let Some(owner) = ctx.before.recordings.get(&recording).map(|r| r.owner) else {
                return Vec::new();
            };
            Finding::Served {
                recording: Seen::Known(recording),
                owner,
                status: ctx.observation.status,
            }
        }
        Step::Trespass { act, .. } => {
            let Some(owner) = owner_of(ctx, act) else {
                return Vec::new();
            };
            Finding::Trespassed {
                act,
                owner,
                status: ctx.observation.status,
            }
        }
        Step::Forge { forgery, .. } => Finding::Forged {
            forgery,
            status: ctx.observation.status,
        },
        _ => return Vec::new(),
    };
    vec![ctx.violation(Clause::Refusal, "status", finding)]
}

/// A refusal that differs from the refusal of an id that never existed.
fn revealed(ctx: &Context<'_>) -> Option<Violation> {
    let existence = ctx.observation.existence.as_ref()?;
    if existence.foreign == existence.unknown {
        return None;
    }
    let (asked, owner) = match *ctx.step {
        Step::Probe { recording, .. } => (
            format!("play {recording}"),
            ctx.before.recordings.get(&recording)?.owner,
        ),
        Step::Trespass { act, .. } => (act.to_string(), owner_of(ctx, act)?),
        _ => return None,
    };
    Some(ctx.violation(
        Clause::Refusal,
        "status",
        Finding::Reveals {
            asked,
            owner,
            foreign: existence.foreign.clone(),
            unknown: existence.unknown.clone(),
        },
    ))
}

/// The owner, in the model, of the object a trespass names.
fn owner_of(ctx: &Context<'_>, act: Act) -> Option<PatientId> {
    let state = ctx.before;
    match act {
        Act::Cancel(a) | Act::StartCall(a) => state.appointments.get(&a).map(|a| a.patient),
        Act::Upgrade(c) | Act::SendMedia(c) | Act::EndCall(c) => {
            state.calls.get(&c).map(|c| c.patient)
        }
        Act::Erase(r) => state.recordings.get(&r).map(|r| r.owner),
    }
}
