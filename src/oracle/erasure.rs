//! Erasure: a recording its owner erased is never visible again, to anyone —
//! not in a history view, not by playback.

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
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
