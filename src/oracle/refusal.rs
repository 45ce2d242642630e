//! Refusal: a cross-patient probe (asking for another patient's recording by
//! id, as a pentester replays a request under a second session) must be
//! refused. Any success status is a violation; the content clause separately
//! checks that the refusal carries none of the owner's bytes.

use super::{Clause, Context, Finding, Violation};
use crate::driver::Seen;
use crate::model::Step;

pub(super) fn check(ctx: &Context<'_>) -> Vec<Violation> {
    let Step::Probe { recording, .. } = *ctx.step else {
        return Vec::new();
    };
    let Some(owner) = ctx.before.recordings.get(&recording).map(|r| r.owner) else {
        return Vec::new();
    };
    if !ctx.observation.is_success() {
        return Vec::new();
    }
    vec![ctx.violation(
        Clause::Refusal,
        "status",
        Finding::Served {
            recording: Seen::Known(recording),
            owner,
            status: ctx.observation.status,
        },
    )]
}
