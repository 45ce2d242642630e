//! Erasure: a recording its owner erased is never visible again, to anyone —
//! not in a history view, not by playback, not by an old download link — and
//! its bytes are gone from the store the target file names (the erasure's own
//! observation says whether the store still holds them).

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;
use crate::model::Step;

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    let mut violations = dead_session(ctx);
    violations.extend(erased_shown(ctx));
    violations.extend(still_stored(ctx));
    violations
}

/// A patient who erased their account must find their old session refused.
fn dead_session(ctx: &Context<'_>) -> Vec<Violation> {
    match ctx.step {
        Step::View { patient, .. }
            if ctx.before.gone.contains(patient) && ctx.observation.is_success() =>
        {
            vec![ctx.violation(
                Clause::Erasure,
                "status",
                Finding::DeadSession {
                    status: ctx.observation.status,
                },
            )]
        }
        _ => Vec::new(),
    }
}

fn erased_shown(ctx: &Context<'_>) -> Vec<Violation> {
    ctx.observation
        .seen
        .iter()
        .filter_map(|(field, seen)| {
            let Seen::Known(id) = seen else { return None };
            // `before`: the step that shows a recording cannot itself erase it.
            let recording = ctx.before.recordings.get(id)?;
            recording.erased.then(|| {
                ctx.violation(
                    Clause::Erasure,
                    field,
                    Finding::ErasedVisible {
                        recording: *seen,
                        owner: recording.owner,
                    },
                )
            })
        })
        .collect()
}

/// An erasure whose recording's bytes the store still holds afterwards: the
/// row is hidden, the media is not gone.
fn still_stored(ctx: &Context<'_>) -> Vec<Violation> {
    let Step::Erase { recording, .. } = ctx.step else {
        return Vec::new();
    };
    let Some(owner) = ctx.before.recordings.get(recording).map(|r| r.owner) else {
        return Vec::new();
    };
    ctx.observation
        .seen
        .iter()
        .filter(|(field, seen)| field == "store" && *seen == Seen::Known(*recording))
        .map(|(field, seen)| {
            ctx.violation(
                Clause::Erasure,
                field,
                Finding::ErasedVisible {
                    recording: *seen,
                    owner,
                },
            )
        })
        .collect()
}
